//! TLS: certificates given in the config, or a CA and server certificate of our own made
//! on first start (kept under `keys/`), whose fingerprint a client pins.

use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// PEM files the server presents, and the CA a client should pin.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert_chain: PathBuf,
    pub key: PathBuf,
    /// The CA certificate clients pin (our own CA, or the configured one).
    pub ca: PathBuf,
}

/// Writes a file only its owner can read, atomically.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Makes (once) and returns our own CA and server certificate under `keys_dir`. The
/// server certificate names localhost, the loopback addresses, this host's name and any
/// extra names given.
pub fn ensure_self_signed(keys_dir: &Path, extra_names: &[String]) -> Result<TlsFiles, String> {
    let files = TlsFiles {
        cert_chain: keys_dir.join("server.pem"),
        key: keys_dir.join("server.key"),
        ca: keys_dir.join("ca.pem"),
    };
    if files.cert_chain.exists() && files.key.exists() && files.ca.exists() {
        return Ok(files);
    }
    let err = |e: rcgen::Error| format!("cannot make the server's certificate: {e}");
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(
        DnType::CommonName,
        format!("RepairOps Backup CA ({})", repairops_vault::hostname()),
    );
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    ca_params.not_after = rcgen::date_time_ymd(2045, 1, 1);
    let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;

    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let host = repairops_vault::hostname();
    if host != "unknown-host" {
        names.push(host);
    }
    names.extend(extra_names.iter().cloned());
    let server_key = KeyPair::generate().map_err(err)?;
    let mut params = CertificateParams::new(names).map_err(err)?;
    params.distinguished_name.push(DnType::CommonName, "repairops-server");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2035, 1, 1);
    let issuer = Issuer::new(ca_params, &ca_key);
    let server_cert = params.signed_by(&server_key, &issuer).map_err(err)?;

    let io = |e: std::io::Error| {
        format!(
            "cannot write the server's certificate under {}: {e}",
            keys_dir.display()
        )
    };
    write_private(&keys_dir.join("ca.key"), ca_key.serialize_pem().as_bytes()).map_err(io)?;
    write_private(&files.ca, ca_cert.pem().as_bytes()).map_err(io)?;
    write_private(&files.key, server_key.serialize_pem().as_bytes()).map_err(io)?;
    let chain = format!("{}{}", server_cert.pem(), ca_cert.pem());
    write_private(&files.cert_chain, chain.as_bytes()).map_err(io)?;
    Ok(files)
}

/// SHA-256 of the first certificate in a PEM file, as `AB:CD:…`.
pub fn fingerprint(pem_path: &Path) -> Result<String, String> {
    let der =
        CertificateDer::from_pem_file(pem_path).map_err(|e| format!("cannot read {}: {e}", pem_path.display()))?;
    Ok(fingerprint_der(&der))
}

pub fn fingerprint_der(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}
