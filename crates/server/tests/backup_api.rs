//! The backup API end to end: a manual backup watched on the event stream, details with
//! today's numbers, storage health, key rotation, and deleting only what may be deleted.

mod common;

use std::time::{Duration, Instant};

use common::*;
use repairops_api::*;
use reqwest::{Method, StatusCode};

async fn json<T: serde::de::DeserializeOwned>(client: &Client, method: Method, path: &str) -> (StatusCode, T) {
    let (status, bytes) = client.raw(method, path, None).await.unwrap();
    let v =
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{path}: {e}: {}", String::from_utf8_lossy(&bytes)));
    (status, v)
}

async fn wait(client: &Client, job: &Job) -> Job {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, j): (_, Job) = json(client, Method::GET, &format!("/api/v1/jobs/{}", job.id)).await;
        if matches!(j.state, JobState::Succeeded | JobState::Failed) {
            return j;
        }
        assert!(Instant::now() < deadline, "job did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_manual_backup_is_watched_on_the_event_stream_and_reported() {
    let server = TestServer::start();
    let owner = server.sign_in("owner").await;
    // The scheduler's catch-up backup of the new account may be running: let it finish.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, running): (_, Page<Job>) = json(&owner, Method::GET, "/api/v1/jobs?state=running").await;
        if running.items.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Listen on the event stream (server-sent events) before starting.
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&server.ca_pem).unwrap()])
        .build()
        .unwrap();
    let mut stream = http
        .get(format!("{}/api/v1/events", server.url))
        .bearer_auth(owner.token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);

    let (status, job): (_, Job) = json(&owner, Method::POST, "/api/v1/backups").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(job.kind, "backup");
    let (status, _): (_, serde_json::Value) = json(&owner, Method::POST, "/api/v1/backups").await;
    assert_eq!(status, StatusCode::CONFLICT, "a second backup must wait for the first");

    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !seen.contains("event: job.finished") {
        let chunk = tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), stream.chunk())
            .await
            .expect("no job.finished event")
            .unwrap()
            .expect("the event stream ended");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: job.progress"), "{seen}");
    assert!(seen.contains("id: "), "events carry ids for resuming: {seen}");
    assert!(seen.contains("\"account\":\"demo\""), "{seen}");

    let done = wait(&owner, &job).await;
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    let backup_id = done.result.unwrap()["backup_id"].as_i64().unwrap();
    let (_, details): (_, serde_json::Value) = json(&owner, Method::GET, &format!("/api/v1/backups/{backup_id}")).await;
    assert_eq!(details["kind"], "manual");
    assert_eq!(details["summary"]["rows"]["tickets"], details["live_rows"]["tickets"]);
    assert!(details["size_bytes"].as_u64().unwrap() > 1_000_000);
    assert_eq!(details["locations"].as_array().unwrap().len(), 2);

    // Filters.
    let (_, manual): (_, Page<Backup>) = json(&owner, Method::GET, "/api/v1/backups?kind=manual").await;
    assert!(manual.items.iter().all(|b| b.kind == BackupKind::Manual) && !manual.items.is_empty());
    let (status, _): (_, serde_json::Value) = json(&owner, Method::GET, "/api/v1/backups?kind=weekly").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Storage health.
    let (_, storage): (_, Page<serde_json::Value>) = json(&owner, Method::GET, "/api/v1/storage").await;
    assert_eq!(storage.next, None);
    let storage = storage.items;
    assert_eq!(storage.len(), 2);
    assert!(
        storage
            .iter()
            .all(|l| l["reachable"] == true && !l["last_success"].is_null()),
        "{storage:?}"
    );

    // A technician sees backups but cannot start or delete them; front desk sees none.
    let tech = server.sign_in("tech").await;
    let (status, _): (_, BackupStatus) = json(&tech, Method::GET, "/api/v1/backups/status").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _): (_, serde_json::Value) = json(&tech, Method::POST, "/api/v1/backups").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let desk = server.sign_in("desk").await;
    let (status, _): (_, serde_json::Value) = json(&desk, Method::GET, "/api/v1/backups/status").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Scheduled backups are kept by retention, not deleted by hand; manual ones can go.
    let (_, all): (_, Page<Backup>) = json(&owner, Method::GET, "/api/v1/backups").await;
    if let Some(scheduled) = all.items.iter().find(|b| b.kind == BackupKind::Scheduled) {
        let (status, _): (_, serde_json::Value) =
            json(&owner, Method::DELETE, &format!("/api/v1/backups/{}", scheduled.id)).await;
        assert_eq!(status, StatusCode::CONFLICT);
    }
    let (status, bytes) = owner
        .raw(Method::DELETE, &format!("/api/v1/backups/{backup_id}"), None)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::NO_CONTENT, "{}", String::from_utf8_lossy(&bytes));
    let (status, _): (_, serde_json::Value) = json(&owner, Method::GET, &format!("/api/v1/backups/{backup_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn rotating_the_key_rewraps_both_repositories() {
    let server = TestServer::start();
    let owner = server.sign_in("owner").await;
    let deadline = Instant::now() + Duration::from_secs(120);
    // Wait for the start-up backup, so both repositories exist.
    loop {
        let (_, s): (_, BackupStatus) = json(&owner, Method::GET, "/api/v1/backups/status").await;
        if s.last.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "no backup at start-up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let key_path = server.data.join("keys").join("vault-demo.key");
    let old = repairops_vault::MasterKey::from_key_file(&std::fs::read_to_string(&key_path).unwrap()).unwrap();
    let manager = server.sign_in("manager").await;

    // A recovery key: the passphrase alone opens both locations, no key file needed.
    const PASSPHRASE: &str = "correct horse battery staple";
    assert_eq!(manager.recovery_key(PASSPHRASE).await.unwrap_err().status(), Some(403));
    let short = owner.recovery_key("too short").await.unwrap_err();
    assert_eq!(short.status(), Some(422), "{short}");
    let recovery = owner.recovery_key(PASSPHRASE).await.unwrap();
    for needed in [
        "primary: ",
        "secondary: ",
        "key object keys/",
        "--password-env",
        "restore latest",
    ] {
        assert!(recovery.contains(needed), "{needed:?} missing from:\n{recovery}");
    }
    assert!(!recovery.contains(PASSPHRASE), "the passphrase is not in the file");
    let repo_at = |which: &str| server.data.join("repos").join(which).join("demo");
    let open_with = |path: std::path::PathBuf, key: Box<dyn repairops_vault::KeyProvider + Send>| {
        tokio::task::spawn_blocking(move || {
            let backend: std::sync::Arc<dyn repairops_vault::Backend> = std::sync::Arc::new(
                repairops_vault::Location::parse(&path.to_string_lossy(), None)
                    .unwrap()
                    .open()
                    .unwrap(),
            );
            repairops_vault::Repository::open(backend, key.as_ref()).map(|r| r.snapshots().unwrap().len())
        })
    };
    let passphrase = || Box::new(repairops_vault::Passphrase::new(PASSPHRASE));
    for which in ["primary", "secondary"] {
        let snapshots = open_with(repo_at(which), passphrase()).await.unwrap();
        assert!(
            snapshots.unwrap() >= 1,
            "{which}: the passphrase opens it and lists the backups"
        );
        let wrong = open_with(
            repo_at(which),
            Box::new(repairops_vault::Passphrase::new("not the passphrase")),
        )
        .await;
        assert!(matches!(
            wrong.unwrap(),
            Err(repairops_vault::VaultError::WrongKey { .. })
        ));
    }

    let (status, _): (_, serde_json::Value) = json(&manager, Method::POST, "/api/v1/keys/rotate").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only the owner rotates keys");
    let (status, job): (_, Job) = json(&owner, Method::POST, "/api/v1/keys/rotate").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let done = wait(&owner, &job).await;
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    let new = repairops_vault::MasterKey::from_key_file(&std::fs::read_to_string(&key_path).unwrap()).unwrap();
    let data = server.data.clone();
    tokio::task::spawn_blocking(move || {
        for which in ["primary", "secondary"] {
            let path = data.join("repos").join(which).join("demo");
            let backend = || -> std::sync::Arc<dyn repairops_vault::Backend> {
                std::sync::Arc::new(
                    repairops_vault::Location::parse(&path.to_string_lossy(), None)
                        .unwrap()
                        .open()
                        .unwrap(),
                )
            };
            assert!(
                repairops_vault::Repository::open(backend(), &new).is_ok(),
                "{which}: the new key does not open it"
            );
            assert!(
                matches!(
                    repairops_vault::Repository::open(backend(), &old),
                    Err(repairops_vault::VaultError::WrongKey { .. })
                ),
                "{which}: the old key still opens it"
            );
        }
    })
    .await
    .unwrap();
    // A rotation retires the recovery key too (the file says to make a new one).
    for which in ["primary", "secondary"] {
        let after = open_with(repo_at(which), passphrase()).await.unwrap();
        assert!(
            matches!(after, Err(repairops_vault::VaultError::WrongKey { .. })),
            "{which}: an old recovery key still opens it"
        );
    }
    // Backups go on with the new key.
    let (status, job): (_, Job) = json(&owner, Method::POST, "/api/v1/backups").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(wait(&owner, &job).await.state, JobState::Succeeded);
}

/// Snapshot ids of a location, and the ids they were copied from.
fn snapshot_ids(repo_dir: &std::path::Path, key: &repairops_vault::MasterKey) -> Vec<(String, Option<String>)> {
    let backend: std::sync::Arc<dyn repairops_vault::Backend> = std::sync::Arc::new(
        repairops_vault::Location::parse(&repo_dir.to_string_lossy(), None)
            .unwrap()
            .open()
            .unwrap(),
    );
    repairops_vault::Repository::open(backend, key)
        .unwrap()
        .snapshots()
        .unwrap()
        .into_iter()
        .map(|(id, s)| (id.to_hex(), s.original.map(|o| o.to_hex())))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_backup_a_location_kept_is_forgotten_at_the_next_backup_not_copied_back() {
    let server = TestServer::start();
    let owner = server.sign_in("owner").await;
    // After the start-up backup.
    let deadline = Instant::now() + Duration::from_secs(120);
    while json::<BackupStatus>(&owner, Method::GET, "/api/v1/backups/status")
        .await
        .1
        .last
        .is_none_or(|b| b.state == JobState::Running)
    {
        assert!(Instant::now() < deadline, "no backup at start-up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, job): (_, Job) = json(&owner, Method::POST, "/api/v1/backups").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let done = wait(&owner, &job).await;
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    let id = done.result.unwrap()["backup_id"].as_i64().unwrap();
    let backup = owner.backup(id).await.unwrap();
    let in_primary = backup
        .locations
        .iter()
        .find(|l| l.name == "primary")
        .unwrap()
        .snapshot
        .clone()
        .unwrap();
    let key_path = server.data.join("keys").join("vault-demo.key");
    let key = repairops_vault::MasterKey::from_key_file(&std::fs::read_to_string(&key_path).unwrap()).unwrap();
    let (primary, secondary) = (
        server.data.join("repos/primary/demo"),
        server.data.join("repos/secondary/demo"),
    );
    let kept = |dir: &std::path::Path| {
        snapshot_ids(dir, &key)
            .into_iter()
            .any(|(sid, original)| sid == in_primary || original.as_deref() == Some(in_primary.as_str()))
    };
    assert!(kept(&primary) && kept(&secondary));

    // The primary is away while the backup is deleted: the secondary lets it go.
    let aside = server.data.join("repos/primary/demo.aside");
    std::fs::rename(&primary, &aside).unwrap();
    std::fs::write(&primary, b"not a folder").unwrap();
    owner.delete_backup(id).await.unwrap();
    std::fs::remove_file(&primary).unwrap();
    std::fs::rename(&aside, &primary).unwrap();
    assert!(kept(&primary), "the primary was away and kept it");
    assert!(!kept(&secondary));
    assert_eq!(
        owner.backup(id).await.unwrap_err().status(),
        Some(404),
        "out of the catalog at once"
    );

    // The next backup forgets it where it was kept, and its copy does not bring it back.
    let (_, job): (_, Job) = json(&owner, Method::POST, "/api/v1/backups").await;
    assert_eq!(wait(&owner, &job).await.state, JobState::Succeeded);
    assert!(!kept(&primary), "forgotten in the primary");
    assert!(!kept(&secondary), "not copied back into the secondary");
    let pending: i64 = rusqlite::Connection::open(server.data.join("server.db"))
        .unwrap()
        .query_row("SELECT purge_pending FROM backups WHERE id = ?1", [id], |r| r.get(0))
        .unwrap();
    assert_eq!(pending, 0, "done with");
}

#[tokio::test]
async fn a_health_check_of_a_missing_drive_says_so_and_makes_no_folder_there() {
    let dir = tempfile::tempdir().unwrap();
    let unmounted = dir.path().join("usb-drive/offsite");
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            "[backup]\nschedule = false\nsecondary = {:?}\n",
            unmounted.display().to_string()
        ),
    )
    .unwrap();
    let server = TestServer::start_with(&dir.path().join("data"), &["--config", config.to_str().unwrap()]);
    let owner = server.sign_in("owner").await;
    let locations = owner.storage().await.unwrap();
    let secondary = locations.iter().find(|l| l.name == "secondary").unwrap();
    assert!(!secondary.reachable, "{secondary:?}");
    assert!(
        secondary
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("drive or bucket is missing"),
        "{secondary:?}"
    );
    // Where the drive would mount stays empty, so mounting it later works as before.
    assert!(!dir.path().join("usb-drive").exists(), "the health check made a folder");
}
