//! `--key-keyring`: the master key kept in a real OS credential store (GNOME Keyring's
//! Secret Service on a private session bus, as a Linux desktop has), read back by later
//! commands in other processes, rotated in place, and clear errors when it is missing.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::run_cli;

/// A private D-Bus session bus with an unlocked GNOME Keyring on it; both stop on drop.
struct CredentialStore {
    env: Vec<(&'static str, String)>,
    bus_pid: u32,
}

impl CredentialStore {
    fn start(home: &Path) -> CredentialStore {
        let run = home.join("run");
        std::fs::create_dir_all(&run).unwrap();
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--fork", "--print-address=1", "--print-pid=1"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-daemon (Debian: dbus) runs");
        let mut lines = BufReader::new(bus.stdout.take().unwrap()).lines();
        let address = lines.next().unwrap().unwrap();
        let bus_pid: u32 = lines.next().unwrap().unwrap().trim().parse().unwrap();
        bus.wait().unwrap();
        let mut env = vec![
            ("DBUS_SESSION_BUS_ADDRESS", address),
            ("HOME", home.display().to_string()),
            ("XDG_RUNTIME_DIR", run.display().to_string()),
        ];
        // --unlock reads the password from standard input and makes an unlocked "login"
        // collection; without it every write fails with NoStorageAccess.
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--unlock", "--components=secrets", "--daemonize"])
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("gnome-keyring-daemon (Debian: gnome-keyring) runs");
        keyring.stdin.take().unwrap().write_all(b"vault-test").unwrap();
        let out = keyring.wait_with_output().unwrap();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(control) = line.strip_prefix("GNOME_KEYRING_CONTROL=") {
                env.push(("GNOME_KEYRING_CONTROL", control.to_string()));
            }
        }
        let store = CredentialStore { env, bus_pid };
        let started = Instant::now();
        while !store.has_owner("org.freedesktop.secrets") {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "gnome-keyring is not on the session bus"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        store
    }

    fn has_owner(&self, name: &str) -> bool {
        Command::new("dbus-send")
            .args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                &format!("string:{name}"),
            ])
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"))
    }

    /// The entry's secret as another program sees it (`secret-tool`, libsecret).
    fn lookup(&self, name: &str) -> String {
        let out = Command::new("secret-tool")
            .args(["lookup", "service", "repairops-vault", "username", name])
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .expect("secret-tool (Debian: libsecret-tools) runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for CredentialStore {
    fn drop(&mut self) {
        // gnome-keyring-daemon leaves when its bus goes.
        let _ = Command::new("kill").arg(self.bus_pid.to_string()).status();
    }
}

#[test]
fn a_key_in_the_os_credential_store_opens_the_repository_and_rotates_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let store = CredentialStore::start(&dir.path().join("home"));
    let repo = dir.path().join("repo");
    let repo_arg = repo.display().to_string();
    let source = dir.path().join("shop");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("live.db"), b"tickets and customers").unwrap();
    let vault = |args: &[&str]| {
        let mut all = vec!["--repo", repo_arg.as_str(), "--key-keyring", "shop-1"];
        all.extend_from_slice(args);
        run_cli(&all, &store.env)
    };

    let (code, _, err) = vault(&["init"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("stored a new key as \"shop-1\""), "{err}");
    let stored = store.lookup("shop-1");
    assert!(!stored.is_empty(), "another program reads the key from the store");
    assert!(!err.contains(stored.trim()), "the key is never printed");

    // A name the store does not hold: said so, nothing made.
    let (code, _, err) = run_cli(
        &["--repo", &repo_arg, "--key-keyring", "shop-2", "snapshots"],
        &store.env,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("holds no key named \"shop-2\""), "{err}");
    assert_eq!(store.lookup("shop-2"), "", "reading made no entry");

    let (code, _, err) = vault(&["backup", &source.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    // Another process reads the key back from the store and restores the bytes.
    let target = dir.path().join("restored");
    let (code, _, err) = vault(&["restore", "latest", "--target", &target.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    let restored = std::fs::read(common::find_file(&target, "live.db").expect("live.db restored")).unwrap();
    assert_eq!(restored, b"tickets and customers");

    // Rotation writes the new key into the same entry; the old one no longer opens.
    let (code, out, err) = vault(&["key", "rotate"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("master key rotated"), "{out}");
    assert_ne!(store.lookup("shop-1"), stored, "the entry holds the new key");
    let (code, out, err) = vault(&["snapshots"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| !l.trim().is_empty()), "{out}");
    let old_key = dir.path().join("old.key");
    std::fs::write(&old_key, stored.trim()).unwrap();
    let (code, _, _) = run_cli(
        &[
            "--repo",
            &repo_arg,
            "--key-file",
            &old_key.display().to_string(),
            "snapshots",
        ],
        &[],
    );
    assert_ne!(code, 0, "the rotated-out key no longer opens the repository");

    // A name that cannot be an entry, and two key sources at once, are refused.
    let (code, _, err) = run_cli(&["--repo", &repo_arg, "--key-keyring", "", "snapshots"], &store.env);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run_cli(
        &[
            "--repo",
            &repo_arg,
            "--key-keyring",
            "shop-1",
            "--key-file",
            "x.key",
            "snapshots",
        ],
        &store.env,
    );
    assert_eq!(code, 2, "{err}");
}
