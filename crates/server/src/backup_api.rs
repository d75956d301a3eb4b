//! Backups over HTTP: start one (a job), list the catalog in `server.db`, read or
//! delete one, the status the dashboard shows, jobs and their event stream, the storage
//! locations, and rotating the vault key. The jobs themselves and the 02:00 scheduler
//! are in `backup_jobs`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use repairops_api::*;
use rusqlite::{OptionalExtension, params};
use serde_json::json;

use crate::app::AppState;
use crate::auth::{Auth, Permission};
use crate::backup_jobs::{DELAY, start_backup};
use crate::backups;
use crate::control;
use crate::error::{ApiError, Deferred, Path, Query};
use crate::schedule;

pub(crate) fn parse_time(s: Option<String>) -> Option<DateTime<Utc>> {
    s.and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.with_timezone(&Utc))
}

pub const BACKUP_COLUMNS: &str = "id, kind, state, started_at, finished_at, duration_ms, size_bytes, added_bytes, summary, locations, warnings, error";

pub fn backup_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Backup> {
    Ok(Backup {
        id: r.get(0)?,
        kind: BackupKind::parse(&r.get::<_, String>(1)?).unwrap_or(BackupKind::Manual),
        state: JobState::parse(&r.get::<_, String>(2)?).unwrap_or(JobState::Failed),
        started_at: parse_time(r.get(3)?).unwrap_or_default(),
        finished_at: parse_time(r.get(4)?),
        duration_ms: r.get::<_, Option<i64>>(5)?.map(|v| v as u64),
        size_bytes: r.get::<_, Option<i64>>(6)?.map(|v| v as u64),
        added_bytes: r.get::<_, Option<i64>>(7)?.map(|v| v as u64),
        summary: r
            .get::<_, Option<String>>(8)?
            .and_then(|s| serde_json::from_str(&s).ok()),
        locations: serde_json::from_str(&r.get::<_, String>(9)?).unwrap_or_default(),
        warnings: serde_json::from_str(&r.get::<_, String>(10)?).unwrap_or_default(),
        error: r.get(11)?,
    })
}

#[utoipa::path(post, path = "/api/v1/backups", tag = "backups", security(("bearer" = [])),
    responses((status = 202, body = Job), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 423, body = ErrorBody)))]
pub async fn create(State(app): State<AppState>, auth: Auth) -> Result<Response, ApiError> {
    auth.require(Permission::RunBackups)?;
    auth.require_writable()?;
    let job = start_backup(&app, &auth.account, BackupKind::Manual, None).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(job)).into_response())
}

#[utoipa::path(get, path = "/api/v1/backups", tag = "backups", security(("bearer" = [])),
    params(("kind" = Option<String>, Query), ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<Backup>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(app): State<AppState>,
    auth: Auth,
    Query(q): Query<HashMap<String, String>>,
) -> Result<axum::Json<Page<Backup>>, ApiError> {
    auth.require(Permission::ViewBackups)?;
    let mut sql = format!("SELECT {BACKUP_COLUMNS} FROM backups WHERE account_id = ? AND deleted_at IS NULL");
    let mut args: Vec<rusqlite::types::Value> = vec![auth.account.id.into()];
    let mut limit = 50i64;
    for (k, v) in &q {
        match k.as_str() {
            "kind" => {
                let kind = BackupKind::parse(v)
                    .ok_or_else(|| ApiError::bad_request("kind must be scheduled, manual or safety"))?;
                sql.push_str(" AND kind = ?");
                args.push(kind.as_str().to_string().into());
            }
            "from" | "to" => {
                let t = crate::shopdata::parse_time_filter(v)
                    .ok_or_else(|| ApiError::bad_request(format!("{k} must be a date (2026-11-30) or a time")))?;
                let zone = control::account_tz(&auth.account.account);
                let bound = if k == "from" { Some(t.start(zone)) } else { t.end(zone) };
                if let Some(bound) = bound {
                    sql.push_str(if k == "from" {
                        " AND started_at >= ?"
                    } else {
                        " AND started_at < ?"
                    });
                    args.push(bound.to_rfc3339().into());
                }
            }
            "limit" => {
                limit = v
                    .parse::<i64>()
                    .ok()
                    .filter(|l| (1..=500).contains(l))
                    .ok_or_else(|| ApiError::bad_request("limit must be 1 to 500"))?
            }
            "cursor" => {
                let c: i64 = v
                    .parse()
                    .map_err(|_| ApiError::bad_request("cursor must be the `next` of a previous page"))?;
                sql.push_str(" AND id < ?");
                args.push(c.into());
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "{other:?} is not a filter of backups; use kind, from, to, limit, cursor"
                )));
            }
        }
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    args.push((limit + 1).into());
    let items = app
        .control
        .read(move |c| {
            let mut stmt = c.prepare(&sql).map_err(control::db_err)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args.iter()), backup_from_row)
                .map_err(control::db_err)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(control::db_err)
        })
        .await?;
    let (items, next) = crate::shopdata::page_of(items, limit, |b| Some(b.id.to_string()));
    Ok(axum::Json(Page { items, next }))
}

/// A backup of an account that has not been deleted, or 404.
pub(crate) async fn find_backup(app: &AppState, account_id: i64, id: i64) -> Result<Backup, ApiError> {
    app.control
        .read(move |c| {
            c.query_row(
                &format!(
                    "SELECT {BACKUP_COLUMNS} FROM backups WHERE id = ?1 AND account_id = ?2 AND deleted_at IS NULL"
                ),
                params![id, account_id],
                backup_from_row,
            )
            .optional()
            .map_err(control::db_err)
        })
        .await?
        .ok_or_else(|| ApiError::not_found(&format!("backup {id}")))
}

/// A backup's details with today's numbers beside the backup's, for confirming a restore.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct BackupDetails {
    #[serde(flatten)]
    pub backup: Backup,
    /// Rows per table in the live data now.
    pub live_rows: std::collections::BTreeMap<String, i64>,
}

#[utoipa::path(get, path = "/api/v1/backups/{id}", tag = "backups", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = BackupDetails), (status = 404, body = ErrorBody)))]
pub async fn get_one(
    State(app): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<axum::Json<BackupDetails>, ApiError> {
    auth.require(Permission::ViewBackups)?;
    let backup = find_backup(&app, auth.account.id, id).await?;
    let data = app.shop_data(&auth.account.account.slug).await?;
    let live_rows = data
        .db
        .read(|c| {
            let mut rows = std::collections::BTreeMap::new();
            for t in crate::live::TABLES {
                rows.insert(
                    t.to_string(),
                    c.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))?,
                );
            }
            Ok(rows)
        })
        .await?;
    Ok(axum::Json(BackupDetails { backup, live_rows }))
}

#[utoipa::path(delete, path = "/api/v1/backups/{id}", tag = "backups", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 423, body = ErrorBody)))]
pub async fn delete(State(app): State<AppState>, auth: Auth, Path(id): Path<i64>) -> Result<StatusCode, ApiError> {
    auth.require(Permission::RunBackups)?;
    auth.require_writable()?;
    let backup = find_backup(&app, auth.account.id, id).await?;
    if backup.kind == BackupKind::Scheduled {
        return Err(ApiError::conflict(
            "Scheduled backups are removed by the retention of your plan; only manual and safety backups can be deleted.",
        ));
    }
    if backup.state == JobState::Running {
        return Err(ApiError::conflict(
            "This backup is still running; delete it when it has finished.",
        ));
    }
    // The repositories are not changed while a backup copies or a key rotates.
    let handle = app
        .jobs
        .start(auth.account.id, &auth.account.account.slug, "backup_delete")?;
    // The catalog first: the backup is gone for people at once, whatever a location says.
    let now = app.clock.now();
    app.control
        .write(move |c| {
            c.execute(
                "UPDATE backups SET deleted_at = ?1, purge_pending = 1 WHERE id = ?2",
                params![now.to_rfc3339(), id],
            )
            .map_err(control::db_err)?;
            Ok(())
        })
        .await?;
    let slug = auth.account.account.slug.clone();
    let config = app.config.clone();
    let outcome = tokio::task::spawn_blocking(move || backups::forget_everywhere(&config, &slug, &backup))
        .await
        .map_err(|e| ApiError::internal("delete the backup", e))?;
    match outcome {
        Ok(()) => {
            app.control.with_writer(|c| {
                let _ = c.execute("UPDATE backups SET purge_pending = 0 WHERE id = ?1", [id]);
            });
            handle.succeed(json!({"backup_id": id}));
        }
        Err(e) => {
            // The backup is out of the catalog; what a location kept is forgotten again
            // before the next backup (`purge_pending`), until every location let it go.
            tracing::warn!(backup = id, error = %e, "a location kept a deleted backup");
            handle.fail(e);
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/backups/status", tag = "backups", security(("bearer" = [])),
    responses((status = 200, body = BackupStatus), (status = 403, body = ErrorBody)))]
pub async fn status(State(app): State<AppState>, auth: Auth) -> Result<axum::Json<BackupStatus>, ApiError> {
    auth.require(Permission::ViewBackups)?;
    Ok(axum::Json(backup_status(&app, &auth.account).await?))
}

/// What the dashboard shows of an account's backups: the last that completed, the next
/// run, the last 30, and what is wrong.
pub async fn backup_status(app: &crate::app::App, account: &control::AccountRow) -> Result<BackupStatus, ApiError> {
    let account_id = account.id;
    let (history, last) = app
        .control
        .read(move |c| {
            let mut stmt = c
                .prepare(&format!("SELECT {BACKUP_COLUMNS} FROM backups WHERE account_id = ?1 AND deleted_at IS NULL ORDER BY id DESC LIMIT 30"))
                .map_err(control::db_err)?;
            let rows = stmt.query_map([account_id], backup_from_row).map_err(control::db_err)?;
            let history = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(control::db_err)?;
            // Looked for on its own, not among the last 30: a location down for a day
            // fails a run and its hourly retries, 30 rows, and a manager must still see
            // when the last good backup was, most of all then.
            let last = c
                .query_row(
                    &format!(
                        "SELECT {BACKUP_COLUMNS} FROM backups WHERE account_id = ?1 AND deleted_at IS NULL \
                         AND state = 'succeeded' ORDER BY id DESC LIMIT 1"
                    ),
                    [account_id],
                    backup_from_row,
                )
                .optional()
                .map_err(control::db_err)?;
            Ok((history, last))
        })
        .await?;
    let tz = control::account_tz(&account.account);
    let now = app.clock.now();
    let next_utc = schedule::next_run(tz, now);
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    if let Some(latest) = history.iter().find(|b| b.state != JobState::Running) {
        if latest.state == JobState::Failed {
            let since = match &last {
                Some(good) => format!(
                    " The last backup that completed is from {}.",
                    good.started_at.with_timezone(&tz).format("%Y-%m-%d %H:%M")
                ),
                None => " No backup has completed yet.".to_string(),
            };
            errors.push(format!(
                "The last backup ({}) failed: {}{since}",
                latest.started_at.with_timezone(&tz).format("%Y-%m-%d %H:%M"),
                latest.error.clone().unwrap_or_default()
            ));
        }
        for l in latest.locations.iter().filter(|l| !l.ok) {
            warnings.push(format!(
                "The last backup did not reach the {} location ({}): {}",
                l.name,
                l.url,
                l.error.clone().unwrap_or_default()
            ));
        }
        for w in &latest.warnings {
            warnings.push(w.clone());
        }
    }
    let due = schedule::last_due(tz, now);
    let had_scheduled = history
        .iter()
        .any(|b| b.kind == BackupKind::Scheduled && b.state == JobState::Succeeded && b.started_at >= due);
    // The same rule as the "delayed" notice: only for an account that has had one.
    let had_any_scheduled = history.iter().any(|b| b.kind == BackupKind::Scheduled);
    if now - due > DELAY && !had_scheduled && had_any_scheduled {
        warnings.push(format!(
            "The backup scheduled for {} has not completed.",
            due.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z")
        ));
    }
    let last_drill = app
        .control
        .read(move |c| crate::drills::last(c, account_id).map_err(control::db_err))
        .await?;
    Ok(BackupStatus {
        last_drill,
        last,
        next: NextBackup {
            shop_time: next_utc.with_timezone(&tz).to_rfc3339(),
            utc: next_utc,
            timezone: account.account.timezone.clone(),
        },
        history,
        errors,
        warnings,
    })
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Job), (status = 404, body = ErrorBody)))]
pub async fn job(State(app): State<AppState>, auth: Auth, Path(id): Path<i64>) -> Result<axum::Json<Job>, ApiError> {
    auth.require(Permission::ViewBackups)?;
    let job = app
        .jobs
        .get(auth.account.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(&format!("job {id}")))?;
    Ok(axum::Json(job))
}

#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", security(("bearer" = [])), params(("state" = Option<String>, Query)),
    responses((status = 200, body = Page<Job>), (status = 400, body = ErrorBody)))]
pub async fn jobs(
    State(app): State<AppState>,
    auth: Auth,
    Query(q): Query<HashMap<String, String>>,
) -> Result<axum::Json<Page<Job>>, ApiError> {
    auth.require(Permission::ViewBackups)?;
    match (q.get("state").map(String::as_str), q.len()) {
        (Some("running"), 1) => Ok(axum::Json(Page {
            items: app.jobs.running(auth.account.id),
            next: None,
        })),
        _ => Err(ApiError::bad_request("list jobs with ?state=running")),
    }
}

#[utoipa::path(get, path = "/api/v1/events", tag = "events", security(("bearer" = [])),
    responses((status = 200, description = "server-sent events: job.progress, job.finished, backup.failed, backup.delayed, backup.large, location.down", content_type = "text/event-stream")))]
pub async fn events(
    State(app): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
) -> Result<Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    auth.require(Permission::ViewBackups)?;
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let account_id = auth.account.id;
    let (missed, rx) = app.jobs.events().subscribe(account_id, last);
    let to_sse = |e: &crate::jobs::Event| {
        SseEvent::default()
            .id(e.id.to_string())
            .event(e.kind.clone())
            .data(e.data.to_string())
    };
    let backlog = futures_util::stream::iter(missed.iter().map(to_sse).map(Ok).collect::<Vec<_>>());
    let live = futures_util::stream::unfold(rx, move |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(e) if e.account_id == account_id => return Some((Ok(to_sse(&e)), rx)),
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(futures_util::StreamExt::chain(backlog, live))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// (name, url, whether it answered).
type Probe = (String, String, Result<(), String>);

pub use repairops_api::StorageLocation;

#[utoipa::path(get, path = "/api/v1/storage", tag = "backups", security(("bearer" = [])),
    responses((status = 200, body = Page<StorageLocation>), (status = 403, body = ErrorBody)))]
/// The backup locations (a list like every other: `{items, next}`, `next` always null).
pub async fn storage(State(app): State<AppState>, auth: Auth) -> Result<axum::Json<Page<StorageLocation>>, ApiError> {
    auth.require(Permission::ViewBackups)?;
    let slug = auth.account.account.slug.clone();
    let config = app.config.clone();
    let probes = tokio::task::spawn_blocking(move || -> Result<Vec<Probe>, String> {
        let l = backups::locations(&config, &slug)?;
        Ok(vec![
            (
                "primary".to_string(),
                l.primary.to_string(),
                backups::probe(&l.primary, &l.key),
            ),
            (
                "secondary".to_string(),
                l.secondary.to_string(),
                backups::probe(&l.secondary, &l.key),
            ),
        ])
    })
    .await
    .map_err(|e| ApiError::internal("check the backup locations", e))?
    .map_err(|e| ApiError::internal("check the backup locations", e))?;
    let account_id = auth.account.id;
    let history = app
        .control
        .read(move |c| {
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {BACKUP_COLUMNS} FROM backups WHERE account_id = ?1 ORDER BY id DESC LIMIT 200"
                ))
                .map_err(control::db_err)?;
            let rows = stmt.query_map([account_id], backup_from_row).map_err(control::db_err)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(control::db_err)
        })
        .await?;
    let items = probes
        .into_iter()
        .map(|(name, url, result)| StorageLocation {
            last_success: history
                .iter()
                .find(|b| b.locations.iter().any(|l| l.name == name && l.ok))
                .map(|b| b.finished_at.unwrap_or(b.started_at)),
            reachable: result.is_ok(),
            error: result.err(),
            name,
            url,
        })
        .collect();
    Ok(axum::Json(Page { items, next: None }))
}

#[utoipa::path(post, path = "/api/v1/keys/recovery", tag = "backups", security(("bearer" = [])), request_body = RecoveryKeyRequest,
    responses((status = 200, description = "The recovery key file", content_type = "text/plain"), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 423, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn recovery_key(
    State(app): State<AppState>,
    auth: Auth,
    body: Deferred<RecoveryKeyRequest>,
) -> Result<Response, ApiError> {
    auth.require(Permission::AccountSettings)?;
    auth.require_writable()?;
    let req = body.parse()?;
    if let Some(problem) = req.passphrase_problem() {
        return Err(ApiError::invalid(problem));
    }
    // Not while a key rotates or a backup writes: the job registry keeps them apart.
    let slug = auth.account.account.slug.clone();
    let handle = app.jobs.start(auth.account.id, &slug, "recovery_key")?;
    let (config, by, now) = (app.config.clone(), auth.identity.email.clone(), app.clock.now());
    let file_name = format!("repairops-recovery-key-{slug}.txt");
    let made = tokio::task::spawn_blocking(move || backups::recovery_key(&config, &slug, &by, now, &req.passphrase))
        .await
        .map_err(|e| ApiError::internal("make the recovery key", e))?;
    match made {
        Ok(key) => {
            handle.succeed(json!({"key_objects": key.key_objects}));
            Ok((
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{file_name}\""),
                    ),
                    (header::CACHE_CONTROL, "no-store".to_string()),
                ],
                key.text,
            )
                .into_response())
        }
        Err(e) => {
            handle.fail(format!("No recovery key was made: {e}"));
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "location_unavailable",
                format!("No recovery key was made: {e}"),
            ))
        }
    }
}

#[utoipa::path(post, path = "/api/v1/keys/rotate", tag = "backups", security(("bearer" = [])),
    responses((status = 202, body = Job), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 423, body = ErrorBody)))]
pub async fn rotate_key(State(app): State<AppState>, auth: Auth) -> Result<Response, ApiError> {
    auth.require(Permission::AccountSettings)?;
    auth.require_writable()?;
    let handle = app
        .jobs
        .start(auth.account.id, &auth.account.account.slug, "key_rotation")?;
    let job = handle
        .snapshot()
        .ok_or_else(|| ApiError::internal("start the key rotation", "job vanished"))?;
    let config = app.config.clone();
    let slug = auth.account.account.slug.clone();
    tokio::task::spawn_blocking(move || {
        repairops_vault::Progress::phase(&handle, "rotating", None);
        match backups::rotate_key(&config, &slug) {
            Ok(ids) => handle.succeed(json!({"key_objects": ids})),
            Err(e) => handle.fail(format!("The key was not rotated: {e}")),
        };
    });
    Ok((StatusCode::ACCEPTED, axum::Json(job)).into_response())
}
