//! A typed async client for API v1 (reqwest with rustls).

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::types::*;

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error body.
    #[error("{message}")]
    Api {
        status: u16,
        code: String,
        message: String,
        /// Anything else the error object carried, e.g. the `conflicts` of a 409
        /// `would_overwrite`.
        details: Option<serde_json::Value>,
    },
    /// The server could not be reached or the connection broke.
    #[error("cannot reach the server: {0}")]
    Transport(String),
    /// The server answered something this client does not understand.
    #[error("unexpected answer from the server: {0}")]
    Decode(String),
    /// The client was set up wrongly (bad URL or certificate).
    #[error("{0}")]
    Setup(String),
}

impl ClientError {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The error code of an API error.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Which certificates the client trusts.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The operating system's roots (a server with a public certificate).
    System,
    /// Only this CA (PEM): the server's own CA, pinned by its fingerprint.
    PinnedCa(Vec<u8>),
}

/// A shop-data resource and its URL segment.
pub trait Resource: DeserializeOwned {
    const PATH: &'static str;
    type Input: Serialize + Sync;
    type Patch: Serialize + Sync;
}

macro_rules! resource_path {
    ($($record:ty, $input:ty, $patch:ty, $path:literal;)*) => {$(
        impl Resource for $record {
            const PATH: &'static str = $path;
            type Input = $input;
            type Patch = $patch;
        }
    )*};
}

resource_path! {
    Shop, ShopInput, ShopPatch, "shops";
    Customer, CustomerInput, CustomerPatch, "customers";
    Ticket, TicketInput, TicketPatch, "tickets";
    Invoice, InvoiceInput, InvoicePatch, "invoices";
    InventoryItem, InventoryItemInput, InventoryItemPatch, "inventory";
    Transaction, TransactionInput, TransactionPatch, "transactions";
    Payment, PaymentInput, PaymentPatch, "payments";
    TicketNote, TicketNoteInput, TicketNotePatch, "ticket-notes";
    Communication, CommunicationInput, CommunicationPatch, "communications";
    InvoiceLine, InvoiceLineInput, InvoiceLinePatch, "invoice-lines";
}

/// A connection to one server, optionally signed in.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("signed_in", &self.token.is_some())
            .finish()
    }
}

impl Client {
    /// `base` is the server's address, e.g. `https://127.0.0.1:8443`.
    pub fn new(base: &str, trust: Trust) -> Result<Client, ClientError> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(ClientError::Setup(format!(
                "{base:?} is not a server address (https://host:port)"
            )));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(120))
            .connect_timeout(std::time::Duration::from_secs(10));
        if let Trust::PinnedCa(pem) = trust {
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| ClientError::Setup(format!("the pinned CA certificate is unreadable: {e}")))?;
            builder = builder.tls_certs_only([cert]);
        }
        let http = builder.build().map_err(|e| ClientError::Setup(e.to_string()))?;
        Ok(Client {
            http,
            base,
            token: None,
        })
    }

    /// The same connection, signed in with `token`.
    pub fn with_token(&self, token: impl Into<String>) -> Client {
        Client {
            token: Some(token.into()),
            ..self.clone()
        }
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request; returns the status and body whatever they are. For tests and
    /// tools that need to see raw answers.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<(StatusCode, Vec<u8>), ClientError> {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some((bytes, content_type)) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, content_type).body(bytes);
        }
        let resp = req.send().await.map_err(|e| ClientError::Transport(describe(&e)))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| ClientError::Transport(describe(&e)))?;
        Ok((status, bytes.to_vec()))
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<T, ClientError> {
        let (status, bytes) = self.raw(method, path, body).await?;
        if !status.is_success() {
            return Err(error_from(status.as_u16(), &bytes));
        }
        let bytes = if bytes.is_empty() { b"null".to_vec() } else { bytes };
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    async fn json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ClientError::Setup(e.to_string()))?;
        self.call(method, path, Some((bytes, "application/json"))).await
    }

    /// Signs in; the returned client carries the token.
    pub async fn login(&self, email: &str, password: &str) -> Result<(Client, LoginResponse), ClientError> {
        let resp: LoginResponse = self
            .json(
                Method::POST,
                "/api/v1/auth/login",
                &LoginRequest {
                    email: email.into(),
                    password: password.into(),
                },
            )
            .await?;
        Ok((self.with_token(resp.token.clone()), resp))
    }

    /// Revokes this client's token.
    pub async fn logout(&self) -> Result<(), ClientError> {
        self.call::<serde_json::Value>(Method::POST, "/api/v1/auth/logout", None)
            .await
            .map(|_| ())
    }

    pub async fn account(&self) -> Result<Account, ClientError> {
        self.call(Method::GET, "/api/v1/account", None).await
    }

    pub async fn update_account(&self, patch: &AccountPatch) -> Result<Account, ClientError> {
        self.json(Method::PATCH, "/api/v1/account", patch).await
    }

    /// One page of a resource; `query` holds filters, `limit` and `cursor`.
    pub async fn list<R: Resource>(&self, query: &[(&str, &str)]) -> Result<Page<R>, ClientError> {
        let qs: Vec<String> = query.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect();
        let path = if qs.is_empty() {
            format!("/api/v1/{}", R::PATH)
        } else {
            format!("/api/v1/{}?{}", R::PATH, qs.join("&"))
        };
        self.call(Method::GET, &path, None).await
    }

    pub async fn get<R: Resource>(&self, id: i64) -> Result<R, ClientError> {
        self.call(Method::GET, &format!("/api/v1/{}/{id}", R::PATH), None).await
    }

    pub async fn create<R: Resource>(&self, input: &R::Input) -> Result<R, ClientError> {
        self.json(Method::POST, &format!("/api/v1/{}", R::PATH), input).await
    }

    pub async fn update<R: Resource>(&self, id: i64, patch: &R::Patch) -> Result<R, ClientError> {
        self.json(Method::PATCH, &format!("/api/v1/{}/{id}", R::PATH), patch)
            .await
    }

    pub async fn delete<R: Resource>(&self, id: i64) -> Result<(), ClientError> {
        self.call::<serde_json::Value>(Method::DELETE, &format!("/api/v1/{}/{id}", R::PATH), None)
            .await
            .map(|_| ())
    }

    /// Uploads a photo or document for a ticket.
    pub async fn upload_attachment(
        &self,
        ticket_id: i64,
        file_name: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Attachment, ClientError> {
        let path = format!("/api/v1/attachments?ticket_id={ticket_id}&file_name={}", enc(file_name));
        self.call(Method::POST, &path, Some((bytes, content_type))).await
    }

    pub async fn attachments(&self, query: &[(&str, &str)]) -> Result<Page<Attachment>, ClientError> {
        let qs: Vec<String> = query.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect();
        self.call(Method::GET, &format!("/api/v1/attachments?{}", qs.join("&")), None)
            .await
    }

    pub async fn download_attachment(&self, id: i64) -> Result<Vec<u8>, ClientError> {
        let (status, bytes) = self
            .raw(Method::GET, &format!("/api/v1/attachments/{id}/content"), None)
            .await?;
        if status.is_success() {
            Ok(bytes)
        } else {
            Err(error_from(status.as_u16(), &bytes))
        }
    }

    /// Backups, newest first (`query`: kind, from, to, limit, cursor).
    pub async fn backups(&self, query: &[(&str, &str)]) -> Result<Page<Backup>, ClientError> {
        self.call(Method::GET, &with_query("/api/v1/backups", query), None)
            .await
    }

    /// Starts a manual backup.
    pub async fn back_up_now(&self) -> Result<Job, ClientError> {
        self.call(Method::POST, "/api/v1/backups", None).await
    }

    pub async fn backup_status(&self) -> Result<BackupStatus, ClientError> {
        self.call(Method::GET, "/api/v1/backups/status", None).await
    }

    pub async fn job(&self, id: i64) -> Result<Job, ClientError> {
        self.call(Method::GET, &format!("/api/v1/jobs/{id}"), None).await
    }

    /// Jobs running now (what the desktop reattaches to).
    pub async fn running_jobs(&self) -> Result<Vec<Job>, ClientError> {
        let page: Page<Job> = self.call(Method::GET, "/api/v1/jobs?state=running", None).await?;
        Ok(page.items)
    }

    /// Starts an export job; its result names the `export_id`.
    pub async fn start_export(&self, req: &NewExport) -> Result<Job, ClientError> {
        self.json(Method::POST, "/api/v1/exports", req).await
    }

    /// Stored exports, newest first.
    pub async fn exports(&self, query: &[(&str, &str)]) -> Result<Page<Export>, ClientError> {
        self.call(Method::GET, &with_query("/api/v1/exports", query), None)
            .await
    }

    /// Makes a recovery key opened by `passphrase` (owner only): the text of the file to
    /// keep away from the server.
    pub async fn recovery_key(&self, passphrase: &str) -> Result<String, ClientError> {
        let body = serde_json::to_vec(&RecoveryKeyRequest {
            passphrase: passphrase.into(),
        })
        .map_err(|e| ClientError::Setup(e.to_string()))?;
        let (status, bytes) = self
            .raw(Method::POST, "/api/v1/keys/recovery", Some((body, "application/json")))
            .await?;
        if !status.is_success() {
            return Err(error_from(status.as_u16(), &bytes));
        }
        String::from_utf8(bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// The account's team sign-ins (owner only).
    pub async fn team(&self) -> Result<Page<TeamMember>, ClientError> {
        self.call(Method::GET, "/api/v1/team", None).await
    }

    /// Gives someone who joined the shop a sign-in (owner only).
    pub async fn add_team_member(&self, member: &NewTeamMember) -> Result<TeamMember, ClientError> {
        self.json(Method::POST, "/api/v1/team", member).await
    }

    /// Changes a team sign-in: role, switched off or on, new password (owner only).
    pub async fn change_team_member(&self, id: i64, change: &TeamChange) -> Result<TeamMember, ClientError> {
        self.json(Method::PATCH, &format!("/api/v1/team/{id}"), change).await
    }

    /// Starts downloading an export from byte `from` (0 for all of it): the response,
    /// to read in chunks. Its `x-content-sha256` header is the whole file's SHA-256; a
    /// resumed download answers 206 with `content-range`.
    pub async fn export_download(&self, id: i64, from: u64) -> Result<reqwest::Response, ClientError> {
        self.stream_get(&format!("/api/v1/exports/{id}/download"), from).await
    }

    /// A GET whose body is read in chunks by the caller (large files). Long downloads
    /// get hours, not the two minutes of an ordinary call.
    async fn stream_get(&self, path: &str, from: u64) -> Result<reqwest::Response, ClientError> {
        let mut req = self
            .http
            .get(format!("{}{path}", self.base))
            .timeout(std::time::Duration::from_secs(6 * 3600));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if from > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={from}-"));
        }
        let resp = req.send().await.map_err(|e| ClientError::Transport(describe(&e)))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| ClientError::Transport(describe(&e)))?;
        Err(error_from(status, &bytes))
    }

    /// One backup with its data summary and locations.
    pub async fn backup(&self, id: i64) -> Result<Backup, ClientError> {
        self.call(Method::GET, &format!("/api/v1/backups/{id}"), None).await
    }

    /// Deletes a manual or safety backup (scheduled ones follow the plan's retention).
    pub async fn delete_backup(&self, id: i64) -> Result<(), ClientError> {
        self.call::<serde_json::Value>(Method::DELETE, &format!("/api/v1/backups/{id}"), None)
            .await
            .map(|_| ())
    }

    /// Starts a restore drill of a backup (read back from storage and checked).
    pub async fn verify_backup(&self, id: i64) -> Result<Job, ClientError> {
        self.call(Method::POST, &format!("/api/v1/backups/{id}/verify"), None)
            .await
    }

    /// Rows per table of the live data now (to compare with a backup's summary).
    pub async fn live_summary(&self) -> Result<DataSummary, ClientError> {
        self.call(Method::GET, "/api/v1/account/summary", None).await
    }

    /// Each backup location and whether it answers now.
    pub async fn storage(&self) -> Result<Vec<StorageLocation>, ClientError> {
        let page: Page<StorageLocation> = self.call(Method::GET, "/api/v1/storage", None).await?;
        Ok(page.items)
    }

    /// The audit log, newest first (`query`: from, to, event_type, user, limit, cursor).
    pub async fn audit(&self, query: &[(&str, &str)]) -> Result<Page<AuditRecord>, ClientError> {
        self.call(Method::GET, &with_query("/api/v1/audit", query), None).await
    }

    /// The audit log as CSV, with the same filters: the response, to read in chunks.
    pub async fn audit_csv(&self, query: &[(&str, &str)]) -> Result<reqwest::Response, ClientError> {
        self.stream_get(&with_query("/api/v1/audit/export.csv", query), 0).await
    }

    pub async fn notification_settings(&self) -> Result<NotificationSettings, ClientError> {
        self.call(Method::GET, "/api/v1/settings/notifications", None).await
    }

    pub async fn set_notification_settings(
        &self,
        settings: &NotificationSettings,
    ) -> Result<NotificationSettings, ClientError> {
        self.json(Method::PUT, "/api/v1/settings/notifications", settings).await
    }

    /// Brings one ticket or customer back from a backup; a 409 `would_overwrite` lists
    /// the live rows that differ (ask again with `overwrite`).
    pub async fn restore_record(&self, req: &RecordRestoreRequest) -> Result<RecordRestoreResult, ClientError> {
        self.json(Method::POST, "/api/v1/restores/records", req).await
    }

    /// Starts rotating the master key.
    pub async fn rotate_key(&self) -> Result<Job, ClientError> {
        self.call(Method::POST, "/api/v1/keys/rotate", None).await
    }

    /// The account's event stream (server-sent events), from after `last_event_id` when
    /// resuming: the server first replays what was missed, then sends events as they
    /// happen. The stream ends when the connection drops; call again with the last id.
    pub async fn events(
        &self,
        last_event_id: Option<u64>,
    ) -> Result<impl futures_util::Stream<Item = Result<ServerEvent, ClientError>> + use<>, ClientError> {
        use eventsource_stream::Eventsource;
        use futures_util::StreamExt;
        let mut req = self
            .http
            .get(format!("{}/api/v1/events", self.base))
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .timeout(std::time::Duration::from_secs(24 * 3600));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        let resp = req.send().await.map_err(|e| ClientError::Transport(describe(&e)))?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.map_err(|e| ClientError::Transport(describe(&e)))?;
            return Err(error_from(status, &bytes));
        }
        Ok(resp.bytes_stream().eventsource().map(|item| match item {
            Ok(e) => Ok(ServerEvent {
                id: e.id.parse().ok(),
                kind: e.event,
                data: serde_json::from_str(&e.data).unwrap_or(serde_json::Value::String(e.data)),
            }),
            Err(e) => Err(ClientError::Transport(e.to_string())),
        }))
    }

    /// Everything tied to a customer's email (GDPR data-subject export).
    pub async fn subject_export(&self, email: &str) -> Result<serde_json::Value, ClientError> {
        self.json(
            Method::POST,
            "/api/v1/compliance/subject-export",
            &SubjectRequest { email: email.into() },
        )
        .await
    }

    /// The CCPA export of a customer's data.
    pub async fn ccpa_export(&self, email: &str) -> Result<serde_json::Value, ClientError> {
        let req = CcpaRequest {
            email: email.into(),
            kind: "export".into(),
        };
        self.json(Method::POST, "/api/v1/compliance/ccpa", &req).await
    }

    /// Permanently deletes a customer and everything tied to them (CCPA).
    pub async fn ccpa_delete(&self, email: &str) -> Result<DeletionResult, ClientError> {
        let req = CcpaRequest {
            email: email.into(),
            kind: "delete".into(),
        };
        self.json(Method::POST, "/api/v1/compliance/ccpa", &req).await
    }

    pub async fn compliance_requests(&self, query: &[(&str, &str)]) -> Result<Page<ComplianceRecord>, ClientError> {
        self.call(Method::GET, &with_query("/api/v1/compliance/requests", query), None)
            .await
    }

    /// Restores a backup to production; `confirm` must be the account's slug.
    pub async fn restore(&self, backup_id: i64, confirm: &str) -> Result<Job, ClientError> {
        self.json(
            Method::POST,
            "/api/v1/restores",
            &serde_json::json!({"backup_id": backup_id, "confirm": confirm}),
        )
        .await
    }

    /// Opens a backup as a sandbox; the job's result names the `sandbox_id`.
    pub async fn create_sandbox(&self, backup_id: i64) -> Result<Job, ClientError> {
        self.json(Method::POST, "/api/v1/sandboxes", &NewSandbox { backup_id })
            .await
    }

    pub async fn sandboxes(&self) -> Result<Page<Sandbox>, ClientError> {
        self.call(Method::GET, "/api/v1/sandboxes", None).await
    }

    pub async fn delete_sandbox(&self, id: i64) -> Result<(), ClientError> {
        self.call::<serde_json::Value>(Method::DELETE, &format!("/api/v1/sandboxes/{id}"), None)
            .await
            .map(|_| ())
    }

    /// This client, pointed at a sandbox: its shop-data calls (`list`, `get`, `create`…)
    /// read and write the sandbox, never production.
    pub fn in_sandbox(&self, id: i64) -> Client {
        let mut c = self.clone();
        c.base = format!("{}/sandboxes/{id}", self.base);
        c
    }

    /// A customer's repair request through the portal (no sign-in).
    pub async fn portal_repair(&self, req: &PortalRepairRequest) -> Result<PortalRepairResponse, ClientError> {
        self.json(Method::POST, "/api/v1/portal/repairs", req).await
    }
}

/// The error an unsuccessful answer carries, as a sentence when the body is not the
/// API's error shape (a proxy's page, say).
fn error_from(status: u16, bytes: &[u8]) -> ClientError {
    let parsed = serde_json::from_slice::<serde_json::Value>(bytes).ok();
    let mut detail = match parsed {
        Some(serde_json::Value::Object(mut body)) => match body.remove("error") {
            Some(serde_json::Value::Object(detail)) => detail,
            _ => Default::default(),
        },
        _ => Default::default(),
    };
    let text = |v: Option<serde_json::Value>| match v {
        Some(serde_json::Value::String(s)) => Some(s),
        _ => None,
    };
    match (text(detail.remove("code")), text(detail.remove("message"))) {
        (Some(code), Some(message)) => ClientError::Api {
            status,
            code,
            message,
            details: (!detail.is_empty()).then_some(serde_json::Value::Object(detail)),
        },
        _ => ClientError::Api {
            status,
            code: "http_error".into(),
            message: format!("the server answered HTTP {status}"),
            details: None,
        },
    }
}

fn with_query(path: &str, query: &[(&str, &str)]) -> String {
    if query.is_empty() {
        return path.to_string();
    }
    let qs: Vec<String> = query.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect();
    format!("{path}?{}", qs.join("&"))
}

/// Percent-encodes a query component.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A transport error as a sentence, with its underlying cause (reqwest's top-level
/// message alone says little).
fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}
