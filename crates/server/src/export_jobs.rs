//! Export jobs as the server runs them: the work of one (on a blocking thread), its
//! file, and the removal of exports 30 days after they were made. The HTTP side is
//! `export_api`.
//!
//! A file is written as it is produced into `exports/{id}.part`, sealed in AES-256-GCM
//! segments (see [`crate::sealed_file`]), flushed to the device, then renamed to
//! `exports/{id}.sealed`; a crash leaves only a `.part` file, removed at the next start.

use std::path::{Path as FsPath, PathBuf};

use chrono::{DateTime, Duration, Utc};
use rusqlite::params;
use serde_json::json;

use crate::app::AppState;
use crate::audit::AuditEntry;
use crate::control::{self, AccountRow};
use crate::error::ApiError;
use crate::exports::Plan;
use crate::jobs::JobHandle;
use crate::sealed_file::SealedWriter;

/// How long an export can be downloaded.
pub const KEEP: Duration = Duration::days(30);

pub(crate) fn exports_dir(data: &FsPath) -> PathBuf {
    data.join("exports")
}

pub(crate) fn sealed_path(data: &FsPath, id: i64) -> PathBuf {
    exports_dir(data).join(format!("{id}.sealed"))
}

/// The name bound into every sealed segment of an export.
pub(crate) fn sealed_name(id: i64) -> String {
    format!("export-{id}")
}

/// At start-up: exports a crash interrupted are marked failed and their partial files
/// removed.
pub fn recover(control: &crate::db::Db, data: &FsPath) {
    control.with_writer(|c| {
        let _ = c.execute(
            "UPDATE exports SET state = 'failed', error = 'the server stopped while this export was written' WHERE state = 'running'",
            [],
        );
    });
    if let Ok(entries) = std::fs::read_dir(exports_dir(data)) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "part") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// The export job's work, on a blocking thread.
pub(crate) fn run(
    app: &AppState,
    account: &AccountRow,
    user: &str,
    id: i64,
    plan: &Plan,
    live: &FsPath,
    handle: JobHandle,
) {
    use repairops_vault::Progress;
    let data = &app.config.data;
    let part = exports_dir(data).join(format!("{id}.part"));
    // A panic (a bug) fails this export like any error: its file is removed, its row and
    // the audit log say so, and the server goes on.
    let result = crate::jobs::panic_as_error("export", || -> Result<(u64, u64, String, i64), String> {
        // Read before the export's snapshot: a deletion recorded after it may be in the file.
        let erased_before = app
            .control
            .with_writer(|c| crate::erasure::newest_entry(c, account.id))
            .map_err(|e| format!("cannot read the deletion ledger: {e}"))?;
        std::fs::create_dir_all(exports_dir(data)).map_err(|e| format!("cannot create the exports folder: {e}"))?;
        let mut w = SealedWriter::create(&part, &app.export_key, &sealed_name(id))
            .map_err(|e| format!("cannot create the export file: {e}"))?;
        crate::faults::point("export.writing");
        let mut reported = 0u64;
        let rows = crate::exports::write_live(live, plan, &mut w, &mut |done, total| {
            if done == 0 {
                handle.phase("exporting", Some(total));
            } else {
                handle.advance(done - reported);
            }
            reported = done;
        })
        .map_err(|e| e.to_string())?;
        let (size, sha) = w.finish().map_err(|e| format!("cannot finish the export file: {e}"))?;
        std::fs::rename(&part, sealed_path(data, id)).map_err(|e| format!("cannot store the export file: {e}"))?;
        Ok((rows, size, sha, erased_before))
    });
    // Recorded on the control plane's writer, where a CCPA deletion records its ledger
    // entry: a deletion made while this export ran is seen here and fails it (the file
    // may hold the customer), and one made later finds it finished and removes it.
    let (result, updated) = app.control.with_writer(|c| {
        let result = result.and_then(|(rows, size, sha, erased_before)| {
            if !plan.dataset.holds_customers() {
                return Ok((rows, size, sha));
            }
            match crate::erasure::newest_entry(c, account.id) {
                Ok(now) if now == erased_before => Ok((rows, size, sha)),
                Ok(_) => Err(
                    "a customer was deleted on request while this export ran, so it may hold their \
                              data; run the export again"
                        .to_string(),
                ),
                Err(e) => Err(format!("cannot read the deletion ledger: {e}")),
            }
        });
        let updated = match &result {
            Ok((rows, size, sha)) => c.execute(
                "UPDATE exports SET state = 'succeeded', rows = ?1, size_bytes = ?2, sha256 = ?3 WHERE id = ?4",
                params![*rows as i64, *size as i64, sha, id],
            ),
            Err(e) => c.execute(
                "UPDATE exports SET state = 'failed', error = ?1 WHERE id = ?2",
                params![e, id],
            ),
        };
        (result, updated)
    });
    let (state, detail) = match &result {
        Ok((rows, size, _)) => ("success", format!("export {id}: {rows} records, {size} bytes")),
        Err(e) => ("failure", format!("export {id}: {e}")),
    };
    let entry = AuditEntry {
        at: control::now_text(),
        account: account.account.slug.clone(),
        user: user.to_string(),
        event_type: "export".into(),
        action: format!("export {} as {}", plan.dataset.as_str(), plan.format.as_str()),
        resource: format!("/api/v1/exports/{id}"),
        ip: "-".into(),
        result: state.into(),
        detail,
    };
    app.audit_blocking(&entry);
    match (result, updated) {
        (Ok((rows, size, sha)), Ok(_)) => {
            handle.succeed(json!({"export_id": id, "rows": rows, "size_bytes": size, "sha256": sha}));
        }
        (Ok(_), Err(e)) => {
            let _ = std::fs::remove_file(sealed_path(data, id));
            handle.fail(format!("the export could not be recorded: {e}"));
        }
        (Err(e), _) => {
            let _ = std::fs::remove_file(&part);
            let _ = std::fs::remove_file(sealed_path(data, id));
            tracing::error!(account = %account.account.slug, export = id, error = %e, "export failed");
            handle.fail(e);
        }
    }
}

/// Deletes exports older than 30 days (files and listing); run by the scheduler.
pub async fn sweep(app: &AppState, now: DateTime<Utc>) {
    let data = app.config.data.clone();
    let now = now.to_rfc3339();
    let result = app
        .control
        .write(move |c| {
            let ids: Vec<i64> = {
                let mut stmt = c
                    .prepare("SELECT id FROM exports WHERE deleted_at IS NULL AND expires_at <= ?1")
                    .map_err(control::db_err)?;
                let rows = stmt.query_map([&now], |r| r.get(0)).map_err(control::db_err)?;
                rows.collect::<rusqlite::Result<_>>().map_err(control::db_err)?
            };
            remove_files(c, &data, &ids, &now)
        })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e.message, "expired exports could not be deleted");
    }
}

/// Sweeps expired exports and sandboxes, and email log entries past 90 days, at start
/// and every ten minutes until the process ends.
pub fn spawn_sweeper(app: AppState) {
    tokio::spawn(async move {
        loop {
            sweep(&app, app.clock.now()).await;
            crate::sandboxes::sweep(&app, app.clock.now()).await;
            crate::mail::sweep_log(&app.control, app.clock.now()).await;
            tokio::time::sleep(std::time::Duration::from_secs(600)).await;
        }
    });
}

/// Deletes export files and marks them deleted; a file that cannot be removed stays
/// listed for the next try.
pub fn remove_files(c: &rusqlite::Connection, data: &FsPath, ids: &[i64], now: &str) -> Result<usize, ApiError> {
    let mut removed = 0;
    for id in ids {
        let path = sealed_path(data, *id);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "an export file could not be deleted");
                continue;
            }
        }
        c.execute("UPDATE exports SET deleted_at = ?1 WHERE id = ?2", params![now, id])
            .map_err(control::db_err)?;
        removed += 1;
    }
    Ok(removed)
}
