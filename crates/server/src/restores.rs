//! Restore to production: a backup replaces the account's live data, safely.
//!
//! The account turns read-only (writes and portal submissions get 423), a safety backup
//! of the current data is taken (kind `safety`, kept 30 days, so a restore can itself be
//! undone), the backup is fetched from the primary repository or, when that fails, the
//! secondary, into `accounts/{slug}/.restore/{job}/new/`, checked (SQLite integrity,
//! schema brought up to date, row counts against the backup's summary), customers in
//! the deletion ledger are deleted again, and only then are the files swapped in, by
//! renames on the same disk, with every connection to the old file closed first.
//!
//! Crash safety: the swap is journalled by files in the staging folder. `old/` receives
//! the live files before `new/` is moved in; `COMMITTED` is written when both are in
//! place. At start-up, [`recover`] finishes or undoes what a crash interrupted: without
//! `COMMITTED`, whatever is in `old/` goes back; with it, the staging folder is removed.
//! Accounts left read-only by a crash are writable again.

use std::path::{Path as FsPath, PathBuf};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use repairops_api::{AccountMode, Backup, BackupKind, ErrorBody, Job};
use repairops_vault::Progress;
use serde_json::json;

use crate::app::AppState;
use crate::auth::{Auth, Permission};
use crate::control::{self, AccountRow};
use crate::error::{ApiError, Deferred};

/// `POST /api/v1/restores`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    pub backup_id: i64,
    /// Must equal the account's slug: the typed confirmation.
    pub confirm: String,
}

const LIVE_FILES: [&str; 2] = ["live.db", "attachments"];
/// SQLite's companions of `live.db`, moved with it.
const DB_COMPANIONS: [&str; 2] = ["live.db-wal", "live.db-shm"];

fn staging_root(account_dir: &FsPath) -> PathBuf {
    account_dir.join(".restore")
}

/// Fetches a backup's files into `target` from the primary repository, or the secondary
/// when the primary is unreachable, damaged or lacks it. Returns the location used.
///
/// With `reuse` (the live attachments folder), attachment files already there are
/// hard-linked instead of read from storage, each checked first against its name (its
/// SHA-256): attachments are content-addressed and never changed in place, so sharing
/// them is safe, and a damaged local copy is read from the backup instead.
pub fn fetch(
    config: &crate::config::Config,
    slug: &str,
    backup: &Backup,
    target: &FsPath,
    reuse: Option<&FsPath>,
    progress: &dyn Progress,
) -> Result<&'static str, String> {
    let result = from_either(config, slug, backup, |repo, index, snap| {
        let _ = std::fs::remove_dir_all(target);
        if let Some(live) = reuse {
            let nodes = repo.read_tree(&index, &snap).map_err(|e| e.to_string())?;
            link_verified(&nodes, live, target);
        }
        let already_there = |n: &repairops_vault::Node| {
            reuse.is_some()
                && n.path.starts_with("attachments/")
                && std::fs::metadata(target.join(&n.path)).is_ok_and(|m| m.len() == n.size)
        };
        repairops_vault::restore_except(&repo, &index, &snap, target, None, &already_there, progress)
            .map_err(|e| e.to_string())
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(target);
    }
    result.map(|(_, location)| location)
}

/// Runs `read` on a backup as stored in the primary repository, or in the secondary
/// when the primary is unreachable, damaged, lacks the backup or `read` fails there.
/// Returns what `read` returned and the location used.
pub fn from_either<T>(
    config: &crate::config::Config,
    slug: &str,
    backup: &Backup,
    mut read: impl FnMut(
        repairops_vault::Repository,
        repairops_vault::Index,
        repairops_vault::Snapshot,
    ) -> Result<T, String>,
) -> Result<(T, &'static str), String> {
    let locations = crate::backups::locations(config, slug)?;
    let mut errors = Vec::new();
    for (name, location) in [("primary", &locations.primary), ("secondary", &locations.secondary)] {
        let Some(snapshot) = backup
            .locations
            .iter()
            .find(|l| l.name == name && l.ok)
            .and_then(|l| l.snapshot.clone())
        else {
            errors.push(format!("{name}: this backup is not stored there"));
            continue;
        };
        let result = (|| {
            let repo = crate::backups::open_existing(location, &locations.key).map_err(|e| e.to_string())?;
            let index = repo.load_index().map_err(|e| e.to_string())?;
            let (_, snap) = repo.find_snapshot(&snapshot).map_err(|e| e.to_string())?;
            read(repo, index, snap)
        })();
        match result {
            Ok(v) => return Ok((v, name)),
            Err(e) => {
                tracing::warn!(location = name, error = %e, "a backup could not be read from this location");
                errors.push(format!("{name}: {e}"));
            }
        }
    }
    Err(format!(
        "the backup could not be read from either location ({})",
        errors.join("; ")
    ))
}

/// Hard-links into `target` the attachment files of `nodes` that `live` has with the
/// same size and whose content matches their SHA-256 name; two threads hash.
fn link_verified(nodes: &[repairops_vault::Node], live: &FsPath, target: &FsPath) {
    let wanted: Vec<&repairops_vault::Node> = nodes
        .iter()
        .filter(|n| n.kind == repairops_vault::NodeKind::File && n.path.starts_with("attachments/"))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(node) = wanted.get(i) else { break };
                    let Some(sha) = node.path.rsplit('/').next() else { continue };
                    let src = crate::attachments::content_path(live, sha);
                    let Ok(bytes) = std::fs::read(&src) else { continue };
                    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
                    if bytes.len() as u64 != node.size || hex::encode(digest.as_ref()) != sha {
                        tracing::warn!(file = %src.display(), "a live attachment does not match its name; reading it from the backup");
                        continue;
                    }
                    let dest = target.join(&node.path);
                    if let Some(dir) = dest.parent() {
                        let _ = std::fs::create_dir_all(dir);
                    }
                    if std::fs::hard_link(&src, &dest).is_err() {
                        let _ = std::fs::write(&dest, &bytes);
                    }
                }
            });
        }
    });
}

/// Checks a fetched database: SQLite's integrity check, the schema brought up to date,
/// and every table's row count equal to the backup's summary.
pub fn check(db: &FsPath, backup: &Backup) -> Result<(), String> {
    let live = crate::app::open_live(db).map_err(|e| format!("the backup's database does not open: {e}"))?;
    live.with_writer(|c| {
        let verdict: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(|e| format!("the integrity check could not run: {e}"))?;
        if verdict != "ok" {
            return Err(format!("the backup's database is damaged: {verdict}"));
        }
        if let Some(summary) = &backup.summary {
            for (table, expected) in &summary.rows {
                if !crate::live::TABLES.contains(&table.as_str()) {
                    continue;
                }
                let n: i64 = c
                    .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                    .map_err(|e| format!("cannot count {table}: {e}"))?;
                if n != *expected {
                    return Err(format!(
                        "the backup's {table} has {n} rows where its summary says {expected}"
                    ));
                }
            }
        }
        Ok(())
    })
}

/// Deletes again, in a restored database, the customers the deletion ledger lists (by
/// id and creation time, or by the keyed hash of their email: see `Ledger::erases`);
/// returns how many customers it removed.
pub fn reapply_deletions(
    db: &FsPath,
    attachments: &FsPath,
    ledger: &crate::erasure::Ledger,
    key: &[u8; 32],
) -> Result<u64, String> {
    if ledger.is_empty() {
        return Ok(0);
    }
    let mut conn = crate::db::open_connection(db).map_err(|e| e.to_string())?;
    let tx = conn.transaction().map_err(|e| e.to_string())?;
    crate::erasure::begin_listing(&tx).map_err(|e| e.to_string())?;
    {
        let mut stmt = tx
            .prepare("SELECT id, email, created_at FROM customers")
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(|e| e.to_string())?;
        for row in rows {
            let (id, email, born) = row.map_err(|e| e.to_string())?;
            if ledger.erases(key, id, &born, email.as_deref()) {
                crate::erasure::list_customer(&tx, id).map_err(|e| e.to_string())?;
            }
        }
    }
    let deletion = crate::erasure::delete_listed(&tx).map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| e.to_string())?;
    crate::erasure::remove_unused_files(&conn, attachments, &deletion.attachment_shas);
    crate::erasure::checkpoint_truncate(&conn);
    Ok(deletion.customer_ids.len() as u64)
}

/// Makes the restored database (brought up to date by [`check`]) count its ids on from
/// the highest the live database gave (`live::count_ids_on_from`).
fn count_ids_on(restored: &FsPath, live: &FsPath) -> Result<(), String> {
    let conn = crate::db::open_existing(restored).map_err(|e| format!("cannot open the backup's database: {e}"))?;
    let current = crate::db::open_existing(live).map_err(|e| format!("cannot read the live database: {e}"))?;
    crate::live::count_ids_on_from(&conn, &current).map_err(|e| format!("cannot carry the id counters over: {e}"))
}

/// Flushes a file to disk.
fn sync_file(path: &FsPath) -> Result<(), String> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("cannot write {} to disk: {e}", path.display()))
}

/// Moves `name` from `from` to `to` when it exists.
fn move_if_there(from: &FsPath, to: &FsPath, name: &str) -> std::io::Result<()> {
    match std::fs::rename(from.join(name), to.join(name)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Swaps the staged files in: live files to `old/`, staged ones in, then `COMMITTED`.
/// On an error part-way, what was moved goes back.
fn swap(account_dir: &FsPath, stage: &FsPath) -> Result<(), String> {
    let (new, old) = (stage.join("new"), stage.join("old"));
    std::fs::create_dir_all(&old).map_err(|e| e.to_string())?;
    // A panic half-way is undone here too, while no request can open the files.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> std::io::Result<()> {
        for name in LIVE_FILES.iter().chain(DB_COMPANIONS.iter()) {
            move_if_there(account_dir, &old, name)?;
            crate::faults::point(&format!("restore.swap.out.{name}"));
        }
        for name in LIVE_FILES.iter().chain(DB_COMPANIONS.iter()) {
            move_if_there(&new, account_dir, name)?;
            crate::faults::point(&format!("restore.swap.in.{name}"));
        }
        // The swap counts once this is on disk; a crash before it is undone at start.
        let marker = stage.join("COMMITTED");
        std::fs::write(&marker, b"")?;
        std::fs::File::open(stage)?.sync_all()?;
        std::fs::File::open(account_dir)?.sync_all()?;
        Ok(())
    }))
    .unwrap_or_else(|_| Err(std::io::Error::other("an internal error (the server log has details)")));
    result.map_err(|e| {
        if !undo(account_dir, stage) {
            return format!(
                "the files could not be swapped ({e}), nor all put back: the live files left are in {}; \
                 do not delete it, and restart the server to finish putting them back",
                stage.join("old").display()
            );
        }
        format!("the files could not be swapped: {e}")
    })
}

/// Puts back what `old/` holds (an interrupted swap, or an undo itself interrupted:
/// each file is looked at on its own). Returns false when a live file could not be put
/// back: then the staging folder, which still holds it, must be kept.
#[must_use]
fn undo(account_dir: &FsPath, stage: &FsPath) -> bool {
    let old = stage.join("old");
    let new = stage.join("new");
    // A swap that failed only in flushing its marker must not look committed while (or
    // after) it is undone: at start a committed folder's `old/` is deleted.
    let marker = stage.join("COMMITTED");
    if marker.exists() {
        let unmarked = std::fs::remove_file(&marker).and_then(|()| std::fs::File::open(stage)?.sync_all());
        if let Err(e) = unmarked {
            tracing::error!(folder = %stage.display(), error = %e, "cannot withdraw a restore's commit marker; the restored files stay");
            return false;
        }
    }
    let mut all_back = true;
    for name in LIVE_FILES.iter().chain(DB_COMPANIONS.iter()) {
        if std::fs::symlink_metadata(old.join(name)).is_err() {
            continue; // never moved out (or already back): the live one is in place
        }
        // Whatever stands in the live place now came from `new/`.
        let put_back = std::fs::create_dir_all(&new)
            .and_then(|()| move_if_there(account_dir, &new, name))
            .and_then(|()| move_if_there(&old, account_dir, name));
        if let Err(e) = put_back {
            tracing::error!(file = name, folder = %old.display(), error = %e, "could not put back a live file; it stays in that folder");
            all_back = false;
        }
    }
    all_back
}

/// Whether an uncommitted restore left live files in its `old/` folder (its undo could
/// not put them all back).
fn stranded(stage: &FsPath) -> bool {
    !stage.join("COMMITTED").exists()
        && LIVE_FILES
            .iter()
            .chain(DB_COMPANIONS.iter())
            .any(|name| std::fs::symlink_metadata(stage.join("old").join(name)).is_ok())
}

/// The folder holding an account's live files when a failed restore could not put them
/// back. Live data must not be opened then: an empty database would be made in its
/// place, and what was typed into it lost when the files go back.
pub fn stranded_files(account_dir: &FsPath) -> Option<PathBuf> {
    std::fs::read_dir(staging_root(account_dir))
        .ok()?
        .flatten()
        .map(|stage| stage.path())
        .find(|stage| stranded(stage))
        .map(|stage| stage.join("old"))
}

/// At start-up: finishes or undoes restores a crash interrupted, and makes accounts a
/// crash left read-only writable again.
pub fn recover(control: &crate::db::Db, data: &FsPath) {
    // Accounts whose live files a failed undo left aside stay read-only.
    let mut closed: Vec<String> = Vec::new();
    if let Ok(accounts) = std::fs::read_dir(data.join("accounts")) {
        for a in accounts.flatten() {
            // Record restores' copies of a backup's database, left by a crash.
            let _ = std::fs::remove_dir_all(crate::record_restore::record_staging_root(&a.path()));
            let root = staging_root(&a.path());
            let Ok(stages) = std::fs::read_dir(&root) else { continue };
            for stage in stages.flatten() {
                let stage = stage.path();
                if !stage.join("COMMITTED").exists() {
                    tracing::warn!(folder = %stage.display(), "undoing a restore the server stopped in");
                    if !undo(&a.path(), &stage) {
                        closed.push(a.file_name().to_string_lossy().into_owned());
                        continue; // kept, with the live files still in it
                    }
                }
                let _ = std::fs::remove_dir_all(&stage);
            }
            let _ = std::fs::remove_dir(&root);
        }
    }
    control.with_writer(|c| {
        let closed = serde_json::to_string(&closed).unwrap_or_else(|_| "[]".into());
        let _ = c.execute(
            "UPDATE accounts SET mode = 'normal' WHERE mode = 'restoring' AND slug NOT IN (SELECT value FROM json_each(?1))",
            [closed],
        );
    });
}

fn set_mode(app: &AppState, account_id: i64, mode: AccountMode) -> Result<(), String> {
    app.control
        .with_writer(|c| control::set_account_mode(c, account_id, mode))
        .map_err(|e| format!("cannot change the account's mode: {e}"))
}

/// The restore job's work (on a blocking thread); the account is already read-only.
fn run(
    app: &AppState,
    account: &AccountRow,
    backup: &Backup,
    by: &str,
    job: &crate::jobs::JobHandle,
) -> Result<serde_json::Value, String> {
    let slug = &account.account.slug;
    let account_dir = app.config.account_dir(slug);
    let stage = staging_root(&account_dir).join(format!("job-{}", job.id));
    // A panic (a bug) fails the restore like any error: the live files are put back and
    // the account is writable again now, not at the next start.
    let result = crate::jobs::panic_as_error("restore", || -> Result<serde_json::Value, String> {
        let _ = std::fs::remove_dir_all(&stage);
        std::fs::create_dir_all(&stage).map_err(|e| format!("cannot create {}: {e}", stage.display()))?;
        // 1. A safety backup of what is there now.
        crate::faults::point("restore.safety_backup");
        job.phase("safety_backup", None);
        let now = app.clock.now();
        let safety_id = crate::backup_jobs::begin_backup(app, account.id, BackupKind::Safety, now)?;
        let within = crate::jobs::Within {
            job,
            phase: "safety_backup",
        };
        crate::backup_jobs::take_backup(app, account, BackupKind::Safety, safety_id, now, &within)
            .map_err(|e| format!("the safety backup failed, so nothing was restored: {e}"))?;
        // 2. The backup's files, from whichever location can give them.
        crate::faults::point("restore.fetching");
        job.phase("fetching", backup.size_bytes);
        let new = stage.join("new");
        let within = crate::jobs::Within { job, phase: "fetching" };
        let live_attachments = account_dir.join("attachments");
        let location = fetch(&app.config, slug, backup, &new, Some(&live_attachments), &within)?;
        // 3. Checked beside the live data.
        crate::faults::point("restore.checking");
        job.phase("checking", None);
        check(&new.join("live.db"), backup)?;
        // 4. Customers deleted since the backup are deleted again before anyone sees them.
        crate::faults::point("restore.reapplying_deletions");
        job.phase("reapplying_deletions", None);
        let ledger = crate::erasure::Ledger::load(&app.control, account.id)?;
        let mut redeleted =
            reapply_deletions(&new.join("live.db"), &new.join("attachments"), &ledger, &app.ledger_key)?;
        // 5. Ids count on from the highest the live data gave, and everyone with a
        // sign-in is on the restored staff list, as their sign-in says.
        count_ids_on(&new.join("live.db"), &account_dir.join("live.db"))?;
        crate::staff::keep_in_file(app, account.id, &new.join("live.db"))?;
        std::fs::create_dir_all(new.join("attachments")).map_err(|e| e.to_string())?;
        // On disk before the swap counts: a power cut after it must not find the
        // database or photos it put in place half written (the originals are deleted
        // once it counts).
        sync_file(&new.join("live.db"))?;
        repairops_vault::flush_tree(&new.join("attachments")).map_err(|e| e.to_string())?;
        // 6. The swap, with every connection to the old file closed.
        crate::faults::point("restore.swapping");
        job.phase("swapping", None);
        app.with_live_closed(slug, || {
            // A deletion on request that began before the shop turned read-only may
            // have written its ledger entry since: it is applied here, where that
            // deletion cannot reach live data until the swap is done (it then deletes
            // from the restored data itself).
            let mut applied = ledger.newest;
            loop {
                let newest = app
                    .control
                    .with_writer(|c| crate::erasure::newest_entry(c, account.id))
                    .map_err(|e| format!("cannot read the deletion ledger: {e}"))?;
                if newest == applied {
                    break;
                }
                let again = crate::erasure::Ledger::load(&app.control, account.id)?;
                redeleted +=
                    reapply_deletions(&new.join("live.db"), &new.join("attachments"), &again, &app.ledger_key)?;
                sync_file(&new.join("live.db"))?;
                applied = again.newest;
            }
            swap(&account_dir, &stage)
        })?;
        crate::faults::point("restore.committed");
        Ok(json!({
            "backup_id": backup.id,
            "safety_backup_id": safety_id,
            "location": location,
            "customers_deleted_again": redeleted,
        }))
    });
    // The swap undid itself with the database closed; a folder still holding live files
    // is kept (the next start tries again), and the account stays read-only meanwhile.
    let stuck = result.is_err() && stranded(&stage);
    if stuck {
        tracing::error!(folder = %stage.display(), "a failed restore could not put the live files back");
    } else if result.is_err() {
        let _ = std::fs::remove_dir_all(&stage);
        let _ = std::fs::remove_dir(staging_root(&account_dir));
    } else {
        // The replaced files (tens of thousands of photos) are removed after the job
        // reports success; a crash meanwhile leaves a committed folder, removed at start.
        let root = staging_root(&account_dir);
        std::thread::spawn(move || {
            let _ = std::fs::remove_dir_all(&stage);
            let _ = std::fs::remove_dir(&root);
        });
    }
    let back_online = if stuck {
        Ok(())
    } else {
        set_mode(app, account.id, AccountMode::Normal)
    };
    let (outcome, detail) = match &result {
        Ok(v) => (
            "success",
            format!("restored backup {} from {}", backup.id, v["location"]),
        ),
        Err(e) if stuck => (
            "failure",
            format!("restore of backup {} failed and left the shop closed: {e}", backup.id),
        ),
        Err(e) => (
            "failure",
            format!("restore of backup {} failed, live data unchanged: {e}", backup.id),
        ),
    };
    let entry = crate::audit::AuditEntry {
        at: control::now_text(),
        account: slug.clone(),
        user: by.to_string(),
        event_type: "restore".into(),
        action: "restore to production".into(),
        resource: format!("/api/v1/backups/{}", backup.id),
        ip: "-".into(),
        result: outcome.into(),
        detail,
    };
    app.audit_blocking(&entry);
    let mut event = json!({"backup_id": backup.id, "job_id": job.id, "succeeded": result.is_ok()});
    match &result {
        Ok(v) => event["result"] = v.clone(),
        Err(e) => event["error"] = json!(e),
    }
    crate::notify::notify(app, account, "restore.finished", &format!("job-{}", job.id), event);
    back_online?;
    result
}

#[utoipa::path(post, path = "/api/v1/restores", tag = "restores", security(("bearer" = [])), request_body = RestoreRequest,
    responses((status = 202, body = Job), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 423, body = ErrorBody)))]
pub async fn create(
    State(app): State<AppState>,
    auth: Auth,
    body: Deferred<RestoreRequest>,
) -> Result<Response, ApiError> {
    auth.require(Permission::RunBackups)?;
    auth.require_writable()?;
    let req = body.parse()?;
    let account = auth.account.clone();
    if req.confirm != account.account.slug {
        return Err(ApiError::invalid(format!(
            "to confirm, type the account's name {:?} exactly: a restore replaces all of its live data",
            account.account.slug
        )));
    }
    let backup = crate::backup_api::find_backup(&app, account.id, req.backup_id).await?;
    if backup.state != repairops_api::JobState::Succeeded {
        return Err(ApiError::invalid(format!(
            "backup {} did not complete, so it cannot be restored",
            backup.id
        )));
    }
    let handle = app.jobs.start(account.id, &account.account.slug, "restore")?;
    let job = handle
        .snapshot()
        .ok_or_else(|| ApiError::internal("start the restore", "job vanished"))?;
    let by = auth.identity.email.clone();
    let app2 = app.clone();
    // The account turns read-only in the job's own task, so a client that goes away
    // now cannot leave it read-only with no restore running; the answer waits for it.
    let (read_only, now_read_only) = tokio::sync::oneshot::channel();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = set_mode(&app2, account.id, AccountMode::Restoring) {
            let _ = read_only.send(Err(e.clone()));
            handle.fail(e);
            return;
        }
        let _ = read_only.send(Ok(()));
        match run(&app2, &account, &backup, &by, &handle) {
            Ok(v) => {
                handle.succeed(v);
            }
            Err(e) => {
                tracing::error!(account = %account.account.slug, error = %e, "restore failed");
                handle.fail(e);
            }
        }
    });
    now_read_only
        .await
        .map_err(|e| ApiError::internal("start the restore", e))?
        .map_err(|e| ApiError::internal("start the restore", e))?;
    Ok((StatusCode::ACCEPTED, axum::Json(job)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_swap_is_undone_at_every_step() {
        // Crash after each rename of the swap: the live files must come back.
        for crash_after in 0..=4 {
            let dir = tempfile::tempdir().unwrap();
            let account = dir.path().join("accounts/shop");
            let stage = staging_root(&account).join("job-1");
            std::fs::create_dir_all(account.join("attachments")).unwrap();
            std::fs::write(account.join("live.db"), b"old db").unwrap();
            std::fs::write(account.join("attachments/a"), b"old file").unwrap();
            std::fs::create_dir_all(stage.join("new/attachments")).unwrap();
            std::fs::write(stage.join("new/live.db"), b"new db").unwrap();
            std::fs::create_dir_all(stage.join("old")).unwrap();
            let steps: [(&FsPath, &FsPath, &str); 4] = [
                (&account, &stage.join("old"), "live.db"),
                (&account, &stage.join("old"), "attachments"),
                (&stage.join("new"), &account, "live.db"),
                (&stage.join("new"), &account, "attachments"),
            ];
            for (from, to, name) in steps.iter().take(crash_after) {
                move_if_there(from, to, name).unwrap();
            }
            let control = crate::control::open_for_test(dir.path());
            recover(&control, dir.path());
            assert_eq!(
                std::fs::read(account.join("live.db")).unwrap(),
                b"old db",
                "crash after {crash_after}"
            );
            assert_eq!(std::fs::read(account.join("attachments/a")).unwrap(), b"old file");
            assert!(!staging_root(&account).exists());
        }
    }

    #[test]
    fn an_interrupted_undo_is_finished_and_a_file_it_cannot_put_back_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let account = dir.path().join("accounts/shop");
        let stage = staging_root(&account).join("job-1");
        let control = crate::control::open_for_test(dir.path());
        // The swap was done, then its undo stopped after putting the database back:
        // the backup's photos stand in the live place, the shop's own are in `old/`.
        std::fs::create_dir_all(account.join("attachments")).unwrap();
        std::fs::write(account.join("live.db"), b"old db").unwrap();
        std::fs::write(account.join("attachments/b"), b"backup's file").unwrap();
        std::fs::create_dir_all(stage.join("old/attachments")).unwrap();
        std::fs::write(stage.join("old/attachments/a"), b"old file").unwrap();
        std::fs::create_dir_all(stage.join("new")).unwrap();
        std::fs::write(stage.join("new/live.db"), b"new db").unwrap();
        // Something in the way of moving the backup's photos aside: the shop's own
        // cannot go back, and must not be deleted with the staging folder.
        std::fs::create_dir_all(stage.join("new/attachments/x")).unwrap();
        recover(&control, dir.path());
        assert_eq!(std::fs::read(stage.join("old/attachments/a")).unwrap(), b"old file");
        // Live data is not opened meanwhile: it would be an empty shop.
        assert_eq!(stranded_files(&account), Some(stage.join("old")));
        // With the way clear, the next start finishes the undo.
        std::fs::remove_dir_all(stage.join("new/attachments")).unwrap();
        recover(&control, dir.path());
        assert_eq!(std::fs::read(account.join("live.db")).unwrap(), b"old db");
        assert_eq!(std::fs::read(account.join("attachments/a")).unwrap(), b"old file");
        assert!(!account.join("attachments/b").exists());
        assert!(!staging_root(&account).exists());
        assert_eq!(stranded_files(&account), None);
    }
}
