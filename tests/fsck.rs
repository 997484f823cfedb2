//! `fsck` on real repositories: exact counts on a sound one, and the right problem, naming the
//! right key and nothing else, for each kind of damage done to its files. Also the `floe fsck`
//! command's output and exit codes.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::cli::{floe, Run};
use common::{filled, int32_array, p};
use floe::{
    FsckOptions, FsckProblem, FsckReport, NodePath, Repository, RepositorySettings, SnapshotId,
};
use serde_json::{json, Value};

const DIRS: [&str; 4] = ["snapshots", "manifests", "txlogs", "chunks"];

fn settings() -> RepositorySettings {
    RepositorySettings {
        inline_threshold: 8,
        single_object_threshold: 256,
        pack_target_bytes: 1024,
        shard_target_refs: 4,
        delta_max_entries: 3,
        txlog_inline_max_bytes: 100,
        io_concurrency: 4,
        ..RepositorySettings::default()
    }
}

/// Every object of the digest-addressed directories: key → size.
fn objects(root: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for dir in DIRS {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            out.insert(format!("{dir}/{name}"), entry.metadata().unwrap().len());
        }
    }
    out
}

/// Keys present now that were not in `before`, within `dir`.
fn added(root: &Path, before: &BTreeMap<String, u64>, dir: &str) -> Vec<String> {
    objects(root)
        .into_keys()
        .filter(|k| k.starts_with(&format!("{dir}/")) && !before.contains_key(k))
        .collect()
}

/// A repository exercising every kind of object, and the keys the damage tests aim at.
struct Built {
    _dir: tempfile::TempDir,
    path: PathBuf,
    /// The single-chunk object of `a[3]` (referenced only by the compacted base of `a`).
    single: String,
    /// The pack of `a[1]`, `a[2]` (referenced only by that base).
    pack: String,
    /// The compacted base of shard `a[0]`.
    base: String,
    /// The transaction log object of commit 4.
    txlog: String,
    /// Commit 4, in the middle of `main`'s history.
    middle: SnapshotId,
    /// Objects only the deleted branch `gone` reaches.
    unreachable: Vec<String>,
}

impl Built {
    fn location(&self) -> &str {
        self.path.to_str().unwrap()
    }

    async fn open(&self) -> Repository {
        let storage = floe::open_storage(self.location(), &vec![]).unwrap();
        Repository::open(storage, settings()).await.unwrap()
    }

    async fn fsck(&self) -> FsckReport {
        self.open()
            .await
            .fsck(FsckOptions::default())
            .await
            .unwrap()
    }

    /// `fsck` without verifying chunk digests (sizes and ranges only).
    async fn quick_fsck(&self) -> FsckReport {
        self.open()
            .await
            .fsck(FsckOptions {
                verify_chunk_digests: false,
            })
            .await
            .unwrap()
    }

    fn file(&self, key: &str) -> PathBuf {
        self.path.join(key)
    }
}

/// main:  c0 - c1 - c2 - c4 - c5        tag v1 = c2
/// dev:             c2 - c3
/// gone:                      c5 - c6   (then deleted: c6 and its chunk object are garbage)
///
/// c1: array a [16] chunks [1] (shard shape [4]): a[0] inline, a[1], a[2] packed, a[3] a single
///     object; shard [0] has 4 entries > delta_max_entries, so it is compacted into a base.
/// c2: group g, array g/b [2, 2]; b[0,0] inline, b[1,1] packed, a[4] packed, a[5] inline.
/// c3: a[1] rewritten (one-entry delta over the base).
/// c4: array big [40] (at a long path, so its transaction log is an object): 40 inline chunks,
/// 10 compacted bases, a transaction log object.
/// c5: a[0] deleted (tombstone over the base), a shrunk to [5] (a[5] trimmed).
async fn build() -> Built {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("repo");
    let storage = floe::create_storage(path.to_str().unwrap(), &vec![]).unwrap();
    let repo = Repository::init(storage, settings()).await.unwrap();
    let a = p("a");

    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&NodePath::root(), Default::default())
        .await
        .unwrap();
    s.create_array(&a, int32_array(&[16], &[1])).await.unwrap();
    let before = objects(&path);
    s.set_chunk(&a, &[0], filled(4, 1)).await.unwrap();
    s.set_chunk(&a, &[1], filled(100, 2)).await.unwrap();
    s.set_chunk(&a, &[2], filled(100, 3)).await.unwrap();
    s.set_chunk(&a, &[3], filled(300, 4)).await.unwrap();
    s.commit("c1", None).await.unwrap();
    let chunks = added(&path, &before, "chunks");
    assert_eq!(chunks.len(), 2);
    let sizes = objects(&path);
    let (single, pack) = if sizes[&chunks[0]] == 324 {
        (chunks[0].clone(), chunks[1].clone())
    } else {
        (chunks[1].clone(), chunks[0].clone())
    };
    assert_eq!((sizes[&single], sizes[&pack]), (324, 224));
    let bases = added(&path, &before, "manifests");
    assert_eq!(bases.len(), 1, "shard a[0] is compacted into a base");
    let base = bases[0].clone();

    s.create_group(&p("g"), Default::default()).await.unwrap();
    s.create_array(&p("g/b"), int32_array(&[2, 2], &[1, 1]))
        .await
        .unwrap();
    s.set_chunk(&p("g/b"), &[0, 0], filled(3, 5)).await.unwrap();
    s.set_chunk(&p("g/b"), &[1, 1], filled(60, 6))
        .await
        .unwrap();
    s.set_chunk(&a, &[4], filled(100, 7)).await.unwrap();
    s.set_chunk(&a, &[5], filled(5, 8)).await.unwrap();
    let c2 = s.commit("c2", None).await.unwrap();
    repo.create_tag("v1", c2).await.unwrap();

    repo.create_branch("dev", c2).await.unwrap();
    let dev = repo.writable_session("dev").await.unwrap();
    dev.set_chunk(&a, &[1], filled(50, 9)).await.unwrap();
    dev.commit("c3", None).await.unwrap();

    let before = objects(&path);
    let big = p("big_array_with_a_long_name_so_that_its_log_is_stored_apart");
    s.create_array(&big, int32_array(&[40], &[1]))
        .await
        .unwrap();
    for i in 0..40u64 {
        s.set_chunk(&big, &[i], filled(1, i as u8)).await.unwrap();
    }
    let middle = s.commit("c4", None).await.unwrap();
    let txlogs = added(&path, &before, "txlogs");
    assert_eq!(txlogs.len(), 1, "commit 4's log is too large to inline");
    assert_eq!(added(&path, &before, "manifests").len(), 10);

    s.delete_chunk(&a, &[0]).await.unwrap();
    s.resize_array(&a, &[5]).await.unwrap();
    let c5 = s.commit("c5", None).await.unwrap();

    repo.create_branch("gone", c5).await.unwrap();
    let gone = repo.writable_session("gone").await.unwrap();
    let before = objects(&path);
    gone.set_chunk(&a, &[2], filled(300, 10)).await.unwrap();
    let c6 = gone.commit("c6", None).await.unwrap();
    repo.delete_branch("gone").await.unwrap();
    let mut unreachable = added(&path, &before, "chunks");
    assert_eq!(unreachable.len(), 1);
    assert!(added(&path, &before, "txlogs").is_empty());
    assert!(added(&path, &before, "manifests").is_empty());
    unreachable.push(format!("snapshots/{c6}"));

    Built {
        _dir: dir,
        path,
        single,
        pack,
        base,
        txlog: txlogs[0].clone(),
        middle,
        unreachable,
    }
}

/// Asserts that the report lists exactly one problem, of `kind`, naming `key`.
fn only_problem<'r>(report: &'r FsckReport, kind: &str, key: &str) -> &'r FsckProblem {
    assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
    let problem = &report.problems[0];
    assert_eq!((problem.kind(), problem.key()), (kind, key), "{problem}");
    problem
}

#[tokio::test]
async fn a_sound_repository_has_no_problems_and_exact_counts() {
    let built = build().await;
    let report = built.fsck().await;
    assert!(report.is_clean(), "{:#?}", report.problems);

    let reachable: BTreeMap<String, u64> = objects(&built.path)
        .into_iter()
        .filter(|(k, _)| !built.unreachable.contains(k))
        .collect();
    let in_dir = |dir: &str| {
        reachable
            .keys()
            .filter(|k| k.starts_with(&format!("{dir}/")))
            .count() as u64
    };
    assert_eq!(
        (report.branches, report.tags),
        (2, 1),
        "main and dev; gone is deleted"
    );
    assert_eq!(report.snapshots, 6);
    assert_eq!(in_dir("snapshots"), 6);
    assert_eq!(report.manifests, 11);
    assert_eq!(in_dir("manifests"), 11);
    assert_eq!(report.txlogs, 1);
    assert_eq!(report.chunk_objects, 4);
    assert_eq!(in_dir("chunks"), 4);
    // Base of a[0]: 4; c2: a[1] 2 + b 2; c3: a[0]'s delta 1; c4: big's bases 40; c5: a[1] 1,
    // a[0]'s delta is one tombstone (0).
    assert_eq!(report.chunk_refs, 50);
    assert_eq!(report.bytes_verified, reachable.values().sum::<u64>());

    let quick = built.quick_fsck().await;
    assert!(quick.is_clean(), "{:#?}", quick.problems);
    let chunk_bytes: u64 = reachable
        .iter()
        .filter(|(k, _)| k.starts_with("chunks/"))
        .map(|(_, s)| s)
        .sum();
    assert_eq!(quick.bytes_verified, report.bytes_verified - chunk_bytes);
    assert_eq!(
        (
            quick.snapshots,
            quick.manifests,
            quick.chunk_objects,
            quick.chunk_refs
        ),
        (6, 11, 4, 50)
    );
}

#[tokio::test]
async fn a_deleted_chunk_object_is_missing() {
    let built = build().await;
    std::fs::remove_file(built.file(&built.single)).unwrap();
    let report = built.fsck().await;
    let problem = only_problem(&report, "missing", &built.single);
    assert!(
        matches!(problem, FsckProblem::Missing { referenced_by, .. } if *referenced_by == built.base),
        "{problem}"
    );
    assert_eq!(report.chunk_objects, 3);
}

#[tokio::test]
async fn a_flipped_byte_in_a_pack_is_a_digest_mismatch() {
    let built = build().await;
    let file = built.file(&built.pack);
    let mut data = std::fs::read(&file).unwrap();
    data[100] ^= 0x40;
    std::fs::write(&file, data).unwrap();
    let report = built.fsck().await;
    only_problem(&report, "digest_mismatch", &built.pack);

    // Without chunk digests only sizes and ranges are checked: the flip goes unnoticed.
    let quick = built.quick_fsck().await;
    assert!(quick.is_clean(), "{:#?}", quick.problems);
}

#[tokio::test]
async fn a_truncated_manifest_is_a_digest_mismatch() {
    let built = build().await;
    let file = built.file(&built.base);
    let data = std::fs::read(&file).unwrap();
    std::fs::write(&file, &data[..data.len() / 2]).unwrap();
    let report = built.fsck().await;
    only_problem(&report, "digest_mismatch", &built.base);
    // The objects only that base references are no longer reachable, hence not counted.
    assert_eq!(report.chunk_objects, 2);
}

#[tokio::test]
async fn a_snapshot_deleted_in_the_middle_of_history_is_missing() {
    let built = build().await;
    let key = format!("snapshots/{}", built.middle);
    std::fs::remove_file(built.file(&key)).unwrap();
    let report = built.fsck().await;
    only_problem(&report, "missing", &key);
    // The walk goes on past the gap: every other snapshot is still checked.
    assert_eq!(report.snapshots, 5);
}

#[tokio::test]
async fn a_corrupt_transaction_log_is_a_digest_mismatch() {
    let built = build().await;
    let file = built.file(&built.txlog);
    let mut data = std::fs::read(&file).unwrap();
    let last = data.len() - 1;
    data[last] ^= 0xff;
    std::fs::write(&file, data).unwrap();
    let report = built.fsck().await;
    only_problem(&report, "digest_mismatch", &built.txlog);
}

#[tokio::test]
async fn a_corrupt_branch_record_is_reported_and_its_history_skipped() {
    let built = build().await;
    // Record 0 created dev at c2; record 1 moved it to c3 and is its head.
    let key = "refs/branch.dev/00000000000000000001";
    std::fs::write(built.file(key), b"not a ref record").unwrap();
    let report = built.fsck().await;
    only_problem(&report, "corrupt", key);
    assert_eq!(
        (report.branches, report.snapshots),
        (1, 5),
        "dev's own commit is not reached"
    );
}

// ---- the command line -------------------------------------------------------------------

fn floe_fsck(repo: &Path, args: &[&str]) -> Run {
    floe(repo, &[&["fsck"], args].concat())
}

#[tokio::test]
async fn cli_exit_codes_text_and_json() {
    let built = build().await;

    let run = floe_fsck(&built.path, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    let stdout = run.text();
    assert!(stdout.contains("snapshots       6\n"), "{stdout}");
    assert!(stdout.contains("problems        0\n"), "{stdout}");
    assert!(!stdout.contains("problem:"), "{stdout}");

    let run = floe_fsck(&built.path, &["--json", "--no-chunk-digests"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc: Value = serde_json::from_str(&run.text()).unwrap();
    assert_eq!(doc["clean"], json!(true));
    assert_eq!(doc["chunk_digests_verified"], json!(false));
    assert_eq!(
        (doc["snapshots"].clone(), doc["chunk_refs"].clone()),
        (json!(6), json!(50))
    );
    assert_eq!(doc["problems"], json!([]));

    std::fs::remove_file(built.file(&built.single)).unwrap();
    let mut data = std::fs::read(built.file(&built.txlog)).unwrap();
    data[30] ^= 1;
    std::fs::write(built.file(&built.txlog), data).unwrap();

    let run = floe_fsck(&built.path, &[]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert_eq!(run.stderr, "error: the repository has 2 problems\n");
    let stdout = run.text();
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("problem: "))
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with(&format!("problem: {}: missing", built.single)),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with(&format!("problem: {}: digest mismatch", built.txlog)),
        "{}",
        lines[1]
    );

    let run = floe_fsck(&built.path, &["--json"]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    let doc: Value = serde_json::from_str(&run.text()).unwrap();
    assert_eq!(doc["clean"], json!(false));
    let problems = doc["problems"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = problems
        .iter()
        .map(|p| (p["kind"].as_str().unwrap(), p["key"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("missing", built.single.as_str()),
            ("digest_mismatch", built.txlog.as_str())
        ]
    );
}
