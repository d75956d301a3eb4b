//! Long work (backups, later restores and exports) as jobs, and the event stream.
//!
//! A job is a row in `server.db` (so `GET /api/v1/jobs?state=running` survives a restart
//! of the desktop app, and a crash leaves a record) plus live progress in memory. One job
//! of a kind per account runs at a time. Progress and outcomes are published as events
//! with increasing ids; the stream keeps the last thousand so a client that reconnects
//! with `Last-Event-ID` misses nothing.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::Utc;
use repairops_api::{Job, JobState};
use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::db::Db;
use crate::error::ApiError;

/// One published event.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: u64,
    /// The account it concerns (the stream shows each account only its own).
    pub account_id: i64,
    /// `job.progress`, `job.finished`, `backup.failed`, `backup.delayed`, `backup.large`,
    /// `drill.failed`, `restore.finished`, `location.down`.
    pub kind: String,
    pub data: Value,
}

/// The event stream: a broadcast channel plus a replay buffer.
pub struct Events {
    tx: broadcast::Sender<Event>,
    recent: Mutex<VecDeque<Event>>,
    next_id: AtomicU64,
}

const REPLAY: usize = 1000;

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(1024).0,
            recent: Mutex::new(VecDeque::with_capacity(REPLAY)),
            // Ids go on rising across restarts, so a resuming client never sees an old id reused.
            next_id: AtomicU64::new(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64 * 1000)
                    .unwrap_or(1),
            ),
        }
    }
}

impl Events {
    /// Publishes an event; `data` gets `account`, `at` and the ids the caller put in.
    pub fn publish(&self, account_id: i64, account_slug: &str, kind: &str, mut data: Value) {
        if let Some(obj) = data.as_object_mut() {
            obj.insert("account".into(), json!(account_slug));
            obj.insert("at".into(), json!(Utc::now().to_rfc3339()));
        }
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let event = Event {
            id: self.next_id.fetch_add(1, Ordering::SeqCst),
            account_id,
            kind: kind.to_string(),
            data,
        };
        if recent.len() == REPLAY {
            recent.pop_front();
        }
        recent.push_back(event.clone());
        let _ = self.tx.send(event);
    }

    /// Events after `last_id` for an account, and a receiver for the ones to come.
    pub fn subscribe(&self, account_id: i64, last_id: Option<u64>) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let rx = self.tx.subscribe();
        let missed = match last_id {
            Some(last) => recent
                .iter()
                .filter(|e| e.id > last && e.account_id == account_id)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        (missed, rx)
    }
}

/// Live state of a running job.
struct Live {
    job: Job,
    account_id: i64,
    account_slug: String,
    last_event: Instant,
}

/// Running and finished jobs.
pub struct Jobs {
    db: Db,
    events: Arc<Events>,
    live: Mutex<HashMap<i64, Live>>,
}

impl Jobs {
    pub fn new(db: Db, events: Arc<Events>) -> Jobs {
        // Jobs a previous process left running cannot still be running.
        db.with_writer(|c| {
            let now = Utc::now().to_rfc3339();
            let _ = c.execute(
                "UPDATE jobs SET state = 'failed', error = 'the server stopped while this ran', finished_at = ?1 WHERE state IN ('queued', 'running')",
                [&now],
            );
            let _ = c.execute(
                "UPDATE backups SET state = 'failed', error = 'the server stopped during this backup', finished_at = ?1 WHERE state = 'running'",
                [&now],
            );
        });
        Jobs {
            db,
            events,
            live: Mutex::new(HashMap::new()),
        }
    }

    pub fn events(&self) -> &Arc<Events> {
        &self.events
    }

    /// Starts a job, or answers 409 when a conflicting one runs for the account: one job
    /// of a kind at a time, and never two that change the account's repositories (a
    /// backup, a key rotation, deleting a backup, later restores) at once.
    pub fn start(self: &Arc<Self>, account_id: i64, account_slug: &str, kind: &str) -> Result<JobHandle, ApiError> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(other) = live.values().find(|l| {
            l.account_id == account_id
                && (l.job.kind == kind || (touches_repositories(kind) && touches_repositories(&l.job.kind)))
        }) {
            return Err(ApiError::conflict(format!(
                "A {} is already running for this account (job {}); wait for it to finish.",
                other.job.kind.replace('_', " "),
                other.job.id
            )));
        }
        let now = Utc::now();
        let id = self
            .db
            .with_writer(|c| {
                c.execute(
                    "INSERT INTO jobs (account_id, kind, state, bytes_done, bytes_total, created_at) VALUES (?1, ?2, 'running', 0, 0, ?3)",
                    params![account_id, kind, now.to_rfc3339()],
                )?;
                Ok::<_, rusqlite::Error>(c.last_insert_rowid())
            })
            .map_err(|e| ApiError::internal("start the job", e))?;
        let job = Job {
            id,
            kind: kind.to_string(),
            state: JobState::Running,
            phase: None,
            bytes_done: 0,
            bytes_total: 0,
            result: None,
            error: None,
            created_at: now,
            finished_at: None,
        };
        live.insert(
            id,
            Live {
                job,
                account_id,
                account_slug: account_slug.to_string(),
                last_event: Instant::now(),
            },
        );
        Ok(JobHandle {
            jobs: self.clone(),
            id,
            finished: false,
        })
    }

    /// A job of an account, live or finished.
    pub async fn get(&self, account_id: i64, id: i64) -> Result<Option<Job>, ApiError> {
        if let Some(l) = self.live.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
            return Ok((l.account_id == account_id).then(|| l.job.clone()));
        }
        self.db
            .read(move |c| {
                c.query_row(
                    "SELECT id, kind, state, phase, bytes_done, bytes_total, result, error, created_at, finished_at FROM jobs WHERE id = ?1 AND account_id = ?2",
                    params![id, account_id],
                    job_from_row,
                )
                .optional()
                .map_err(|e| ApiError::internal("read the job", e))
            })
            .await
    }

    /// Running jobs of an account.
    pub fn running(&self, account_id: i64) -> Vec<Job> {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let mut jobs: Vec<Job> = live
            .values()
            .filter(|l| l.account_id == account_id)
            .map(|l| l.job.clone())
            .collect();
        jobs.sort_by_key(|j| j.id);
        jobs
    }

    /// How many jobs of each kind run now, across accounts (for `/metrics`).
    pub fn running_by_kind(&self) -> std::collections::BTreeMap<String, usize> {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let mut counts = std::collections::BTreeMap::new();
        for l in live.values() {
            *counts.entry(l.job.kind.clone()).or_insert(0) += 1;
        }
        counts
    }

    fn update(&self, id: i64, f: impl FnOnce(&mut Job), publish: bool) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let Some(l) = live.get_mut(&id) else { return };
        f(&mut l.job);
        // Progress events at most five a second; phase changes always.
        if publish || l.last_event.elapsed().as_millis() >= 200 {
            l.last_event = Instant::now();
            let data = json!({"job": l.job});
            self.events.publish(l.account_id, &l.account_slug, "job.progress", data);
        }
    }

    fn finish(&self, id: i64, outcome: Result<Value, String>) -> Option<Job> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let mut l = live.remove(&id)?;
        drop(live);
        let now = Utc::now();
        match outcome {
            Ok(result) => {
                l.job.state = JobState::Succeeded;
                l.job.result = Some(result);
                l.job.phase = Some("done".into());
                // Each phase counts from zero (a backup's copy to the secondary after
                // its write to the primary): a finished job reads as all done, not as
                // wherever its last phase's counter stood.
                l.job.bytes_done = l.job.bytes_total;
            }
            Err(e) => {
                l.job.state = JobState::Failed;
                l.job.error = Some(e);
            }
        }
        l.job.finished_at = Some(now);
        let job = l.job.clone();
        let _ = self.db.with_writer(|c| {
            c.execute(
                "UPDATE jobs SET state = ?1, phase = ?2, bytes_done = ?3, bytes_total = ?4, result = ?5, error = ?6, finished_at = ?7 WHERE id = ?8",
                params![
                    job.state.as_str(),
                    job.phase,
                    job.bytes_done as i64,
                    job.bytes_total as i64,
                    job.result.as_ref().map(|r| r.to_string()),
                    job.error,
                    now.to_rfc3339(),
                    id
                ],
            )
        });
        self.events
            .publish(l.account_id, &l.account_slug, "job.finished", json!({"job": job}));
        Some(job)
    }
}

fn job_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
    let time = |s: Option<String>| {
        s.and_then(|s| chrono::DateTime::parse_from_rfc3339(&s).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    Ok(Job {
        id: r.get(0)?,
        kind: r.get(1)?,
        state: JobState::parse(&r.get::<_, String>(2)?).unwrap_or(JobState::Failed),
        phase: r.get(3)?,
        bytes_done: r.get::<_, i64>(4)? as u64,
        bytes_total: r.get::<_, i64>(5)? as u64,
        result: r
            .get::<_, Option<String>>(6)?
            .and_then(|s| serde_json::from_str(&s).ok()),
        error: r.get(7)?,
        created_at: time(r.get(8)?).unwrap_or_default(),
        finished_at: time(r.get(9)?),
    })
}

/// The running side of a job: reports progress (it is the vault's [`Progress`]) and
/// finishes it.
///
/// [`Progress`]: repairops_vault::Progress
pub struct JobHandle {
    jobs: Arc<Jobs>,
    pub id: i64,
    finished: bool,
}

/// Kinds of job that read or change an account's repositories.
fn touches_repositories(kind: &str) -> bool {
    matches!(
        kind,
        "backup"
            | "backup_delete"
            | "key_rotation"
            | "recovery_key"
            | "restore"
            | "record_restore"
            | "sandbox"
            | "drill"
            | "prune"
            | "copy"
    )
}

impl JobHandle {
    pub fn succeed(mut self, result: Value) -> Option<Job> {
        self.finished = true;
        self.jobs.finish(self.id, Ok(result))
    }

    pub fn fail(mut self, error: String) -> Option<Job> {
        self.finished = true;
        self.jobs.finish(self.id, Err(error))
    }

    pub fn snapshot(&self) -> Option<Job> {
        self.jobs
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&self.id)
            .map(|l| l.job.clone())
    }
}

/// A handle dropped without an outcome (an early error, a panic) fails its job, so no job
/// stays "running" and blocks the next one.
impl Drop for JobHandle {
    fn drop(&mut self) {
        if !self.finished {
            self.jobs.finish(
                self.id,
                Err("the job stopped unexpectedly; the server log has details".into()),
            );
        }
    }
}

impl repairops_vault::Progress for JobHandle {
    fn phase(&self, name: &str, total: Option<u64>) {
        self.jobs.update(
            self.id,
            |j| {
                j.phase = Some(name.to_string());
                j.bytes_done = 0;
                j.bytes_total = total.unwrap_or(0);
            },
            true,
        );
    }

    fn advance(&self, bytes: u64) {
        self.jobs.update(self.id, |j| j.bytes_done += bytes, false);
    }
}

/// Reports work done by a step (a backup, a vault restore) under one phase of the job
/// around it: the step's own phase names are replaced, its totals and progress kept, so
/// a restore job shows `safety_backup` and `fetching` as DESIGN names them.
pub struct Within<'a> {
    pub job: &'a JobHandle,
    pub phase: &'static str,
}

impl repairops_vault::Progress for Within<'_> {
    fn phase(&self, _name: &str, total: Option<u64>) {
        self.job.phase(self.phase, total);
    }

    fn advance(&self, bytes: u64) {
        self.job.advance(bytes);
    }
}

/// Runs a job's body, turning a panic (a bug) into the job's error, so the job's own
/// clean-up runs and the user reads what to do rather than a vanished job. `what` names
/// the job in the message ("export", "restore").
pub fn panic_as_error<T>(what: &str, body: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or_else(|_| {
        Err(format!(
            "the {what} stopped on an internal error; nothing was changed by it. Try again, and if it \
             happens again, send the server log to support"
        ))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use repairops_vault::Progress;

    use super::*;

    #[test]
    fn a_finished_job_reads_as_all_done_and_a_failed_one_where_it_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let jobs = Arc::new(Jobs::new(
            crate::control::open_for_test(dir.path()),
            Arc::new(Events::default()),
        ));
        let job = jobs.start(1, "demo", "backup").unwrap();
        job.phase("writing", Some(1000));
        job.advance(1000);
        job.phase("copying", Some(800));
        job.advance(10);
        let done = job.succeed(serde_json::json!({})).unwrap();
        assert_eq!((done.bytes_done, done.bytes_total), (800, 800));
        let job = jobs.start(1, "demo", "export").unwrap();
        job.phase("writing", Some(500));
        job.advance(120);
        let failed = job.fail("the disk is full".into()).unwrap();
        assert_eq!((failed.bytes_done, failed.bytes_total), (120, 500));
    }

    #[test]
    fn a_panic_in_a_job_body_becomes_its_error_and_results_pass_through() {
        assert_eq!(panic_as_error("export", || Ok::<_, String>(7)), Ok(7));
        assert_eq!(
            panic_as_error("export", || Err::<u8, _>("no space left on device".to_string())),
            Err("no space left on device".to_string())
        );
        let err = panic_as_error("restore", || -> Result<(), String> { panic!("index out of bounds") }).unwrap_err();
        assert!(err.starts_with("the restore stopped on an internal error"), "{err}");
        assert!(err.contains("send the server log to support"), "{err}");
        assert!(
            !err.contains("index out of bounds"),
            "the panic's text is for the log: {err}"
        );
    }
}
