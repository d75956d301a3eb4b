//! Trust on first use: the server has its own CA and prints its SHA-256 at start
//! (`ca-sha256 AB:CD:…`). The first connection shows that fingerprint to the person,
//! who compares it with what the server printed; from then on the app trusts that CA
//! and nothing else for this server, and a changed CA is refused, not silently
//! accepted.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ErrorKind, UiError};

/// A server's CA as seen on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenCa {
    /// `AB:CD:…`, as the server prints it.
    pub sha256: String,
    /// The CA certificate, PEM, to trust from now on.
    pub pem: String,
}

/// `AB:CD:…` of a certificate's DER bytes.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Normalises a fingerprint a person typed or pasted (any case, with or without colons
/// or spaces).
pub fn normalise_fingerprint(s: &str) -> String {
    let hex: String = s
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .collect::<String>()
        .to_uppercase();
    hex.as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

fn pem_of(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// Connects to an `https://` server, completes a TLS handshake without judging the
/// certificate, and returns the CA at the top of the chain it presented (its only
/// certificate when it sends one). Nothing is sent over that connection.
pub fn see_ca(url: &str) -> Result<SeenCa, UiError> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|_| {
        UiError::invalid(format!(
            "\"{url}\" is not a server address. It looks like https://192.168.1.20:8443."
        ))
    })?;
    if parsed.scheme() != "https" {
        return Err(UiError::invalid(
            "The server address must start with https:// (the server always uses TLS).",
        ));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| UiError::invalid("The server address has no host name."))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let offline = |e: std::io::Error| {
        UiError::new(
            crate::error::ErrorKind::Offline,
            format!("Cannot reach {host}:{port} ({e}). Check the address and that the server is running."),
        )
    };
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(offline)?
        .next()
        .ok_or_else(|| UiError::invalid(format!("{host} does not resolve to an address.")))?;
    let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(offline)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).map_err(offline)?;
    tcp.set_write_timeout(Some(Duration::from_secs(10))).map_err(offline)?;

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| UiError::failed(format!("TLS setup failed: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    let name = ServerName::try_from(host.clone())
        .map_err(|_| UiError::invalid(format!("\"{host}\" is not a valid host name.")))?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name)
        .map_err(|e| UiError::failed(format!("TLS setup failed: {e}")))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| {
            UiError::new(
                crate::error::ErrorKind::Offline,
                format!(
                    "{host}:{port} did not complete a TLS handshake ({e}). Is this the RepairOps server's address?"
                ),
            )
        })?;
    }
    let chain = conn
        .peer_certificates()
        .ok_or_else(|| UiError::failed("The server sent no certificate."))?;
    let ca = chain
        .last()
        .ok_or_else(|| UiError::failed("The server sent no certificate."))?
        .clone()
        .into_owned();
    // Close politely; the answer does not matter.
    conn.send_close_notify();
    let _ = conn.complete_io(&mut tcp);
    let _ = tcp.flush();
    let _ = tcp.read(&mut [0u8; 1]);
    Ok(SeenCa {
        sha256: fingerprint(ca.as_ref()),
        pem: pem_of(ca.as_ref()),
    })
}

/// Accepts any certificate but still checks the handshake's signatures, so what we
/// record is what the peer really holds the key for.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Looks at the CA `url` presents now and holds it against what this computer trusts
/// for that server and, when signing in, the fingerprint the person confirmed.
/// What this computer knows of the CA a server showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    /// The CA this computer trusts for the server.
    Pinned,
    /// The first CA seen for the server.
    New,
    /// Not the CA this computer trusted for the server before (`was`): the server was
    /// reinstalled, or someone is in between. Trusted only once the person confirms the
    /// new fingerprint, after a warning that shows both.
    Changed { was: String },
}

/// Returns the CA and what this computer knows of it.
pub async fn look(pins: &Pins, url: &str, confirmed: Option<&str>) -> Result<(SeenCa, Known), UiError> {
    let probe_url = url.to_string();
    let seen = tokio::task::spawn_blocking(move || see_ca(&probe_url))
        .await
        .map_err(|e| UiError::failed(e.to_string()))??;
    let known = judge(pins.get(url).as_ref(), &seen, confirmed)?;
    Ok((seen, known))
}

/// The checks of [`look`], without the network. A CA other than the one the person
/// confirmed is refused: the server changed between "Check" and "Sign in", which may be
/// someone in between.
fn judge(pinned: Option<&SeenCa>, seen: &SeenCa, confirmed: Option<&str>) -> Result<Known, UiError> {
    if let Some(confirmed) = confirmed
        && normalise_fingerprint(confirmed) != seen.sha256
    {
        return Err(UiError::new(
            ErrorKind::Forbidden,
            "The server's certificate is not the one you confirmed. Check the server again.",
        ));
    }
    Ok(match pinned {
        Some(pinned) if pinned.sha256 == seen.sha256 => Known::Pinned,
        Some(pinned) => Known::Changed {
            was: pinned.sha256.clone(),
        },
        None => Known::New,
    })
}

/// The CAs this computer trusts, by server address (`pins.json` in the app's folder).
#[derive(Debug, Clone)]
pub struct Pins {
    path: PathBuf,
}

impl Pins {
    pub fn new(path: PathBuf) -> Pins {
        Pins { path }
    }

    fn load(&self) -> BTreeMap<String, SeenCa> {
        std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// The CA trusted for `server`, if any.
    pub fn get(&self, server: &str) -> Option<SeenCa> {
        self.load().remove(&server_key(server))
    }

    /// Trusts `ca` for `server` from now on.
    pub fn pin(&self, server: &str, ca: &SeenCa) -> Result<(), UiError> {
        let mut all = self.load();
        all.insert(server_key(server), ca.clone());
        let bytes = serde_json::to_vec_pretty(&all).map_err(|e| UiError::failed(e.to_string()))?;
        crate::files::write_atomically(&self.path, &bytes)?;
        Ok(())
    }
}

/// Whether `server` is on this computer (a loopback address or `localhost`).
pub fn is_loopback(server: &str) -> bool {
    let Some(host) = reqwest::Url::parse(server.trim())
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
    else {
        return false;
    };
    match host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// One spelling per server: no trailing slash, lower-case scheme and host.
pub fn server_key(server: &str) -> String {
    match reqwest::Url::parse(server.trim()) {
        Ok(u) => u.as_str().trim_end_matches('/').to_string(),
        Err(_) => server.trim().trim_end_matches('/').to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_normalised_whatever_was_pasted() {
        assert_eq!(normalise_fingerprint("ab:cd:0f"), "AB:CD:0F");
        assert_eq!(normalise_fingerprint(" abcd 0F "), "AB:CD:0F");
        assert_eq!(fingerprint(b"x").len(), 32 * 3 - 1);
    }

    #[test]
    fn pins_survive_a_reload_and_are_keyed_by_one_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let pins = Pins::new(dir.path().join("pins.json"));
        let ca = SeenCa {
            sha256: "AB".into(),
            pem: "pem".into(),
        };
        pins.pin("HTTPS://Example.test:8443/", &ca).unwrap();
        let again = Pins::new(dir.path().join("pins.json"));
        assert_eq!(again.get("https://example.test:8443"), Some(ca));
        assert_eq!(again.get("https://example.test:9443"), None);
    }

    #[test]
    fn a_ca_is_held_against_the_pin_and_against_what_the_person_confirmed() {
        let ca = |sha: &str| SeenCa {
            sha256: sha.into(),
            pem: "pem".into(),
        };
        // First contact, before and after the person confirmed it (however they typed it).
        assert_eq!(judge(None, &ca("AB:CD"), None).unwrap(), Known::New);
        assert_eq!(judge(None, &ca("AB:CD"), Some("ab cd")).unwrap(), Known::New);
        assert_eq!(
            judge(Some(&ca("AB:CD")), &ca("AB:CD"), Some("AB:CD")).unwrap(),
            Known::Pinned
        );
        // The server changed between "Check" and "Sign in".
        let e = judge(None, &ca("AB:CD"), Some("AB:CE")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Forbidden);
        assert!(e.message.contains("not the one you confirmed"), "{}", e.message);
        // The server changed since this computer last connected: shown with the old one,
        // and trusted only once the new one is confirmed.
        let changed = Known::Changed { was: "AB:CD".into() };
        assert_eq!(judge(Some(&ca("AB:CD")), &ca("EF:01"), None).unwrap(), changed);
        assert_eq!(judge(Some(&ca("AB:CD")), &ca("EF:01"), Some("EF:01")).unwrap(), changed);
        // Confirming the old fingerprint does not let the new CA in.
        assert!(judge(Some(&ca("AB:CD")), &ca("EF:01"), Some("AB:CD")).is_err());
    }

    #[test]
    fn only_this_computer_is_loopback() {
        for here in [
            "https://127.0.0.1:8443",
            "https://localhost:8443/",
            "https://[::1]:8443",
        ] {
            assert!(is_loopback(here), "{here}");
        }
        for elsewhere in [
            "https://10.0.0.5:8443",
            "https://shop.example",
            "https://localhost.example",
            "nonsense",
        ] {
            assert!(!is_loopback(elsewhere), "{elsewhere}");
        }
    }

    #[test]
    fn addresses_that_are_not_https_are_refused_with_a_sentence() {
        let e = see_ca("http://127.0.0.1:1").unwrap_err();
        assert!(e.message.contains("https://"), "{}", e.message);
        let e = see_ca("not a url").unwrap_err();
        assert!(e.message.contains("not a server address"), "{}", e.message);
    }
}
