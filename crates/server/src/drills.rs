//! Restore drills: a backup restored into a scratch folder (`drills/{id}/`) and checked,
//! the way the product page asks shops to test their backups, by hand
//! (`POST /api/v1/backups/{id}/verify`) or monthly by the scheduler. Checks: SQLite's
//! integrity check, every table's rows against the backup's summary, every attachment
//! file's SHA-256 against its name, and every attachment row's file present. The
//! whole backup is read from storage (no local copy stands in, unlike a restore). The
//! scratch folder is removed when the drill ends; a failed drill notifies like a failed
//! backup.

use std::path::Path as FsPath;
use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use repairops_api::{Backup, Drill, ErrorBody, Job, JobState};
use repairops_vault::Progress;
use rusqlite::{OptionalExtension, params};
use serde_json::json;

use crate::app::AppState;
use crate::audit::AuditEntry;
use crate::auth::{Auth, Permission};
use crate::control::{self, AccountRow};
use crate::error::{ApiError, Path};

/// A drill is due when the last one is older than this.
pub const EVERY: chrono::Duration = chrono::Duration::days(30);

const COLUMNS: &str = "id, backup_id, state, passed, checks, location, started_at, duration_ms, kind";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Drill> {
    Ok(Drill {
        id: r.get(0)?,
        backup_id: r.get(1)?,
        state: JobState::parse(&r.get::<_, String>(2)?).unwrap_or(JobState::Failed),
        passed: r.get::<_, Option<bool>>(3)?,
        checks: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or_default(),
        location: r.get(5)?,
        started_at: DateTime::parse_from_rfc3339(&r.get::<_, String>(6)?)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default(),
        duration_ms: r.get::<_, Option<i64>>(7)?.map(|v| v as u64),
        kind: r.get(8)?,
    })
}

/// The newest drill of an account.
pub fn last(conn: &rusqlite::Connection, account_id: i64) -> rusqlite::Result<Option<Drill>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM drills WHERE account_id = ?1 ORDER BY id DESC LIMIT 1"),
        [account_id],
        from_row,
    )
    .optional()
}

/// At start-up: drills a crash interrupted are failed and their scratch folders removed.
pub fn recover(control: &crate::db::Db, data: &FsPath) {
    control.with_writer(|c| {
        let _ = c.execute(
            "UPDATE drills SET state = 'failed', passed = 0, checks = '[\"the server stopped during the drill\"]' WHERE state = 'running'",
            [],
        );
    });
    let _ = std::fs::remove_dir_all(data.join("drills"));
}

/// The checks, on a restored folder. Returns one line per check and whether all passed.
pub fn verify(dir: &FsPath, backup: &Backup) -> (bool, Vec<String>) {
    let mut lines = Vec::new();
    let mut ok = true;
    match crate::restores::check(&dir.join("live.db"), backup) {
        Ok(()) => lines.push(format!(
            "database: integrity check ok; {} tables with the rows the backup's summary lists",
            backup.summary.as_ref().map_or(0, |s| s.rows.len())
        )),
        Err(e) => {
            ok = false;
            lines.push(format!("database: {e}"));
        }
    }
    // Every attachment file's content against its name (its SHA-256).
    let mut files = 0u64;
    let mut bad = Vec::new();
    let mut stack = vec![dir.join("attachments")];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            files += 1;
            let name = e.file_name().to_string_lossy().into_owned();
            let sha = std::fs::read(&p)
                .map(|b| hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &b).as_ref()));
            if sha.as_deref().ok() != Some(name.as_str()) {
                bad.push(name);
            }
        }
    }
    if bad.is_empty() {
        lines.push(format!("attachments: {files} files, every one matching its SHA-256"));
    } else {
        ok = false;
        lines.push(format!(
            "attachments: {} of {files} files do not match their SHA-256: {}",
            bad.len(),
            bad.join(", ")
        ));
    }
    // Every attachment row has its file.
    let missing: Result<Vec<String>, String> = (|| {
        let conn =
            rusqlite::Connection::open_with_flags(dir.join("live.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(|e| e.to_string())?;
        let mut stmt = conn
            .prepare("SELECT DISTINCT sha256 FROM attachments")
            .map_err(|e| e.to_string())?;
        let shas = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| e.to_string())?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| e.to_string())?;
        Ok(shas
            .into_iter()
            .filter(|s| !crate::attachments::content_path(&dir.join("attachments"), s).exists())
            .collect())
    })();
    match missing {
        Ok(m) if m.is_empty() => lines.push("attachment records: every one has its file".into()),
        Ok(m) => {
            ok = false;
            lines.push(format!(
                "attachment records: {} files missing: {}",
                m.len(),
                m.join(", ")
            ));
        }
        Err(e) => {
            ok = false;
            lines.push(format!("attachment records: cannot be read: {e}"));
        }
    }
    (ok, lines)
}

/// Starts a drill of a backup (a job); `kind` is manual or scheduled.
pub async fn start(
    app: &AppState,
    account: &AccountRow,
    backup: Backup,
    kind: &str,
    by: &str,
) -> Result<Job, ApiError> {
    let handle = app.jobs.start(account.id, &account.account.slug, "drill")?;
    let now = app.clock.now();
    let (account_id, backup_id, kind_s) = (account.id, backup.id, kind.to_string());
    let id = app
        .control
        .write(move |c| {
            c.execute(
                "INSERT INTO drills (account_id, backup_id, kind, state, started_at) VALUES (?1, ?2, ?3, 'running', ?4)",
                params![account_id, backup_id, kind_s, now.to_rfc3339()],
            )
            .map_err(control::db_err)?;
            Ok(c.last_insert_rowid())
        })
        .await?;
    let job = handle
        .snapshot()
        .ok_or_else(|| ApiError::internal("start the drill", "job vanished"))?;
    let (app2, account, by) = (app.clone(), account.clone(), by.to_string());
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let dir = app2.config.data.join("drills").join(id.to_string());
        handle.phase("fetching", backup.size_bytes);
        let within = crate::jobs::Within {
            job: &handle,
            phase: "fetching",
        };
        // A panic (a bug) fails the drill like any error, its files removed below.
        let checked = crate::jobs::panic_as_error("restore drill", || {
            let location = crate::restores::fetch(&app2.config, &account.account.slug, &backup, &dir, None, &within)
                .map_err(|e| format!("fetching: {e}"))?;
            handle.phase("checking", None);
            let (ok, lines) = verify(&dir, &backup);
            Ok((ok, lines, Some(location)))
        });
        let (passed, checks, location) = checked.unwrap_or_else(|e| (false, vec![e], None));
        let _ = std::fs::remove_dir_all(&dir);
        let ms = started.elapsed().as_millis() as i64;
        app2.control.with_writer(|c| {
            let _ = c.execute(
                "UPDATE drills SET state = ?1, passed = ?2, checks = ?3, location = ?4, duration_ms = ?5 WHERE id = ?6",
                params![
                    if passed { "succeeded" } else { "failed" },
                    passed,
                    serde_json::to_string(&checks).unwrap_or_default(),
                    location,
                    ms,
                    id
                ],
            );
        });
        let entry = AuditEntry {
            at: control::now_text(),
            account: account.account.slug.clone(),
            user: by,
            event_type: "restore".into(),
            action: "restore drill".into(),
            resource: format!("/api/v1/backups/{backup_id}"),
            ip: "-".into(),
            result: if passed { "success" } else { "failure" }.into(),
            detail: checks.join("; "),
        };
        app2.audit_blocking(&entry);
        let result = json!({"drill_id": id, "backup_id": backup_id, "passed": passed, "checks": checks, "duration_ms": ms, "location": location});
        if passed {
            handle.succeed(result);
        } else {
            crate::notify::notify(
                &app2,
                &account,
                "drill.failed",
                &format!("drill-{id}"),
                json!({"drill_id": id, "backup_id": backup_id, "error": checks.join("; ")}),
            );
            handle.fail(format!(
                "the restore drill of backup {backup_id} failed: {}",
                checks.join("; ")
            ));
        }
    });
    Ok(job)
}

#[utoipa::path(post, path = "/api/v1/backups/{id}/verify", tag = "backups", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 202, body = Job), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 423, body = ErrorBody)))]
pub async fn create(State(app): State<AppState>, auth: Auth, Path(id): Path<i64>) -> Result<Response, ApiError> {
    auth.require(Permission::RunBackups)?;
    auth.require_writable()?;
    let backup = crate::backup_api::find_backup(&app, auth.account.id, id).await?;
    if backup.state != JobState::Succeeded {
        return Err(ApiError::invalid(format!(
            "backup {id} did not complete, so there is nothing to test"
        )));
    }
    let job = start(&app, &auth.account, backup, "manual", &auth.identity.email).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(job)).into_response())
}

/// The monthly drill: for each account whose last drill (or, before the first, whose
/// first backup) is 30 days old, a drill of its newest completed backup.
pub async fn tick(app: &AppState, now: DateTime<Utc>) {
    let Ok(accounts) = app
        .control
        .read(|c| control::all_accounts(c).map_err(control::db_err))
        .await
    else {
        return;
    };
    for account in accounts {
        let id = account.id;
        let due = app
            .control
            .read(move |c| {
                let last = last(c, id).map_err(control::db_err)?;
                let newest: Option<i64> = c
                    .query_row(
                        "SELECT id FROM backups WHERE account_id = ?1 AND state = 'succeeded' AND deleted_at IS NULL ORDER BY id DESC LIMIT 1",
                        [id],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(control::db_err)?;
                // The first drill comes a month after the first backup, then monthly.
                let since = match last {
                    Some(d) => Some(d.started_at),
                    None => c
                        .query_row(
                            "SELECT min(started_at) FROM backups WHERE account_id = ?1 AND state = 'succeeded'",
                            [id],
                            |r| r.get::<_, Option<String>>(0),
                        )
                        .map_err(control::db_err)?
                        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                        .map(|t| t.with_timezone(&Utc)),
                };
                Ok(newest.filter(|_| since.is_some_and(|t| now - t >= EVERY)))
            })
            .await
            .ok()
            .flatten();
        let Some(backup_id) = due else { continue };
        let Ok(backup) = crate::backup_api::find_backup(app, id, backup_id).await else {
            continue;
        };
        if let Err(e) = start(app, &account, backup, "scheduled", "scheduler").await {
            tracing::info!(account = %account.account.slug, error = %e.message, "monthly drill not started now");
        }
    }
}
