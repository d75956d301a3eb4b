//! Sandboxes: a backup restored into a database and attachment folder of its own
//! (`sandboxes/{id}/`), served under `/sandboxes/{id}/api/v1/…` with the same shop-data
//! routes as production. Nothing written there reaches live data. Customers in the
//! deletion ledger are deleted again before the sandbox opens. A sandbox is deleted by
//! a user or 7 days after it was made, files included.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use repairops_api::{ErrorBody, Job, JobState, NewSandbox, Page, Sandbox};
use repairops_vault::Progress;
use rusqlite::{OptionalExtension, params};
use serde_json::json;
use tower::ServiceExt;

use crate::app::AppState;
use crate::audit::AuditEntry;
use crate::auth::{Auth, Permission, SandboxScope};
use crate::control::{self, AccountRow};
use crate::error::{ApiError, Deferred, Path, Query};

/// How long a sandbox lives.
pub const KEEP: Duration = Duration::days(7);

const COLUMNS: &str = "id, backup_id, state, location, created_at, expires_at, error";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Sandbox> {
    let time = |s: String| {
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    };
    Ok(Sandbox {
        id: r.get(0)?,
        backup_id: r.get(1)?,
        state: JobState::parse(&r.get::<_, String>(2)?).unwrap_or(JobState::Failed),
        location: r.get(3)?,
        created_at: time(r.get(4)?),
        expires_at: time(r.get(5)?),
        error: r.get(6)?,
    })
}

/// At start-up: sandboxes a crash interrupted are marked failed, and every sandbox
/// folder that is not an open sandbox's is removed (a crash mid-build, or a deletion
/// whose files could not all go: they hold customers' data that a later deletion on
/// request, which reaches only open sandboxes, would miss).
pub fn recover(control: &crate::db::Db, data: &std::path::Path) {
    let open: Option<std::collections::HashSet<String>> = control.with_writer(|c| {
        let _ = c.execute(
            "UPDATE sandboxes SET state = 'failed', error = 'the server stopped while this sandbox was made', deleted_at = ?1 WHERE state = 'running'",
            [Utc::now().to_rfc3339()],
        );
        c.prepare("SELECT id FROM sandboxes WHERE state = 'succeeded' AND deleted_at IS NULL")
            .and_then(|mut s| s.query_map([], |r| Ok(r.get::<_, i64>(0)?.to_string()))?.collect())
            .ok()
    });
    // Without knowing which are open, none is touched.
    let (Some(open), Ok(folders)) = (open, std::fs::read_dir(data.join("sandboxes"))) else {
        return;
    };
    for folder in folders.flatten() {
        if !open.contains(folder.file_name().to_string_lossy().as_ref()) {
            let _ = std::fs::remove_dir_all(folder.path());
        }
    }
}

/// Makes the sandbox: fetch, check, re-apply deletions, sign-ins on the staff list. On a
/// blocking thread. Returns
/// the location it came from and the newest ledger entry applied.
fn build(
    app: &AppState,
    account: &AccountRow,
    backup: &repairops_api::Backup,
    id: i64,
    job: &crate::jobs::JobHandle,
) -> Result<(String, i64), String> {
    let dir = app.sandbox_dir(id);
    job.phase("fetching", backup.size_bytes);
    let within = crate::jobs::Within { job, phase: "fetching" };
    let live = app.config.account_dir(&account.account.slug).join("attachments");
    let location = crate::restores::fetch(&app.config, &account.account.slug, backup, &dir, Some(&live), &within)?;
    job.phase("checking", None);
    crate::restores::check(&dir.join("live.db"), backup)?;
    job.phase("reapplying_deletions", None);
    let applied = reapply_deletions(app, account, id)?;
    // Whoever signs in to try workflows there is on its staff list (a manager who joined
    // after the backup can write a note or take a ticket).
    crate::staff::keep_in_file(app, account.id, &dir.join("live.db"))?;
    std::fs::create_dir_all(dir.join("attachments")).map_err(|e| e.to_string())?;
    Ok((location.to_string(), applied))
}

/// Deletes from a sandbox the customers the ledger says are deleted; returns the newest
/// ledger entry applied.
fn reapply_deletions(app: &AppState, account: &AccountRow, id: i64) -> Result<i64, String> {
    let dir = app.sandbox_dir(id);
    let ledger = crate::erasure::Ledger::load(&app.control, account.id)?;
    crate::restores::reapply_deletions(&dir.join("live.db"), &dir.join("attachments"), &ledger, &app.ledger_key)?;
    Ok(ledger.newest)
}

/// Marks a built sandbox open, unless a customer was deleted on request since its
/// ledger was read: then that deletion is applied first. The check and the mark share
/// the control plane's writer with the deletion's ledger entry, so a deletion either is
/// seen here or finds this sandbox open and deletes in it itself.
fn mark_open(app: &AppState, account: &AccountRow, id: i64, location: &str, mut applied: i64) -> Result<(), String> {
    loop {
        let marked = app
            .control
            .with_writer(|c| -> rusqlite::Result<bool> {
                if crate::erasure::newest_entry(c, account.id)? != applied {
                    return Ok(false);
                }
                c.execute(
                    "UPDATE sandboxes SET state = 'succeeded', location = ?1 WHERE id = ?2",
                    params![location, id],
                )?;
                Ok(true)
            })
            .map_err(|e| format!("cannot record the sandbox: {e}"))?;
        if marked {
            return Ok(());
        }
        applied = reapply_deletions(app, account, id)?;
    }
}

#[utoipa::path(post, path = "/api/v1/sandboxes", tag = "sandboxes", security(("bearer" = [])), request_body = NewSandbox,
    responses((status = 202, body = Job), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 423, body = ErrorBody)))]
pub async fn create(State(app): State<AppState>, auth: Auth, body: Deferred<NewSandbox>) -> Result<Response, ApiError> {
    auth.require(Permission::RunBackups)?;
    auth.require_writable()?;
    let req = body.parse()?;
    let backup = crate::backup_api::find_backup(&app, auth.account.id, req.backup_id).await?;
    if backup.state != JobState::Succeeded {
        return Err(ApiError::invalid(format!(
            "backup {} did not complete, so it cannot be opened",
            backup.id
        )));
    }
    let account = auth.account.clone();
    let handle = app.jobs.start(account.id, &account.account.slug, "sandbox")?;
    let now = app.clock.now();
    let (account_id, backup_id) = (account.id, backup.id);
    let id = app
        .control
        .write(move |c| {
            c.execute(
                "INSERT INTO sandboxes (account_id, backup_id, state, created_at, expires_at) VALUES (?1, ?2, 'running', ?3, ?4)",
                params![account_id, backup_id, now.to_rfc3339(), (now + KEEP).to_rfc3339()],
            )
            .map_err(control::db_err)?;
            Ok(c.last_insert_rowid())
        })
        .await?;
    let job = handle
        .snapshot()
        .ok_or_else(|| ApiError::internal("start the sandbox", "job vanished"))?;
    let by = auth.identity.email.clone();
    let app2 = app.clone();
    tokio::task::spawn_blocking(move || {
        // A panic (a bug) fails the sandbox like any error: its row and files do not
        // stay behind as a sandbox forever "running".
        let result = crate::jobs::panic_as_error("sandbox", || {
            build(&app2, &account, &backup, id, &handle).and_then(|(location, applied)| {
                crate::faults::point("sandbox.built");
                mark_open(&app2, &account, id, &location, applied).map(|()| location)
            })
        });
        if let Err(e) = &result {
            app2.control.with_writer(|c| {
                let _ = c.execute(
                    "UPDATE sandboxes SET state = 'failed', error = ?1, deleted_at = ?2 WHERE id = ?3",
                    params![e, Utc::now().to_rfc3339(), id],
                );
            });
        }
        let entry = AuditEntry {
            at: control::now_text(),
            account: account.account.slug.clone(),
            user: by,
            event_type: "restore".into(),
            action: "restore to a sandbox".into(),
            resource: format!("/sandboxes/{id}"),
            ip: "-".into(),
            result: if result.is_ok() { "success" } else { "failure" }.into(),
            detail: match &result {
                Ok(l) => format!("backup {} opened as sandbox {id} from the {l} location", backup.id),
                Err(e) => format!("backup {}: {e}", backup.id),
            },
        };
        app2.audit_blocking(&entry);
        match result {
            Ok(location) => {
                handle.succeed(json!({"sandbox_id": id, "backup_id": backup.id, "location": location}));
            }
            Err(e) => {
                let _ = app2.remove_sandbox(id);
                handle.fail(e);
            }
        }
    });
    Ok((StatusCode::ACCEPTED, axum::Json(job)).into_response())
}

#[utoipa::path(get, path = "/api/v1/sandboxes", tag = "sandboxes", security(("bearer" = [])),
    params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<Sandbox>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(app): State<AppState>,
    auth: Auth,
    Query(q): Query<HashMap<String, String>>,
) -> Result<axum::Json<Page<Sandbox>>, ApiError> {
    auth.require(Permission::RunBackups)?;
    let page = crate::shopdata::newest_first(
        &app.control,
        format!("SELECT {COLUMNS} FROM sandboxes WHERE account_id = ?1 AND deleted_at IS NULL AND expires_at > ?2"),
        vec![auth.account.id.into(), app.clock.now().to_rfc3339().into()],
        &q,
        from_row,
        |s| s.id,
    )
    .await?;
    Ok(axum::Json(page))
}

/// A live sandbox of the account, or why not.
async fn find(app: &AppState, account_id: i64, id: i64) -> Result<Sandbox, ApiError> {
    let found = app
        .control
        .read(move |c| {
            c.query_row(
                &format!("SELECT {COLUMNS}, deleted_at FROM sandboxes WHERE id = ?1 AND account_id = ?2"),
                params![id, account_id],
                |r| Ok((from_row(r)?, r.get::<_, Option<String>>(7)?)),
            )
            .optional()
            .map_err(control::db_err)
        })
        .await?;
    let Some((sandbox, deleted)) = found else {
        return Err(ApiError::not_found(&format!("sandbox {id}")));
    };
    if deleted.is_some() || sandbox.expires_at <= app.clock.now() {
        return Err(ApiError::new(
            StatusCode::GONE,
            "expired",
            format!("sandbox {id} was deleted (sandboxes last 7 days); create another from the backup"),
        ));
    }
    Ok(sandbox)
}

#[utoipa::path(delete, path = "/api/v1/sandboxes/{id}", tag = "sandboxes", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 410, body = ErrorBody), (status = 423, body = ErrorBody)))]
pub async fn delete(State(app): State<AppState>, auth: Auth, Path(id): Path<i64>) -> Result<StatusCode, ApiError> {
    auth.require(Permission::RunBackups)?;
    auth.require_writable()?;
    let sandbox = find(&app, auth.account.id, id).await?;
    if sandbox.state == JobState::Running {
        return Err(ApiError::conflict(format!(
            "sandbox {id} is still being made; wait for its job"
        )));
    }
    remove(&app, id).await
}

async fn remove(app: &AppState, id: i64) -> Result<StatusCode, ApiError> {
    let app2 = app.clone();
    tokio::task::spawn_blocking(move || app2.remove_sandbox(id))
        .await
        .map_err(|e| ApiError::internal("delete the sandbox", e))?
        .map_err(|e| ApiError::internal("delete the sandbox's files", e))?;
    let now = app.clock.now().to_rfc3339();
    app.control
        .write(move |c| {
            c.execute("UPDATE sandboxes SET deleted_at = ?1 WHERE id = ?2", params![now, id])
                .map_err(control::db_err)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes sandboxes 7 days old, files included (run with the other housekeeping).
pub async fn sweep(app: &AppState, now: DateTime<Utc>) {
    let cutoff = now.to_rfc3339();
    let ids: Vec<i64> = app
        .control
        .read(move |c| {
            let mut stmt = c
                .prepare(
                    "SELECT id FROM sandboxes WHERE deleted_at IS NULL AND state != 'running' AND expires_at <= ?1",
                )
                .map_err(control::db_err)?;
            let rows = stmt.query_map([&cutoff], |r| r.get(0)).map_err(control::db_err)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(control::db_err)
        })
        .await
        .unwrap_or_default();
    for id in ids {
        if let Err(e) = remove(app, id).await {
            tracing::error!(sandbox = id, error = %e.message, "an expired sandbox could not be deleted");
        }
    }
}

/// `/sandboxes/{id}/api/v1/{rest}`: the shop-data routes, on the sandbox's data.
pub async fn dispatch(State(app): State<AppState>, shop: axum::Extension<ShopRouter>, req: Request) -> Response {
    match scoped(&app, req).await {
        Ok(req) => match shop.0.0.clone().oneshot(req).await {
            Ok(resp) => resp,
            Err(never) => match never {},
        },
        Err(e) => e.into_response(),
    }
}

/// The shop-data routes alone, served again under a sandbox's prefix.
#[derive(Clone)]
pub struct ShopRouter(pub axum::Router);

async fn scoped(app: &AppState, req: Request) -> Result<Request, ApiError> {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let rest = path.strip_prefix("/sandboxes/").unwrap_or("");
    let (id, api_path) = rest
        .split_once('/')
        .ok_or_else(|| ApiError::not_found("that address"))?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not a sandbox id")))?;
    if !api_path.starts_with("api/v1/") {
        return Err(ApiError::not_found("that address"));
    }
    let auth = Auth::from_request_parts(&mut parts, app).await?;
    auth.require(Permission::RunBackups)?;
    let sandbox = find(app, auth.account.id, id).await?;
    if sandbox.state != JobState::Succeeded {
        return Err(ApiError::conflict(format!(
            "sandbox {id} is not ready: {}",
            sandbox.state.as_str()
        )));
    }
    let data = app.sandbox_data(id).await?;
    let target = match parts.uri.query() {
        Some(q) => format!("/{api_path}?{q}"),
        None => format!("/{api_path}"),
    };
    let uri = target
        .parse::<Uri>()
        .map_err(|_| ApiError::bad_request("the address is not valid"))?;
    // A fresh request: the outer route's own path parameters must not reach the inner one.
    let mut inner = Request::new(Body::new(body));
    *inner.method_mut() = parts.method;
    *inner.uri_mut() = uri;
    *inner.version_mut() = parts.version;
    *inner.headers_mut() = parts.headers;
    if let Some(peer) = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .cloned()
    {
        inner.extensions_mut().insert(peer);
    }
    inner.extensions_mut().insert(SandboxScope { id, data });
    Ok(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_start_only_open_sandboxes_keep_their_folders() {
        let dir = tempfile::tempdir().unwrap();
        let control = crate::control::open_for_test(dir.path());
        control.with_writer(|c| {
            c.execute_batch(
                "INSERT INTO sandboxes (id, account_id, backup_id, state, created_at, expires_at, deleted_at) VALUES
                     (1, 1, 1, 'succeeded', 'now', 'later', NULL),
                     (2, 1, 1, 'succeeded', 'now', 'later', 'now'),
                     (3, 1, 1, 'running', 'now', 'later', NULL),
                     (4, 1, 1, 'failed', 'now', 'later', 'now');",
            )
            .unwrap();
        });
        for id in ["1", "2", "3", "4", "99"] {
            std::fs::create_dir_all(dir.path().join("sandboxes").join(id)).unwrap();
            std::fs::write(dir.path().join("sandboxes").join(id).join("live.db"), b"customers").unwrap();
        }
        recover(&control, dir.path());
        let mut left: Vec<String> = std::fs::read_dir(dir.path().join("sandboxes"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["1"]);
        let state: String = control.with_writer(|c| {
            c.query_row("SELECT state FROM sandboxes WHERE id = 3", [], |r| r.get(0))
                .unwrap()
        });
        assert_eq!(state, "failed");
    }
}
