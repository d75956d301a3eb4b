//! Attachments: photo and document files of tickets, stored content-addressed under the
//! account's `attachments/` folder (`ab/cd/<sha256>`), with their metadata in live.db.
//! A file's name is metadata only, never part of a path on disk, so no name can reach
//! outside the folder; names are still checked so that every drive can save them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use repairops_api::{Attachment, AttachmentPatch, ErrorBody, Page};
use rusqlite::{Connection, OptionalExtension, params};

use crate::app::AppState;
use crate::auth::{Auth, Permission};
use crate::error::{ApiError, Json as JsonBody, Path as UrlPath, Query};
use crate::shopdata::time_text;

/// Where a file with this SHA-256 lives.
/// A name that is not a SHA-256 (a damaged row) maps to a path that does not exist
/// rather than outside the folder.
pub fn content_path(root: &Path, sha256: &str) -> PathBuf {
    match (sha256.get(..2), sha256.get(2..4)) {
        (Some(a), Some(b)) if sha256.len() == 64 && sha256.bytes().all(|c| c.is_ascii_hexdigit()) => {
            root.join(a).join(b).join(sha256)
        }
        _ => root.join("invalid").join(hex::encode(sha256.as_bytes())),
    }
}

/// Checks a file name a person gave: no path separators, no control characters, no
/// `.`/`..`, at most 255 bytes.
pub fn check_file_name(name: &str) -> Result<(), ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("the file name {name:?} is not allowed: {why}"));
    if name.is_empty() || name.len() > 255 {
        return Err(bad("it must be 1 to 255 bytes long"));
    }
    if name == "." || name == ".." {
        return Err(bad("it is a folder reference"));
    }
    if name.contains(['/', '\\']) {
        return Err(bad("it contains a path separator"));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(bad("it contains control characters"));
    }
    Ok(())
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref())
}

/// Stores content (if new) and returns its hash.
pub fn store_content(root: &Path, bytes: &[u8]) -> std::io::Result<String> {
    let sha = sha256_hex(bytes);
    let path = content_path(root, &sha);
    if path.exists() {
        return Ok(sha);
    }
    let dir = path.parent().expect("content paths have parents");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{sha}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, &path)?;
    Ok(sha)
}

const COLUMNS: &str = "id, ticket_id, file_name, content_type, size, sha256, created_at, updated_at";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Attachment> {
    let parse = |s: String| crate::shopdata::parse_time(&s).unwrap_or_default();
    Ok(Attachment {
        id: r.get(0)?,
        ticket_id: r.get(1)?,
        file_name: r.get(2)?,
        content_type: r.get(3)?,
        size: r.get(4)?,
        sha256: r.get(5)?,
        created_at: parse(r.get(6)?),
        updated_at: parse(r.get(7)?),
    })
}

fn find(conn: &Connection, id: i64) -> Result<Attachment, ApiError> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM attachments WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()?
    .ok_or_else(|| ApiError::not_found(&format!("attachment {id}")))
}

/// Upload parameters.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadParams {
    pub ticket_id: i64,
    /// The name to show and to save the file under.
    pub file_name: String,
}

#[utoipa::path(get, path = "/api/v1/attachments", tag = "attachments", security(("bearer" = [])),
    params(("ticket_id" = Option<i64>, Query), ("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<Attachment>), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(app): State<AppState>,
    auth: Auth,
    Query(q): Query<HashMap<String, String>>,
) -> Result<axum::Json<Page<Attachment>>, ApiError> {
    let mut ticket = None;
    let mut limit = 50i64;
    let mut cursor = 0i64;
    for (k, v) in &q {
        let num = || {
            v.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("{k} must be a whole number")))
        };
        match k.as_str() {
            "ticket_id" => ticket = Some(num()?),
            "limit" => limit = crate::shopdata::parse_limit(v)?,
            "cursor" => cursor = crate::shopdata::parse_cursor(v)?,
            other => {
                return Err(ApiError::bad_request(format!(
                    "{other:?} is not a filter of attachments; use ticket_id, limit, cursor"
                )));
            }
        }
    }
    let data = auth.shop_data(&app).await?;
    let items = data
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM attachments WHERE id > ?1 AND (?2 IS NULL OR ticket_id = ?2) ORDER BY id LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![cursor, ticket, limit + 1], from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await?;
    let (items, next) = crate::shopdata::page_of(items, limit, |a| Some(a.id.to_string()));
    Ok(axum::Json(Page { items, next }))
}

#[utoipa::path(post, path = "/api/v1/attachments", tag = "attachments", security(("bearer" = [])), params(UploadParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the file's bytes"),
    responses((status = 201, body = Attachment), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody), (status = 423, body = ErrorBody)))]
pub async fn upload(
    State(app): State<AppState>,
    auth: Auth,
    Query(params): Query<UploadParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    auth.require(Permission::WriteShopData)?;
    auth.require_writable()?;
    check_file_name(&params.file_name)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 100 && !v.is_empty())
        .unwrap_or("application/octet-stream")
        .to_string();
    let max = app.config.max_attachment_bytes;
    let bytes = axum::body::to_bytes(body, max).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("attachments may be at most {} MB", max / 1_000_000),
        )
    })?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request("the attachment is empty"));
    }
    let data = auth.shop_data(&app).await?;
    let root = data.attachments.clone();
    let now = app.clock.now();
    let attachment = data
        .db
        .write(move |c| {
            let ticket_exists: bool = c
                .query_row("SELECT 1 FROM tickets WHERE id = ?1", [params.ticket_id], |_| Ok(true))
                .optional()?
                .unwrap_or(false);
            if !ticket_exists {
                return Err(ApiError::invalid(format!("ticket {} does not exist", params.ticket_id)));
            }
            let sha = store_content(&root, &bytes).map_err(|e| ApiError::internal("store the attachment", e))?;
            let stamp = time_text(now);
            c.execute(
                "INSERT INTO attachments (ticket_id, file_name, content_type, size, sha256, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![
                    params.ticket_id,
                    params.file_name,
                    content_type,
                    bytes.len() as i64,
                    sha,
                    stamp
                ],
            )?;
            find(c, c.last_insert_rowid())
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(attachment)).into_response())
}

#[utoipa::path(get, path = "/api/v1/attachments/{id}", tag = "attachments", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Attachment), (status = 404, body = ErrorBody)))]
pub async fn get_one(
    State(app): State<AppState>,
    auth: Auth,
    UrlPath(id): UrlPath<i64>,
) -> Result<axum::Json<Attachment>, ApiError> {
    let data = auth.shop_data(&app).await?;
    Ok(axum::Json(data.db.read(move |c| find(c, id)).await?))
}

#[utoipa::path(patch, path = "/api/v1/attachments/{id}", tag = "attachments", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = AttachmentPatch,
    responses((status = 200, body = Attachment), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 423, body = ErrorBody)))]
pub async fn rename(
    State(app): State<AppState>,
    auth: Auth,
    UrlPath(id): UrlPath<i64>,
    JsonBody(patch): JsonBody<AttachmentPatch>,
) -> Result<axum::Json<Attachment>, ApiError> {
    auth.require(Permission::WriteShopData)?;
    auth.require_writable()?;
    let data = auth.shop_data(&app).await?;
    let now = app.clock.now();
    if let Some(name) = &patch.file_name {
        check_file_name(name)?;
    }
    Ok(axum::Json(
        data.db
            .write(move |c| {
                find(c, id)?;
                if let Some(name) = patch.file_name {
                    c.execute(
                        "UPDATE attachments SET file_name = ?1, updated_at = ?2 WHERE id = ?3",
                        params![name, time_text(now), id],
                    )?;
                }
                find(c, id)
            })
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/attachments/{id}", tag = "attachments", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 423, body = ErrorBody)))]
pub async fn delete(
    State(app): State<AppState>,
    auth: Auth,
    UrlPath(id): UrlPath<i64>,
) -> Result<StatusCode, ApiError> {
    auth.require(Permission::DeleteRecords)?;
    auth.require_writable()?;
    let data = auth.shop_data(&app).await?;
    let root = data.attachments.clone();
    data.db
        .write(move |c| {
            let a = find(c, id)?;
            c.execute("DELETE FROM attachments WHERE id = ?1", [id])?;
            let still_used: bool = c
                .query_row(
                    "SELECT 1 FROM attachments WHERE sha256 = ?1 LIMIT 1",
                    [&a.sha256],
                    |_| Ok(true),
                )
                .optional()?
                .unwrap_or(false);
            if !still_used {
                let _ = std::fs::remove_file(content_path(&root, &a.sha256));
            }
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/attachments/{id}/content", tag = "attachments", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "the file's bytes", content_type = "*/*"), (status = 404, body = ErrorBody)))]
pub async fn content(State(app): State<AppState>, auth: Auth, UrlPath(id): UrlPath<i64>) -> Result<Response, ApiError> {
    let data = auth.shop_data(&app).await?;
    let a = data.db.read(move |c| find(c, id)).await?;
    let path = content_path(&data.attachments, &a.sha256);
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| ApiError::internal(&format!("read attachment {id}'s file"), e))?;
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&a.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    let disposition = format!("attachment; filename*=UTF-8''{}", percent(&a.file_name));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&a.sha256) {
        h.insert("x-content-sha256", v);
    }
    Ok(resp)
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused() {
        for n in [
            "",
            ".",
            "..",
            "../x.jpg",
            "a/b.jpg",
            "a\\b.jpg",
            "x\0.jpg",
            "x\n.jpg",
            &"a".repeat(256),
        ] {
            assert!(check_file_name(n).is_err(), "{n:?} accepted");
        }
        for n in ["photo 1.jpg", "фото.jpg", "IMG_0001 (2).HEIC", "screen 😀.png"] {
            assert!(check_file_name(n).is_ok(), "{n:?} refused");
        }
    }
}
