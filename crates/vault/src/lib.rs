//! repairops-vault: an encrypted, deduplicated snapshot repository.
//!
//! A [`Repository`] lives on a [`Backend`] (a local folder or an S3-compatible bucket,
//! chosen by a [`Location`] URL). [`backup`] cuts folders, files and named streams into
//! content-defined chunks, stores each new chunk once (compressed where it pays, sealed
//! with AES-256-GCM) in packs, and records a [`Snapshot`]. [`restore`] brings a snapshot
//! (or one file of it) back, verifying every byte. [`forget`], [`prune`], [`check`] and
//! [`copy`] keep repositories small, sound and replicated. The on-storage format is
//! specified in `docs/vault-format.md`.
//!
//! The library is synchronous and never prints: storage and progress are injected, time
//! is passed in.
//!
//! ```
//! use std::sync::Arc;
//! use repairops_vault::{backup, restore, BackupOptions, Location, MasterKey, NoProgress, Repository, Source};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("settings.json"), b"{\"tz\":\"Europe/Paris\"}")?;
//! let backend = Arc::new(Location::parse(&dir.path().join("repo").to_string_lossy(), None)?.open()?);
//! let key = MasterKey::generate();
//! let repo = Repository::init(backend, &key, Default::default())?;
//! let done = backup(&repo, vec![Source::path(dir.path().join("settings.json"))], BackupOptions::default(), &NoProgress)?;
//! let index = repo.load_index()?;
//! restore(&repo, &index, &done.snapshot, &dir.path().join("out"), None, &NoProgress)?;
//! assert_eq!(std::fs::read(dir.path().join("out/settings.json"))?, b"{\"tz\":\"Europe/Paris\"}");
//! # Ok(()) }
//! ```

pub mod backend;
mod backup;
pub mod crypto;
pub mod error;
pub mod format;
mod id;
mod maintenance;
mod pack;
pub mod progress;
mod repository;
mod restore;

pub use backend::{Backend, Location, ObjectInfo, OpendalBackend, S3Settings};
pub use backup::{BackupOptions, BackupOutcome, Source, Walked, backup, backup_walked};
pub use crypto::{KeyProvider, MasterKey, Passphrase};
pub use error::{Result, VaultError};
pub use format::{Node, NodeKind, Snapshot, SnapshotStats};
pub use id::{Id, ParseIdError};
pub use maintenance::{CheckReport, CopyOutcome, ForgetPolicy, PruneStats, check, copy, forget, forget_ids, prune};
pub use progress::{NoProgress, Progress, ProgressEvent};
pub use repository::{Index, InitOptions, Lock, Repository, Snapshots, hostname};
pub use restore::{RestoreStats, flush_tree, restore, restore_except, restore_to_writer};
