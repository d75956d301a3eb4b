//! Shared test fixtures: generated data trees, tree hashing, a real S3 server
//! (moto_server) on loopback, and the CLI binary.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use repairops_vault::{Backend, Location, S3Settings};

/// A tiny deterministic PRNG (xorshift64*), so fixtures are the same on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(len);
        v
    }
}

/// Text that compresses like a shop database dump.
pub fn shop_text(rng: &mut Rng, len: usize) -> Vec<u8> {
    let devices = [
        "iPhone 13",
        "Galaxy S21",
        "Pixel 7",
        "MacBook Air M1",
        "ThinkPad T480",
        "iPad 9",
    ];
    let problems = [
        "cracked screen",
        "battery swelling",
        "no power",
        "water damage",
        "charging port loose",
    ];
    let mut out = Vec::with_capacity(len + 200);
    while out.len() < len {
        let line = format!(
            "{},\"{}\",\"{}\",{}.{:02},{}\n",
            rng.below(1_000_000),
            devices[rng.below(6) as usize],
            problems[rng.below(5) as usize],
            rng.below(900),
            rng.below(100),
            rng.below(10_000_000_000)
        );
        out.extend_from_slice(line.as_bytes());
    }
    out.truncate(len);
    out
}

/// Writes a tree with odd names, empty files, nested folders, a symlink, compressible
/// and incompressible content, and one file larger than a pack.
pub fn make_tree(root: &Path, seed: u64, large_mib: usize) {
    let mut rng = Rng::new(seed);
    let w = |p: &Path, data: &[u8]| {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    };
    w(&root.join("empty.txt"), b"");
    w(&root.join("sub/empty-too"), b"");
    std::fs::create_dir_all(root.join("empty-dir")).unwrap();
    w(&root.join("spaces in name .txt"), b"spaces");
    w(&root.join("ünïcödé/фото-001.jpg"), &rng.bytes(40_000));
    w(&root.join("quotes \"and' $dollar;&|.txt"), b"shell metacharacters");
    w(&root.join("-leading-dash"), b"dash");
    w(&root.join("new\nline"), b"newline in name");
    w(&root.join("emoji 😀 📷.txt"), "emoji ✓".as_bytes());
    w(&root.join("db/live.db"), &shop_text(&mut rng, 3 * 1024 * 1024));
    for i in 0..6 {
        let size = 10_000 + rng.below(300_000) as usize;
        w(
            &root.join(format!("attachments/{:02x}/{i}.jpg", rng.below(256))),
            &rng.bytes(size),
        );
    }
    if large_mib > 0 {
        let mut big = rng.bytes(large_mib * 1024 * 1024);
        // Make part of it repeat, so dedup inside one file is exercised too.
        let (a, b) = big.split_at_mut(large_mib * 512 * 1024);
        let n = a.len().min(b.len());
        b[..n].copy_from_slice(&a[..n]);
        w(&root.join("large.bin"), &big);
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let raw = std::ffi::OsStr::from_bytes(b"not-utf8-\xff\xfe.bin");
        w(&root.join(raw), b"bytes that are not utf-8 in the name");
        std::os::unix::fs::symlink("db/live.db", root.join("link-to-db")).unwrap();
    }
}

/// Path -> (kind, BLAKE3 of content or link target) for everything under `root`.
pub fn hash_tree(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let ft = e.file_type().unwrap();
            if ft.is_symlink() {
                out.insert(rel, format!("link:{}", std::fs::read_link(&p).unwrap().display()));
            } else if ft.is_dir() {
                out.insert(rel, "dir".into());
                walk(root, &p, out);
            } else {
                let data = std::fs::read(&p).unwrap();
                out.insert(rel, format!("file:{}:{}", data.len(), blake3::hash(&data).to_hex()));
            }
        }
    }
    walk(root, root, &mut out);
    out
}

/// A moto_server (real S3 API) on a free loopback port, killed on drop.
pub struct S3Server {
    child: Child,
    pub endpoint: String,
    pub port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl S3Server {
    pub fn start() -> S3Server {
        let port = free_port();
        S3Server::start_on(port)
    }

    pub fn start_on(port: u16) -> S3Server {
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server must be installed (pip install 'moto[server]'); .ci/run installs it");
        let server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// Creates a bucket (moto accepts unsigned requests).
    pub fn create_bucket(&self, bucket: &str) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200"), "bucket creation failed: {resp}");
    }

    pub fn settings(&self) -> S3Settings {
        S3Settings {
            endpoint: Some(self.endpoint.clone()),
            region: Some("us-east-1".into()),
            access_key_id: Some("testing".into()),
            secret_access_key: Some("testing".into()),
            session_token: None,
        }
    }

    pub fn backend(&self, bucket: &str, prefix: &str) -> Arc<dyn Backend> {
        let loc = Location::parse(&format!("s3://{bucket}/{prefix}"), Some(self.settings())).unwrap();
        Arc::new(loc.open().unwrap())
    }

    /// Environment for the CLI to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ]
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn local_backend(path: &Path) -> Arc<dyn Backend> {
    Arc::new(Location::parse(&path.to_string_lossy(), None).unwrap().open().unwrap())
}

/// The CLI under test.
pub fn cli() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_repairops-vault"));
    c.env_remove("REPAIROPS_VAULT_REPO");
    c
}

/// Runs the CLI; returns (exit code, stdout, stderr). Fails the test on a panic.
pub fn run_cli(args: &[&str], env: &[(&str, String)]) -> (i32, String, String) {
    let mut c = cli();
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "the CLI panicked on {args:?}: {stderr}");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

/// Runs the CLI with `base` (repository and key flags) then `args`.
pub fn run_with(base: &[String], args: &[&str]) -> (i32, String, String) {
    let all: Vec<&str> = base.iter().map(String::as_str).chain(args.iter().copied()).collect();
    run_cli(&all, &[])
}

/// The first file named `name` under `dir`.
pub fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if entry.file_name() == name {
            return Some(path);
        }
    }
    None
}
