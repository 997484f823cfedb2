//! Crash safety: a child process committing in a loop is killed with SIGKILL at random moments.
//! After every kill the repository opens, `fsck` (chunk digests on) finds no problem, and every
//! commit the child reported as acknowledged is in `main`'s log and reads back bit-exact.
//!
//! The child re-executes this test binary: with `FLOE_CRASH_REPO` set, the ignored test
//! `crash_child` is the committing loop. Each child life starts from the repository the
//! previous one left behind. The kill delays come from a seeded generator: set
//! `FLOE_CRASH_SEED` to replay a run (the base seed is printed).

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use common::p;
use floe::{FsckOptions, NodePath, Repository, RepositorySettings, SnapshotId, VersionSpec};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map};

const CHILD_REPO: &str = "FLOE_CRASH_REPO";
/// Length of the array: far more elements than commits in any run.
const ARRAY_LEN: u64 = 1 << 20;

/// Small thresholds so that commits write inline chunks, packs and single-chunk objects.
fn settings() -> RepositorySettings {
    RepositorySettings {
        inline_threshold: 64,
        single_object_threshold: 2048,
        ..RepositorySettings::default()
    }
}

async fn open(location: &str) -> Repository {
    let storage = floe::open_storage(location, &vec![]).unwrap();
    Repository::open(storage, settings()).await.unwrap()
}

/// The bytes commit `index` writes into element `index`: inline, packed or its own object,
/// depending on the index.
fn chunk_bytes(index: u64) -> Bytes {
    let len = match index % 3 {
        0 => 16,
        1 => 700,
        _ => 3000,
    };
    let seed = index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    Bytes::from(
        (0..len as u64)
            .map(|k| (seed.rotate_left((k % 64) as u32) ^ k) as u8)
            .collect::<Vec<u8>>(),
    )
}

fn message(index: u64) -> String {
    format!("crash commit {index}")
}

/// The child's loop: each commit writes element `index` = the generation of its parent (unique
/// along the linear history of a single writer), then prints `ack <index> <snapshot id>`.
async fn child_loop(location: &str) {
    let repo = open(location).await;
    let mut out = std::io::stdout();
    loop {
        let session = repo.writable_session("main").await.unwrap();
        let index = repo
            .snapshot_entry(session.snapshot_id())
            .await
            .unwrap()
            .generation;
        session
            .set_chunk(&p("a"), &[index], chunk_bytes(index))
            .await
            .unwrap();
        let mut meta = Map::new();
        meta.insert("index".into(), json!(index));
        let id = session.commit(&message(index), Some(meta)).await.unwrap();
        writeln!(out, "ack {index} {id}").unwrap();
        out.flush().unwrap();
    }
}

/// Entry point of the committing child (does nothing unless started by `kill_children`).
#[test]
#[ignore = "helper: run by the crash tests"]
fn crash_child() {
    let Ok(location) = std::env::var(CHILD_REPO) else {
        return;
    };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(child_loop(&location));
}

/// The acknowledgements in a child's output: complete `ack` lines only (a line cut by the
/// kill was never a complete acknowledgement).
fn parse_acks(output: &str) -> Vec<(u64, SnapshotId)> {
    let mut acks = Vec::new();
    let complete = match output.rfind('\n') {
        Some(end) => &output[..end],
        None => "",
    };
    for line in complete.lines() {
        let Some(rest) = line.strip_prefix("ack ") else {
            continue;
        };
        let (index, id) = rest.split_once(' ').unwrap();
        acks.push((index.parse().unwrap(), id.parse().unwrap()));
    }
    acks
}

/// Runs `lives` children on one new repository, each killed after a random delay of 10-200
/// ms, and checks the repository after every kill. Returns the number of acknowledged commits
/// and the number of lives that acknowledged at least one.
async fn kill_children(lives: u32, seed: u64) -> (usize, u32) {
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().to_str().unwrap();
    {
        let storage = floe::open_storage(location, &vec![]).unwrap();
        let repo = Repository::init(storage, settings()).await.unwrap();
        let s = repo.writable_session("main").await.unwrap();
        s.create_group(&NodePath::root(), Map::new()).await.unwrap();
        s.create_array(&p("a"), common::uint8_array(&[ARRAY_LEN], &[1]))
            .await
            .unwrap();
        s.commit("create", None).await.unwrap();
    }
    let exe = std::env::current_exe().unwrap();
    // Every acknowledged commit: element index -> snapshot id.
    let mut acknowledged: BTreeMap<u64, SnapshotId> = BTreeMap::new();
    let mut lives_with_acks = 0;
    for life in 0..lives {
        let mut child = Command::new(&exe)
            .args([
                "crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_REPO, location)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = Duration::from_millis(rng.random_range(10..=200));
        std::thread::sleep(delay);
        // `Child::kill` sends SIGKILL on unix.
        child.kill().unwrap();
        let mut output = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut output)
            .unwrap();
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "life {life}: the child ended by itself: {output}"
        );
        let acks = parse_acks(&output);
        if !acks.is_empty() {
            lives_with_acks += 1;
        }
        for (index, id) in &acks {
            let previous = acknowledged.insert(*index, *id);
            assert_eq!(
                previous, None,
                "life {life}: index {index} acknowledged twice"
            );
        }
        check_repository(location, &acknowledged, &acks, life).await;
    }
    // At the end, every acknowledged commit's chunk reads back at the tip and at its own
    // snapshot.
    let repo = open(location).await;
    let tip = repo
        .readonly_session(&VersionSpec::Branch("main".into()))
        .await
        .unwrap();
    for (index, id) in &acknowledged {
        let expected = chunk_bytes(*index);
        assert_eq!(
            tip.get_chunk(&p("a"), &[*index]).await.unwrap(),
            Some(expected.clone()),
            "element {index} at the tip"
        );
        let at = repo.session_at_snapshot(*id).await.unwrap();
        assert_eq!(
            at.get_chunk(&p("a"), &[*index]).await.unwrap(),
            Some(expected),
            "element {index} at {id}"
        );
    }
    println!(
        "{lives} kills, {} acknowledged commits, {lives_with_acks} lives with acknowledgements",
        acknowledged.len()
    );
    (acknowledged.len(), lives_with_acks)
}

/// The checks after one kill: open, fsck clean, every acknowledged commit in the log with its
/// message, and the commits acknowledged by this life read back bit-exact.
async fn check_repository(
    location: &str,
    acknowledged: &BTreeMap<u64, SnapshotId>,
    new_acks: &[(u64, SnapshotId)],
    life: u32,
) {
    let repo = open(location).await;
    let report = repo.fsck(FsckOptions::default()).await.unwrap();
    assert!(
        report.is_clean(),
        "life {life}: fsck found problems: {:#?}",
        report.problems
    );
    let log = common::linear_history(&repo).await;
    let in_log: BTreeMap<SnapshotId, &floe::LogEntry> = log.iter().map(|e| (e.id, e)).collect();
    for (index, id) in acknowledged {
        let entry = in_log
            .get(id)
            .unwrap_or_else(|| panic!("life {life}: acknowledged commit {index} ({id}) lost"));
        assert_eq!(entry.message, message(*index), "life {life}: {id}");
    }
    let session = repo.session_at_snapshot(log[0].id).await.unwrap();
    for (index, id) in new_acks {
        assert_eq!(
            session.get_chunk(&p("a"), &[*index]).await.unwrap(),
            Some(chunk_bytes(*index)),
            "life {life}: element {index} of acknowledged commit {id}"
        );
    }
}

/// `repositories` new repositories, `lives` kills each, seeds derived from `base_seed`.
async fn kill_rounds(repositories: u64, lives: u32, base_seed: u64) {
    let base_seed = std::env::var("FLOE_CRASH_SEED")
        .ok()
        .map_or(base_seed, |s| s.parse().unwrap());
    println!("crash test base seed {base_seed} (FLOE_CRASH_SEED={base_seed} replays it)");
    let (mut acked, mut lives_with_acks) = (0, 0);
    for round in 0..repositories {
        let (a, l) = kill_children(lives, base_seed + round).await;
        acked += a;
        lives_with_acks += l;
    }
    let total = lives * repositories as u32;
    println!("{total} kills in all, {acked} acknowledged commits checked");
    assert!(
        lives_with_acks * 4 >= total,
        "too few lives got as far as a commit ({lives_with_acks} of {total}): the kills test little"
    );
}

#[tokio::test]
async fn acknowledged_commits_survive_sigkill() {
    // 200 kills over twenty repositories of 10 lives each: fsck walks the whole history after
    // every kill, and a child commits up to ~40 times per life, so a single repository's
    // history would make the checks dominate in debug builds.
    kill_rounds(20, 10, 0x5eed_0000).await;
}

/// Heavier: 1000 kills (ten repositories of 100 lives).
/// `cargo test --release --test crash -- --ignored acknowledged_commits_survive_1000_sigkills`
#[tokio::test]
#[ignore = "long-running variant"]
async fn acknowledged_commits_survive_1000_sigkills() {
    kill_rounds(10, 100, 0x5eed_1000).await;
}
