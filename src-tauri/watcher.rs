//! Always watching: while the app runs (window open or not) it follows the server's
//! event stream, resuming after a dropped connection from the last event it saw, so
//! nothing is lost. Job progress goes to the UI; a failed, delayed or oversized backup,
//! a failed drill, a location down and a finished restore raise one system
//! notification each (never a success, never the same condition twice, even across a
//! restart of the app); the tray icon follows the overall health.

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use repairops_api::{Job, JobState, ServerEvent};
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Emitter, Manager};

use crate::error::ErrorKind;
use crate::state::{Desktop, Overview};

/// How often the last event id alone is written down. Events come as often as a
/// running job reports progress; a write for each would flush to the device each time,
/// while replaying a few seconds of events after a crash costs nothing (notices already
/// given are written down at once, and not given twice).
const SAVE_EVERY: Duration = Duration::from_secs(10);

/// What the watcher remembers across restarts (`watch.json`).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Memory {
    last_event_id: Option<u64>,
    /// Conditions already notified, oldest first.
    notified: VecDeque<String>,
    /// A condition was notified since the last save.
    #[serde(skip)]
    unsaved_notice: bool,
    #[serde(skip)]
    saved_at: Option<std::time::Instant>,
}

impl Memory {
    fn load(path: &Path) -> Memory {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save(&mut self, path: &Path) {
        if let Ok(bytes) = serde_json::to_vec(self) {
            let _ = crate::files::write_atomically(path, &bytes);
        }
        self.unsaved_notice = false;
        self.saved_at = Some(std::time::Instant::now());
    }

    /// Saves when a condition was notified since the last save, or [`SAVE_EVERY`] has
    /// passed since it; says whether it did.
    fn save_if_due(&mut self, path: &Path) -> bool {
        let due = self.unsaved_notice || self.saved_at.is_none_or(|t| t.elapsed() >= SAVE_EVERY);
        if due {
            self.save(path);
        }
        due
    }

    /// Records `key`; false when it was notified before.
    fn first_time(&mut self, key: &str) -> bool {
        if self.notified.iter().any(|k| k == key) {
            return false;
        }
        self.notified.push_back(key.to_string());
        self.unsaved_notice = true;
        while self.notified.len() > 2000 {
            self.notified.pop_front();
        }
        true
    }
}

/// A notification to raise for an event: (dedup key, title, body, screen to open).
pub fn alert_for(e: &ServerEvent) -> Option<(String, String, String, &'static str)> {
    let d = &e.data;
    let num = |k: &str| {
        d.get(k)
            .and_then(|v| v.as_i64())
            .map(|n| n.to_string())
            .unwrap_or_default()
    };
    let text = |k: &str| d.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    let account = text("account");
    Some(match e.kind.as_str() {
        "backup.failed" => (
            format!("{account}:backup.failed:{}", num("backup_id")),
            "Backup failed".into(),
            format!("Backup {} did not complete: {}", num("backup_id"), text("error")),
            "backups",
        ),
        "backup.delayed" => (
            format!("{account}:backup.delayed:{}", text("scheduled_for")),
            "Backup is late".into(),
            "Last night's backup has not completed more than two hours after it was due.".into(),
            "dashboard",
        ),
        "backup.large" => (
            format!("{account}:backup.large:{}", num("backup_id")),
            "Shop data is large".into(),
            format!(
                "The shop's data is {} — over 500 MB; backups take longer and may need a bigger plan.",
                crate::files::human_bytes(d.get("size_bytes").and_then(|v| v.as_u64()).unwrap_or(0))
            ),
            "dashboard",
        ),
        "drill.failed" => (
            format!("{account}:drill.failed:{}", num("drill_id")),
            "Restore drill failed".into(),
            format!(
                "Backup {} could not be restored cleanly: {}",
                num("backup_id"),
                text("error")
            ),
            "dashboard",
        ),
        "location.down" => (
            format!("{account}:location.down:{}:{}", num("backup_id"), text("location")),
            "Backup location down".into(),
            format!(
                "The {} backup location could not be written: {}",
                text("location"),
                text("error")
            ),
            "dashboard",
        ),
        "restore.finished" => {
            let ok = d.get("succeeded").and_then(|v| v.as_bool()).unwrap_or(false);
            (
                format!("{account}:restore.finished:{}", num("job_id")),
                if ok { "Restore finished" } else { "Restore failed" }.into(),
                if ok {
                    format!(
                        "The shop's data is back as of backup {}; the shop is writable again.",
                        num("backup_id")
                    )
                } else {
                    format!(
                        "The restore of backup {} failed and nothing was changed: {}",
                        num("backup_id"),
                        text("error")
                    )
                },
                "restore",
            )
        }
        _ => return None,
    })
}

/// Starts the watcher and the periodic status refresh.
pub fn spawn(app: AppHandle) {
    let watch_app = app.clone();
    tauri::async_runtime::spawn(async move { follow_events(watch_app).await });
    tauri::async_runtime::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            refresh(&app).await;
        }
    });
}

/// Fetches the overview, tells the UI and updates the tray.
pub async fn refresh(app: &AppHandle) -> Option<Overview> {
    let desktop = app.state::<Desktop>();
    let o = desktop.overview().await.ok()?;
    let _ = app.emit("overview", &o);
    let _ = app.emit(
        "connection",
        serde_json::json!({"online": o.online, "message": o.offline_reason}),
    );
    crate::tray::show(app, &o);
    Some(o)
}

async fn follow_events(app: AppHandle) {
    let desktop = app.state::<Desktop>();
    let memory_path = desktop.dir().join("watch.json");
    let mut memory = Memory::load(&memory_path);
    let mut changes = desktop.session_changes();
    let mut backoff = Duration::from_secs(1);
    loop {
        let Ok(client) = desktop.client() else {
            // Not signed in: wait for a sign-in.
            let _ = changes.changed().await;
            continue;
        };
        changes.borrow_and_update();
        let stream = match client.events(memory.last_event_id).await {
            Ok(s) => s,
            Err(e) => {
                let e = crate::error::UiError::from(e);
                if matches!(e.kind, ErrorKind::Forbidden | ErrorKind::SignedOut) {
                    // The server answered: it is online. This role may not watch the
                    // shop's events (or the session ended, which the overview shows):
                    // asked again only now and then, in case an owner grants it.
                    refresh(&app).await;
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(300)) => {}
                        _ = changes.changed() => {}
                    }
                    continue;
                }
                went_offline(&app, &e.message);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = changes.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        backoff = Duration::from_secs(1);
        refresh(&app).await;
        let mut stream = std::pin::pin!(stream);
        loop {
            // The server sends a keep-alive every 15 s: silence for longer means a dead
            // connection that TCP has not noticed yet.
            let next = tokio::select! {
                n = tokio::time::timeout(Duration::from_secs(45), stream.next()) => n,
                _ = changes.changed() => break,
            };
            let event = match next {
                Ok(Some(Ok(e))) => e,
                Ok(Some(Err(_))) | Ok(None) | Err(_) => {
                    went_offline(&app, "The connection to the server dropped; reconnecting.");
                    break;
                }
            };
            handle(&app, &mut memory, &event).await;
            if let Some(id) = event.id {
                memory.last_event_id = Some(id);
            }
            memory.save_if_due(&memory_path);
        }
        // Where the stream broke off, for the next start if the app stops now.
        memory.save(&memory_path);
    }
}

fn went_offline(app: &AppHandle, message: &str) {
    let desktop = app.state::<Desktop>();
    let o = desktop.last_known(message.to_string());
    let _ = app.emit("connection", serde_json::json!({"online": false, "message": message}));
    crate::tray::show(app, &o);
}

/// A notification for a job that failed and raises no event of its own (backups,
/// restores and restore tests do: `alert_for`): an export, a sandbox, a record put back
/// from a backup, a key rotation or recovery key, a backup deletion. Whoever started it
/// may have left the window for the tray by the time it fails.
pub fn alert_for_job(account: &str, job: &Job) -> Option<(String, String, String, &'static str)> {
    if job.state != JobState::Failed {
        return None;
    }
    let (title, screen) = match job.kind.as_str() {
        "export" => ("Export failed", "exports"),
        "sandbox" => ("Sandbox could not be opened", "sandboxes"),
        "record_restore" => ("Record not restored", "restore"),
        "key_rotation" => ("Key rotation failed", "settings"),
        "recovery_key" => ("Recovery key not made", "settings"),
        "backup_delete" => ("Backup not deleted everywhere", "backups"),
        _ => return None,
    };
    let error = job.error.as_deref().unwrap_or("no reason was given");
    Some((
        format!("{account}:job.failed:{}", job.id),
        title.into(),
        error.to_string(),
        screen,
    ))
}

async fn handle(app: &AppHandle, memory: &mut Memory, event: &ServerEvent) {
    if event.kind.starts_with("job.") {
        if let Some(job) = event
            .data
            .get("job")
            .and_then(|j| serde_json::from_value::<Job>(j.clone()).ok())
        {
            let _ = app.emit("job", &job);
            let account = event.data.get("account").and_then(|a| a.as_str()).unwrap_or("");
            if event.kind == "job.finished"
                && let Some((key, title, body, screen)) = alert_for_job(account, &job)
                && memory.first_time(&key)
            {
                crate::notifications::raise(app, &title, &body, screen);
            }
        }
        if event.kind == "job.finished" {
            refresh(app).await;
        }
        return;
    }
    if let Some((key, title, body, screen)) = alert_for(event)
        && memory.first_time(&key)
    {
        crate::notifications::raise(app, &title, &body, screen);
    }
    refresh(app).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, data: serde_json::Value) -> ServerEvent {
        ServerEvent {
            id: Some(1),
            kind: kind.into(),
            data,
        }
    }

    #[test]
    fn a_failed_export_or_sandbox_is_told_and_a_finished_one_is_not() {
        let mut job: Job = serde_json::from_value(serde_json::json!({
            "id": 41, "kind": "export", "state": "failed", "phase": null, "bytes_done": 0,
            "bytes_total": 0, "result": null, "error": "the disk is full",
            "created_at": "2026-12-02T10:00:00Z", "finished_at": "2026-12-02T10:01:00Z"
        }))
        .unwrap();
        let (key, title, body, screen) = alert_for_job("demo", &job).unwrap();
        assert_eq!(
            (title.as_str(), body.as_str(), screen),
            ("Export failed", "the disk is full", "exports")
        );
        assert_eq!(key, "demo:job.failed:41");
        job.kind = "sandbox".into();
        assert_eq!(alert_for_job("demo", &job).unwrap().3, "sandboxes");
        // Backups raise backup.failed of their own: not told twice.
        job.kind = "backup".into();
        assert!(alert_for_job("demo", &job).is_none());
        job.kind = "export".into();
        job.state = JobState::Succeeded;
        assert!(alert_for_job("demo", &job).is_none());
    }

    #[test]
    fn failures_are_told_once_and_successes_never() {
        let failed = event(
            "backup.failed",
            serde_json::json!({"account": "demo", "backup_id": 7, "error": "disk full"}),
        );
        let (key, title, body, screen) = alert_for(&failed).unwrap();
        assert_eq!((title.as_str(), screen), ("Backup failed", "backups"));
        assert!(body.contains("disk full"), "{body}");
        let mut m = Memory::default();
        assert!(m.first_time(&key));
        assert!(!m.first_time(&key), "the same condition twice");
        let progress = event("job.finished", serde_json::json!({"job": {}}));
        assert!(alert_for(&progress).is_none());
    }

    #[test]
    fn a_notice_is_written_down_at_once_and_the_last_event_only_now_and_then() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("watch.json");
        let mut m = Memory::default();
        assert!(m.save_if_due(&path), "never saved");
        m.last_event_id = Some(5);
        assert!(!m.save_if_due(&path), "a progress event alone waits");
        assert_eq!(Memory::load(&path).last_event_id, None);
        m.first_time("demo:backup.failed:7");
        assert!(m.save_if_due(&path), "a notice given is written down at once");
        let again = Memory::load(&path);
        assert_eq!(again.last_event_id, Some(5));
        assert_eq!(again.notified, ["demo:backup.failed:7"]);
        m.last_event_id = Some(9);
        m.saved_at = std::time::Instant::now().checked_sub(SAVE_EVERY);
        assert!(m.save_if_due(&path), "and the last event once SAVE_EVERY has passed");
        assert_eq!(Memory::load(&path).last_event_id, Some(9));
    }

    #[test]
    fn memory_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("watch.json");
        let mut m = Memory::default();
        m.first_time("demo:backup.failed:7");
        m.last_event_id = Some(42);
        m.save(&path);
        let mut again = Memory::load(&path);
        assert_eq!(again.last_event_id, Some(42));
        assert!(!again.first_time("demo:backup.failed:7"));
    }
}
