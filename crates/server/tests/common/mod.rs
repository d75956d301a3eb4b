//! A real `repairops-server` process on a loopback port, with demo data, driven over
//! HTTPS by the typed client pinned to the server's own CA.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use repairops_api::{Backup, Client, Job, JobState, Page, Trust};
use reqwest::{Method, StatusCode};

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
        TestServer::start_env(data, extra, &[])
    }

    /// A server with more arguments and environment variables (such as the pause points
    /// of `repairops_server::faults`).
    pub fn start_env(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> TestServer {
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
            .envs(env.iter().copied())
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

/// Waits for a file a paused server makes (`faults::point`: `NAME.reached`).
pub fn wait_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start on port {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn start_moto(port: u16) -> Killed {
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server must be installed (pip install 'moto[server]'); .ci/run installs it");
    wait_for_port(port, "moto_server");
    // moto accepts an unsigned bucket creation.
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "PUT /shop-backups HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    Killed(child)
}

pub async fn wait_job(client: &Client, job: &Job) -> Job {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, bytes) = client
            .raw(Method::GET, &format!("/api/v1/jobs/{}", job.id), None)
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK);
        let j: Job = serde_json::from_slice(&bytes).unwrap();
        if matches!(j.state, JobState::Succeeded | JobState::Failed) {
            return j;
        }
        assert!(Instant::now() < deadline, "job {} did not finish", job.id);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn backup_now(client: &Client) -> (Job, Backup) {
    let (status, bytes) = client.raw(Method::POST, "/api/v1/backups", None).await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{}", String::from_utf8_lossy(&bytes));
    let job: Job = serde_json::from_slice(&bytes).unwrap();
    let done = wait_job(client, &job).await;
    // A succeeded job names its backup; a failed one is the newest in the catalog.
    let id = done.result.as_ref().and_then(|r| r["backup_id"].as_i64());
    let (_, bytes) = client.raw(Method::GET, "/api/v1/backups?limit=1", None).await.unwrap();
    let page: Page<Backup> = serde_json::from_slice(&bytes).unwrap();
    let backup = page.items.into_iter().next().unwrap();
    if let Some(id) = id {
        assert_eq!(backup.id, id);
    }
    (done, backup)
}
