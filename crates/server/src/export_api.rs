//! Export jobs over HTTP: start one, list them, and download one (with Range, so a
//! broken download resumes). The job's work, its files and their removal after 30 days
//! are in `export_jobs`.

use std::path::PathBuf;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use repairops_api::{ErrorBody, Export, ExportFilters, Job, JobState, NewExport, Page};
use rusqlite::{OptionalExtension, params};

use crate::app::AppState;
use crate::audit::AuditEntry;
use crate::auth::{Auth, Permission};
use crate::control;
use crate::error::{ApiError, Deferred, Path, Query};
use crate::export_jobs::{KEEP, run, sealed_name, sealed_path};
use crate::exports::{Format, Plan};
use crate::sealed_file::FileKey;

const EXPORT_COLUMNS: &str = "id, dataset, format, filters, state, rows, size_bytes, sha256, file_name, requested_by, created_at, expires_at, error";

fn export_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Export> {
    let time = |s: String| {
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    };
    Ok(Export {
        id: r.get(0)?,
        dataset: r.get(1)?,
        format: r.get(2)?,
        filters: serde_json::from_str::<ExportFilters>(&r.get::<_, String>(3)?).unwrap_or_default(),
        state: JobState::parse(&r.get::<_, String>(4)?).unwrap_or(JobState::Failed),
        rows: r.get::<_, Option<i64>>(5)?.map(|v| v as u64),
        size_bytes: r.get::<_, Option<i64>>(6)?.map(|v| v as u64),
        sha256: r.get(7)?,
        file_name: r.get(8)?,
        requested_by: r.get(9)?,
        created_at: time(r.get(10)?),
        expires_at: time(r.get(11)?),
        error: r.get(12)?,
    })
}

#[utoipa::path(post, path = "/api/v1/exports", tag = "exports", security(("bearer" = [])), request_body = NewExport,
    responses((status = 202, body = Job), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(State(app): State<AppState>, auth: Auth, body: Deferred<NewExport>) -> Result<Response, ApiError> {
    auth.require(Permission::Exports)?;
    // The data is being replaced during a restore: an export would catch it half-way.
    auth.require_writable()?;
    let req = body.parse()?;
    let account = auth.account.clone();
    let tz = control::account_tz(&account.account);
    let plan = Plan::new(&req, tz).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let data = app.shop_data(&account.account.slug).await?;
    let handle = app.jobs.start(account.id, &account.account.slug, "export")?;
    let now = app.clock.now();
    let local_day = now.with_timezone(&tz).date_naive();
    let file_name = plan.file_name(local_day);
    let filters = serde_json::to_string(&plan.filters).unwrap_or_else(|_| "{}".into());
    let (dataset, format) = (plan.dataset.as_str(), plan.format.as_str());
    let (account_id, user) = (account.id, auth.identity.email.clone());
    let export_id = app
        .control
        .write(move |c| {
            c.execute(
                "INSERT INTO exports (account_id, dataset, format, filters, state, file_name, requested_by, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6, ?7, ?8)",
                params![account_id, dataset, format, filters, file_name, user, now.to_rfc3339(), (now + KEEP).to_rfc3339()],
            )
            .map_err(control::db_err)?;
            Ok(c.last_insert_rowid())
        })
        .await?;
    let job = handle
        .snapshot()
        .ok_or_else(|| ApiError::internal("start the export", "job vanished"))?;
    let live = data.db.path().to_path_buf();
    let user = auth.identity.email.clone();
    let app2 = app.clone();
    tokio::task::spawn_blocking(move || run(&app2, &account, &user, export_id, &plan, &live, handle));
    Ok((StatusCode::ACCEPTED, axum::Json(job)).into_response())
}

#[utoipa::path(get, path = "/api/v1/exports", tag = "exports", security(("bearer" = [])),
    params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<Export>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(app): State<AppState>,
    auth: Auth,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Result<axum::Json<Page<Export>>, ApiError> {
    auth.require(Permission::Exports)?;
    let page = crate::shopdata::newest_first(
        &app.control,
        format!(
            "SELECT {EXPORT_COLUMNS} FROM exports WHERE account_id = ?1 AND deleted_at IS NULL AND expires_at > ?2"
        ),
        vec![auth.account.id.into(), app.clock.now().to_rfc3339().into()],
        &q,
        export_from_row,
        |e| e.id,
    )
    .await?;
    Ok(axum::Json(page))
}

/// A single byte range of a `Range` header, resolved against the file's length:
/// `Ok(None)` means the whole file (no header, or one this server answers in full).
fn byte_range(headers: &HeaderMap, len: u64, etag: &str) -> Result<Option<(u64, u64)>, ()> {
    let Some(value) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    // If-Range with another version's tag: the whole (current) file.
    if let Some(tag) = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok())
        && tag != etag
    {
        return Ok(None);
    }
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None); // several ranges: answered with the whole file, as RFC 9110 allows
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n = position(b)?;
        if n == 0 {
            return Err(());
        }
        (len.saturating_sub(n), len.checked_sub(1).ok_or(())?)
    } else {
        let start = position(a)?;
        let end = if b.is_empty() {
            len.checked_sub(1).ok_or(())?
        } else {
            position(b)?.min(len.saturating_sub(1))
        };
        if start >= len || end < start {
            return Err(());
        }
        (start, end)
    };
    Ok(Some(range))
}

/// A byte position of a Range header: digits only; one too large for a u64 is past
/// every file's end (RFC 9110 §14.1.1: a last position or suffix that large means "to
/// the end", "the whole file"), not an error.
fn position(digits: &str) -> Result<u64, ()> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    Ok(digits.parse().unwrap_or(u64::MAX))
}

/// Streams plaintext bytes `[start, end]` of a sealed file, a megabyte at a time.
fn stream_range(path: PathBuf, key: std::sync::Arc<FileKey>, name: String, start: u64, end: u64) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    tokio::task::spawn_blocking(move || {
        const WINDOW: u64 = 16 * crate::sealed_file::SEGMENT as u64;
        let mut at = start;
        while at <= end {
            let n = WINDOW.min(end + 1 - at);
            // Shorter than asked: the file lost its end (damaged, or removed and
            // recreated) after the answer's length was set. An error ends the body
            // visibly instead of a response shorter than its Content-Length.
            let chunk = crate::sealed_file::read_range(&path, &key, &name, at, n)
                .map_err(std::io::Error::other)
                .and_then(|bytes| {
                    if bytes.len() as u64 == n {
                        Ok(bytes)
                    } else {
                        Err(std::io::Error::other(format!(
                            "the export file ends at byte {}, short of byte {} the answer needs",
                            at + bytes.len() as u64,
                            end + 1
                        )))
                    }
                });
            let failed = chunk.is_err();
            if let Err(e) = &chunk {
                tracing::error!(file = %path.display(), error = %e, "an export file does not open");
            }
            if tx.blocking_send(chunk).is_err() || failed {
                return;
            }
            at += n;
        }
    });
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

#[utoipa::path(get, path = "/api/v1/exports/{id}/download", tag = "exports", security(("bearer" = [])),
    params(("id" = i64, Path), ("Range" = Option<String>, Header, description = "one byte range, e.g. bytes=1048576-")),
    responses((status = 200, description = "the file; X-Content-SHA256 is the SHA-256 of the whole file"),
              (status = 206, description = "the requested range"), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 410, body = ErrorBody), (status = 416, body = ErrorBody)))]
pub async fn download(
    State(app): State<AppState>,
    auth: Auth,
    ext: axum::http::Extensions,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    auth.require(Permission::Exports)?;
    let account_id = auth.account.id;
    let found = app
        .control
        .read(move |c| {
            c.query_row(
                &format!("SELECT {EXPORT_COLUMNS}, deleted_at FROM exports WHERE id = ?1 AND account_id = ?2"),
                params![id, account_id],
                |r| Ok((export_from_row(r)?, r.get::<_, Option<String>>(13)?)),
            )
            .optional()
            .map_err(control::db_err)
        })
        .await?;
    let Some((export, deleted)) = found else {
        return Err(ApiError::not_found("export"));
    };
    let now = app.clock.now();
    if deleted.is_some() || export.expires_at <= now {
        return Err(ApiError::new(
            StatusCode::GONE,
            "expired",
            format!(
                "export {id} was deleted on {} (exports are kept 30 days); run the export again",
                export.expires_at.format("%Y-%m-%d")
            ),
        ));
    }
    match export.state {
        JobState::Succeeded => {}
        JobState::Failed => {
            return Err(ApiError::conflict(format!(
                "export {id} failed: {}",
                export.error.unwrap_or_default()
            )));
        }
        _ => {
            return Err(ApiError::conflict(format!(
                "export {id} is still being written; wait for its job"
            )));
        }
    }
    let (len, sha) = (export.size_bytes.unwrap_or(0), export.sha256.unwrap_or_default());
    let etag = format!("\"{sha}\"");
    let range = byte_range(&headers, len, &etag);
    let entry = |result: &str, detail: String| AuditEntry {
        at: control::now_text(),
        account: auth.account.account.slug.clone(),
        user: auth.identity.email.clone(),
        event_type: "export".into(),
        action: "GET /api/v1/exports/{id}/download".into(),
        resource: format!("/api/v1/exports/{id}"),
        ip: crate::http::client_ip(&ext).to_string(),
        result: result.into(),
        detail,
    };
    let Ok(range) = range else {
        app.audit(entry("failure", "416 range not satisfiable".into())).await;
        let mut resp = ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "range_not_satisfiable",
            format!("the range asked for is outside the file ({len} bytes)"),
        )
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
            resp.headers_mut().insert(header::CONTENT_RANGE, v);
        }
        return Ok(resp);
    };
    let (status, start, end) = match range {
        Some((a, b)) => (StatusCode::PARTIAL_CONTENT, a, b),
        None => (StatusCode::OK, 0, len.saturating_sub(1)),
    };
    let path = sealed_path(&app.config.data, id);
    if !path.exists() {
        return Err(ApiError::internal(
            "read the export file",
            format!("{} is missing", path.display()),
        ));
    }
    app.audit(entry(
        "success",
        format!("{} bytes {start}-{end} of {len}", status.as_u16()),
    ))
    .await;
    let body = if len == 0 {
        Body::empty()
    } else {
        stream_range(path, app.export_key.clone(), sealed_name(id), start, end)
    };
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    let format = Format::parse(&export.format).unwrap_or(Format::Csv);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    let size = if len == 0 { 0 } else { end + 1 - start };
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&sha) {
        h.insert("x-content-sha256", v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", export.file_name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}"))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    Ok(crate::http::audited(resp))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(v: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
        byte_range(&h, len, "\"x\"")
    }

    #[test]
    fn ranges_resolve_as_rfc_9110_says() {
        assert_eq!(range("bytes=0-99", 1000), Ok(Some((0, 99))));
        assert_eq!(range("bytes=500-", 1000), Ok(Some((500, 999))));
        assert_eq!(range("bytes=-100", 1000), Ok(Some((900, 999))));
        assert_eq!(range("bytes=-5000", 1000), Ok(Some((0, 999))));
        assert_eq!(range("bytes=900-5000", 1000), Ok(Some((900, 999))));
        assert_eq!(range("bytes=1000-", 1000), Err(()));
        assert_eq!(range("bytes=5-4", 1000), Err(()));
        assert_eq!(range("bytes=abc", 1000), Err(()));
        assert_eq!(range("bytes=-0", 1000), Err(()));
        assert_eq!(range("bytes=0-1,5-6", 1000), Ok(None));
        assert_eq!(range("items=0-1", 1000), Ok(None));
        // Numbers past u64: the end of the file, the whole file, past the end.
        assert_eq!(range("bytes=0-18446744073709551616", 1000), Ok(Some((0, 999))));
        assert_eq!(range("bytes=-99999999999999999999", 1000), Ok(Some((0, 999))));
        assert_eq!(range("bytes=99999999999999999999-", 1000), Err(()));
        assert_eq!(range("bytes=+5-9", 1000), Err(()));
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_static("bytes=10-"));
        h.insert(header::IF_RANGE, HeaderValue::from_static("\"old\""));
        assert_eq!(byte_range(&h, 1000, "\"new\""), Ok(None));
    }
}
