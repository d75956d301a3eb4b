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
    /// The token is in the credential store, so the next start opens signed in. False
    /// when this computer has none the app can use (a bare Linux desktop with no Secret
    /// Service): the token then lives in memory only, for this run.
    #[serde(default = "remembered_by_default")]
    pub remembered: bool,
}

/// `session.json` is only written for a remembered session (and was before the field).
fn remembered_by_default() -> bool {
    true
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

/// The credential store cannot be used at all (none running, or it refuses access), as
/// opposed to a problem with one entry.
fn unavailable(e: &keyring::Error) -> bool {
    matches!(
        e,
        keyring::Error::PlatformFailure(_) | keyring::Error::NoStorageAccess(_)
    )
}

/// Keeps the token in the OS credential store: `Ok(true)`. `Ok(false)` when this
/// computer has no store the app can use; the caller keeps the token in memory only.
pub fn store_token(server: &str, email: &str, token: &str) -> Result<bool, UiError> {
    let stored = keyring::Entry::new(KEYRING_SERVICE, &format!("{email} @ {server}"))
        .and_then(|entry| entry.set_password(token));
    match stored {
        Ok(()) => Ok(true),
        Err(e) if unavailable(&e) => {
            tracing::warn!(error = %e, "no usable password store: the token is kept for this run only");
            Ok(false)
        }
        Err(e) => Err(keyring_error(e)),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs in a child process of the test binary whose session bus leads nowhere, so
    /// no other test's environment changes (and Linux only: elsewhere the store is the
    /// system's own).
    #[cfg(target_os = "linux")]
    #[test]
    fn with_no_password_store_the_token_is_kept_for_this_run_only() {
        const NAME: &str = "session::tests::with_no_password_store_the_token_is_kept_for_this_run_only";
        if std::env::var_os("REPAIROPS_TEST_NO_BUS").is_none() {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
                .env("REPAIROPS_TEST_NO_BUS", "1")
                .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
                .output()
                .unwrap();
            let told = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{told}{}", String::from_utf8_lossy(&out.stderr));
            assert!(told.contains("1 passed"), "the test did not run in the child: {told}");
            return;
        }
        let remembered = store_token("https://shop.test", "owner@shop.test", "token").unwrap();
        assert!(!remembered, "with no store the token cannot be remembered");
        let e = load_token("https://shop.test", "owner@shop.test").unwrap_err();
        assert!(e.message.contains("password store is not available"), "{}", e.message);
    }

    #[test]
    fn an_older_session_file_reads_as_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let older = serde_json::json!({
            "server": "https://shop.test",
            "ca_sha256": "AB:CD",
            "email": "owner@shop.test",
            "user": {"id": 1, "email": "owner@shop.test", "name": "Owner", "role": "owner"},
            "account": {"slug": "demo", "name": "Demo", "plan": "pro", "timezone": "UTC",
                        "admin_email": "owner@shop.test", "mode": "normal"},
        });
        std::fs::write(dir.path().join("session.json"), older.to_string()).unwrap();
        let info = SessionFile::new(dir.path().join("session.json"))
            .load()
            .expect("it reads");
        assert!(info.remembered);
    }
}
