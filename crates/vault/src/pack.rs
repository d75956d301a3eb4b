//! Sealing blobs and grouping them into packs.
//!
//! A pack is `sealed blob* || sealed header || header length (u32 LE)`. Blobs are
//! sealed one by one (aad = the blob id's 32 bytes), so any blob can be read with one
//! ranged read once the index says where it is.

use crate::crypto::DataKeys;
use crate::error::Result;
use crate::format::{FileType, IndexedBlob, IndexedPack, pack_header};
use crate::id::Id;
use crate::repository::Repository;

/// A blob ready to go into a pack.
pub(crate) struct SealedBlob {
    pub id: Id,
    pub compressed: bool,
    pub raw_length: u32,
    pub bytes: Vec<u8>,
}

/// Compresses (when it pays) and seals blobs, reusing its zstd contexts.
///
/// Photos and PDFs do not compress; trying costs time. A 16 KiB sample is compressed
/// at the fastest level first and the blob is stored raw when the sample shrinks by
/// less than 10%; otherwise the whole blob is compressed and kept compressed only when
/// that saves at least 3%.
pub(crate) struct Compressor {
    probe: Option<zstd::bulk::Compressor<'static>>,
    main: Option<zstd::bulk::Compressor<'static>>,
}

impl Compressor {
    pub fn new(level: i32) -> Compressor {
        Compressor {
            probe: zstd::bulk::Compressor::new(1).ok(),
            main: zstd::bulk::Compressor::new(level).ok(),
        }
    }

    fn compress(&mut self, plaintext: &[u8], probe: bool) -> Option<Vec<u8>> {
        if plaintext.len() < 128 {
            return None;
        }
        if probe {
            let sample = &plaintext[..plaintext.len().min(16 * 1024)];
            let probed = self.probe.as_mut()?.compress(sample).ok()?;
            if probed.len() * 10 >= sample.len() * 9 {
                return None;
            }
        }
        self.main
            .as_mut()?
            .compress(plaintext)
            .ok()
            .filter(|c| c.len() * 100 <= plaintext.len() * 97)
    }

    pub fn seal(&mut self, keys: &DataKeys, id: Id, plaintext: &[u8]) -> SealedBlob {
        self.seal_probed(keys, id, plaintext, true)
    }

    /// Seals a blob of data known to compress (a database's pages), without the probe.
    pub fn seal_compressible(&mut self, keys: &DataKeys, id: Id, plaintext: &[u8]) -> SealedBlob {
        self.seal_probed(keys, id, plaintext, false)
    }

    fn seal_probed(&mut self, keys: &DataKeys, id: Id, plaintext: &[u8], probe: bool) -> SealedBlob {
        let raw_length = plaintext.len() as u32;
        match self.compress(plaintext, probe) {
            Some(c) => SealedBlob {
                id,
                compressed: true,
                raw_length,
                bytes: keys.seal(id.as_bytes(), &c),
            },
            None => SealedBlob {
                id,
                compressed: false,
                raw_length,
                bytes: keys.seal(id.as_bytes(), plaintext),
            },
        }
    }
}

/// A pack that is complete and ready to store.
pub(crate) struct FinishedPack {
    pub bytes: Vec<u8>,
    pub entry: IndexedPack,
}

impl FinishedPack {
    pub fn path(&self) -> String {
        FileType::Pack.path(&self.entry.id)
    }
}

/// Collects sealed blobs into packs of about `target` bytes.
pub(crate) struct PackWriter {
    target: usize,
    buf: Vec<u8>,
    blobs: Vec<IndexedBlob>,
}

impl PackWriter {
    pub fn new(target: u32) -> PackWriter {
        PackWriter {
            target: target as usize,
            buf: Vec::new(),
            blobs: Vec::new(),
        }
    }

    /// Adds a blob; returns a finished pack when this one is full.
    pub fn add(&mut self, keys: &DataKeys, blob: SealedBlob) -> Option<FinishedPack> {
        if self.buf.capacity() == 0 {
            // Room for the blob that crosses the target and the header, so a pack is
            // never copied while it grows.
            self.buf
                .reserve(self.target + 2 * blob.bytes.len().max(1 << 20) + 64 * 1024);
        }
        self.blobs.push(IndexedBlob {
            id: blob.id,
            offset: self.buf.len() as u64,
            length: blob.bytes.len() as u32,
            raw_length: blob.raw_length,
            compressed: blob.compressed,
        });
        self.buf.extend_from_slice(&blob.bytes);
        (self.buf.len() >= self.target).then(|| self.finish(keys)).flatten()
    }

    /// Closes the current pack, if it holds anything.
    pub fn finish(&mut self, keys: &DataKeys) -> Option<FinishedPack> {
        if self.blobs.is_empty() {
            return None;
        }
        let id = Id::random();
        let entries: Vec<pack_header::Entry> = self
            .blobs
            .iter()
            .map(|b| pack_header::Entry {
                id: b.id,
                compressed: b.compressed,
                length: b.length,
                raw_length: b.raw_length,
            })
            .collect();
        let header = keys.seal(&pack_header::aad(&id), &pack_header::encode(&entries));
        let mut bytes = std::mem::take(&mut self.buf);
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
        let entry = IndexedPack {
            id,
            size: bytes.len() as u64,
            blobs: std::mem::take(&mut self.blobs),
        };
        Some(FinishedPack { bytes, entry })
    }
}

impl Repository {
    /// Stores a finished pack; returns its index entry.
    pub(crate) fn store_pack(&self, pack: FinishedPack) -> Result<IndexedPack> {
        self.backend().write(&pack.path(), pack.bytes)?;
        Ok(pack.entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incompressible_blobs_are_stored_raw_and_text_compressed() {
        let keys = DataKeys::generate();
        let mut noise = vec![0u8; 200_000];
        crate::crypto::fill_random(&mut noise);
        let id = keys.blob_id(&noise);
        assert!(!Compressor::new(3).seal(&keys, id, &noise).compressed);
        let text = "ticket,Samsung Galaxy S21,cracked screen\n".repeat(5000);
        let id = keys.blob_id(text.as_bytes());
        let sealed = Compressor::new(3).seal(&keys, id, text.as_bytes());
        assert!(sealed.compressed);
        assert!(sealed.bytes.len() < text.len() / 5);
    }

    #[test]
    fn database_blocks_skip_the_probe_but_not_the_keep_rule() {
        let keys = DataKeys::generate();
        let page = "INSERT INTO tickets VALUES (1, 'cracked screen');".repeat(1500);
        let id = keys.blob_id(page.as_bytes());
        let sealed = Compressor::new(3).seal_compressible(&keys, id, page.as_bytes());
        assert!(sealed.compressed);
        assert!(sealed.bytes.len() < page.len() / 5);
        // A database holding photos in BLOB columns: compression that does not pay
        // is still thrown away.
        let mut photo = vec![0u8; 65_536];
        crate::crypto::fill_random(&mut photo);
        let id = keys.blob_id(&photo);
        let sealed = Compressor::new(3).seal_compressible(&keys, id, &photo);
        assert!(!sealed.compressed);
        assert_eq!(sealed.raw_length, 65_536);
    }

    #[test]
    fn packs_close_at_target_size() {
        let keys = DataKeys::generate();
        let mut w = PackWriter::new(1000);
        let mut finished = Vec::new();
        for _ in 0..10u8 {
            let mut data = vec![0u8; 300];
            crate::crypto::fill_random(&mut data);
            let id = keys.blob_id(&data);
            if let Some(p) = w.add(&keys, Compressor::new(3).seal(&keys, id, &data)) {
                finished.push(p);
            }
        }
        finished.extend(w.finish(&keys));
        assert!(finished.len() >= 2);
        assert_eq!(finished.iter().map(|p| p.entry.blobs.len()).sum::<usize>(), 10);
        for p in &finished {
            assert_eq!(p.entry.size, p.bytes.len() as u64);
        }
    }
}
