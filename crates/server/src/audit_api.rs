//! The audit log for owners and managers: filtered reads and a CSV export (#5's
//! "Audit-log export"). Each account sees only its own entries; the export is itself
//! audited, as every read of exported data is.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use repairops_api::{ErrorBody, Page};
use rusqlite::types::Value;

use crate::app::AppState;
use crate::audit::{AuditEntry, ENTRY_COLUMNS};
use crate::auth::{Auth, Permission};
use crate::control;
use crate::error::{ApiError, Query};

pub use repairops_api::AuditRecord;

/// The WHERE clause and arguments of the filters (`from`, `to` as dates or times, a
/// date being the shop's day in `zone`; `event_type`, `user`), always limited to the
/// caller's account.
fn filters(
    account: &str,
    zone: chrono_tz::Tz,
    q: &HashMap<String, String>,
    allow: &[&str],
) -> Result<(String, Vec<Value>), ApiError> {
    let mut sql = String::from(" WHERE account = ?");
    let mut args = vec![Value::Text(account.to_string())];
    let (mut from, mut to) = (None, None);
    for (k, v) in q {
        match k.as_str() {
            "from" | "to" => {
                let t = crate::shopdata::parse_time_filter(v).ok_or_else(|| {
                    ApiError::bad_request(format!("{k} must be a date (2026-11-30) or a time (RFC 3339)"))
                })?;
                let bound = if k == "from" { Some(t.start(zone)) } else { t.end(zone) };
                if k == "from" {
                    from = Some((v, t.start(zone)));
                } else {
                    to = bound.map(|b| (v, b));
                }
                if let Some(bound) = bound {
                    sql.push_str(if k == "from" { " AND at >= ?" } else { " AND at < ?" });
                    args.push(Value::Text(crate::shopdata::time_text(bound)));
                }
            }
            "event_type" => {
                sql.push_str(" AND event_type = ?");
                args.push(Value::Text(v.clone()));
            }
            "user" => {
                sql.push_str(" AND user = ? COLLATE NOCASE");
                args.push(Value::Text(v.clone()));
            }
            other if allow.contains(&other) => {}
            other => {
                return Err(ApiError::bad_request(format!(
                    "{other:?} is not a filter of the audit log; use from, to, event_type, user{}",
                    if allow.is_empty() { "" } else { ", limit, cursor" }
                )));
            }
        }
    }
    if let (Some((f, start)), Some((t, end))) = (from, to)
        && start >= end
    {
        return Err(ApiError::bad_request(format!(
            "from ({f}) is not before to ({t}): no entry could match"
        )));
    }
    Ok((sql, args))
}

fn record(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRecord> {
    Ok(AuditRecord {
        seq: r.get(0)?,
        entry: crate::audit::entry_from_row(r, 1)?,
    })
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", security(("bearer" = [])),
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query), ("event_type" = Option<String>, Query),
           ("user" = Option<String>, Query), ("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<AuditRecord>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(app): State<AppState>,
    auth: Auth,
    Query(q): Query<HashMap<String, String>>,
) -> Result<axum::Json<Page<AuditRecord>>, ApiError> {
    auth.require(Permission::Exports)?;
    let (mut sql, mut args) = filters(
        &auth.account.account.slug,
        control::account_tz(&auth.account.account),
        &q,
        &["limit", "cursor"],
    )?;
    let limit = match q.get("limit") {
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| ApiError::bad_request("limit must be 1 to 1000"))?,
        None => 100,
    };
    if let Some(c) = q.get("cursor") {
        let c: i64 = c
            .parse()
            .map_err(|_| ApiError::bad_request("cursor must be the `next` of a previous page"))?;
        sql.push_str(" AND seq < ?");
        args.push(Value::Integer(c));
    }
    args.push(Value::Integer(limit + 1));
    let query = format!("SELECT seq, {ENTRY_COLUMNS} FROM audit_log{sql} ORDER BY seq DESC LIMIT ?");
    let items = app
        .control
        .read(move |c| {
            let mut stmt = c.prepare(&query).map_err(control::db_err)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args.iter()), record)
                .map_err(control::db_err)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(control::db_err)
        })
        .await?;
    let (items, next) = crate::shopdata::page_of(items, limit, |r| Some(r.seq.to_string()));
    Ok(axum::Json(Page { items, next }))
}

pub use crate::exports::spreadsheet_safe;

#[utoipa::path(get, path = "/api/v1/audit/export.csv", tag = "audit", security(("bearer" = [])),
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query), ("event_type" = Option<String>, Query), ("user" = Option<String>, Query)),
    responses((status = 200, description = "CSV: timestamp, user, action, resource, ip_address, result, event_type, detail", content_type = "text/csv"),
              (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn export_csv(
    State(app): State<AppState>,
    auth: Auth,
    ext: axum::http::Extensions,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    auth.require(Permission::Exports)?;
    let (sql, args) = filters(
        &auth.account.account.slug,
        control::account_tz(&auth.account.account),
        &q,
        &[],
    )?;
    // Audited once it ends, with what was sent: written before the body ends, so a
    // client that has the whole file finds the entry in the log.
    let entry = AuditEntry {
        at: control::now_text(),
        account: auth.account.account.slug.clone(),
        user: auth.identity.email.clone(),
        event_type: "export".into(),
        action: "GET /api/v1/audit/export.csv".into(),
        resource: "audit_log".into(),
        ip: crate::http::client_ip(&ext).to_string(),
        result: "success".into(),
        detail: String::new(),
    };
    // Rows are written as they are read, a few hundred at a time: memory stays flat
    // however long the log.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let db_path = app.control.path().to_path_buf();
    let (control, key) = (app.control.clone(), app.audit_key.clone());
    tokio::task::spawn_blocking(move || {
        let mut n = 0u64;
        let result = (|| -> Result<bool, String> {
            let conn = crate::db::open_connection(&db_path).map_err(|e| e.to_string())?;
            let mut stmt = conn
                .prepare(&format!("SELECT seq, {ENTRY_COLUMNS} FROM audit_log{sql} ORDER BY seq"))
                .map_err(|e| e.to_string())?;
            let mut rows = stmt
                .query(rusqlite::params_from_iter(args.iter()))
                .map_err(|e| e.to_string())?;
            // A fresh writer per batch; its buffer is the chunk sent to the client.
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record([
                "timestamp",
                "user",
                "action",
                "resource",
                "ip_address",
                "result",
                "event_type",
                "detail",
            ])
            .map_err(|e| e.to_string())?;
            while let Some(r) = rows.next().map_err(|e| e.to_string())? {
                let rec = record(r).map_err(|e| e.to_string())?;
                let cells = [
                    &rec.entry.at,
                    &rec.entry.user,
                    &rec.entry.action,
                    &rec.entry.resource,
                    &rec.entry.ip,
                    &rec.entry.result,
                    &rec.entry.event_type,
                    &rec.entry.detail,
                ];
                w.write_record(cells.iter().map(|c| spreadsheet_safe(c).into_owned()))
                    .map_err(|e| e.to_string())?;
                n += 1;
                if n.is_multiple_of(500) {
                    let chunk = std::mem::replace(&mut w, csv::Writer::from_writer(Vec::new()))
                        .into_inner()
                        .map_err(|e| e.to_string())?;
                    if tx.blocking_send(Ok(chunk)).is_err() {
                        return Ok(false); // the client went away
                    }
                }
            }
            let rest = w.into_inner().map_err(|e| e.to_string())?;
            Ok(tx.blocking_send(Ok(rest)).is_ok())
        })();
        let (outcome, detail) = match &result {
            Ok(true) => ("success", format!("{n} entries")),
            Ok(false) => ("failure", format!("the client went away after {n} entries")),
            Err(e) => ("failure", format!("stopped after {n} entries: {e}")),
        };
        let entry = AuditEntry {
            at: control::now_text(),
            result: outcome.into(),
            detail,
            ..entry
        };
        control.with_writer(|c| {
            if let Err(e) = crate::audit::append(c, &key, &entry) {
                tracing::error!(error = %e, "audit entry lost");
            }
        });
        if let Err(e) = result {
            tracing::error!(error = %e, "audit export failed");
            let _ = tx.blocking_send(Err(std::io::Error::other(e)));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let mut resp = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        header::HeaderValue::from_static("attachment; filename=\"audit-log.csv\""),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused() {
        assert_eq!(spreadsheet_safe("=SUM(A1:A9)"), "'=SUM(A1:A9)");
        assert_eq!(spreadsheet_safe("+1"), "'+1");
        assert_eq!(spreadsheet_safe("@cmd"), "'@cmd");
        assert_eq!(
            spreadsheet_safe("owner@demo.repairops.test"),
            "owner@demo.repairops.test"
        );
        assert_eq!(spreadsheet_safe(""), "");
    }

    fn bounds(q: &[(&str, &str)]) -> Result<(String, Vec<Value>), ApiError> {
        bounds_in(chrono_tz::UTC, q)
    }

    fn bounds_in(zone: chrono_tz::Tz, q: &[(&str, &str)]) -> Result<(String, Vec<Value>), ApiError> {
        let q: HashMap<String, String> = q.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        filters("demo", zone, &q, &[])
    }

    #[test]
    fn dates_are_the_shops_days_and_times_are_moments() {
        let la = chrono_tz::America::Los_Angeles;
        // 5 November in Los Angeles (UTC-7 until the 1st, UTC-8 after) is 08:00 UTC
        // to 08:00 UTC the next day; a UTC day would leave out its last eight hours.
        let (_, args) = bounds_in(la, &[("from", "2026-11-05"), ("to", "2026-11-05")]).unwrap();
        let texts: Vec<Value> = args[1..].to_vec();
        assert!(
            texts.contains(&Value::Text("2026-11-05T08:00:00.000000Z".into())),
            "{texts:?}"
        );
        assert!(
            texts.contains(&Value::Text("2026-11-06T08:00:00.000000Z".into())),
            "{texts:?}"
        );
        // The day the clocks go back is 25 hours long: 07:00 UTC to 08:00 UTC next day.
        let (_, args) = bounds_in(la, &[("from", "2026-11-01")]).unwrap();
        assert_eq!(args[1], Value::Text("2026-11-01T07:00:00.000000Z".into()));
        let (_, args) = bounds_in(la, &[("to", "2026-11-01")]).unwrap();
        assert_eq!(args[1], Value::Text("2026-11-02T08:00:00.000000Z".into()));
        // A time with its offset is that moment wherever the shop is.
        let (_, args) = bounds_in(la, &[("to", "2026-11-05T10:00:00Z")]).unwrap();
        assert_eq!(args[1], Value::Text("2026-11-05T10:00:00.000000Z".into()));
    }

    #[test]
    fn a_to_date_takes_in_its_whole_day_and_odd_dates_are_refused() {
        let (sql, args) = bounds(&[("to", "2026-11-05")]).unwrap();
        assert_eq!(sql, " WHERE account = ? AND at < ?");
        assert_eq!(args[1], Value::Text("2026-11-06T00:00:00.000000Z".into()));
        // A time is the moment itself.
        let (_, args) = bounds(&[("to", "2026-11-05T10:00:00Z")]).unwrap();
        assert_eq!(args[1], Value::Text("2026-11-05T10:00:00.000000Z".into()));
        // The last day there is: no bound, not one in the year 10000 (`+10000-…` sorts first).
        let (sql, _) = bounds(&[("to", "9999-12-31")]).unwrap();
        assert_eq!(sql, " WHERE account = ?");
        // A day is its whole day: from and to the same day is one day, not none.
        assert!(bounds(&[("from", "2026-11-05"), ("to", "2026-11-05")]).is_ok());
        let e = bounds(&[("from", "2026-11-06"), ("to", "2026-11-05")]).unwrap_err();
        assert!(e.message.contains("is not before"), "{}", e.message);
        for bad in ["2026-11-5", " 2026-11-05", "+10000-01-01", "2026-02-30"] {
            let e = bounds(&[("from", bad)]).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad:?}");
        }
    }
}
