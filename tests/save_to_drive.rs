//! Saving an export the app's way against a real server process, through a TCP relay
//! that cuts the connection mid-download: a dropped connection that cannot be picked up
//! leaves no file (whole or half) under the chosen name, and an older file there stays
//! as it was; one that can is resumed with a Range request to the whole file.
//!
//! Needs `target/debug/repairops-server` (built by `cargo build -p repairops-server`,
//! or by any workspace test run).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use repairops_api::{Client, JobState, NewExport, Trust};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use repairops_desktop::files::{Resume, resumed_chunks, save_download};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Server {
    child: Child,
    url: String,
    ca_pem: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server_bin() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let bin = dir.join("debug/repairops-server");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p repairops-server` first",
        bin.display()
    );
    bin
}

fn start_server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "[backup]\nschedule = false\n").unwrap();
    let mut child = Command::new(server_bin())
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config)
        .env("REPAIROPS_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut url = None;
    let mut ca = None;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(u) = line.strip_prefix("listening on ") {
            url = Some(u.to_string());
        }
        if let Some(p) = line.strip_prefix("ca-pem ") {
            ca = Some(std::fs::read(p).unwrap());
        }
        if url.is_some() && ca.is_some() {
            break;
        }
    }
    // Keep reading: the server prints more (the demo sign-ins), and a closed pipe would
    // fail its writes.
    std::thread::spawn(move || lines.for_each(drop));
    Server {
        child,
        url: url.expect("the server printed no address"),
        ca_pem: ca.expect("the server printed no CA"),
        _dir: dir,
    }
}

/// A loopback relay to `upstream` that passes `limit` bytes from the server on each
/// connection and then drops both sides (what a pulled cable or a dying Wi-Fi does
/// mid-download). Also returns the count of connections it has taken.
async fn cutting_relay(upstream: std::net::SocketAddr, limit: usize) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                });
                let mut passed = 0;
                let mut buf = vec![0u8; 4096];
                while passed < limit {
                    let n = match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n.min(limit - passed),
                    };
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    passed += n;
                }
                // Dropping both halves closes the connection mid-body.
            });
        }
    });
    (addr, connections)
}

/// A body's bytes, all of them.
async fn gather(mut chunks: repairops_desktop::files::Chunks) -> Vec<u8> {
    let mut bytes = Vec::new();
    while let Some(chunk) = futures_util::StreamExt::next(&mut chunks).await {
        bytes.extend(chunk.unwrap());
    }
    bytes
}

async fn finished_export(client: &Client) -> i64 {
    let job = client
        .start_export(&NewExport {
            dataset: "tickets".into(),
            format: "csv".into(),
            ..NewExport::default()
        })
        .await
        .unwrap();
    for _ in 0..600 {
        let j = client.job(job.id).await.unwrap();
        match j.state {
            JobState::Succeeded => return j.result.unwrap()["export_id"].as_i64().unwrap(),
            JobState::Failed => panic!("the export failed: {:?}", j.error),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("the export did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_download_leaves_no_file_under_the_chosen_name() {
    let server = start_server();
    let direct = Client::new(&server.url, Trust::PinnedCa(server.ca_pem.clone())).unwrap();
    let (direct, _) = direct.login("owner@demo.repairops.test", "demo-owner").await.unwrap();
    let id = finished_export(&direct).await;

    let drive = tempfile::tempdir().unwrap();
    let target = drive.path().join("tickets.csv");

    // The whole file through a clean connection: saved, and its hash is the server's.
    let resp = direct.export_download(id, 0).await.unwrap();
    let sha = resp.headers()["x-content-sha256"].to_str().unwrap().to_string();
    let mut reported = Vec::new();
    let (saved_sha, size) = save_download(resp, None, &target, 0, None, |done| reported.push(done))
        .await
        .unwrap();
    assert_eq!(saved_sha, sha, "held against the server's X-Content-SHA256");
    assert_eq!(reported.last(), Some(&size), "progress ends at the whole file");
    assert!(size > 100_000, "the demo export is big enough to cut: {size} bytes");
    let whole = std::fs::read(&target).unwrap();

    // Through a relay that cuts after 64 KiB (TLS handshake included): an error that
    // says so, the older file untouched, no partial file left beside it.
    let upstream: std::net::SocketAddr = server.url.trim_start_matches("https://").parse().unwrap();
    let (relay, _) = cutting_relay(upstream, 64 * 1024).await;
    let cut = Client::new(&format!("https://{relay}"), Trust::PinnedCa(server.ca_pem.clone()))
        .unwrap()
        .with_token(direct.token().unwrap());
    let outcome = match cut.export_download(id, 0).await {
        Ok(resp) => save_download(resp, None, &target, 0, Some(&sha), |_| {})
            .await
            .map(|_| ()),
        Err(e) => Err(e.into()),
    };
    let e = outcome.expect_err("a cut connection cannot produce a whole file");
    assert!(
        e.message.contains("dropped") || e.message.contains("cannot be reached"),
        "{}",
        e.message
    );
    assert!(!e.message.contains('{'), "a sentence, not JSON: {}", e.message);
    assert_eq!(
        std::fs::read(&target).unwrap(),
        whole,
        "the file saved before is untouched"
    );
    let names: Vec<String> = std::fs::read_dir(drive.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["tickets.csv"], "no partial file left on the drive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_cut_again_and_again_is_resumed_to_the_whole_file() {
    let server = start_server();
    let direct = Client::new(&server.url, Trust::PinnedCa(server.ca_pem.clone())).unwrap();
    let (direct, _) = direct.login("owner@demo.repairops.test", "demo-owner").await.unwrap();
    let id = finished_export(&direct).await;
    let resp = direct.export_download(id, 0).await.unwrap();
    let sha = resp.headers()["x-content-sha256"].to_str().unwrap().to_string();
    let whole = resp.bytes().await.unwrap();

    // Every connection is cut after 48 KiB, TLS handshake included.
    let upstream: std::net::SocketAddr = server.url.trim_start_matches("https://").parse().unwrap();
    let (relay, connections) = cutting_relay(upstream, 48 * 1024).await;
    let cut = Client::new(&format!("https://{relay}"), Trust::PinnedCa(server.ca_pem.clone()))
        .unwrap()
        .with_token(direct.token().unwrap());
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (resume_client, log) = (cut.clone(), asked.clone());
    let resume = Resume::new(Box::new(move |from| {
        log.lock().unwrap().push(from);
        let client = resume_client.clone();
        Box::pin(async move { resumed_chunks(client.export_download(id, from).await, from) })
    }));

    let drive = tempfile::tempdir().unwrap();
    let target = drive.path().join("tickets.csv");
    let mut reported = Vec::new();
    let resp = cut.export_download(id, 0).await.unwrap();
    let (saved_sha, size) = save_download(resp, Some(resume), &target, 0, None, |done| reported.push(done))
        .await
        .unwrap();

    assert_eq!(saved_sha, sha, "the pieces hash to the server's whole file");
    assert_eq!(
        std::fs::read(&target).unwrap(),
        whole,
        "byte for byte the file the server holds"
    );
    assert_eq!(size, whole.len() as u64);
    let asked = asked.lock().unwrap().clone();
    assert!(asked.len() >= 2, "cut more than once: resumed from {asked:?}");
    assert!(
        // (Equal twice only if a resume found its new connection dead before any byte;
        // at the end only if the cut fell between the last byte and the body's end.)
        asked.windows(2).all(|w| w[0] <= w[1]) && asked.iter().all(|&from| from > 0 && from <= size),
        "each resume starts no earlier, inside the file: {asked:?}"
    );
    assert!(
        connections.load(Ordering::SeqCst) > asked.len(),
        "a connection for each piece"
    );
    assert_eq!(reported.last(), Some(&size), "progress ends at the whole file");
    let names: Vec<String> = std::fs::read_dir(drive.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["tickets.csv"], "no temporary file left on the drive");

    // Cut after the last byte: the server has nothing more (416) and nothing is missing.
    let rest = resumed_chunks(direct.export_download(id, size).await, size).unwrap();
    assert_eq!(futures_util::StreamExt::count(rest).await, 0);
    // The range asked for, exactly; from byte 0, the whole file.
    let tail = resumed_chunks(direct.export_download(id, size - 10).await, size - 10).unwrap();
    assert_eq!(gather(tail).await, whole[whole.len() - 10..]);
    let all = resumed_chunks(direct.export_download(id, 0).await, 0).unwrap();
    assert_eq!(gather(all).await, whole);
}
