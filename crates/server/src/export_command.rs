//! `repairops-server export`: an operator's export straight from the data folder to a
//! file, whole or not at all, audited as the operator.

use std::io::{ErrorKind, Write as _};
use std::path::Path;

use repairops_api::NewExport;

use crate::audit::AuditEntry;
use crate::control;
use crate::exports::{ExportError, Plan, write_live};

/// `repairops-server export`: an operator's export straight from the data folder to a
/// file, audited as the operator. Returns a one-line report.
pub fn run(data: &Path, slug: &str, req: &NewExport, out: &Path) -> Result<String, String> {
    // Nothing is created in a folder that is not a data folder (a mistyped --data).
    let control_path = data.join("server.db");
    if !control_path.is_file() {
        return Err(format!(
            "{} is not a RepairOps data folder (it has no server.db)",
            data.display()
        ));
    }
    let mut conn =
        crate::db::open_existing(&control_path).map_err(|e| format!("cannot open {}: {e}", control_path.display()))?;
    let account = control::account_by_slug(&conn, slug)
        .map_err(|e| format!("cannot read the accounts: {e}"))?
        .ok_or_else(|| format!("there is no account {slug:?} in {}", data.display()))?;
    let tz = control::account_tz(&account.account);
    let plan = Plan::new(req, tz).map_err(|e| e.to_string())?;
    let live = data.join("accounts").join(slug).join("live.db");
    if !live.is_file() {
        return Err(format!(
            "account {slug:?} has no shop data ({} is missing)",
            live.display()
        ));
    }
    let started = std::time::Instant::now();
    let progress = &mut |done, _| {
        if done > 0 {
            crate::faults::point("export.progress");
        }
    };
    let result = if out == Path::new("-") {
        let mut sink = std::io::stdout();
        write_live(&live, &plan, &mut sink, progress).and_then(|n| {
            sink.flush()?;
            Ok(n)
        })
    } else {
        write_whole(&live, &plan, out, progress)
    };
    let key = crate::audit::AuditKey::load_or_create(data).map_err(|e| format!("cannot read the audit key: {e}"))?;
    let entry = AuditEntry {
        at: control::now_text(),
        account: slug.to_string(),
        user: "operator (command line)".into(),
        event_type: "export".into(),
        action: format!("export {} as {}", plan.dataset.as_str(), plan.format.as_str()),
        resource: out.display().to_string(),
        ip: "-".into(),
        result: if result.is_ok() { "success" } else { "failure" }.into(),
        detail: match &result {
            Ok(n) => format!("{n} records"),
            Err(e) => e.to_string(),
        },
    };
    crate::audit::append(&mut conn, &key, &entry).map_err(|e| format!("cannot write the audit log: {e}"))?;
    let n = result.map_err(|e| e.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    Ok(format!(
        "{n} records in {secs:.3} s ({:.0} records/s)",
        n as f64 / secs.max(1e-9)
    ))
}

/// Writes an export into the file `out`: into a temporary file beside it (beside a
/// symbolic link's target), flushed to the device and renamed into place once whole, so
/// an export that fails or is stopped part way leaves nothing new under that name and
/// an older file there as it was. A device or a pipe is written directly.
fn write_whole(live: &Path, plan: &Plan, out: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<u64, ExportError> {
    let context = |path: &Path| {
        let path = path.display().to_string();
        move |e: std::io::Error| std::io::Error::new(e.kind(), format!("cannot create {path}: {e}"))
    };
    let target = match std::fs::symlink_metadata(out) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(out).unwrap_or_else(|_| out.to_path_buf()),
        _ => out.to_path_buf(),
    };
    let existing = std::fs::metadata(&target).ok();
    if existing.as_ref().is_some_and(|m| !m.is_file()) {
        // A device or a pipe (a folder fails to open here, with its own message).
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&target)
            .map_err(context(&target))?;
        let n = write_live(live, plan, &mut file, progress)?;
        file.flush()?;
        return Ok(n);
    }
    let folder = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Removed when dropped: on an error, and on a panic as it unwinds. tempfile's own
    // error names the temporary file's random name; the person asked for `target`.
    let mut part = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".part")
        .tempfile_in(folder)
        .map_err(|e| cannot_create_in(&target, folder, e))?;
    // A file replaced keeps its permissions; a new one is its owner's alone (tempfile's
    // 0600), as an export holds customers' personal data.
    if let Some(m) = &existing {
        part.as_file().set_permissions(m.permissions())?;
    }
    let n = write_live(live, plan, &mut part, progress)?;
    part.as_file().sync_all()?;
    part.persist(&target).map_err(|e| e.error)?;
    Ok(n)
}

/// Why the file `target` could not be made in `folder`, in words that name the two
/// paths the person knows (tempfile's own error names its random file).
fn cannot_create_in(target: &Path, folder: &Path, e: std::io::Error) -> std::io::Error {
    let (target, shown) = (target.display(), folder.display());
    let why = match e.kind() {
        ErrorKind::NotFound if !folder.exists() => format!("the folder {shown} does not exist"),
        ErrorKind::NotADirectory => format!("{shown} is not a folder"),
        ErrorKind::PermissionDenied => format!("no permission to write in {shown}"),
        ErrorKind::ReadOnlyFilesystem => format!("{shown} is on a read-only file system"),
        ErrorKind::StorageFull => format!("no space left in {shown}"),
        _ => {
            // The operating system's own words: tempfile writes them as
            // "{error} at path {path}" and keeps the error itself private.
            let said = e.to_string();
            let os = said.split(" at path ").next().unwrap_or(&said);
            format!("{os} (in {shown})")
        }
    };
    std::io::Error::new(e.kind(), format!("cannot create {target}: {why}"))
}
