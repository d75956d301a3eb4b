//! Saving files to any folder or drive the way a careful person would: a name every
//! drive format accepts, a check that the file fits before writing, the bytes written
//! to a temporary file beside the target, flushed to the device, read back and checked
//! against the server's SHA-256, and only then renamed into place. A dropped
//! connection or a removed drive leaves nothing under the chosen name.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use ts_rs::TS;

use crate::error::{UiError, io_sentence};

/// A file this app saved, remembered on this computer so it can be listed and checked
/// again offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SavedFile {
    pub path: String,
    /// SHA-256 of the bytes written, hex.
    pub sha256: String,
    #[ts(type = "number")]
    pub size: u64,
    /// When it was saved (RFC 3339).
    pub saved_at: String,
    /// What it holds, e.g. `tickets (CSV), export 12`.
    pub what: String,
    /// The server it came from.
    pub server: String,
}

/// The outcome of checking a saved file again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct Verification {
    pub path: String,
    pub intact: bool,
    pub message: String,
}

/// Characters some drive format (FAT32, exFAT, NTFS) refuses in a file name.
const FORBIDDEN: &[char] = &['<', '>', ':', '"', '/', '\\', '|', '?', '*'];

/// Names Windows reserves for devices, with or without an extension.
const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9", "LPT1", "LPT2",
    "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// A file name every drive format accepts: forbidden and control characters become
/// `_`, no trailing dot or space, no reserved device name, at most 200 bytes (the
/// extension kept).
pub fn safe_file_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if FORBIDDEN.contains(&c) || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    out = out.trim_end_matches(['.', ' ']).trim_start().to_string();
    if out.is_empty() {
        out = "export".into();
    }
    let stem = out.split('.').next().unwrap_or("").trim_end().to_ascii_uppercase();
    if RESERVED.contains(&stem.as_str()) {
        out.insert(0, '_');
    }
    if out.len() > 200 {
        let ext = Path::new(&out)
            .extension()
            .and_then(|e| e.to_str())
            .filter(|e| e.len() <= 10)
            .map(|e| format!(".{e}"))
            .unwrap_or_default();
        let mut cut = 200 - ext.len();
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out = format!("{}{ext}", &out[..cut]);
    }
    out
}

/// `path`, or when a file is there already `name (2).ext`, `name (3).ext`, …: the first
/// that is free.
pub fn unused_name(path: &Path) -> PathBuf {
    if std::fs::symlink_metadata(path).is_err() {
        return path.to_path_buf();
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    (2..)
        .map(|n| path.with_file_name(format!("{stem} ({n}){ext}")))
        .find(|p| std::fs::symlink_metadata(p).is_err())
        .unwrap_or_else(|| path.to_path_buf())
}

/// The drive a folder is on, as far as writing a file there is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveRoom {
    /// Bytes this user may still write.
    pub free: u64,
    /// The largest file the drive's format can hold (4 GiB - 1 on FAT32).
    pub max_file: Option<u64>,
    /// The format's name when it limits file sizes.
    pub format: Option<&'static str>,
}

/// How much room the drive holding `dir` has, and its format's file-size limit.
#[cfg(unix)]
pub fn drive_room(dir: &Path) -> std::io::Result<DriveRoom> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "the folder name holds a NUL byte"))?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` is a properly sized out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let free = (st.f_bavail as u64).saturating_mul(st.f_frsize as u64);
    let fat = is_fat(&c);
    Ok(DriveRoom {
        free,
        max_file: fat.then_some(4 * 1024 * 1024 * 1024 - 1),
        format: fat.then_some("FAT32"),
    })
}

#[cfg(target_os = "linux")]
fn is_fat(c: &std::ffi::CStr) -> bool {
    const MSDOS_SUPER_MAGIC: i64 = 0x4d44;
    // SAFETY: as in `drive_room`.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0) && st.f_type as i64 == MSDOS_SUPER_MAGIC
}

#[cfg(all(unix, not(target_os = "linux")))]
fn is_fat(c: &std::ffi::CStr) -> bool {
    // SAFETY: as in `drive_room`.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return false;
    }
    let name = unsafe { std::ffi::CStr::from_ptr(st.f_fstypename.as_ptr()) };
    name.to_bytes() == b"msdos"
}

#[cfg(not(unix))]
pub fn drive_room(_dir: &Path) -> std::io::Result<DriveRoom> {
    Ok(DriveRoom {
        free: u64::MAX,
        max_file: None,
        format: None,
    })
}

/// Refuses, with a sentence, a file of `size` bytes that cannot fit in `dir`.
pub fn check_fits(dir: &Path, size: u64) -> Result<(), UiError> {
    let room = drive_room(dir).map_err(|e| UiError::storage(io_sentence(&e)))?;
    if let (Some(max), Some(format)) = (room.max_file, room.format)
        && size > max
    {
        return Err(UiError::storage(format!(
            "This drive is formatted {format}, which cannot hold a file of 4 GB or more, and this file is {}. Use a drive formatted exFAT or NTFS, or export less (a date range).",
            human_bytes(size)
        )));
    }
    // Keep a little room for the file system's own bookkeeping.
    let needed = size.saturating_add(1024 * 1024);
    if room.free < needed {
        return Err(UiError::storage(format!(
            "The file needs {} but the drive has only {} free. Free some space or pick another drive.",
            human_bytes(size),
            human_bytes(room.free)
        )));
    }
    Ok(())
}

/// `1.2 MB` (decimal units, as drives are sold).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} bytes");
    }
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Bytes arriving for a file, as a stream of chunks.
pub type Chunks = std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Vec<u8>, String>> + Send>>;

/// Opens a download again from a byte offset: the rest of the file, as [`Chunks`].
pub type Reopen = Box<dyn FnMut(u64) -> futures_util::future::BoxFuture<'static, Result<Chunks, UiError>> + Send>;

/// How a download that broke off is picked up again (see [`save_resumable`]), and how
/// it has gone so far.
pub struct Resume {
    /// Asked for the rest of the file.
    reopen: Reopen,
    /// The waits before each attempt after the first while attempts bring nothing;
    /// when they run out, the save gives up.
    waits: &'static [std::time::Duration],
    /// Silence on a connection for this long counts as a drop.
    stall: std::time::Duration,
    /// Bytes in hand when the current connection was opened.
    opened_at: u64,
    /// Attempts in a row that brought nothing.
    fruitless: usize,
    /// Connections in a row that dropped before a [`GOOD_RUN`] came through.
    short: usize,
}

/// Bytes a connection must bring for its drop not to count as a short run.
const GOOD_RUN: u64 = 1 << 20;
/// Short runs in a row after which the save gives up: a link that cuts every few
/// kilobytes would otherwise open connections back to back without end.
const MAX_SHORT_RUNS: usize = 20;
/// Silence on a download's connection taken as a drop (TCP may not notice a dead link
/// for many minutes).
const STALL: std::time::Duration = std::time::Duration::from_secs(60);

impl Resume {
    /// `reopen` with [`RESUME_WAITS`] and [`STALL`].
    pub fn new(reopen: Reopen) -> Resume {
        Resume {
            reopen,
            waits: &RESUME_WAITS,
            stall: STALL,
            opened_at: 0,
            fruitless: 0,
            short: 0,
        }
    }

    /// The rest of the file from byte `from`, after the connection broke off (`drop`
    /// says how), or why it cannot be had.
    async fn reopen_at(&mut self, from: u64, drop: String, name: &str) -> Result<Chunks, UiError> {
        let brought = from - self.opened_at;
        self.short = if brought >= GOOD_RUN { 0 } else { self.short + 1 };
        if brought > 0 {
            self.fruitless = 0;
        }
        if self.short > MAX_SHORT_RUNS {
            return Err(UiError::new(
                crate::error::ErrorKind::Offline,
                format!(
                    "The connection to the server kept dropping ({MAX_SHORT_RUNS} times in a row before a megabyte came through). Nothing was saved under \"{name}\"; try again on a steadier connection."
                ),
            ));
        }
        let mut last = format!("The connection dropped ({drop}).");
        loop {
            if self.fruitless > self.waits.len() {
                let tried = self.waits.iter().sum::<std::time::Duration>().as_secs_f64().ceil();
                return Err(UiError::new(
                    crate::error::ErrorKind::Offline,
                    format!(
                        "The download broke off and could not be picked up again in {tried} s of trying. {last} Nothing was saved under \"{name}\"; try again."
                    ),
                ));
            }
            if self.fruitless > 0 {
                tokio::time::sleep(self.waits[self.fruitless - 1]).await;
            }
            self.fruitless += 1;
            self.opened_at = from;
            tracing::info!(from, attempt = self.fruitless, "resuming a download: {last}");
            match (self.reopen)(from).await {
                Ok(rest) => return Ok(rest),
                Err(e) if e.kind == crate::error::ErrorKind::Offline => last = e.message,
                Err(e) => {
                    return Err(UiError::new(
                        e.kind,
                        format!(
                            "The download broke off and could not be picked up again: {} Nothing was saved under \"{name}\".",
                            e.message
                        ),
                    ));
                }
            }
        }
    }
}

/// Saves a server download to `target` as [`save_chunks`] does, once the drive is known
/// to hold `total` bytes. The file is held against the server's `X-Content-SHA256`, or
/// `listed_sha256` (the export list's) when the response carries none. With `reopen`,
/// a connection that drops mid-download is picked up where it broke off (see
/// [`save_resumable`]).
pub async fn save_download(
    resp: reqwest::Response,
    resume: Option<Resume>,
    target: &Path,
    total: u64,
    listed_sha256: Option<&str>,
    progress: impl FnMut(u64),
) -> Result<(String, u64), UiError> {
    if let Some(dir) = target.parent() {
        check_fits(dir, total)?;
    }
    let expected = resp
        .headers()
        .get("x-content-sha256")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| listed_sha256.map(str::to_string));
    save_resumable(response_chunks(resp), resume, target, expected.as_deref(), progress).await
}

/// The answer to a ranged request from byte `from` as [`Chunks`], or an error if the
/// server did not answer with exactly that range (a 200 would start the file over and
/// be appended to the part already written). From byte 0 the whole file is the answer.
pub fn resumed_chunks(
    answer: Result<reqwest::Response, repairops_api::ClientError>,
    from: u64,
) -> Result<Chunks, UiError> {
    let resp = match answer {
        // Nothing from `from` on: the connection broke after the last byte, before the
        // body's end was seen. The hash of the whole is still checked at the end.
        Err(e) if e.status() == Some(416) => return Ok(Box::pin(futures_util::stream::empty())),
        other => other?,
    };
    if from == 0 && resp.status() == reqwest::StatusCode::OK {
        return Ok(response_chunks(resp));
    }
    let range = resp
        .headers()
        .get(reqwest::header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if resp.status() != reqwest::StatusCode::PARTIAL_CONTENT || !range.starts_with(&format!("bytes {from}-")) {
        let answered = match range {
            "" => format!("{}", resp.status().as_u16()),
            range => format!("{} with {range}", resp.status().as_u16()),
        };
        return Err(UiError::failed(format!(
            "The server did not resume the download at byte {from} (it answered {answered})."
        )));
    }
    Ok(response_chunks(resp))
}

/// Calls `report` with progress at most every `every`, and always with the last figure,
/// so a fast download does not flood the UI with events.
pub fn throttled(every: std::time::Duration, total: u64, mut report: impl FnMut(u64)) -> impl FnMut(u64) {
    let mut last: Option<std::time::Instant> = None;
    move |done| {
        if done == total || last.is_none_or(|t| t.elapsed() >= every) {
            last = Some(std::time::Instant::now());
            report(done);
        }
    }
}

/// A response body as [`Chunks`].
pub fn response_chunks(resp: reqwest::Response) -> Chunks {
    Box::pin(
        resp.bytes_stream()
            .map(|c| c.map(|b| b.to_vec()).map_err(|e| e.to_string())),
    )
}

/// Bytes gathered before each write.
const WRITE_BATCH: usize = 1 << 20;

/// Waits before each attempt to resume a download that broke off, after the first
/// (made at once): about half a minute of a server or network that stays away before
/// the save gives up.
pub const RESUME_WAITS: [std::time::Duration; 5] = [
    std::time::Duration::from_secs(1),
    std::time::Duration::from_secs(2),
    std::time::Duration::from_secs(4),
    std::time::Duration::from_secs(8),
    std::time::Duration::from_secs(16),
];

/// Writes `chunks` to `target` through a temporary file beside it (see the module
/// doc). `expected_sha256` is the server's hash of the whole file; `progress` gets the
/// bytes written so far. Returns the hash and size of what was written.
pub async fn save_chunks(
    chunks: Chunks,
    target: &Path,
    expected_sha256: Option<&str>,
    progress: impl FnMut(u64),
) -> Result<(String, u64), UiError> {
    save_resumable(chunks, None, target, expected_sha256, progress).await
}

/// [`save_chunks`], and when the connection drops part way, `resume` is asked for the
/// rest from the first byte not yet received; the bytes already in hand are kept and
/// the whole is still held against `expected_sha256`. A connection that breaks after
/// bringing bytes is resumed at once; attempts that bring none wait out
/// [`RESUME_WAITS`] before the save gives up, and so do [`MAX_SHORT_RUNS`] connections
/// in a row that each bring less than a megabyte. A connection silent for a minute
/// counts as dropped. A refusal (signed out, export gone) ends the save at once.
pub async fn save_resumable(
    mut chunks: Chunks,
    mut resume: Option<Resume>,
    target: &Path,
    expected_sha256: Option<&str>,
    mut progress: impl FnMut(u64),
) -> Result<(String, u64), UiError> {
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| UiError::invalid("Pick a folder to save into."))?
        .to_path_buf();
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| UiError::invalid("Pick a file name."))?
        .to_string();
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".partial")
        .tempfile_in(&dir)
        .map_err(UiError::from)?;
    let mut file = temp.as_file().try_clone().map_err(UiError::from)?;
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    // Network chunks are small (often 16 KiB): gather a megabyte before each write so
    // the blocking-pool round trip is paid per megabyte, not per chunk.
    let mut pending: Vec<u8> = Vec::with_capacity(WRITE_BATCH);
    let mut ended = false;
    while !ended {
        let next = match resume.as_ref().map(|r| r.stall) {
            Some(stall) => tokio::time::timeout(stall, chunks.next())
                .await
                .unwrap_or_else(|_| Some(Err(format!("nothing arrived for {stall:?}")))),
            None => chunks.next().await,
        };
        match next {
            Some(Ok(chunk)) => {
                hasher.update(&chunk);
                written += chunk.len() as u64;
                pending.extend_from_slice(&chunk);
                if pending.len() < WRITE_BATCH {
                    continue;
                }
            }
            Some(Err(e)) => {
                let Some(resume) = resume.as_mut() else {
                    return Err(UiError::new(
                        crate::error::ErrorKind::Offline,
                        format!(
                            "The connection to the server dropped while saving ({e}). Nothing was saved under \"{name}\"; try again."
                        ),
                    ));
                };
                // The bytes in hand stay: pending ones are written with the rest.
                chunks = resume.reopen_at(written, e, &name).await?;
                continue;
            }
            None => ended = true,
        }
        let batch = std::mem::replace(&mut pending, Vec::with_capacity(WRITE_BATCH));
        // Writes may block on a slow device: keep them off the async workers.
        file = tokio::task::spawn_blocking(move || file.write_all(&batch).map(|_| file))
            .await
            .map_err(|e| UiError::failed(e.to_string()))?
            .map_err(UiError::from)?;
        progress(written);
    }
    let sha = hex::encode(hasher.finalize());
    if let Some(expected) = expected_sha256
        && !expected.eq_ignore_ascii_case(&sha)
    {
        return Err(UiError::failed(format!(
            "The file arrived damaged (its checksum does not match the server's). Nothing was saved under \"{name}\"; try again."
        )));
    }
    let target = target.to_path_buf();
    let expected = sha.clone();
    tokio::task::spawn_blocking(move || -> Result<(), UiError> {
        file.sync_all().map_err(UiError::from)?;
        drop_cached_pages(&file);
        drop(file);
        // Read back what the drive holds, not what we meant to write.
        let (again, size) = hash_file(temp.path()).map_err(UiError::from)?;
        if again != expected || size != written {
            return Err(UiError::storage(format!(
                "The drive did not keep the file intact (read back {}, expected {}). Nothing was saved under \"{name}\"; try another drive.",
                human_bytes(size),
                human_bytes(written)
            )));
        }
        temp.persist(&target).map_err(|e| UiError::from(e.error))?;
        sync_dir(&dir);
        Ok(())
    })
    .await
    .map_err(|e| UiError::failed(e.to_string()))??;
    Ok((sha, written))
}

/// Asks the kernel to forget its cached copy so the read-back comes from the device.
#[cfg(target_os = "linux")]
fn drop_cached_pages(file: &std::fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid open descriptor; advice only, errors ignored.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
}

#[cfg(not(target_os = "linux"))]
fn drop_cached_pages(_file: &std::fs::File) {}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// SHA-256 (hex) and size of a file on disk.
pub fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Replaces `path` with `bytes` so that a crash leaves the old or the new file, never
/// half of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), UiError> {
    let dir = path.parent().ok_or_else(|| UiError::failed("no folder"))?;
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| UiError::from(e.error))?;
    sync_dir(dir);
    Ok(())
}

/// The files this app saved (`saved.json` in the app's folder).
#[derive(Debug, Clone)]
pub struct SavedList {
    path: PathBuf,
}

impl SavedList {
    pub fn new(path: PathBuf) -> SavedList {
        SavedList { path }
    }

    /// Newest first.
    pub fn all(&self) -> Vec<SavedFile> {
        let mut all: Vec<SavedFile> = std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        all.sort_by(|a, b| b.saved_at.cmp(&a.saved_at));
        all
    }

    /// Remembers a saved file (replacing an older entry for the same path).
    pub fn add(&self, file: SavedFile) -> Result<(), UiError> {
        let mut all = self.all();
        all.retain(|f| f.path != file.path);
        all.insert(0, file);
        all.truncate(500);
        let bytes = serde_json::to_vec_pretty(&all).map_err(|e| UiError::failed(e.to_string()))?;
        write_atomically(&self.path, &bytes)
    }

    /// Re-hashes a saved file and says whether it is still what was saved.
    pub fn verify(&self, path: &str) -> Result<Verification, UiError> {
        let Some(saved) = self.all().into_iter().find(|f| f.path == path) else {
            return Err(UiError::new(
                crate::error::ErrorKind::NotFound,
                "This app did not save that file, so it has no checksum to compare with.",
            ));
        };
        let (intact, message) = match hash_file(Path::new(path)) {
            Ok((sha, size)) if sha == saved.sha256 && size == saved.size => (
                true,
                format!("Intact: the file matches its checksum ({}).", human_bytes(size)),
            ),
            Ok((_, size)) => (
                false,
                format!(
                    "Changed or damaged: the file no longer matches the checksum it was saved with ({} now, {} when saved). Save it again from the server.",
                    human_bytes(size),
                    human_bytes(saved.size)
                ),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
                false,
                "Not found: the file was moved or deleted, or its drive is not plugged in.".to_string(),
            ),
            Err(e) => (false, format!("Cannot read the file: {}", io_sentence(&e))),
        };
        Ok(Verification {
            path: path.to_string(),
            intact,
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: Vec<Result<Vec<u8>, String>>) -> Chunks {
        Box::pin(futures_util::stream::iter(parts))
    }

    #[test]
    fn progress_is_throttled_but_always_ends_at_the_total() {
        let mut seen = Vec::new();
        {
            let mut report = throttled(std::time::Duration::from_secs(3600), 300, |d| seen.push(d));
            for done in [100, 200, 300] {
                report(done);
            }
        }
        assert_eq!(
            seen,
            [100, 300],
            "the first figure, then nothing within the hour but the last"
        );
    }

    #[test]
    fn a_name_in_use_gets_the_first_free_number() {
        let dir = tempfile::tempdir().unwrap();
        let wanted = dir.path().join("tickets 2026_11_30.csv");
        assert_eq!(unused_name(&wanted), wanted);
        std::fs::write(&wanted, b"kept").unwrap();
        std::fs::write(dir.path().join("tickets 2026_11_30 (2).csv"), b"kept too").unwrap();
        assert_eq!(unused_name(&wanted), dir.path().join("tickets 2026_11_30 (3).csv"));
        let bare = dir.path().join("README");
        std::fs::write(&bare, b"x").unwrap();
        assert_eq!(unused_name(&bare), dir.path().join("README (2)"));
    }

    #[test]
    fn names_are_safe_on_every_drive_format() {
        assert_eq!(safe_file_name("tickets 2026/11:30?.csv"), "tickets 2026_11_30_.csv");
        assert_eq!(safe_file_name("report. . "), "report");
        assert_eq!(safe_file_name("CON"), "_CON");
        assert_eq!(safe_file_name("nul.csv"), "_nul.csv");
        assert_eq!(safe_file_name("com1 .txt"), "_com1 .txt");
        assert_eq!(safe_file_name("console.csv"), "console.csv");
        assert_eq!(safe_file_name("a\u{7}b\"c<d>e|f*g\\h"), "a_b_c_d_e_f_g_h");
        assert_eq!(safe_file_name("..."), "export");
        let long = format!("{}.csv", "é".repeat(300));
        let safe = safe_file_name(&long);
        assert!(safe.len() <= 200 && safe.ends_with(".csv"), "{safe}");
    }

    #[test]
    fn a_file_too_big_for_the_drive_is_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let e = check_fits(dir.path(), u64::MAX / 2).unwrap_err();
        assert!(e.message.contains("free"), "{}", e.message);
        check_fits(dir.path(), 10).unwrap();
    }

    #[tokio::test]
    async fn a_saved_file_is_checked_and_renamed_into_place() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("tickets.csv");
        let body = b"id,name\n1,Ada\n".to_vec();
        let sha = hex::encode(Sha256::digest(&body));
        let mut seen = 0;
        let (got, size) = save_chunks(
            chunks(vec![Ok(body[..5].to_vec()), Ok(body[5..].to_vec())]),
            &target,
            Some(&sha),
            |n| seen = n,
        )
        .await
        .unwrap();
        assert_eq!(
            (got.as_str(), size, seen),
            (sha.as_str(), body.len() as u64, body.len() as u64)
        );
        assert_eq!(std::fs::read(&target).unwrap(), body);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    #[tokio::test]
    async fn a_dropped_connection_leaves_no_file_under_the_chosen_name() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("tickets.csv");
        std::fs::write(&target, b"the older copy").unwrap();
        let e = save_chunks(
            chunks(vec![Ok(b"half of it".to_vec()), Err("connection reset".into())]),
            &target,
            None,
            |_| {},
        )
        .await
        .unwrap_err();
        assert!(e.message.contains("dropped"), "{}", e.message);
        assert_eq!(
            std::fs::read(&target).unwrap(),
            b"the older copy",
            "the old file is untouched"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no partial file left"
        );
    }

    /// A reopen that serves `body` from the asked offset, cut after `cut` bytes each
    /// time (whole if `None`), and records the offsets asked for.
    fn serving(body: Vec<u8>, cuts: Vec<Option<usize>>, asked: std::sync::Arc<std::sync::Mutex<Vec<u64>>>) -> Resume {
        let mut cuts = cuts.into_iter();
        quick(Box::new(move |from| {
            asked.lock().unwrap().push(from);
            let rest = body[from as usize..].to_vec();
            let parts = match cuts.next().flatten() {
                Some(cut) => vec![Ok(rest[..cut].to_vec()), Err("connection reset".to_string())],
                None => vec![Ok(rest)],
            };
            Box::pin(async move { Ok(chunks(parts)) })
        }))
    }

    /// Waits of a few milliseconds instead of [`RESUME_WAITS`].
    const QUICK: [std::time::Duration; 5] = [std::time::Duration::from_millis(5); 5];

    fn quick(reopen: Reopen) -> Resume {
        Resume {
            waits: &QUICK,
            ..Resume::new(reopen)
        }
    }

    #[tokio::test]
    async fn a_broken_download_is_picked_up_at_the_first_byte_not_yet_received() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("tickets.json");
        // Over two write batches, so bytes already written and bytes still pending are
        // both in play when the connection breaks.
        let body: Vec<u8> = (0..(3 * WRITE_BATCH as u32)).map(|i| (i % 251) as u8).collect();
        let sha = hex::encode(Sha256::digest(&body));
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        // Broken after 1000 bytes, then twice more part way, then whole.
        let resume = serving(body.clone(), vec![Some(WRITE_BATCH + 7), Some(0), None], asked.clone());
        let first = chunks(vec![Ok(body[..1000].to_vec()), Err("connection reset".into())]);
        let mut seen = Vec::new();
        let (got, size) = save_resumable(first, Some(resume), &target, Some(&sha), |n| seen.push(n))
            .await
            .unwrap();
        assert_eq!((got.as_str(), size), (sha.as_str(), body.len() as u64));
        assert_eq!(std::fs::read(&target).unwrap(), body, "the pieces make the file");
        let from_second = 1000 + WRITE_BATCH as u64 + 7;
        assert_eq!(*asked.lock().unwrap(), [1000, from_second, from_second]);
        assert!(
            seen.windows(2).all(|w| w[0] <= w[1]),
            "progress never goes back: {seen:?}"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    #[tokio::test]
    async fn a_server_that_stays_away_ends_the_save_once_the_waits_run_out_with_nothing_saved() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("tickets.csv");
        let tries = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = tries.clone();
        let start = std::time::Instant::now();
        let ms = std::time::Duration::from_millis;
        const WAITS: [std::time::Duration; 3] = [
            std::time::Duration::from_millis(10),
            std::time::Duration::from_millis(20),
            std::time::Duration::from_millis(40),
        ];
        let resume = Resume {
            waits: &WAITS,
            ..Resume::new(Box::new(move |from| {
                log.lock().unwrap().push((from, start.elapsed()));
                Box::pin(async {
                    Err(UiError::new(
                        crate::error::ErrorKind::Offline,
                        "The server cannot be reached.",
                    ))
                })
            }))
        };
        let first = chunks(vec![Ok(b"half of it".to_vec()), Err("connection reset".into())]);
        let e = save_resumable(first, Some(resume), &target, None, |_| {})
            .await
            .unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Offline);
        assert_eq!(
            e.message,
            "The download broke off and could not be picked up again in 1 s of trying. The server cannot be reached. Nothing was saved under \"tickets.csv\"; try again."
        );
        let tries = tries.lock().unwrap();
        assert!(
            tries.iter().all(|(from, _)| *from == 10),
            "always from the first missing byte: {tries:?}"
        );
        // At once, then one attempt after each wait (sleeps last at least that long).
        let at: Vec<_> = tries.iter().map(|(_, t)| *t).collect();
        assert_eq!(at.len(), 4, "{at:?}");
        assert!(
            at[1] - at[0] >= ms(10) && at[2] - at[1] >= ms(20) && at[3] - at[2] >= ms(40),
            "{at:?}"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no partial file left"
        );
    }

    #[tokio::test]
    async fn a_refused_resume_ends_the_save_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("tickets.csv");
        std::fs::write(&target, b"the older copy").unwrap();
        let tries = std::sync::Arc::new(std::sync::Mutex::new(0));
        let count = tries.clone();
        let resume = Resume::new(Box::new(move |_| {
            *count.lock().unwrap() += 1;
            Box::pin(async {
                Err(UiError::new(
                    crate::error::ErrorKind::NotFound,
                    "That export is no longer on the server.",
                ))
            })
        }));
        let first = chunks(vec![Ok(b"half of it".to_vec()), Err("connection reset".into())]);
        let e = save_resumable(first, Some(resume), &target, None, |_| {})
            .await
            .unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::NotFound);
        assert!(
            e.message.contains("could not be picked up again: That export"),
            "{}",
            e.message
        );
        assert_eq!(*tries.lock().unwrap(), 1);
        assert_eq!(std::fs::read(&target).unwrap(), b"the older copy");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn a_connection_that_keeps_dropping_before_a_megabyte_ends_the_save() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("tickets.csv");
        let tries = std::sync::Arc::new(std::sync::Mutex::new(0));
        let count = tries.clone();
        // Every connection brings 10 bytes and drops.
        let resume = quick(Box::new(move |_| {
            *count.lock().unwrap() += 1;
            Box::pin(async { Ok(chunks(vec![Ok(vec![b'x'; 10]), Err("connection reset".into())])) })
        }));
        let first = chunks(vec![Ok(vec![b'x'; 10]), Err("connection reset".into())]);
        let e = save_resumable(first, Some(resume), &target, None, |_| {})
            .await
            .unwrap_err();
        assert!(e.message.contains("kept dropping (20 times in a row"), "{}", e.message);
        assert_eq!(*tries.lock().unwrap(), MAX_SHORT_RUNS, "no more connections than that");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no partial file left"
        );
    }

    #[tokio::test]
    async fn a_connection_gone_silent_is_taken_as_dropped_and_picked_up_again() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("tickets.csv");
        let body = b"the first part, then silence, then the rest".to_vec();
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let resume = Resume {
            stall: std::time::Duration::from_millis(50),
            ..serving(body.clone(), vec![None], asked.clone())
        };
        let first: Chunks =
            Box::pin(futures_util::stream::iter([Ok(body[..14].to_vec())]).chain(futures_util::stream::pending()));
        let (_, size) = save_resumable(first, Some(resume), &target, None, |_| {})
            .await
            .unwrap();
        assert_eq!(size, body.len() as u64);
        assert_eq!(std::fs::read(&target).unwrap(), body);
        assert_eq!(*asked.lock().unwrap(), [14]);
    }

    fn answer(status: u16, range: Option<&str>) -> Result<reqwest::Response, repairops_api::ClientError> {
        let mut r = tauri::http::Response::builder().status(status);
        if let Some(range) = range {
            r = r.header("content-range", range);
        }
        Ok(reqwest::Response::from(r.body("rest of the file").unwrap()))
    }

    #[test]
    fn only_the_range_asked_for_is_taken_as_the_rest() {
        assert!(resumed_chunks(answer(206, Some("bytes 100-199/200")), 100).is_ok());
        assert!(
            resumed_chunks(answer(200, None), 0).is_ok(),
            "from the start, the whole file"
        );
        let whole = resumed_chunks(answer(200, None), 100).err().unwrap();
        assert_eq!(
            whole.message,
            "The server did not resume the download at byte 100 (it answered 200)."
        );
        let elsewhere = resumed_chunks(answer(206, Some("bytes 0-199/200")), 100).err().unwrap();
        assert!(
            elsewhere.message.contains("answered 206 with bytes 0-199/200"),
            "{}",
            elsewhere.message
        );
        let past_the_end = Err(repairops_api::ClientError::Api {
            status: 416,
            code: "range_not_satisfiable".into(),
            message: "nothing there".into(),
            details: None,
        });
        assert!(resumed_chunks(past_the_end, 200).is_ok(), "nothing was missing");
    }

    #[tokio::test]
    async fn a_checksum_mismatch_saves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("tickets.csv");
        let e = save_chunks(
            chunks(vec![Ok(b"abc".to_vec())]),
            &target,
            Some(&"0".repeat(64)),
            |_| {},
        )
        .await
        .unwrap_err();
        assert!(e.message.contains("checksum"), "{}", e.message);
        assert!(!target.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn verify_tells_intact_from_changed_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let list = SavedList::new(dir.path().join("saved.json"));
        let file = dir.path().join("a.csv");
        std::fs::write(&file, b"abc").unwrap();
        let (sha, size) = hash_file(&file).unwrap();
        let path = file.to_string_lossy().into_owned();
        list.add(SavedFile {
            path: path.clone(),
            sha256: sha,
            size,
            saved_at: "2026-11-30T10:00:00Z".into(),
            what: "test".into(),
            server: "https://127.0.0.1:8443".into(),
        })
        .unwrap();
        assert!(list.verify(&path).unwrap().intact);
        std::fs::write(&file, b"abd").unwrap();
        let v = list.verify(&path).unwrap();
        assert!(!v.intact && v.message.starts_with("Changed"), "{}", v.message);
        std::fs::remove_file(&file).unwrap();
        let v = list.verify(&path).unwrap();
        assert!(!v.intact && v.message.starts_with("Not found"), "{}", v.message);
        assert_eq!(
            list.verify("/elsewhere").unwrap_err().kind,
            crate::error::ErrorKind::NotFound
        );
    }
}
