//! `repairops-vault`: the command line over the vault library. It parses, opens, calls
//! one library function, and maps the outcome to text or JSON and an exit code.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::{Args, Parser, Subcommand};
use repairops_vault::{
    BackupOptions, ForgetPolicy, Id, KeyProvider, Location, MasterKey, Passphrase, Progress, ProgressEvent, Repository,
    Source, VaultError, Walked,
};
use serde_json::json;

/// Encrypted, deduplicated backups on a local folder or S3-compatible storage.
#[derive(Parser)]
#[command(name = "repairops-vault", version, about)]
struct Cli {
    /// Repository: a local path or s3://bucket/prefix (endpoint, region and credentials
    /// from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
    #[arg(long, short = 'r', env = "REPAIROPS_VAULT_REPO", global = true)]
    repo: Option<String>,
    #[command(flatten)]
    key: KeyArgs,
    /// Print results as JSON on stdout and progress as JSON lines on stderr.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct KeyArgs {
    /// Key file holding the master key (`init` creates it when missing).
    #[arg(long, global = true, conflicts_with = "password_env")]
    key_file: Option<PathBuf>,
    /// Name of the environment variable holding the passphrase.
    #[arg(long, global = true)]
    password_env: Option<String>,
    /// Name of a master key kept in the OS credential store (Secret Service, macOS
    /// Keychain, Windows Credential Manager) instead of a file (`init` creates it when
    /// missing).
    #[arg(long, global = true, conflicts_with_all = ["key_file", "password_env"])]
    key_keyring: Option<String>,
}

/// The OS credential store's entry for a master key named `name` (service
/// `repairops-vault`): it holds the key file's text, so a key moves between a file and
/// the store unchanged.
fn keyring_entry(name: &str) -> Result<keyring::Entry, VaultError> {
    if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(VaultError::InvalidInput(
            "a key's name in the credential store is 1 to 200 characters on one line".into(),
        ));
    }
    keyring::Entry::new("repairops-vault", name).map_err(|e| keyring_error(name, e))
}

fn keyring_error(name: &str, e: keyring::Error) -> VaultError {
    VaultError::InvalidInput(match e {
        keyring::Error::NoEntry => {
            format!("the OS credential store holds no key named {name:?} (`init --key-keyring {name}` makes one)")
        }
        keyring::Error::NoStorageAccess(_) | keyring::Error::PlatformFailure(_) => format!(
            "the OS credential store cannot be reached or is locked ({e}); unlock it (log in to the desktop), or use --key-file"
        ),
        other => format!("the OS credential store refused the key {name:?}: {other}"),
    })
}

/// Reads the master key named `name` from the OS credential store; with `create`, makes
/// and stores a new one when there is none.
fn keyring_key(name: &str, create: bool) -> Result<MasterKey, VaultError> {
    let entry = keyring_entry(name)?;
    match entry.get_password() {
        Ok(text) => MasterKey::from_key_file(&text).ok_or_else(|| {
            VaultError::InvalidInput(format!(
                "the OS credential store's entry {name:?} does not hold a repairops-vault key"
            ))
        }),
        Err(keyring::Error::NoEntry) if create => {
            let key = MasterKey::generate();
            store_in_keyring(name, &key)?;
            eprintln!(
                "stored a new key as {name:?} in the OS credential store: keep a copy of it away from this computer"
            );
            Ok(key)
        }
        Err(e) => Err(keyring_error(name, e)),
    }
}

/// Stores `key` under `name` and reads it back through a new entry, so a store that
/// only seemed to take it (a locked or mock one) is found out now, not at the restore.
fn store_in_keyring(name: &str, key: &MasterKey) -> Result<(), VaultError> {
    let text = key.to_key_file();
    keyring_entry(name)?
        .set_password(&text)
        .map_err(|e| keyring_error(name, e))?;
    let back = keyring_entry(name)?
        .get_password()
        .map_err(|e| keyring_error(name, e))?;
    if back != text {
        return Err(VaultError::InvalidInput(format!(
            "the OS credential store did not keep the key {name:?}"
        )));
    }
    Ok(())
}

#[derive(Subcommand)]
enum Command {
    /// Create a repository.
    Init {
        /// Close packs at this size (MiB).
        #[arg(long, default_value_t = 16)]
        pack_size_mib: u32,
        /// zstd level for compressible data (1 fastest, 19 smallest).
        #[arg(long, default_value_t = repairops_vault::InitOptions::default().compression_level)]
        compression_level: i32,
        /// Average chunk size in KiB (chunks range from a quarter to four times this).
        #[arg(long, default_value_t = repairops_vault::InitOptions::default().chunker.avg_size / 1024)]
        chunk_size_kib: u32,
    },
    /// Back up folders and files into a new snapshot.
    Backup {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Tag the snapshot, e.g. --tag kind=manual (repeatable).
        #[arg(long = "tag", value_parser = parse_tag)]
        tags: Vec<(String, String)>,
        /// JSON to keep with the snapshot (a data summary).
        #[arg(long)]
        summary: Option<String>,
    },
    /// List snapshots.
    Snapshots,
    /// Restore a snapshot (or one file or folder of it).
    Restore {
        /// Snapshot id, unique prefix of one, or `latest`.
        id: String,
        /// Folder to restore into; `-` writes the single file named by --path to stdout.
        #[arg(long)]
        target: PathBuf,
        /// Restore only this path of the snapshot (as `snapshots` lists them).
        #[arg(long)]
        path: Option<String>,
    },
    /// Remove snapshots older than a number of days (their data goes at `prune`).
    Forget {
        #[arg(long, required_unless_present = "snapshot")]
        keep_within_days: Option<u32>,
        /// Never forget snapshots with this tag (repeatable), e.g. kind=manual.
        #[arg(long = "keep-tag", value_parser = parse_tag)]
        keep_tags: Vec<(String, String)>,
        /// Forget exactly these snapshots instead.
        #[arg(long, conflicts_with = "keep_within_days")]
        snapshot: Vec<String>,
    },
    /// Delete data no snapshot uses.
    Prune,
    /// Check the repository; --read-data also decrypts and verifies every pack.
    Check {
        #[arg(long)]
        read_data: bool,
    },
    /// Copy snapshots into a second repository (which may have another key).
    Copy {
        #[arg(long)]
        to: String,
        #[arg(long, conflicts_with = "to_password_env")]
        to_key_file: Option<PathBuf>,
        #[arg(long)]
        to_password_env: Option<String>,
    },
    /// Manage the master key.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Replace the master key; data is not touched. With a key file and no new key
    /// given, a new key is written over the key file.
    Rotate {
        #[arg(long, conflicts_with = "new_password_env")]
        new_key_file: Option<PathBuf>,
        #[arg(long)]
        new_password_env: Option<String>,
    },
}

fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && !k.contains(char::is_whitespace) => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not a tag: expected KEY=VALUE")),
    }
}

/// Exit codes, distinct per kind of failure so scripts can tell them apart.
mod exit {
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const WRONG_KEY: u8 = 3;
    pub const NOT_FOUND: u8 = 4;
    pub const DAMAGED: u8 = 5;
    pub const LOCKED: u8 = 6;
    pub const STORAGE: u8 = 7;
}

fn exit_code(e: &VaultError) -> u8 {
    match e {
        VaultError::WrongKey { .. } => exit::WRONG_KEY,
        VaultError::NotARepository { .. } | VaultError::NotFound { .. } => exit::NOT_FOUND,
        VaultError::Corrupt { .. } | VaultError::CheckFailed { .. } => exit::DAMAGED,
        VaultError::Locked { .. } => exit::LOCKED,
        VaultError::Storage { .. } => exit::STORAGE,
        VaultError::InvalidInput(_) | VaultError::AlreadyInitialized { .. } => exit::USAGE,
        VaultError::Io { .. } => exit::FAILURE,
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { 0 });
        }
    };
    let json = cli.json;
    match run(cli) {
        Ok(()) if STDOUT_FAILED.load(std::sync::atomic::Ordering::SeqCst) => ExitCode::FAILURE,
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if json {
                let body = json!({"error": {"code": exit_code(&e), "message": e.to_string()}});
                eprintln!("{body}");
            } else {
                eprintln!("repairops-vault: {e}");
            }
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Set when a result could not be written to stdout (a full disk): the command then
/// ends with exit code 1 once its work is done, its locks released.
static STDOUT_FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes to stdout; a closed pipe (`| head`) is not an error, anything else is.
fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.write_all(b"\n"))
        .and_then(|_| stdout.flush());
    if let Err(e) = written
        && e.kind() != std::io::ErrorKind::BrokenPipe
        && !STDOUT_FAILED.swap(true, std::sync::atomic::Ordering::SeqCst)
    {
        eprintln!("repairops-vault: cannot write the result to standard output: {e}");
    }
}

fn provider(key: &KeyArgs, what: &str) -> Result<Box<dyn KeyProvider>, VaultError> {
    if let Some(name) = &key.key_keyring {
        return Ok(Box::new(keyring_key(name, false)?));
    }
    load_provider(key.key_file.as_deref(), key.password_env.as_deref(), what, false)
}

fn load_provider(
    key_file: Option<&Path>,
    password_env: Option<&str>,
    what: &str,
    create: bool,
) -> Result<Box<dyn KeyProvider>, VaultError> {
    match (key_file, password_env) {
        (Some(path), _) => {
            if create && !path.exists() {
                let key = MasterKey::generate();
                write_secret_file(path, &key.to_key_file())?;
                eprintln!(
                    "created key file {}: keep a copy of it away from the repository",
                    path.display()
                );
                return Ok(Box::new(key));
            }
            let bytes = std::fs::read(path).map_err(|e| VaultError::Io {
                action: "read key file",
                path: path.to_path_buf(),
                source: e,
            })?;
            let key = MasterKey::from_key_file(&String::from_utf8_lossy(&bytes)).ok_or_else(|| {
                VaultError::InvalidInput(format!("{} is not a repairops-vault key file", path.display()))
            })?;
            Ok(Box::new(key))
        }
        (None, Some(var)) => {
            let secret = std::env::var(var).map_err(|_| {
                VaultError::InvalidInput(format!(
                    "the environment variable {var} (the {what} passphrase) is not set"
                ))
            })?;
            if secret.is_empty() {
                return Err(VaultError::InvalidInput(format!(
                    "the {what} passphrase in {var} is empty"
                )));
            }
            Ok(Box::new(Passphrase::new(secret)))
        }
        (None, None) => Err(VaultError::InvalidInput(match what {
            "destination" => "give the destination's key with --to-key-file FILE or --to-password-env VAR".into(),
            "new" => "give the new key with --new-key-file FILE or --new-password-env VAR".into(),
            _ => format!("give the {what} key with --key-file FILE, --password-env VAR or --key-keyring NAME"),
        })),
    }
}

/// Writes a secret file readable only by its owner, atomically.
fn write_secret_file(path: &Path, text: &str) -> Result<(), VaultError> {
    let io = |e| VaultError::Io {
        action: "write key file",
        path: path.to_path_buf(),
        source: e,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    // A fresh file, never one left there: an old one would keep its wider permissions
    // (the mode below applies only on creation), and a link would be written through.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp).map_err(io)?;
    f.write_all(text.as_bytes()).and_then(|_| f.sync_all()).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The backend of a repository that exists (every command but `init`).
fn open_backend(url: &str) -> Result<Arc<dyn repairops_vault::Backend>, VaultError> {
    Ok(Arc::new(Location::parse(url, None)?.open_existing()?))
}

/// Progress on a terminal as a bar, with --json as JSON lines on stderr, else nothing.
struct CliProgress {
    json: bool,
    bar: Option<indicatif::ProgressBar>,
    done: Mutex<u64>,
}

impl CliProgress {
    fn new(json: bool) -> CliProgress {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg:8} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        CliProgress {
            json,
            bar,
            done: Mutex::new(0),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress for CliProgress {
    fn phase(&self, name: &str, total: Option<u64>) {
        if let Some(bar) = &self.bar {
            bar.set_message(name.to_string());
            bar.set_position(0);
            bar.set_length(total.unwrap_or(0));
        }
        if self.json {
            eprintln!("{}", json!({"event": "phase", "phase": name, "total": total}));
        }
    }

    fn advance(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
        if let Ok(mut d) = self.done.lock() {
            *d += bytes;
        }
    }

    fn event(&self, event: &ProgressEvent) {
        if !self.json {
            return;
        }
        let done = self.done.lock().map(|d| *d).unwrap_or(0);
        let line = match event {
            ProgressEvent::PackWritten { pack, count } => {
                json!({"event": "pack_written", "pack": pack, "count": count, "bytes_done": done})
            }
            ProgressEvent::IndexWritten { index } => json!({"event": "index_written", "index": index}),
            ProgressEvent::SnapshotWritten { snapshot } => json!({"event": "snapshot_written", "snapshot": snapshot}),
            ProgressEvent::FileDone { path } => json!({"event": "file_done", "path": path, "bytes_done": done}),
            ProgressEvent::Deleted { object } => json!({"event": "deleted", "object": object}),
        };
        eprintln!("{line}");
    }
}

/// Damaged objects that were skipped: said on stderr, so the listing or restore of what
/// is intact still goes ahead.
fn warn_damaged(damaged: &[VaultError]) {
    for e in damaged {
        eprintln!("warning: skipped {e}; run `check --read-data`");
    }
}

fn snapshot_json(id: &Id, s: &repairops_vault::Snapshot) -> serde_json::Value {
    json!({
        "id": id.to_hex(),
        "short_id": id.short(),
        "time": s.time.to_rfc3339(),
        "hostname": s.hostname,
        "paths": s.paths,
        "tags": s.tags,
        "summary": s.summary,
        "stats": s.stats,
        "original": s.original.map(|o| o.to_hex()),
    })
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn run(cli: Cli) -> Result<(), VaultError> {
    let url = cli.repo.clone().ok_or_else(|| {
        VaultError::InvalidInput("give the repository with --repo URL (or REPAIROPS_VAULT_REPO)".into())
    })?;
    let progress = CliProgress::new(cli.json);
    let json = cli.json;
    match cli.command {
        Command::Init {
            pack_size_mib,
            compression_level,
            chunk_size_kib,
        } => {
            // Settings first: a refused one leaves no folder and no key behind.
            let options = repairops_vault::InitOptions {
                pack_size: pack_size_mib.saturating_mul(1024 * 1024),
                compression_level,
                chunker: repairops_vault::format::ChunkerParams::around(chunk_size_kib.saturating_mul(1024)),
            };
            options.validate()?;
            let backend: Arc<dyn repairops_vault::Backend> = Arc::new(Location::parse(&url, None)?.open()?);
            let key: Box<dyn KeyProvider> = match &cli.key.key_keyring {
                Some(name) => Box::new(keyring_key(name, true)?),
                None => load_provider(
                    cli.key.key_file.as_deref(),
                    cli.key.password_env.as_deref(),
                    "repository",
                    true,
                )?,
            };
            let repo = Repository::init(backend, key.as_ref(), options)?;
            if json {
                out(&json!({"id": repo.config().id.to_hex(), "location": repo.location()}).to_string());
            } else {
                out(&format!(
                    "created repository {} at {}",
                    repo.config().id.short(),
                    repo.location()
                ));
            }
        }
        Command::Backup { paths, tags, summary } => {
            let summary = match summary {
                Some(s) => serde_json::from_str(&s)
                    .map_err(|e| VaultError::InvalidInput(format!("--summary is not JSON: {e}")))?,
                None => serde_json::Value::Null,
            };
            let options = BackupOptions {
                tags: tags.into_iter().collect::<BTreeMap<_, _>>(),
                summary,
                ..Default::default()
            };
            // The sources are walked while the passphrase is stretched: one waits on the
            // disk, the other on a core.
            let (walked, repo) = std::thread::scope(|scope| {
                let sources = paths.into_iter().map(Source::path).collect();
                let walker = scope.spawn(move || Walked::walk(sources));
                let repo = open_backend(&url)
                    .and_then(|backend| Repository::open(backend, provider(&cli.key, "repository")?.as_ref()));
                let walked = walker
                    .join()
                    .unwrap_or_else(|_| Err(VaultError::InvalidInput("walking the sources crashed".into())));
                (walked, repo)
            });
            let repo = repo?;
            let outcome = repairops_vault::backup_walked(&repo, walked?, options, &progress)?;
            progress.finish();
            for w in &outcome.warnings {
                eprintln!("warning: {w}");
            }
            if json {
                let mut v = snapshot_json(&outcome.snapshot_id, &outcome.snapshot);
                v["warnings"] = json!(outcome.warnings);
                out(&v.to_string());
            } else {
                let st = &outcome.snapshot.stats;
                out(&format!(
                    "snapshot {} saved: {} files, {} total, {} read, {} added in {:.1} s",
                    outcome.snapshot_id.short(),
                    st.files,
                    mib(st.total_bytes),
                    mib(st.read_bytes),
                    mib(st.added_bytes),
                    st.duration_ms as f64 / 1000.0
                ));
            }
        }
        Command::Snapshots => {
            let repo = Repository::open(open_backend(&url)?, provider(&cli.key, "repository")?.as_ref())?;
            let (snaps, damaged) = repo.snapshots_lenient()?;
            warn_damaged(&damaged);
            if json {
                out(&serde_json::Value::Array(snaps.iter().map(|(id, s)| snapshot_json(id, s)).collect()).to_string());
            } else {
                out(&format!(
                    "{:<10} {:<26} {:>12} {:>12}  tags",
                    "id", "time", "total", "added"
                ));
                for (id, s) in &snaps {
                    let tags: Vec<String> = s.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    out(&format!(
                        "{:<10} {:<26} {:>12} {:>12}  {}",
                        id.short(),
                        s.time.format("%Y-%m-%d %H:%M:%S UTC"),
                        mib(s.stats.total_bytes),
                        mib(s.stats.added_bytes),
                        tags.join(",")
                    ));
                }
                out(&format!("{} snapshot(s)", snaps.len()));
            }
        }
        Command::Restore { id, target, path } => {
            let repo = Repository::open(open_backend(&url)?, provider(&cli.key, "repository")?.as_ref())?;
            let (sid, snap) = repo.find_snapshot(&id)?;
            let (index, damaged) = repo.load_index_lenient()?;
            warn_damaged(&damaged);
            if target.as_os_str() == "-" {
                let path = path.ok_or_else(|| {
                    VaultError::InvalidInput("--target - needs --path naming one file or stream".into())
                })?;
                let mut stdout = std::io::stdout().lock();
                repairops_vault::restore_to_writer(&repo, &index, &snap, &path, &mut stdout)?;
                let _ = stdout.flush();
                return Ok(());
            }
            let stats = repairops_vault::restore(&repo, &index, &snap, &target, path.as_deref(), &progress)?;
            // Done means on the device, not in the page cache.
            repairops_vault::flush_tree(&target)?;
            progress.finish();
            if json {
                out(&json!({"snapshot": sid.to_hex(), "target": target, "files": stats.files, "dirs": stats.dirs, "bytes": stats.bytes}).to_string());
            } else {
                out(&format!(
                    "restored snapshot {} to {}: {} files, {} folders, {}",
                    sid.short(),
                    target.display(),
                    stats.files,
                    stats.dirs,
                    mib(stats.bytes)
                ));
            }
        }
        Command::Forget {
            keep_within_days,
            keep_tags,
            snapshot,
        } => {
            let repo = Repository::open(open_backend(&url)?, provider(&cli.key, "repository")?.as_ref())?;
            let removed = if let Some(days) = keep_within_days {
                let policy = ForgetPolicy {
                    keep_within_days: days,
                    keep_tags,
                    now: chrono::Utc::now(),
                };
                repairops_vault::forget(&repo, &policy, &progress)?
            } else {
                // By name alone: a damaged snapshot can be forgotten too. One that is
                // not there is still an error (a mistyped id must not pass in silence).
                let ids = snapshot
                    .iter()
                    .map(|s| {
                        let id = repo.snapshot_id(s)?;
                        match repo
                            .backend()
                            .size(&repairops_vault::format::FileType::Snapshot.path(&id))?
                        {
                            Some(_) => Ok(id),
                            None => Err(VaultError::NotFound {
                                what: "snapshot",
                                name: s.clone(),
                            }),
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let _lock = repo.lock(false, "forget")?;
                repairops_vault::forget_ids(&repo, &ids, &progress)?;
                ids
            };
            if json {
                out(&json!({"forgotten": removed.iter().map(Id::to_hex).collect::<Vec<_>>()}).to_string());
            } else {
                out(&format!(
                    "forgot {} snapshot(s); run prune to free their space",
                    removed.len()
                ));
            }
        }
        Command::Prune => {
            let repo = Repository::open(open_backend(&url)?, provider(&cli.key, "repository")?.as_ref())?;
            let stats = repairops_vault::prune(&repo, &progress)?;
            progress.finish();
            if json {
                out(&json!(stats).to_string());
            } else {
                out(&format!(
                    "pruned: {} packs deleted, {} repacked, {} unindexed removed, {} kept, {} freed",
                    stats.packs_deleted,
                    stats.packs_repacked,
                    stats.unindexed_packs_deleted,
                    stats.packs_kept,
                    mib(stats.bytes_freed)
                ));
            }
        }
        Command::Check { read_data } => {
            let repo = Repository::open(open_backend(&url)?, provider(&cli.key, "repository")?.as_ref())?;
            let report = repairops_vault::check(&repo, read_data, &progress)?;
            progress.finish();
            if json {
                out(&json!(report).to_string());
            } else {
                for w in &report.warnings {
                    out(&format!("warning: {w}"));
                }
                for p in &report.problems {
                    out(&format!("damaged: {p}"));
                }
                out(&format!(
                    "{} snapshots, {} packs, {} blobs{}: {}",
                    report.snapshots,
                    report.packs,
                    report.blobs,
                    if read_data {
                        format!(", {} verified", mib(report.bytes_verified))
                    } else {
                        String::new()
                    },
                    if report.is_ok() {
                        "no problems found"
                    } else {
                        "PROBLEMS FOUND"
                    }
                ));
            }
            if !report.is_ok() {
                return Err(VaultError::CheckFailed {
                    problems: report.problems,
                });
            }
        }
        Command::Copy {
            to,
            to_key_file,
            to_password_env,
        } => {
            let src = Repository::open(open_backend(&url)?, provider(&cli.key, "repository")?.as_ref())?;
            let dst_key = load_provider(to_key_file.as_deref(), to_password_env.as_deref(), "destination", false)?;
            let dst = Repository::open(open_backend(&to)?, dst_key.as_ref())?;
            let outcome = repairops_vault::copy(&src, &dst, None, &progress)?;
            progress.finish();
            if json {
                out(&json!({
                    "copied": outcome.copied.iter().map(|(s, d)| json!({"source": s.to_hex(), "copy": d.to_hex()})).collect::<Vec<_>>(),
                    "already_present": outcome.already_present,
                    "blobs_added": outcome.blobs_added,
                    "bytes_added": outcome.bytes_added,
                })
                .to_string());
            } else {
                out(&format!(
                    "copied {} snapshot(s) ({} already there), {} added",
                    outcome.copied.len(),
                    outcome.already_present,
                    mib(outcome.bytes_added)
                ));
            }
        }
        Command::Key {
            command: KeyCommand::Rotate {
                new_key_file,
                new_password_env,
            },
        } => {
            let mut repo = Repository::open(open_backend(&url)?, provider(&cli.key, "repository")?.as_ref())?;
            let old = repo.key_id();
            let new_id = match (
                new_key_file,
                new_password_env,
                cli.key.key_file.as_deref(),
                cli.key.key_keyring.as_deref(),
            ) {
                (Some(path), _, _, _) => {
                    if path.exists() {
                        return Err(VaultError::InvalidInput(format!(
                            "{} exists; give a new file for the new key",
                            path.display()
                        )));
                    }
                    let key = MasterKey::generate();
                    write_secret_file(&path, &key.to_key_file())?;
                    repo.rotate_key(&key)?
                }
                (None, Some(var), _, _) => repo.rotate_key(load_provider(None, Some(&var), "new", false)?.as_ref())?,
                (None, None, Some(current), _) => {
                    // New key beside the old file first; the old key object goes only
                    // once the new key file is in place.
                    let key = MasterKey::generate();
                    let new_id = repo.add_key(&key)?;
                    write_secret_file(current, &key.to_key_file())?;
                    repo.backend().delete(&format!("keys/{}", old.to_hex()))?;
                    new_id
                }
                (None, None, None, Some(name)) => {
                    // The same order with the key in the credential store: the old key
                    // object goes once the store holds the new key.
                    let key = MasterKey::generate();
                    let new_id = repo.add_key(&key)?;
                    store_in_keyring(name, &key)?;
                    repo.backend().delete(&format!("keys/{}", old.to_hex()))?;
                    new_id
                }
                (None, None, None, None) => {
                    return Err(VaultError::InvalidInput(
                        "give the new key with --new-key-file FILE or --new-password-env VAR".into(),
                    ));
                }
            };
            if json {
                out(&json!({"old_key": old.to_hex(), "new_key": new_id.to_hex()}).to_string());
            } else {
                out(&format!(
                    "master key rotated: key {} replaced by {}; no data was rewritten",
                    old.short(),
                    new_id.short()
                ));
            }
        }
    }
    Ok(())
}
