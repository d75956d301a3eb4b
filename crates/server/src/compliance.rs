//! Data-subject requests: the GDPR export of everything tied to a customer's email, the
//! CCPA export (the same data under the categories CCPA names), and the CCPA deletion,
//! which erases the customer and everything attached to them and records the deletion
//! in the ledger.
//!
//! The ledger and the request list hold no personal data: a customer id, an HMAC of the
//! email under a server key (`keys/ledger.key`, outside every backup), a masked email
//! for people to recognise a request, who asked and when. A restore uses the ledger to
//! delete again a customer a backup brings back.

use std::collections::BTreeMap;

use aws_lc_rs::hmac;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use repairops_api::{CcpaRequest, ComplianceRecord, DeletionResult, ErrorBody, Page, SubjectRequest};
use rusqlite::{Connection, params};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::audit::AuditEntry;
use crate::auth::{Auth, Permission};
use crate::control;
use crate::error::{ApiError, Json, Query};
use crate::exports::pairs;

/// How an email is compared: trimmed, lower case.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The ledger's keyed hash of an email (HMAC-SHA-256, hex).
pub fn email_hmac(key: &[u8; 32], email: &str) -> String {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    hex::encode(hmac::sign(&k, normalize_email(email).as_bytes()).as_ref())
}

/// The deletion ledger of an account: the customers who must stay deleted, by id or by
/// the keyed hash of their email.
#[derive(Debug, Default)]
pub struct Ledger {
    ids: std::collections::HashSet<i64>,
    hashes: std::collections::HashSet<String>,
}

impl Ledger {
    /// Reads an account's ledger from the control plane.
    pub fn load(control: &crate::db::Db, account_id: i64) -> Result<Ledger, String> {
        control
            .with_writer(|c| {
                let mut stmt =
                    c.prepare("SELECT customer_id, email_hmac FROM deletion_ledger WHERE account_id = ?1")?;
                let rows = stmt.query_map([account_id], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
                })?;
                let mut ledger = Ledger::default();
                for row in rows {
                    let (id, hash) = row?;
                    ledger.ids.insert(id);
                    ledger.hashes.extend(hash);
                }
                Ok(ledger)
            })
            .map_err(|e: rusqlite::Error| format!("cannot read the deletion ledger: {e}"))
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.hashes.is_empty()
    }

    /// Whether a customer (as a backup holds them) was deleted on request.
    pub fn erases(&self, key: &[u8; 32], id: i64, email: Option<&str>) -> bool {
        self.ids.contains(&id) || email.is_some_and(|e| self.hashes.contains(&email_hmac(key, e)))
    }
}

/// `jane.doe@example.com` → `j***@example.com`: enough to recognise a request, not to
/// recover the address.
pub fn mask(email: &str) -> String {
    let email = normalize_email(email);
    match email.split_once('@') {
        Some((local, domain)) => format!("{}***@{domain}", local.chars().next().unwrap_or('*')),
        None => "***".into(),
    }
}

/// Everything tied to the customers with this email, one JSON object per customer
/// record: profile, tickets (with notes and attachment metadata), communications,
/// invoices (with lines and payments: method, card brand and last four only) and sales.
pub fn subject_records(conn: &Connection, email: &str) -> rusqlite::Result<Vec<Value>> {
    let array = |inner: String, from: &str, alias: &str| {
        format!("json((SELECT json_group_array({inner} ORDER BY {alias}.id) FROM {from}))")
    };
    let obj = |table: &str, alias: &str| -> rusqlite::Result<String> {
        Ok(format!("json_object({})", pairs(conn, table, alias)?))
    };
    let ticket = format!(
        "json_object({}, 'notes', {}, 'attachments', {})",
        pairs(conn, "tickets", "k")?,
        array(
            obj("ticket_notes", "n")?,
            "ticket_notes n WHERE n.ticket_id = k.id",
            "n"
        ),
        array(obj("attachments", "a")?, "attachments a WHERE a.ticket_id = k.id", "a"),
    );
    let invoice = format!(
        "json_object({}, 'lines', {}, 'payments', {})",
        pairs(conn, "invoices", "i")?,
        array(
            obj("invoice_lines", "l")?,
            "invoice_lines l WHERE l.invoice_id = i.id",
            "l"
        ),
        array(obj("payments", "p")?, "payments p WHERE p.invoice_id = i.id", "p"),
    );
    let sql = format!(
        "SELECT json_object({}, 'tickets', {}, 'communications', {}, 'invoices', {}, 'transactions', {})
         FROM customers t WHERE t.email = ?1 COLLATE NOCASE ORDER BY t.id",
        pairs(conn, "customers", "t")?,
        array(ticket, "tickets k WHERE k.customer_id = t.id", "k"),
        array(
            obj("communications", "m")?,
            "communications m WHERE m.customer_id = t.id",
            "m"
        ),
        array(invoice, "invoices i WHERE i.customer_id = t.id", "i"),
        array(
            obj("transactions", "x")?,
            "transactions x WHERE x.customer_id = t.id",
            "x"
        ),
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([normalize_email(email)], |r| r.get::<_, String>(0))?;
    rows.map(|r| r.map(|text| serde_json::from_str(&text).unwrap_or(Value::String(text))))
        .collect()
}

/// The categories of personal information CCPA (Cal. Civ. Code §1798.110) asks a
/// business to disclose, as this software collects them.
pub fn ccpa_categories() -> Value {
    json!([
        {"category": "Identifiers", "fields": ["first_name", "last_name", "email", "phone", "address", "city", "postal_code"],
         "source": "the customer, at the counter or through the repair portal", "purpose": "contacting the customer about repairs and invoices"},
        {"category": "Commercial information", "fields": ["tickets", "invoices", "invoice lines", "payments", "transactions"],
         "source": "the shop's records of the customer's repairs and purchases", "purpose": "performing repairs, billing, warranty and tax records"},
        {"category": "Payment information (non-sensitive)", "fields": ["method", "card_brand", "card_last4"],
         "source": "the shop's point of sale", "purpose": "matching payments to invoices; full card numbers are never stored"},
        {"category": "Device information", "fields": ["device_type", "device_make", "device_model", "serial_number"],
         "source": "the device brought in for repair", "purpose": "identifying and repairing the device"},
        {"category": "Communications", "fields": ["channel", "direction", "body"],
         "source": "messages and calls between the shop and the customer", "purpose": "keeping the customer informed"},
        {"category": "Photos and documents", "fields": ["attachments (file name, type, size)"],
         "source": "taken by the shop of the device", "purpose": "recording the device's condition"},
        {"category": "Sale or sharing", "fields": [],
         "source": "-", "purpose": "personal information is not sold or shared with third parties"}
    ])
}

/// What a deletion removed, and the attachment files it may free.
pub struct Deletion {
    pub customer_ids: Vec<i64>,
    pub removed: BTreeMap<String, u64>,
    /// SHA-256 of the attachments deleted (their files go when nothing else uses them).
    pub attachment_shas: Vec<String>,
}

/// Deletes every customer with this email and everything attached to them, in one
/// transaction (the connection has `secure_delete` on, so freed pages are zeroed).
pub fn delete_subject(conn: &mut Connection, email: &str) -> rusqlite::Result<Deletion> {
    let tx = conn.transaction()?;
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS gone_customers (id INTEGER PRIMARY KEY);
         CREATE TEMP TABLE IF NOT EXISTS gone_tickets (id INTEGER PRIMARY KEY);
         CREATE TEMP TABLE IF NOT EXISTS gone_invoices (id INTEGER PRIMARY KEY);
         DELETE FROM temp.gone_customers; DELETE FROM temp.gone_tickets; DELETE FROM temp.gone_invoices;",
    )?;
    tx.execute(
        "INSERT INTO temp.gone_customers SELECT id FROM customers WHERE email = ?1 COLLATE NOCASE",
        [normalize_email(email)],
    )?;
    let deletion = delete_listed(&tx)?;
    tx.commit()?;
    Ok(deletion)
}

/// Deletes the customers listed in `temp.gone_customers` (filled by the caller, inside
/// its transaction) and everything attached to them. Used by a CCPA deletion and when a
/// restore brings back a customer the ledger says is deleted.
pub fn delete_listed(tx: &Connection) -> rusqlite::Result<Deletion> {
    tx.execute_batch(
        "INSERT OR IGNORE INTO temp.gone_tickets SELECT id FROM tickets WHERE customer_id IN (SELECT id FROM temp.gone_customers);
         INSERT OR IGNORE INTO temp.gone_invoices SELECT id FROM invoices
             WHERE customer_id IN (SELECT id FROM temp.gone_customers) OR ticket_id IN (SELECT id FROM temp.gone_tickets);",
    )?;
    let customer_ids: Vec<i64> = {
        let mut stmt = tx.prepare("SELECT id FROM temp.gone_customers ORDER BY id")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let attachment_shas: Vec<String> = {
        let mut stmt = tx
            .prepare("SELECT DISTINCT sha256 FROM attachments WHERE ticket_id IN (SELECT id FROM temp.gone_tickets)")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let steps: [(&str, &str); 9] = [
        (
            "payments",
            "DELETE FROM payments WHERE invoice_id IN (SELECT id FROM temp.gone_invoices)",
        ),
        (
            "invoice_lines",
            "DELETE FROM invoice_lines WHERE invoice_id IN (SELECT id FROM temp.gone_invoices)",
        ),
        (
            "transactions",
            "DELETE FROM transactions WHERE customer_id IN (SELECT id FROM temp.gone_customers) OR invoice_id IN (SELECT id FROM temp.gone_invoices)",
        ),
        (
            "invoices",
            "DELETE FROM invoices WHERE id IN (SELECT id FROM temp.gone_invoices)",
        ),
        (
            "communications",
            "DELETE FROM communications WHERE customer_id IN (SELECT id FROM temp.gone_customers) OR ticket_id IN (SELECT id FROM temp.gone_tickets)",
        ),
        (
            "ticket_notes",
            "DELETE FROM ticket_notes WHERE ticket_id IN (SELECT id FROM temp.gone_tickets)",
        ),
        (
            "attachments",
            "DELETE FROM attachments WHERE ticket_id IN (SELECT id FROM temp.gone_tickets)",
        ),
        (
            "tickets",
            "DELETE FROM tickets WHERE id IN (SELECT id FROM temp.gone_tickets)",
        ),
        (
            "customers",
            "DELETE FROM customers WHERE id IN (SELECT id FROM temp.gone_customers)",
        ),
    ];
    let mut removed = BTreeMap::new();
    for (table, sql) in steps {
        let n = tx.execute(sql, [])?;
        removed.insert(table.to_string(), n as u64);
    }
    tx.execute_batch(
        "DELETE FROM temp.gone_customers; DELETE FROM temp.gone_tickets; DELETE FROM temp.gone_invoices;",
    )?;
    Ok(Deletion {
        customer_ids,
        removed,
        attachment_shas,
    })
}

/// Moves every committed change into the database file and empties the WAL, so deleted
/// rows leave no copy in the WAL. Readers can hold it up; it is retried for a while.
pub fn checkpoint_truncate(conn: &Connection) -> bool {
    for _ in 0..50 {
        let busy = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0))
            .unwrap_or(1);
        if busy == 0 {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

/// Removes attachment files no row refers to any more.
pub fn remove_unused_files(conn: &Connection, root: &std::path::Path, shas: &[String]) -> u64 {
    let mut removed = 0;
    for sha in shas {
        let used = conn
            .query_row("SELECT count(*) FROM attachments WHERE sha256 = ?1", [sha], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap_or(1);
        if used == 0 && std::fs::remove_file(crate::attachments::content_path(root, sha)).is_ok() {
            removed += 1;
        }
    }
    removed
}

async fn record_request(app: &AppState, auth: &Auth, kind: &str, email: &str, detail: String) -> Result<i64, ApiError> {
    let (account_id, subject, by) = (auth.account.id, mask(email), auth.identity.email.clone());
    let kind = kind.to_string();
    let at = app.clock.now().to_rfc3339();
    app.control
        .write(move |c| {
            c.execute(
                "INSERT INTO compliance_requests (account_id, kind, subject, requested_by, at, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![account_id, kind, subject, by, at, detail],
            )
            .map_err(control::db_err)?;
            Ok(c.last_insert_rowid())
        })
        .await
}

fn entry(
    auth: &Auth,
    ext: &axum::http::Extensions,
    event_type: &str,
    action: &str,
    resource: String,
    detail: String,
) -> AuditEntry {
    AuditEntry {
        at: control::now_text(),
        account: auth.account.account.slug.clone(),
        user: auth.identity.email.clone(),
        event_type: event_type.into(),
        action: action.into(),
        resource,
        ip: crate::http::client_ip(ext).to_string(),
        result: "success".into(),
        detail,
    }
}

fn check_email(email: &str) -> Result<(), ApiError> {
    if crate::http::plausible_email(email) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "email must be the customer's email address, such as jane@example.com",
        ))
    }
}

async fn subject_document(app: &AppState, auth: &Auth, email: &str) -> Result<Vec<Value>, ApiError> {
    let data = app.shop_data(&auth.account.account.slug).await?;
    let email = email.to_string();
    data.db
        .read(move |c| subject_records(c, &email).map_err(ApiError::from))
        .await
}

fn describe(records: &[Value]) -> String {
    let count = |k: &str| -> usize {
        records
            .iter()
            .map(|r| r.get(k).and_then(|v| v.as_array()).map_or(0, |a| a.len()))
            .sum()
    };
    format!(
        "{} customer records, {} tickets, {} invoices, {} communications",
        records.len(),
        count("tickets"),
        count("invoices"),
        count("communications")
    )
}

#[utoipa::path(post, path = "/api/v1/compliance/subject-export", tag = "compliance", security(("bearer" = [])),
    request_body = SubjectRequest,
    responses((status = 200, description = "everything tied to the email: {request_id, generated_at, customers: [...]}"),
              (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn subject_export(
    State(app): State<AppState>,
    auth: Auth,
    ext: axum::http::Extensions,
    Json(req): Json<SubjectRequest>,
) -> Result<Response, ApiError> {
    auth.require(Permission::Exports)?;
    auth.require_writable()?;
    check_email(&req.email)?;
    let records = subject_document(&app, &auth, &req.email).await?;
    let detail = describe(&records);
    let id = record_request(&app, &auth, "subject_export", &req.email, detail.clone()).await?;
    app.audit(entry(
        &auth,
        &ext,
        "export",
        "data-subject export",
        format!("/api/v1/compliance/requests/{id}"),
        detail,
    ))
    .await;
    let doc = json!({
        "request_id": id,
        "kind": "subject_export",
        "generated_at": app.clock.now().to_rfc3339(),
        "account": auth.account.account.slug,
        "customers": records,
    });
    Ok(crate::http::audited(axum::Json(doc).into_response()))
}

#[utoipa::path(post, path = "/api/v1/compliance/ccpa", tag = "compliance", security(("bearer" = [])),
    request_body = CcpaRequest,
    responses((status = 200, description = "kind export: {request_id, categories, customers}; kind delete: DeletionResult"),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 423, body = ErrorBody)))]
pub async fn ccpa(
    State(app): State<AppState>,
    auth: Auth,
    ext: axum::http::Extensions,
    Json(req): Json<CcpaRequest>,
) -> Result<Response, ApiError> {
    auth.require(Permission::Exports)?;
    // Answered from data a restore is replacing, or deleting from it: not while it runs.
    auth.require_writable()?;
    check_email(&req.email)?;
    match req.kind.as_str() {
        "export" => {
            let records = subject_document(&app, &auth, &req.email).await?;
            let detail = describe(&records);
            let id = record_request(&app, &auth, "ccpa_export", &req.email, detail.clone()).await?;
            app.audit(entry(
                &auth,
                &ext,
                "export",
                "CCPA export",
                format!("/api/v1/compliance/requests/{id}"),
                detail,
            ))
            .await;
            let doc = json!({
                "request_id": id,
                "kind": "ccpa_export",
                "generated_at": app.clock.now().to_rfc3339(),
                "account": auth.account.account.slug,
                "business": auth.account.account.name,
                "categories": ccpa_categories(),
                "customers": records,
            });
            Ok(crate::http::audited(axum::Json(doc).into_response()))
        }
        "delete" => {
            let result = ccpa_delete(&app, &auth, &req.email).await?;
            let detail = format!(
                "customers {:?} deleted: {}",
                result.customer_ids,
                result
                    .removed
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            app.audit(entry(
                &auth,
                &ext,
                "deletion",
                "CCPA deletion",
                format!("/api/v1/compliance/requests/{}", result.request_id),
                detail,
            ))
            .await;
            Ok(crate::http::audited(axum::Json(result).into_response()))
        }
        other => Err(ApiError::invalid(format!(
            "{other:?} is not a kind of CCPA request; use export or delete"
        ))),
    }
}

/// Erases the subject from live data, then records the deletion; stored exports that
/// could hold the customer are deleted too.
async fn ccpa_delete(app: &AppState, auth: &Auth, email: &str) -> Result<DeletionResult, ApiError> {
    let data = app.shop_data(&auth.account.account.slug).await?;
    let e = email.to_string();
    let root = data.attachments.clone();
    let (deletion, files, clean) = data
        .db
        .write(move |c| {
            let d = delete_subject(c, &e).map_err(ApiError::from)?;
            let files = remove_unused_files(c, &root, &d.attachment_shas);
            let clean = checkpoint_truncate(c);
            Ok((d, files, clean))
        })
        .await?;
    // Open sandboxes hold copies of live data: the customer goes there too.
    let account_id = auth.account.id;
    let sandboxes: Vec<i64> = app
        .control
        .read(move |c| {
            let mut stmt = c
                .prepare(
                    "SELECT id FROM sandboxes WHERE account_id = ?1 AND state = 'succeeded' AND deleted_at IS NULL",
                )
                .map_err(control::db_err)?;
            let rows = stmt.query_map([account_id], |r| r.get(0)).map_err(control::db_err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(control::db_err)
        })
        .await?;
    let mut in_sandboxes = 0u64;
    for id in sandboxes {
        let Ok(sandbox) = app.sandbox_data(id).await else {
            continue;
        };
        let (e, root) = (email.to_string(), sandbox.attachments.clone());
        in_sandboxes += sandbox
            .db
            .write(move |c| {
                let d = delete_subject(c, &e).map_err(ApiError::from)?;
                remove_unused_files(c, &root, &d.attachment_shas);
                checkpoint_truncate(c);
                Ok(d.customer_ids.len() as u64)
            })
            .await?;
    }
    if deletion.customer_ids.is_empty() && in_sandboxes == 0 {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "not_found",
            "No customer has that email address; nothing was deleted.",
        ));
    }
    if !clean {
        tracing::warn!("the WAL could not be emptied after a deletion; it will be at the next checkpoint");
    }
    let mut removed = deletion.removed.clone();
    removed.insert("attachment_files".into(), files);
    removed.insert("sandbox_customers".into(), in_sandboxes);
    let detail = format!(
        "{} customer records, {} tickets, {} invoices deleted",
        deletion.customer_ids.len(),
        removed.get("tickets").copied().unwrap_or(0),
        removed.get("invoices").copied().unwrap_or(0)
    );
    let request_id = record_request(app, auth, "ccpa_delete", email, detail).await?;
    let (account_id, hmac_hex, by, ids) = (
        auth.account.id,
        email_hmac(&app.ledger_key, email),
        auth.identity.email.clone(),
        deletion.customer_ids.clone(),
    );
    let now = app.clock.now().to_rfc3339();
    let data_dir = app.config.data.clone();
    let exports_removed = app
        .control
        .write(move |c| {
            for id in &ids {
                c.execute(
                    "INSERT INTO deletion_ledger (account_id, customer_id, email_hmac, deleted_at, deleted_by, request_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![account_id, id, hmac_hex, now, by, request_id],
                )
                .map_err(control::db_err)?;
            }
            // Stored exports made before now may hold the customer: they go too.
            let stale: Vec<i64> = {
                let mut stmt = c
                    .prepare(
                        "SELECT id FROM exports WHERE account_id = ?1 AND deleted_at IS NULL AND state != 'running'
                         AND dataset IN ('tickets', 'customers', 'invoices', 'transactions')",
                    )
                    .map_err(control::db_err)?;
                let rows = stmt.query_map([account_id], |r| r.get(0)).map_err(control::db_err)?;
                rows.collect::<rusqlite::Result<_>>().map_err(control::db_err)?
            };
            crate::export_jobs::remove_files(c, &data_dir, &stale, &now)
        })
        .await?;
    removed.insert("exports".into(), exports_removed as u64);
    Ok(DeletionResult {
        request_id,
        customer_ids: deletion.customer_ids,
        removed,
    })
}

#[utoipa::path(get, path = "/api/v1/compliance/requests", tag = "compliance", security(("bearer" = [])),
    params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<ComplianceRecord>), (status = 403, body = ErrorBody)))]
pub async fn requests(
    State(app): State<AppState>,
    auth: Auth,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Result<axum::Json<Page<ComplianceRecord>>, ApiError> {
    auth.require(Permission::Exports)?;
    let page = crate::shopdata::newest_first(
        &app.control,
        "SELECT id, kind, subject, requested_by, at, detail FROM compliance_requests WHERE account_id = ?1".into(),
        vec![auth.account.id.into()],
        &q,
        request_from_row,
        |r| r.id,
    )
    .await?;
    Ok(axum::Json(page))
}

fn request_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ComplianceRecord> {
    Ok(ComplianceRecord {
        id: r.get(0)?,
        kind: r.get(1)?,
        subject: r.get(2)?,
        requested_by: r.get(3)?,
        at: chrono::DateTime::parse_from_rfc3339(&r.get::<_, String>(4)?)
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_default(),
        detail: r.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_hashes_keep_no_address() {
        assert_eq!(mask(" Jane.Doe@Example.com "), "j***@example.com");
        assert_eq!(mask("nonsense"), "***");
        let k = [7u8; 32];
        assert_eq!(email_hmac(&k, "Jane@Example.com"), email_hmac(&k, "jane@example.com "));
        assert_ne!(
            email_hmac(&k, "jane@example.com"),
            email_hmac(&[8u8; 32], "jane@example.com")
        );
        assert_eq!(email_hmac(&k, "a@b.c").len(), 64);
    }
}
