//! Damage and bad input through the CLI: a flipped byte or a truncated object anywhere
//! is caught and named; wrong keys and malformed input are clear errors, never panics.

mod common;

use std::path::Path;

use common::*;

fn key_args(key: &Path, repo: &Path) -> Vec<String> {
    vec![
        "--repo".into(),
        repo.display().to_string(),
        "--key-file".into(),
        key.display().to_string(),
    ]
}

fn cli_ok(args: &[String]) -> String {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = run_cli(&refs, &[]);
    assert_eq!(code, 0, "{args:?} failed: {err}");
    out
}

/// A repository with two snapshots made through the CLI.
fn fixture(work: &Path) -> (std::path::PathBuf, std::path::PathBuf, Vec<String>) {
    let src = work.join("shop");
    make_tree(&src, 11, 2);
    let repo = work.join("repo");
    let key = work.join("key");
    let base = key_args(&key, &repo);
    cli_ok(&[base.clone(), vec!["init".into(), "--pack-size-mib".into(), "1".into()]].concat());
    cli_ok(
        &[
            base.clone(),
            vec![
                "backup".into(),
                src.display().to_string(),
                "--tag".into(),
                "kind=manual".into(),
            ],
        ]
        .concat(),
    );
    std::fs::write(src.join("later.txt"), b"a later ticket").unwrap();
    cli_ok(&[base.clone(), vec!["backup".into(), src.display().to_string()]].concat());
    (src, repo, base)
}

fn stored_objects(repo: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if rel.starts_with(".tmp") {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(rel);
            }
        }
    }
    walk(repo, repo, &mut out);
    out.sort();
    out
}

#[test]
fn every_flipped_byte_or_truncation_is_caught_and_named() {
    let work = tempfile::tempdir().unwrap();
    let (_src, repo, base) = fixture(work.path());
    let check = [base.clone(), vec!["check".into(), "--read-data".into()]].concat();
    cli_ok(&check);
    let objects = stored_objects(&repo);
    for kind in ["config", "keys/", "index/", "snapshots/", "data/"] {
        assert!(
            objects.iter().any(|o| o.starts_with(kind)),
            "fixture lacks {kind}: {objects:?}"
        );
    }
    let seed = std::env::var("VAULT_DAMAGE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261130u64);
    println!("damage seed {seed} (set VAULT_DAMAGE_SEED to replay)");
    let mut rng = Rng::new(seed);
    for object in &objects {
        let path = repo.join(object);
        let original = std::fs::read(&path).unwrap();
        let at = rng.below(original.len() as u64) as usize;
        let mut flipped = original.clone();
        flipped[at] ^= 1 << rng.below(8);
        let truncated = original[..original.len() / 2].to_vec();
        for (what, bytes) in [
            (format!("flip at byte {at}"), flipped),
            ("truncation".to_string(), truncated),
        ] {
            std::fs::write(&path, &bytes).unwrap();
            let refs: Vec<&str> = check.iter().map(String::as_str).collect();
            let (code, out, err) = run_cli(&refs, &[]);
            assert_ne!(code, 0, "{what} of {object} went unnoticed: {out}");
            // Objects are named by path; packs may be named by their id alone.
            let id = object.rsplit('/').next().unwrap();
            assert!(
                out.contains(object.as_str()) || err.contains(object.as_str()) || out.contains(id) || err.contains(id),
                "{what} of {object} was caught but not named:\nstdout: {out}\nstderr: {err}"
            );
            std::fs::write(&path, &original).unwrap();
        }
    }
    cli_ok(&check);
}

#[test]
fn wrong_keys_and_passphrases_are_clear_errors() {
    let work = tempfile::tempdir().unwrap();
    let (_src, repo, _base) = fixture(work.path());
    let other = work.path().join("other-key");
    let repo_s = repo.display().to_string();
    // init makes a new key file; it does not open this repository.
    run_cli(
        &[
            "--repo",
            &work.path().join("r2").display().to_string(),
            "--key-file",
            &other.display().to_string(),
            "init",
        ],
        &[],
    );
    let (code, _, err) = run_cli(
        &[
            "--repo",
            &repo_s,
            "--key-file",
            &other.display().to_string(),
            "snapshots",
        ],
        &[],
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("wrong key or passphrase"), "{err}");

    let prepo = work.path().join("prepo").display().to_string();
    let env = [
        ("SHOP_PASS", "s3cret counter".to_string()),
        ("BAD_PASS", "nope".to_string()),
    ];
    let (code, _, err) = run_cli(&["--repo", &prepo, "--password-env", "SHOP_PASS", "init"], &env);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run_cli(&["--repo", &prepo, "--password-env", "BAD_PASS", "snapshots"], &env);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("wrong key or passphrase"), "{err}");
    let (code, _, err) = run_cli(
        &["--repo", &prepo, "--password-env", "UNSET_VAR_XYZ", "snapshots"],
        &env,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("UNSET_VAR_XYZ"), "{err}");

    let garbage = work.path().join("garbage-key");
    std::fs::write(&garbage, b"\x00\xffnot a key").unwrap();
    let (code, _, err) = run_cli(
        &[
            "--repo",
            &repo_s,
            "--key-file",
            &garbage.display().to_string(),
            "snapshots",
        ],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a repairops-vault key file"), "{err}");
}

#[test]
fn malformed_input_gets_readable_errors_and_changes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let (_src, repo, base) = fixture(work.path());
    let before = stored_objects(&repo);
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (vec![], 2, "Usage"),
        (vec!["snapshots".into()], 2, "--repo"),
        (
            [
                base.clone(),
                vec!["restore".into(), "zz!".into(), "--target".into(), "/tmp/x".into()],
            ]
            .concat(),
            2,
            "not a snapshot id",
        ),
        (
            [
                base.clone(),
                vec!["restore".into(), "ffffffff".into(), "--target".into(), "/tmp/x".into()],
            ]
            .concat(),
            4,
            "not found",
        ),
        (
            [
                base.clone(),
                vec!["restore".into(), "latest".into(), "--target".into(), "-".into()],
            ]
            .concat(),
            2,
            "--path",
        ),
        (
            [
                base.clone(),
                vec![
                    "restore".into(),
                    "latest".into(),
                    "--target".into(),
                    work.path().join("o").display().to_string(),
                    "--path".into(),
                    "nope/x".into(),
                ],
            ]
            .concat(),
            4,
            "not found",
        ),
        (
            [base.clone(), vec!["backup".into(), "/definitely/not/here".into()]].concat(),
            1,
            "/definitely/not/here",
        ),
        (
            [
                base.clone(),
                vec!["backup".into(), "/tmp".into(), "--tag".into(), "novalue".into()],
            ]
            .concat(),
            2,
            "KEY=VALUE",
        ),
        (
            [
                base.clone(),
                vec!["backup".into(), "/tmp".into(), "--summary".into(), "{not json".into()],
            ]
            .concat(),
            2,
            "not JSON",
        ),
        ([base.clone(), vec!["forget".into()]].concat(), 2, "keep-within-days"),
        (
            [
                base.clone(),
                vec![
                    "copy".into(),
                    "--to".into(),
                    repo.display().to_string(),
                    "--to-key-file".into(),
                    base[3].clone(),
                ],
            ]
            .concat(),
            2,
            "same repository id",
        ),
        ([base.clone(), vec!["init".into()]].concat(), 2, "already exists"),
        (
            vec![
                "--repo".into(),
                "ftp://host/x".into(),
                "--key-file".into(),
                "k".into(),
                "snapshots".into(),
            ],
            2,
            "unsupported repository URL",
        ),
        (
            vec![
                "--repo".into(),
                "s3://UPPER/x".into(),
                "--key-file".into(),
                "k".into(),
                "snapshots".into(),
            ],
            2,
            "bucket",
        ),
        (
            vec![
                "--repo".into(),
                work.path().join("empty").display().to_string(),
                "--key-file".into(),
                work.path().join("key").display().to_string(),
                "snapshots".into(),
            ],
            4,
            "no repository",
        ),
    ];
    for (args, want, needle) in cases {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _out, err) = run_cli(&refs, &[]);
        assert_eq!(code, want, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: expected {needle:?} in: {err}");
    }
    assert_eq!(stored_objects(&repo), before, "a failed command changed the repository");
    // A mistyped path given to a command that reads leaves no folder behind.
    assert!(
        !work.path().join("empty").exists(),
        "snapshots created the folder it refused"
    );
    // A window longer than the calendar keeps everything instead of overflowing.
    let refs: Vec<String> = [
        base.clone(),
        vec!["forget".into(), "--keep-within-days".into(), u32::MAX.to_string()],
    ]
    .concat();
    let (code, out, err) = run_cli(&refs.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("forgot 0"), "{out}");
}

#[test]
fn json_output_is_machine_readable() {
    let work = tempfile::tempdir().unwrap();
    let (_src, _repo, base) = fixture(work.path());
    let out = cli_ok(&[base.clone(), vec!["snapshots".into(), "--json".into()]].concat());
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["tags"]["kind"], "manual");
    assert!(list[1]["stats"]["total_bytes"].as_u64().unwrap() > 1_000_000);
    let out = cli_ok(&[base, vec!["check".into(), "--json".into()]].concat());
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["problems"].as_array().unwrap().len(), 0);
}

#[cfg(unix)]
#[test]
fn a_new_key_file_is_private_whatever_was_left_at_its_temporary_name() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    // Left by an interrupted run, readable by everyone.
    std::fs::write(dir.path().join("key.tmp"), b"old").unwrap();
    std::fs::set_permissions(dir.path().join("key.tmp"), std::fs::Permissions::from_mode(0o644)).unwrap();
    cli_ok(&[key_args(&key, &dir.path().join("repo")), vec!["init".into()]].concat());
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the key file is readable by others: {mode:o}");
    assert!(!dir.path().join("key.tmp").exists());
}

/// Found by a black-box probe: a `snapshots/` folder replaced by a file or by a link to
/// a drive not mounted listed as empty, so `check` passed and `prune` deleted every pack;
/// and `restore latest` quietly restored the older snapshot when the newest was damaged.
#[test]
fn a_missing_snapshots_folder_stops_prune_and_a_damaged_newest_stops_latest() {
    let dir = tempfile::tempdir().unwrap();
    let (_src, repo, base) = fixture(dir.path());
    let run = |args: &[&str]| run_with(&base, args);
    let objects = stored_objects(&repo);
    let folder = repo.join("snapshots");
    let aside = dir.path().join("snapshots-aside");
    std::fs::rename(&folder, &aside).unwrap();
    for stand_in in ["link", "file"] {
        match stand_in {
            "link" => std::os::unix::fs::symlink(dir.path().join("offline/snapshots"), &folder).unwrap(),
            _ => std::fs::write(&folder, b"").unwrap(),
        }
        for command in [&["check"][..], &["prune"], &["snapshots"]] {
            let (code, _, err) = run(command);
            assert_ne!(code, 0, "{stand_in}: {command:?} passed");
            assert!(err.contains("snapshots"), "{stand_in}: {err}");
        }
        std::fs::remove_file(&folder).unwrap();
    }
    std::fs::rename(&aside, &folder).unwrap();
    assert_eq!(stored_objects(&repo), objects, "nothing was deleted");

    // The newest snapshot damaged: `latest` is refused, not answered with the older one.
    let newest = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .unwrap();
    let mut bytes = std::fs::read(&newest).unwrap();
    bytes[40] ^= 0x55;
    std::fs::write(&newest, bytes).unwrap();
    let target = dir.path().join("out");
    let (code, _, err) = run(&["restore", "latest", "--target", &target.display().to_string()]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("`latest` is not guessed"), "{err}");
    assert!(!target.exists(), "nothing was restored");
    // It can be forgotten by its id, though it cannot be read; then `latest` answers.
    let id = newest.file_name().unwrap().to_string_lossy().into_owned();
    let (code, _, err) = run(&["forget", "--snapshot", &id[..12]]);
    assert_eq!(code, 0, "{err}");
    assert!(!newest.exists());
    let (code, _, err) = run(&["restore", "latest", "--target", &target.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    // A snapshot id that is not there is still an error.
    let (code, _, err) = run(&["forget", "--snapshot", &id]);
    assert_eq!(code, 4, "{err}");
}

/// Found by a black-box probe: a file of gigabytes under a valid object name was read
/// whole, so `snapshots` or `check` ran out of memory and aborted. Now each kind of
/// object has a most it can hold, and a larger one is reported without being read.
#[test]
fn a_huge_junk_object_is_reported_unread_not_read_into_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (_src, repo, base) = fixture(dir.path());
    let name = "ab".repeat(32);
    for path in [
        format!("keys/{name}"),
        format!("snapshots/{name}"),
        format!("index/{name}"),
        format!("locks/{name}"),
        format!("data/ab/{name}"),
    ] {
        let path = repo.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // Sparse: no disk used, but 3 GB to whoever reads it whole.
        std::fs::File::create(&path).unwrap().set_len(3 << 30).unwrap();
    }
    // Under a 1.5 GB address-space limit, reading one of them whole aborts the process.
    let run = |args: &[&str]| {
        let all: Vec<String> = base.iter().cloned().chain(args.iter().map(|s| s.to_string())).collect();
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg("ulimit -v 1500000; exec \"$@\"")
            .arg("vault")
            .arg(env!("CARGO_BIN_EXE_repairops-vault"))
            .args(&all)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = run(&["check", "--read-data"]);
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains("more than an object of its kind can hold"), "{err}");
    let (code, err) = run(&["snapshots"]);
    // The junk lock stops nothing that only reads; the junk snapshot is skipped, named.
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains(&format!("snapshots/{name}")), "{err}");
}

/// Found by a black-box probe: a repository that cannot be written here (a read-only
/// disk, someone else's folder) could not even be listed or restored from, because
/// opening it made `.tmp/`. Now it is read, and a write says why it cannot be.
#[cfg(unix)]
#[test]
fn a_repository_that_cannot_be_written_is_still_read_and_restored() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (src, repo, base) = fixture(dir.path());
    std::fs::remove_dir_all(repo.join(".tmp")).unwrap();
    let key = std::path::PathBuf::from(&base[3]);
    let open = |p: &Path, mode| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    open(dir.path(), 0o755);
    open(&key, 0o644);
    let target = dir.path().join("out");
    std::fs::create_dir_all(&target).unwrap();
    open(&target, 0o777);
    let root = String::from_utf8(std::process::Command::new("id").arg("-u").output().unwrap().stdout).unwrap();
    // As root, permissions do not stop writes: run as nobody instead; otherwise the
    // folder is made read-only for this user.
    let as_reader = |args: Vec<String>| {
        let mut c = if root.trim() == "0" {
            let mut c = std::process::Command::new("setpriv");
            c.args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                env!("CARGO_BIN_EXE_repairops-vault"),
            ]);
            c
        } else {
            std::process::Command::new(env!("CARGO_BIN_EXE_repairops-vault"))
        };
        let out = c.args(base.iter().chain(args.iter())).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    if root.trim() != "0" {
        open(&repo, 0o555);
    }
    let (code, err) = as_reader(vec!["snapshots".into()]);
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = as_reader(vec![
        "restore".into(),
        "latest".into(),
        "--target".into(),
        target.display().to_string(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(find_file(&target, "later.txt").is_some(), "the snapshot was restored");
    let (code, err) = as_reader(vec!["backup".into(), src.display().to_string()]);
    assert_eq!(code, Some(7), "{err}");
    assert!(err.contains("can only be read"), "{err}");
    assert!(!repo.join(".tmp").exists(), "reading wrote nothing");
    open(&repo, 0o755);
}

/// Found by a black-box probe: a summary nested 127 deep was stored, and the snapshot
/// holding it could never be read, forgotten or pruned past.
#[test]
fn a_summary_too_deep_to_read_back_is_refused_before_anything_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (src, repo, base) = fixture(dir.path());
    let before = stored_objects(&repo);
    let deep = format!("{}{}", "[".repeat(127), "]".repeat(127));
    let src = src.display().to_string();
    let (code, _, err) = run_with(&base, &["backup", "--summary", &deep, &src]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nests more than 64 levels"), "{err}");
    assert_eq!(stored_objects(&repo), before);
    // 64 levels are kept and read back.
    let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
    assert_eq!(run_with(&base, &["backup", "--summary", &ok, &src]).0, 0);
    assert_eq!(run_with(&base, &["check"]).0, 0);
}

/// Storage errors read as sentences, not as OpenDAL's debugging dump (`NotFound
/// (permanent) at read, context: { service: fs, … }`).
#[test]
fn storage_errors_read_as_sentences() {
    let dir = tempfile::tempdir().unwrap();
    let (_src, repo, base) = fixture(dir.path());
    let packs: Vec<String> = stored_objects(&repo)
        .into_iter()
        .filter(|p| p.starts_with("data/"))
        .collect();
    for pack in &packs {
        let f = std::fs::OpenOptions::new().write(true).open(repo.join(pack)).unwrap();
        let len = f.metadata().unwrap().len();
        f.set_len(len / 2).unwrap();
    }
    let target = dir.path().join("out");
    let target = target.display().to_string();
    let restore = || run_with(&base, &["restore", "latest", "--target", &target]);
    let (code, _, err) = restore();
    assert_ne!(code, 0);
    assert!(!err.contains("context:") && !err.contains("(permanent)"), "{err}");
    assert!(err.contains("shorter than the index says"), "{err}");
    for pack in &packs {
        std::fs::remove_file(repo.join(pack)).unwrap();
    }
    let (code, _, err) = restore();
    assert_ne!(code, 0);
    assert!(!err.contains("context:") && err.contains("not found"), "{err}");
}

/// Smaller probe findings: a refused `init` setting left a folder and a key behind and
/// was reported as damage; a result lost to a full disk still exited 0; `copy` named
/// the wrong flags for the destination's key.
#[test]
fn refused_settings_leave_nothing_and_lost_output_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("r");
    let key = dir.path().join("k");
    let base = key_args(&key, &repo);
    let run = |args: &[&str]| run_with(&base, args);
    for bad in [
        &["init", "--chunk-size-kib", "0"][..],
        &["init", "--pack-size-mib", "0"],
    ] {
        let (code, _, err) = run(bad);
        assert_eq!(code, 2, "{err}");
        assert!(!err.contains("ChunkerParams") && !err.contains("damaged"), "{err}");
        assert!(!repo.exists() && !key.exists(), "{bad:?} left files behind");
    }
    assert_eq!(run(&["init"]).0, 0);
    if let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") {
        let all: Vec<String> = base.iter().cloned().chain(["snapshots".to_string()]).collect();
        let out = common::cli().args(&all).stdout(full).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("cannot write the result"), "{err}");
    }
    let (code, _, err) = run(&["copy", "--to", &dir.path().join("r2").display().to_string()]);
    assert_eq!(code, 2);
    assert!(err.contains("--to-key-file"), "{err}");
}

/// Found by a black-box probe: with a pack gone from storage, prune went on ("7 kept")
/// and wrote a new index still listing it. Now it stops and says which.
#[test]
fn prune_stops_when_a_listed_pack_is_gone_or_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (_src, repo, base) = fixture(dir.path());
    let packs: Vec<String> = stored_objects(&repo)
        .into_iter()
        .filter(|p| p.starts_with("data/"))
        .collect();
    let run = |args: &[&str]| run_with(&base, args);
    let pack = repo.join(&packs[0]);
    let bytes = std::fs::read(&pack).unwrap();
    std::fs::write(&pack, &bytes[..bytes.len() - 1]).unwrap();
    let before = stored_objects(&repo);
    let (code, _, err) = run(&["prune"]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains(&packs[0]) && err.contains("where the index says"), "{err}");
    std::fs::remove_file(&pack).unwrap();
    let (code, _, err) = run(&["prune"]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("not in storage"), "{err}");
    let after: Vec<String> = stored_objects(&repo)
        .into_iter()
        .filter(|p| !p.starts_with("locks/"))
        .collect();
    let expected: Vec<String> = before.into_iter().filter(|p| p != &packs[0]).collect();
    assert_eq!(after, expected, "prune changed nothing");
}
