//! Backing an account up: a consistent snapshot of its live database, its attachments
//! and its settings, into the primary vault repository and then the secondary one.
//!
//! The database is copied with SQLite's online backup API in one step (`step(-1)`)
//! inside the copy's read transaction: in WAL mode writers keep writing while it runs,
//! and, unlike a stepped backup, it never restarts when they do. The copy is page for
//! page, so a day's changes stay in the pages they touched and the vault stores little.
//!
//! When one location fails (full, unreachable), the backup still completes in the
//! other and says so; the next backup copies what the lagging location lacks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use repairops_vault::{Backend, BackupOptions, Location, MasterKey, Progress, Repository, S3Settings, Source};
use rusqlite::{Connection, OpenFlags};

use crate::config::Config;

pub use repairops_api::{BackupKind, BackupLocation, DataSummary};

/// The two repositories of an account and the key that opens them.
pub struct Locations {
    pub primary: Location,
    pub secondary: Location,
    pub key: MasterKey,
}

/// Resolves where an account's repositories live: `<location>/<slug>`.
pub fn locations(config: &Config, slug: &str) -> Result<Locations, String> {
    let resolve = |url: &str| -> Result<Location, String> {
        let s3 = S3Settings {
            endpoint: config.backup.s3.endpoint.clone(),
            region: config.backup.s3.region.clone(),
            access_key_id: config.backup.s3.access_key_id.clone(),
            secret_access_key: config.backup.s3.secret_access_key.clone(),
            session_token: None,
        };
        let full = if url.starts_with("s3://") {
            format!("{}/{slug}", url.trim_end_matches('/'))
        } else {
            let base = Path::new(url);
            let base = if base.is_absolute() {
                base.to_path_buf()
            } else {
                config.data.join(base)
            };
            base.join(slug).to_string_lossy().into_owned()
        };
        Location::parse(&full, Some(s3)).map_err(|e| e.to_string())
    };
    Ok(Locations {
        primary: resolve(&config.backup.primary)?,
        secondary: resolve(&config.backup.secondary)?,
        key: vault_key(config, slug)?,
    })
}

/// Where an account's vault master key lives.
pub fn vault_key_path(config: &Config, slug: &str) -> PathBuf {
    config.keys_dir().join(format!("vault-{slug}.key"))
}

/// The master key of an account's repositories (`keys/vault-<slug>.key`), made on first
/// use. Keep a copy away from the server: it is what a restore elsewhere needs.
pub fn vault_key(config: &Config, slug: &str) -> Result<MasterKey, String> {
    let _creating = CREATING.lock().unwrap_or_else(|p| p.into_inner());
    let path = vault_key_path(config, slug);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            MasterKey::from_key_file(&text).ok_or_else(|| format!("{} is not a vault key file", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = MasterKey::generate();
            crate::tls::write_private(&path, key.to_key_file().as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(key)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Serialises creating keys and repositories in this process: two `init`s of one
/// location at once would leave a repository only one of them can read.
static CREATING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Opens a repository that must exist (reads, deletes, retention, health checks): an
/// empty location, such as an unmounted drive, is reported, not quietly initialised.
pub fn open_existing(location: &Location, key: &MasterKey) -> Result<Repository, repairops_vault::VaultError> {
    // `open_existing`: a missing local folder is not created on the way (a health check
    // of an unmounted drive must not make an empty folder where the drive mounts).
    Repository::open(Arc::new(location.open_existing()?), key)
}

/// Opens a repository, creating it when the location is empty (backups only).
pub fn open_or_init(location: &Location, key: &MasterKey) -> Result<Repository, repairops_vault::VaultError> {
    let _creating = CREATING.lock().unwrap_or_else(|p| p.into_inner());
    let backend: Arc<dyn Backend> = Arc::new(location.open()?);
    match Repository::open(backend.clone(), key) {
        Ok(r) => Ok(r),
        Err(repairops_vault::VaultError::NotARepository { .. }) => Repository::init(backend, key, Default::default()),
        Err(e) => Err(e),
    }
}

/// Copies the live database of `live_db` to `dest` while writers keep writing.
pub fn snapshot_database(live_db: &Path, dest: &Path) -> rusqlite::Result<()> {
    let _ = std::fs::remove_file(dest);
    let src = Connection::open_with_flags(
        live_db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    src.busy_timeout(std::time::Duration::from_secs(10))?;
    let mut dst = Connection::open(dest)?;
    {
        let backup = rusqlite::backup::Backup::new(&src, &mut dst)?;
        // One step copies everything under one read transaction; see the module docs.
        loop {
            match backup.step(-1)? {
                rusqlite::backup::StepResult::Done => break,
                _ => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    }
    dst.execute_batch("PRAGMA journal_mode = DELETE;")?;
    Ok(())
}

/// Rows per table of a database file, and its size.
pub fn summarize(db: &Path, attachments: &Path) -> rusqlite::Result<DataSummary> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut rows = BTreeMap::new();
    for table in crate::live::TABLES {
        let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
        rows.insert(table.to_string(), n);
    }
    let (files, bytes) = dir_size(attachments);
    Ok(DataSummary {
        rows,
        attachments: files,
        attachment_bytes: bytes,
        database_bytes: std::fs::metadata(db).map(|m| m.len()).unwrap_or(0),
    })
}

fn dir_size(dir: &Path) -> (i64, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() && !e.file_name().to_string_lossy().starts_with('.') {
                files += 1;
                bytes += meta.len();
            }
        }
    }
    (files, bytes)
}

/// The result of one backup.
#[derive(Debug, Clone)]
pub struct BackupRun {
    pub summary: DataSummary,
    pub locations: Vec<BackupLocation>,
    pub added_bytes: u64,
    pub duration_ms: u64,
    /// Files that vanished while reading (deleted attachments), and similar.
    pub warnings: Vec<String>,
}

impl BackupRun {
    pub fn succeeded(&self) -> bool {
        self.locations.iter().any(|l| l.ok)
    }
}

/// What to back up for an account.
pub struct BackupInput<'a> {
    pub slug: &'a str,
    pub account_dir: PathBuf,
    pub kind: BackupKind,
    pub settings_json: Vec<u8>,
    pub time: DateTime<Utc>,
}

/// A folder removed when this goes out of scope, on success, error or panic alike.
struct RemovedOnDrop<'a>(&'a std::path::Path);

impl Drop for RemovedOnDrop<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0);
    }
}

/// Takes one backup: snapshot, primary, then secondary (or only the one that works).
pub fn run(locations: &Locations, input: BackupInput<'_>, progress: &dyn Progress) -> Result<BackupRun, String> {
    let started = std::time::Instant::now();
    // A folder of this run's own (the database copy holds customers' data: it is removed
    // when the run ends, and leftovers of a crashed run at the next start).
    let work =
        input
            .account_dir
            .join(".backup")
            .join(format!("{}-{}", input.kind.as_str(), input.time.timestamp_micros()));
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let _removed_at_end = RemovedOnDrop(&work);
    let snapshot = work.join("live.db");
    progress.phase("snapshot", None);
    snapshot_database(&input.account_dir.join("live.db"), &snapshot)
        .map_err(|e| format!("cannot snapshot the shop's database: {e}"))?;
    let attachments = input.account_dir.join("attachments");
    // A lost photos folder is backed up as an empty one, not a failed backup (the
    // safety backup before restoring it must work).
    std::fs::create_dir_all(&attachments).map_err(|e| format!("cannot create {}: {e}", attachments.display()))?;
    let summary = summarize(&snapshot, &attachments).map_err(|e| format!("cannot read the database snapshot: {e}"))?;
    let tags = BTreeMap::from([
        ("kind".to_string(), input.kind.as_str().to_string()),
        ("account".to_string(), input.slug.to_string()),
    ]);
    let options = BackupOptions {
        tags,
        summary: serde_json::to_value(&summary).unwrap_or_default(),
        time: input.time,
        parent: None,
    };
    let sources = || {
        vec![
            Source::named_path(&snapshot, "live.db"),
            Source::named_path(&attachments, "attachments"),
            Source::stream("settings.json", std::io::Cursor::new(input.settings_json.clone())),
        ]
    };

    let mut outcomes = Vec::new();
    let mut added = 0;
    let mut warnings = Vec::new();
    let started_primary = std::time::Instant::now();
    let primary = open_or_init(&locations.primary, &locations.key)
        .and_then(|repo| repairops_vault::backup(&repo, sources(), options.clone(), progress).map(|o| (repo, o)));
    match primary {
        Ok((repo, outcome)) => {
            added = outcome.snapshot.stats.added_bytes;
            warnings.extend(outcome.warnings.clone());
            outcomes.push(location_outcome(
                "primary",
                &locations.primary,
                Ok(outcome.snapshot_id.to_hex()),
                started_primary,
            ));
            progress.phase("copy", None);
            let started_copy = std::time::Instant::now();
            let copied = copy_to_secondary(&repo, locations, progress, outcome.snapshot_id);
            outcomes.push(location_outcome(
                "secondary",
                &locations.secondary,
                copied,
                started_copy,
            ));
        }
        Err(e) => {
            outcomes.push(location_outcome(
                "primary",
                &locations.primary,
                Err(e.to_string()),
                started_primary,
            ));
            // The primary is down or full: back up straight into the secondary.
            let started_secondary = std::time::Instant::now();
            let secondary = open_or_init(&locations.secondary, &locations.key)
                .and_then(|repo| repairops_vault::backup(&repo, sources(), options.clone(), progress))
                .map(|o| {
                    added = o.snapshot.stats.added_bytes;
                    o.snapshot_id.to_hex()
                })
                .map_err(|e| e.to_string());
            outcomes.push(location_outcome(
                "secondary",
                &locations.secondary,
                secondary,
                started_secondary,
            ));
        }
    }
    Ok(BackupRun {
        summary,
        locations: outcomes,
        added_bytes: added,
        duration_ms: started.elapsed().as_millis() as u64,
        warnings,
    })
}

fn location_outcome(
    name: &str,
    location: &Location,
    result: Result<String, String>,
    started: std::time::Instant,
) -> BackupLocation {
    BackupLocation {
        name: name.into(),
        url: location.to_string(),
        ok: result.is_ok(),
        duration_ms: Some(started.elapsed().as_millis() as u64),
        snapshot: result.as_ref().ok().cloned(),
        error: result.err(),
    }
}

/// Copies every snapshot the secondary lacks (so a location that was down catches up);
/// returns the secondary's copy of `wanted`.
fn copy_to_secondary(
    primary: &Repository,
    locations: &Locations,
    progress: &dyn Progress,
    wanted: repairops_vault::Id,
) -> Result<String, String> {
    let dst = open_or_init(&locations.secondary, &locations.key).map_err(|e| e.to_string())?;
    repairops_vault::copy(primary, &dst, None, progress).map_err(|e| e.to_string())?;
    dst.snapshots()
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|(_, snap)| snap.original == Some(wanted))
        .map(|(id, _)| id.to_hex())
        .ok_or_else(|| "the copy is missing after copying".to_string())
}

/// Removes scheduled snapshots whose shop-local date is more than `days` calendar days
/// before `now` (manual backups are never removed; safety backups after 30 days), in a
/// repository, then prunes. Returns the snapshots removed.
///
/// The newest scheduled snapshot stays whatever its age: a location that has taken no
/// backup for longer than the plan keeps (full, unreachable, the server stopped) must
/// not be emptied by the very runs that fail to write there.
pub fn apply_retention(
    repo: &Repository,
    tz: chrono_tz::Tz,
    days: u32,
    now: DateTime<Utc>,
    progress: &dyn Progress,
) -> Result<Vec<String>, String> {
    let today = crate::schedule::local_date(tz, now);
    let snaps = repo.snapshots().map_err(|e| e.to_string())?;
    let kind = |snap: &repairops_vault::Snapshot| snap.tags.get("kind").cloned().unwrap_or_default();
    let newest_scheduled = snaps
        .iter()
        .filter(|(_, snap)| kind(snap) == "scheduled")
        .max_by_key(|(id, snap)| (snap.time, *id))
        .map(|(id, _)| *id);
    let mut doomed = Vec::new();
    for (id, snap) in &snaps {
        let age = (today - crate::schedule::local_date(tz, snap.time)).num_days();
        let keep_days = match kind(snap).as_str() {
            "scheduled" if Some(*id) == newest_scheduled => continue,
            "scheduled" => i64::from(days),
            "safety" => 30,
            _ => continue,
        };
        if age > keep_days {
            doomed.push(*id);
        }
    }
    if doomed.is_empty() {
        return Ok(Vec::new());
    }
    let _lock = repo.lock(false, "forget").map_err(|e| e.to_string())?;
    repairops_vault::forget_ids(repo, &doomed, progress).map_err(|e| e.to_string())?;
    drop(_lock);
    repairops_vault::prune(repo, progress).map_err(|e| e.to_string())?;
    Ok(doomed.iter().map(|i| i.to_hex()).collect())
}

/// Forgets a backup's snapshots (and copies of them) in both locations, then prunes.
pub fn forget_everywhere(config: &Config, slug: &str, backup: &repairops_api::Backup) -> Result<(), String> {
    let locations = locations(config, slug)?;
    let primary_id = backup
        .locations
        .iter()
        .find(|l| l.name == "primary")
        .and_then(|l| l.snapshot.as_deref())
        .and_then(|s| s.parse::<repairops_vault::Id>().ok());
    let mut errors = Vec::new();
    for (loc, place) in [(&locations.primary, "primary"), (&locations.secondary, "secondary")] {
        let own = backup
            .locations
            .iter()
            .find(|l| l.name == place)
            .and_then(|l| l.snapshot.as_deref())
            .and_then(|s| s.parse::<repairops_vault::Id>().ok());
        let result = open_existing(loc, &locations.key)
            .map_err(|e| e.to_string())
            .and_then(|repo| {
                let snaps = repo.snapshots().map_err(|e| e.to_string())?;
                let doomed: Vec<_> = snaps
                    .iter()
                    .filter(|(sid, s)| Some(*sid) == own || (primary_id.is_some() && s.original == primary_id))
                    .map(|(sid, _)| *sid)
                    .collect();
                if doomed.is_empty() {
                    return Ok(());
                }
                let lock = repo.lock(false, "forget").map_err(|e| e.to_string())?;
                repairops_vault::forget_ids(&repo, &doomed, &repairops_vault::NoProgress).map_err(|e| e.to_string())?;
                drop(lock);
                repairops_vault::prune(&repo, &repairops_vault::NoProgress)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = result {
            errors.push(format!("{place}: {e}"));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// A recovery key: a text file, and the key objects it added.
pub struct RecoveryKey {
    pub text: String,
    pub key_objects: Vec<String>,
}

/// Adds a key object opened by `passphrase` to both of an account's repositories and
/// returns the recovery key file: where the backups are, how to restore them with the
/// vault's command line and the passphrase alone (no server, no key file), and a copy
/// of each key object (the data keys sealed with Argon2id of the passphrase, in case a
/// repository's `keys/` folder is lost). Both locations must be reachable, so that the
/// file never promises what one of them cannot do. A key rotation removes these key
/// objects with every other old key: a new recovery key is needed after one.
pub fn recovery_key(
    config: &Config,
    slug: &str,
    made_by: &str,
    now: DateTime<Utc>,
    passphrase: &str,
) -> Result<RecoveryKey, String> {
    let locations = locations(config, slug)?;
    let mut repos = Vec::new();
    for (name, loc) in [("primary", &locations.primary), ("secondary", &locations.secondary)] {
        let repo = open_existing(loc, &locations.key)
            .map_err(|e| format!("the {name} location ({loc}) cannot be opened: {e}"))?;
        repos.push((name, loc, repo));
    }
    let provider = repairops_vault::Passphrase::new(passphrase);
    let mut text = format!(
        "RepairOps Backup recovery key for account \"{slug}\"\n\
         Made {} by {made_by}.\n\n\
         With the passphrase chosen when this file was made (it is not stored anywhere) and\n\
         read access to a location below, the backups can be restored without the server\n\
         and without its key file:\n\n\
         \x20 export REPAIROPS_RECOVERY_PASSPHRASE='the passphrase'\n\
         \x20 repairops-vault --repo LOCATION --password-env REPAIROPS_RECOVERY_PASSPHRASE snapshots\n\
         \x20 repairops-vault --repo LOCATION --password-env REPAIROPS_RECOVERY_PASSPHRASE restore latest --target ./restored\n\n\
         (For S3 the vault reads its credentials from the environment; docs/vault-format.md\n\
         describes how to restore with nothing but that document.) A key rotation on the\n\
         server retires this recovery key: make a new one after each rotation.\n\n",
        now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let mut key_objects = Vec::new();
    for (name, loc, repo) in &repos {
        let id = repo
            .add_key(&provider)
            .map_err(|e| format!("cannot add the recovery key to the {name} location ({loc}): {e}"))?;
        let path = format!("keys/{}", id.to_hex());
        let object = repo
            .backend()
            .read(&path)
            .map_err(|e| format!("cannot read back {path} in the {name} location ({loc}): {e}"))?;
        text.push_str(&format!(
            "{name}: {loc}\n  key object {path}:\n  {}\n\n",
            String::from_utf8_lossy(&object).trim()
        ));
        key_objects.push(id.to_hex());
    }
    Ok(RecoveryKey { text, key_objects })
}

/// Replaces an account's master key in both repositories, then its key file; no data is
/// rewritten. Both locations must be reachable, so that neither is left opening only
/// with a key that is gone. Returns the new key objects' ids.
pub fn rotate_key(config: &Config, slug: &str) -> Result<Vec<String>, String> {
    let locations = locations(config, slug)?;
    let new_key = MasterKey::generate();
    let mut repos = Vec::new();
    for (name, loc) in [("primary", &locations.primary), ("secondary", &locations.secondary)] {
        let repo = open_existing(loc, &locations.key)
            .map_err(|e| format!("the {name} location ({loc}) cannot be opened: {e}"))?;
        repos.push(repo);
    }
    // New key objects first: from here both keys open both repositories.
    let mut new_ids = Vec::new();
    for repo in &repos {
        new_ids.push(repo.add_key(&new_key).map_err(|e| e.to_string())?);
    }
    let path = vault_key_path(config, slug);
    crate::tls::write_private(&path, new_key.to_key_file().as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    // Then the old key objects go.
    for (repo, new_id) in repos.iter().zip(&new_ids) {
        for id in repo.key_ids().map_err(|e| e.to_string())? {
            if id != *new_id {
                repo.backend()
                    .delete(&format!("keys/{}", id.to_hex()))
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(new_ids.iter().map(|i| i.to_hex()).collect())
}

/// Whether a location answers with this account's repository.
pub fn probe(location: &Location, key: &MasterKey) -> Result<(), String> {
    match open_existing(location, key) {
        Ok(repo) => repo.snapshots().map(|_| ()).map_err(|e| e.to_string()),
        Err(repairops_vault::VaultError::NotARepository { .. }) => {
            Err("no backup has reached this location yet (or its drive or bucket is missing)".into())
        }
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot of one small stream, of `kind`, taken at `time`.
    fn snapshot(repo: &Repository, kind: &str, time: &str) {
        let options = BackupOptions {
            tags: [("kind".to_string(), kind.to_string())].into(),
            time: DateTime::parse_from_rfc3339(time).unwrap().with_timezone(&Utc),
            ..BackupOptions::default()
        };
        let source = Source::stream("settings.json", std::io::Cursor::new(time.as_bytes().to_vec()));
        repairops_vault::backup(repo, vec![source], options, &repairops_vault::NoProgress).unwrap();
    }

    fn kinds_and_days(repo: &Repository) -> Vec<(String, String)> {
        let mut all: Vec<_> = repo
            .snapshots()
            .unwrap()
            .into_iter()
            .map(|(_, s)| (s.tags["kind"].clone(), s.time.format("%Y-%m-%d").to_string()))
            .collect();
        all.sort_by(|a, b| a.1.cmp(&b.1));
        all
    }

    #[test]
    fn retention_never_removes_a_location_s_newest_scheduled_backup() {
        let dir = tempfile::tempdir().unwrap();
        let repo = open_or_init(&Location::Local(dir.path().join("r")), &MasterKey::generate()).unwrap();
        snapshot(&repo, "scheduled", "2026-03-01T01:00:00Z");
        snapshot(&repo, "scheduled", "2026-03-02T01:00:00Z");
        snapshot(&repo, "safety", "2026-03-02T12:00:00Z");
        // Nothing written here for 60 days on a 30-day plan.
        let now = DateTime::parse_from_rfc3339("2026-05-01T01:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let removed = apply_retention(&repo, chrono_tz::UTC, 30, now, &repairops_vault::NoProgress).unwrap();
        assert_eq!(removed.len(), 2, "the older scheduled and the safety backup");
        assert_eq!(
            kinds_and_days(&repo),
            [("scheduled".to_string(), "2026-03-02".to_string())],
            "the newest scheduled backup stays"
        );
        // Once a newer one is there, the old one goes by the plan as usual.
        snapshot(&repo, "scheduled", "2026-05-01T01:00:00Z");
        apply_retention(&repo, chrono_tz::UTC, 30, now, &repairops_vault::NoProgress).unwrap();
        assert_eq!(
            kinds_and_days(&repo),
            [("scheduled".to_string(), "2026-05-01".to_string())]
        );
    }
}
