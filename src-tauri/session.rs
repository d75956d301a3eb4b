//! Who is signed in to which server. The token lives only in the OS credential store
//! (Keychain, Windows Credential Manager, the Secret Service on Linux); `session.json`
//! beside it names the server, the person and their role, and holds no secret.

use std::path::PathBuf;

use repairops_api::{Account, SignedInUser};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::{ErrorKind, UiError};

/// The credential store's service name for this app's tokens.
pub const KEYRING_SERVICE: &str = "com.repairops.backup.desktop";

/// The signed-in session as the UI sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct SessionInfo {
    pub server: String,
    /// The CA fingerprint this app trusts for the server.
    pub ca_sha256: String,
    pub email: String,
    pub user: SignedInUser,
    pub account: Account,
}

/// The credential-store entry of one person on one server.
fn entry(server: &str, email: &str) -> Result<keyring::Entry, UiError> {
    keyring::Entry::new(KEYRING_SERVICE, &format!("{email} @ {server}")).map_err(keyring_error)
}

fn keyring_error(e: keyring::Error) -> UiError {
    UiError::new(
        ErrorKind::Failed,
        format!(
            "The system's password store is not available ({e}). On Linux, a Secret Service such as GNOME Keyring or KWallet must be running and unlocked."
        ),
    )
}

/// Keeps the token in the OS credential store.
pub fn store_token(server: &str, email: &str, token: &str) -> Result<(), UiError> {
    entry(server, email)?.set_password(token).map_err(keyring_error)
}

/// The stored token, or `None` when there is none (signed out, or another computer).
pub fn load_token(server: &str, email: &str) -> Result<Option<String>, UiError> {
    match entry(server, email)?.get_password() {
        Ok(t) => Ok(Some(t)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(keyring_error(e)),
    }
}

/// Removes the stored token.
pub fn forget_token(server: &str, email: &str) -> Result<(), UiError> {
    match entry(server, email)?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(keyring_error(e)),
    }
}

/// `session.json`: the last session, without its token.
#[derive(Debug, Clone)]
pub struct SessionFile {
    path: PathBuf,
}

impl SessionFile {
    pub fn new(path: PathBuf) -> SessionFile {
        SessionFile { path }
    }

    pub fn load(&self) -> Option<SessionInfo> {
        std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    }

    pub fn save(&self, s: &SessionInfo) -> Result<(), UiError> {
        let bytes = serde_json::to_vec_pretty(s).map_err(|e| UiError::failed(e.to_string()))?;
        crate::files::write_atomically(&self.path, &bytes)
    }

    pub fn clear(&self) -> Result<(), UiError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
