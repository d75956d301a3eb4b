//! Backups driven in-process with a controllable clock: the schedule, retention at plan
//! boundaries, manual backups surviving retention, and a backup taken while a writer
//! keeps writing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use repairops_api::{BackupKind, JobState, Plan};
use repairops_server::app::{App, AppState, Clock};
use repairops_server::backup_api::backup_status;
use repairops_server::backup_jobs::{notice_size, start_backup, tick};
use repairops_server::config::Config;
use repairops_server::control;

struct FakeClock(Mutex<DateTime<Utc>>);

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

impl FakeClock {
    fn set(&self, t: &str) {
        *self.0.lock().unwrap() = utc(t);
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

struct Harness {
    app: AppState,
    clock: Arc<FakeClock>,
    _dir: tempfile::TempDir,
}

fn harness(plan: Plan, tz: &str) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data: dir.path().join("data"),
        ..Config::default()
    };
    config.backup.schedule = false;
    repairops_server::seed::seed(&config, "shop", plan, tz, repairops_server::seed::Size::Small).unwrap();
    let clock = Arc::new(FakeClock(Mutex::new(utc("2026-01-01T00:00:00Z"))));
    let app = Arc::new(App::open(config, clock.clone()).unwrap());
    Harness { app, clock, _dir: dir }
}

impl Harness {
    async fn account(&self) -> control::AccountRow {
        self.app
            .control
            .read(|c| Ok(control::account_by_slug(c, "shop").unwrap().unwrap()))
            .await
            .unwrap()
    }

    /// Waits until no job runs.
    async fn settle(&self) {
        let id = self.account().await.id;
        for _ in 0..600 {
            if self.app.jobs.running(id).is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("a backup did not finish");
    }

    async fn backup_at(&self, t: &str, kind: BackupKind) {
        self.clock.set(t);
        let account = self.account().await;
        start_backup(&self.app, &account, kind, Some(utc(t))).await.unwrap();
        self.settle().await;
    }

    /// (kind, started_at) of the backups the catalog still lists, oldest first.
    async fn catalog(&self) -> Vec<(String, String, String)> {
        self.app
            .control
            .read(|c| {
                let mut stmt = c
                    .prepare("SELECT kind, started_at, state FROM backups WHERE deleted_at IS NULL ORDER BY started_at")
                    .unwrap();
                Ok(stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect())
            })
            .await
            .unwrap()
    }

    /// Snapshot times and kinds in a repository.
    fn snapshots(&self, which: &str) -> Vec<(String, DateTime<Utc>)> {
        let locations = repairops_server::backups::locations(&self.app.config, "shop").unwrap();
        let loc = if which == "primary" {
            &locations.primary
        } else {
            &locations.secondary
        };
        let repo = repairops_server::backups::open_or_init(loc, &locations.key).unwrap();
        repo.snapshots()
            .unwrap()
            .into_iter()
            .map(|(_, s)| (s.tags.get("kind").cloned().unwrap_or_default(), s.time))
            .collect()
    }
}

#[tokio::test]
async fn the_scheduler_runs_at_two_local_across_a_dst_change_and_catches_up_once() {
    let h = harness(Plan::Pro, "America/Chicago");
    // Never backed up: the first tick is due (a catch-up), the second is not.
    h.clock.set("2026-03-07T09:00:00Z");
    assert_eq!(tick(&h.app, utc("2026-03-07T09:00:00Z")).await, vec!["shop"]);
    h.settle().await;
    assert!(tick(&h.app, utc("2026-03-07T12:00:00Z")).await.is_empty());
    // 2026-03-08: 02:00 does not exist in Chicago; the run is at the jump, 08:00 UTC.
    assert!(tick(&h.app, utc("2026-03-08T07:59:00Z")).await.is_empty());
    h.clock.set("2026-03-08T08:00:00Z");
    assert_eq!(tick(&h.app, utc("2026-03-08T08:00:00Z")).await, vec!["shop"]);
    h.settle().await;
    assert!(tick(&h.app, utc("2026-03-08T20:00:00Z")).await.is_empty());
    // Down for five days: one catch-up at start-up, not five.
    h.clock.set("2026-03-13T15:00:00Z");
    assert_eq!(tick(&h.app, utc("2026-03-13T15:00:00Z")).await, vec!["shop"]);
    h.settle().await;
    assert!(tick(&h.app, utc("2026-03-13T15:01:00Z")).await.is_empty());
    let catalog = h.catalog().await;
    assert_eq!(catalog.len(), 3, "{catalog:?}");
    assert!(
        catalog.iter().all(|(k, _, s)| k == "scheduled" && s == "succeeded"),
        "{catalog:?}"
    );
    // The status names the next run in shop time.
    let _ = h.account().await;
}

#[tokio::test]
async fn retention_follows_the_plan_and_manual_backups_survive_it() {
    let h = harness(Plan::Starter, "Europe/Berlin"); // 30 days
    h.backup_at("2026-04-01T00:00:00Z", BackupKind::Manual).await; // 60 days before "now"
    h.backup_at("2026-04-20T00:00:00Z", BackupKind::Scheduled).await; // 41 days
    h.backup_at("2026-04-30T00:00:00Z", BackupKind::Safety).await; // 31 days: past a safety backup's 30
    h.backup_at("2026-04-30T00:05:00Z", BackupKind::Scheduled).await; // local 2026-04-30: 31 days
    h.backup_at("2026-05-01T00:00:00Z", BackupKind::Scheduled).await; // local 2026-05-01: exactly 30 days
    // "Now" is 2026-05-31 local; the scheduled run applies retention.
    h.backup_at("2026-05-31T00:00:00Z", BackupKind::Scheduled).await;
    let kinds_times: Vec<(String, String)> = h
        .catalog()
        .await
        .into_iter()
        .map(|(k, t, _)| (k, t[..16].to_string()))
        .collect();
    assert_eq!(
        kinds_times,
        vec![
            ("manual".to_string(), "2026-04-01T00:00".to_string()),
            ("scheduled".to_string(), "2026-05-01T00:00".to_string()),
            ("scheduled".to_string(), "2026-05-31T00:00".to_string()),
        ],
        "retention kept the wrong backups"
    );
    for which in ["primary", "secondary"] {
        let snaps = h.snapshots(which);
        let kinds: Vec<&str> = snaps.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kinds, vec!["manual", "scheduled", "scheduled"], "{which}: {snaps:?}");
    }
}

#[tokio::test]
async fn runs_that_fail_for_longer_than_the_plan_keeps_leave_the_last_good_backup_listed() {
    let h = harness(Plan::Starter, "UTC"); // 30 days
    h.backup_at("2026-03-01T02:00:00Z", BackupKind::Scheduled).await;
    // Both locations become unusable (a file where each repository's folder was).
    let locations = repairops_server::backups::locations(&h.app.config, "shop").unwrap();
    let mut moved = Vec::new();
    for location in [&locations.primary, &locations.secondary] {
        let repairops_vault::Location::Local(path) = location else {
            panic!("the test's locations are local folders")
        };
        let aside = path.with_extension("aside");
        std::fs::rename(path, &aside).unwrap();
        std::fs::write(path, b"not a folder").unwrap();
        moved.push((path.clone(), aside));
    }
    // Sixty days later the scheduled run fails in both, and retention runs after it.
    h.backup_at("2026-04-30T02:00:00Z", BackupKind::Scheduled).await;
    // Retried an hour later for the same 02:00, failing again.
    h.clock.set("2026-04-30T03:05:00Z");
    assert_eq!(tick(&h.app, utc("2026-04-30T03:05:00Z")).await, vec!["shop"]);
    h.settle().await;
    let catalog = h.catalog().await;
    let states: Vec<(&str, &str)> = catalog.iter().map(|(_, t, s)| (&t[..10], s.as_str())).collect();
    assert_eq!(
        states,
        [
            ("2026-03-01", "succeeded"),
            ("2026-04-30", "failed"),
            ("2026-04-30", "failed")
        ],
        "the last backup that succeeded is still listed, and restorable"
    );
    let failure_notices: i64 = h
        .app
        .control
        .read(|c| {
            Ok(
                c.query_row("SELECT count(*) FROM notices WHERE kind = 'backup.failed'", [], |r| {
                    r.get(0)
                })
                .unwrap(),
            )
        })
        .await
        .unwrap();
    assert_eq!(
        failure_notices, 1,
        "one notice (and email) for the night, not one per retry"
    );
    // A day and more of hourly retries fills the last 30 with failures; the dashboard
    // still says when the last good backup was.
    let mut at = utc("2026-04-30T04:05:00Z");
    for _ in 0..30 {
        h.clock.set(&at.to_rfc3339());
        assert_eq!(tick(&h.app, at).await, vec!["shop"]);
        h.settle().await;
        at += chrono::Duration::hours(1);
    }
    let status = backup_status(&h.app, &h.account().await).await.unwrap();
    assert!(status.history.iter().all(|b| b.state == JobState::Failed));
    let last = status.last.expect("the last good backup");
    assert_eq!(last.started_at, utc("2026-03-01T02:00:00Z"));
    assert!(
        status
            .errors
            .iter()
            .any(|e| e.contains("completed is from 2026-03-01 02:00")),
        "{:?}",
        status.errors
    );
    for (path, aside) in moved {
        std::fs::remove_file(&path).unwrap();
        std::fs::rename(aside, path).unwrap();
    }
    for which in ["primary", "secondary"] {
        assert_eq!(h.snapshots(which).len(), 1, "{which} still holds it");
    }
}

#[tokio::test]
async fn every_backup_is_audited_and_the_large_notice_comes_once_while_data_stays_large() {
    let h = harness(Plan::Pro, "UTC");
    h.backup_at("2026-03-01T02:00:00Z", BackupKind::Scheduled).await;
    h.backup_at("2026-03-01T05:00:00Z", BackupKind::Manual).await;
    let audited: Vec<(String, String, String, String)> = h
        .app
        .control
        .read(|c| {
            let mut stmt = c
                .prepare(
                    "SELECT user, action, resource, result FROM audit_log WHERE event_type = 'backup' ORDER BY seq",
                )
                .unwrap();
            Ok(stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect())
        })
        .await
        .unwrap();
    let actions: Vec<(&str, &str, &str)> = audited
        .iter()
        .map(|(user, action, _, result)| (user.as_str(), action.as_str(), result.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("server", "scheduled backup", "success"),
            ("server", "manual backup", "success")
        ]
    );
    assert!(audited[0].2.starts_with("/api/v1/backups/"));

    // Over 500 MB for three nights, under, then over again: told twice, not four times.
    let account = h.account().await;
    for (backup_id, size) in [
        (11, 600_000_000),
        (12, 610_000_000),
        (13, 620_000_000),
        (14, 400_000_000),
        (15, 650_000_000),
    ] {
        notice_size(&h.app, &account, backup_id, size);
    }
    let (events, _) = h.app.jobs.events().subscribe(account.id, Some(0));
    let told: Vec<i64> = events
        .iter()
        .filter(|e| e.kind == "backup.large")
        .map(|e| e.data["backup_id"].as_i64().unwrap())
        .collect();
    assert_eq!(told, [11, 15]);
}

#[tokio::test]
async fn a_backup_under_continuous_writes_is_consistent_and_never_blocks_the_writer() {
    let h = harness(Plan::Pro, "UTC");
    let live = h.app.config.account_dir("shop").join("live.db");
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let busy_errors = Arc::new(AtomicU64::new(0));
    let worst_ms = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, written, busy, worst) = (stop.clone(), written.clone(), busy_errors.clone(), worst_ms.clone());
        std::thread::spawn(move || {
            let conn = repairops_server::db::open_connection(&live).unwrap();
            // No busy timeout: any wait for a lock shows as an error here.
            conn.busy_timeout(Duration::from_millis(0)).unwrap();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let started = std::time::Instant::now();
                // One ticket and its two notes in one transaction: a backup must hold all or none.
                let result = conn.execute_batch(&format!(
                    "BEGIN IMMEDIATE;
                     INSERT INTO tickets (shop_id, customer_id, device_make, device_model, problem, status, created_at, updated_at)
                         VALUES (1, 1, 'Writer', 'W{n}', 'continuous write', 'New', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
                     INSERT INTO ticket_notes (ticket_id, body, created_at, updated_at) VALUES (last_insert_rowid(), 'note 1', 'x', 'x');
                     INSERT INTO ticket_notes (ticket_id, body, created_at, updated_at)
                         SELECT id, 'note 2', 'x', 'x' FROM tickets WHERE device_model = 'W{n}';
                     COMMIT;"
                ));
                match result {
                    Ok(()) => {
                        written.fetch_add(1, Ordering::Relaxed);
                        worst.fetch_max(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                    }
                    Err(_) => {
                        busy.fetch_add(1, Ordering::Relaxed);
                        let _ = conn.execute_batch("ROLLBACK;");
                    }
                }
                // A busy shop, not a benchmark: leave the backup some CPU.
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let before = written.load(Ordering::Relaxed);
    h.backup_at("2026-06-01T12:00:00Z", BackupKind::Manual).await;
    let during = written.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    println!(
        "writes during the backup: {during}; worst write {} ms",
        worst_ms.load(Ordering::Relaxed)
    );
    assert!(
        during > 10,
        "the writer made almost no progress during the backup ({during})"
    );
    assert_eq!(
        busy_errors.load(Ordering::Relaxed),
        0,
        "the writer had to wait for a lock"
    );

    // Restore the database from the primary and check it.
    let locations = repairops_server::backups::locations(&h.app.config, "shop").unwrap();
    let repo = repairops_server::backups::open_or_init(&locations.primary, &locations.key).unwrap();
    let (_, snap) = repo.find_snapshot("latest").unwrap();
    let index = repo.load_index().unwrap();
    let out = tempfile::tempdir().unwrap();
    repairops_vault::restore(
        &repo,
        &index,
        &snap,
        out.path(),
        Some("live.db"),
        &repairops_vault::NoProgress,
    )
    .unwrap();
    let db = rusqlite::Connection::open(out.path().join("live.db")).unwrap();
    let check: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let half: i64 = db
        .query_row(
            "SELECT count(*) FROM tickets t WHERE device_make = 'Writer' AND (SELECT count(*) FROM ticket_notes n WHERE n.ticket_id = t.id) != 2",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(half, 0, "the backup holds half a transaction");
    let state = h.catalog().await.pop().unwrap().2;
    assert_eq!(state, JobState::Succeeded.as_str());
}
