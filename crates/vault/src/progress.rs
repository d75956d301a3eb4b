//! Progress reporting, injected by the caller.
//!
//! The library never prints. A caller passes a [`Progress`]: the CLI plugs in a terminal
//! bar or JSON lines, the server its job table and event stream, tests a recorder that
//! can stop the process at a chosen point. [`NoProgress`] ignores everything.

/// Something worth telling the caller about as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent {
    /// A pack was stored (`count` packs stored so far in this operation).
    PackWritten { pack: String, count: u64 },
    /// An index object was stored.
    IndexWritten { index: String },
    /// A snapshot object was stored: the operation's result is now durable.
    SnapshotWritten { snapshot: String },
    /// A file or stream was finished (backup, restore or copy).
    FileDone { path: String },
    /// An object was deleted (forget, prune).
    Deleted { object: String },
}

/// Receives progress of a long operation. Methods are called from worker threads.
pub trait Progress: Send + Sync {
    /// A new phase starts (`"backup"`, `"restore"`, `"check"`, ...); `total` is the
    /// number of bytes it will process when known.
    fn phase(&self, _name: &str, _total: Option<u64>) {}
    /// `bytes` more bytes were processed in the current phase.
    fn advance(&self, _bytes: u64) {}
    /// Something happened.
    fn event(&self, _event: &ProgressEvent) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}
