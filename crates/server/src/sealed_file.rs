//! Files encrypted at rest in fixed-size AEAD segments (exports, issue #5).
//!
//! A file is written as a stream (memory stays at one segment whatever its size) and
//! can be read back from any byte offset by decrypting only the segments that cover
//! the range, which is what HTTP Range requests need.
//!
//! Layout: segment after segment, each `nonce (12) || AES-256-GCM ciphertext || tag (16)`
//! of [`SEGMENT`] plaintext bytes, the last one shorter (possibly empty). The associated
//! data of segment `i` is `name || i (u64 LE) || final (1 byte)`, so segments cannot be
//! reordered, moved to another file, or dropped from the end without detection.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::digest;

/// Plaintext bytes per segment.
pub const SEGMENT: usize = 64 * 1024;
const OVERHEAD: usize = NONCE_LEN + 16;

/// The key that seals files of this kind.
pub struct FileKey(LessSafeKey);

impl FileKey {
    pub fn new(bytes: &[u8; 32]) -> FileKey {
        FileKey(LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, bytes).expect("32 bytes make an AES-256 key"),
        ))
    }
}

fn aad(name: &str, index: u64, last: bool) -> Vec<u8> {
    let mut a = Vec::with_capacity(name.len() + 9);
    a.extend_from_slice(name.as_bytes());
    a.extend_from_slice(&index.to_le_bytes());
    a.push(u8::from(last));
    a
}

/// Writes a sealed file; call [`SealedWriter::finish`] to complete it.
pub struct SealedWriter<'k> {
    key: &'k FileKey,
    name: String,
    out: std::io::BufWriter<File>,
    buf: Vec<u8>,
    index: u64,
    len: u64,
    sha: digest::Context,
}

impl<'k> SealedWriter<'k> {
    /// Creates `path`; `name` (the file's id) is bound into every segment.
    pub fn create(path: &Path, key: &'k FileKey, name: &str) -> std::io::Result<SealedWriter<'k>> {
        Ok(SealedWriter {
            key,
            name: name.to_string(),
            out: std::io::BufWriter::with_capacity(SEGMENT + OVERHEAD, File::create(path)?),
            buf: Vec::with_capacity(SEGMENT),
            index: 0,
            len: 0,
            sha: digest::Context::new(&digest::SHA256),
        })
    }

    fn seal(&mut self, last: bool) -> std::io::Result<()> {
        let mut nonce = [0u8; NONCE_LEN];
        repairops_vault::crypto::fill_random(&mut nonce);
        let mut data = std::mem::take(&mut self.buf);
        let tag = self
            .key
            .0
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(&self.name, self.index, last)),
                &mut data,
            )
            .map_err(|_| std::io::Error::other("sealing a segment failed"))?;
        self.out.write_all(&nonce)?;
        self.out.write_all(&data)?;
        self.out.write_all(tag.as_ref())?;
        data.clear();
        self.buf = data;
        self.index += 1;
        Ok(())
    }

    /// Seals the last segment and flushes the file to the device; returns the plaintext
    /// length and its SHA-256 (hex).
    pub fn finish(mut self) -> std::io::Result<(u64, String)> {
        self.seal(true)?;
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok((self.len, hex::encode(self.sha.finish().as_ref())))
    }
}

impl Write for SealedWriter<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut rest = data;
        while !rest.is_empty() {
            let room = SEGMENT - self.buf.len();
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.buf.extend_from_slice(now);
            self.sha.update(now);
            self.len += now.len() as u64;
            rest = later;
            if self.buf.len() == SEGMENT {
                self.seal(false)?;
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Why a sealed file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the file was changed or damaged (segment {0} does not open)")]
    Damaged(u64),
    #[error("the range starts past the end of the file")]
    OutOfRange,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The plaintext length of a sealed file of `stored` bytes.
pub fn plaintext_len(stored: u64) -> u64 {
    let full = (SEGMENT + OVERHEAD) as u64;
    let segments = stored.div_ceil(full).max(1);
    stored.saturating_sub(segments * OVERHEAD as u64)
}

/// Reads plaintext bytes `[start, start + len)` (clamped to the end) of a sealed file.
pub fn read_range(path: &Path, key: &FileKey, name: &str, start: u64, len: u64) -> Result<Vec<u8>, ReadError> {
    let mut file = File::open(path)?;
    let stored = file.metadata()?.len();
    let total = plaintext_len(stored);
    if start > total {
        return Err(ReadError::OutOfRange);
    }
    let end = start.saturating_add(len).min(total);
    if start == end {
        return Ok(Vec::new());
    }
    let full = (SEGMENT + OVERHEAD) as u64;
    let last_index = stored.div_ceil(full).max(1) - 1;
    let mut out = Vec::with_capacity((end - start) as usize);
    for index in start / SEGMENT as u64..=(end - 1) / SEGMENT as u64 {
        let offset = index * full;
        let size = full.min(stored - offset) as usize;
        if size < OVERHEAD {
            return Err(ReadError::Damaged(index));
        }
        let mut sealed = vec![0u8; size];
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(&mut sealed)?;
        let nonce = Nonce::try_assume_unique_for_key(&sealed[..NONCE_LEN]).map_err(|_| ReadError::Damaged(index))?;
        let plain = key
            .0
            .open_in_place(
                nonce,
                Aad::from(aad(name, index, index == last_index)),
                &mut sealed[NONCE_LEN..],
            )
            .map_err(|_| ReadError::Damaged(index))?;
        let seg_start = index * SEGMENT as u64;
        let from = start.saturating_sub(seg_start) as usize;
        let to = ((end - seg_start) as usize).min(plain.len());
        if from < to {
            out.extend_from_slice(&plain[from..to]);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, key: &FileKey, data: &[u8]) -> (std::path::PathBuf, u64, String) {
        let path = dir.join("f.sealed");
        let mut w = SealedWriter::create(&path, key, "export-1").unwrap();
        // Uneven writes, as a CSV writer makes.
        for part in data.chunks(7919) {
            w.write_all(part).unwrap();
        }
        let (len, sha) = w.finish().unwrap();
        (path, len, sha)
    }

    #[test]
    fn round_trips_at_every_boundary_and_range() {
        let dir = tempfile::tempdir().unwrap();
        let key = FileKey::new(&[9u8; 32]);
        for size in [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT + 5] {
            let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            let (path, len, sha) = write(dir.path(), &key, &data);
            assert_eq!(len, size as u64);
            assert_eq!(sha, hex::encode(digest::digest(&digest::SHA256, &data).as_ref()));
            assert_eq!(plaintext_len(std::fs::metadata(&path).unwrap().len()), size as u64);
            assert_eq!(
                read_range(&path, &key, "export-1", 0, u64::MAX).unwrap(),
                data,
                "size {size}"
            );
            for (a, n) in [
                (0usize, 1usize),
                (SEGMENT - 3, 10),
                (size / 2, size / 3 + 1),
                (size.saturating_sub(1), 5),
            ] {
                if a >= size {
                    continue;
                }
                let got = read_range(&path, &key, "export-1", a as u64, n as u64).unwrap();
                assert_eq!(got, data[a..(a + n).min(size)], "size {size} range {a}+{n}");
            }
        }
    }

    #[test]
    fn tampering_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let key = FileKey::new(&[9u8; 32]);
        let data = vec![7u8; 2 * SEGMENT + 100];
        let (path, _, _) = write(dir.path(), &key, &data);
        let original = std::fs::read(&path).unwrap();
        // A flipped byte.
        let mut bad = original.clone();
        bad[SEGMENT + 50] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        assert!(matches!(
            read_range(&path, &key, "export-1", 0, u64::MAX),
            Err(ReadError::Damaged(1))
        ));
        // A range inside the intact first segment still reads: only needed segments open.
        assert_eq!(read_range(&path, &key, "export-1", 10, 20).unwrap(), vec![7u8; 20]);
        // The last segment dropped: the one before it is not marked final.
        std::fs::write(&path, &original[..2 * (SEGMENT + OVERHEAD)]).unwrap();
        assert!(read_range(&path, &key, "export-1", 0, u64::MAX).is_err());
        // Another file's name, or another key.
        std::fs::write(&path, &original).unwrap();
        assert!(read_range(&path, &key, "export-2", 0, 10).is_err());
        assert!(read_range(&path, &FileKey::new(&[8u8; 32]), "export-1", 0, 10).is_err());
        assert!(matches!(
            read_range(&path, &key, "export-1", data.len() as u64 + 1, 1),
            Err(ReadError::OutOfRange)
        ));
    }
}
