//! Backing up folders, files and named streams into a snapshot.
//!
//! The pipeline, on as many threads as there are cores:
//! - the sources are walked (metadata only) while the repository is locked and its
//!   index loaded, or, from the CLI, while the passphrase is stretched ([`Walked`]);
//! - reader threads cut changed files into chunks (FastCDC seeded from the repository
//!   key, or fixed blocks for SQLite databases), hash each chunk and skip those the
//!   repository (or this backup) already has;
//! - workers compress and seal new chunks;
//! - a packer groups sealed blobs into packs and an uploader stores them.
//!
//! Files whose size, modification time, change time and inode match the previous
//! snapshot of the same sources are not read again. Write order is packs, then one
//! index object, then the snapshot: a crash at any point leaves a repository whose
//! snapshots all restore, plus at most some packs no index lists (prune removes them).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use fastcdc::v2020::{Normalization, StreamCDC};

use crate::error::{Result, VaultError};
use crate::format::{FORMAT_VERSION, IndexedPack, Node, NodeKind, Snapshot, SnapshotStats};
use crate::id::Id;
use crate::pack::{Compressor, FinishedPack, PackWriter, SealedBlob};
use crate::progress::{Progress, ProgressEvent};
use crate::repository::{Index, Repository};

/// Something to back up.
pub enum Source {
    /// A folder or file, stored under its base name or under `name` when given.
    Path { path: PathBuf, name: Option<String> },
    /// Bytes from a reader, stored under `name`.
    Stream { name: String, reader: Box<dyn Read + Send> },
}

impl Source {
    pub fn path(path: impl Into<PathBuf>) -> Source {
        Source::Path {
            path: path.into(),
            name: None,
        }
    }

    pub fn named_path(path: impl Into<PathBuf>, name: impl Into<String>) -> Source {
        Source::Path {
            path: path.into(),
            name: Some(name.into()),
        }
    }

    pub fn stream(name: impl Into<String>, reader: impl Read + Send + 'static) -> Source {
        Source::Stream {
            name: name.into(),
            reader: Box::new(reader),
        }
    }
}

/// How a backup is labelled.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    pub tags: BTreeMap<String, String>,
    /// Caller data kept with the snapshot (the server's data summary).
    pub summary: serde_json::Value,
    /// The snapshot's time; the caller passes it in so tests control the clock.
    pub time: DateTime<Utc>,
    /// Snapshot whose unchanged files are reused; `None` picks the latest snapshot from
    /// this host that shares a source with this one. Reuse is safe with any parent: a
    /// file is reused only when its path, size, times, inode and mode all match.
    pub parent: Option<Id>,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            tags: BTreeMap::new(),
            summary: serde_json::Value::Null,
            time: Utc::now(),
            parent: None,
        }
    }
}

/// What a backup did.
#[derive(Debug, Clone)]
pub struct BackupOutcome {
    pub snapshot_id: Id,
    pub snapshot: Snapshot,
    /// Files that vanished or could not be read as regular files while backing up.
    pub warnings: Vec<String>,
}

/// One thing the walk found, before its content is read.
struct Entry {
    node: Node,
    fs_path: Option<PathBuf>,
}

/// Checks a top-level name (a snapshot's first path component).
fn check_top_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(VaultError::InvalidInput(format!(
            "{name:?} cannot name a backup source: it must be a plain name without '/'"
        )));
    }
    Ok(())
}

#[cfg(unix)]
fn path_text(p: &Path) -> (String, Option<String>) {
    use std::os::unix::ffi::OsStrExt;
    match p.to_str() {
        Some(s) => (s.to_string(), None),
        None => (
            p.to_string_lossy().into_owned(),
            Some(hex::encode(p.as_os_str().as_bytes())),
        ),
    }
}

#[cfg(not(unix))]
fn path_text(p: &Path) -> (String, Option<String>) {
    (p.to_string_lossy().replace('\\', "/"), None)
}

fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_nanos() as i64)
                .or_else(|| {
                    std::time::UNIX_EPOCH
                        .duration_since(t)
                        .ok()
                        .map(|d| -(d.as_nanos() as i64))
                })
        })
        .unwrap_or(0)
}

#[cfg(unix)]
fn unix_meta(meta: &std::fs::Metadata) -> (u32, u64, i64) {
    use std::os::unix::fs::MetadataExt;
    (
        meta.mode() & 0o7777,
        meta.ino(),
        meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
    )
}

#[cfg(not(unix))]
fn unix_meta(meta: &std::fs::Metadata) -> (u32, u64, i64) {
    (if meta.permissions().readonly() { 0o444 } else { 0o644 }, 0, 0)
}

fn node_for(rel: &Path, meta: &std::fs::Metadata, kind: NodeKind) -> Node {
    let (path, path_hex) = path_text(rel);
    let (mode, inode, ctime_ns) = unix_meta(meta);
    Node {
        path,
        path_hex,
        kind,
        mode,
        mtime_ns: mtime_ns(meta),
        size: if kind == NodeKind::File { meta.len() } else { 0 },
        inode,
        ctime_ns,
        blobs: Vec::new(),
        target: None,
    }
}

/// Walks a folder (or takes a file), in name order, without following symlinks.
fn walk(fs_path: &Path, rel: &Path, out: &mut Vec<Entry>, warnings: &mut Vec<String>) -> Result<()> {
    let meta = std::fs::symlink_metadata(fs_path).map_err(|e| VaultError::io("read", fs_path, e))?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = std::fs::read_link(fs_path).map_err(|e| VaultError::io("read link", fs_path, e))?;
        let mut node = node_for(rel, &meta, NodeKind::Symlink);
        node.target = Some(target.to_string_lossy().into_owned());
        out.push(Entry { node, fs_path: None });
    } else if ft.is_file() {
        out.push(Entry {
            node: node_for(rel, &meta, NodeKind::File),
            fs_path: Some(fs_path.to_path_buf()),
        });
    } else if ft.is_dir() {
        out.push(Entry {
            node: node_for(rel, &meta, NodeKind::Dir),
            fs_path: None,
        });
        let mut children: Vec<_> = std::fs::read_dir(fs_path)
            .map_err(|e| VaultError::io("list", fs_path, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        children.sort();
        for name in children {
            walk(&fs_path.join(&name), &rel.join(&name), out, warnings)?;
        }
    } else {
        warnings.push(format!("skipped {} (not a file, folder or symlink)", fs_path.display()));
    }
    Ok(())
}

/// Packs stored by a backup, and the sealed bytes they hold.
type Uploaded = (Vec<IndexedPack>, u64);

/// A chunk the repository lacks, on its way to a worker.
struct NewChunk {
    id: Id,
    data: Vec<u8>,
    /// Cut from a SQLite database: its pages compress, so the probe is skipped.
    compressible: bool,
}

/// Sends sealed blobs through workers to the packer; collects the packs stored.
struct Pipeline<'scope> {
    chunks: Option<SyncSender<NewChunk>>,
    handles: Vec<std::thread::ScopedJoinHandle<'scope, Result<()>>>,
    uploader: Option<std::thread::ScopedJoinHandle<'scope, Result<Uploaded>>>,
}

impl<'scope> Pipeline<'scope> {
    fn start<'env>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        repo: &'env Repository,
        progress: &'env dyn Progress,
        lock: &'env crate::repository::Lock,
    ) -> Pipeline<'scope> {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
        let (chunk_tx, chunk_rx) = sync_channel::<NewChunk>(workers * 2);
        let chunk_rx = Arc::new(Mutex::new(chunk_rx));
        let (sealed_tx, sealed_rx) = sync_channel::<SealedBlob>(workers * 2);
        let (pack_tx, pack_rx) = sync_channel::<FinishedPack>(1);
        let mut handles = Vec::new();
        let level = repo.config().compression_level;
        for _ in 0..workers {
            let rx = chunk_rx.clone();
            let tx = sealed_tx.clone();
            handles.push(scope.spawn(move || {
                let mut compressor = Compressor::new(level);
                loop {
                    let next = rx
                        .lock()
                        .map_err(|_| VaultError::InvalidInput("worker poisoned".into()))?
                        .recv();
                    let Ok(chunk) = next else { return Ok(()) };
                    let sealed = if chunk.compressible {
                        compressor.seal_compressible(repo.keys(), chunk.id, &chunk.data)
                    } else {
                        compressor.seal(repo.keys(), chunk.id, &chunk.data)
                    };
                    if tx.send(sealed).is_err() {
                        return Ok(());
                    }
                }
            }));
        }
        drop(sealed_tx);
        handles.push(scope.spawn(move || packer(repo, sealed_rx, pack_tx)));
        let uploader = scope.spawn(move || uploader(repo, pack_rx, progress, lock));
        Pipeline {
            chunks: Some(chunk_tx),
            handles,
            uploader: Some(uploader),
        }
    }

    /// Queues a new chunk; `false` when the pipeline has stopped (an error follows from `finish`).
    fn send(&self, chunk: NewChunk) -> bool {
        self.chunks.as_ref().is_some_and(|tx| tx.send(chunk).is_ok())
    }

    fn finish(mut self) -> Result<Uploaded> {
        self.chunks.take();
        let mut first_err = None;
        for h in self.handles.drain(..) {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(VaultError::InvalidInput("a backup worker crashed".into()));
                }
            }
        }
        let uploaded = match self.uploader.take().map(|h| h.join()) {
            Some(Ok(r)) => r,
            _ => Err(VaultError::InvalidInput("the backup uploader crashed".into())),
        };
        match (uploaded, first_err) {
            (Err(e), _) => Err(e),
            (Ok(_), Some(e)) => Err(e),
            (Ok(packs), None) => Ok(packs),
        }
    }
}

fn packer(repo: &Repository, sealed: Receiver<SealedBlob>, packs: SyncSender<FinishedPack>) -> Result<()> {
    let mut writer = PackWriter::new(repo.config().pack_size);
    for blob in sealed {
        if let Some(p) = writer.add(repo.keys(), blob)
            && packs.send(p).is_err()
        {
            return Ok(());
        }
    }
    if let Some(p) = writer.finish(repo.keys()) {
        let _ = packs.send(p);
    }
    Ok(())
}

fn uploader(
    repo: &Repository,
    packs: Receiver<FinishedPack>,
    progress: &dyn Progress,
    lock: &crate::repository::Lock,
) -> Result<Uploaded> {
    let mut stored = Vec::new();
    let mut bytes = 0;
    for pack in packs {
        let path = pack.path();
        let entry = repo.store_pack(pack)?;
        bytes += entry.blobs.iter().map(|b| u64::from(b.length)).sum::<u64>();
        stored.push(entry);
        progress.event(&ProgressEvent::PackWritten {
            pack: path,
            count: stored.len() as u64,
        });
        repo.refresh_lock(lock)?;
    }
    Ok((stored, bytes))
}

/// Chunks readers, queueing chunks the repository lacks. Shared by the reader threads.
struct Chunking<'a> {
    repo: &'a Repository,
    known: Mutex<HashSet<Id>>,
    added_blobs: AtomicU64,
    lock: &'a crate::repository::Lock,
    progress: &'a dyn Progress,
}

impl Chunking<'_> {
    /// Returns the blob ids of `reader`'s content in order, and the bytes read.
    ///
    /// `layout` picks the cutting: content-defined (FastCDC, seeded from the key) for
    /// anything, or fixed blocks of the average chunk size for SQLite databases, which
    /// change pages in place and never shift: their blocks line up with pages, and no
    /// time goes into searching for cut points.
    fn chunk(&self, reader: impl Read, pipeline: &Pipeline<'_>, what: &str, layout: Layout) -> Result<(Vec<Id>, u64)> {
        // Reading a large file that stores nothing new must still keep the lock fresh.
        self.repo.refresh_lock(self.lock)?;
        let c = self.repo.config().chunker;
        let mut ids = Vec::new();
        let mut total = 0u64;
        let mut emit = |data: Vec<u8>| -> bool {
            let id = self.repo.keys().blob_id(&data);
            total += data.len() as u64;
            self.progress.advance(data.len() as u64);
            ids.push(id);
            let new = self.known.lock().map(|mut k| k.insert(id)).unwrap_or(false);
            if new {
                self.added_blobs.fetch_add(1, Ordering::Relaxed);
                // A stopped pipeline means an error that `finish` reports.
                return pipeline.send(NewChunk {
                    id,
                    data,
                    compressible: layout == Layout::FixedBlocks,
                });
            }
            true
        };
        let read_err = |e: std::io::Error| VaultError::io("read", what, e);
        match layout {
            Layout::ContentDefined => {
                let cdc = StreamCDC::with_level_and_seed(
                    reader,
                    c.min_size as usize,
                    c.avg_size as usize,
                    c.max_size as usize,
                    Normalization::Level1,
                    self.repo.keys().chunker_seed(),
                );
                for chunk in cdc {
                    let chunk = chunk.map_err(|e| read_err(std::io::Error::from(e)))?;
                    if !emit(chunk.data) {
                        break;
                    }
                }
            }
            Layout::FixedBlocks => {
                let mut reader = reader;
                loop {
                    let mut block = Vec::with_capacity(c.avg_size as usize);
                    (&mut reader)
                        .take(u64::from(c.avg_size))
                        .read_to_end(&mut block)
                        .map_err(read_err)?;
                    if block.is_empty() || !emit(block) {
                        break;
                    }
                }
            }
        }
        Ok((ids, total))
    }
}

/// How a file is cut into chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    ContentDefined,
    FixedBlocks,
}

/// SQLite databases are cut in fixed blocks (see [`Chunking::chunk`]).
fn layout_of(path: &Path, size: u64) -> Layout {
    const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";
    if size < 1024 * 1024 {
        return Layout::ContentDefined;
    }
    let mut head = [0u8; 16];
    let is_sqlite = std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == SQLITE_MAGIC;
    if is_sqlite {
        Layout::FixedBlocks
    } else {
        Layout::ContentDefined
    }
}

/// What reading one file gave.
enum FileRead {
    Chunked { blobs: Vec<Id>, size: u64 },
    Vanished,
}

/// Files are cut into segments of this size that are chunked independently (a chunk
/// boundary is forced at every segment start), so one large file, such as a shop's
/// database, is read and hashed by all the reader threads at once. In-place changes
/// (what databases do) are unaffected; an insertion shifts at most one extra chunk per
/// segment.
const SEGMENT: u64 = 16 * 1024 * 1024;

/// One segment of a file to read: (entry slot, path, segment number, is last).
struct Work<'a> {
    slot: usize,
    path: &'a Path,
    layout: Layout,
    segment: u64,
    last: bool,
}

/// Reads and chunks the files that changed, on several threads: one thread cannot cut
/// and hash as fast as the others compress and seal, and photos need little sealing.
fn read_files(
    chunking: &Chunking<'_>,
    pipeline: &Pipeline<'_>,
    files: &[(usize, PathBuf, u64)],
) -> Result<HashMap<usize, FileRead>> {
    let mut work = Vec::new();
    for (slot, path, size) in files {
        let segments = size.div_ceil(SEGMENT).max(1);
        let layout = layout_of(path, *size);
        for segment in 0..segments {
            work.push(Work {
                slot: *slot,
                path,
                layout,
                segment,
                last: segment + 1 == segments,
            });
        }
    }
    let next = AtomicUsize::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let readers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 4);
    // (slot, segment) -> blobs and bytes, or None when the file vanished.
    type Done = Vec<((usize, u64), Option<(Vec<Id>, u64)>)>;
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..readers)
            .map(|_| {
                scope.spawn(|| -> Result<Done> {
                    let mut done = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let Some(w) = work.get(next.fetch_add(1, Ordering::Relaxed)) else {
                            break;
                        };
                        let read = read_segment(chunking, pipeline, w);
                        match read {
                            Ok(r) => done.push(((w.slot, w.segment), r)),
                            Err(e) => {
                                stop.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                    }
                    Ok(done)
                })
            })
            .collect();
        let mut out = HashMap::with_capacity(work.len());
        let mut first_err = None;
        for h in handles {
            match h.join() {
                Ok(Ok(done)) => out.extend(done),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(VaultError::InvalidInput("a backup reader crashed".into()));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    })?;
    // Put each file's segments back in order.
    let mut out = HashMap::with_capacity(files.len());
    for (slot, _, size) in files {
        let segments = size.div_ceil(SEGMENT).max(1);
        let mut blobs = Vec::new();
        let mut total = 0;
        let mut vanished = false;
        for segment in 0..segments {
            match results.get(&(*slot, segment)) {
                Some(Some((ids, n))) => {
                    blobs.extend_from_slice(ids);
                    total += n;
                }
                _ => vanished = true,
            }
        }
        out.insert(
            *slot,
            if vanished {
                FileRead::Vanished
            } else {
                FileRead::Chunked { blobs, size: total }
            },
        );
    }
    Ok(out)
}

/// Reads one segment; `None` when the file is gone.
fn read_segment(chunking: &Chunking<'_>, pipeline: &Pipeline<'_>, w: &Work<'_>) -> Result<Option<(Vec<Id>, u64)>> {
    use std::io::{Seek, SeekFrom};
    let mut file = match std::fs::File::open(w.path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(VaultError::io("read", w.path, e)),
    };
    let what = w.path.to_string_lossy();
    if w.segment > 0 {
        file.seek(SeekFrom::Start(w.segment * SEGMENT))
            .map_err(|e| VaultError::io("read", w.path, e))?;
    }
    // The last segment reads to the end, so a file that grew since the walk is whole.
    let result = if w.last {
        chunking.chunk(file, pipeline, &what, w.layout)
    } else {
        chunking.chunk(file.take(SEGMENT), pipeline, &what, w.layout)
    };
    result.map(Some)
}

/// The previous snapshot's nodes by path, for skipping unchanged files.
fn parent_nodes(repo: &Repository, index: &Index, parent: Option<&Snapshot>) -> HashMap<Vec<u8>, Node> {
    let Some(parent) = parent else { return HashMap::new() };
    // A parent whose tree cannot be read only costs speed: every file is read again.
    repo.read_tree(index, parent)
        .map(|nodes| {
            nodes
                .into_iter()
                .filter(|n| n.kind == NodeKind::File)
                .filter_map(|n| Some((n.path_bytes()?, n)))
                .collect()
        })
        .unwrap_or_default()
}

fn unchanged(old: &Node, new: &Node, index: &Index) -> bool {
    old.size == new.size
        && old.mtime_ns == new.mtime_ns
        && old.ctime_ns == new.ctime_ns
        && old.inode == new.inode
        && old.mode == new.mode
        && (old.size == 0 || !old.blobs.is_empty())
        && old.blobs.iter().all(|b| index.contains(b))
}

/// The sources of a backup, walked: every folder, file and symlink with its metadata,
/// before any content is read.
///
/// Walking needs no key and no repository, so it can run while the repository opens:
/// on a cold cache, stat-ing a shop's few thousand files takes about as long as
/// stretching the passphrase, and the two overlap (see [`backup_walked`]). The snapshot
/// holds the files as the walk found them: one changed after the walk keeps the
/// metadata the walk saw, so the next backup reads it again.
pub struct Walked {
    entries: Vec<Entry>,
    streams: Vec<(String, Box<dyn Read + Send>)>,
    /// What the snapshot records as its sources: absolute paths and `stream:NAME`.
    paths: Vec<String>,
    warnings: Vec<String>,
    took: std::time::Duration,
}

impl Walked {
    /// Walks `sources`. Names must be unique: each source is stored under its own.
    pub fn walk(sources: Vec<Source>) -> Result<Walked> {
        let started = Instant::now();
        if sources.is_empty() {
            return Err(VaultError::InvalidInput(
                "nothing to back up: give at least one path or stream".into(),
            ));
        }
        let mut warnings = Vec::new();
        let mut entries: Vec<Entry> = Vec::new();
        let mut streams: Vec<(String, Box<dyn Read + Send>)> = Vec::new();
        let mut paths = Vec::new();
        let mut top_names = HashSet::new();
        for source in sources {
            match source {
                Source::Path { path, name } => {
                    let abs = std::path::absolute(&path).map_err(|e| VaultError::io("resolve", &path, e))?;
                    let top = match name {
                        Some(n) => n,
                        None => abs
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .ok_or_else(|| {
                                VaultError::InvalidInput(format!("{} has no name to store it under", path.display()))
                            })?,
                    };
                    check_top_name(&top)?;
                    if !top_names.insert(top.clone()) {
                        return Err(VaultError::InvalidInput(format!(
                            "two sources would both be stored as {top:?}"
                        )));
                    }
                    paths.push(path_text(&abs).0);
                    walk(&abs, Path::new(&top), &mut entries, &mut warnings)?;
                }
                Source::Stream { name, reader } => {
                    check_top_name(&name)?;
                    if !top_names.insert(name.clone()) {
                        return Err(VaultError::InvalidInput(format!(
                            "two sources would both be stored as {name:?}"
                        )));
                    }
                    paths.push(format!("stream:{name}"));
                    streams.push((name, reader));
                }
            }
        }
        Ok(Walked {
            entries,
            streams,
            paths,
            warnings,
            took: started.elapsed(),
        })
    }
}

/// Backs `sources` up into a new snapshot.
///
/// The sources are walked on a second thread while the repository is locked and its
/// index loaded: both wait on storage, so neither waits for the other.
pub fn backup(
    repo: &Repository,
    sources: Vec<Source>,
    options: BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupOutcome> {
    let started = Instant::now();
    let (walked, opened) = std::thread::scope(|scope| {
        let walker = scope.spawn(move || Walked::walk(sources));
        let opened = open_for_backup(repo);
        let walked = walker
            .join()
            .unwrap_or_else(|_| Err(VaultError::InvalidInput("walking the sources crashed".into())));
        (walked, opened)
    });
    let mut walked = walked?;
    walked.took = started.elapsed();
    store(repo, walked, opened?, options, progress)
}

/// Backs up sources walked earlier (see [`Walked`]), typically while `repo` was opening.
pub fn backup_walked(
    repo: &Repository,
    walked: Walked,
    options: BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupOutcome> {
    let opened = open_for_backup(repo)?;
    store(repo, walked, opened, options, progress)
}

/// Takes the shared lock and loads the index, in that order: prune must not delete
/// packs between the index being read and the snapshot being written.
fn open_for_backup(repo: &Repository) -> Result<(crate::repository::Lock, Index)> {
    let lock = repo.lock(false, "backup")?;
    // A damaged index object only costs dedup: its blobs are stored again.
    let (index, _damaged) = repo.load_index_lenient()?;
    Ok((lock, index))
}

/// How deep a snapshot's summary may nest: the snapshot object around it adds levels,
/// and its reader stops at 128 (serde_json's limit), which a summary of 127 passed.
const MAX_SUMMARY_NESTING: usize = 64;

/// How many arrays and objects deep a JSON value goes (without recursing).
fn nesting(value: &serde_json::Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        match v {
            serde_json::Value::Array(items) => stack.extend(items.iter().map(|i| (i, depth + 1))),
            serde_json::Value::Object(map) => stack.extend(map.values().map(|i| (i, depth + 1))),
            _ => {}
        }
    }
    deepest
}

/// Reads what changed, stores it, then writes the index and the snapshot.
fn store(
    repo: &Repository,
    walked: Walked,
    (lock, index): (crate::repository::Lock, Index),
    options: BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupOutcome> {
    if nesting(&options.summary) > MAX_SUMMARY_NESTING {
        return Err(VaultError::InvalidInput(format!(
            "the summary nests more than {MAX_SUMMARY_NESTING} levels deep; a snapshot holding it could not be read back"
        )));
    }
    let started = Instant::now();
    let Walked {
        mut entries,
        streams,
        paths,
        mut warnings,
        took: walk_took,
    } = walked;
    let parent = match options.parent {
        Some(id) => Some(repo.read_snapshot(&id)?),
        None => {
            let host = crate::repository::hostname();
            repo.snapshots_lenient()?
                .0
                .into_iter()
                .rev()
                .find(|(_, s)| s.hostname == host && s.paths.iter().any(|p| paths.contains(p)))
                .map(|(_, s)| s)
        }
    };
    let parent_nodes = parent_nodes(repo, &index, parent.as_ref());

    let total: u64 = entries.iter().map(|e| e.node.size).sum();
    progress.phase("backup", Some(total));

    let mut stats = SnapshotStats::default();
    let chunking = Chunking {
        repo,
        known: Mutex::new(index.blobs.keys().copied().collect()),
        added_blobs: AtomicU64::new(0),
        lock: &lock,
        progress,
    };
    let mut nodes: Vec<Node> = Vec::with_capacity(entries.len() + streams.len());

    let (tree, (packs, added_bytes)) = std::thread::scope(|scope| -> Result<_> {
        let pipeline = Pipeline::start(scope, repo, progress, &lock);
        let body = (|| -> Result<Vec<Id>> {
            // Unchanged files take their blobs from the parent; the rest are read.
            let mut to_read = Vec::new();
            for (i, entry) in entries.iter_mut().enumerate() {
                let Some(fs_path) = &entry.fs_path else { continue };
                let old = entry.node.path_bytes().and_then(|p| parent_nodes.get(&p));
                if let Some(old) = old.filter(|old| unchanged(old, &entry.node, &index)) {
                    entry.node.blobs = old.blobs.clone();
                    progress.advance(entry.node.size);
                } else {
                    to_read.push((i, fs_path.clone(), entry.node.size));
                }
            }
            let mut read = read_files(&chunking, &pipeline, &to_read)?;
            for (i, Entry { mut node, fs_path }) in entries.into_iter().enumerate() {
                match read.remove(&i) {
                    Some(FileRead::Chunked { blobs, size }) => {
                        node.blobs = blobs;
                        node.size = size;
                        stats.read_bytes += size;
                    }
                    Some(FileRead::Vanished) => {
                        let shown = fs_path.as_deref().map(|p| p.display().to_string()).unwrap_or_default();
                        warnings.push(format!("{shown} vanished during the backup"));
                        continue;
                    }
                    None => {}
                }
                match node.kind {
                    NodeKind::Dir => stats.dirs += 1,
                    NodeKind::File => stats.files += 1,
                    _ => {}
                }
                if fs_path.is_some() {
                    progress.event(&ProgressEvent::FileDone {
                        path: node.path.clone(),
                    });
                }
                stats.total_bytes += node.size;
                nodes.push(node);
            }
            for (name, reader) in streams {
                let (ids, read) =
                    chunking.chunk(reader, &pipeline, &format!("stream {name}"), Layout::ContentDefined)?;
                stats.files += 1;
                stats.total_bytes += read;
                stats.read_bytes += read;
                nodes.push(Node {
                    path: name.clone(),
                    path_hex: None,
                    kind: NodeKind::Stream,
                    mode: 0o600,
                    mtime_ns: options.time.timestamp_nanos_opt().unwrap_or(0),
                    size: read,
                    inode: 0,
                    ctime_ns: 0,
                    blobs: ids,
                    target: None,
                });
                progress.event(&ProgressEvent::FileDone { path: name });
            }
            let mut tree_bytes = Vec::new();
            for node in &nodes {
                serde_json::to_writer(&mut tree_bytes, node).expect("nodes serialize");
                tree_bytes.push(b'\n');
            }
            let (tree, _) = chunking.chunk(
                tree_bytes.as_slice(),
                &pipeline,
                "snapshot tree",
                Layout::ContentDefined,
            )?;
            Ok(tree)
        })();
        let packs = pipeline.finish();
        let tree = body?;
        Ok((tree, packs?))
    })?;

    // Packs are stored; now the index that lists them, then the snapshot.
    if !packs.is_empty() {
        let index_id = repo.write_index(packs)?;
        progress.event(&ProgressEvent::IndexWritten {
            index: index_id.to_hex(),
        });
    }
    stats.added_blobs = chunking.added_blobs.load(Ordering::Relaxed);
    stats.added_bytes = added_bytes;
    stats.duration_ms = (walk_took + started.elapsed()).as_millis() as u64;
    let snapshot = Snapshot {
        version: FORMAT_VERSION,
        time: options.time,
        hostname: crate::repository::hostname(),
        paths,
        tags: options.tags,
        summary: options.summary,
        tree,
        stats,
        original: None,
    };
    let snapshot_id = repo.write_snapshot(&snapshot)?;
    progress.event(&ProgressEvent::SnapshotWritten {
        snapshot: snapshot_id.to_hex(),
    });
    drop(lock);
    Ok(BackupOutcome {
        snapshot_id,
        snapshot,
        warnings,
    })
}
