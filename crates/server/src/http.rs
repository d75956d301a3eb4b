//! HTTP API v1: routes, handlers and the audit middleware. Handlers stay thin: parse,
//! authorize, call a function of `shopdata`, `control` or `attachments`, map the error.
//! Routes are registered through utoipa so `/api/v1/openapi.json` is generated from the
//! handlers and the wire types.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use repairops_api::*;
use serde_json::{Map, Value as JsonValue};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::audit::AuditEntry;
use crate::auth::{Auth, Permission};
use crate::control;
use crate::error::{ApiError, Deferred, Json, Path, Query};
use crate::shopdata::{self, Spec, WriteRule};

/// Marks a response whose handler wrote its own audit entry.
#[derive(Clone, Copy)]
pub struct Audited;

#[derive(OpenApi)]
#[openapi(
    info(title = "RepairOps Backup API", version = "1", description = "Shop data, backups, restores, exports and compliance for RepairOps."),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody, ErrorDetail))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Writes the rules `shopdata` checks on each resource's request bodies into their
/// schemas: the range of a whole number, the words a field allows, the digits a card's
/// last four must be. One list of rules, so the document cannot drift from the checks.
/// Records (responses) are left as they are: rows stored before a rule came in, or
/// restored from an older backup, may lie outside it. Text lengths stay in the 422
/// message: the rule counts bytes, which JSON Schema's `maxLength` cannot say.
fn with_column_rules(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::schema::{SchemaType, Type};
    use utoipa::openapi::{RefOr, Schema};
    let Some(components) = doc.components.as_mut() else {
        return doc;
    };
    for (spec, [_record, input, patch]) in RESOURCE_SCHEMAS {
        for name in [input, patch] {
            let Some(RefOr::T(Schema::Object(body))) = components.schemas.get_mut(name) else {
                continue;
            };
            for column in spec.columns {
                let Some(RefOr::T(Schema::Object(field))) = body.properties.get_mut(column.name) else {
                    continue;
                };
                let (low, high) = column.range;
                if low != i64::MIN {
                    field.minimum = Some(utoipa::Number::Int(low as isize));
                }
                if high != i64::MAX {
                    field.maximum = Some(utoipa::Number::Int(high as isize));
                }
                if let Some(words) = column.allowed {
                    let mut values: Vec<JsonValue> = words.iter().map(|w| JsonValue::from(*w)).collect();
                    // A field that may be left out may also be sent as null.
                    if matches!(&field.schema_type, SchemaType::Array(types) if types.contains(&Type::Null)) {
                        values.push(JsonValue::Null);
                    }
                    field.enum_values = Some(values);
                }
                if column.digits {
                    field.pattern = Some(format!("^[0-9]{{{}}}$", column.max_len));
                }
            }
        }
    }
    doc
}

/// Adds to every operation of the document the errors any request can meet before its
/// handler runs, where the handler's own list leaves them out: 400 (a path id or query
/// that does not parse), 401 (no or an expired token, on routes that need one), and for
/// a JSON body 413 (too large), 415 (not sent as JSON) and 422 (JSON that does not fit).
/// A client generated from the document then knows every status it can be answered.
fn with_common_errors(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let error = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build(),
        )
    };
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            let mut common = vec![("400", "the path or query does not parse")];
            if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                common.push(("401", "no token, or one that expired or was revoked"));
            }
            if op
                .request_body
                .as_ref()
                .is_some_and(|b| b.content.contains_key("application/json"))
            {
                common.push(("413", "the body is too large"));
                common.push(("415", "the body was not sent as JSON"));
                common.push(("422", "the body does not fit the request's shape or rules"));
            }
            for (status, description) in common {
                op.responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| error(description));
            }
        }
    }
    doc
}

/// The whole API and its OpenAPI document.
pub fn router(app: AppState) -> axum::Router {
    let (api, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(get_account, patch_account))
        .routes(routes!(account_summary))
        .routes(routes!(crate::team_api::list, crate::team_api::add))
        .routes(routes!(crate::team_api::change))
        .merge(shop_routes())
        .routes(routes!(portal_repair))
        .routes(routes!(crate::backup_api::list, crate::backup_api::create))
        .routes(routes!(crate::backup_api::status))
        .routes(routes!(crate::backup_api::get_one, crate::backup_api::delete))
        .routes(routes!(crate::backup_api::job))
        .routes(routes!(crate::backup_api::jobs))
        .routes(routes!(crate::backup_api::events))
        .routes(routes!(crate::backup_api::storage))
        .routes(routes!(crate::audit_api::list))
        .routes(routes!(crate::audit_api::export_csv))
        .routes(routes!(crate::export_api::list, crate::export_api::create))
        .routes(routes!(crate::export_api::download))
        .routes(routes!(crate::compliance::subject_export))
        .routes(routes!(crate::compliance::ccpa))
        .routes(routes!(crate::compliance::requests))
        .routes(routes!(crate::restores::create))
        .routes(routes!(crate::record_restore::create))
        .routes(routes!(crate::drills::create))
        .routes(routes!(crate::sandboxes::list, crate::sandboxes::create))
        .routes(routes!(crate::sandboxes::delete))
        .routes(routes!(crate::backup_api::rotate_key))
        .routes(routes!(crate::backup_api::recovery_key))
        .routes(routes!(get_notifications, put_notifications))
        .split_for_parts();
    let doc_json = with_common_errors(with_column_rules(doc))
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".into());
    // The same shop-data routes again, for `/sandboxes/{id}/api/v1/…`.
    let (shop, _) = shop_routes().split_for_parts();
    let shop = crate::sandboxes::ShopRouter(shop.with_state(app.clone()));
    let max_body = app.config.max_body_bytes;
    axum::Router::new()
        .merge(api)
        .route(
            "/api/v1/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], doc_json.clone()) }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(crate::metrics::scrape))
        .route(
            "/sandboxes/{*rest}",
            axum::routing::any(crate::sandboxes::dispatch).layer(axum::Extension(shop)),
        )
        // Inside the audit layer, so a request whose handler panicked is audited as failed.
        .route_layer(tower_http::catch_panic::CatchPanicLayer::custom(crate::error::panicked))
        .route_layer(axum::middleware::from_fn_with_state(app.clone(), audit_layer))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            crate::metrics::record,
        ))
        .fallback(crate::error::no_route)
        .method_not_allowed_fallback(crate::error::wrong_method)
        // JSON bodies are small; the upload handler reads its body with its own limit.
        .layer(DefaultBodyLimit::max(max_body))
        // A refused request's body is read to its end, so the client hears the refusal.
        .layer(axum::middleware::from_fn(crate::unread_body::finish_refused))
        .with_state(app)
}

/// Shop data: served for the account's live data under `/api/v1/`, and for a sandbox
/// under `/sandboxes/{id}/api/v1/`.
fn shop_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(shops::list, shops::create))
        .routes(routes!(shops::get_one, shops::update, shops::delete))
        .routes(routes!(customers::list, customers::create))
        .routes(routes!(customers::get_one, customers::update, customers::delete))
        .routes(routes!(tickets::list, tickets::create))
        .routes(routes!(tickets::get_one, tickets::update, tickets::delete))
        .routes(routes!(invoices::list, invoices::create))
        .routes(routes!(invoices::get_one, invoices::update, invoices::delete))
        .routes(routes!(inventory::list, inventory::create))
        .routes(routes!(inventory::get_one, inventory::update, inventory::delete))
        .routes(routes!(transactions::list, transactions::create))
        .routes(routes!(
            transactions::get_one,
            transactions::update,
            transactions::delete
        ))
        .routes(routes!(payments::list, payments::create))
        .routes(routes!(payments::get_one, payments::update, payments::delete))
        .routes(routes!(ticket_notes::list, ticket_notes::create))
        .routes(routes!(
            ticket_notes::get_one,
            ticket_notes::update,
            ticket_notes::delete
        ))
        .routes(routes!(communications::list, communications::create))
        .routes(routes!(
            communications::get_one,
            communications::update,
            communications::delete
        ))
        .routes(routes!(invoice_lines::list, invoice_lines::create))
        .routes(routes!(
            invoice_lines::get_one,
            invoice_lines::update,
            invoice_lines::delete
        ))
        .routes(routes!(crate::attachments::list, crate::attachments::upload))
        .routes(routes!(
            crate::attachments::get_one,
            crate::attachments::rename,
            crate::attachments::delete
        ))
        .routes(routes!(crate::attachments::content))
}

/// The client's address (the socket peer).
pub fn client_ip(req_ext: &axum::http::Extensions) -> IpAddr {
    req_ext
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// The audit log's event type of a request (the audit screen filters by it): sign-out,
/// export (data-subject requests too), restore (sandboxes too), deletion, backup,
/// settings (account, notifications, keys, team), or any other change of data.
fn event_type(method: &Method, path: &str) -> &'static str {
    if path.starts_with("/api/v1/auth/logout") {
        return "logout";
    }
    if path.starts_with("/api/v1/exports") || path.starts_with("/api/v1/compliance") {
        return "export";
    }
    if path.starts_with("/api/v1/restores") || path.starts_with("/api/v1/sandboxes") {
        return "restore";
    }
    if *method == Method::DELETE {
        return "deletion";
    }
    if path.starts_with("/api/v1/backups") {
        return "backup";
    }
    if ["/api/v1/account", "/api/v1/settings", "/api/v1/keys", "/api/v1/team"]
        .iter()
        .any(|p| path.starts_with(p))
    {
        return "settings";
    }
    "data_change"
}

/// Records every request that changes anything (handlers that know more, such as
/// login and the portal, record their own and mark the response [`Audited`]).
async fn audit_layer(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    if method == Method::GET || method == Method::HEAD || method == Method::OPTIONS {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    let matched = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string());
    let ip = client_ip(req.extensions());
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(_, t)| t.trim().to_string());
    // Who asked is read before the request runs: a sign-out deletes the very token
    // that names them.
    let now = app.clock.now();
    let who = match token {
        Some(t) => app
            .control
            .read(move |c| {
                let id = control::identity_by_token(c, &t, now).map_err(control::db_err)?;
                let Some(id) = id else { return Ok(None) };
                let acct = control::account_by_id(c, id.account_id).map_err(control::db_err)?;
                Ok(acct.map(|a| (a.account.slug, id.email)))
            })
            .await
            .ok()
            .flatten(),
        None => None,
    };
    let response = next.run(req).await;
    if response.extensions().get::<Audited>().is_some() {
        return response;
    }
    let (account, user) = who.unwrap_or_else(|| ("-".into(), "anonymous".into()));
    let status = response.status();
    app.audit(AuditEntry {
        at: crate::control::now_text(),
        account,
        user,
        event_type: event_type(&method, &path).into(),
        action: format!("{method} {}", matched.unwrap_or_else(|| path.clone())),
        resource: path,
        ip: ip.to_string(),
        result: if status.is_success() { "success" } else { "failure" }.into(),
        detail: status.as_u16().to_string(),
    })
    .await;
    response
}

/// Marks a response as already audited.
pub fn audited(mut resp: Response) -> Response {
    resp.extensions_mut().insert(Audited);
    resp
}

// ---------------------------------------------------------------- sign-in

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn login(
    State(app): State<AppState>,
    req_parts: axum::http::Extensions,
    Json(req): Json<LoginRequest>,
) -> Response {
    let ip = client_ip(&req_parts);
    let email = req.email.trim().to_string();
    let entry = |result: &str, detail: &str, account: &str| AuditEntry {
        at: control::now_text(),
        account: account.into(),
        user: email.chars().take(254).collect(),
        event_type: "login".into(),
        action: "login".into(),
        resource: "/api/v1/auth/login".into(),
        ip: ip.to_string(),
        result: result.into(),
        detail: detail.into(),
    };
    if let Err(wait) = app.login_throttle.begin(&email, ip) {
        app.audit(entry("failure", "throttled", "-")).await;
        let mut resp = ApiError::too_many(format!(
            "Too many failed sign-ins; try again in {} seconds.",
            wait.as_secs().max(1)
        ))
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return audited(resp);
    }
    let e2 = email.clone();
    let found = app
        .control
        .read(move |c| {
            let Some(identity) = control::identity_by_email(c, &e2).map_err(control::db_err)? else {
                return Ok(None);
            };
            let account = control::account_by_id(c, identity.account_id).map_err(control::db_err)?;
            Ok(account.map(|a| (identity, a)))
        })
        .await;
    let found = match found {
        Ok(f) => f,
        Err(e) => return audited(e.into_response()),
    };
    let password = req.password;
    // A wrong password for a real sign-in belongs in that account's log, where its
    // owner looks for suspicious activity; an unknown email belongs to no account.
    let attempted_account = found
        .as_ref()
        .map(|(_, a)| a.account.slug.clone())
        .unwrap_or_else(|| "-".into());
    // Argon2id takes ~19 MiB and tens of milliseconds: a few at a time, whatever arrives.
    let _permit = app.password_checks.acquire().await;
    let verified = match found {
        Some((identity, account)) => {
            let hash = identity.password_hash.clone();
            let ok = tokio::task::spawn_blocking(move || control::verify_password(&password, &hash))
                .await
                .unwrap_or(false);
            ok.then_some((identity, account))
        }
        None => {
            // Spend the same time as a real check, so timing does not reveal accounts.
            let _ = tokio::task::spawn_blocking(move || control::verify_password(&password, DUMMY_HASH)).await;
            None
        }
    };
    let Some((identity, account)) = verified else {
        app.audit(entry("failure", "wrong email or password", &attempted_account))
            .await;
        return audited(ApiError::unauthorized("The email or password is wrong.").into_response());
    };
    app.login_throttle.succeeded(&email, ip);
    let now = app.clock.now();
    let id = identity.id;
    let token = match app
        .control
        .write(move |c| control::issue_token(c, id, now).map_err(control::db_err))
        .await
    {
        Ok(t) => t,
        Err(e) => return audited(e.into_response()),
    };
    app.audit(entry("success", "signed in", &account.account.slug)).await;
    let body = LoginResponse {
        token,
        user: SignedInUser {
            id: identity.user_id,
            name: identity.name,
            email: identity.email,
            role: identity.role,
        },
        account: account.account,
    };
    audited(axum::Json(body).into_response())
}

/// A valid Argon2id hash of a random password, checked when the email is unknown.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0R2ZrUQ3kTEHJN1xt1vYyo1sNqU/F6kZ1GnXrHqp0qs";

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
async fn logout(State(app): State<AppState>, auth: Auth) -> Result<StatusCode, ApiError> {
    let token = auth.token.clone();
    app.control
        .write(move |c| control::revoke_token(c, &token).map_err(control::db_err))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- account

#[utoipa::path(get, path = "/api/v1/account", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = Account), (status = 401, body = ErrorBody)))]
async fn get_account(auth: Auth) -> axum::Json<Account> {
    axum::Json(auth.account.account)
}

/// Rows per table of the live data now, in the shape of a backup's summary, so a
/// restore can be compared with what it would replace.
#[utoipa::path(get, path = "/api/v1/account/summary", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = repairops_api::DataSummary), (status = 403, body = ErrorBody)))]
async fn account_summary(
    State(app): State<AppState>,
    auth: Auth,
) -> Result<axum::Json<repairops_api::DataSummary>, ApiError> {
    auth.require(Permission::ViewBackups)?;
    let dir = app.config.account_dir(&auth.account.account.slug);
    let summary =
        tokio::task::spawn_blocking(move || crate::backups::summarize(&dir.join("live.db"), &dir.join("attachments")))
            .await
            .map_err(|e| ApiError::internal("count the shop's data", e))?
            .map_err(|e| ApiError::internal("count the shop's data", e))?;
    Ok(axum::Json(summary))
}

#[utoipa::path(patch, path = "/api/v1/account", tag = "account", security(("bearer" = [])), request_body = AccountPatch,
    responses((status = 200, body = Account), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn patch_account(
    State(app): State<AppState>,
    auth: Auth,
    body: Deferred<AccountPatch>,
) -> Result<axum::Json<Account>, ApiError> {
    auth.require(Permission::AccountSettings)?;
    auth.require_writable()?;
    let patch = body.parse()?;
    if let Some(tz) = &patch.timezone
        && tz.parse::<chrono_tz::Tz>().is_err()
    {
        return Err(ApiError::invalid(format!(
            "{tz:?} is not an IANA time zone such as America/Chicago"
        )));
    }
    if let Some(email) = &patch.admin_email
        && !plausible_email(email)
    {
        return Err(ApiError::invalid(format!("{email:?} is not an email address")));
    }
    if let Some(name) = &patch.name
        && (name.trim().is_empty() || name.len() > 200 || !one_line(name))
    {
        return Err(ApiError::invalid(
            "the account name must be 1 to 200 characters, on one line",
        ));
    }
    let id = auth.account.id;
    let account = app
        .control
        .write(move |c| {
            c.execute(
                "UPDATE accounts SET name = COALESCE(?1, name), timezone = COALESCE(?2, timezone), admin_email = COALESCE(?3, admin_email) WHERE id = ?4",
                rusqlite::params![patch.name, patch.timezone, patch.admin_email, id],
            )
            .map_err(control::db_err)?;
            control::account_by_id(c, id).map_err(control::db_err)?.ok_or_else(|| ApiError::not_found("account"))
        })
        .await?;
    Ok(axum::Json(account.account))
}

/// A light check of an address someone typed: one `@` with something before it, a
/// domain of two or more dot-separated names (letters, digits, hyphens; any script), and
/// nothing a mail header or a log line could be bent with: no spaces, control
/// characters (NUL among them), quotes, angle brackets, commas or semicolons.
pub fn plausible_email(s: &str) -> bool {
    let s = s.trim();
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let plain =
        |c: char| !c.is_whitespace() && one_line_char(c) && !is_invisible_format(c) && !"<>()[]\\,;:\"@".contains(c);
    s.len() <= 254
        && !local.is_empty()
        && local.chars().all(plain)
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| {
                    // ASCII letters, digits and hyphens; past ASCII, any script's
                    // letters and marks (an IDN's virama or joiner among them).
                    c == '-'
                        || c.is_ascii_alphanumeric()
                        || (!c.is_ascii() && !c.is_whitespace() && one_line_char(c) && !is_invisible_format(c))
                        || matches!(c, '\u{200c}' | '\u{200d}')
                })
        })
}

/// Text that fits on one line of a form: no control characters (NUL, newlines, tabs),
/// no line or paragraph separators, no characters that reorder or hide text.
pub fn one_line(s: &str) -> bool {
    s.chars().all(|c| one_line_char(c) && !is_invisible_format(c))
}

fn one_line_char(c: char) -> bool {
    !c.is_control() && !matches!(c, '\u{2028}' | '\u{2029}')
}

/// Format characters that change how text shows without showing themselves: bidi
/// overrides and isolates (a name that reads backwards), zero-width spaces and joiners,
/// the soft hyphen, the byte-order mark.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00ad}' | '\u{061c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}' | '\u{feff}')
}

// ---------------------------------------------------------------- shop data

/// Lists a resource.
async fn list_impl(
    app: &AppState,
    auth: &Auth,
    spec: &'static Spec,
    query: HashMap<String, String>,
) -> Result<axum::Json<JsonValue>, ApiError> {
    let data = auth.shop_data(app).await?;
    let zone = crate::control::account_tz(&auth.account.account);
    let (items, next) = data.db.read(move |c| shopdata::list(c, spec, &query, zone)).await?;
    Ok(axum::Json(serde_json::json!({ "items": items, "next": next })))
}

async fn get_impl(
    app: &AppState,
    auth: &Auth,
    spec: &'static Spec,
    id: i64,
) -> Result<axum::Json<Map<String, JsonValue>>, ApiError> {
    let data = auth.shop_data(app).await?;
    Ok(axum::Json(data.db.read(move |c| shopdata::get(c, spec, id)).await?))
}

fn require_write(auth: &Auth, spec: &Spec) -> Result<(), ApiError> {
    auth.require(match spec.write {
        WriteRule::Everyone => Permission::WriteShopData,
        WriteRule::StockKeepers => Permission::WriteInventory,
        WriteRule::Managers => Permission::WriteShops,
    })?;
    auth.require_writable()
}

async fn create_impl<Input: serde::Serialize>(
    app: &AppState,
    auth: &Auth,
    spec: &'static Spec,
    body: Deferred<Input>,
) -> Result<Response, ApiError> {
    crate::faults::point("http.create");
    require_write(auth, spec)?;
    let mut body = shopdata::body_map(&body.parse()?)?;
    let me = author_rule(auth, spec, &body)?;
    let data = auth.shop_data(app).await?;
    let now = app.clock.now();
    let created = data
        .db
        .write(move |c| {
            let tx = c.transaction()?;
            if let (Some(me), Some(column)) = (me, spec.author) {
                sign_author(&tx, &me, column, &mut body, now)?;
            }
            let created = shopdata::create(&tx, spec, &body, now)?;
            tx.commit()?;
            Ok(created)
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

/// Who a record that names its author (a ticket note) is written by. Made without an
/// author, or naming the person signed in, it is theirs: returned, so the write puts
/// them on the staff list it writes to. Naming someone else, on create or change, is for
/// owners and managers (notes moved in from another system); the audit log keeps who
/// sent it either way.
fn author_rule(
    auth: &Auth,
    spec: &Spec,
    body: &Map<String, JsonValue>,
) -> Result<Option<crate::staff::StaffMember>, ApiError> {
    let Some(column) = spec.author else {
        return Ok(None);
    };
    match body.get(column) {
        Some(v) if !v.is_null() && v.as_i64() != Some(auth.identity.user_id) => {
            auth.require(Permission::WriteAsOthers)?;
            Ok(None)
        }
        _ => Ok(Some(crate::staff::StaffMember::signed_in(&auth.identity))),
    }
}

/// Names the signed-in person as the author (`staff::author_id`).
fn sign_author(
    c: &rusqlite::Connection,
    me: &crate::staff::StaffMember,
    column: &str,
    body: &mut Map<String, JsonValue>,
    now: chrono::DateTime<chrono::Utc>,
) -> rusqlite::Result<()> {
    let author = crate::staff::author_id(c, me, &shopdata::time_text(now))?;
    body.insert(column.to_string(), author.map_or(JsonValue::Null, JsonValue::from));
    Ok(())
}

async fn update_impl<Patch: serde::Serialize>(
    app: &AppState,
    auth: &Auth,
    spec: &'static Spec,
    id: i64,
    body: Deferred<Patch>,
) -> Result<axum::Json<Map<String, JsonValue>>, ApiError> {
    require_write(auth, spec)?;
    let mut body = shopdata::body_map(&body.parse()?)?;
    // A change that leaves the author out keeps them (a correction of someone else's
    // note stays theirs); one that names an author follows the rule of a new record.
    let me = match spec.author {
        Some(column) if body.contains_key(column) => author_rule(auth, spec, &body)?,
        _ => None,
    };
    let data = auth.shop_data(app).await?;
    let now = app.clock.now();
    Ok(axum::Json(
        data.db
            .write(move |c| {
                let tx = c.transaction()?;
                if let (Some(me), Some(column)) = (me, spec.author) {
                    sign_author(&tx, &me, column, &mut body, now)?;
                }
                let updated = shopdata::update(&tx, spec, id, &body, now)?;
                tx.commit()?;
                Ok(updated)
            })
            .await?,
    ))
}

async fn delete_impl(app: &AppState, auth: &Auth, spec: &'static Spec, id: i64) -> Result<StatusCode, ApiError> {
    auth.require(Permission::DeleteRecords)?;
    auth.require_writable()?;
    let data = auth.shop_data(app).await?;
    data.db.write(move |c| shopdata::delete(c, spec, id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Parameters every list accepts.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ListParams {
    /// Page size, 1 to 500 (default 50).
    limit: Option<i64>,
    /// The `next` value of the previous page.
    cursor: Option<String>,
    /// Created on or after this date (YYYY-MM-DD) or time (RFC 3339).
    from: Option<String>,
    /// Created on or before this date or time.
    to: Option<String>,
}

/// Generates the five handlers of a resource, documented for OpenAPI.
macro_rules! resource_handlers {
    ($module:ident, $spec:path, $record:ty, $input:ty, $patch:ty, $list_path:literal, $item_path:literal, $tag:literal) => {
        pub mod $module {
            use super::*;

            /// The names of the record's, the input's and the patch's schemas.
            pub const SCHEMAS: [&str; 3] = [stringify!($record), stringify!($input), stringify!($patch)];

            #[utoipa::path(get, path = $list_path, tag = $tag, security(("bearer" = [])), params(ListParams),
                responses((status = 200, body = Page<$record>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
            pub async fn list(State(app): State<AppState>, auth: Auth, Query(q): Query<HashMap<String, String>>) -> Result<axum::Json<JsonValue>, ApiError> {
                list_impl(&app, &auth, &$spec, q).await
            }

            #[utoipa::path(post, path = $list_path, tag = $tag, security(("bearer" = [])), request_body = $input,
                responses((status = 201, body = $record), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 423, body = ErrorBody)))]
            pub async fn create(State(app): State<AppState>, auth: Auth, body: Deferred<$input>) -> Result<Response, ApiError> {
                create_impl(&app, &auth, &$spec, body).await
            }

            #[utoipa::path(get, path = $item_path, tag = $tag, security(("bearer" = [])), params(("id" = i64, Path)),
                responses((status = 200, body = $record), (status = 404, body = ErrorBody)))]
            pub async fn get_one(State(app): State<AppState>, auth: Auth, Path(id): Path<i64>) -> Result<axum::Json<Map<String, JsonValue>>, ApiError> {
                get_impl(&app, &auth, &$spec, id).await
            }

            #[utoipa::path(patch, path = $item_path, tag = $tag, security(("bearer" = [])), params(("id" = i64, Path)), request_body = $patch,
                responses((status = 200, body = $record), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 423, body = ErrorBody)))]
            pub async fn update(State(app): State<AppState>, auth: Auth, Path(id): Path<i64>, body: Deferred<$patch>) -> Result<axum::Json<Map<String, JsonValue>>, ApiError> {
                update_impl(&app, &auth, &$spec, id, body).await
            }

            #[utoipa::path(delete, path = $item_path, tag = $tag, security(("bearer" = [])), params(("id" = i64, Path)),
                responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 423, body = ErrorBody)))]
            pub async fn delete(State(app): State<AppState>, auth: Auth, Path(id): Path<i64>) -> Result<StatusCode, ApiError> {
                delete_impl(&app, &auth, &$spec, id).await
            }
        }
    };
}

resource_handlers!(
    shops,
    shopdata::SHOPS,
    Shop,
    ShopInput,
    ShopPatch,
    "/api/v1/shops",
    "/api/v1/shops/{id}",
    "shops"
);
resource_handlers!(
    customers,
    shopdata::CUSTOMERS,
    Customer,
    CustomerInput,
    CustomerPatch,
    "/api/v1/customers",
    "/api/v1/customers/{id}",
    "customers"
);
resource_handlers!(
    tickets,
    shopdata::TICKETS,
    Ticket,
    TicketInput,
    TicketPatch,
    "/api/v1/tickets",
    "/api/v1/tickets/{id}",
    "tickets"
);
resource_handlers!(
    invoices,
    shopdata::INVOICES,
    Invoice,
    InvoiceInput,
    InvoicePatch,
    "/api/v1/invoices",
    "/api/v1/invoices/{id}",
    "invoices"
);
resource_handlers!(
    inventory,
    shopdata::INVENTORY,
    InventoryItem,
    InventoryItemInput,
    InventoryItemPatch,
    "/api/v1/inventory",
    "/api/v1/inventory/{id}",
    "inventory"
);
resource_handlers!(
    payments,
    shopdata::PAYMENTS,
    Payment,
    PaymentInput,
    PaymentPatch,
    "/api/v1/payments",
    "/api/v1/payments/{id}",
    "payments"
);
resource_handlers!(
    ticket_notes,
    shopdata::TICKET_NOTES,
    TicketNote,
    TicketNoteInput,
    TicketNotePatch,
    "/api/v1/ticket-notes",
    "/api/v1/ticket-notes/{id}",
    "tickets"
);
resource_handlers!(
    communications,
    shopdata::COMMUNICATIONS,
    Communication,
    CommunicationInput,
    CommunicationPatch,
    "/api/v1/communications",
    "/api/v1/communications/{id}",
    "customers"
);
resource_handlers!(
    invoice_lines,
    shopdata::INVOICE_LINES,
    InvoiceLine,
    InvoiceLineInput,
    InvoiceLinePatch,
    "/api/v1/invoice-lines",
    "/api/v1/invoice-lines/{id}",
    "invoices"
);
resource_handlers!(
    transactions,
    shopdata::TRANSACTIONS,
    Transaction,
    TransactionInput,
    TransactionPatch,
    "/api/v1/transactions",
    "/api/v1/transactions/{id}",
    "transactions"
);

/// Each resource's rules beside the names of its schemas in the OpenAPI document.
static RESOURCE_SCHEMAS: [(&Spec, [&str; 3]); 10] = [
    (&shopdata::SHOPS, shops::SCHEMAS),
    (&shopdata::CUSTOMERS, customers::SCHEMAS),
    (&shopdata::TICKETS, tickets::SCHEMAS),
    (&shopdata::INVOICES, invoices::SCHEMAS),
    (&shopdata::INVENTORY, inventory::SCHEMAS),
    (&shopdata::PAYMENTS, payments::SCHEMAS),
    (&shopdata::TICKET_NOTES, ticket_notes::SCHEMAS),
    (&shopdata::COMMUNICATIONS, communications::SCHEMAS),
    (&shopdata::INVOICE_LINES, invoice_lines::SCHEMAS),
    (&shopdata::TRANSACTIONS, transactions::SCHEMAS),
];

// ---------------------------------------------------------------- portal

#[utoipa::path(post, path = "/api/v1/portal/repairs", tag = "portal", request_body = PortalRepairRequest,
    responses((status = 201, body = PortalRepairResponse), (status = 404, body = ErrorBody), (status = 423, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn portal_repair(
    State(app): State<AppState>,
    ext: axum::http::Extensions,
    Json(req): Json<PortalRepairRequest>,
) -> Response {
    let ip = client_ip(&ext);
    let slug = req.account.clone();
    let result = portal_repair_inner(&app, ip, req).await;
    let (status, detail) = match &result {
        Ok(_) => (StatusCode::CREATED, "201".to_string()),
        Err(e) => (e.status, e.status.as_u16().to_string()),
    };
    app.audit(AuditEntry {
        at: control::now_text(),
        account: if control::valid_slug(&slug) { slug } else { "-".into() },
        user: "portal".into(),
        event_type: "data_change".into(),
        action: "POST /api/v1/portal/repairs".into(),
        resource: "/api/v1/portal/repairs".into(),
        ip: ip.to_string(),
        result: if status.is_success() { "success" } else { "failure" }.into(),
        detail,
    })
    .await;
    audited(match result {
        Ok(r) => (StatusCode::CREATED, axum::Json(r)).into_response(),
        Err(e) => e.into_response(),
    })
}

async fn portal_repair_inner(
    app: &AppState,
    ip: IpAddr,
    req: PortalRepairRequest,
) -> Result<PortalRepairResponse, ApiError> {
    if !app.portal_limit.allow(ip) {
        return Err(ApiError::too_many(
            "Too many repair requests from this address; try again in a minute.",
        ));
    }
    let slug = req.account.trim().to_string();
    let s2 = slug.clone();
    let account = app
        .control
        .read(move |c| control::account_by_slug(c, &s2).map_err(control::db_err))
        .await?
        .ok_or_else(|| ApiError::not_found("shop"))?;
    if account.account.mode == AccountMode::Restoring {
        return Err(ApiError::read_only());
    }
    let name = req.name.trim().to_string();
    if name.is_empty() || name.len() > 200 || !one_line(&name) {
        return Err(ApiError::invalid("give your name (up to 200 characters, on one line)"));
    }
    if !plausible_email(&req.email) {
        return Err(ApiError::invalid("give an email address we can reach you at"));
    }
    if req.device.trim().is_empty()
        || req.device.len() > 200
        || !one_line(&req.device)
        || req.problem.trim().is_empty()
        || req.problem.len() > 5000
        || req.problem.contains('\0')
    {
        return Err(ApiError::invalid(
            "describe the device (up to 200 characters) and the problem (up to 5000)",
        ));
    }
    if req.phone.as_ref().is_some_and(|p| p.len() > 50 || !one_line(p)) {
        return Err(ApiError::invalid("the phone number is too long or not on one line"));
    }
    let data = app.shop_data(&slug).await?;
    let now = app.clock.now();
    data.db
        .write(move |c| {
            let tx = c.transaction()?;
            let shop_id: i64 = tx
                .query_row("SELECT id FROM shops ORDER BY id LIMIT 1", [], |r| r.get(0))
                .map_err(|_| ApiError::not_found("shop"))?;
            let email = req.email.trim().to_lowercase();
            let existing: Option<i64> = tx
                .query_row("SELECT id FROM customers WHERE lower(email) = ?1 ORDER BY id LIMIT 1", [&email], |r| r.get(0))
                .ok();
            let stamp = shopdata::time_text(now);
            let customer_id = match existing {
                Some(id) => id,
                None => {
                    let (first, last) = name.split_once(' ').unwrap_or((name.as_str(), ""));
                    tx.execute(
                        "INSERT INTO customers (shop_id, first_name, last_name, email, phone, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                        rusqlite::params![shop_id, first, last, email, req.phone, stamp],
                    )?;
                    tx.last_insert_rowid()
                }
            };
            let (make, model) = req.device.trim().split_once(' ').unwrap_or((req.device.trim(), ""));
            tx.execute(
                "INSERT INTO tickets (shop_id, customer_id, device_make, device_model, problem, status, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'New', ?6, ?6)",
                rusqlite::params![shop_id, customer_id, make, model, req.problem.trim(), stamp],
            )?;
            let ticket_id = tx.last_insert_rowid();
            tx.commit()?;
            Ok(PortalRepairResponse {
                ticket_id,
                status: "New".into(),
            })
        })
        .await
}

// ---------------------------------------------------------------- notification settings

#[utoipa::path(get, path = "/api/v1/settings/notifications", tag = "settings", security(("bearer" = [])),
    responses((status = 200, body = crate::notify::NotificationSettings), (status = 403, body = ErrorBody)))]
async fn get_notifications(
    State(app): State<AppState>,
    auth: Auth,
) -> Result<axum::Json<crate::notify::NotificationSettings>, ApiError> {
    auth.require(Permission::NotificationSettings)?;
    let id = auth.account.id;
    Ok(axum::Json(
        app.control.read(move |c| Ok(crate::notify::settings(c, id))).await?,
    ))
}

#[utoipa::path(put, path = "/api/v1/settings/notifications", tag = "settings", security(("bearer" = [])),
    request_body = crate::notify::NotificationSettings,
    responses((status = 200, body = crate::notify::NotificationSettings), (status = 403, body = ErrorBody), (status = 423, body = ErrorBody)))]
async fn put_notifications(
    State(app): State<AppState>,
    auth: Auth,
    body: Deferred<crate::notify::NotificationSettings>,
) -> Result<axum::Json<crate::notify::NotificationSettings>, ApiError> {
    auth.require(Permission::NotificationSettings)?;
    auth.require_writable()?;
    let s = body.parse()?;
    let id = auth.account.id;
    app.control
        .write(move |c| {
            c.execute(
                "INSERT INTO notification_settings (account_id, on_failure, on_delay, on_large) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (account_id) DO UPDATE SET on_failure = excluded.on_failure, on_delay = excluded.on_delay, on_large = excluded.on_large",
                rusqlite::params![id, s.on_failure, s.on_delay, s.on_large],
            )
            .map_err(control::db_err)?;
            Ok(())
        })
        .await?;
    Ok(axum::Json(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_people_type_pass_and_ones_that_could_bend_a_header_or_log_do_not() {
        for good in [
            "owner@demo.repairops.test",
            " Sam.New@Example.com ",
            "o'brien+repairs@mail.example.co.uk",
            "josé@correo.example.es",
            "user@xn--bcher-kva.example",
            "李@例子.中国",
            "x@हिन्दी.भारत",
        ] {
            assert!(plausible_email(good), "{good:?} refused");
        }
        for bad in [
            "",
            "a@b",
            "@example.com",
            "a@@example.com",
            "a\u{0}b@example.com",
            "a@exa\u{0}mple.com",
            "a b@example.com",
            "a@example.com\r\nBcc: everyone@example.com",
            "\"><script>@x.com",
            "Ann <ann@example.com>",
            "ann@example.com, bo@example.com",
            "ann@example..com",
            "ann@.example.com",
            "ann@-example.com",
            ".ann@example.com",
            "ann.@example.com",
            "a..b@example.com",
            "ann@exam_ple.com",
            "ann\u{202e}moc@example.com",
            "ann\u{200b}@example.com",
            "ann@exa\u{2028}mple.com",
        ] {
            assert!(!plausible_email(bad), "{bad:?} passed");
        }
        assert!(!plausible_email(&format!("{}@example.com", "a".repeat(250))));
    }

    #[test]
    fn one_line_refuses_breaks_and_text_that_hides_or_reorders_itself() {
        assert!(one_line("Nguyễn Văn An — Repairs & Co."));
        for bad in [
            "a\nb",
            "a\tb",
            "a\u{0}b",
            "a\u{2028}b",
            "evil\u{202e}gpj.exe",
            "a\u{200b}b",
        ] {
            assert!(!one_line(bad), "{bad:?} passed");
        }
    }
}
