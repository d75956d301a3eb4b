//! Restoring a snapshot, or one file or stream of it.
//!
//! Every blob is verified (decrypted, decompressed, re-hashed to its id) before a byte
//! of it is written. Files are written to `<name>.rv-partial` and renamed when complete,
//! so an interrupted restore never leaves a half file under a real name. Paths from the
//! repository are checked so that a damaged or hostile snapshot cannot write outside
//! the target folder.

use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use crate::Id;
use crate::error::{Result, VaultError};
use crate::format::{FileType, Node, NodeKind, Snapshot};
use crate::progress::{Progress, ProgressEvent};
use crate::repository::{Index, Repository};

/// What a restore wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RestoreStats {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
}

/// Turns a node's stored path into a relative path that stays inside the target.
fn safe_relative(node: &Node) -> Result<PathBuf> {
    let bytes = node
        .path_bytes()
        .ok_or_else(|| VaultError::corrupt(format!("tree entry {:?}", node.path), "path_hex is not hex"))?;
    let bad = || {
        VaultError::corrupt(
            format!("tree entry {:?}", node.path),
            "path would leave the restore folder",
        )
    };
    #[cfg(unix)]
    let rel = {
        use std::os::unix::ffi::OsStrExt;
        PathBuf::from(std::ffi::OsStr::from_bytes(&bytes))
    };
    #[cfg(not(unix))]
    let rel = PathBuf::from(String::from_utf8(bytes).map_err(|_| bad())?);
    if rel.as_os_str().is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(bad());
    }
    Ok(rel)
}

/// The nodes under `only` (that path and everything inside it), or all of them.
fn select<'a>(nodes: &'a [Node], only: Option<&str>) -> Result<Vec<&'a Node>> {
    let Some(only) = only.map(|p| p.trim_matches('/')) else {
        return Ok(nodes.iter().collect());
    };
    let picked: Vec<&Node> = nodes
        .iter()
        .filter(|n| n.path == only || n.path.strip_prefix(only).is_some_and(|rest| rest.starts_with('/')))
        .collect();
    if picked.is_empty() {
        return Err(VaultError::NotFound {
            what: "path in snapshot",
            name: only.to_string(),
        });
    }
    Ok(picked)
}

/// Writes a file's content by reading its blobs, merging reads of blobs that sit next
/// to each other in the same pack.
pub(crate) fn write_content(
    repo: &Repository,
    index: &Index,
    node: &Node,
    out: &mut dyn Write,
    progress: &dyn Progress,
) -> Result<u64> {
    let mut written = 0u64;
    let mut i = 0;
    while i < node.blobs.len() {
        let first = node.blobs[i];
        let loc = *index.blobs.get(&first).ok_or_else(|| {
            VaultError::corrupt(
                format!("blob {first}"),
                format!("needed by {:?} but in no index", node.path),
            )
        })?;
        // Extend the run while the next blob follows directly in the same pack.
        let mut j = i + 1;
        let mut end = loc.offset + u64::from(loc.length);
        while j < node.blobs.len() && end - loc.offset < 32 * 1024 * 1024 {
            match index.blobs.get(&node.blobs[j]) {
                Some(next) if next.pack == loc.pack && next.offset == end => {
                    end += u64::from(next.length);
                    j += 1;
                }
                _ => break,
            }
        }
        let pack_path = FileType::Pack.path(&loc.pack);
        let run = repo.backend().read_range(&pack_path, loc.offset, end - loc.offset)?;
        if run.len() as u64 != end - loc.offset {
            return Err(VaultError::corrupt(
                &pack_path,
                "shorter than the index says (truncated)",
            ));
        }
        let run = PackRun {
            bytes: &run,
            start: loc.offset,
            path: &pack_path,
        };
        written += write_blobs(repo, index, node, &node.blobs[i..j], &run, out, progress)?;
        i = j;
    }
    Ok(written)
}

/// Bytes read from a pack: `bytes` start at `start` in the pack at `path`.
struct PackRun<'a> {
    bytes: &'a [u8],
    start: u64,
    path: &'a str,
}

/// Decrypts `blobs` of `node` out of a run of their pack and writes their plaintext to
/// `out`.
fn write_blobs(
    repo: &Repository,
    index: &Index,
    node: &Node,
    blobs: &[Id],
    run: &PackRun<'_>,
    out: &mut dyn Write,
    progress: &dyn Progress,
) -> Result<u64> {
    let mut written = 0u64;
    for id in blobs {
        let b = index.blobs[id];
        let at = (b.offset - run.start) as usize;
        let plain = repo.open_blob(
            id,
            b.compressed,
            b.raw_length,
            &run.bytes[at..at + b.length as usize],
            run.path,
        )?;
        out.write_all(&plain)
            .map_err(|e| VaultError::io("write", &node.path, e))?;
        written += plain.len() as u64;
        progress.advance(plain.len() as u64);
    }
    Ok(written)
}

/// Writes one file or stream of a snapshot to `out`.
pub fn restore_to_writer(
    repo: &Repository,
    index: &Index,
    snapshot: &Snapshot,
    path: &str,
    out: &mut dyn Write,
) -> Result<u64> {
    let nodes = repo.read_tree(index, snapshot)?;
    let path = path.trim_matches('/');
    let node = nodes
        .iter()
        .find(|n| n.path == path && matches!(n.kind, NodeKind::File | NodeKind::Stream))
        .ok_or_else(|| VaultError::NotFound {
            what: "file or stream in snapshot",
            name: path.to_string(),
        })?;
    let written = write_content(repo, index, node, out, &crate::progress::NoProgress)?;
    if written != node.size {
        return Err(VaultError::corrupt(
            format!("tree entry {:?}", node.path),
            "content length differs from the recorded size",
        ));
    }
    Ok(written)
}

/// Restores a snapshot (or the part of it under `only`) into `target`.
pub fn restore(
    repo: &Repository,
    index: &Index,
    snapshot: &Snapshot,
    target: &Path,
    only: Option<&str>,
    progress: &dyn Progress,
) -> Result<RestoreStats> {
    restore_except(repo, index, snapshot, target, only, &|_| false, progress)
}

/// [`restore`], leaving out the files `already_there` says the caller has put in place
/// itself (say, from a verified local copy), so only the rest is read from storage.
pub fn restore_except(
    repo: &Repository,
    index: &Index,
    snapshot: &Snapshot,
    target: &Path,
    only: Option<&str>,
    already_there: &(dyn Fn(&Node) -> bool + Sync),
    progress: &dyn Progress,
) -> Result<RestoreStats> {
    let nodes = repo.read_tree(index, snapshot)?;
    let picked: Vec<&Node> = select(&nodes, only)?
        .into_iter()
        .filter(|n| !(matches!(n.kind, NodeKind::File) && already_there(n)))
        .collect();
    let total: u64 = picked.iter().map(|n| n.size).sum();
    progress.phase("restore", Some(total));
    std::fs::create_dir_all(target).map_err(|e| VaultError::io("create", target, e))?;

    let mut stats = RestoreStats::default();
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    let mut links = Vec::new();
    for node in picked {
        let dest = target.join(safe_relative(node)?);
        refuse_links_inside(target, &dest)?;
        match node.kind {
            NodeKind::Dir => {
                std::fs::create_dir_all(&dest).map_err(|e| VaultError::io("create", &dest, e))?;
                stats.dirs += 1;
                dirs.push((node, dest));
            }
            NodeKind::File | NodeKind::Stream => files.push((node, dest)),
            // Links last, so nothing is ever written through one the snapshot made.
            NodeKind::Symlink => links.push((node, dest)),
        }
    }

    // Files in parallel. Files whose blobs all sit in one pack are restored in groups
    // by pack, one read per group (a shop's photos are tens of thousands of small
    // files: one read each would cost far more than the bytes); the rest one by one,
    // largest first so the threads finish together.
    let work = plan_work(index, &mut files);
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<VaultError>> = Mutex::new(None);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 4);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = work.get(i) else { break };
                    if failure.lock().map(|f| f.is_some()).unwrap_or(true) {
                        break;
                    }
                    let done = match item {
                        Work::One(k) => {
                            let (node, dest) = &files[*k];
                            restore_file(repo, index, node, dest, progress)
                        }
                        Work::Group(range) => restore_group(repo, index, &files[range.clone()], progress),
                    };
                    if let Err(e) = done {
                        if let Ok(mut f) = failure.lock() {
                            f.get_or_insert(e);
                        }
                        break;
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    for (node, _) in &files {
        stats.files += 1;
        stats.bytes += node.size;
    }
    for (node, dest) in &links {
        // Checked again: a link made just before may now sit between `target` and
        // this one (a snapshot holding `a -> /etc` and `a/x` must not write in /etc).
        refuse_links_inside(target, dest)?;
        restore_symlink(node, dest)?;
    }
    // Folder times last: writing files into them changed their times.
    for (node, dest) in dirs.iter().rev() {
        set_meta_dir(node, dest);
    }
    Ok(stats)
}

/// Puts every file and folder under `dir` on the device: a restore run after a
/// disaster must not leave empty files behind a power cut that follows it. Callers
/// decide when (a scratch copy that is read once and removed needs none). On Linux one
/// `syncfs` of the folder's file system does it: tens of thousands of photos cost one
/// call, not one each.
#[cfg(target_os = "linux")]
pub fn flush_tree(dir: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let folder = std::fs::File::open(dir).map_err(|e| VaultError::io("open", dir, e))?;
    // SAFETY: syncfs reads only the descriptor, which `folder` keeps open for the call.
    if unsafe { libc::syncfs(folder.as_raw_fd()) } != 0 {
        return Err(VaultError::io("flush to disk", dir, std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Elsewhere, file by file and then the folder (Unix; NTFS journals its folders).
#[cfg(not(target_os = "linux"))]
pub fn flush_tree(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| VaultError::io("read", dir, e))? {
        let path = entry.map_err(|e| VaultError::io("read", dir, e))?.path();
        let meta = std::fs::symlink_metadata(&path).map_err(|e| VaultError::io("read", &path, e))?;
        if meta.is_dir() {
            flush_tree(&path)?;
        } else if meta.is_file() {
            // Windows flushes only a file opened for writing; a file restored without
            // its owner's read bit opens only for writing.
            let open = |write: bool| std::fs::OpenOptions::new().read(!write).write(write).open(&path);
            open(cfg!(windows))
                .or_else(|e| match e.kind() {
                    std::io::ErrorKind::PermissionDenied => open(true),
                    _ => Err(e),
                })
                .and_then(|f| f.sync_all())
                .map_err(|e| VaultError::io("flush to disk", &path, e))?;
        }
    }
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| VaultError::io("flush to disk", dir, e))?;
    Ok(())
}

/// Fails when a folder between `target` and `dest` is a symlink: writing there could
/// land outside the restore folder.
fn refuse_links_inside(target: &Path, dest: &Path) -> Result<()> {
    let Ok(rel) = dest.strip_prefix(target) else {
        return Err(VaultError::InvalidInput(format!(
            "{} is outside the restore folder",
            dest.display()
        )));
    };
    let mut at = target.to_path_buf();
    let mut parts = rel.components().peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            break;
        }
        at.push(part);
        if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(VaultError::InvalidInput(format!(
                "{} is a symbolic link; refusing to restore through it (restore into an empty folder)",
                at.display()
            )));
        }
    }
    Ok(())
}

/// A unit of restore work: one file, or files next to each other in one pack.
enum Work {
    One(usize),
    Group(std::ops::Range<usize>),
}

/// The pack and byte span of a file whose blobs all sit in one pack.
fn single_pack_span(index: &Index, node: &Node) -> Option<(Id, u64, u64)> {
    let mut span: Option<(Id, u64, u64)> = None;
    for id in &node.blobs {
        let b = index.blobs.get(id)?;
        let end = b.offset + u64::from(b.length);
        span = match span {
            None => Some((b.pack, b.offset, end)),
            Some((pack, start, stop)) if pack == b.pack => Some((pack, start.min(b.offset), stop.max(end))),
            Some(_) => return None,
        };
    }
    span
}

/// Orders `files` (single-pack files by pack and offset first, then the rest largest
/// first) and cuts them into work: groups of single-pack files spanning at most 32 MiB
/// of one pack, and single files.
fn plan_work(index: &Index, files: &mut [(&Node, PathBuf)]) -> Vec<Work> {
    const SPAN: u64 = 32 * 1024 * 1024;
    files.sort_by_cached_key(|(node, _)| match single_pack_span(index, node) {
        Some((pack, start, _)) if !node.blobs.is_empty() => (0u8, Some(pack), start, std::cmp::Reverse(0u64)),
        _ => (1u8, None, 0, std::cmp::Reverse(node.size)),
    });
    let mut work = Vec::new();
    let mut i = 0;
    while i < files.len() {
        let Some((pack, start, mut stop)) =
            single_pack_span(index, files[i].0).filter(|_| !files[i].0.blobs.is_empty())
        else {
            work.push(Work::One(i));
            i += 1;
            continue;
        };
        let mut j = i + 1;
        while j < files.len() {
            match single_pack_span(index, files[j].0) {
                Some((p, s, e)) if p == pack && !files[j].0.blobs.is_empty() && e.max(stop) - start.min(s) <= SPAN => {
                    stop = stop.max(e);
                    j += 1;
                }
                _ => break,
            }
        }
        work.push(if j - i == 1 { Work::One(i) } else { Work::Group(i..j) });
        i = j;
    }
    work
}

/// Restores files that all live in one pack from a single read of the span they cover.
fn restore_group(repo: &Repository, index: &Index, files: &[(&Node, PathBuf)], progress: &dyn Progress) -> Result<()> {
    let spans: Vec<(Id, u64, u64)> = files.iter().filter_map(|(n, _)| single_pack_span(index, n)).collect();
    let (Some(first), true) = (spans.first(), spans.len() == files.len()) else {
        // Not one pack after all: file by file.
        for (node, dest) in files {
            restore_file(repo, index, node, dest, progress)?;
        }
        return Ok(());
    };
    let pack = first.0;
    let start = spans.iter().map(|s| s.1).min().unwrap_or(0);
    let stop = spans.iter().map(|s| s.2).max().unwrap_or(0);
    let pack_path = FileType::Pack.path(&pack);
    let run = repo.backend().read_range(&pack_path, start, stop - start)?;
    if run.len() as u64 != stop - start {
        return Err(VaultError::corrupt(
            &pack_path,
            "shorter than the index says (truncated)",
        ));
    }
    for (node, dest) in files {
        write_file(node, dest, |out| {
            let run = PackRun {
                bytes: &run,
                start,
                path: &pack_path,
            };
            write_blobs(repo, index, node, &node.blobs, &run, out, progress)
        })?;
        progress.event(&ProgressEvent::FileDone {
            path: node.path.clone(),
        });
    }
    Ok(())
}

fn restore_file(repo: &Repository, index: &Index, node: &Node, dest: &Path, progress: &dyn Progress) -> Result<()> {
    write_file(node, dest, |out| write_content(repo, index, node, out, progress))?;
    progress.event(&ProgressEvent::FileDone {
        path: node.path.clone(),
    });
    Ok(())
}

/// Writes a file under a temporary name with `content`, checks its length, sets its
/// time and mode, then renames it into place.
fn write_file(node: &Node, dest: &Path, content: impl FnOnce(&mut dyn Write) -> Result<u64>) -> Result<()> {
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| VaultError::io("create", parent, e))?;
    }
    let mut partial = dest.as_os_str().to_owned();
    partial.push(".rv-partial");
    let partial = PathBuf::from(partial);
    // A fresh file, never an existing one: a link left at this name (by an earlier
    // restore of a snapshot holding one there) must not be written through.
    match std::fs::remove_file(&partial) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(VaultError::io("remove", &partial, e)),
        _ => {}
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&partial)
        .map_err(|e| VaultError::io("create", &partial, e))?;
    let mut out = std::io::BufWriter::with_capacity((node.size as usize).clamp(8 * 1024, 1 << 20), file);
    let result = content(&mut out).and_then(|n| {
        let file = out
            .into_inner()
            .map_err(|e| VaultError::io("write", &partial, e.into_error()))?;
        if n != node.size {
            return Err(VaultError::corrupt(
                format!("tree entry {:?}", node.path),
                "content length differs from the recorded size",
            ));
        }
        if let Some(t) = recorded_time(node.mtime_ns) {
            let _ = file.set_modified(t);
        }
        set_mode(&file, node.mode);
        Ok(())
    });
    if let Err(e) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, dest).map_err(|e| VaultError::io("rename into place", dest, e))?;
    Ok(())
}

/// The permission bits a restore gives back: read, write and run for owner, group and
/// others (and a folder's sticky bit). Set-user and set-group bits from a snapshot are
/// dropped: a file restored by an administrator must not run as them.
#[cfg(unix)]
const KEPT_MODE: u32 = 0o1777;

/// A recorded modification time (nanoseconds from the Unix epoch, before it when
/// negative); `None` for 0, which writers use when they could not read one.
fn recorded_time(mtime_ns: i64) -> Option<std::time::SystemTime> {
    let span = Duration::from_nanos(mtime_ns.unsigned_abs());
    match mtime_ns.cmp(&0) {
        std::cmp::Ordering::Equal => None,
        std::cmp::Ordering::Greater => UNIX_EPOCH.checked_add(span),
        std::cmp::Ordering::Less => UNIX_EPOCH.checked_sub(span),
    }
}

/// Applies a recorded mode, 0 included: a file kept with no permissions (000) comes
/// back with none, not readable by everyone as the umask would make it.
#[cfg(unix)]
fn set_mode(file: &std::fs::File, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = file.set_permissions(std::fs::Permissions::from_mode(mode & 0o777));
}

#[cfg(not(unix))]
fn set_mode(_file: &std::fs::File, _mode: u32) {}

fn set_meta_dir(node: &Node, dest: &Path) {
    // Through a link these would change whatever it points at.
    if std::fs::symlink_metadata(dest).is_ok_and(|m| m.file_type().is_symlink()) {
        return;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The time first: a folder restored with no permissions cannot be opened after.
        if let Some(t) = recorded_time(node.mtime_ns)
            && let Ok(dir) = std::fs::File::open(dest)
        {
            let _ = dir.set_modified(t);
        }
        let _ = std::fs::set_permissions(dest, std::fs::Permissions::from_mode(node.mode & KEPT_MODE));
    }
    #[cfg(not(unix))]
    if let Some(t) = recorded_time(node.mtime_ns)
        && let Ok(dir) = std::fs::File::open(dest)
    {
        let _ = dir.set_modified(t);
    }
}

#[cfg(unix)]
fn restore_symlink(node: &Node, dest: &Path) -> Result<()> {
    let target = node
        .target
        .as_deref()
        .ok_or_else(|| VaultError::corrupt(format!("tree entry {:?}", node.path), "symlink without a target"))?;
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| VaultError::io("create", parent, e))?;
    }
    let _ = std::fs::remove_file(dest);
    std::os::unix::fs::symlink(target, dest).map_err(|e| VaultError::io("create symlink", dest, e))
}

#[cfg(not(unix))]
fn restore_symlink(_node: &Node, _dest: &Path) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::NodeKind;

    fn node(path: &str) -> Node {
        Node {
            path: path.into(),
            path_hex: None,
            kind: NodeKind::File,
            mode: 0,
            mtime_ns: 0,
            size: 0,
            inode: 0,
            ctime_ns: 0,
            blobs: vec![],
            target: None,
        }
    }

    #[test]
    fn hostile_paths_are_refused() {
        for p in ["../etc/passwd", "/etc/passwd", "a/../../b", "", "./a"] {
            assert!(safe_relative(&node(p)).is_err(), "{p:?} accepted");
        }
        assert_eq!(
            safe_relative(&node("attachments/a b/ü.jpg")).unwrap(),
            PathBuf::from("attachments/a b/ü.jpg")
        );
    }

    #[test]
    fn flushing_a_restored_tree_names_a_folder_it_cannot_reach() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/photo.jpg"), b"jpeg").unwrap();
        flush_tree(dir.path()).unwrap();
        let gone = dir.path().join("gone");
        let e = flush_tree(&gone).unwrap_err().to_string();
        assert!(e.contains(&gone.display().to_string()), "{e}");
    }

    #[test]
    fn raw_path_bytes_are_used_and_a_damaged_hex_is_refused_not_replaced() {
        // `photos/\xff.jpg`: not UTF-8, so `path` is lossy and the bytes are in hex.
        let raw = Node {
            path_hex: Some(hex::encode(b"photos/\xff.jpg")),
            ..node("photos/\u{fffd}.jpg")
        };
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            assert_eq!(safe_relative(&raw).unwrap().as_os_str().as_bytes(), b"photos/\xff.jpg");
        }
        let damaged = Node {
            path_hex: Some("70686f746f732fzz".into()),
            ..node("photos/\u{fffd}.jpg")
        };
        let e = safe_relative(&damaged).unwrap_err().to_string();
        assert!(e.contains("path_hex is not hex"), "{e}");
        // Hex of a path that climbs out is refused like the text would be.
        let climbing = Node {
            path_hex: Some(hex::encode(b"../\xff")),
            ..node("x")
        };
        assert!(safe_relative(&climbing).is_err());
    }

    #[test]
    fn select_takes_a_subtree_not_a_prefix() {
        let nodes = vec![node("a"), node("a/x"), node("ab"), node("ab/y")];
        let picked: Vec<_> = select(&nodes, Some("a"))
            .unwrap()
            .iter()
            .map(|n| n.path.clone())
            .collect();
        assert_eq!(picked, vec!["a", "a/x"]);
        assert!(select(&nodes, Some("zz")).is_err());
    }
}
