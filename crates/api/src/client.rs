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
    Api { status: u16, code: String, message: String },
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
            return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(e) => ClientError::Api {
                    status: status.as_u16(),
                    code: e.error.code,
                    message: e.error.message,
                },
                Err(_) => ClientError::Api {
                    status: status.as_u16(),
                    code: "http_error".into(),
                    message: format!("the server answered {status}"),
                },
            });
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
            Err(ClientError::Api {
                status: status.as_u16(),
                code: "http_error".into(),
                message: String::from_utf8_lossy(&bytes).into_owned(),
            })
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

    /// Starts downloading an export from byte `from` (0 for all of it): the response,
    /// to read in chunks. Its `x-content-sha256` header is the whole file's SHA-256; a
    /// resumed download answers 206 with `content-range`.
    pub async fn export_download(&self, id: i64, from: u64) -> Result<reqwest::Response, ClientError> {
        let mut req = self.http.get(format!("{}/api/v1/exports/{id}/download", self.base));
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
        Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(e) => ClientError::Api {
                status,
                code: e.error.code,
                message: e.error.message,
            },
            Err(_) => ClientError::Api {
                status,
                code: "http_error".into(),
                message: format!("the server answered {status}"),
            },
        })
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

    pub async fn compliance_requests(&self) -> Result<Page<ComplianceRecord>, ClientError> {
        self.call(Method::GET, "/api/v1/compliance/requests", None).await
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
