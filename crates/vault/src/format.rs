//! The on-storage format as types. `docs/vault-format.md` describes the same thing for
//! someone writing a reader in another language; keep the two in step.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::crypto::{DataKeys, Kdf};
use crate::error::{Result, VaultError};
use crate::id::Id;

/// Version written into `config` and checked on open.
pub const FORMAT_VERSION: u32 = 1;

/// The kinds of stored object and where they live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    Config,
    Key,
    Pack,
    Index,
    Snapshot,
    Lock,
}

impl FileType {
    /// The folder objects of this type live in (`""` for `config`).
    pub fn dir(self) -> &'static str {
        match self {
            FileType::Config => "",
            FileType::Key => "keys/",
            FileType::Pack => "data/",
            FileType::Index => "index/",
            FileType::Snapshot => "snapshots/",
            FileType::Lock => "locks/",
        }
    }

    /// The path of object `id` of this type. Packs fan out over 256 folders by their
    /// first byte, so no folder grows past what a file system lists quickly.
    pub fn path(self, id: &Id) -> String {
        match self {
            FileType::Config => "config".to_string(),
            FileType::Pack => {
                let hex = id.to_hex();
                format!("data/{}/{}", &hex[..2], hex)
            }
            other => format!("{}{}", other.dir(), id.to_hex()),
        }
    }

    /// The id in a listed path of this type, if the path is well formed.
    pub fn id_of(self, path: &str) -> Option<Id> {
        path.rsplit('/').next()?.parse().ok()
    }
}

/// Chunker parameters, fixed at `init` so every backup of a repository cuts alike.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChunkerParams {
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

/// 64 KiB on average: a day of changes to a shop database touches pages all over the
/// file, and small chunks re-store (and compress) far less of it (measured in
/// `docs/benchmarks.md`); the index stays at about 16,000 entries per GiB.
impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams {
            min_size: 16 * 1024,
            avg_size: 64 * 1024,
            max_size: 256 * 1024,
        }
    }
}

impl ChunkerParams {
    /// Chunks averaging `avg` bytes, from a quarter to four times that.
    pub fn around(avg: u32) -> ChunkerParams {
        let avg = avg & !1;
        ChunkerParams {
            min_size: (avg / 4) & !1,
            avg_size: avg,
            max_size: avg.saturating_mul(4) & !1,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let ok = (64..=1_048_576).contains(&self.min_size)
            && (256..=4_194_304).contains(&self.avg_size)
            && (1024..=16_777_216).contains(&self.max_size)
            && self.min_size <= self.avg_size
            && self.avg_size <= self.max_size
            && self.min_size.is_multiple_of(2)
            && self.avg_size.is_multiple_of(2)
            && self.max_size.is_multiple_of(2);
        if ok {
            Ok(())
        } else {
            Err(VaultError::corrupt(
                "config",
                format!("unusable chunker parameters {self:?}"),
            ))
        }
    }
}

/// `config`: sealed JSON, aad `config`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub version: u32,
    pub id: Id,
    pub created: DateTime<Utc>,
    pub chunker: ChunkerParams,
    /// Packs are closed once they reach this many bytes.
    pub pack_size: u32,
    /// zstd level for compressible blobs.
    pub compression_level: i32,
}

/// `keys/<id>`: plain JSON holding the data keys wrapped by one master key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyObject {
    pub version: u32,
    pub created: DateTime<Utc>,
    pub kdf: Kdf,
    /// `nonce || AES-256-GCM(master key, aad = "keys/<id>", 64 bytes of data keys) || tag`.
    #[serde(with = "crate::crypto::b64")]
    pub wrapped: Vec<u8>,
}

/// One blob's place in a pack.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct IndexedBlob {
    pub id: Id,
    /// Offset of the sealed blob in the pack.
    pub offset: u64,
    /// Length of the sealed blob (nonce, ciphertext, tag).
    pub length: u32,
    /// Length of the plaintext.
    pub raw_length: u32,
    /// Whether the sealed plaintext is zstd-compressed.
    pub compressed: bool,
}

/// One pack as an index lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IndexedPack {
    pub id: Id,
    /// Size of the whole pack object.
    pub size: u64,
    pub blobs: Vec<IndexedBlob>,
}

/// `index/<id>`: which blobs each pack holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IndexFile {
    pub version: u32,
    pub packs: Vec<IndexedPack>,
}

/// Counts a snapshot records about itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SnapshotStats {
    pub files: u64,
    pub dirs: u64,
    /// Bytes of all files and streams in the snapshot.
    pub total_bytes: u64,
    /// Bytes of file content that were read (unchanged files are not re-read).
    pub read_bytes: u64,
    /// Blobs this snapshot added to the repository.
    pub added_blobs: u64,
    /// Stored (compressed, sealed) bytes this snapshot added to the repository.
    pub added_bytes: u64,
    /// Wall time the backup took.
    pub duration_ms: u64,
}

/// `snapshots/<id>`: sealed JSON, aad `snapshots/<id>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    pub time: DateTime<Utc>,
    pub hostname: String,
    /// What was backed up: source folders (absolute) and stream names.
    pub paths: Vec<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Whatever the caller attached (the server's data summary).
    #[serde(default)]
    pub summary: serde_json::Value,
    /// Blobs whose concatenated plaintext is the tree (JSON lines of [`Node`]s).
    pub tree: Vec<Id>,
    pub stats: SnapshotStats,
    /// For a copy: the snapshot in the source repository it was copied from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<Id>,
}

/// The kind of a tree node.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    Dir,
    File,
    Symlink,
    /// Bytes given by the caller under a name, not read from a file.
    Stream,
}

/// One entry of a snapshot's tree. Paths are relative, `/`-separated, and start with
/// the source's top-level name (the folder's base name, or the stream's name).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Node {
    pub path: String,
    /// Hex of the path's raw bytes when they are not UTF-8 (then `path` is lossy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    pub kind: NodeKind,
    #[serde(default)]
    pub mode: u32,
    /// Modification time, nanoseconds since the Unix epoch.
    #[serde(default)]
    pub mtime_ns: i64,
    #[serde(default)]
    pub size: u64,
    /// Inode and change time, used only to spot unchanged files on the next backup.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inode: u64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub ctime_ns: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blobs: Vec<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

impl Node {
    /// The path's raw bytes, or `None` when `path_hex` is there but is not hex (a
    /// damaged or hand-made tree: its lossy `path` would name some other file).
    pub fn path_bytes(&self) -> Option<Vec<u8>> {
        match self.path_hex.as_deref() {
            Some(h) => hex::decode(h).ok(),
            None => Some(self.path.as_bytes().to_vec()),
        }
    }
}

/// `locks/<id>`: sealed JSON, aad `locks/<id>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockInfo {
    pub exclusive: bool,
    pub hostname: String,
    pub pid: u32,
    pub operation: String,
    pub time: DateTime<Utc>,
}

/// Plaintext framing of sealed JSON objects (config, index, snapshots, locks):
/// one byte `0` (raw) or `1` (zstd) followed by the payload.
pub(crate) fn encode_json<T: Serialize>(value: &T) -> Vec<u8> {
    let json = serde_json::to_vec(value).expect("format types always serialize");
    if json.len() > 512 {
        let mut out = vec![1u8];
        out.extend(zstd::bulk::compress(&json, 3).expect("zstd compressing a buffer"));
        out
    } else {
        let mut out = vec![0u8];
        out.extend(json);
        out
    }
}

/// Largest decoded JSON object accepted, so a hostile object cannot exhaust memory.
const MAX_JSON: usize = 1 << 30;

pub(crate) fn decode_json<T: for<'de> Deserialize<'de>>(bytes: &[u8], object: &str) -> Result<T> {
    let json = match bytes.split_first() {
        Some((0, rest)) => std::borrow::Cow::Borrowed(rest),
        Some((1, rest)) => std::borrow::Cow::Owned(decompress(rest, MAX_JSON, object)?),
        _ => return Err(VaultError::corrupt(object, "unknown framing byte")),
    };
    serde_json::from_slice(&json).map_err(|e| VaultError::corrupt(object, format!("undecodable JSON: {e}")))
}

/// zstd-decompresses at most `limit` bytes.
pub(crate) fn decompress(data: &[u8], limit: usize, object: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    let decoder =
        zstd::stream::read::Decoder::new(data).map_err(|e| VaultError::corrupt(object, format!("zstd: {e}")))?;
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| VaultError::corrupt(object, format!("zstd: {e}")))?;
    if out.len() > limit {
        return Err(VaultError::corrupt(
            object,
            "decompresses to more than its recorded size",
        ));
    }
    Ok(out)
}

/// Seals a JSON object for storage at `path`.
pub(crate) fn seal_json<T: Serialize>(keys: &DataKeys, path: &str, value: &T) -> Vec<u8> {
    keys.seal(path.as_bytes(), &encode_json(value))
}

/// Opens a JSON object stored at `path`.
pub(crate) fn open_json<T: for<'de> Deserialize<'de>>(keys: &DataKeys, path: &str, sealed: &[u8]) -> Result<T> {
    let plain = keys.open(path.as_bytes(), sealed, path)?;
    decode_json(&plain, path)
}

/// The pack header: what the blobs in a pack are, in order. Stored sealed at the end of
/// the pack (aad: the ASCII text `pack/` followed by the pack id in hex), followed
/// by its sealed length as a little-endian `u32`.
pub mod pack_header {
    use super::*;

    pub const MAGIC: &[u8; 5] = b"RVPK1";
    /// id (32) + flags (1) + sealed length (4) + raw length (4).
    pub const ENTRY_LEN: usize = 41;

    /// One entry of the header, in pack order.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Entry {
        pub id: Id,
        pub compressed: bool,
        pub length: u32,
        pub raw_length: u32,
    }

    pub fn aad(pack: &Id) -> Vec<u8> {
        format!("pack/{}", pack.to_hex()).into_bytes()
    }

    pub fn encode(entries: &[Entry]) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAGIC.len() + 4 + entries.len() * ENTRY_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for e in entries {
            out.extend_from_slice(e.id.as_bytes());
            out.push(u8::from(e.compressed));
            out.extend_from_slice(&e.length.to_le_bytes());
            out.extend_from_slice(&e.raw_length.to_le_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8], object: &str) -> Result<Vec<Entry>> {
        let bad = |d: &str| VaultError::corrupt(object, format!("pack header: {d}"));
        let rest = bytes.strip_prefix(MAGIC.as_slice()).ok_or_else(|| bad("bad magic"))?;
        let (count, rest) = rest.split_first_chunk::<4>().ok_or_else(|| bad("too short"))?;
        let count = u32::from_le_bytes(*count) as usize;
        if rest.len() != count.checked_mul(ENTRY_LEN).ok_or_else(|| bad("count overflows"))? {
            return Err(bad("length does not match its entry count"));
        }
        let mut out = Vec::with_capacity(count);
        for e in rest.chunks_exact(ENTRY_LEN) {
            let id = Id(e[..32].try_into().expect("32 bytes"));
            let flags = e[32];
            if flags > 1 {
                return Err(bad("unknown blob flags"));
            }
            out.push(Entry {
                id,
                compressed: flags == 1,
                length: u32::from_le_bytes(e[33..37].try_into().expect("4 bytes")),
                raw_length: u32::from_le_bytes(e[37..41].try_into().expect("4 bytes")),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_header_round_trip_and_rejects_garbage() {
        let entries = vec![
            pack_header::Entry {
                id: Id::random(),
                compressed: true,
                length: 100,
                raw_length: 300,
            },
            pack_header::Entry {
                id: Id::random(),
                compressed: false,
                length: 50,
                raw_length: 22,
            },
        ];
        let enc = pack_header::encode(&entries);
        assert_eq!(pack_header::decode(&enc, "p").unwrap(), entries);
        assert!(pack_header::decode(&enc[..enc.len() - 1], "p").is_err());
        assert!(pack_header::decode(b"RVPK1\xff\xff\xff\xff", "p").is_err());
        assert!(pack_header::decode(b"", "p").is_err());
    }

    #[test]
    fn json_framing_round_trips_small_and_large() {
        let small = vec![1u32, 2, 3];
        assert_eq!(decode_json::<Vec<u32>>(&encode_json(&small), "x").unwrap(), small);
        let large: Vec<u32> = (0..10_000).collect();
        let enc = encode_json(&large);
        assert_eq!(enc[0], 1);
        assert_eq!(decode_json::<Vec<u32>>(&enc, "x").unwrap(), large);
        assert!(decode_json::<Vec<u32>>(&[7, 1, 2], "x").is_err());
        assert!(decode_json::<Vec<u32>>(&[], "x").is_err());
    }

    #[test]
    fn pack_paths_fan_out() {
        let id: Id = "ab".repeat(32).parse().unwrap();
        assert_eq!(FileType::Pack.path(&id), format!("data/ab/{}", "ab".repeat(32)));
        assert_eq!(FileType::Pack.id_of(&FileType::Pack.path(&id)), Some(id));
        assert_eq!(FileType::Snapshot.id_of("snapshots/nothex"), None);
    }
}
