//! Single-record restore: one ticket (with its notes, messages, invoices, their lines
//! and payments, and attachments) or one customer (with their tickets and all of that)
//! brought back from a backup into live data, touching nothing else.
//!
//! The backup's database is fetched beside the live one and attached to the live
//! connection; rows are compared column by column. A row missing from live data is
//! inserted, an identical one left alone, and one that differs is a conflict: answered
//! 409 with the list, unless the caller repeats with `overwrite: true`. A customer in
//! the deletion ledger is refused.
//!
//! Deleting a row set the keys that pointed at it to NULL wherever the schema says
//! `ON DELETE SET NULL` (a message's ticket, a payment record's invoice). Those keys
//! are linked again to the rows brought back; and a row brought back that points at
//! something live data has since lost (a deleted stock item) gets NULL there, as the
//! deletion gave every other row, instead of refusing the restore.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path as FsPath;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use repairops_api::{Backup, ErrorBody};
use rusqlite::Connection;
use serde_json::json;

use crate::app::{AppState, ShopData};
use crate::audit::AuditEntry;
use crate::auth::{Auth, Permission};
use crate::control;
use crate::error::{ApiError, Deferred};

pub use repairops_api::{RecordConflict as Conflict, RecordRestoreRequest, RecordRestoreResult};

/// The tables of a record set, parents first (the order rows are inserted in).
const TABLES: [&str; 8] = [
    "customers",
    "tickets",
    "ticket_notes",
    "communications",
    "invoices",
    "invoice_lines",
    "payments",
    "attachments",
];

/// Fills `temp.pick_{table}` with the ids of the record set in the attached backup `bk`.
fn pick(conn: &Connection, kind: &str, id: i64) -> rusqlite::Result<()> {
    for t in TABLES {
        conn.execute_batch(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS pick_{t} (id INTEGER PRIMARY KEY); DELETE FROM temp.pick_{t};"
        ))?;
    }
    if kind == "customer" {
        conn.execute(
            "INSERT INTO temp.pick_customers SELECT id FROM bk.customers WHERE id = ?1",
            [id],
        )?;
        conn.execute(
            "INSERT INTO temp.pick_tickets SELECT id FROM bk.tickets WHERE customer_id = ?1",
            [id],
        )?;
        conn.execute(
            "INSERT OR IGNORE INTO temp.pick_communications SELECT id FROM bk.communications WHERE customer_id = ?1",
            [id],
        )?;
        conn.execute(
            "INSERT OR IGNORE INTO temp.pick_invoices SELECT id FROM bk.invoices WHERE customer_id = ?1",
            [id],
        )?;
    } else {
        conn.execute(
            "INSERT INTO temp.pick_tickets SELECT id FROM bk.tickets WHERE id = ?1",
            [id],
        )?;
        // The ticket's customer comes too when live data lacks it (otherwise it is left alone).
        conn.execute(
            "INSERT INTO temp.pick_customers SELECT customer_id FROM bk.tickets WHERE id = ?1
             AND customer_id NOT IN (SELECT id FROM main.customers)",
            [id],
        )?;
    }
    conn.execute_batch(
        "INSERT OR IGNORE INTO temp.pick_ticket_notes SELECT id FROM bk.ticket_notes WHERE ticket_id IN (SELECT id FROM temp.pick_tickets);
         INSERT OR IGNORE INTO temp.pick_communications SELECT id FROM bk.communications WHERE ticket_id IN (SELECT id FROM temp.pick_tickets);
         INSERT OR IGNORE INTO temp.pick_invoices SELECT id FROM bk.invoices WHERE ticket_id IN (SELECT id FROM temp.pick_tickets);
         INSERT OR IGNORE INTO temp.pick_invoice_lines SELECT id FROM bk.invoice_lines WHERE invoice_id IN (SELECT id FROM temp.pick_invoices);
         INSERT OR IGNORE INTO temp.pick_payments SELECT id FROM bk.payments WHERE invoice_id IN (SELECT id FROM temp.pick_invoices);
         INSERT OR IGNORE INTO temp.pick_attachments SELECT id FROM bk.attachments WHERE ticket_id IN (SELECT id FROM temp.pick_tickets);",
    )
}

/// A column that SQLite sets to NULL when the row it points at is deleted
/// (`ON DELETE SET NULL`): a message's or an invoice's ticket, a payment record's
/// customer or invoice, an invoice line's stock item. Read from the schema, so a key
/// added by a later migration is handled too.
struct Unlinking {
    table: String,
    column: String,
    parent: String,
}

fn unlinking_keys(conn: &Connection) -> rusqlite::Result<Vec<Unlinking>> {
    let mut stmt = conn.prepare(
        "SELECT m.name, f.\"from\", f.\"table\" FROM main.sqlite_schema m, pragma_foreign_key_list(m.name, 'main') f
         WHERE m.type = 'table' AND f.on_delete = 'SET NULL' ORDER BY m.name, f.id",
    )?;
    let keys = stmt.query_map([], |r| {
        Ok(Unlinking {
            table: r.get(0)?,
            column: r.get(1)?,
            parent: r.get(2)?,
        })
    })?;
    keys.collect()
}

/// Fills `temp.added_{table}` with the ids of the set that live data lacks: the rows
/// the restore inserts.
fn mark_added(conn: &Connection) -> rusqlite::Result<()> {
    for t in TABLES {
        conn.execute_batch(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS added_{t} (id INTEGER PRIMARY KEY); DELETE FROM temp.added_{t};
             INSERT INTO temp.added_{t} SELECT id FROM temp.pick_{t} WHERE id NOT IN (SELECT id FROM main.{t});"
        ))?;
    }
    Ok(())
}

/// Whether live row `live` (an alias) of `table` equals backup row `b` in `cols`. A
/// key that is NULL in live data where the backup points at a row live data lacks
/// counts as equal: that row's deletion set it to NULL (and if the row is being
/// brought back, the restore links it again).
fn same_row(table: &str, cols: &[String], keys: &[Unlinking], live: &str) -> String {
    cols.iter()
        .map(|c| match keys.iter().find(|k| k.table == table && &k.column == c) {
            Some(k) => {
                let parent = &k.parent;
                let restored = if TABLES.contains(&parent.as_str()) {
                    format!("b.\"{c}\" IN (SELECT id FROM temp.added_{parent}) OR ")
                } else {
                    String::new()
                };
                format!(
                    "({live}.\"{c}\" IS b.\"{c}\" OR ({live}.\"{c}\" IS NULL AND ({restored}b.\"{c}\" NOT IN (SELECT id FROM main.{parent}))))"
                )
            }
            None => format!("{live}.\"{c}\" IS b.\"{c}\""),
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// Live rows of the set that differ from the backup's.
fn conflicts(conn: &Connection, keys: &[Unlinking]) -> rusqlite::Result<Vec<Conflict>> {
    let mut out = Vec::new();
    for t in TABLES {
        let cols = crate::exports::table_columns(conn, t)?;
        let same = same_row(t, &cols, keys, "m");
        let mut stmt = conn.prepare(&format!(
            "SELECT b.id, m.updated_at, b.updated_at FROM bk.{t} b JOIN main.{t} m ON m.id = b.id
             WHERE b.id IN (SELECT id FROM temp.pick_{t}) AND NOT ({same}) ORDER BY b.id"
        ))?;
        let rows = stmt.query_map([], |r| {
            Ok(Conflict {
                table: t.to_string(),
                id: r.get(0)?,
                live_updated_at: r.get(1)?,
                backup_updated_at: r.get(2)?,
            })
        })?;
        for c in rows {
            out.push(c?);
        }
    }
    Ok(out)
}

/// Why a record restore was refused or failed.
enum Refusal {
    Api(ApiError),
    Conflicts(Vec<Conflict>),
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Refusal {
        Refusal::Api(e)
    }
}

fn db(context: &'static str) -> impl Fn(rusqlite::Error) -> Refusal {
    move |e| {
        let msg = e.to_string();
        if msg.contains("FOREIGN KEY") {
            Refusal::Api(ApiError::conflict(format!(
                "the {context} refers to something live data no longer has (a team member, a shop or a stock item); nothing was restored"
            )))
        } else if msg.contains("UNIQUE") {
            Refusal::Api(ApiError::conflict(format!(
                "a live record already uses a number the {context} needs ({msg}); nothing was restored"
            )))
        } else {
            Refusal::Api(ApiError::internal("restore the record", e))
        }
    }
}

/// Rows per table.
type Counts = BTreeMap<String, u64>;

/// Applies the set: inserts what is missing, overwrites what differs when asked.
/// Returns the rows inserted, overwritten and left unchanged.
fn apply(conn: &mut Connection, overwrite: bool, kind: &'static str) -> Result<[Counts; 3], Refusal> {
    let tx = conn.transaction().map_err(db(kind))?;
    let keys = unlinking_keys(&tx).map_err(db(kind))?;
    mark_added(&tx).map_err(db(kind))?;
    let found = conflicts(&tx, &keys).map_err(db(kind))?;
    if !found.is_empty() && !overwrite {
        return Err(Refusal::Conflicts(found));
    }
    let (mut inserted, mut overwritten, mut unchanged) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    tx.execute_batch("PRAGMA defer_foreign_keys = ON").map_err(db(kind))?;
    for t in TABLES {
        let cols = crate::exports::table_columns(&tx, t).map_err(db(kind))?;
        let list = cols.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ");
        let from_backup = cols.iter().map(|c| format!("b.\"{c}\"")).collect::<Vec<_>>().join(", ");
        let ids: Vec<i64> = found.iter().filter(|c| c.table == t).map(|c| c.id).collect();
        let mut replaced = 0;
        for id in &ids {
            replaced += tx
                .execute(
                    &format!(
                        "UPDATE main.{t} SET ({list}) = (SELECT {from_backup} FROM bk.{t} b WHERE b.id = ?1) WHERE id = ?1"
                    ),
                    [id],
                )
                .map_err(db(kind))? as u64;
        }
        let added = tx
            .execute(
                &format!(
                    "INSERT INTO main.{t} ({list}) SELECT {from_backup} FROM bk.{t} b
                     WHERE b.id IN (SELECT id FROM temp.added_{t}) ORDER BY b.id"
                ),
                [],
            )
            .map_err(db(kind))? as u64;
        let picked: i64 = tx
            .query_row(&format!("SELECT count(*) FROM temp.pick_{t}"), [], |r| r.get(0))
            .map_err(db(kind))?;
        inserted.insert(t.to_string(), added);
        overwritten.insert(t.to_string(), replaced);
        unchanged.insert(t.to_string(), (picked as u64).saturating_sub(added + replaced));
    }
    for key in &keys {
        let Unlinking { table, column, parent } = key;
        if TABLES.contains(&parent.as_str()) {
            // Rows anywhere in live data that the deletion of a row now brought back
            // unlinked are linked again (not counted as unchanged: they changed): only
            // where the live row is otherwise the backup's, so a row that merely reuses
            // the id is left alone.
            let others: Vec<String> = crate::exports::table_columns(&tx, table)
                .map_err(db(kind))?
                .into_iter()
                .filter(|c| c != column)
                .collect();
            let same = same_row(table, &others, &keys, &format!("main.{table}"));
            let relinked = tx
                .execute(
                    &format!(
                        "UPDATE main.{table} SET \"{column}\" = (SELECT b.\"{column}\" FROM bk.{table} b WHERE b.id = main.{table}.id)
                         WHERE \"{column}\" IS NULL
                         AND EXISTS (SELECT 1 FROM bk.{table} b WHERE b.id = main.{table}.id
                                     AND b.\"{column}\" IN (SELECT id FROM temp.added_{parent}) AND {same})"
                    ),
                    [],
                )
                .map_err(db(kind))? as u64;
            if relinked > 0 {
                *overwritten.entry(table.clone()).or_insert(0) += relinked;
                if let Some(n) = unchanged.get_mut(table) {
                    *n = n.saturating_sub(relinked);
                }
            }
        }
        if TABLES.contains(&table.as_str()) {
            // A row brought back (inserted or overwritten) that points at something since
            // deleted from live data (a stock item) gets NULL there, as that deletion
            // gave every other row.
            tx.execute(
                &format!(
                    "UPDATE main.{table} SET \"{column}\" = NULL
                     WHERE id IN (SELECT id FROM temp.pick_{table}) AND \"{column}\" IS NOT NULL
                     AND \"{column}\" NOT IN (SELECT id FROM main.{parent})"
                ),
                [],
            )
            .map_err(db(kind))?;
        }
    }
    tx.commit().map_err(db(kind))?;
    Ok([inserted, overwritten, unchanged])
}

/// What may be restored on its own, as named in messages.
fn record_kind(kind: &str) -> Result<&'static str, ApiError> {
    match kind {
        "ticket" => Ok("ticket"),
        "customer" => Ok("customer"),
        other => Err(ApiError::invalid(format!(
            "{other:?} cannot be restored on its own; use ticket or customer"
        ))),
    }
}

/// Runs a whole record restore on a blocking thread.
fn run(
    app: &AppState,
    auth: &Auth,
    data: &ShopData,
    backup: &Backup,
    req: &RecordRestoreRequest,
    stage_name: &str,
) -> Result<RecordRestoreResult, Refusal> {
    let slug = &auth.account.account.slug;
    let account_dir = app.config.account_dir(slug);
    let stage = record_staging_root(&account_dir).join(stage_name);
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage).map_err(|e| ApiError::internal("prepare the restore", e))?;
    let result = (|| -> Result<RecordRestoreResult, Refusal> {
        let backup_db = stage.join("backup.db");
        let ((repo, index, snap), location) =
            crate::restores::from_either(&app.config, slug, backup, |repo, index, snap| {
                let mut f = std::fs::File::create(&backup_db)
                    .map_err(|e| format!("cannot create {}: {e}", backup_db.display()))?;
                repairops_vault::restore_to_writer(&repo, &index, &snap, "live.db", &mut f)
                    .map_err(|e| e.to_string())?;
                Ok((repo, index, snap))
            })
            .map_err(|e| Refusal::Api(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage", e)))?;
        restore_from(app, auth, data, &backup_db, req, location, |sha, out| {
            repairops_vault::restore_to_writer(&repo, &index, &snap, &attachment_path(sha), out)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    })();
    let _ = std::fs::remove_dir_all(&stage);
    let _ = std::fs::remove_dir(record_staging_root(&account_dir));
    result
}

/// Where record restores stage a backup's database; whatever a crash left there is
/// removed at start-up.
pub(crate) fn record_staging_root(account_dir: &FsPath) -> std::path::PathBuf {
    account_dir.join(".record")
}

/// Where an attachment sits inside a backup's snapshot.
fn attachment_path(sha: &str) -> String {
    match (sha.get(..2), sha.get(2..4)) {
        (Some(a), Some(b)) => format!("attachments/{a}/{b}/{sha}"),
        _ => format!("attachments/{sha}"),
    }
}

fn restore_from(
    app: &AppState,
    auth: &Auth,
    data: &ShopData,
    backup_db: &FsPath,
    req: &RecordRestoreRequest,
    location: &str,
    fetch_file: impl Fn(&str, &mut dyn Write) -> Result<(), String>,
) -> Result<RecordRestoreResult, Refusal> {
    let kind = record_kind(&req.kind)?;
    // The backup's schema brought up to date, so its columns match live data's.
    crate::app::open_live(backup_db).map_err(|e| ApiError::internal("open the backup's database", e))?;
    let mut conn =
        crate::db::open_connection(data.db.path()).map_err(|e| ApiError::internal("open the shop's data", e))?;
    conn.execute("ATTACH DATABASE ?1 AS bk", [backup_db.to_string_lossy()])
        .map_err(|e| ApiError::internal("open the backup's database", e))?;
    pick(&conn, &req.kind, req.id).map_err(db(kind))?;
    let picked: i64 = conn
        .query_row(&format!("SELECT count(*) FROM temp.pick_{}s", req.kind), [], |r| {
            r.get(0)
        })
        .map_err(db(kind))?;
    if picked == 0 {
        return Err(Refusal::Api(ApiError::not_found(&format!(
            "{kind} {} in backup {}",
            req.id, req.backup_id
        ))));
    }
    // A customer erased on request stays erased.
    let people: Vec<(i64, Option<String>, String)> = {
        let mut stmt = conn
            .prepare(
                "SELECT id, email, created_at FROM bk.customers WHERE id IN (SELECT id FROM temp.pick_customers)
                 OR id IN (SELECT customer_id FROM bk.tickets WHERE id IN (SELECT id FROM temp.pick_tickets))",
            )
            .map_err(db(kind))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(db(kind))?;
        rows.collect::<rusqlite::Result<_>>().map_err(db(kind))?
    };
    let ledger = crate::erasure::Ledger::load(&app.control, auth.account.id)
        .map_err(|e| ApiError::internal("read the deletion ledger", e))?;
    for (id, email, born) in &people {
        if ledger.erases(&app.ledger_key, *id, born, email.as_deref()) {
            return Err(Refusal::Api(ApiError::new(
                StatusCode::CONFLICT,
                "erased",
                format!("customer {id} was permanently deleted on request (CCPA); their records cannot be restored"),
            )));
        }
    }
    let shas: Vec<String> = {
        let mut stmt = conn
            .prepare("SELECT DISTINCT sha256 FROM bk.attachments WHERE id IN (SELECT id FROM temp.pick_attachments)")
            .map_err(db(kind))?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(db(kind))?;
        rows.collect::<rusqlite::Result<_>>().map_err(db(kind))?
    };
    // Attachment files the live folder lacks come first, so rows never point at a file
    // that is not there; if the rows are then refused, the files added go again.
    let mut added: Vec<(String, std::path::PathBuf)> = Vec::new();
    let fetched = (|| -> Result<(), String> {
        for sha in shas {
            let dest = crate::attachments::content_path(&data.attachments, &sha);
            if dest.exists() {
                continue;
            }
            if let Some(dir) = dest.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            let tmp = dest.with_extension("part");
            let written = crate::jobs::panic_as_error("record restore", || {
                let mut f = std::fs::File::create(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
                fetch_file(&sha, &mut f)?;
                f.sync_all()
                    .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
                crate::faults::point("record_restore.attachment_fetched");
                std::fs::rename(&tmp, &dest).map_err(|e| format!("cannot put {} in place: {e}", dest.display()))
            });
            if let Err(e) = written {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            added.push((sha, dest));
        }
        Ok(())
    })();
    let applied = fetched
        .map_err(|e| Refusal::Api(ApiError::internal("restore an attachment", e)))
        .and_then(|()| apply(&mut conn, req.overwrite, kind));
    let [inserted, overwritten, unchanged] = match applied {
        Ok(counts) => counts,
        Err(e) => {
            // Unless a photo uploaded meanwhile has the same content and uses it.
            for (sha, file) in &added {
                let used = conn
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM main.attachments WHERE sha256 = ?1)",
                        [sha],
                        |r| r.get::<_, bool>(0),
                    )
                    .unwrap_or(true);
                if !used {
                    let _ = std::fs::remove_file(file);
                }
            }
            return Err(e);
        }
    };
    let files = added.len() as u64;
    let _ = conn.execute("DETACH DATABASE bk", []);
    Ok(RecordRestoreResult {
        backup_id: req.backup_id,
        kind: req.kind.clone(),
        id: req.id,
        location: location.to_string(),
        inserted,
        overwritten,
        unchanged,
        attachment_files: files,
    })
}

#[utoipa::path(post, path = "/api/v1/restores/records", tag = "restores", security(("bearer" = [])),
    request_body = RecordRestoreRequest,
    responses((status = 200, body = RecordRestoreResult), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "live records differ (listed in error.conflicts), or the customer was erased on request"),
              (status = 422, body = ErrorBody), (status = 423, body = ErrorBody)))]
pub async fn create(
    State(app): State<AppState>,
    auth: Auth,
    ext: axum::http::Extensions,
    body: Deferred<RecordRestoreRequest>,
) -> Result<Response, ApiError> {
    auth.require(Permission::RunBackups)?;
    auth.require_writable()?;
    let req = body.parse()?;
    let kind = record_kind(&req.kind)?;
    let backup = crate::backup_api::find_backup(&app, auth.account.id, req.backup_id).await?;
    if backup.state != repairops_api::JobState::Succeeded {
        return Err(ApiError::invalid(format!("backup {} did not complete", backup.id)));
    }
    let data = app.shop_data(&auth.account.account.slug).await?;
    let handle = app
        .jobs
        .start(auth.account.id, &auth.account.account.slug, "record_restore")?;
    // The work, its audit entry and the job's end run in a task of their own: a client
    // that goes away mid-restore neither cuts the audit short nor frees the job while
    // the restore still writes.
    let restoring = tokio::spawn(async move {
        let (app2, auth2, req2) = (app.clone(), auth.clone(), req.clone());
        let stage = format!("job-{}", handle.id);
        let outcome = tokio::task::spawn_blocking(move || run(&app2, &auth2, &data, &backup, &req2, &stage))
            .await
            .unwrap_or_else(|e| Err(Refusal::Api(ApiError::internal("restore the record", e))));
        finish(&app, &auth, &ext, &req, kind, handle, outcome).await
    });
    let resp = restoring
        .await
        .map_err(|e| ApiError::internal("restore the record", e))?;
    Ok(crate::http::audited(resp))
}

/// Audits a finished record restore, ends its job and makes the answer.
async fn finish(
    app: &AppState,
    auth: &Auth,
    ext: &axum::http::Extensions,
    req: &RecordRestoreRequest,
    kind: &str,
    handle: crate::jobs::JobHandle,
    outcome: Result<RecordRestoreResult, Refusal>,
) -> Response {
    let (result, detail) = match &outcome {
        Ok(r) => (
            "success",
            format!(
                "{kind} {} from backup {}: inserted {:?}, overwritten {:?}",
                req.id, req.backup_id, r.inserted, r.overwritten
            ),
        ),
        Err(Refusal::Conflicts(c)) => (
            "failure",
            format!(
                "{kind} {} from backup {}: {} live records differ",
                req.id,
                req.backup_id,
                c.len()
            ),
        ),
        Err(Refusal::Api(e)) => (
            "failure",
            format!("{kind} {} from backup {}: {}", req.id, req.backup_id, e.message),
        ),
    };
    app.audit(AuditEntry {
        at: control::now_text(),
        account: auth.account.account.slug.clone(),
        user: auth.identity.email.clone(),
        event_type: "restore".into(),
        action: "restore one record".into(),
        resource: format!("/api/v1/restores/records ({kind} {})", req.id),
        ip: crate::http::client_ip(ext).to_string(),
        result: result.into(),
        detail,
    })
    .await;
    match outcome {
        Ok(r) => {
            handle.succeed(json!({"kind": kind, "id": req.id}));
            axum::Json(r).into_response()
        }
        Err(Refusal::Conflicts(c)) => {
            handle.fail("live records differ from the backup".into());
            let body = json!({"error": {
                "code": "would_overwrite",
                "message": format!("{} live records differ from the backup's; repeat with overwrite: true to replace them", c.len()),
                "conflicts": c,
            }});
            (StatusCode::CONFLICT, axum::Json(body)).into_response()
        }
        Err(Refusal::Api(e)) => {
            handle.fail(e.message.clone());
            e.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "'2026-01-01T00:00:00Z'";

    /// A backup with two tickets of one customer: ticket 10's invoice 20 sold stock item 5
    /// and was paid by transactions 30 and 31; ticket 11's invoice 21 sold item 5 too.
    fn backup(path: &FsPath) {
        let mut c = Connection::open(path).unwrap();
        crate::db::migrate(&mut c, crate::live::MIGRATIONS).unwrap();
        c.execute_batch(&format!(
            "INSERT INTO shops (id, name, created_at, updated_at) VALUES (1, 'Shop', {T}, {T});
             INSERT INTO customers (id, shop_id, first_name, last_name, created_at, updated_at) VALUES (1, 1, 'Ann', 'Lee', {T}, {T});
             INSERT INTO inventory (id, shop_id, sku, name, created_at, updated_at) VALUES (5, 1, 'SCR-1', 'Screen', {T}, {T});
             INSERT INTO tickets (id, shop_id, customer_id, device_make, device_model, problem, created_at, updated_at)
                 VALUES (10, 1, 1, 'Apple', 'iPhone', 'cracked', {T}, {T}), (11, 1, 1, 'Apple', 'iPad', 'battery', {T}, {T});
             INSERT INTO invoices (id, shop_id, customer_id, ticket_id, number, created_at, updated_at)
                 VALUES (20, 1, 1, 10, 'INV-20', {T}, {T}), (21, 1, 1, 11, 'INV-21', {T}, {T});
             INSERT INTO invoice_lines (id, invoice_id, kind, description, quantity, unit_price_cents, inventory_id, created_at, updated_at)
                 VALUES (1, 20, 'part', 'Screen', 1, 9000, 5, {T}, {T}), (2, 21, 'part', 'Screen', 1, 9000, 5, {T}, {T});
             INSERT INTO transactions (id, shop_id, customer_id, invoice_id, kind, total_cents, payment_method, created_at, updated_at)
                 VALUES (30, 1, 1, 20, 'sale', 5000, 'cash', {T}, {T}), (31, 1, 1, 20, 'sale', 4000, 'cash', {T}, {T});"
        ))
        .unwrap();
    }

    fn value(c: &Connection, sql: &str) -> Option<i64> {
        c.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn keys_a_deletion_set_to_null_are_linked_again_and_only_on_the_same_rows() {
        let dir = tempfile::tempdir().unwrap();
        let (bk, live) = (dir.path().join("backup.db"), dir.path().join("live.db"));
        backup(&bk);
        std::fs::copy(&bk, &live).unwrap();
        let mut c = crate::db::open_connection(&live).unwrap();
        // Since the backup: the stock item and invoice 20 were deleted (their keys set to
        // NULL), then ticket 10; transaction 31 was deleted and its id reused by a new
        // one with no invoice.
        c.execute_batch(
            "DELETE FROM inventory WHERE id = 5;
             DELETE FROM invoices WHERE id = 20;
             DELETE FROM tickets WHERE id = 10;
             DELETE FROM transactions WHERE id = 31;
             INSERT INTO transactions (id, shop_id, customer_id, kind, total_cents, payment_method, created_at, updated_at)
                 VALUES (31, 1, 1, 'refund', -700, 'card', '2026-02-01T00:00:00Z', '2026-02-01T00:00:00Z');",
        )
        .unwrap();
        assert_eq!(value(&c, "SELECT invoice_id FROM transactions WHERE id = 30"), None);
        assert_eq!(value(&c, "SELECT inventory_id FROM invoice_lines WHERE id = 2"), None);
        c.execute("ATTACH DATABASE ?1 AS bk", [bk.to_string_lossy()]).unwrap();

        // Ticket 11 is as in the backup but for the stock item's deletion: nothing to do.
        pick(&c, "ticket", 11).unwrap();
        let Ok([inserted, overwritten, _]) = apply(&mut c, false, "ticket") else {
            panic!("ticket 11 is no conflict");
        };
        assert!(inserted.values().all(|n| *n == 0), "{inserted:?}");
        assert!(overwritten.values().all(|n| *n == 0), "{overwritten:?}");

        // Ticket 10 comes back with invoice 20; transaction 30 points at it again, the new
        // transaction 31 does not; the line for the deleted item keeps no link to it.
        pick(&c, "ticket", 10).unwrap();
        let Ok([inserted, overwritten, _]) = apply(&mut c, false, "ticket") else {
            panic!("ticket 10 comes back");
        };
        assert_eq!(
            (inserted["tickets"], inserted["invoices"], inserted["invoice_lines"]),
            (1, 1, 1)
        );
        assert_eq!(overwritten.get("transactions"), Some(&1));
        assert_eq!(value(&c, "SELECT invoice_id FROM transactions WHERE id = 30"), Some(20));
        assert_eq!(value(&c, "SELECT invoice_id FROM transactions WHERE id = 31"), None);
        assert_eq!(value(&c, "SELECT inventory_id FROM invoice_lines WHERE id = 1"), None);
        assert_eq!(value(&c, "SELECT count(*) FROM pragma_foreign_key_check"), Some(0));
    }
}
