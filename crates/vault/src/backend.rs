//! Storage backends.
//!
//! The repository sees storage as a flat namespace of immutable objects addressed by
//! `/`-separated paths (`config`, `keys/<id>`, `data/<xx>/<id>`, ...). [`Backend`] is
//! that contract; [`OpendalBackend`] implements it for a local folder and any
//! S3-compatible store through OpenDAL, chosen by a [`Location`] URL.
//!
//! Retry contract: an implementation retries transient failures itself (OpenDAL's retry
//! layer); an error it returns is final for this call. A write either stores the whole
//! object under its name or leaves no object there (local writes go to a temporary file
//! that is renamed; S3 PUTs are atomic), so a crash never leaves half an object.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use opendal::{ErrorKind, blocking};

use crate::error::{Result, VaultError};

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Full path from the repository root, e.g. `data/ab/ab12…`.
    pub path: String,
    pub size: u64,
}

/// Object storage as the repository uses it. Implementations must be safe to call from
/// several threads at once.
pub trait Backend: Send + Sync {
    /// Where this is, for messages (`/srv/repo`, `s3://bucket/prefix`).
    fn location(&self) -> String;
    /// The whole object.
    fn read(&self, path: &str) -> Result<Vec<u8>>;
    /// `len` bytes from `offset`; fewer only if the object is shorter.
    fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>>;
    /// Stores the whole object, replacing any object of that name.
    fn write(&self, path: &str, data: Vec<u8>) -> Result<()>;
    /// Every object whose path starts with `prefix` (a folder such as `data/`).
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>>;
    /// Removes an object; removing one that does not exist is not an error.
    fn delete(&self, path: &str) -> Result<()>;
    /// Size of an object, `None` if it does not exist.
    fn size(&self, path: &str) -> Result<Option<u64>>;
}

impl<B: Backend + ?Sized> Backend for Arc<B> {
    fn location(&self) -> String {
        (**self).location()
    }
    fn read(&self, path: &str) -> Result<Vec<u8>> {
        (**self).read(path)
    }
    fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        (**self).read_range(path, offset, len)
    }
    fn write(&self, path: &str, data: Vec<u8>) -> Result<()> {
        (**self).write(path, data)
    }
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        (**self).list(prefix)
    }
    fn delete(&self, path: &str) -> Result<()> {
        (**self).delete(path)
    }
    fn size(&self, path: &str) -> Result<Option<u64>> {
        (**self).size(path)
    }
}

/// Settings of an S3-compatible store. Missing fields come from the usual AWS
/// environment variables (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct S3Settings {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
}

impl S3Settings {
    /// Fills what is missing from the environment.
    pub fn with_env_defaults(mut self) -> S3Settings {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        self.endpoint = self
            .endpoint
            .or_else(|| env("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env("AWS_ENDPOINT_URL"));
        self.region = self
            .region
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"));
        self.access_key_id = self.access_key_id.or_else(|| env("AWS_ACCESS_KEY_ID"));
        self.secret_access_key = self.secret_access_key.or_else(|| env("AWS_SECRET_ACCESS_KEY"));
        self.session_token = self.session_token.or_else(|| env("AWS_SESSION_TOKEN"));
        self
    }
}

/// Where a repository lives, parsed from a URL: a local path (`/srv/repo`,
/// `file:///srv/repo`, `./repo`) or `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    S3 {
        bucket: String,
        prefix: String,
        settings: S3Settings,
    },
}

impl Location {
    /// Parses a repository URL. S3 settings come from `s3` or else the environment.
    pub fn parse(url: &str, s3: Option<S3Settings>) -> Result<Location> {
        let url = url.trim();
        if url.is_empty() {
            return Err(VaultError::InvalidInput("the repository URL is empty".into()));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let valid_bucket = (3..=63).contains(&bucket.len())
                && bucket
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
            if !valid_bucket {
                return Err(VaultError::InvalidInput(format!(
                    "{bucket:?} is not a valid S3 bucket name (3 to 63 lowercase letters, digits, '-' or '.'); expected s3://bucket/prefix"
                )));
            }
            let prefix = prefix.trim_matches('/');
            if prefix.split('/').any(|p| p == ".." || p == ".") {
                return Err(VaultError::InvalidInput(format!(
                    "the S3 prefix {prefix:?} may not contain '.' or '..'"
                )));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
                settings: s3.unwrap_or_default().with_env_defaults(),
            });
        }
        if let Some((scheme, _)) = url.split_once("://")
            && scheme != "file"
        {
            return Err(VaultError::InvalidInput(format!(
                "unsupported repository URL scheme {scheme:?}: use a local path or s3://bucket/prefix"
            )));
        }
        let path = url.strip_prefix("file://").unwrap_or(url);
        let path = std::path::absolute(path).map_err(|e| VaultError::io("resolve", path, e))?;
        Ok(Location::Local(path))
    }

    /// Opens a backend for this location (nothing is contacted yet). A local folder is
    /// created if missing, as `init` needs.
    pub fn open(&self) -> Result<OpendalBackend> {
        OpendalBackend::new(self)
    }

    /// Opens a backend for a repository that must already be there. A local folder
    /// without a repository's `config` is refused before anything is created in it: a
    /// mistyped path given to `snapshots` or `check` must not leave folders behind.
    pub fn open_existing(&self) -> Result<OpendalBackend> {
        if let Location::Local(path) = self
            && !path.join("config").is_file()
        {
            return Err(VaultError::NotARepository {
                location: self.to_string(),
            });
        }
        OpendalBackend::new(self)
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::S3 { bucket, prefix, .. } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Location::S3 { bucket, prefix, .. } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// Whether an endpoint URL points at this machine; only such endpoints may use plain
/// HTTP and path-style addressing (test servers).
fn is_loopback_endpoint(endpoint: &str) -> bool {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A [`Backend`] over OpenDAL: the local file system or S3.
pub struct OpendalBackend {
    op: blocking::Operator,
    location: String,
    /// The folder of a local repository (`None` for S3).
    local_root: Option<std::path::PathBuf>,
    /// Why this repository can only be read here (a read-only disk, another's folder).
    read_only: Option<String>,
    // The runtime OpenDAL's blocking calls run on; shut down without blocking on drop,
    // so a backend may be dropped anywhere, async code included.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for OpendalBackend {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Runs a blocking storage call. Called from inside an async runtime (a caller that
/// forgot `spawn_blocking`), it moves to a thread of its own instead of panicking.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| s.spawn(f).join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    } else {
        f()
    }
}

impl OpendalBackend {
    fn new(location: &Location) -> Result<OpendalBackend> {
        let display = location.to_string();
        let config_err = |e: opendal::Error| VaultError::InvalidInput(format!("cannot use {display}: {e}"));
        let mut read_only = None;
        let op = match location {
            Location::Local(path) => {
                let root = path.to_string_lossy().into_owned();
                let tmp = path.join(".tmp");
                // Writes go through `.tmp/` and a rename, so no reader sees half an
                // object. A repository on a read-only disk (a write-protected drive, a
                // file-system snapshot) or someone else's cannot have that folder made:
                // it is still read, and a write says why it cannot be.
                match std::fs::create_dir_all(&tmp) {
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied
                        ) && path.is_dir() =>
                    {
                        read_only = Some(format!("{} cannot be written here ({e})", path.display()));
                        opendal::Operator::new(opendal::services::Fs::default().root(&root)).map_err(config_err)?
                    }
                    _ => {
                        let builder = opendal::services::Fs::default()
                            .root(&root)
                            .atomic_write_dir(&tmp.to_string_lossy());
                        opendal::Operator::new(builder).map_err(config_err)?
                    }
                }
            }
            Location::S3 {
                bucket,
                prefix,
                settings,
            } => {
                opendal::install_default();
                let mut b = opendal::services::S3::default()
                    .bucket(bucket)
                    .root(&format!("/{prefix}"))
                    .disable_config_load()
                    .disable_ec2_metadata();
                match settings.endpoint.as_deref() {
                    Some(ep) if is_loopback_endpoint(ep) => b = b.endpoint(ep),
                    Some(ep) if ep.starts_with("https://") => b = b.endpoint(ep).enable_virtual_host_style(),
                    Some(ep) => {
                        return Err(VaultError::InvalidInput(format!(
                            "S3 endpoint {ep:?} must use https:// (plain HTTP is allowed only on loopback)"
                        )));
                    }
                    None => b = b.enable_virtual_host_style(),
                }
                b = b.region(settings.region.as_deref().unwrap_or("us-east-1"));
                match (&settings.access_key_id, &settings.secret_access_key) {
                    (Some(id), Some(secret)) => b = b.access_key_id(id).secret_access_key(secret),
                    _ => {
                        return Err(VaultError::InvalidInput(format!(
                            "no credentials for {display}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or give them in the config)"
                        )));
                    }
                }
                if let Some(token) = &settings.session_token {
                    b = b.session_token(token);
                }
                opendal::Operator::new(b).map_err(config_err)?.layer(
                    opendal::layers::RetryLayer::new()
                        .with_max_times(4)
                        .with_min_delay(std::time::Duration::from_millis(100))
                        .with_max_delay(std::time::Duration::from_secs(2)),
                )
            }
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("vault-io")
            .enable_all()
            .build()
            .map_err(|e| VaultError::io("start I/O threads for", display.clone(), e))?;
        let op = {
            let _guard = runtime.enter();
            blocking::Operator::new(op).map_err(config_err)?
        };
        Ok(OpendalBackend {
            op,
            location: display,
            local_root: match location {
                Location::Local(path) => Some(path.clone()),
                Location::S3 { .. } => None,
            },
            read_only,
            runtime: Some(runtime),
        })
    }

    /// Refuses a change to a repository that can only be read here.
    fn writable(&self, op: &'static str, path: &str) -> Result<()> {
        match &self.read_only {
            Some(why) => Err(VaultError::Storage {
                location: self.location.clone(),
                op,
                path: path.to_string(),
                retryable: false,
                not_found: false,
                message: format!("the repository can only be read: {why}"),
            }),
            None => Ok(()),
        }
    }

    fn err(&self, op: &'static str, path: &str, e: opendal::Error) -> VaultError {
        VaultError::Storage {
            location: self.location.clone(),
            op,
            path: path.to_string(),
            retryable: e.is_temporary(),
            not_found: e.kind() == ErrorKind::NotFound,
            message: storage_message(&e, self.local_root.is_none()),
        }
    }
}

/// A sentence for an OpenDAL error. Its display is a debugging dump (`NotFound
/// (permanent) at read, context: { service: fs, path: … } => entity not found, source:
/// …`); the operation and path are already in [`VaultError::Storage`], so what is kept is
/// the kind said plainly, then OpenDAL's own message and the system's cause.
fn storage_message(e: &opendal::Error, s3: bool) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("");
    // What follows " => " is the message, then ", source: " the underlying cause.
    let detail = first.split_once(" => ").map(|(_, rest)| rest).unwrap_or(first);
    let detail = match detail.split_once(", source: ") {
        Some((message, source)) if !source.is_empty() => format!("{message} ({source})"),
        _ => detail.to_string(),
    };
    let detail: String = detail.chars().take(300).collect();
    let kind = match e.kind() {
        ErrorKind::NotFound => "not found".to_string(),
        ErrorKind::PermissionDenied if s3 => "permission denied (check the credentials and bucket policy)".to_string(),
        ErrorKind::PermissionDenied => "permission denied (check the folder's owner and permissions)".to_string(),
        ErrorKind::RateLimited => "rate limited by the storage service".to_string(),
        ErrorKind::RangeNotSatisfied => "the object is shorter than the index says (truncated?)".to_string(),
        ErrorKind::IsADirectory => "a folder is where a file should be".to_string(),
        ErrorKind::NotADirectory => "a file is where a folder should be".to_string(),
        ErrorKind::AlreadyExists => "something is already there".to_string(),
        _ => String::new(),
    };
    if kind.is_empty() {
        detail
    } else {
        format!("{kind}: {detail}")
    }
}

impl Backend for OpendalBackend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn read(&self, path: &str) -> Result<Vec<u8>> {
        off_runtime(|| self.op.read(path).map(|b| b.to_vec())).map_err(|e| self.err("read", path, e))
    }

    fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let opts = opendal::options::ReadOptions {
            range: (offset..offset + len).into(),
            ..Default::default()
        };
        off_runtime(|| self.op.read_options(path, opts).map(|b| b.to_vec())).map_err(|e| self.err("read", path, e))
    }

    fn write(&self, path: &str, data: Vec<u8>) -> Result<()> {
        self.writable("write", path)?;
        off_runtime(|| self.op.write(path, data).map(|_| ())).map_err(|e| self.err("write", path, e))
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        // A folder that is not there lists as empty; a path there that is not a folder
        // (a file, a link to a drive not mounted) must not: prune would read "no
        // snapshots" and delete every pack.
        if let Some(root) = &self.local_root {
            let folder = root.join(prefix.trim_end_matches('/'));
            if let Ok(meta) = std::fs::symlink_metadata(&folder)
                && !folder.is_dir()
            {
                let what = if meta.file_type().is_symlink() {
                    "a link to a folder that is not there (a drive not mounted?)"
                } else {
                    "not a folder"
                };
                return Err(VaultError::Storage {
                    location: self.location.clone(),
                    op: "list",
                    path: prefix.to_string(),
                    retryable: false,
                    not_found: false,
                    message: format!("{} is {what}", folder.display()),
                });
            }
        }
        let opts = opendal::options::ListOptions {
            recursive: true,
            ..Default::default()
        };
        let entries = match off_runtime(|| self.op.list_options(prefix, opts)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.err("list", prefix, e)),
        };
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            if entry.metadata().is_dir() || entry.path().ends_with('/') {
                continue;
            }
            let path = entry.path().trim_start_matches('/').to_string();
            let size = entry.metadata().content_length();
            // Some stores omit sizes in listings; ask for the ones that are missing.
            let size = if size == 0 {
                self.size(&path)?.unwrap_or(0)
            } else {
                size
            };
            out.push(ObjectInfo { path, size });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn delete(&self, path: &str) -> Result<()> {
        self.writable("delete", path)?;
        match off_runtime(|| self.op.delete(path)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err("delete", path, e)),
        }
    }

    fn size(&self, path: &str) -> Result<Option<u64>> {
        match off_runtime(|| self.op.stat(path)) {
            Ok(m) => Ok(Some(m.content_length())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err("stat", path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn parses_locations() {
        assert!(
            matches!(Location::parse("/srv/repo", None).unwrap(), Location::Local(p) if p == Path::new("/srv/repo"))
        );
        assert!(
            matches!(Location::parse("file:///srv/r", None).unwrap(), Location::Local(p) if p == Path::new("/srv/r"))
        );
        match Location::parse("s3://shop-backups/acme/primary/", None).unwrap() {
            Location::S3 { bucket, prefix, .. } => {
                assert_eq!(bucket, "shop-backups");
                assert_eq!(prefix, "acme/primary");
            }
            other => panic!("{other:?}"),
        }
        assert!(Location::parse("s3://B", None).is_err());
        assert!(Location::parse("s3://bucket/../x", None).is_err());
        assert!(Location::parse("ftp://x/y", None).is_err());
        assert!(Location::parse("  ", None).is_err());
    }

    #[test]
    fn only_loopback_endpoints_count_as_loopback() {
        assert!(is_loopback_endpoint("http://127.0.0.1:9000"));
        assert!(is_loopback_endpoint("http://localhost:9000/"));
        assert!(is_loopback_endpoint("http://[::1]:9000"));
        assert!(!is_loopback_endpoint("http://10.0.0.5:9000"));
        assert!(!is_loopback_endpoint("https://s3.eu-west-1.amazonaws.com"));
        assert!(!is_loopback_endpoint("http://127.0.0.1.evil.example"));
    }
}
