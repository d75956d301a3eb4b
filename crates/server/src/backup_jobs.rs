//! Backups as the server runs them: a backup job (manual, scheduled, or the safety
//! backup a restore takes first), its row in the catalog and its notices, retention
//! after each scheduled run, and the scheduler that starts every account's backup at
//! 02:00 in its own time zone. The HTTP side is `backup_api`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use repairops_api::*;
use rusqlite::{OptionalExtension, params};
use serde_json::json;

use crate::app::AppState;
use crate::backup_api::parse_time;
use crate::backups::{self, BackupInput};
use crate::control::{self, AccountRow, account_tz};
use crate::error::ApiError;
use crate::schedule;

/// Live data larger than this is worth a notice (the product page's 500 MB).
pub const LARGE_BYTES: u64 = 500_000_000;
/// A failed scheduled backup is tried again after this long.
pub const RETRY_AFTER: chrono::Duration = chrono::Duration::hours(1);
/// A scheduled backup missing this long after its instant is "delayed".
pub const DELAY: chrono::Duration = chrono::Duration::hours(2);

/// The settings that go into a backup beside the data (not passwords or tokens).
fn settings_json(account: &Account) -> Vec<u8> {
    serde_json::to_vec_pretty(&json!({
        "account": account.slug,
        "name": account.name,
        "plan": account.plan,
        "timezone": account.timezone,
        "admin_email": account.admin_email,
    }))
    .unwrap_or_default()
}

/// Starts a backup job; the work runs on a blocking thread.
pub async fn start_backup(
    app: &AppState,
    account: &AccountRow,
    kind: BackupKind,
    scheduled_for: Option<DateTime<Utc>>,
) -> Result<Job, ApiError> {
    let slug = account.account.slug.clone();
    let handle = app.jobs.start(account.id, &slug, "backup")?;
    let now = app.clock.now();
    let account_id = account.id;
    let backup_id = app
        .control
        .write(move |c| {
            c.execute(
                "INSERT INTO backups (account_id, kind, state, scheduled_for, started_at) VALUES (?1, ?2, 'running', ?3, ?4)",
                params![account_id, kind.as_str(), scheduled_for.map(|t| t.to_rfc3339()), now.to_rfc3339()],
            )
            .map_err(control::db_err)?;
            Ok(c.last_insert_rowid())
        })
        .await?;
    let job = handle
        .snapshot()
        .ok_or_else(|| ApiError::internal("start the backup", "job vanished"))?;
    let app2 = app.clone();
    let account = account.clone();
    tokio::spawn(async move {
        let app3 = app2.clone();
        let acct = account.clone();
        let outcome =
            tokio::task::spawn_blocking(move || run_backup_blocking(&app3, &acct, kind, backup_id, now, handle))
                .await
                .unwrap_or_else(|e| Err(format!("the backup task crashed: {e}")));
        if let Err(e) = outcome {
            tracing::error!(account = %account.account.slug, error = %e, "backup failed");
        }
    });
    Ok(job)
}

fn run_backup_blocking(
    app: &AppState,
    account: &AccountRow,
    kind: BackupKind,
    backup_id: i64,
    now: DateTime<Utc>,
    handle: crate::jobs::JobHandle,
) -> Result<(), String> {
    match take_backup(app, account, kind, backup_id, now, &handle) {
        Ok(()) => {
            handle.succeed(json!({"backup_id": backup_id}));
            Ok(())
        }
        Err(e) => {
            handle.fail(e.clone());
            Err(e)
        }
    }
}

/// Records a backup as running in the catalog (for work that takes one inside its own
/// job, such as the safety backup before a restore); returns its id.
pub fn begin_backup(app: &AppState, account_id: i64, kind: BackupKind, now: DateTime<Utc>) -> Result<i64, String> {
    app.control.with_writer(|c| {
        c.execute(
            "INSERT INTO backups (account_id, kind, state, started_at) VALUES (?1, ?2, 'running', ?3)",
            params![account_id, kind.as_str(), now.to_rfc3339()],
        )
        .map(|_| c.last_insert_rowid())
        .map_err(|e| format!("cannot record the backup: {e}"))
    })
}

/// Forgets again, in both locations, the deleted backups a location kept when they
/// were deleted (`purge_pending`); each one that every location let go is done with.
pub fn purge_deleted(app: &AppState, account: &AccountRow) {
    let pending: Vec<Backup> = app.control.with_writer(|c| {
        let Ok(mut stmt) = c.prepare(&format!(
            "SELECT {} FROM backups WHERE account_id = ?1 AND deleted_at IS NOT NULL AND purge_pending = 1",
            crate::backup_api::BACKUP_COLUMNS
        )) else {
            return Vec::new();
        };
        stmt.query_map([account.id], crate::backup_api::backup_from_row)
            .map(|rows| rows.flatten().collect())
            .unwrap_or_default()
    });
    for backup in pending {
        match backups::forget_everywhere(&app.config, &account.account.slug, &backup) {
            Ok(()) => app.control.with_writer(|c| {
                let _ = c.execute("UPDATE backups SET purge_pending = 0 WHERE id = ?1", [backup.id]);
            }),
            Err(e) => tracing::warn!(backup = backup.id, error = %e, "a deleted backup is still kept"),
        }
    }
}

/// What a backup's failure notices are told once for: a scheduled run's 02:00, so
/// the hourly retries of a failing night send one email, not one an hour; any other
/// backup's own id.
fn notice_key(app: &AppState, backup_id: i64) -> String {
    let scheduled_for: Option<String> = app.control.with_writer(|c| {
        c.query_row("SELECT scheduled_for FROM backups WHERE id = ?1", [backup_id], |r| {
            r.get(0)
        })
        .ok()
        .flatten()
    });
    match scheduled_for {
        Some(at) => format!("scheduled-{at}"),
        None => format!("backup-{backup_id}"),
    }
}

/// Tells the shop once that its data passed [`LARGE_BYTES`], not after every backup
/// while it stays over; once it is back under, passing again is told again.
pub fn notice_size(app: &AppState, account: &AccountRow, backup_id: i64, size: u64) {
    if size > LARGE_BYTES {
        crate::notify::notify(
            app,
            account,
            "backup.large",
            "over",
            json!({"backup_id": backup_id, "size_bytes": size}),
        );
    } else {
        crate::notify::rearm(app, account, "backup.large");
    }
}

/// Takes a backup the catalog lists as `backup_id`: both locations, the catalog row,
/// notices, the audit log; retention after a scheduled one. Err says why it failed
/// everywhere.
pub fn take_backup(
    app: &AppState,
    account: &AccountRow,
    kind: BackupKind,
    backup_id: i64,
    now: DateTime<Utc>,
    handle: &dyn repairops_vault::Progress,
) -> Result<(), String> {
    let outcome = take_backup_unaudited(app, account, kind, backup_id, now, handle);
    // Who asked is in the log already for a manual one (its request); this is what
    // the server did, for every backup, scheduled ones included.
    let (result, detail) = match &outcome {
        Ok(detail) => ("success", detail.clone()),
        Err(e) => ("failure", e.clone()),
    };
    let entry = crate::audit::AuditEntry {
        at: control::now_text(),
        account: account.account.slug.clone(),
        user: "server".into(),
        event_type: "backup".into(),
        action: format!("{} backup", kind.as_str()),
        resource: format!("/api/v1/backups/{backup_id}"),
        ip: "-".into(),
        result: result.into(),
        detail,
    };
    app.audit_blocking(&entry);
    outcome.map(|_| ())
}

/// [`take_backup`] without its audit entry: Ok says what was stored where.
fn take_backup_unaudited(
    app: &AppState,
    account: &AccountRow,
    kind: BackupKind,
    backup_id: i64,
    now: DateTime<Utc>,
    handle: &dyn repairops_vault::Progress,
) -> Result<String, String> {
    let slug = &account.account.slug;
    // Deleted backups a location kept go first, so this run's copy to the secondary
    // cannot bring them back.
    purge_deleted(app, account);
    let result = backups::locations(&app.config, slug).and_then(|locations| {
        let run = backups::run(
            &locations,
            BackupInput {
                slug,
                account_dir: app.config.account_dir(slug),
                kind,
                settings_json: settings_json(&account.account),
                time: now,
            },
            handle,
        )?;
        // Retention runs even when the backup failed: a full location needs it most.
        if kind == BackupKind::Scheduled {
            retention(app, account, &locations, handle);
        }
        Ok(run)
    });
    let finished = app.clock.now();
    match result {
        Ok(run) => {
            let ok = run.succeeded();
            let error = (!ok).then(|| {
                run.locations
                    .iter()
                    .filter_map(|l| l.error.as_ref().map(|e| format!("{}: {e}", l.name)))
                    .collect::<Vec<_>>()
                    .join("; ")
            });
            let size = run.summary.size();
            app.control.with_writer(|c| {
                c.execute(
                    "UPDATE backups SET state = ?1, finished_at = ?2, duration_ms = ?3, size_bytes = ?4, added_bytes = ?5,
                         summary = ?6, locations = ?7, warnings = ?8, error = ?9 WHERE id = ?10",
                    params![
                        if ok { "succeeded" } else { "failed" },
                        finished.to_rfc3339(),
                        run.duration_ms as i64,
                        size as i64,
                        run.added_bytes as i64,
                        serde_json::to_string(&run.summary).unwrap_or_default(),
                        serde_json::to_string(&run.locations).unwrap_or_default(),
                        serde_json::to_string(&run.warnings).unwrap_or_default(),
                        error,
                        backup_id
                    ],
                )
            })
            .map_err(|e| e.to_string())?;
            let key = notice_key(app, backup_id);
            for l in run.locations.iter().filter(|l| !l.ok) {
                crate::notify::notify(
                    app,
                    account,
                    "location.down",
                    &format!("{key}-{}", l.name),
                    json!({"location": l.name, "url": l.url, "error": l.error, "backup_id": backup_id}),
                );
            }
            if ok {
                notice_size(app, account, backup_id, size);
                Ok(format!(
                    "{size} bytes; {}",
                    run.locations
                        .iter()
                        .map(|l| format!("{} {}", l.name, if l.ok { "ok" } else { "failed" }))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            } else {
                let message = error.unwrap_or_else(|| "no location took the backup".into());
                crate::notify::notify(
                    app,
                    account,
                    "backup.failed",
                    &key,
                    json!({"backup_id": backup_id, "error": message}),
                );
                Err(format!("The backup failed in every location: {message}"))
            }
        }
        Err(e) => {
            app.control.with_writer(|c| {
                let _ = c.execute(
                    "UPDATE backups SET state = 'failed', finished_at = ?1, error = ?2 WHERE id = ?3",
                    params![finished.to_rfc3339(), e, backup_id],
                );
            });
            crate::notify::notify(
                app,
                account,
                "backup.failed",
                &notice_key(app, backup_id),
                json!({"backup_id": backup_id, "error": e}),
            );
            Err(format!("The backup failed: {e}"))
        }
    }
}

/// Retention after a scheduled backup, in both locations; failures are warnings (the
/// backup itself succeeded) and the next run tries again.
fn retention(
    app: &AppState,
    account: &AccountRow,
    locations: &backups::Locations,
    progress: &dyn repairops_vault::Progress,
) {
    let tz = account_tz(&account.account);
    let days = account.account.plan.retention_days();
    let now = app.clock.now();
    for location in [&locations.primary, &locations.secondary] {
        match backups::open_existing(location, &locations.key) {
            Ok(repo) => {
                if let Err(e) = backups::apply_retention(&repo, tz, days, now, progress) {
                    tracing::warn!(%location, error = %e, "retention failed");
                }
            }
            Err(e) => tracing::warn!(%location, error = %e, "retention skipped: location unreachable"),
        }
    }
    // The catalog follows the same rule, and keeps the newest scheduled backup that
    // succeeded as each location keeps its newest scheduled snapshot.
    let rows: Vec<(i64, String, String, String)> = app.control.with_writer(|c| {
        let mut stmt = match c.prepare("SELECT id, kind, started_at, state FROM backups WHERE account_id = ?1 AND deleted_at IS NULL AND kind IN ('scheduled', 'safety') ORDER BY started_at, id") {
            Ok(s) => s,
            Err(_) => return Vec::new(),
        };
        stmt.query_map([account.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .map(|rows| rows.flatten().collect())
            .unwrap_or_default()
    });
    let newest_scheduled = rows
        .iter()
        .rev()
        .find(|(_, kind, _, state)| kind == "scheduled" && state == "succeeded")
        .map(|(id, ..)| *id);
    let today = schedule::local_date(tz, now);
    for (id, kind, started, _) in rows {
        if Some(id) == newest_scheduled {
            continue;
        }
        let Some(t) = parse_time(Some(started)) else { continue };
        let keep = if kind == "safety" { 30 } else { i64::from(days) };
        if (today - schedule::local_date(tz, t)).num_days() > keep {
            app.control.with_writer(|c| {
                let _ = c.execute(
                    "UPDATE backups SET deleted_at = ?1 WHERE id = ?2",
                    params![now.to_rfc3339(), id],
                );
            });
        }
    }
}

/// One pass of the scheduler at `now`: starts every account's due backup, and notices
/// backups delayed more than two hours. Returns the accounts whose backup it started.
pub async fn tick(app: &AppState, now: DateTime<Utc>) -> Vec<String> {
    let accounts = match app
        .control
        .read(|c| control::all_accounts(c).map_err(control::db_err))
        .await
    {
        Ok(a) => a,
        Err(_) => return Vec::new(),
    };
    let mut started = Vec::new();
    for account in accounts {
        let tz = account_tz(&account.account);
        let id = account.id;
        // The last successful scheduled run covers its 02:00; the last attempt of any
        // outcome paces retries (a failed run is retried an hour later, not every tick).
        let (last_success, last_attempt): (Option<String>, Option<(String, String)>) = app
            .control
            .read(move |c| {
                let success = c
                    .query_row(
                        "SELECT COALESCE(scheduled_for, started_at) FROM backups WHERE account_id = ?1 AND kind = 'scheduled' AND state = 'succeeded' ORDER BY id DESC LIMIT 1",
                        [id],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(control::db_err)?;
                let attempt = c
                    .query_row(
                        "SELECT started_at, state FROM backups WHERE account_id = ?1 AND kind = 'scheduled' ORDER BY id DESC LIMIT 1",
                        [id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()
                    .map_err(control::db_err)?;
                Ok((success, attempt))
            })
            .await
            .unwrap_or((None, None));
        let last_run = parse_time(last_success);
        let due_at = schedule::last_due(tz, now);
        let retry_wait = last_attempt.as_ref().is_some_and(|(started, state)| {
            state == "failed" && parse_time(Some(started.clone())).is_some_and(|t| now - t < RETRY_AFTER)
        });
        if schedule::is_due(tz, last_run, now)
            && !retry_wait
            && account.account.mode == AccountMode::Normal
            && start_backup(app, &account, BackupKind::Scheduled, Some(due_at))
                .await
                .is_ok()
        {
            started.push(account.account.slug.clone());
        }
        // Delayed: two hours after the scheduled instant with no successful run for it.
        // An account that never had a scheduled backup is new, not late.
        let done_for_due = last_run.is_some_and(|t| t >= due_at);
        if now - due_at > DELAY && !done_for_due && last_attempt.is_some() {
            let (app2, account2) = (app.clone(), account.clone());
            let _ = tokio::task::spawn_blocking(move || {
                crate::notify::notify(
                    &app2,
                    &account2,
                    "backup.delayed",
                    &due_at.to_rfc3339(),
                    json!({"scheduled_for": due_at}),
                );
            })
            .await;
        }
    }
    started
}

/// Runs the scheduler every 30 seconds until the process ends.
pub fn spawn_scheduler(app: AppState) {
    tokio::spawn(async move {
        loop {
            let now = app.clock.now();
            tick(&app, now).await;
            crate::drills::tick(&app, now).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    });
}
