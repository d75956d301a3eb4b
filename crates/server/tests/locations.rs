//! One location down: the S3-compatible secondary (a real moto_server on loopback) is
//! stopped while a backup runs. The backup completes in the primary, the status warns,
//! the notice arrives by real email at an SMTP server on loopback (aiosmtpd), and once
//! the bucket is back the next backup's copy catches up.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use repairops_api::*;
use reqwest::{Method, StatusCode};

fn start_smtp(port: u16, maildir: &Path) -> Killed {
    let child = Command::new("python3")
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "aiosmtpd.handlers.Mailbox",
        ])
        .arg(maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 with aiosmtpd must be installed (pip install aiosmtpd); .ci/run installs it");
    wait_for_port(port, "aiosmtpd");
    Killed(child)
}

/// All mail delivered so far, as text.
fn mails(maildir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(entries) = std::fs::read_dir(maildir.join(sub)) {
            for e in entries.flatten() {
                out.push(std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
    out
}

#[tokio::test]
async fn a_location_down_mid_backup_warns_emails_and_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let maildir = dir.path().join("mail");
    let (s3_port, smtp_port) = (free_port(), free_port());
    let mut moto = Some(start_moto(s3_port));
    let _smtp = start_smtp(smtp_port, &maildir);
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[backup]
primary = "repos/primary"
secondary = "s3://shop-backups/offsite"
schedule = false
[backup.s3]
endpoint = "http://127.0.0.1:{s3_port}"
region = "us-east-1"
access_key_id = "testing"
secret_access_key = "testing"
[smtp]
host = "127.0.0.1"
port = {smtp_port}
from = "RepairOps Backup <backups@repairops.test>"
security = "none"
"#
        ),
    )
    .unwrap();
    let server = TestServer::start_with(&data, &["--config", &config.display().to_string()]);
    let owner = server.sign_in("owner").await;

    // Both locations up.
    let (job, first) = backup_now(&owner).await;
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    assert!(first.locations.iter().all(|l| l.ok), "{:?}", first.locations);

    // The S3 server stops as the next backup starts.
    let (status, bytes) = owner.raw(Method::POST, "/api/v1/backups", None).await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED);
    moto.take();
    let job: Job = serde_json::from_slice(&bytes).unwrap();
    let done = wait_job(&owner, &job).await;
    assert_eq!(
        done.state,
        JobState::Succeeded,
        "the backup must complete in the primary: {done:?}"
    );
    let (_, bytes) = owner.raw(Method::GET, "/api/v1/backups/status", None).await.unwrap();
    let status: BackupStatus = serde_json::from_slice(&bytes).unwrap();
    let latest = &status.history[0];
    assert!(
        latest.locations.iter().any(|l| l.name == "primary" && l.ok),
        "{latest:?}"
    );
    assert!(
        latest.locations.iter().any(|l| l.name == "secondary" && !l.ok),
        "{latest:?}"
    );
    assert!(
        status.warnings.iter().any(|w| w.contains("secondary")),
        "no warning: {:?}",
        status.warnings
    );

    // The notice arrives by email to the admin address.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all = mails(&maildir);
        if let Some(m) = all.iter().find(|m| m.contains("Backup location unreachable")) {
            assert!(m.contains("owner@demo.repairops.test"), "{m}");
            break;
        }
        assert!(Instant::now() < deadline, "no email arrived: {all:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The bucket is back (empty, as after an outage that lost it): the next backup's
    // copy brings every snapshot over.
    let _moto = start_moto(s3_port);
    let (job, third) = backup_now(&owner).await;
    assert_eq!(job.state, JobState::Succeeded);
    assert!(third.locations.iter().all(|l| l.ok), "{:?}", third.locations);
    let key_file = std::fs::read_to_string(data.join("keys").join("vault-demo.key")).unwrap();
    let key = repairops_vault::MasterKey::from_key_file(&key_file).unwrap();
    let settings = repairops_vault::S3Settings {
        endpoint: Some(format!("http://127.0.0.1:{s3_port}")),
        region: Some("us-east-1".into()),
        access_key_id: Some("testing".into()),
        secret_access_key: Some("testing".into()),
        session_token: None,
    };
    let count = tokio::task::spawn_blocking(move || {
        let loc = repairops_vault::Location::parse("s3://shop-backups/offsite/demo", Some(settings)).unwrap();
        let repo = repairops_vault::Repository::open(std::sync::Arc::new(loc.open().unwrap()), &key).unwrap();
        repo.snapshots().unwrap().len()
    })
    .await
    .unwrap();
    assert_eq!(count, 3, "the secondary did not catch up with all three backups");
}
