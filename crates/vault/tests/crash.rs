//! kill -9 of a backup at points drawn from a printed seed: afterwards the repository
//! passes `check --read-data` and every snapshot restores byte-identical.
//!
//! The kill is triggered from the backup's own progress events (`--json` prints one
//! line per stored pack, finished file, index and snapshot), so the points are spread
//! over the whole write order without depending on timing. `VAULT_KILL_ROUNDS` sets the
//! number of rounds (CI runs a few dozen; a soak runs thousands) and `VAULT_KILL_SEED`
//! replays a run.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::*;

fn base(work: &Path) -> Vec<String> {
    vec![
        "--repo".into(),
        work.join("repo").display().to_string(),
        "--key-file".into(),
        work.join("key").display().to_string(),
    ]
}

fn run_ok(args: &[String]) -> String {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = run_cli(&refs, &[]);
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}

/// Changes the data a little, as a shop day does.
fn mutate(src: &Path, rng: &mut Rng, round: u64) {
    let n = 2 + rng.below(3);
    for i in 0..n {
        let size = 200_000 + rng.below(1_500_000) as usize;
        std::fs::write(src.join(format!("photos/r{round}-{i}.jpg")), rng.bytes(size)).unwrap();
    }
    let db = src.join("live.db");
    let mut data = std::fs::read(&db).unwrap();
    data.extend(shop_text(rng, 100_000));
    let at = rng.below(data.len() as u64 - 1000) as usize;
    data[at..at + 1000].copy_from_slice(&rng.bytes(1000));
    std::fs::write(&db, data).unwrap();
}

#[test]
fn killed_backups_leave_a_sound_repository() {
    let rounds: u64 = std::env::var("VAULT_KILL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    let seed: u64 = std::env::var("VAULT_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        });
    println!("kill test: seed {seed}, {rounds} rounds (VAULT_KILL_SEED={seed} replays it)");
    let mut rng = Rng::new(seed);

    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("shop");
    std::fs::create_dir_all(src.join("photos")).unwrap();
    std::fs::write(src.join("live.db"), shop_text(&mut rng, 4 * 1024 * 1024)).unwrap();
    for i in 0..8 {
        std::fs::write(src.join(format!("photos/base-{i}.jpg")), rng.bytes(600_000)).unwrap();
    }
    let b = base(work.path());
    run_ok(&[b.clone(), vec!["init".into(), "--pack-size-mib".into(), "1".into()]].concat());

    // Tag each backup with its round; remember what the data looked like in that round.
    let mut expected: BTreeMap<u64, BTreeMap<PathBuf, String>> = BTreeMap::new();
    let mut killed = 0;
    // Round 0 runs to the end and counts the events a whole backup prints; later rounds
    // draw their kill point from a range a quarter longer, so about one in five completes.
    let mut events_per_backup: Option<u64> = None;
    for round in 0..rounds {
        mutate(&src, &mut rng, round);
        expected.insert(round, hash_tree(&src));
        let args = [
            b.clone(),
            vec![
                "--json".into(),
                "backup".into(),
                src.display().to_string(),
                "--tag".into(),
                format!("round={round}"),
            ],
        ]
        .concat();
        let mut child = cli()
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let kill_at = match events_per_backup {
            None => u64::MAX,
            Some(n) => rng.below(n + n / 4 + 1),
        };
        let mut seen = 0;
        let mut was_killed = false;
        let stderr = child.stderr.take().unwrap();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            assert!(!line.contains("panicked"), "{line}");
            if line.contains("\"event\"") && !line.contains("\"phase\"") {
                if seen == kill_at {
                    child.kill().unwrap(); // SIGKILL
                    was_killed = true;
                    break;
                }
                seen += 1;
            }
        }
        let status = child.wait().unwrap();
        if was_killed {
            killed += 1;
        } else {
            assert!(status.success(), "round {round}: backup failed: {status}");
            events_per_backup = Some(seen);
        }
        println!(
            "round {round}: kill after event {kill_at}: {}",
            if was_killed { "killed" } else { "completed" }
        );

        let out = run_ok(&[b.clone(), vec!["check".into(), "--read-data".into(), "--json".into()]].concat());
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(
            report["problems"].as_array().unwrap().is_empty(),
            "round {round}: {report}"
        );
    }
    assert!(
        killed >= rounds / 2,
        "too few backups were actually killed ({killed} of {rounds}); the kill points missed"
    );

    // Every snapshot that exists restores exactly the data of its round.
    let out = run_ok(&[b.clone(), vec!["snapshots".into(), "--json".into()]].concat());
    let snaps: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert!(!snaps.is_empty());
    for snap in &snaps {
        let round: u64 = snap["tags"]["round"].as_str().unwrap().parse().unwrap();
        let id = snap["id"].as_str().unwrap();
        let target = work.path().join(format!("restore-{id}"));
        run_ok(
            &[
                b.clone(),
                vec![
                    "restore".into(),
                    id.into(),
                    "--target".into(),
                    target.display().to_string(),
                ],
            ]
            .concat(),
        );
        assert_eq!(
            hash_tree(&target.join("shop")),
            expected[&round],
            "snapshot {id} of round {round} differs"
        );
        std::fs::remove_dir_all(&target).unwrap();
    }

    // Prune clears what the killed backups left, and the repository stays sound.
    run_ok(&[b.clone(), vec!["prune".into()]].concat());
    let out = run_ok(&[b.clone(), vec!["check".into(), "--read-data".into(), "--json".into()]].concat());
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(report["problems"].as_array().unwrap().is_empty(), "{report}");
    assert!(
        report["warnings"].as_array().unwrap().is_empty(),
        "prune left unindexed packs: {report}"
    );
}
