//! Server configuration: a TOML file, then environment variables, then command-line
//! flags, each overriding the one before. Every setting has a default, so the server
//! runs with none of them (see `docs/server-config.sample.toml`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Settings of one server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Folder holding server.db, accounts/, repos/, exports/, sandboxes/ and keys/.
    pub data: PathBuf,
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Serve plain HTTP instead of TLS (allowed only on a loopback address).
    pub insecure_http: bool,
    pub tls: TlsConfig,
    /// Largest JSON body accepted, bytes.
    pub max_body_bytes: usize,
    /// Largest attachment accepted, bytes.
    pub max_attachment_bytes: usize,
    /// Portal submissions accepted per client address per minute.
    pub portal_per_minute: u32,
    pub backup: BackupConfig,
    /// Mail server for notices; without it notices go only to the event stream.
    pub smtp: Option<crate::mail::SmtpConfig>,
}

/// Where backups go. Each account gets `<location>/<slug>` in each.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// A folder (relative paths are under the data folder) or `s3://bucket/prefix`.
    pub primary: String,
    pub secondary: String,
    /// S3 settings; what is missing comes from the AWS_* environment variables.
    pub s3: S3Config,
    /// Run the 02:00 schedule (off only for tests and tools).
    pub schedule: bool,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            primary: "repos/primary".into(),
            secondary: "repos/secondary".into(),
            s3: S3Config::default(),
            schedule: true,
        }
    }
}

/// S3-compatible storage settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

/// Certificates to serve; without them the server makes its own CA on first start.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The CA clients should pin (defaults to the first certificate of `cert`).
    pub ca: Option<PathBuf>,
    /// Extra names for the self-made server certificate (e.g. the server's LAN name).
    #[serde(default)]
    pub names: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data: PathBuf::from("repairops-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            insecure_http: false,
            tls: TlsConfig::default(),
            max_body_bytes: 1024 * 1024,
            max_attachment_bytes: 50 * 1024 * 1024,
            portal_per_minute: 10,
            backup: BackupConfig::default(),
            smtp: None,
        }
    }
}

impl Config {
    /// Reads the file (if given), then applies `REPAIROPS_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Config, String> {
        let mut config = match file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
                toml::from_str(&text).map_err(|e| format!("config {} is not valid: {e}", path.display()))?
            }
            None => Config::default(),
        };
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let Some(v) = env("REPAIROPS_DATA") {
            config.data = PathBuf::from(v);
        }
        if let Some(v) = env("REPAIROPS_LISTEN") {
            config.listen = v
                .parse()
                .map_err(|_| format!("REPAIROPS_LISTEN={v:?} is not an address such as 127.0.0.1:8443"))?;
        }
        if let Some(v) = env("REPAIROPS_INSECURE_HTTP") {
            config.insecure_http = matches!(v.as_str(), "1" | "true" | "yes");
        }
        if let Some(v) = env("REPAIROPS_TLS_CERT") {
            config.tls.cert = Some(PathBuf::from(v));
        }
        if let Some(v) = env("REPAIROPS_TLS_KEY") {
            config.tls.key = Some(PathBuf::from(v));
        }
        if let Some(v) = env("REPAIROPS_BACKUP_PRIMARY") {
            config.backup.primary = v;
        }
        if let Some(v) = env("REPAIROPS_BACKUP_SECONDARY") {
            config.backup.secondary = v;
        }
        Ok(config)
    }

    /// Refuses combinations that would be unsafe or cannot work.
    pub fn validate(&self) -> Result<(), String> {
        if self.insecure_http && !self.listen.ip().is_loopback() {
            return Err(format!(
                "plain HTTP is allowed only on a loopback address, not {}; drop --insecure-http or listen on 127.0.0.1",
                self.listen
            ));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err("give both tls.cert and tls.key, or neither (the server then makes its own)".into());
        }
        Ok(())
    }

    pub fn keys_dir(&self) -> PathBuf {
        self.data.join("keys")
    }

    pub fn account_dir(&self, slug: &str) -> PathBuf {
        self.data.join("accounts").join(slug)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_with_unknown_keys_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "listen = \"127.0.0.1:9000\"\nlisten_port = 3\n").unwrap();
        assert!(Config::load(Some(&p)).unwrap_err().contains("listen_port"));
        std::fs::write(&p, "listen = \"127.0.0.1:9000\"\n[tls]\nnames = [\"shop.lan\"]\n").unwrap();
        let c = Config::load(Some(&p)).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.tls.names, vec!["shop.lan"]);
    }

    #[test]
    fn plain_http_only_on_loopback() {
        let mut c = Config {
            insecure_http: true,
            ..Config::default()
        };
        assert!(c.validate().is_ok());
        c.listen = "0.0.0.0:8080".parse().unwrap();
        assert!(c.validate().is_err());
    }
}
