//! The app's state: where it keeps its files, the signed-in client, and the last known
//! status (so the app still says something useful offline).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use repairops_api::{Account, BackupStatus, Client, ClientError, Job, StorageLocation, Trust};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::{ErrorKind, UiError};
use crate::files::SavedList;
use crate::session::{SessionFile, SessionInfo};
use crate::trust::Pins;

/// What the dashboard and the tray show.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct Overview {
    pub online: bool,
    /// Why the server could not be reached, as a sentence.
    pub offline_reason: Option<String>,
    /// When this was fetched from the server (RFC 3339).
    pub as_of: Option<String>,
    pub account: Option<Account>,
    /// None when the role may not see backups.
    pub status: Option<BackupStatus>,
    pub storage: Vec<StorageLocation>,
    pub running: Vec<Job>,
}

/// Choices kept on this computer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Prefs {
    pub start_at_login: bool,
    /// Refresh the disaster kit daily while the app runs and the kit's drive is present.
    pub kit_daily: bool,
    /// Where the kit was last saved.
    pub kit_folder: Option<String>,
}

/// Everything the commands share.
pub struct Desktop {
    dir: PathBuf,
    pub pins: Pins,
    pub saved: SavedList,
    pub session_file: SessionFile,
    signed_in: Mutex<Option<(SessionInfo, Client)>>,
    /// Bumped at every sign-in and sign-out, so the watcher follows the new session.
    changes: tokio::sync::watch::Sender<u64>,
    /// Held while the app signs in by itself at start (`--demo`).
    pub startup: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Desktop {
    /// State kept in `dir` (the platform's app-data folder).
    pub fn new(dir: PathBuf) -> Desktop {
        Desktop {
            pins: Pins::new(dir.join("pins.json")),
            saved: SavedList::new(dir.join("saved.json")),
            session_file: SessionFile::new(dir.join("session.json")),
            signed_in: Mutex::new(None),
            changes: tokio::sync::watch::Sender::new(0),
            startup: Default::default(),
            dir,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The signed-in client, or a "sign in" error.
    pub fn client(&self) -> Result<Client, UiError> {
        self.current().map(|(_, c)| c).ok_or_else(UiError::signed_out)
    }

    pub fn current(&self) -> Option<(SessionInfo, Client)> {
        self.signed_in.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_current(&self, value: Option<(SessionInfo, Client)>) {
        *self.signed_in.lock().unwrap_or_else(|p| p.into_inner()) = value;
        self.changes.send_modify(|n| *n += 1);
    }

    /// Tells of every sign-in and sign-out.
    pub fn session_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Restores the last session from disk and the credential store, without contacting
    /// the server.
    pub fn resume(&self) -> Result<Option<SessionInfo>, UiError> {
        if let Some((s, _)) = self.current() {
            return Ok(Some(s));
        }
        let Some(info) = self.session_file.load() else {
            return Ok(None);
        };
        let Some(token) = crate::session::load_token(&info.server, &info.email)? else {
            return Ok(None);
        };
        let client = self.connect(&info.server)?.with_token(token);
        self.set_current(Some((info.clone(), client)));
        Ok(Some(info))
    }

    /// A client for `server` that trusts only its pinned CA.
    pub fn connect(&self, server: &str) -> Result<Client, UiError> {
        let pin = self.pins.get(server).ok_or_else(|| {
            UiError::invalid("This computer does not trust that server yet. Check its certificate fingerprint first.")
        })?;
        Ok(Client::new(server, Trust::PinnedCa(pin.pem.into_bytes()))?)
    }

    fn overview_path(&self) -> PathBuf {
        self.dir.join("overview.json")
    }

    /// The last overview fetched, marked offline.
    pub fn last_known(&self, reason: String) -> Overview {
        let mut o: Overview = std::fs::read(self.overview_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        o.online = false;
        o.offline_reason = Some(reason);
        o.running.clear();
        o
    }

    /// Fetches the overview; offline, answers the last known one.
    pub async fn overview(&self) -> Result<Overview, UiError> {
        let client = self.client()?;
        let (account, status, storage, running) = tokio::join!(
            client.account(),
            client.backup_status(),
            client.storage(),
            client.running_jobs()
        );
        let account = match account {
            Ok(a) => a,
            Err(e @ ClientError::Transport(_)) => return Ok(self.last_known(UiError::from(e).message)),
            Err(e) => return Err(e.into()),
        };
        let o = Overview {
            online: true,
            offline_reason: None,
            as_of: Some(chrono::Utc::now().to_rfc3339()),
            account: Some(account),
            status: allowed(status)?,
            storage: allowed(storage)?.unwrap_or_default(),
            running: allowed(running)?.unwrap_or_default(),
        };
        if let Ok(bytes) = serde_json::to_vec(&o) {
            let _ = crate::files::write_atomically(&self.overview_path(), &bytes);
        }
        Ok(o)
    }

    pub fn prefs(&self) -> Prefs {
        std::fs::read(self.dir.join("prefs.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn set_prefs(&self, prefs: &Prefs) -> Result<(), UiError> {
        let bytes = serde_json::to_vec_pretty(prefs).map_err(|e| UiError::failed(e.to_string()))?;
        crate::files::write_atomically(&self.dir.join("prefs.json"), &bytes)
    }

    /// Signs out locally: forgets the session, then the stored token, whatever the
    /// server says. The session goes first, so a password store that cannot be reached
    /// never leaves the app signed in; the error then says what stayed behind.
    pub fn forget_session(&self) -> Result<(), UiError> {
        let stored = match self.current() {
            // A token kept in memory only was never stored.
            Some((info, _)) => Some(info).filter(|i| i.remembered),
            None => self.session_file.load(),
        };
        self.set_current(None);
        let cleared = self.session_file.clear();
        if let Some(info) = stored {
            crate::session::forget_token(&info.server, &info.email).map_err(|e| {
                UiError::new(
                    e.kind,
                    format!(
                        "You are signed out, but the saved sign-in could not be removed. {}",
                        e.message
                    ),
                )
            })?;
        }
        cleared
    }
}

/// A role that may not see backups gets the account alone: a 403 is "nothing to show".
fn allowed<T>(r: Result<T, ClientError>) -> Result<Option<T>, UiError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.status() == Some(403) => Ok(None),
        Err(e) => Err(UiError::from(e)),
    }
}

/// The health the tray icon shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Running,
    Warning,
    Failed,
    Offline,
}

impl Health {
    pub fn name(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Running => "running",
            Health::Warning => "warning",
            Health::Failed => "failed",
            Health::Offline => "offline",
        }
    }
}

/// The overall health and a tooltip such as "Last backup 4 minutes ago".
pub fn health(o: &Overview, now: chrono::DateTime<chrono::Utc>) -> (Health, String) {
    if !o.online {
        return (
            Health::Offline,
            "RepairOps Backup: offline (server not reachable)".into(),
        );
    }
    let Some(status) = &o.status else {
        return (Health::Healthy, "RepairOps Backup: signed in".into());
    };
    let last = status
        .last
        .as_ref()
        .and_then(|b| b.finished_at)
        .map(|t| format!("last backup {}", ago(now - t)))
        .unwrap_or_else(|| "no backup yet".into());
    let newest_failed = status
        .history
        .first()
        .is_some_and(|b| b.state == repairops_api::JobState::Failed);
    let health = if newest_failed || !status.errors.is_empty() || o.storage.iter().any(|l| !l.reachable) {
        Health::Failed
    } else if o.running.iter().any(|j| j.kind == "backup" || j.kind == "restore") {
        Health::Running
    } else if !status.warnings.is_empty()
        || status
            .last
            .as_ref()
            .and_then(|b| b.finished_at)
            .is_none_or(|t| now - t > chrono::Duration::hours(26))
    {
        Health::Warning
    } else {
        Health::Healthy
    };
    let word = match health {
        Health::Failed => "needs attention",
        Health::Running => "working",
        Health::Warning => "warning",
        _ => "healthy",
    };
    (health, format!("RepairOps Backup: {word}, {last}"))
}

/// "4 minutes ago".
pub fn ago(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    let (n, unit) = match s {
        0..60 => return "just now".into(),
        60..3600 => (s / 60, "minute"),
        3600..86400 => (s / 3600, "hour"),
        _ => (s / 86400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// Whether an error means "offline" (for the tray and the banner).
pub fn is_offline(e: &UiError) -> bool {
    e.kind == ErrorKind::Offline
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};

    #[test]
    fn ages_read_like_a_person_wrote_them() {
        assert_eq!(ago(Duration::seconds(5)), "just now");
        assert_eq!(ago(Duration::seconds(4 * 60 + 3)), "4 minutes ago");
        assert_eq!(ago(Duration::hours(1)), "1 hour ago");
        assert_eq!(ago(Duration::days(3)), "3 days ago");
    }

    #[test]
    fn offline_and_no_backup_yet_are_not_healthy() {
        let o = Overview::default();
        assert_eq!(health(&o, Utc::now()).0, Health::Offline);
        let o = Overview {
            online: true,
            status: Some(BackupStatus {
                last: None,
                next: repairops_api::NextBackup {
                    shop_time: "2026-12-01T02:00:00-06:00".into(),
                    utc: Utc::now(),
                    timezone: "America/Chicago".into(),
                },
                history: vec![],
                errors: vec![],
                warnings: vec![],
                last_drill: None,
            }),
            ..Overview::default()
        };
        let (h, tip) = health(&o, Utc::now());
        assert_eq!(h, Health::Warning);
        assert!(tip.contains("no backup yet"), "{tip}");
    }
}
