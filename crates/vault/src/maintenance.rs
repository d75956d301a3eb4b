//! Forget, prune, check and copy.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use fastcdc::v2020::{FastCDC, Normalization};

use crate::error::{Result, VaultError};
use crate::format::{FORMAT_VERSION, FileType, IndexedBlob, IndexedPack, Node, Snapshot};
use crate::id::Id;
use crate::pack::{Compressor, PackWriter};
use crate::progress::{Progress, ProgressEvent};
use crate::repository::{Index, Repository};

/// Which snapshots `forget` keeps.
#[derive(Debug, Clone)]
pub struct ForgetPolicy {
    /// Keep snapshots taken within this many days before `now`.
    pub keep_within_days: u32,
    /// Snapshots carrying any of these tags are always kept (e.g. `kind=manual`).
    pub keep_tags: Vec<(String, String)>,
    pub now: DateTime<Utc>,
}

/// Removes snapshots the policy does not keep; returns their ids. The newest snapshot
/// is always kept, so a repository that stopped receiving backups is never emptied.
pub fn forget(repo: &Repository, policy: &ForgetPolicy, progress: &dyn Progress) -> Result<Vec<Id>> {
    let _lock = repo.lock(false, "forget")?;
    // A snapshot that cannot be read is kept (its time is unknown): it is for a person
    // to forget by id, and prune stops until then.
    let (snapshots, _damaged) = repo.snapshots_lenient()?;
    // A window reaching before the first representable time keeps every snapshot.
    let cutoff = Duration::try_days(i64::from(policy.keep_within_days))
        .and_then(|window| policy.now.checked_sub_signed(window))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let newest = snapshots.last().map(|(id, _)| *id);
    let doomed: Vec<Id> = snapshots
        .iter()
        .filter(|(id, s)| {
            Some(*id) != newest && s.time < cutoff && !policy.keep_tags.iter().any(|(k, v)| s.tags.get(k) == Some(v))
        })
        .map(|(id, _)| *id)
        .collect();
    forget_ids(repo, &doomed, progress)?;
    Ok(doomed)
}

/// Removes the named snapshots (their data stays until `prune`).
pub fn forget_ids(repo: &Repository, ids: &[Id], progress: &dyn Progress) -> Result<()> {
    for id in ids {
        let path = FileType::Snapshot.path(id);
        repo.backend().delete(&path)?;
        progress.event(&ProgressEvent::Deleted { object: path });
    }
    Ok(())
}

/// What prune did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PruneStats {
    pub packs_deleted: u64,
    pub packs_repacked: u64,
    pub packs_kept: u64,
    pub unindexed_packs_deleted: u64,
    pub bytes_freed: u64,
    pub blobs_removed: u64,
}

/// Every blob any snapshot still uses (tree blobs included).
fn used_blobs(repo: &Repository, index: &Index) -> Result<HashSet<Id>> {
    let mut used = HashSet::new();
    for (id, snap) in repo.snapshots()? {
        used.extend(snap.tree.iter().copied());
        let nodes = repo.read_tree(index, &snap).map_err(|e| {
            VaultError::corrupt(
                FileType::Snapshot.path(&id),
                format!("its tree cannot be read, so prune stops to lose nothing: {e}"),
            )
        })?;
        for n in nodes {
            used.extend(n.blobs);
        }
    }
    Ok(used)
}

/// Removes data no snapshot uses, in two phases under an exclusive lock.
///
/// Phase one plans without changing anything: which packs are wholly unused, which are
/// partly used (their used blobs are copied into new packs), and which packs no index
/// lists (left by an interrupted backup). Phase two writes the new packs, then one new
/// index listing every pack that stays, then deletes the old index objects, then the
/// packs. A crash in phase two leaves either the old or the new index in force, each
/// listing only packs that exist.
pub fn prune(repo: &Repository, progress: &dyn Progress) -> Result<PruneStats> {
    let lock = repo.lock(true, "prune")?;
    let index = repo.load_index()?;
    let used = used_blobs(repo, &index)?;
    if let Some(missing) = used.iter().find(|b| !index.contains(b)) {
        return Err(VaultError::corrupt(
            format!("blob {missing}"),
            "used by a snapshot but in no index; prune stops to lose nothing (run `check`)",
        ));
    }

    // Phase one: plan.
    // Each pack as its index object lists it, duplicates included (a blob stored twice
    // by concurrent backups stays listed in every pack that is kept).
    // A pack listed by several index objects gets the union of their listings: one may
    // name only some of its blobs (format §4.4), and the new index must lose none.
    let mut packs_by_id: HashMap<Id, IndexedPack> = HashMap::new();
    for file in &index.files {
        for pack in repo.read_index_file(file)?.packs {
            match packs_by_id.entry(pack.id) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(pack);
                }
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    let listed = o.get_mut();
                    let have: HashSet<Id> = listed.blobs.iter().map(|b| b.id).collect();
                    listed
                        .blobs
                        .extend(pack.blobs.into_iter().filter(|b| !have.contains(&b.id)));
                    listed.blobs.sort_by_key(|b| b.offset);
                }
            }
        }
    }
    let stored: HashMap<Id, u64> = repo
        .backend()
        .list(FileType::Pack.dir())?
        .into_iter()
        .filter_map(|o| FileType::Pack.id_of(&o.path).map(|id| (id, o.size)))
        .collect();
    // A pack the index lists but storage lacks (or holds at another size) is lost
    // data: the new index would go on listing it, and prune must not be the step that
    // makes that look settled. `check` names every such pack.
    for (pack, (size, _)) in &index.packs {
        let path = FileType::Pack.path(pack);
        match stored.get(pack) {
            None => {
                return Err(VaultError::corrupt(
                    path,
                    "listed in the index but not in storage; prune stops to lose nothing (run `check`)",
                ));
            }
            Some(found) if found != size => {
                return Err(VaultError::corrupt(
                    path,
                    format!("{found} bytes where the index says {size}; prune stops to lose nothing (run `check`)"),
                ));
            }
            Some(_) => {}
        }
    }
    let mut stats = PruneStats::default();
    let mut keep: Vec<Id> = Vec::new();
    let mut repack: Vec<Id> = Vec::new();
    let mut delete: Vec<Id> = Vec::new();
    for (pack, (size, _)) in &index.packs {
        let blobs = packs_by_id.get(pack).map(|p| p.blobs.as_slice()).unwrap_or(&[]);
        let used_here = blobs.iter().filter(|b| used.contains(&b.id)).count();
        if used_here == 0 {
            delete.push(*pack);
            stats.bytes_freed += size;
        } else if used_here < blobs.len() {
            repack.push(*pack);
        } else {
            keep.push(*pack);
        }
    }
    let unindexed: Vec<Id> = stored
        .keys()
        .filter(|p| !index.packs.contains_key(p))
        .copied()
        .collect();
    progress.phase("prune", Some(repack.iter().map(|p| index.packs[p].0).sum()));

    // Phase two: new packs, new index, drop old index objects, delete packs.
    let mut new_packs: Vec<IndexedPack> = Vec::new();
    let mut writer = PackWriter::new(repo.config().pack_size);
    let mut compressor = Compressor::new(repo.config().compression_level);
    let mut written = HashSet::new();
    for pack in &repack {
        let (bytes, entries) = repo.read_pack(pack)?;
        for e in entries {
            if used.contains(&e.id) && written.insert(e.id) {
                let start = e.offset as usize;
                let plain = repo.open_blob(
                    &e.id,
                    e.compressed,
                    e.raw_length,
                    &bytes[start..start + e.length as usize],
                    "",
                )?;
                if let Some(p) = writer.add(repo.keys(), compressor.seal(repo.keys(), e.id, &plain)) {
                    new_packs.push(repo.store_pack(p)?);
                }
            } else if !used.contains(&e.id) {
                stats.blobs_removed += 1;
            }
        }
        stats.bytes_freed += index.packs[pack].0;
        progress.advance(index.packs[pack].0);
        repo.refresh_lock(&lock)?;
    }
    if let Some(p) = writer.finish(repo.keys()) {
        new_packs.push(repo.store_pack(p)?);
    }
    for p in &new_packs {
        stats.bytes_freed = stats.bytes_freed.saturating_sub(p.size);
    }
    if delete.is_empty() && repack.is_empty() && unindexed.is_empty() {
        stats.packs_kept = keep.len() as u64;
        return Ok(stats);
    }

    // The new index lists every pack that stays, with its blobs.
    let mut kept_packs: Vec<IndexedPack> = Vec::new();
    for pack in &keep {
        if let Some(listed) = packs_by_id.get(pack) {
            kept_packs.push(listed.clone());
        }
    }
    kept_packs.extend(new_packs);
    let new_index = repo.write_index(kept_packs)?;
    progress.event(&ProgressEvent::IndexWritten {
        index: new_index.to_hex(),
    });
    for old in &index.files {
        let path = FileType::Index.path(old);
        repo.backend().delete(&path)?;
        progress.event(&ProgressEvent::Deleted { object: path });
    }
    for pack in delete.iter().chain(&repack).chain(&unindexed) {
        let path = FileType::Pack.path(pack);
        repo.backend().delete(&path)?;
        progress.event(&ProgressEvent::Deleted { object: path });
    }
    for pack in &delete {
        stats.blobs_removed += packs_by_id.get(pack).map_or(0, |p| p.blobs.len() as u64);
    }
    stats.unindexed_packs_deleted = unindexed.len() as u64;
    stats.bytes_freed += unindexed.iter().map(|p| stored[p]).sum::<u64>();
    stats.packs_deleted = delete.len() as u64;
    stats.packs_repacked = repack.len() as u64;
    stats.packs_kept = keep.len() as u64;
    Ok(stats)
}

/// What `check` found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CheckReport {
    /// Damage: each names the object concerned.
    pub problems: Vec<String>,
    /// Harmless oddities (packs no index lists, left by an interrupted backup).
    pub warnings: Vec<String>,
    pub snapshots: u64,
    pub packs: u64,
    pub blobs: u64,
    /// Bytes read and verified with `read_data`.
    pub bytes_verified: u64,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the repository's structure and, with `read_data`, every byte of every pack.
pub fn check(repo: &Repository, read_data: bool, progress: &dyn Progress) -> Result<CheckReport> {
    let lock = repo.lock(false, "check")?;
    let mut report = CheckReport::default();

    for info in repo.backend().list(FileType::Key.dir())? {
        if let Err(e) = crate::repository::read_bounded(
            repo.backend().as_ref(),
            &info.path,
            crate::repository::MAX_SMALL_OBJECT,
            Some(info.size),
        )
        .and_then(|b| crate::repository::parse_key_object(&b, &info.path))
        {
            report.problems.push(e.to_string());
        }
    }

    let stored: BTreeMap<Id, u64> = {
        let mut m = BTreeMap::new();
        for o in repo.backend().list(FileType::Pack.dir())? {
            match FileType::Pack.id_of(&o.path) {
                Some(id) if FileType::Pack.path(&id) == o.path => {
                    m.insert(id, o.size);
                }
                _ => report.problems.push(format!("{}: not a pack name", o.path)),
            }
        }
        m
    };

    let mut index = Index::default();
    // Every listing of each pack: an interrupted prune leaves a pack listed twice.
    let mut indexed: HashMap<Id, Vec<IndexedPack>> = HashMap::new();
    for o in repo.backend().list(FileType::Index.dir())? {
        let Some(id) = FileType::Index.id_of(&o.path) else {
            report.problems.push(format!("{}: not an index name", o.path));
            continue;
        };
        match repo.read_index_file(&id) {
            Ok(file) => {
                for pack in file.packs {
                    index.add_pack(&pack, id);
                    indexed.entry(pack.id).or_default().push(pack);
                }
                index.files.push(id);
            }
            Err(e) => report.problems.push(e.to_string()),
        }
    }
    for (pack, entry) in indexed.iter().flat_map(|(p, l)| l.iter().map(move |e| (p, e))) {
        let path = FileType::Pack.path(pack);
        match stored.get(pack) {
            None => report
                .problems
                .push(format!("{path}: listed in the index but missing from storage")),
            Some(size) if *size != entry.size => report.problems.push(format!(
                "{path}: {size} bytes stored but the index says {} (truncated or replaced)",
                entry.size
            )),
            Some(_) => {}
        }
    }
    for pack in stored.keys().filter(|p| !indexed.contains_key(p)) {
        report.warnings.push(format!(
            "{}: no index lists it (left by an interrupted backup; prune removes it)",
            FileType::Pack.path(pack)
        ));
    }
    report.packs = stored.len() as u64;
    report.blobs = index.blobs.len() as u64;

    for o in repo.backend().list(FileType::Snapshot.dir())? {
        let Some(id) = FileType::Snapshot.id_of(&o.path) else {
            report.problems.push(format!("{}: not a snapshot name", o.path));
            continue;
        };
        report.snapshots += 1;
        let snap = match repo.read_snapshot(&id) {
            Ok(s) => s,
            Err(e) => {
                report.problems.push(e.to_string());
                continue;
            }
        };
        match repo.read_tree(&index, &snap) {
            Ok(nodes) => {
                let missing = nodes
                    .iter()
                    .flat_map(|n| n.blobs.iter().map(move |b| (n, b)))
                    .find(|(_, b)| !index.contains(b));
                if let Some((node, blob)) = missing {
                    report.problems.push(format!(
                        "{}: file {:?} needs blob {blob}, which no index lists",
                        o.path, node.path
                    ));
                }
            }
            Err(e) => report
                .problems
                .push(format!("{}: its tree cannot be read: {e}", o.path)),
        }
    }

    if read_data {
        progress.phase("check", Some(stored.values().sum()));
        for (pack, size) in &stored {
            let path = FileType::Pack.path(pack);
            match repo.read_pack(pack) {
                Ok((_, entries)) => {
                    report.bytes_verified += size;
                    // A listing may name only some of the header's blobs (format
                    // §4.4), but each it names must be there, at the place it says.
                    let held: HashMap<Id, &IndexedBlob> = entries.iter().map(|b| (b.id, b)).collect();
                    let strays = indexed
                        .get(pack)
                        .into_iter()
                        .flatten()
                        .flat_map(|listing| &listing.blobs)
                        .filter(|b| held.get(&b.id).is_none_or(|h| *h != *b));
                    if let Some(stray) = strays.clone().next() {
                        report.problems.push(format!(
                            "{path}: the index places blob {} where its header does not ({} such)",
                            stray.id,
                            strays.count()
                        ));
                    }
                }
                Err(e) => report.problems.push(e.to_string()),
            }
            progress.advance(*size);
            repo.refresh_lock(&lock)?;
        }
    }
    Ok(report)
}

/// What `copy` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CopyOutcome {
    /// (snapshot in the source, its copy in the destination)
    pub copied: Vec<(Id, Id)>,
    /// Source snapshots the destination already had.
    pub already_present: u64,
    pub blobs_added: u64,
    pub bytes_added: u64,
}

/// Copies snapshots (all, or those in `only`) from `src` into `dst`, which may have
/// other keys. Blob ids are keyed per repository, so blobs are re-hashed and trees
/// rewritten; blobs whose destination id is known from earlier copies are not read.
/// Each snapshot is written packs, index, snapshot, so an interrupted copy keeps what it
/// finished.
pub fn copy(src: &Repository, dst: &Repository, only: Option<&[Id]>, progress: &dyn Progress) -> Result<CopyOutcome> {
    // Into itself, every snapshot would be written again beside the one it came from.
    if src.config().id == dst.config().id {
        return Err(VaultError::InvalidInput(format!(
            "{} and {} have the same repository id ({}): they are the same repository, or one is a copy of the other's folder; copy to a repository made with `init`",
            src.location(),
            dst.location(),
            src.config().id.to_hex()
        )));
    }
    let lock = dst.lock(false, "copy")?;
    let src_index = src.load_index()?;
    let mut dst_index = dst.load_index()?;
    let dst_snaps = dst.snapshots()?;
    let present: HashMap<Id, Id> = dst_snaps
        .iter()
        .filter_map(|(id, s)| s.original.map(|o| (o, *id)))
        .collect();
    let mut outcome = CopyOutcome::default();

    // Learn src->dst blob ids from pairs copied before: their trees line up node by node.
    let mut map: HashMap<Id, Id> = HashMap::new();
    let wanted: Vec<(Id, Snapshot)> = src
        .snapshots()?
        .into_iter()
        .filter(|(id, _)| only.is_none_or(|o| o.contains(id)))
        .collect();
    if let Some((src_id, dst_id)) = wanted
        .iter()
        .rev()
        .find_map(|(id, _)| present.get(id).map(|d| (*id, *d)))
    {
        let s = src.read_snapshot(&src_id)?;
        let d = dst.read_snapshot(&dst_id)?;
        if let (Ok(sn), Ok(dn)) = (src.read_tree(&src_index, &s), dst.read_tree(&dst_index, &d))
            && sn.len() == dn.len()
        {
            for (a, b) in sn.iter().zip(&dn) {
                if a.path == b.path && a.blobs.len() == b.blobs.len() {
                    map.extend(a.blobs.iter().copied().zip(b.blobs.iter().copied()));
                }
            }
        }
    }

    for (src_id, snap) in wanted {
        if present.contains_key(&src_id) {
            outcome.already_present += 1;
            continue;
        }
        let nodes = src.read_tree(&src_index, &snap)?;
        progress.phase("copy", Some(nodes.iter().map(|n| n.size).sum()));
        let mut sink = CopySink {
            writer: PackWriter::new(dst.config().pack_size),
            compressor: Compressor::new(dst.config().compression_level),
            packs: Vec::new(),
            added: HashSet::new(),
        };
        // Blobs the destination lacks, read pack by pack (one read per pack, not per
        // blob), so memory stays flat and a first copy reads the source sequentially.
        let mut by_pack: BTreeMap<Id, Vec<(u64, Id)>> = BTreeMap::new();
        let mut seen = HashSet::new();
        for blob in nodes.iter().flat_map(|n| n.blobs.iter()) {
            let mapped = map.get(blob).is_some_and(|d| dst_index.contains(d));
            if mapped || !seen.insert(*blob) {
                continue;
            }
            let loc = src_index
                .blobs
                .get(blob)
                .ok_or_else(|| VaultError::corrupt(format!("blob {blob}"), "needed by a snapshot but in no index"))?;
            by_pack.entry(loc.pack).or_default().push((loc.offset, *blob));
        }
        for (pack, mut blobs) in by_pack {
            blobs.sort();
            let path = FileType::Pack.path(&pack);
            let bytes = crate::repository::read_bounded(src.backend().as_ref(), &path, src.max_pack_bytes(), None)?;
            for (_, blob) in blobs {
                let loc = src_index.blobs[&blob];
                let start = loc.offset as usize;
                let end = start + loc.length as usize;
                let sealed = bytes
                    .get(start..end)
                    .ok_or_else(|| VaultError::corrupt(&path, "shorter than the index says (truncated)"))?;
                let plain = src.open_blob(&blob, loc.compressed, loc.raw_length, sealed, &path)?;
                let d = dst.keys().blob_id(&plain);
                sink.store(dst, &dst_index, &plain, d, &mut outcome)?;
                map.insert(blob, d);
                progress.advance(plain.len() as u64);
            }
            dst.refresh_lock(&lock)?;
        }
        let mut new_nodes: Vec<Node> = Vec::with_capacity(nodes.len());
        for mut node in nodes {
            node.blobs = node
                .blobs
                .iter()
                .map(|b| {
                    map.get(b)
                        .copied()
                        .ok_or_else(|| VaultError::corrupt(format!("blob {b}"), "was not copied"))
                })
                .collect::<Result<_>>()?;
            new_nodes.push(node);
        }
        let mut tree_bytes = Vec::new();
        for node in &new_nodes {
            serde_json::to_writer(&mut tree_bytes, node).expect("nodes serialize");
            tree_bytes.push(b'\n');
        }
        let c = dst.config().chunker;
        let mut tree = Vec::new();
        let chunks = FastCDC::with_level_and_seed(
            &tree_bytes,
            c.min_size as usize,
            c.avg_size as usize,
            c.max_size as usize,
            Normalization::Level1,
            dst.keys().chunker_seed(),
        );
        for chunk in chunks {
            let data = &tree_bytes[chunk.offset..chunk.offset + chunk.length];
            let id = dst.keys().blob_id(data);
            sink.store(dst, &dst_index, data, id, &mut outcome)?;
            tree.push(id);
        }
        if let Some(p) = sink.writer.finish(dst.keys()) {
            sink.packs.push(dst.store_pack(p)?);
        }
        let packs = sink.packs;
        if !packs.is_empty() {
            let index_id = dst.write_index(packs.clone())?;
            for p in &packs {
                dst_index.add_pack(p, index_id);
            }
        }
        let copy = Snapshot {
            version: FORMAT_VERSION,
            tree,
            original: Some(src_id),
            ..snap
        };
        let dst_id = dst.write_snapshot(&copy)?;
        progress.event(&ProgressEvent::SnapshotWritten {
            snapshot: dst_id.to_hex(),
        });
        outcome.copied.push((src_id, dst_id));
    }
    Ok(outcome)
}

/// Where `copy` puts blobs new to the destination.
struct CopySink {
    writer: PackWriter,
    compressor: Compressor,
    packs: Vec<IndexedPack>,
    added: HashSet<Id>,
}

impl CopySink {
    fn store(
        &mut self,
        dst: &Repository,
        dst_index: &Index,
        plain: &[u8],
        id: Id,
        outcome: &mut CopyOutcome,
    ) -> Result<()> {
        if dst_index.contains(&id) || !self.added.insert(id) {
            return Ok(());
        }
        let sealed = self.compressor.seal(dst.keys(), id, plain);
        outcome.blobs_added += 1;
        outcome.bytes_added += sealed.bytes.len() as u64;
        if let Some(p) = self.writer.add(dst.keys(), sealed) {
            self.packs.push(dst.store_pack(p)?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Location;
    use crate::backup::{BackupOptions, Source, backup};
    use crate::crypto::MasterKey;
    use crate::progress::NoProgress;
    use crate::repository::InitOptions;

    #[test]
    fn a_listing_of_some_blobs_is_accepted_by_check_and_kept_whole_by_prune() {
        // Index objects are read in the order of their random names: several runs see
        // the whole listing and the partial one in either order.
        for _ in 0..4 {
            partial_listing_round();
        }
    }

    fn partial_listing_round() {
        let dir = tempfile::tempdir().unwrap();
        let backend = std::sync::Arc::new(
            Location::parse(&dir.path().join("r").to_string_lossy(), None)
                .unwrap()
                .open()
                .unwrap(),
        );
        let repo = Repository::init(backend, &MasterKey::generate(), InitOptions::default()).unwrap();
        let content: Vec<u8> = (0..250_000u32)
            .flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes())
            .collect();
        backup(
            &repo,
            vec![Source::stream("s", std::io::Cursor::new(content))],
            BackupOptions::default(),
            &NoProgress,
        )
        .unwrap();
        let index_id = repo.load_index().unwrap().files[0];
        let mut pack = repo.read_index_file(&index_id).unwrap().packs.remove(0);
        assert!(pack.blobs.len() > 1, "the test needs a pack of several blobs");

        // A second listing of the pack naming only its first blob, as older prunes wrote.
        pack.blobs.truncate(1);
        repo.write_index(vec![pack.clone()]).unwrap();
        let report = check(&repo, true, &NoProgress).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);

        // Prune keeps every blob either listing names (whichever index it reads last).
        let other = backup(
            &repo,
            vec![Source::stream(
                "t",
                std::io::Cursor::new(b"a snapshot to forget".to_vec()),
            )],
            BackupOptions::default(),
            &NoProgress,
        )
        .unwrap();
        forget_ids(&repo, &[other.snapshot_id], &NoProgress).unwrap();
        let pruned = prune(&repo, &NoProgress).unwrap();
        assert!(pruned.packs_deleted > 0, "{pruned:?}");
        let report = check(&repo, true, &NoProgress).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        let index = repo.load_index().unwrap();
        let (_, snapshot) = repo.snapshots().unwrap().remove(0);
        let mut restored = Vec::new();
        crate::restore::restore_to_writer(&repo, &index, &snapshot, "s", &mut restored).unwrap();
        assert_eq!(restored.len(), 1_000_000);

        // A listing that places a blob where the header does not is damage.
        pack.blobs[0].offset += 1;
        repo.write_index(vec![pack]).unwrap();
        let report = check(&repo, true, &NoProgress).unwrap();
        assert!(
            report.problems.iter().any(|p| p.contains("where its header does not")),
            "{:?}",
            report.problems
        );
    }
}
