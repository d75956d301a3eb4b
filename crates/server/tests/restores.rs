//! Restore to production end to end, over HTTPS against the real binary: deleted
//! tickets come back, the account is read-only while the restore runs, writes after it
//! survive a restart, the safety backup undoes it, a CCPA deletion stays deleted, the
//! secondary location stands in for a lost primary, and a restore killed (kill -9) at any
//! step, or starved of its storage, leaves the live data exactly as it was.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use repairops_api::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Every row of every table and every attachment file: what "unchanged" compares.
fn dump(data: &Path) -> String {
    let account = data.join("accounts/demo");
    let conn =
        rusqlite::Connection::open_with_flags(account.join("live.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut out = String::new();
    for t in repairops_server::live::TABLES {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {t} ORDER BY rowid")).unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            let cells: Vec<String> = (0..n)
                .map(|i| format!("{:?}", r.get::<_, rusqlite::types::Value>(i).unwrap()))
                .collect();
            out.push_str(&format!("{t}: {}\n", cells.join("|")));
        }
    }
    let mut files = Vec::new();
    collect(&account.join("attachments"), &mut files);
    files.sort();
    for f in files {
        out.push_str(&format!(
            "file {} {}\n",
            f.display(),
            std::fs::metadata(&f).unwrap().len()
        ));
    }
    out
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                collect(&e.path(), out);
            } else {
                out.push(e.path());
            }
        }
    }
}

async fn post(client: &Client, path: &str, body: Value) -> (StatusCode, Value) {
    let (status, bytes) = client
        .raw(
            Method::POST,
            path,
            Some((body.to_string().into_bytes(), "application/json")),
        )
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn restore(client: &Client, backup_id: i64) -> Job {
    let (status, v) = post(
        client,
        "/api/v1/restores",
        json!({"backup_id": backup_id, "confirm": "demo"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    serde_json::from_value(v).unwrap()
}

/// A demo shop in `dir` with a backup, then ticket 2 deleted and a ticket added, and
/// its server stopped: the data folder, the configuration and the backup.
async fn changed_since_a_backup(dir: &Path) -> (PathBuf, String, Backup) {
    let data = dir.join("data");
    let config = unscheduled(dir);
    let mut server = TestServer::start_with(&data, &["--config", &config]);
    let owner = server.sign_in("owner").await;
    let (_, backup) = backup_now(&owner).await;
    owner.delete::<Ticket>(2).await.unwrap();
    owner.create::<Ticket>(&new_ticket("after the backup")).await.unwrap();
    server.stop();
    (data, config, backup)
}

/// A server over `dir/data` without the scheduler that stops at the named fault points
/// (comma-separated), reporting and released through files in the returned folder.
fn paused_server(dir: &Path, points: &str) -> (TestServer, PathBuf, PathBuf) {
    let (data, pauses) = (dir.join("data"), dir.join("pauses"));
    std::fs::create_dir_all(&pauses).unwrap();
    let env = [
        ("REPAIROPS_PAUSE_AT", points),
        ("REPAIROPS_PAUSE_DIR", pauses.to_str().unwrap()),
    ];
    let config = unscheduled(dir);
    let server = TestServer::start_env(&data, &["--config", &config], &env);
    (server, data, pauses)
}

/// A configuration without the scheduler (whose catch-up backup would hold the job slot).
fn unscheduled(dir: &Path) -> String {
    let path = dir.join("server.toml");
    std::fs::write(&path, "[backup]\nschedule = false\n").unwrap();
    path.display().to_string()
}

fn new_ticket(problem: &str) -> TicketInput {
    TicketInput {
        shop_id: 1,
        customer_id: 1,
        device_type: None,
        device_make: "Apple".into(),
        device_model: "iPhone 12".into(),
        serial_number: None,
        problem: problem.into(),
        status: None,
        estimate_cents: None,
        technician_id: None,
        completed_at: None,
    }
}

#[tokio::test]
async fn a_restore_brings_back_deleted_tickets_and_what_follows_it_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, data, pauses) = paused_server(dir.path(), "restore.fetching");
    let config = unscheduled(dir.path());
    let owner = server.sign_in("owner").await;
    let (_, backup) = backup_now(&owner).await;
    let ticket5 = owner.get::<Ticket>(5).await.unwrap();
    owner.delete::<Ticket>(5).await.unwrap();
    // A customer erased under CCPA after the backup must stay erased.
    let erased = owner.get::<Customer>(7).await.unwrap();
    let erased_email = erased.email.clone().unwrap();
    owner.ccpa_delete(&erased_email).await.unwrap();
    // Someone joins after the backup: their sign-in outlives the restore, and so must
    // their place on the staff list.
    let joiner = owner
        .add_team_member(&NewTeamMember {
            email: "joined.later@example.com".into(),
            name: "Jo Later".into(),
            role: Role::Technician,
            password: "joined-later-password".into(),
        })
        .await
        .unwrap();
    // A ticket made after the backup goes with the restore, but its id is not given again.
    let made_after = owner
        .create::<Ticket>(&new_ticket("made after the backup"))
        .await
        .unwrap();

    // The details a manager confirms: the backup's rows beside today's.
    let (status, bytes) = owner
        .raw(Method::GET, &format!("/api/v1/backups/{}", backup.id), None)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    let details: Value = serde_json::from_slice(&bytes).unwrap();
    let tickets_then = details["summary"]["rows"]["tickets"].as_i64().unwrap();
    assert!(
        details["live_rows"]["tickets"].as_i64().unwrap() < tickets_then,
        "{details}"
    );

    // The typed confirmation must be the account's slug.
    let (status, v) = post(
        &owner,
        "/api/v1/restores",
        json!({"backup_id": backup.id, "confirm": "Demo"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("\"demo\""), "{v}");

    let job = restore(&owner, backup.id).await;
    wait_file(&pauses.join("restore.fetching.reached"));
    // While it runs: writes and portal submissions get 423, reads work.
    let err = owner.create::<Ticket>(&new_ticket("during")).await.unwrap_err();
    assert_eq!(err.status(), Some(423), "{err}");
    assert!(err.to_string().contains("restore is in progress"), "{err}");
    let portal = server
        .client()
        .portal_repair(&PortalRepairRequest {
            account: "demo".into(),
            name: "Pat Doe".into(),
            email: "pat@example.com".into(),
            phone: None,
            device: "Pixel 7".into(),
            problem: "No sound".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(portal.status(), Some(423));
    assert!(owner.get::<Ticket>(1).await.is_ok());
    let running = owner.running_jobs().await.unwrap();
    assert!(
        running.iter().any(|j| j.id == job.id && j.kind == "restore"),
        "{running:?}"
    );
    std::fs::write(pauses.join("restore.fetching.go"), b"").unwrap();
    let done = wait_job(&owner, &job).await;
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    let result = done.result.unwrap();
    assert_eq!(result["location"], "primary");
    assert_eq!(result["customers_deleted_again"], 1);
    let safety_id = result["safety_backup_id"].as_i64().unwrap();

    // The deleted ticket is back; the erased customer is not.
    assert_eq!(owner.get::<Ticket>(5).await.unwrap().problem, ticket5.problem);
    assert_eq!(owner.get::<Customer>(7).await.unwrap_err().status(), Some(404));
    assert_eq!(
        owner.subject_export(&erased_email).await.unwrap()["customers"],
        json!([])
    );
    let (jo, session) = server
        .client()
        .login("joined.later@example.com", "joined-later-password")
        .await
        .unwrap();
    assert!(owner.team().await.unwrap().items.contains(&joiner));
    let note = jo
        .create::<TicketNote>(&TicketNoteInput {
            ticket_id: 5,
            body: "Checked after the restore".into(),
            author_id: None,
        })
        .await
        .expect("the joiner's sign-in names someone on the restored staff list");
    assert_eq!(note.author_id, Some(session.user.id));
    // Writes work again, and survive a restart (no connection left on the old file).
    let after = owner
        .create::<Ticket>(&new_ticket("written after the restore"))
        .await
        .unwrap();
    assert!(
        after.id > made_after.id,
        "ticket {} was given again after the restore",
        made_after.id
    );
    assert_eq!(
        owner.get::<Ticket>(made_after.id).await.unwrap_err().status(),
        Some(404)
    );
    server.stop();
    let mut server = TestServer::start_with(&data, &["--config", &config]);
    let owner = server.sign_in("owner").await;
    assert_eq!(
        owner.get::<Ticket>(after.id).await.unwrap().problem,
        "written after the restore"
    );
    assert!(owner.get::<Ticket>(5).await.is_ok());

    // The safety backup puts back what was there before the restore: ticket 5 deleted.
    let backups = owner.backups(&[("kind", "safety")]).await.unwrap();
    assert_eq!(backups.items[0].id, safety_id);
    let job = restore(&owner, safety_id).await;
    let done = wait_job(&owner, &job).await;
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    assert_eq!(owner.get::<Ticket>(5).await.unwrap_err().status(), Some(404));
    assert_eq!(owner.get::<Ticket>(after.id).await.unwrap_err().status(), Some(404));
    let undo = owner.create::<Ticket>(&new_ticket("after the undo")).await.unwrap();
    assert!(undo.id > after.id, "ticket {} was given again after the undo", after.id);
    // Both restores are in the audit log.
    let (_, bytes) = owner
        .raw(Method::GET, "/api/v1/audit?event_type=restore", None)
        .await
        .unwrap();
    let log: Value = serde_json::from_slice(&bytes).unwrap();
    let done: Vec<&Value> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "restore to production" && e["result"] == "success")
        .collect();
    assert_eq!(done.len(), 2, "{log}");
    server.stop();
}

#[tokio::test]
async fn the_secondary_stands_in_for_a_lost_primary() {
    let dir = tempfile::tempdir().unwrap();
    let config = unscheduled(dir.path());
    let server = TestServer::start_with(&dir.path().join("data"), &["--config", &config]);
    let owner = server.sign_in("owner").await;
    let (_, backup) = backup_now(&owner).await;
    owner.delete::<Ticket>(3).await.unwrap();
    std::fs::remove_dir_all(server.data.join("repos/primary/demo")).unwrap();
    let job = restore(&owner, backup.id).await;
    let done = wait_job(&owner, &job).await;
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    assert_eq!(done.result.unwrap()["location"], "secondary");
    assert!(owner.get::<Ticket>(3).await.is_ok());
}

/// Where a restore can be killed: every phase and every rename of the swap.
const KILL_POINTS: [&str; 11] = [
    "restore.safety_backup",
    "restore.fetching",
    "restore.checking",
    "restore.reapplying_deletions",
    "restore.swapping",
    "restore.swap.out.live.db",
    "restore.swap.out.attachments",
    "restore.swap.out.live.db-wal",
    "restore.swap.in.live.db",
    "restore.swap.in.attachments",
    "restore.swap.in.live.db-wal",
];

#[tokio::test]
async fn a_restore_killed_at_any_point_leaves_live_data_as_it_was() {
    let seed: u64 = std::env::var("RESTORE_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("kill points shuffled with RESTORE_KILL_SEED={seed}");
    let mut points = KILL_POINTS.to_vec();
    // A small xorshift shuffle: the order (and so what each kill leaves behind for the
    // next start) varies with the seed.
    let mut x = seed | 1;
    for i in (1..points.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        points.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let dir = tempfile::tempdir().unwrap();
    let pauses = dir.path().join("pauses");
    let (data, config, backup) = changed_since_a_backup(dir.path()).await;
    let before = dump(&data);
    for point in &points {
        eprintln!("kill -9 at {point}");
        let _ = std::fs::remove_dir_all(&pauses);
        std::fs::create_dir_all(&pauses).unwrap();
        let env = [
            ("REPAIROPS_PAUSE_AT", *point),
            ("REPAIROPS_PAUSE_DIR", pauses.to_str().unwrap()),
        ];
        let mut server = TestServer::start_env(&data, &["--config", &config], &env);
        let owner = server.sign_in("owner").await;
        restore(&owner, backup.id).await;
        wait_file(&pauses.join(format!("{point}.reached")));
        server.stop(); // SIGKILL
        // The next start undoes the interrupted restore.
        let mut server = TestServer::start_with(&data, &["--config", &config]);
        let account = server.sign_in("owner").await.account().await.unwrap();
        assert_eq!(account.mode, AccountMode::Normal, "after a kill at {point}");
        server.stop();
        assert!(
            dump(&data) == before,
            "live data changed by a restore killed at {point}"
        );
    }
    let server = TestServer::start_with(&data, &["--config", &config]);
    let owner = server.sign_in("owner").await;
    assert!(owner.create::<Ticket>(&new_ticket("writable again")).await.is_ok());
}

/// A deletion on request that began just before a restore (so it was let through) and
/// writes its ledger entry after the restore read the ledger: the customer it deletes
/// is still gone once the restore is done.
// Several threads: the deletion's request goes on while the test waits for pauses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_already_under_way_when_a_restore_starts_is_not_undone_by_it() {
    let dir = tempfile::tempdir().unwrap();
    let (server, data, pauses) = paused_server(dir.path(), "ccpa.found,restore.swapping");
    let owner = server.sign_in("owner").await;
    let (_, backup) = backup_now(&owner).await;
    let customer = owner.get::<Customer>(6).await.unwrap();
    let email = customer.email.clone().unwrap();

    // The deletion has found the customer; the restore then reads the ledger without it.
    let deleter = owner.clone();
    let deletion = tokio::spawn(async move { deleter.ccpa_delete(&email).await });
    wait_file(&pauses.join("ccpa.found.reached"));
    let job = restore(&owner, backup.id).await;
    wait_file(&pauses.join("restore.swapping.reached"));
    std::fs::write(pauses.join("ccpa.found.go"), b"").unwrap();
    let deleted = deletion.await.unwrap().unwrap();
    assert_eq!(deleted.customer_ids, vec![customer.id]);
    std::fs::write(pauses.join("restore.swapping.go"), b"").unwrap();

    let done = wait_job(&owner, &job).await;
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    assert_eq!(done.result.unwrap()["customers_deleted_again"], 1);
    assert_eq!(
        owner.get::<Customer>(customer.id).await.unwrap_err().status(),
        Some(404)
    );
    let c = rusqlite::Connection::open(data.join("accounts/demo/live.db")).unwrap();
    let left: i64 = c
        .query_row(
            "SELECT count(*) FROM tickets WHERE customer_id = ?1",
            [customer.id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0, "the restore brought back the deleted customer's tickets");
}

#[tokio::test]
async fn a_restore_that_panics_puts_everything_back_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (data, config, backup) = changed_since_a_backup(dir.path()).await;
    let before = dump(&data);
    for point in ["restore.fetching", "restore.swapping", "restore.swap.in.live.db"] {
        let env = [("REPAIROPS_PANIC_AT", point)];
        let mut server = TestServer::start_env(&data, &["--config", &config], &env);
        let owner = server.sign_in("owner").await;
        let job = wait_job(&owner, &restore(&owner, backup.id).await).await;
        assert_eq!(job.state, JobState::Failed, "{point}: {job:?}");
        assert!(
            job.error.as_deref().unwrap_or_default().contains("internal error"),
            "{point}: {job:?}"
        );
        // Writable again at once (writes are refused while the account is `restoring`),
        // not at the next start; the live files put back, the staging folder gone.
        assert_eq!(
            owner.account().await.unwrap().mode,
            AccountMode::Normal,
            "after a panic at {point}"
        );
        server.stop();
        assert!(
            !data.join("accounts/demo/.restore").exists(),
            "staging left after {point}"
        );
        assert!(
            dump(&data) == before,
            "live data changed by a restore that panicked at {point}"
        );
    }
}

#[tokio::test]
async fn a_restore_whose_storage_fails_midway_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let pauses = dir.path().join("pauses");
    std::fs::create_dir_all(&pauses).unwrap();
    let s3_port = free_port();
    let moto = start_moto(s3_port);
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[backup]
primary = "s3://shop-backups/main"
secondary = "s3://shop-backups/offsite"
schedule = false
[backup.s3]
endpoint = "http://127.0.0.1:{s3_port}"
region = "us-east-1"
access_key_id = "testing"
secret_access_key = "testing"
"#
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let env = [
        ("REPAIROPS_PAUSE_AT", "restore.fetching"),
        ("REPAIROPS_PAUSE_DIR", pauses.to_str().unwrap()),
    ];
    let mut server = TestServer::start_env(&data, &["--config", config], &env);
    let owner = server.sign_in("owner").await;
    let (done, backup) = backup_now(&owner).await;
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    owner.delete::<Ticket>(4).await.unwrap();
    server.stop();
    let before = dump(&data);
    let server = TestServer::start_env(&data, &["--config", config], &env);
    let owner = server.sign_in("owner").await;
    let job = restore(&owner, backup.id).await;
    wait_file(&pauses.join("restore.fetching.reached"));
    drop(moto); // both locations gone mid-restore
    std::fs::write(pauses.join("restore.fetching.go"), b"").unwrap();
    let done = wait_job(&owner, &job).await;
    assert_eq!(done.state, JobState::Failed, "{done:?}");
    assert!(
        done.error.as_deref().unwrap_or("").contains("either location"),
        "{done:?}"
    );
    assert_eq!(owner.account().await.unwrap().mode, AccountMode::Normal);
    assert!(dump(&data) == before, "a failed restore changed live data");
    assert!(owner.create::<Ticket>(&new_ticket("still writable")).await.is_ok());
}

#[tokio::test]
async fn a_sandbox_serves_the_backup_and_writes_there_never_reach_production() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = unscheduled(dir.path());
    let server = TestServer::start_with(&data, &["--config", &config]);
    let owner = server.sign_in("owner").await;
    let (_, backup) = backup_now(&owner).await;
    let ticket6 = owner.get::<Ticket>(6).await.unwrap();
    owner.delete::<Ticket>(6).await.unwrap();
    let erased = owner.get::<Customer>(8).await.unwrap();
    owner.ccpa_delete(erased.email.as_deref().unwrap()).await.unwrap();
    // A manager who joined after the backup tries a workflow in the sandbox.
    owner
        .add_team_member(&NewTeamMember {
            email: "max.later@example.com".into(),
            name: "Max Later".into(),
            role: Role::Manager,
            password: "max-later-password".into(),
        })
        .await
        .unwrap();
    let (max, max_session) = server
        .client()
        .login("max.later@example.com", "max-later-password")
        .await
        .unwrap();

    let job = owner.create_sandbox(backup.id).await.unwrap();
    let done = wait_job(&owner, &job).await;
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    let id = done.result.unwrap()["sandbox_id"].as_i64().unwrap();
    let listed = owner.sandboxes().await.unwrap().items;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].backup_id, backup.id);
    assert_eq!(listed[0].expires_at - listed[0].created_at, chrono::Duration::days(7));

    // The sandbox has the backup's data: the ticket deleted since is there...
    let sandbox = owner.in_sandbox(id);
    assert_eq!(sandbox.get::<Ticket>(6).await.unwrap().problem, ticket6.problem);
    assert_eq!(owner.get::<Ticket>(6).await.unwrap_err().status(), Some(404));
    // ...but not the customer erased under CCPA since.
    assert_eq!(sandbox.get::<Customer>(8).await.unwrap_err().status(), Some(404));
    assert!(
        sandbox
            .list::<Customer>(&[("email", erased.email.as_deref().unwrap())])
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // Writes there stay there.
    let before = server.counts("demo");
    let made = sandbox
        .create::<Ticket>(&new_ticket("only in the sandbox"))
        .await
        .unwrap();
    sandbox.delete::<Ticket>(1).await.unwrap();
    let note = max
        .in_sandbox(id)
        .create::<TicketNote>(&TicketNoteInput {
            ticket_id: made.id,
            body: "tried in the sandbox".into(),
            author_id: None,
        })
        .await
        .expect("a manager who joined after the backup is on the sandbox's staff list");
    assert_eq!(note.author_id, Some(max_session.user.id));
    assert_eq!(server.counts("demo"), before, "a sandbox write reached production");
    assert!(owner.get::<Ticket>(1).await.is_ok());
    match owner.get::<Ticket>(made.id).await {
        Ok(t) => assert_ne!(t.problem, "only in the sandbox"),
        Err(e) => assert_eq!(e.status(), Some(404)),
    }
    // Only owners and managers open sandboxes; other routes are not served there.
    let tech = server.sign_in("tech").await;
    assert_eq!(
        tech.in_sandbox(id).get::<Ticket>(1).await.unwrap_err().status(),
        Some(403)
    );
    let (status, _) = owner
        .raw(Method::GET, &format!("/sandboxes/{id}/api/v1/backups"), None)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        owner.in_sandbox(id + 1).get::<Ticket>(1).await.unwrap_err().status(),
        Some(404)
    );

    // Deleted: files gone, answered 410.
    owner.delete_sandbox(id).await.unwrap();
    assert!(!data.join(format!("sandboxes/{id}")).exists());
    assert_eq!(sandbox.get::<Ticket>(1).await.unwrap_err().status(), Some(410));
    assert!(owner.sandboxes().await.unwrap().items.is_empty());
}

#[tokio::test]
async fn single_records_come_back_without_clobbering_newer_ones() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = unscheduled(dir.path());
    let server = TestServer::start_with(&data, &["--config", &config]);
    let owner = server.sign_in("owner").await;
    let live = || {
        let c = rusqlite::Connection::open(data.join("accounts/demo/live.db")).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        c
    };
    let count = |sql: &str| -> i64 { live().query_row(sql, [], |r| r.get(0)).unwrap() };
    let (_, backup) = backup_now(&owner).await;
    let notes9 = count("SELECT count(*) FROM ticket_notes WHERE ticket_id = 9");
    let ticket9 = owner.get::<Ticket>(9).await.unwrap();
    assert!(notes9 > 0);
    owner.delete::<Ticket>(9).await.unwrap();
    let ticket10 = owner.get::<Ticket>(10).await.unwrap();
    owner
        .update::<Ticket>(
            10,
            &TicketPatch {
                problem: Some("changed since the backup".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let counts_before = server.counts("demo");
    let record = |kind: &str, id: i64, overwrite: bool| json!({"backup_id": backup.id, "kind": kind, "id": id, "overwrite": overwrite});

    // The deleted ticket: back with its notes; its invoice and messages, which the
    // deletion unlinked, are linked to it again.
    let (status, v) = post(&owner, "/api/v1/restores/records", record("ticket", 9, false)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["inserted"]["tickets"], 1, "{v}");
    assert_eq!(v["location"], "primary");
    let invoices9 = count("SELECT count(*) FROM invoices WHERE ticket_id = 9");
    assert!(invoices9 > 0, "the invoice was not linked again: {v}");
    assert_eq!(owner.get::<Ticket>(9).await.unwrap(), ticket9);
    assert_eq!(count("SELECT count(*) FROM ticket_notes WHERE ticket_id = 9"), notes9);
    // Nothing else moved: only ticket 9's rows came back.
    let after = server.counts("demo");
    for ((table, b), (_, a)) in counts_before.iter().zip(&after) {
        match table.as_str() {
            "tickets" => assert_eq!(a - b, 1),
            "ticket_notes" => assert_eq!(a - b, notes9),
            "attachments" | "communications" => assert!(a >= b, "{table}"),
            _ => assert_eq!(a, b, "{table} changed"),
        }
    }

    // A ticket changed since: 409 naming it, and only with overwrite is it replaced.
    let (status, v) = post(&owner, "/api/v1/restores/records", record("ticket", 10, false)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "would_overwrite");
    assert_eq!(v["error"]["conflicts"][0]["table"], "tickets");
    assert_eq!(v["error"]["conflicts"][0]["id"], 10);
    assert_eq!(
        owner.get::<Ticket>(10).await.unwrap().problem,
        "changed since the backup"
    );
    let (status, v) = post(&owner, "/api/v1/restores/records", record("ticket", 10, true)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["overwritten"]["tickets"], 1);
    assert_eq!(owner.get::<Ticket>(10).await.unwrap().problem, ticket10.problem);

    // A customer as in the backup: nothing to do.
    let (status, v) = post(&owner, "/api/v1/restores/records", record("customer", 12, false)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["inserted"]["customers"], 0);

    // A customer erased under CCPA since the backup cannot come back, nor their tickets.
    let erased = owner.get::<Customer>(13).await.unwrap();
    let their_ticket: i64 = count("SELECT min(id) FROM tickets WHERE customer_id = 13");
    owner.ccpa_delete(erased.email.as_deref().unwrap()).await.unwrap();
    let (status, v) = post(&owner, "/api/v1/restores/records", record("customer", 13, true)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "erased");
    let (status, v) = post(&owner, "/api/v1/restores/records", record("ticket", their_ticket, true)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "erased");
    assert_eq!(owner.get::<Customer>(13).await.unwrap_err().status(), Some(404));

    // A ticket whose invoice was deleted as well, and a stock item that invoice sold:
    // the invoice comes back and the payment records that pointed at it point at it
    // again; its line for the stock item, since deleted, keeps its text and loses the
    // link, as that deletion did to every other line (rather than refusing the restore).
    let (ticket, invoice, item): (i64, i64, i64) = live()
        .query_row(
            "SELECT i.ticket_id, i.id, l.inventory_id FROM invoices i JOIN invoice_lines l ON l.invoice_id = i.id
             JOIN tickets k ON k.id = i.ticket_id
             WHERE l.inventory_id IS NOT NULL AND k.customer_id NOT IN (12, 13) AND k.id NOT IN (9, 10)
             AND EXISTS (SELECT 1 FROM transactions x WHERE x.invoice_id = i.id) ORDER BY i.id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let paid_by = |invoice: i64| {
        count(&format!(
            "SELECT count(*) FROM transactions WHERE invoice_id = {invoice}"
        ))
    };
    let payments = paid_by(invoice);
    {
        let c = live();
        c.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        c.execute("DELETE FROM inventory WHERE id = ?1", [item]).unwrap();
        c.execute("DELETE FROM invoices WHERE id = ?1", [invoice]).unwrap();
    }
    assert_eq!(paid_by(invoice), 0, "the deletion unlinked the payment records");
    owner.delete::<Ticket>(ticket).await.unwrap();
    let (status, v) = post(&owner, "/api/v1/restores/records", record("ticket", ticket, false)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["inserted"]["invoices"], 1, "{v}");
    assert_eq!(v["overwritten"]["transactions"], payments, "{v}");
    assert_eq!(paid_by(invoice), payments);
    let lines = |more: &str| {
        count(&format!(
            "SELECT count(*) FROM invoice_lines WHERE invoice_id = {invoice}{more}"
        ))
    };
    assert!(lines("") > 0);
    assert_eq!(lines(&format!(" AND inventory_id = {item}")), 0);
    assert_eq!(count("SELECT count(*) FROM pragma_foreign_key_check"), 0);

    // Not in the backup, or not a kind of record: clear errors.
    let (status, _) = post(&owner, "/api/v1/restores/records", record("ticket", 999_999, false)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, v) = post(&owner, "/api/v1/restores/records", record("invoice", 1, false)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
}

#[tokio::test]
async fn a_record_restore_or_sandbox_that_fails_part_way_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = unscheduled(dir.path());
    let env = [("REPAIROPS_PANIC_AT", "record_restore.attachment_fetched,sandbox.built")];
    let server = TestServer::start_env(&data, &["--config", &config], &env);
    let owner = server.sign_in("owner").await;
    let (_, backup) = backup_now(&owner).await;
    // A ticket whose photos no other ticket shares, deleted since the backup with them.
    let account = data.join("accounts/demo");
    let (ticket, shas) = {
        let c = rusqlite::Connection::open(account.join("live.db")).unwrap();
        let ticket: i64 = c
            .query_row(
                "SELECT min(ticket_id) FROM attachments a WHERE NOT EXISTS
                 (SELECT 1 FROM attachments b WHERE b.sha256 = a.sha256 AND b.ticket_id != a.ticket_id)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let mut stmt = c
            .prepare("SELECT sha256 FROM attachments WHERE ticket_id = ?1")
            .unwrap();
        let shas: Vec<String> = stmt
            .query_map([ticket], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        (ticket, shas)
    };
    owner.delete::<Ticket>(ticket).await.unwrap();
    for sha in &shas {
        let _ = std::fs::remove_file(repairops_server::attachments::content_path(
            &account.join("attachments"),
            sha,
        ));
    }
    let before = dump(&data);
    let restore_ticket = || {
        post(
            &owner,
            "/api/v1/restores/records",
            json!({"backup_id": backup.id, "kind": "ticket", "id": ticket}),
        )
    };

    // The photo's file is fetched, then the restore stops: no row, no file, no leftover.
    let (status, v) = restore_ticket().await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("could not restore an attachment"),
        "{v}"
    );
    assert_eq!(owner.get::<Ticket>(ticket).await.unwrap_err().status(), Some(404));
    assert!(
        dump(&data) == before,
        "live data changed by a record restore that failed"
    );
    assert!(
        !account.join(".record").exists(),
        "the record restore's staging was left"
    );
    // The job is over, so the next one runs (and stops at the same point) rather than
    // being refused as still running (409).
    let (status, v) = restore_ticket().await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{v}");

    // A sandbox that stops once built: the job fails, and no sandbox stays "running".
    let job = owner.create_sandbox(backup.id).await.unwrap();
    let done = wait_job(&owner, &job).await;
    assert_eq!(done.state, JobState::Failed, "{done:?}");
    assert!(
        done.error.as_deref().unwrap_or_default().contains("internal error"),
        "{done:?}"
    );
    assert!(owner.sandboxes().await.unwrap().items.is_empty());
    let left = std::fs::read_dir(data.join("sandboxes")).map_or(0, |d| d.count());
    assert_eq!(left, 0, "the failed sandbox's files were left");
}

#[tokio::test]
async fn a_restore_drill_checks_a_backup_and_reports_failure_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = unscheduled(dir.path());
    let server = TestServer::start_with(&data, &["--config", &config]);
    let owner = server.sign_in("owner").await;
    let (_, backup) = backup_now(&owner).await;
    let (status, v) = post(&owner, &format!("/api/v1/backups/{}/verify", backup.id), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let job: Job = serde_json::from_value(v).unwrap();
    let done = wait_job(&owner, &job).await;
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    let result = done.result.unwrap();
    assert_eq!(result["passed"], true);
    let checks: Vec<String> = serde_json::from_value(result["checks"].clone()).unwrap();
    assert!(checks[0].contains("integrity check ok"), "{checks:?}");
    assert!(checks[1].contains("every one matching its SHA-256"), "{checks:?}");
    let status = owner.backup_status().await.unwrap();
    let drill = status.last_drill.unwrap();
    assert_eq!(
        (drill.passed, drill.backup_id, drill.kind.as_str()),
        (Some(true), backup.id, "manual")
    );
    assert!(drill.duration_ms.is_some());
    assert!(
        !data.join("drills").join(drill.id.to_string()).exists(),
        "scratch left behind"
    );

    // Both copies of the backup lost: the drill fails, says why, and notifies.
    std::fs::remove_dir_all(data.join("repos/primary/demo")).unwrap();
    std::fs::remove_dir_all(data.join("repos/secondary/demo")).unwrap();
    let (_, v) = post(&owner, &format!("/api/v1/backups/{}/verify", backup.id), json!({})).await;
    let job: Job = serde_json::from_value(v).unwrap();
    let done = wait_job(&owner, &job).await;
    assert_eq!(done.state, JobState::Failed, "{done:?}");
    assert!(done.error.unwrap().contains("either location"));
    let drill = owner.backup_status().await.unwrap().last_drill.unwrap();
    assert_eq!(drill.passed, Some(false));
    assert!(drill.checks[0].starts_with("fetching:"), "{:?}", drill.checks);
    let control = rusqlite::Connection::open(data.join("server.db")).unwrap();
    let notices: i64 = control
        .query_row("SELECT count(*) FROM notices WHERE kind = 'drill.failed'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(notices, 1);
}
