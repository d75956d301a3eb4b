//! Errors of the vault.
//!
//! Policy: every failure a caller can meet is one [`VaultError`] variant whose message
//! says what happened *and* what a person can do about it. Variants carry the object
//! they concern (`data/ab/ab12…`, `snapshots/…`) so an operator can find it. Storage
//! errors say whether retrying can help ([`VaultError::is_retryable`]). The library never
//! panics on repository content or caller input: a damaged or hostile repository is a
//! [`VaultError::Corrupt`], never an index out of bounds.

use std::path::PathBuf;

/// Everything that can go wrong in a vault operation.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// No key object of the repository opens with the key or passphrase given.
    #[error(
        "wrong key or passphrase: none of the repository's {keys} key(s) opens with it; check the key file or passphrase you were given for this repository"
    )]
    WrongKey { keys: usize },

    /// The location holds no repository (no `config` object).
    #[error("no repository at {location}: run `repairops-vault init` there first, or check the URL")]
    NotARepository { location: String },

    /// `init` on a location that already holds a repository.
    #[error("a repository already exists at {location}; refusing to overwrite it")]
    AlreadyInitialized { location: String },

    /// A stored object failed to decrypt, decode or verify.
    #[error("damaged object {object}: {detail}")]
    Corrupt { object: String, detail: String },

    /// The storage backend failed.
    #[error("storage error at {location} while trying to {op} {path}: {message}")]
    Storage {
        location: String,
        op: &'static str,
        path: String,
        message: String,
        retryable: bool,
        not_found: bool,
    },

    /// Another process holds a lock that conflicts with this operation.
    #[error(
        "repository is locked by {holder} since {since}; wait for it to finish (a lock left by a crashed process expires after 30 minutes)"
    )]
    Locked { holder: String, since: String },

    /// A snapshot, file or stream the caller named does not exist.
    #[error("{what} not found: {name}")]
    NotFound { what: &'static str, name: String },

    /// Caller input that cannot be acted on (bad URL, bad tag, bad path, ...).
    #[error("{0}")]
    InvalidInput(String),

    /// A local file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// `check` found damage; each problem names its object.
    #[error("the repository has {} problem(s): {}", problems.len(), problems.join("; "))]
    CheckFailed { problems: Vec<String> },
}

impl VaultError {
    /// Whether the same call may succeed later (network blips, throttling).
    pub fn is_retryable(&self) -> bool {
        matches!(self, VaultError::Storage { retryable: true, .. })
    }

    /// Whether this is a storage "object not found".
    pub fn is_not_found(&self) -> bool {
        matches!(self, VaultError::Storage { not_found: true, .. })
    }

    pub(crate) fn corrupt(object: impl Into<String>, detail: impl Into<String>) -> Self {
        VaultError::Corrupt {
            object: object.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        VaultError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Result alias used across the crate.
pub type Result<T, E = VaultError> = std::result::Result<T, E>;
