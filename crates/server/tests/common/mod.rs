//! A real `repairops-server` process on a loopback port, with demo data, driven over
//! HTTPS by the typed client pinned to the server's own CA.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use repairops_api::{Client, Trust};

pub const BIN: &str = env!("CARGO_BIN_EXE_repairops-server");

pub struct TestServer {
    child: Child,
    pub url: String,
    pub ca_pem: Vec<u8>,
    pub ca_sha256: String,
    pub data: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

/// Runs `repairops-server seed` for another account in `data`; returns the sign-ins.
pub fn seed(data: &Path, slug: &str) -> Vec<(String, String, String)> {
    let out = Command::new(BIN)
        .args([
            "seed",
            "--data",
            &data.display().to_string(),
            "--account",
            slug,
            "--size",
            "small",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "seed failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let role = parts.next()?.to_string();
            let email = parts.next()?.to_string();
            parts.next()?;
            let password = parts.next()?.to_string();
            Some((role, email, password))
        })
        .collect()
}

impl TestServer {
    /// A server with the demo account in a fresh data folder.
    pub fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut s = TestServer::start_in(&data);
        s._dir = Some(dir);
        s
    }

    /// A server on an existing (or new) data folder.
    pub fn start_in(data: &Path) -> TestServer {
        TestServer::start_with(data, &[])
    }

    /// A server on a data folder with more arguments (such as `--config FILE`).
    pub fn start_with(data: &Path, extra: &[&str]) -> TestServer {
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--data",
                &data.display().to_string(),
                "--listen",
                "127.0.0.1:0",
                "--demo",
            ])
            .args(extra)
            .env("REPAIROPS_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let (mut url, mut ca, mut fp) = (None, None, None);
        let deadline = Instant::now() + Duration::from_secs(60);
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(u) = line.strip_prefix("listening on ") {
                url = Some(u.to_string());
            } else if let Some(p) = line.strip_prefix("ca-pem ") {
                ca = Some(std::fs::read(p).unwrap());
            } else if let Some(f) = line.strip_prefix("ca-sha256 ") {
                fp = Some(f.to_string());
            } else if line.starts_with("sign in to account") {
                break;
            }
            assert!(Instant::now() < deadline, "the server did not start");
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        TestServer {
            child,
            url: url.expect("the server printed no address"),
            ca_pem: ca.expect("the server printed no CA"),
            ca_sha256: fp.expect("the server printed no fingerprint"),
            data: data.to_path_buf(),
            _dir: None,
        }
    }

    pub fn client(&self) -> Client {
        Client::new(&self.url, Trust::PinnedCa(self.ca_pem.clone())).unwrap()
    }

    pub async fn sign_in(&self, who: &str) -> Client {
        let password = match who {
            "owner" => "demo-owner",
            "manager" => "demo-manager",
            "tech" => "demo-tech",
            "desk" => "demo-desk",
            other => panic!("no demo sign-in {other}"),
        };
        let (client, _) = self
            .client()
            .login(&format!("{who}@demo.repairops.test"), password)
            .await
            .unwrap();
        client
    }

    /// Sets an account's mode directly in the control plane (as a restore does).
    pub fn set_mode(&self, slug: &str, mode: &str) {
        let conn = rusqlite::Connection::open(self.data.join("server.db")).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn.execute("UPDATE accounts SET mode = ?1 WHERE slug = ?2", [mode, slug])
            .unwrap();
    }

    /// Row counts of every table of an account's live data: what "changes nothing" compares.
    pub fn counts(&self, slug: &str) -> Vec<(String, i64)> {
        let conn = rusqlite::Connection::open(self.data.join("accounts").join(slug).join("live.db")).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        repairops_server::live::TABLES
            .iter()
            .map(|t| {
                (
                    t.to_string(),
                    conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
                        .unwrap(),
                )
            })
            .collect()
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}
