//! repairops-server: hosts each shop's live data and the control plane beside it, and
//! serves HTTP API v1 to the desktop app, operators' scripts and the customer portal.
//!
//! [`launch`] starts the server on a listener the caller bound, so the binary and the
//! tests start it the same way. The pieces: [`config`] (TOML plus environment),
//! [`control`] (accounts, sign-ins, tokens), [`audit`] (the hash-chained log),
//! [`live`] and [`shopdata`] (each account's shop database and its resources),
//! [`attachments`], [`auth`] (roles and throttling), [`http`] (routes and OpenAPI),
//! [`tls`] (our own CA when no certificate is configured) and [`seed`] (demo data).

pub mod app;
pub mod attachments;
pub mod audit;
pub mod audit_api;
pub mod auth;
pub mod backup_api;
pub mod backup_jobs;
pub mod backups;
pub mod compliance;
pub mod config;
pub mod control;
pub mod csv_export;
pub mod db;
pub mod drills;
pub mod erasure;
pub mod error;
pub mod export_api;
pub mod export_command;
pub mod export_jobs;
pub mod exports;
pub mod faults;
pub mod http;
pub mod invoice_pdf;
pub mod jobs;
pub mod json_export;
pub mod live;
pub mod mail;
pub mod metrics;
pub mod notify;
pub mod record_restore;
pub mod restores;
pub mod sandboxes;
pub mod schedule;
pub mod sealed_file;
pub mod seed;
pub mod shopdata;
pub mod staff;
pub mod team_api;
pub mod tls;
pub mod unread_body;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use app::{App, AppState, Clock, SystemClock};
pub use config::Config;

/// How clients reach a started server.
#[derive(Debug, Clone)]
pub struct Listening {
    pub url: String,
    /// SHA-256 of the CA certificate clients should pin (`None` for plain HTTP).
    pub ca_sha256: Option<String>,
    /// The CA certificate file to pin.
    pub ca_pem: Option<std::path::PathBuf>,
}

/// Prepares TLS and the application for `config`; returns what clients need to know.
pub fn prepare(
    config: &Config,
    listener: &std::net::TcpListener,
) -> Result<(Option<tls::TlsFiles>, Listening), String> {
    config.validate()?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    if config.insecure_http {
        return Ok((
            None,
            Listening {
                url: format!("http://{addr}"),
                ca_sha256: None,
                ca_pem: None,
            },
        ));
    }
    let files = match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => tls::TlsFiles {
            cert_chain: cert.clone(),
            key: key.clone(),
            ca: config.tls.ca.clone().unwrap_or_else(|| cert.clone()),
        },
        _ => tls::ensure_self_signed(&config.keys_dir(), &config.tls.names)?,
    };
    let fingerprint = tls::fingerprint(&files.ca)?;
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        display_ip(addr)
    };
    Ok((
        Some(files.clone()),
        Listening {
            url: format!("https://{host}:{}", addr.port()),
            ca_sha256: Some(fingerprint),
            ca_pem: Some(files.ca),
        },
    ))
}

fn display_ip(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    }
}

/// Serves until `shutdown` completes, then finishes requests in flight (up to 10 s).
pub async fn launch(
    config: Config,
    clock: Arc<dyn Clock>,
    listener: std::net::TcpListener,
    tls_files: Option<tls::TlsFiles>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let app: AppState = Arc::new(App::open(config, clock)?);
    export_jobs::spawn_sweeper(app.clone());
    if app.config.backup.schedule {
        backup_jobs::spawn_scheduler(app.clone());
    }
    let router = http::router(app).into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        h.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    let io = |e: std::io::Error| format!("the server stopped: {e}");
    match tls_files {
        Some(files) => {
            let rustls = tls13_only(&files.cert_chain, &files.key)
                .map_err(|e| format!("cannot load the TLS certificate {}: {e}", files.cert_chain.display()))?;
            axum_server::tls_rustls::from_tcp_rustls(listener, rustls)
                .map_err(io)?
                .handle(handle)
                .serve(router)
                .await
                .map_err(io)
        }
        None => axum_server::from_tcp(listener)
            .map_err(io)?
            .handle(handle)
            .serve(router)
            .await
            .map_err(io),
    }
}

/// The server's TLS settings: TLS 1.3 only (the product promises it; 1.2's older
/// cipher suites and renegotiation have no place on a shop's data), HTTP/2 and
/// HTTP/1.1 offered as axum-server's own loader offers them.
fn tls13_only(
    cert_chain: &std::path::Path,
    key: &std::path::Path,
) -> Result<axum_server::tls_rustls::RustlsConfig, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert_chain)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(axum_server::tls_rustls::RustlsConfig::from_config(std::sync::Arc::new(
        config,
    )))
}
