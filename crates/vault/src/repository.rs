//! Opening and initialising a repository, its keys, index, snapshots and locks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::backend::Backend;
use crate::crypto::{DataKeys, KeyProvider, MasterKey};
use crate::error::{Result, VaultError};
use crate::format::{
    ChunkerParams, Config, FORMAT_VERSION, FileType, IndexFile, IndexedBlob, IndexedPack, KeyObject, LockInfo, Node,
    Snapshot, decompress, open_json, pack_header, seal_json,
};
use crate::id::Id;

/// Options of a new repository.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub chunker: ChunkerParams,
    pub pack_size: u32,
    pub compression_level: i32,
}

impl InitOptions {
    /// Whether a repository can be made with these settings, said as the command line's
    /// options are named.
    pub fn validate(&self) -> Result<()> {
        if !(1024 * 1024..=256 * 1024 * 1024).contains(&self.pack_size) {
            return Err(VaultError::InvalidInput(
                "pack size must be between 1 MiB and 256 MiB".into(),
            ));
        }
        if self.chunker.validate().is_err() {
            return Err(VaultError::InvalidInput(format!(
                "chunk size must be between 1 and 1024 KiB on average (it was {} bytes)",
                self.chunker.avg_size
            )));
        }
        Ok(())
    }
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            chunker: ChunkerParams::default(),
            pack_size: 16 * 1024 * 1024,
            compression_level: 3,
        }
    }
}

/// An opened repository: storage plus the keys that read it.
pub struct Repository {
    backend: Arc<dyn Backend>,
    keys: DataKeys,
    key_id: Id,
    config: Config,
}

/// Snapshots with their ids, oldest first.
pub type Snapshots = Vec<(Id, Snapshot)>;

/// Where a blob is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLocation {
    pub pack: Id,
    pub offset: u64,
    pub length: u32,
    pub raw_length: u32,
    pub compressed: bool,
}

/// Every blob the repository's index objects list, and the packs holding them.
#[derive(Debug, Default)]
pub struct Index {
    pub blobs: HashMap<Id, BlobLocation>,
    /// Pack id to its size and the index object that lists it.
    pub packs: HashMap<Id, (u64, Id)>,
    /// The index objects that were read.
    pub files: Vec<Id>,
}

impl Index {
    pub fn contains(&self, id: &Id) -> bool {
        self.blobs.contains_key(id)
    }

    pub(crate) fn add_pack(&mut self, pack: &IndexedPack, index_file: Id) {
        self.packs.insert(pack.id, (pack.size, index_file));
        for b in &pack.blobs {
            self.blobs.entry(b.id).or_insert(BlobLocation {
                pack: pack.id,
                offset: b.offset,
                length: b.length,
                raw_length: b.raw_length,
                compressed: b.compressed,
            });
        }
    }
}

/// Largest plaintext blob accepted (the chunker's hard maximum is 16 MiB).
pub(crate) const MAX_BLOB: u32 = 64 * 1024 * 1024;

/// The most a config, key or lock object can hold (a few hundred bytes in practice).
pub(crate) const MAX_SMALL_OBJECT: u64 = 1024 * 1024;
/// The most a snapshot object can hold (its tree is in packs; tags and summary are small).
pub(crate) const MAX_SNAPSHOT_OBJECT: u64 = 64 * 1024 * 1024;
/// The most an index object can hold (about 150 bytes a blob: millions of blobs).
pub(crate) const MAX_INDEX_OBJECT: u64 = 1024 * 1024 * 1024;

/// Reads an object of a kind never larger than `max` bytes. A larger one (a junk file
/// of gigabytes under a valid name) is reported as damaged without being read, so it
/// cannot exhaust memory. `known` is its size when a listing gave it (no extra request).
pub(crate) fn read_bounded(backend: &dyn Backend, path: &str, max: u64, known: Option<u64>) -> Result<Vec<u8>> {
    let size = match known {
        Some(size) => Some(size),
        None => backend.size(path)?,
    };
    match size {
        Some(size) if size > max => Err(VaultError::corrupt(
            path,
            format!("it is {size} bytes, more than an object of its kind can hold ({max}); not read"),
        )),
        _ => backend.read(path),
    }
}

impl Repository {
    /// Creates a repository at an empty location, protected by `provider`'s key.
    pub fn init(backend: Arc<dyn Backend>, provider: &dyn KeyProvider, options: InitOptions) -> Result<Repository> {
        if backend.size("config")?.is_some() {
            return Err(VaultError::AlreadyInitialized {
                location: backend.location(),
            });
        }
        options.validate()?;
        let keys = DataKeys::generate();
        let config = Config {
            version: FORMAT_VERSION,
            id: Id::random(),
            created: Utc::now(),
            chunker: options.chunker,
            pack_size: options.pack_size,
            compression_level: options.compression_level.clamp(1, 19),
        };
        let key_id = write_key(&*backend, &keys, provider)?;
        backend.write("config", seal_json(&keys, "config", &config))?;
        Ok(Repository {
            backend,
            keys,
            key_id,
            config,
        })
    }

    /// Opens a repository with a key or passphrase.
    pub fn open(backend: Arc<dyn Backend>, provider: &dyn KeyProvider) -> Result<Repository> {
        let sealed_config = match read_bounded(backend.as_ref(), "config", MAX_SMALL_OBJECT, None) {
            Ok(c) => c,
            Err(e) if e.is_not_found() => {
                return Err(VaultError::NotARepository {
                    location: backend.location(),
                });
            }
            Err(e) => return Err(e),
        };
        let key_paths = backend.list(FileType::Key.dir())?;
        // Every key object this key unlocks is tried until one opens the config: an
        // interrupted `init` can leave key objects wrapping data keys that nothing uses.
        let mut unlocked = None;
        let mut damaged = None;
        let mut config_error = None;
        for info in &key_paths {
            let Some(id) = FileType::Key.id_of(&info.path) else {
                continue;
            };
            let obj = match read_bounded(backend.as_ref(), &info.path, MAX_SMALL_OBJECT, Some(info.size))
                .and_then(|b| parse_key_object(&b, &info.path))
            {
                Ok(obj) => obj,
                Err(e) => {
                    damaged.get_or_insert(e);
                    continue;
                }
            };
            // A key object this provider cannot use (or whose cost is unreasonable) must
            // not stop another key object from opening the repository.
            let master = match provider.master_key(&obj.kdf) {
                Ok(m) => m,
                Err(e) => {
                    damaged.get_or_insert(e);
                    continue;
                }
            };
            let Some(master) = master else {
                continue;
            };
            if let Some(keys) = master.unwrap_keys(&obj.wrapped, info.path.as_bytes()) {
                match open_json::<Config>(&keys, "config", &sealed_config) {
                    Ok(config) => {
                        unlocked = Some((id, keys, config));
                        break;
                    }
                    Err(e) => {
                        config_error.get_or_insert(e);
                    }
                }
            }
        }
        let Some((key_id, keys, config)) = unlocked else {
            // The config itself is damaged, or a damaged key object may be the very one
            // this key opens: say so rather than "wrong key".
            return Err(config_error
                .or(damaged)
                .unwrap_or(VaultError::WrongKey { keys: key_paths.len() }));
        };
        if config.version != FORMAT_VERSION {
            return Err(VaultError::corrupt(
                "config",
                format!(
                    "format version {} is not supported by this program (it reads version {FORMAT_VERSION}); use a newer repairops-vault",
                    config.version
                ),
            ));
        }
        config.chunker.validate()?;
        Ok(Repository {
            backend,
            keys,
            key_id,
            config,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    pub fn location(&self) -> String {
        self.backend.location()
    }

    pub(crate) fn keys(&self) -> &DataKeys {
        &self.keys
    }

    /// The key object this repository was opened with.
    pub fn key_id(&self) -> Id {
        self.key_id
    }

    /// Adds a key object for another master key; returns its id.
    pub fn add_key(&self, provider: &dyn KeyProvider) -> Result<Id> {
        write_key(&*self.backend, &self.keys, provider)
    }

    /// Ids of all key objects.
    pub fn key_ids(&self) -> Result<Vec<Id>> {
        Ok(self
            .backend
            .list(FileType::Key.dir())?
            .iter()
            .filter_map(|o| FileType::Key.id_of(&o.path))
            .collect())
    }

    /// Replaces the master key: writes a key object for `new`, then removes the one this
    /// repository was opened with. No data object is touched. Returns the new key's id.
    pub fn rotate_key(&mut self, new: &dyn KeyProvider) -> Result<Id> {
        let new_id = self.add_key(new)?;
        self.backend.delete(&FileType::Key.path(&self.key_id))?;
        self.key_id = new_id;
        Ok(new_id)
    }

    /// Reads every index object.
    /// Reads every index object; any damaged one is an error (what prune needs: it must
    /// know every blob before it deletes anything).
    pub fn load_index(&self) -> Result<Index> {
        let (index, mut damaged) = self.load_index_lenient()?;
        match damaged.drain(..).next() {
            Some(e) => Err(e),
            None => Ok(index),
        }
    }

    /// Reads every index object that opens, and returns the errors of those that do not:
    /// one damaged object must not stop backups, or restores of snapshots that do not
    /// need it.
    pub fn load_index_lenient(&self) -> Result<(Index, Vec<VaultError>)> {
        let mut index = Index::default();
        let mut damaged = Vec::new();
        for info in self.backend.list(FileType::Index.dir())? {
            let Some(id) = FileType::Index.id_of(&info.path) else {
                continue;
            };
            match self.read_index_file_sized(&id, Some(info.size)) {
                Ok(file) => {
                    for pack in &file.packs {
                        index.add_pack(pack, id);
                    }
                    index.files.push(id);
                }
                Err(e @ VaultError::Corrupt { .. }) => damaged.push(e),
                Err(e) => return Err(e),
            }
        }
        Ok((index, damaged))
    }

    pub(crate) fn read_index_file(&self, id: &Id) -> Result<IndexFile> {
        self.read_index_file_sized(id, None)
    }

    fn read_index_file_sized(&self, id: &Id, known: Option<u64>) -> Result<IndexFile> {
        let path = FileType::Index.path(id);
        let bytes = read_bounded(self.backend.as_ref(), &path, MAX_INDEX_OBJECT, known)?;
        let file: IndexFile = open_json(&self.keys, &path, &bytes)?;
        for pack in &file.packs {
            for b in &pack.blobs {
                if b.raw_length > MAX_BLOB || b.offset.saturating_add(u64::from(b.length)) > pack.size {
                    return Err(VaultError::corrupt(
                        &path,
                        format!("blob {} lies outside pack {}", b.id, pack.id),
                    ));
                }
            }
        }
        Ok(file)
    }

    /// Stores an index object listing `packs`; returns its id.
    pub(crate) fn write_index(&self, packs: Vec<IndexedPack>) -> Result<Id> {
        let id = Id::random();
        let path = FileType::Index.path(&id);
        let file = IndexFile {
            version: FORMAT_VERSION,
            packs,
        };
        self.backend.write(&path, seal_json(&self.keys, &path, &file))?;
        Ok(id)
    }

    /// Every snapshot, oldest first.
    /// Every snapshot, oldest first; any damaged one is an error.
    pub fn snapshots(&self) -> Result<Vec<(Id, Snapshot)>> {
        let (snaps, mut damaged) = self.snapshots_lenient()?;
        match damaged.drain(..).next() {
            Some(e) => Err(e),
            None => Ok(snaps),
        }
    }

    /// Every snapshot that opens, oldest first, and the errors of those that do not, so
    /// that one damaged snapshot does not hide the others.
    pub fn snapshots_lenient(&self) -> Result<(Snapshots, Vec<VaultError>)> {
        let mut out = Vec::new();
        let mut damaged = Vec::new();
        for info in self.backend.list(FileType::Snapshot.dir())? {
            let Some(id) = FileType::Snapshot.id_of(&info.path) else {
                continue;
            };
            match self.read_snapshot_sized(&id, Some(info.size)) {
                Ok(s) => out.push((id, s)),
                Err(e @ VaultError::Corrupt { .. }) => damaged.push(e),
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        Ok((out, damaged))
    }

    pub fn read_snapshot(&self, id: &Id) -> Result<Snapshot> {
        self.read_snapshot_sized(id, None)
    }

    fn read_snapshot_sized(&self, id: &Id, known: Option<u64>) -> Result<Snapshot> {
        let path = FileType::Snapshot.path(id);
        let bytes = match read_bounded(self.backend.as_ref(), &path, MAX_SNAPSHOT_OBJECT, known) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => {
                return Err(VaultError::NotFound {
                    what: "snapshot",
                    name: id.to_hex(),
                });
            }
            Err(e) => return Err(e),
        };
        open_json(&self.keys, &path, &bytes)
    }

    /// Finds a snapshot by full id, unique id prefix, or `latest`.
    ///
    /// `latest` is refused while any snapshot object cannot be read: the damaged one may
    /// be the newest, and restoring the one before it without a word would hand back
    /// older data as if it were the latest.
    pub fn find_snapshot(&self, name: &str) -> Result<(Id, Snapshot)> {
        let name = name.trim();
        if name == "latest" {
            let (mut snapshots, damaged) = self.snapshots_lenient()?;
            if let Some(VaultError::Corrupt { object, detail }) = damaged.into_iter().next() {
                return Err(VaultError::corrupt(
                    object,
                    format!(
                        "{detail}. It may be the newest snapshot, so `latest` is not guessed: name the \
                         snapshot to use (see `snapshots`), or remove the damaged one with `forget --snapshot ID`"
                    ),
                ));
            }
            return snapshots.pop().ok_or_else(|| VaultError::NotFound {
                what: "snapshot",
                name: name.to_string(),
            });
        }
        let id = self.snapshot_id(name)?;
        Ok((id, self.read_snapshot(&id)?))
    }

    /// The id a full id or unique id prefix names, from the snapshot objects' names alone
    /// (so a damaged snapshot can still be named, to forget it).
    pub fn snapshot_id(&self, name: &str) -> Result<Id> {
        let name = name.trim();
        if name.len() == 64
            && let Ok(id) = name.parse::<Id>()
        {
            return Ok(id);
        }
        let not_found = || VaultError::NotFound {
            what: "snapshot",
            name: name.to_string(),
        };
        if name.len() < 4 || !name.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(VaultError::InvalidInput(format!(
                "{name:?} is not a snapshot id: give `latest`, a full id, or at least 4 hex digits of one"
            )));
        }
        let lower = name.to_ascii_lowercase();
        let matches: Vec<Id> = self
            .backend
            .list(FileType::Snapshot.dir())?
            .iter()
            .filter_map(|o| FileType::Snapshot.id_of(&o.path))
            .filter(|id| id.to_hex().starts_with(&lower))
            .collect();
        match matches.as_slice() {
            [id] => Ok(*id),
            [] => Err(not_found()),
            _ => Err(VaultError::InvalidInput(format!(
                "{name:?} matches {} snapshots; give more digits",
                matches.len()
            ))),
        }
    }

    pub(crate) fn write_snapshot(&self, snapshot: &Snapshot) -> Result<Id> {
        let id = Id::random();
        let path = FileType::Snapshot.path(&id);
        self.backend.write(&path, seal_json(&self.keys, &path, snapshot))?;
        Ok(id)
    }

    /// Reads, opens, decompresses and verifies one blob.
    pub fn read_blob(&self, index: &Index, id: &Id) -> Result<Vec<u8>> {
        let loc = index.blobs.get(id).ok_or_else(|| {
            VaultError::corrupt(
                format!("blob {id}"),
                "not in any index (the repository is missing data)",
            )
        })?;
        let pack_path = FileType::Pack.path(&loc.pack);
        let sealed = self.backend.read_range(&pack_path, loc.offset, u64::from(loc.length))?;
        self.open_blob(id, loc.compressed, loc.raw_length, &sealed, &pack_path)
    }

    /// Opens a sealed blob read from `object` and checks it hashes to `id`.
    pub(crate) fn open_blob(
        &self,
        id: &Id,
        compressed: bool,
        raw_length: u32,
        sealed: &[u8],
        object: &str,
    ) -> Result<Vec<u8>> {
        let name = || format!("{object} (blob {id})");
        let plain = self.keys.open(id.as_bytes(), sealed, &name())?;
        let plain = if compressed {
            decompress(&plain, raw_length.min(MAX_BLOB) as usize, &name())?
        } else {
            plain
        };
        if plain.len() != raw_length as usize {
            return Err(VaultError::corrupt(name(), "plaintext length differs from the index"));
        }
        if self.keys.blob_id(&plain) != *id {
            return Err(VaultError::corrupt(name(), "content does not hash to its id"));
        }
        Ok(plain)
    }

    /// The nodes of a snapshot's tree.
    pub fn read_tree(&self, index: &Index, snapshot: &Snapshot) -> Result<Vec<Node>> {
        let mut bytes = Vec::new();
        for id in &snapshot.tree {
            bytes.extend(self.read_blob(index, id)?);
        }
        let mut nodes = Vec::new();
        for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let node: Node = serde_json::from_slice(line)
                .map_err(|e| VaultError::corrupt(format!("tree line {}", n + 1), format!("undecodable: {e}")))?;
            nodes.push(node);
        }
        Ok(nodes)
    }

    /// The most a pack can hold: packs close once past the configured size, so at most
    /// one blob (and its header entry) beyond it.
    pub(crate) fn max_pack_bytes(&self) -> u64 {
        u64::from(self.config.pack_size) + u64::from(MAX_BLOB) + 16 * 1024 * 1024
    }

    /// Reads a whole pack and checks every blob in it against its header; returns the
    /// header entries with their offsets. Used by `check --read-data` and prune.
    pub(crate) fn read_pack(&self, pack: &Id) -> Result<(Vec<u8>, Vec<IndexedBlob>)> {
        let path = FileType::Pack.path(pack);
        let bytes = read_bounded(self.backend.as_ref(), &path, self.max_pack_bytes(), None)?;
        let entries = self.parse_pack(pack, &bytes)?;
        Ok((bytes, entries))
    }

    /// Parses and verifies a pack's bytes.
    pub(crate) fn parse_pack(&self, pack: &Id, bytes: &[u8]) -> Result<Vec<IndexedBlob>> {
        let path = FileType::Pack.path(pack);
        let (body, len) = bytes
            .split_last_chunk::<4>()
            .ok_or_else(|| VaultError::corrupt(&path, "shorter than its trailer (truncated)"))?;
        let header_len = u32::from_le_bytes(*len) as usize;
        if header_len > body.len() {
            return Err(VaultError::corrupt(&path, "header length exceeds the pack (truncated)"));
        }
        let (blobs_area, sealed_header) = body.split_at(body.len() - header_len);
        let header = self
            .keys
            .open(&pack_header::aad(pack), sealed_header, &format!("{path} (header)"))?;
        let entries = pack_header::decode(&header, &path)?;
        let mut offset = 0u64;
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let end = offset + u64::from(e.length);
            if end > blobs_area.len() as u64 || e.raw_length > MAX_BLOB {
                return Err(VaultError::corrupt(&path, "header lists blobs beyond the pack's end"));
            }
            let sealed = &blobs_area[offset as usize..end as usize];
            self.open_blob(&e.id, e.compressed, e.raw_length, sealed, &path)?;
            out.push(IndexedBlob {
                id: e.id,
                offset,
                length: e.length,
                raw_length: e.raw_length,
                compressed: e.compressed,
            });
            offset = end;
        }
        if offset != blobs_area.len() as u64 {
            return Err(VaultError::corrupt(&path, "bytes between the blobs and the header"));
        }
        Ok(out)
    }

    /// Takes a lock; it is released when dropped. Shared locks (backup, forget, copy,
    /// check) coexist; an exclusive one (prune) excludes every other.
    pub fn lock(&self, exclusive: bool, operation: &str) -> Result<Lock> {
        let id = Id::random();
        let path = FileType::Lock.path(&id);
        let info = LockInfo {
            exclusive,
            hostname: hostname(),
            pid: std::process::id(),
            operation: operation.to_string(),
            time: Utc::now(),
        };
        self.backend.write(&path, seal_json(&self.keys, &path, &info))?;
        let lock = Lock {
            backend: self.backend.clone(),
            sealed: Mutex::new(Instant::now()),
            path,
            info,
        };
        for other in self.backend.list(FileType::Lock.dir())? {
            if other.path == lock.path {
                continue;
            }
            let bytes = match read_bounded(self.backend.as_ref(), &other.path, MAX_SMALL_OBJECT, Some(other.size)) {
                Ok(bytes) => bytes,
                Err(e) if e.is_not_found() => continue, // released since the listing
                // Not knowing whether it excludes us, we do not go on (our lock goes).
                Err(e) => return Err(e),
            };
            let theirs = match open_json::<LockInfo>(&self.keys, &other.path, &bytes) {
                Ok(theirs) => theirs,
                // Whose it is, and whether it is exclusive, cannot be known. A shared
                // operation goes on; an exclusive one (prune deletes data) does not.
                Err(e) if exclusive => {
                    return Err(VaultError::corrupt(
                        &other.path,
                        format!(
                            "cannot be read as a lock ({e}); if nothing else is using the repository, delete this object and try again"
                        ),
                    ));
                }
                Err(_) => continue,
            };
            if is_stale(&theirs) {
                let _ = self.backend.delete(&other.path);
                continue;
            }
            if exclusive || theirs.exclusive {
                return Err(VaultError::Locked {
                    holder: format!("{} (pid {} on {})", theirs.operation, theirs.pid, theirs.hostname),
                    since: theirs.time.to_rfc3339(),
                });
            }
        }
        Ok(lock)
    }
}

/// A lock object in the repository, removed on drop.
pub struct Lock {
    backend: Arc<dyn Backend>,
    path: String,
    info: LockInfo,
    sealed: Mutex<Instant>,
}

impl Lock {
    /// Locks older than this are taken to be left by a crashed process.
    pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);

    /// Whether the lock is due for a refresh (long operations call [`Repository::refresh_lock`]).
    pub(crate) fn due(&self) -> bool {
        self.sealed
            .lock()
            .map(|t| t.elapsed() > Duration::from_secs(300))
            .unwrap_or(false)
    }
}

impl Repository {
    /// Re-writes a lock with the current time so other processes do not take it as stale.
    pub(crate) fn refresh_lock(&self, lock: &Lock) -> Result<()> {
        if !lock.due() {
            return Ok(());
        }
        let mut info = lock.info.clone();
        info.time = Utc::now();
        self.backend
            .write(&lock.path, seal_json(&self.keys, &lock.path, &info))?;
        if let Ok(mut t) = lock.sealed.lock() {
            *t = Instant::now();
        }
        Ok(())
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.backend.delete(&self.path);
    }
}

fn is_stale(lock: &LockInfo) -> bool {
    let age = Utc::now().signed_duration_since(lock.time);
    if age.to_std().is_ok_and(|a| a > Lock::STALE_AFTER) {
        return true;
    }
    // A lock from a process on this machine that no longer runs is stale at once.
    cfg!(target_os = "linux")
        && lock.hostname == hostname()
        && lock.pid != std::process::id()
        && !std::path::Path::new(&format!("/proc/{}", lock.pid)).exists()
}

/// This machine's name, for lock objects and snapshots.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_string())
}

fn write_key(backend: &dyn Backend, keys: &DataKeys, provider: &dyn KeyProvider) -> Result<Id> {
    let kdf = provider.new_kdf();
    let master: MasterKey = provider
        .master_key(&kdf)?
        .ok_or_else(|| VaultError::InvalidInput("the key provider cannot make a key for its own derivation".into()))?;
    let id = Id::random();
    let path = FileType::Key.path(&id);
    let obj = KeyObject {
        version: FORMAT_VERSION,
        created: Utc::now(),
        kdf,
        wrapped: master.wrap(keys, path.as_bytes()),
    };
    backend.write(&path, encode_key_object(&obj))?;
    Ok(id)
}

/// A key object on storage: `{"key": <KeyObject JSON>, "blake3": <hex of those bytes>}`.
/// Key objects are not sealed (they hold what unseals everything else), so the checksum
/// is what tells a damaged key object from a wrong key.
fn encode_key_object(obj: &KeyObject) -> Vec<u8> {
    let inner = serde_json::to_string(obj).expect("key objects serialize");
    format!(
        "{{\"key\":{inner},\"blake3\":\"{}\"}}\n",
        blake3::hash(inner.as_bytes()).to_hex()
    )
    .into_bytes()
}

/// Parses and verifies a key object.
pub(crate) fn parse_key_object(bytes: &[u8], path: &str) -> Result<KeyObject> {
    #[derive(serde::Deserialize)]
    struct Stored<'a> {
        #[serde(borrow)]
        key: &'a serde_json::value::RawValue,
        blake3: String,
    }
    let stored: Stored<'_> =
        serde_json::from_slice(bytes).map_err(|e| VaultError::corrupt(path, format!("undecodable key object: {e}")))?;
    if blake3::hash(stored.key.get().as_bytes()).to_hex().as_str() != stored.blake3 {
        return Err(VaultError::corrupt(
            path,
            "key object checksum mismatch (the key object was changed or damaged)",
        ));
    }
    serde_json::from_str(stored.key.get())
        .map_err(|e| VaultError::corrupt(path, format!("undecodable key object: {e}")))
}
