//! Commits under injected storage faults ([`FaultyStorage`]).
//!
//! 1. An error injected at each storage call of one representative commit, one call at a
//!    time, before the call (it does not happen) and after it (its answer is lost): the
//!    repository always opens, the commit landed completely or not at all, fsck is clean, and
//!    retrying the commit lands it exactly once.
//! 2. Concurrent writers with 5% of their gets, puts and creates losing their answers: no
//!    false conflict, no lost and no duplicate commit.
//!
//! The bigger variant of 2 is ignored by default; run it with
//! `cargo test --release --test faults -- --ignored`.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{filled, history, p};
use floe::{
    DynStorage, Error, Fault, FaultRule, FaultyStorage, FsckOptions, Repository,
    RepositorySettings, Session, SnapshotId, StorageOp,
};
use serde_json::{json, Map};

const MESSAGE: &str = "the commit under test";

/// A repository with history and a session holding the commit under test: a chunk that goes
/// into a pack, an inline chunk, and an attribute change.
struct Fixture {
    storage: Arc<FaultyStorage>,
    session: Session,
    before: SnapshotId,
}

fn packed_chunk() -> Bytes {
    filled(2000, 7)
}

fn inline_chunk() -> Bytes {
    filled(16, 9)
}

fn attributes() -> Map<String, serde_json::Value> {
    let mut attributes = Map::new();
    attributes.insert("under_test".into(), json!(true));
    attributes
}

/// Settings that make a small commit write every kind of object: its transaction log goes to
/// an object of its own and its manifest shard is compacted into a new base.
fn fixture_settings() -> RepositorySettings {
    RepositorySettings {
        txlog_inline_max_bytes: 0,
        delta_max_entries: 1,
        ..RepositorySettings::default()
    }
}

async fn fixture() -> Fixture {
    let storage = Arc::new(FaultyStorage::new(
        floe::open_storage("memory://", &vec![]).unwrap(),
        0,
    ));
    let repo = Repository::init(storage.clone(), fixture_settings())
        .await
        .unwrap();
    // 7 commits on top of the root: the commit under test writes record 8, so it also
    // refreshes the branch hint.
    let ids = history(&repo, 7).await;
    let session = repo.writable_session("main").await.unwrap();
    session
        .set_chunk(&p("a"), &[0], packed_chunk())
        .await
        .unwrap();
    session
        .set_chunk(&p("a"), &[1], inline_chunk())
        .await
        .unwrap();
    session.set_attributes(&p("a"), attributes()).await.unwrap();
    Fixture {
        storage,
        session,
        before: *ids.last().unwrap(),
    }
}

/// A fresh handle on the repository, without faults.
async fn reopen(fixture: &Fixture) -> Repository {
    Repository::open(
        fixture.storage.inner().clone(),
        RepositorySettings::default(),
    )
    .await
    .unwrap()
}

/// Asserts that `id` is the commit under test, directly on `before`, with all its changes.
async fn assert_is_the_commit(repo: &Repository, id: SnapshotId, before: SnapshotId) {
    let log = repo.log_from(id, 2).await.unwrap();
    assert_eq!(log[0].message, MESSAGE);
    assert_eq!(
        log[1].id, before,
        "exactly one commit on top of the old tip"
    );
    let r = repo.session_at_snapshot(id).await.unwrap();
    assert_eq!(
        r.get_chunk(&p("a"), &[0]).await.unwrap(),
        Some(packed_chunk())
    );
    assert_eq!(
        r.get_chunk(&p("a"), &[1]).await.unwrap(),
        Some(inline_chunk())
    );
    assert_eq!(
        r.require_node(&p("a")).unwrap().metadata.attributes(),
        attributes()
    );
}

async fn assert_fsck_clean(repo: &Repository, context: &str) {
    let report = repo.fsck(FsckOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{context}: {:?}", report.problems);
}

/// Runs the commit under test with `fault` on the `index`th storage call (1-based) and
/// checks the all-or-nothing outcome and the retry.
async fn commit_with_fault_at(fault: Fault, index: u64, calls: &[(StorageOp, String)]) {
    let context = format!(
        "{fault:?} at call {index} ({:?})",
        calls.get(index as usize - 1)
    );
    let f = fixture().await;
    f.storage.add_rule(FaultRule::new(fault).nth(index));
    let first = f.session.commit(MESSAGE, None).await;
    assert_eq!(
        f.storage.counts().errors(),
        1,
        "{context}: fault not injected"
    );
    f.storage.clear_rules();

    let repo = reopen(&f).await;
    let tip = repo.branch_tip("main").await.unwrap();
    let landed = tip != f.before;
    if landed {
        assert_is_the_commit(&repo, tip, f.before).await;
    }
    if let Ok(id) = &first {
        assert!(
            landed,
            "{context}: commit returned {id} but main did not move"
        );
        assert_eq!(*id, tip, "{context}");
    }
    assert_fsck_clean(&repo, &context).await;

    let id = match first {
        Ok(id) => id,
        Err(e) => match f.session.commit(MESSAGE, None).await {
            Ok(id) => id,
            Err(again) => panic!("{context}: first error {e}; retry failed: {again}"),
        },
    };
    if landed {
        assert_eq!(
            id, tip,
            "{context}: the retry must return the landed commit"
        );
    }
    let repo = reopen(&f).await;
    assert_eq!(repo.branch_tip("main").await.unwrap(), id, "{context}");
    assert_is_the_commit(&repo, id, f.before).await;
    assert!(!f.session.has_changes(), "{context}");
    assert_fsck_clean(&repo, &context).await;
}

#[tokio::test]
async fn an_error_at_each_storage_call_of_a_commit_leaves_it_whole_or_absent() {
    let f = fixture().await;
    f.storage.start_recording();
    f.session.commit(MESSAGE, None).await.unwrap();
    let calls = f.storage.take_recording();
    // The representative commit writes a pack, a manifest, a transaction log, a snapshot,
    // the branch record and the branch hint.
    for (op, prefix) in [
        (StorageOp::Put, "chunks/"),
        (StorageOp::Put, "manifests/"),
        (StorageOp::Put, "txlogs/"),
        (StorageOp::Put, "snapshots/"),
        (StorageOp::Put, "refs/branch.main/hint"),
        (StorageOp::PutIfAbsent, "refs/branch.main/"),
    ] {
        assert!(
            calls.iter().any(|(o, k)| *o == op && k.starts_with(prefix)),
            "expected a {op:?} under {prefix}: {calls:?}"
        );
    }
    for index in 1..=calls.len() as u64 {
        commit_with_fault_at(Fault::ErrorBefore, index, &calls).await;
        commit_with_fault_at(Fault::ErrorAfter, index, &calls).await;
    }
}

/// What one writer saw.
#[derive(Debug, Default)]
struct WriterReport {
    /// Messages of the commits `commit()` acknowledged.
    committed: Vec<String>,
    /// Chunks (coordinate, bytes) of the acknowledged commits.
    chunks: Vec<(u64, Bytes)>,
    conflicts: u64,
    unknown_outcomes: u64,
}

/// Retries `op` while it fails with a retryable error (storage faults).
async fn retry<T, F, Fut>(what: &str, mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = floe::Result<T>>,
{
    for _ in 0..200 {
        match op().await {
            Ok(value) => return value,
            Err(Error::Storage { .. }) => continue,
            Err(e) => panic!("{what}: {e}"),
        }
    }
    panic!("{what}: still failing after 200 attempts");
}

async fn writer(
    storage: DynStorage,
    settings: RepositorySettings,
    w: u64,
    commits: u64,
) -> WriterReport {
    let repo = retry("open", || {
        Repository::open(storage.clone(), settings.clone())
    })
    .await;
    let session = retry("session", || repo.writable_session("main")).await;
    let mut report = WriterReport::default();
    for k in 0..commits {
        let message = format!("writer {w} commit {k}");
        let chunks: Vec<(u64, Bytes)> = (0..2)
            .map(|c| {
                let coord = (w * commits + k) * 2 + c;
                (coord, Bytes::from(format!("{w}/{k}/{c}")))
            })
            .collect();
        let a = p("a");
        for (coord, bytes) in &chunks {
            let coord = [*coord];
            retry("set_chunk", || session.set_chunk(&a, &coord, bytes.clone())).await;
        }
        let mut errors = Vec::new();
        loop {
            // A livelock guard: every failed call is retried, and each has a fair chance.
            if errors.len() >= 500 {
                panic!(
                    "{message}: too many attempts; last errors: {:?}",
                    &errors[errors.len() - 3..]
                );
            }
            let result = session.commit(&message, None).await;
            if let Err(e) = &result {
                errors.push(e.to_string());
            }
            match result {
                Ok(_) => {
                    report.committed.push(message.clone());
                    report.chunks.extend(chunks.iter().cloned());
                    break;
                }
                Err(Error::CommitOutcomeUnknown { .. }) => report.unknown_outcomes += 1,
                Err(Error::TooManyRebaseAttempts { .. } | Error::Storage { .. }) => {}
                Err(Error::Conflict { .. }) => {
                    report.conflicts += 1;
                    session.discard().await;
                    break;
                }
                Err(e) => panic!("{message}: unexpected error {e}"),
            }
        }
    }
    report
}

async fn lost_responses_run(writers: u64, commits: u64, seed: u64) -> u64 {
    let inner = floe::open_storage("memory://", &vec![]).unwrap();
    let storage = Arc::new(FaultyStorage::new(inner.clone(), seed));
    let settings = RepositorySettings {
        commit_backoff_base: Duration::from_millis(1),
        commit_backoff_max: Duration::from_millis(20),
        max_commit_attempts: 50,
        // Default cache size on purpose: a writer that falls far behind re-reads the
        // snapshots it rebases over; reads of immutable objects retry transient errors, so
        // 5% failed reads must not starve it.
        ..RepositorySettings::default()
    };
    let repo = Repository::init(inner.clone(), settings.clone())
        .await
        .unwrap();
    let setup = repo.writable_session("main").await.unwrap();
    setup
        .create_array(&p("a"), common::uint8_array(&[writers * commits * 2], &[1]))
        .await
        .unwrap();
    setup.commit("create", None).await.unwrap();

    storage.add_rule(
        FaultRule::new(Fault::ErrorAfter)
            .ops(&[StorageOp::Get, StorageOp::Put, StorageOp::PutIfAbsent])
            .probability(0.05),
    );
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let storage: DynStorage = storage.clone();
            tokio::spawn(writer(storage, settings.clone(), w, commits))
        })
        .collect();
    let mut reports = Vec::new();
    for task in tasks {
        reports.push(task.await.unwrap());
    }
    storage.clear_rules();
    let counts = storage.counts();

    let conflicts: u64 = reports.iter().map(|r| r.conflicts).sum();
    assert_eq!(conflicts, 0, "false conflicts: {reports:?}");
    let check = Repository::open(inner, settings).await.unwrap();
    let tip = check.branch_tip("main").await.unwrap();
    let log = check.log_from(tip, usize::MAX).await.unwrap();
    let mut on_main: BTreeMap<&str, usize> = BTreeMap::new();
    for entry in &log {
        *on_main.entry(entry.message.as_str()).or_default() += 1;
    }
    let duplicates: Vec<_> = on_main.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicates.is_empty(), "duplicate commits: {duplicates:?}");
    for report in &reports {
        assert_eq!(report.committed.len() as u64, commits);
        for message in &report.committed {
            assert_eq!(on_main.get(message.as_str()), Some(&1), "{message} lost");
        }
    }
    // Init, create, and exactly the acknowledged commits.
    assert_eq!(log.len() as u64, 2 + writers * commits);
    let r = check.session_at_snapshot(tip).await.unwrap();
    for report in &reports {
        for (coord, bytes) in &report.chunks {
            assert_eq!(
                r.get_chunk(&p("a"), &[*coord]).await.unwrap().as_ref(),
                Some(bytes)
            );
        }
    }
    let fsck = check.fsck(FsckOptions::default()).await.unwrap();
    assert!(fsck.is_clean(), "{:?}", fsck.problems);
    let unknown: u64 = reports.iter().map(|r| r.unknown_outcomes).sum();
    eprintln!(
        "{writers} writers x {commits} commits: {} storage calls, {} lost answers, \
         {unknown} unknown commit outcomes",
        counts.calls, counts.errors_after
    );
    assert!(counts.errors_after > 0);
    counts.calls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_percent_lost_answers_give_no_false_conflict_and_no_duplicate() {
    let calls = lost_responses_run(4, 150, 42).await;
    assert!(calls >= 2000, "only {calls} storage calls");
}

/// Longer: `cargo test --release --test faults -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore]
async fn five_percent_lost_answers_many_writers_soak() {
    for seed in 0..4 {
        lost_responses_run(6, 100, seed).await;
    }
}
