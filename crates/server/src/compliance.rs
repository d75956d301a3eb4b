//! Data-subject requests: the GDPR export of everything tied to a customer's email, the
//! CCPA export (the same data under the categories CCPA names), and the CCPA deletion,
//! which erases the customer and everything attached to them and records the deletion
//! in the ledger. The finding and deleting are in `erasure`; here are the requests:
//! who may ask, the request list, the audit log and the order a deletion goes in.
//!
//! The request list holds no personal data: a masked email for people to recognise a
//! request, who asked and when.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use repairops_api::{CcpaRequest, ComplianceRecord, DeletionResult, ErrorBody, Page, SubjectRequest};
use rusqlite::params;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::audit::AuditEntry;
use crate::auth::{Auth, Permission};
use crate::control;
use crate::erasure::{customers_born, delete_subject, mask, subject_records};
use crate::error::{ApiError, Deferred, Query};

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

/// The email a request names is only looked up among the customers' stored emails,
/// which were written by whatever the shop used (imports, the portal, the till): any
/// address of one line with an `@` and at most 254 bytes is looked for, not only one
/// that would pass as a new sign-in's.
fn check_email(email: &str) -> Result<(), ApiError> {
    let email = email.trim();
    if email.len() <= 254 && email.contains('@') && crate::http::one_line(email) {
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
    body: Deferred<SubjectRequest>,
) -> Result<Response, ApiError> {
    auth.require(Permission::Exports)?;
    auth.require_writable()?;
    let req = body.parse()?;
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
    body: Deferred<CcpaRequest>,
) -> Result<Response, ApiError> {
    auth.require(Permission::Exports)?;
    // Answered from data a restore is replacing, or deleting from it: not while it runs.
    auth.require_writable()?;
    let req = body.parse()?;
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

/// Erases the subject everywhere the server keeps shop data, in an order that loses
/// nothing if it stops part way:
/// 1. find the customers, in live data and in open sandboxes (none: 404, nothing
///    recorded; a sandbox that cannot be opened: an error, nothing changed);
/// 2. record the request and the ledger entries, in one transaction;
/// 3. remove stored exports that may hold them, then delete them from live data and from
///    every open sandbox.
///
/// Once step 2 is done the ledger names the customers: a retry deletes whatever is left,
/// and a restore deletes them again from any backup. A sandbox or export that finishes
/// during the deletion checks the ledger on the control plane's writer as it ends (see
/// `erasure::newest_entry`), so it either sees this deletion or is listed in step 3.
async fn ccpa_delete(app: &AppState, auth: &Auth, email: &str) -> Result<DeletionResult, ApiError> {
    let account_id = auth.account.id;
    let data = app.shop_data(&auth.account.account.slug).await?;
    let find = |db: crate::db::Db| {
        let email = email.to_string();
        async move {
            db.read(move |c| customers_born(c, &email).map_err(ApiError::from))
                .await
        }
    };
    // (id, created_at) in live data and every open sandbox: what the ledger keeps.
    let mut ids: BTreeSet<(i64, String)> = find(data.db.clone()).await?.into_iter().collect();
    for id in open_sandboxes(app, account_id).await? {
        if let Some(sandbox) = open_sandbox(app, id).await? {
            ids.extend(find(sandbox.db).await?);
        }
    }
    if ids.is_empty() {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "not_found",
            "No customer has that email address; nothing was deleted.",
        ));
    }

    let (subject, by, at) = (mask(email), auth.identity.email.clone(), app.clock.now().to_rfc3339());
    let hmac_hex = crate::erasure::email_hmac(&app.ledger_key, email);
    let listed: Vec<(i64, String)> = ids.into_iter().collect();
    // Tests stop a deletion here, found but not yet in the ledger (off the runtime's
    // threads, which a pause would block).
    if crate::faults::armed("ccpa.found")
        && let Err(e) = tokio::task::spawn_blocking(|| crate::faults::point("ccpa.found")).await
        && e.is_panic()
    {
        // A panic asked for here is the request's, as anywhere else.
        std::panic::resume_unwind(e.into_panic());
    }
    let request_id = app
        .control
        .write(move |c| {
            let tx = c.transaction().map_err(control::db_err)?;
            tx.execute(
                "INSERT INTO compliance_requests (account_id, kind, subject, requested_by, at, detail) VALUES (?1, 'ccpa_delete', ?2, ?3, ?4, 'deletion started')",
                params![account_id, subject, by, at],
            )
            .map_err(control::db_err)?;
            let request_id = tx.last_insert_rowid();
            for (id, born) in &listed {
                tx.execute(
                    "INSERT INTO deletion_ledger (account_id, customer_id, customer_created_at, email_hmac, deleted_at, deleted_by, request_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![account_id, id, born, hmac_hex, at, by, request_id],
                )
                .map_err(control::db_err)?;
            }
            tx.commit().map_err(control::db_err)?;
            Ok(request_id)
        })
        .await?;

    let now = app.clock.now().to_rfc3339();
    let data_dir = app.config.data.clone();
    let exports_removed = app
        .control
        .write(move |c| {
            let stale: Vec<i64> = {
                let mut stmt = c
                    .prepare(&format!(
                        "SELECT id FROM exports WHERE account_id = ?1 AND deleted_at IS NULL AND state != 'running'
                         AND dataset IN {}",
                        crate::exports::Dataset::HOLDING_CUSTOMERS_SQL
                    ))
                    .map_err(control::db_err)?;
                let rows = stmt.query_map([account_id], |r| r.get(0)).map_err(control::db_err)?;
                rows.collect::<rusqlite::Result<_>>().map_err(control::db_err)?
            };
            crate::export_jobs::remove_files(c, &data_dir, &stale, &now)
        })
        .await?;
    let (deletion, files, clean) = erase_in(&data, email).await?;
    let mut in_sandboxes = 0u64;
    for id in open_sandboxes(app, account_id).await? {
        if let Some(sandbox) = open_sandbox(app, id).await? {
            in_sandboxes += erase_in(&sandbox, email).await?.0.customer_ids.len() as u64;
        }
    }
    if !clean {
        tracing::warn!("the WAL could not be emptied after a deletion; it will be at the next checkpoint");
    }
    let mut removed = deletion.removed.clone();
    removed.insert("attachment_files".into(), files);
    removed.insert("sandbox_customers".into(), in_sandboxes);
    removed.insert("exports".into(), exports_removed as u64);
    let detail = format!(
        "{} customer records, {} tickets, {} invoices deleted",
        deletion.customer_ids.len(),
        removed.get("tickets").copied().unwrap_or(0),
        removed.get("invoices").copied().unwrap_or(0)
    );
    // The deletion's time in the ledger becomes its end: a customer with this email
    // created while it ran was deleted by it too, and must count as created before it.
    let ended = app.clock.now().to_rfc3339();
    app.control
        .write(move |c| {
            let tx = c.transaction().map_err(control::db_err)?;
            tx.execute(
                "UPDATE compliance_requests SET detail = ?1 WHERE id = ?2",
                params![detail, request_id],
            )
            .map_err(control::db_err)?;
            tx.execute(
                "UPDATE deletion_ledger SET deleted_at = ?1 WHERE request_id = ?2",
                params![ended, request_id],
            )
            .map_err(control::db_err)?;
            tx.commit().map_err(control::db_err)
        })
        .await?;
    Ok(DeletionResult {
        request_id,
        customer_ids: deletion.customer_ids,
        removed,
    })
}

/// Deletes the subject from one copy of the shop's data (live or a sandbox), removes
/// the attachment files nothing uses any more and empties the WAL. Returns the
/// deletion, the files removed, and whether the WAL was emptied.
async fn erase_in(data: &crate::app::ShopData, email: &str) -> Result<(crate::erasure::Deletion, u64, bool), ApiError> {
    let (email, root) = (email.to_string(), data.attachments.clone());
    data.db
        .write(move |c| {
            let d = delete_subject(c, &email).map_err(ApiError::from)?;
            let files = crate::erasure::remove_unused_files(c, &root, &d.attachment_shas);
            let clean = crate::erasure::checkpoint_truncate(c);
            Ok((d, files, clean))
        })
        .await
}

/// The account's open sandboxes: copies of its data a deletion must reach too.
async fn open_sandboxes(app: &AppState, account_id: i64) -> Result<Vec<i64>, ApiError> {
    app.control
        .read(move |c| {
            let mut stmt = c
                .prepare(
                    "SELECT id FROM sandboxes WHERE account_id = ?1 AND state = 'succeeded' AND deleted_at IS NULL",
                )
                .map_err(control::db_err)?;
            let rows = stmt.query_map([account_id], |r| r.get(0)).map_err(control::db_err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(control::db_err)
        })
        .await
}

/// A sandbox's data; `None` when it was removed meanwhile.
async fn open_sandbox(app: &AppState, id: i64) -> Result<Option<crate::app::ShopData>, ApiError> {
    match app.sandbox_data(id).await {
        Ok(data) => Ok(Some(data)),
        Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => Ok(None),
        Err(e) => Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "sandbox_unavailable",
            format!(
                "Sandbox {id} holds a copy of the shop's data but could not be opened to delete the customer \
                 there too ({}). Delete the sandbox, then send the request again.",
                e.message
            ),
        )),
    }
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
