//! Distributed writes: a coordinator session forks into workers, the workers' serialized change
//! sets come back and are merged, and one commit publishes everything. Workers run in this
//! process and, in `workers_in_other_processes`, as real child processes exchanging tickets
//! and changes through files.

mod common;

use std::process::Command;

use bytes::Bytes;
use common::{int32_array, p, tempdir_repo};
use floe::{ChangeStream, ConflictDetail, Error, Repository, RepositorySettings, Session};
use serde_json::Map;

/// Environment of the worker child process.
const CHILD_TICKET: &str = "FLOE_FORK_TICKET";
const CHILD_OUT: &str = "FLOE_FORK_OUT";
const CHILD_REPO: &str = "FLOE_FORK_REPO";
const CHILD_WORKER: &str = "FLOE_FORK_WORKER";

/// Small thresholds so workers write inline chunks, packs and single-chunk objects.
fn settings() -> RepositorySettings {
    RepositorySettings {
        inline_threshold: 64,
        single_object_threshold: 4096,
        pack_target_bytes: 16 * 1024,
        ..RepositorySettings::default()
    }
}

/// The bytes of chunk `i`: inline, packed or its own object depending on `i`.
fn chunk(i: u64) -> Bytes {
    let len = [16usize, 900, 5000][(i % 3) as usize];
    Bytes::from(
        (0..len)
            .map(|k| (i.wrapping_mul(31) ^ k as u64) as u8)
            .collect::<Vec<u8>>(),
    )
}

/// A coordinator on `main` with a new (uncommitted) 1-D array `x` of `n` chunks.
async fn coordinator(repo: &Repository, n: u64) -> Session {
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&floe::NodePath::root(), Map::new())
        .await
        .unwrap();
    s.create_array(&p("x"), int32_array(&[n], &[1]))
        .await
        .unwrap();
    s
}

/// Worker `w` of `workers` writes chunks w, w + workers, ... of `x`.
async fn work(worker: &Session, w: u64, workers: u64, n: u64) {
    for i in (w..n).step_by(workers as usize) {
        worker.set_chunk(&p("x"), &[i], chunk(i)).await.unwrap();
    }
}

async fn check_all(repo: &Repository, n: u64) {
    let fresh = Repository::open(repo.storage().clone(), settings())
        .await
        .unwrap();
    let s = fresh
        .readonly_session(&floe::VersionSpec::parse("main").unwrap())
        .await
        .unwrap();
    for i in 0..n {
        assert_eq!(
            s.get_chunk(&p("x"), &[i]).await.unwrap(),
            Some(chunk(i)),
            "chunk {i}"
        );
    }
}

#[tokio::test]
async fn forked_workers_merge_into_one_commit() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let n = 60;
    let coord = coordinator(&repo, n).await;
    let mut returned = Vec::new();
    for w in 0..3 {
        let ticket = coord.fork().await.unwrap();
        assert!(ticket.is_ticket());
        // The ticket travels as bytes.
        let ticket = ChangeStream::from_bytes(ticket.to_bytes().unwrap()).unwrap();
        let worker = repo.open_fork(&ticket).await.unwrap();
        assert!(worker.is_fork());
        // The worker sees the coordinator's uncommitted array.
        assert!(worker.node(&p("x")).unwrap().is_some());
        work(&worker, w, 3, n).await;
        assert!(matches!(
            worker.commit("no", None).await,
            Err(Error::CommitFromFork)
        ));
        returned.push(worker.finish_fork().await.unwrap());
    }
    for changes in &returned {
        let summary = coord.merge_fork(changes).await.unwrap();
        assert_eq!(summary.chunks, n / 3);
        assert_eq!(summary.nodes, 0, "the array came from the ticket");
    }
    // Merging the same changes again does nothing.
    assert!(coord.merge_fork(&returned[0]).await.unwrap().already_merged);
    let before = common::linear_history(&repo).await.len();
    coord.commit("distributed", None).await.unwrap();
    assert_eq!(common::linear_history(&repo).await.len(), before + 1);
    check_all(&repo, n).await;
    // The coordinator committed: its old forks are refused now.
    let err = coord.merge_fork(&returned[1]).await.unwrap_err();
    assert!(matches!(err, Error::Fork { .. }), "{err}");
}

#[tokio::test]
async fn overlapping_workers_conflict_and_nothing_is_merged() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let coord = coordinator(&repo, 10).await;
    coord.set_chunk(&p("x"), &[9], chunk(9)).await.unwrap();
    let a = repo.open_fork(&coord.fork().await.unwrap()).await.unwrap();
    let b = repo.open_fork(&coord.fork().await.unwrap()).await.unwrap();
    a.set_chunk(&p("x"), &[1], chunk(1)).await.unwrap();
    a.set_chunk(&p("x"), &[2], chunk(2)).await.unwrap();
    b.set_chunk(&p("x"), &[2], chunk(5)).await.unwrap();
    b.set_chunk(&p("x"), &[3], chunk(3)).await.unwrap();
    coord
        .merge_fork(&a.finish_fork().await.unwrap())
        .await
        .unwrap();
    let status = coord.status();
    let err = coord
        .merge_fork(&b.finish_fork().await.unwrap())
        .await
        .unwrap_err();
    match &err {
        Error::ForkConflict { detail, .. } => assert_eq!(
            **detail,
            ConflictDetail::Chunks {
                path: "/x".into(),
                coords: vec![vec![2]]
            }
        ),
        other => panic!("{other}"),
    }
    assert_eq!(coord.status(), status, "a refused merge changes nothing");
    assert_eq!(coord.get_chunk(&p("x"), &[3]).await.unwrap(), None);
    // The coordinator's own write after the fork clashes too.
    let c = repo.open_fork(&coord.fork().await.unwrap()).await.unwrap();
    coord.set_chunk(&p("x"), &[7], chunk(7)).await.unwrap();
    c.set_chunk(&p("x"), &[7], chunk(8)).await.unwrap();
    let err = coord
        .merge_fork(&c.finish_fork().await.unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ForkConflict { .. }), "{err}");
    coord.commit("a only", None).await.unwrap();
    let s = repo.writable_session("main").await.unwrap();
    assert_eq!(s.get_chunk(&p("x"), &[2]).await.unwrap(), Some(chunk(2)));
    assert_eq!(s.get_chunk(&p("x"), &[9]).await.unwrap(), Some(chunk(9)));
}

#[tokio::test]
async fn workers_change_metadata_and_delete_chunks() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let coord = coordinator(&repo, 8).await;
    for i in 0..8 {
        coord.set_chunk(&p("x"), &[i], chunk(i)).await.unwrap();
    }
    coord.commit("base", None).await.unwrap();
    let a = repo.open_fork(&coord.fork().await.unwrap()).await.unwrap();
    a.delete_chunk(&p("x"), &[0]).await.unwrap();
    a.create_group(&p("g"), Map::new()).await.unwrap();
    a.create_array(&p("g/y"), int32_array(&[4], &[2]))
        .await
        .unwrap();
    a.set_chunk(&p("g/y"), &[1], chunk(1)).await.unwrap();
    let b = repo.open_fork(&coord.fork().await.unwrap()).await.unwrap();
    b.resize_array(&p("x"), &[4]).await.unwrap();
    let summary = coord
        .merge_fork(&a.finish_fork().await.unwrap())
        .await
        .unwrap();
    assert_eq!((summary.nodes, summary.chunks), (2, 2));
    coord
        .merge_fork(&b.finish_fork().await.unwrap())
        .await
        .unwrap();
    coord.commit("merged", None).await.unwrap();
    let s = repo.writable_session("main").await.unwrap();
    assert_eq!(
        s.list_chunks(&p("x")).await.unwrap(),
        vec![vec![1], vec![2], vec![3]]
    );
    assert_eq!(s.get_chunk(&p("g/y"), &[1]).await.unwrap(), Some(chunk(1)));
    let shape = s
        .require_node(&p("x"))
        .unwrap()
        .metadata
        .geometry()
        .unwrap()
        .shape
        .clone();
    assert_eq!(shape, vec![4]);
}

#[tokio::test]
async fn bad_streams_are_refused_with_clear_errors() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let coord = coordinator(&repo, 4).await;
    let ticket = coord.fork().await.unwrap();
    // A ticket is not a worker's changes, and the other way round.
    assert!(matches!(
        coord.merge_fork(&ticket).await,
        Err(Error::Fork { .. })
    ));
    let worker = repo.open_fork(&ticket).await.unwrap();
    worker.set_chunk(&p("x"), &[1], chunk(1)).await.unwrap();
    let changes = worker.finish_fork().await.unwrap();
    assert!(matches!(
        repo.open_fork(&changes).await,
        Err(Error::Fork { .. })
    ));
    // A coordinator that did not issue the fork refuses it.
    let other = coordinator(&repo, 4).await;
    assert!(matches!(
        other.merge_fork(&changes).await,
        Err(Error::Fork { .. })
    ));
    // A session that is not a fork has nothing to finish.
    assert!(matches!(coord.finish_fork().await, Err(Error::Fork { .. })));
    // Altered or truncated bytes are detected before anything is applied.
    let bytes = changes.to_bytes().unwrap();
    let mut altered = bytes.to_vec();
    let last = altered.len() - 40;
    altered[last] ^= 1;
    let altered = ChangeStream::from_bytes(altered).unwrap();
    assert!(matches!(
        coord.merge_fork(&altered).await,
        Err(Error::CorruptObject { .. })
    ));
    let truncated = ChangeStream::from_bytes(bytes.slice(..bytes.len() - 10)).unwrap();
    assert!(matches!(
        coord.merge_fork(&truncated).await,
        Err(Error::CorruptObject { .. })
    ));
    assert!(ChangeStream::from_bytes(Bytes::from_static(b"not a stream")).is_err());
    assert!(!coord.has_changes() || coord.get_chunk(&p("x"), &[1]).await.unwrap().is_none());
    // Changes whose chunks were written to another repository are refused.
    let (_dir2, elsewhere) = tempdir_repo(settings()).await;
    let far = coordinator(&elsewhere, 4).await;
    let ticket_far = far.fork().await.unwrap();
    let far_worker = elsewhere.open_fork(&ticket_far).await.unwrap();
    far_worker.set_chunk(&p("x"), &[2], chunk(2)).await.unwrap();
    let err = far
        .merge_fork(&far_worker.finish_fork().await.unwrap())
        .await;
    assert!(err.is_ok(), "same repository merges");
    let far_worker2 = elsewhere
        .open_fork(&far.fork().await.unwrap())
        .await
        .unwrap();
    // 5000 bytes: an object of its own.
    far_worker2
        .set_chunk(&p("x"), &[3], chunk(5))
        .await
        .unwrap();
    let changes_far = far_worker2.finish_fork().await.unwrap();
    // Delete the chunk object behind the change: the merge must notice.
    let listed = elsewhere.storage().list("chunks").await.unwrap();
    for object in listed {
        elsewhere.storage().delete(&object.key).await.unwrap();
    }
    let err = far.merge_fork(&changes_far).await.unwrap_err();
    assert!(matches!(err, Error::Fork { .. }), "{err}");
    // Still untouched: the original merge's ok, the refused one left nothing.
    assert_eq!(far.get_chunk(&p("x"), &[3]).await.ok().flatten(), None);
}

#[tokio::test]
async fn worker_discard_returns_to_the_ticket() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let coord = coordinator(&repo, 4).await;
    let worker = repo.open_fork(&coord.fork().await.unwrap()).await.unwrap();
    worker.set_chunk(&p("x"), &[1], chunk(1)).await.unwrap();
    worker.discard().await;
    assert!(
        worker.node(&p("x")).unwrap().is_some(),
        "the ticket's array stays"
    );
    assert_eq!(worker.get_chunk(&p("x"), &[1]).await.unwrap(), None);
    let summary = coord
        .merge_fork(&worker.finish_fork().await.unwrap())
        .await
        .unwrap();
    assert_eq!((summary.nodes, summary.chunks), (0, 0));
}

#[tokio::test]
async fn large_change_sets_spill_to_the_spool_directory() {
    let spool = tempfile::tempdir().unwrap();
    let settings = RepositorySettings {
        inline_threshold: 512,
        spool_memory_bytes: 64 * 1024,
        spool_dir: Some(spool.path().to_path_buf()),
        ..RepositorySettings::default()
    };
    let (_dir, repo) = tempdir_repo(settings).await;
    let n = 20_000u64;
    let coord = coordinator(&repo, n).await;
    let ticket = coord.fork().await.unwrap();
    assert!(!ticket.is_spooled(), "a small ticket stays in memory");
    let worker = repo.open_fork(&ticket).await.unwrap();
    let value = |i: u64| Bytes::from(vec![(i % 251) as u8; 300]);
    for i in 0..n {
        worker.set_chunk(&p("x"), &[i], value(i)).await.unwrap();
    }
    let changes = worker.finish_fork().await.unwrap();
    let size = changes.len().unwrap();
    assert!(size > 6_000_000, "{size} bytes of inline chunks");
    assert!(changes.is_spooled(), "{size} bytes over a 64 KiB limit");
    let spooled: Vec<_> = std::fs::read_dir(spool.path()).unwrap().collect();
    assert_eq!(spooled.len(), 1, "the stream lives in the spool directory");
    // Saved to a file and read back lazily, as a coordinator on another machine would.
    let file = spool.path().join("changes.bin");
    changes.save(&file).unwrap();
    drop(changes);
    let received = ChangeStream::from_file(&file).unwrap();
    let summary = coord.merge_fork(&received).await.unwrap();
    assert_eq!(summary.chunks, n);
    coord.commit("spilled", None).await.unwrap();
    let s = repo.writable_session("main").await.unwrap();
    for i in (0..n).step_by(997) {
        assert_eq!(s.get_chunk(&p("x"), &[i]).await.unwrap(), Some(value(i)));
    }
    // Received through a reader with a small memory limit: spooled again.
    let copy = ChangeStream::read_from(
        std::fs::File::open(&file).unwrap(),
        1024,
        Some(spool.path()),
    )
    .unwrap();
    assert!(copy.is_spooled());
    assert_eq!(copy.len().unwrap(), size);
}

/// Entry point of a worker child process (does nothing unless started by
/// `workers_in_other_processes`): reads the ticket file, writes its share, writes its changes.
#[test]
#[ignore = "helper: run by workers_in_other_processes"]
fn fork_worker_child() {
    let (Ok(ticket), Ok(out), Ok(location), Ok(w)) = (
        std::env::var(CHILD_TICKET),
        std::env::var(CHILD_OUT),
        std::env::var(CHILD_REPO),
        std::env::var(CHILD_WORKER),
    ) else {
        return;
    };
    let w: u64 = w.parse().unwrap();
    common::runtime().block_on(async {
        let storage = floe::open_storage(&location, &vec![]).unwrap();
        let repo = Repository::open(storage, settings()).await.unwrap();
        let ticket = ChangeStream::from_file(ticket).unwrap();
        let worker = repo.open_fork(&ticket).await.unwrap();
        work(&worker, w, 4, 80).await;
        worker
            .finish_fork()
            .await
            .unwrap()
            .save(std::path::Path::new(&out))
            .unwrap();
    });
}

#[tokio::test]
async fn workers_in_other_processes() {
    let (dir, repo) = tempdir_repo(settings()).await;
    let files = tempfile::tempdir().unwrap();
    let n = 80;
    let coord = coordinator(&repo, n).await;
    let exe = std::env::current_exe().unwrap();
    let mut children = Vec::new();
    for w in 0..4u64 {
        let ticket = files.path().join(format!("ticket-{w}"));
        coord.fork().await.unwrap().save(&ticket).unwrap();
        let out = files.path().join(format!("changes-{w}"));
        let child = Command::new(&exe)
            .args([
                "fork_worker_child",
                "--exact",
                "--ignored",
                "--test-threads=1",
            ])
            .env(CHILD_TICKET, &ticket)
            .env(CHILD_OUT, &out)
            .env(CHILD_REPO, dir.path())
            .env(CHILD_WORKER, w.to_string())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        children.push((child, out));
    }
    for (mut child, out) in children {
        assert!(child.wait().unwrap().success());
        let changes = ChangeStream::from_file(&out).unwrap();
        assert_eq!(coord.merge_fork(&changes).await.unwrap().chunks, n / 4);
    }
    coord.commit("from four processes", None).await.unwrap();
    check_all(&repo, n).await;
    let report = repo.fsck(floe::FsckOptions::default()).await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[tokio::test]
async fn a_worker_can_return_more_changes_after_a_merge() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let coord = coordinator(&repo, 8).await;
    let worker = repo.open_fork(&coord.fork().await.unwrap()).await.unwrap();
    worker.set_chunk(&p("x"), &[1], chunk(1)).await.unwrap();
    let first = coord
        .merge_fork(&worker.finish_fork().await.unwrap())
        .await
        .unwrap();
    assert_eq!(first.chunks, 1);
    // The worker goes on; its second finish carries chunk 1 again (already present) and 2.
    worker.set_chunk(&p("x"), &[2], chunk(2)).await.unwrap();
    let second = coord
        .merge_fork(&worker.finish_fork().await.unwrap())
        .await
        .unwrap();
    assert_eq!((second.chunks, second.already_present), (1, 1));
    assert!(!second.already_merged);
    coord.commit("two rounds", None).await.unwrap();
    let s = repo.writable_session("main").await.unwrap();
    assert_eq!(s.get_chunk(&p("x"), &[2]).await.unwrap(), Some(chunk(2)));
}

#[tokio::test]
async fn discarding_the_coordinator_invalidates_its_forks() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let coord = coordinator(&repo, 8).await;
    coord.commit("array", None).await.unwrap();
    coord.set_chunk(&p("x"), &[0], chunk(0)).await.unwrap();
    let worker = repo.open_fork(&coord.fork().await.unwrap()).await.unwrap();
    worker.set_chunk(&p("x"), &[1], chunk(1)).await.unwrap();
    let changes = worker.finish_fork().await.unwrap();
    coord.discard().await;
    let err = coord.merge_fork(&changes).await.unwrap_err();
    assert!(matches!(err, Error::Fork { .. }), "{err}");
    assert!(!coord.has_changes(), "nothing was merged");
}

/// `x` ([6], chunks of 1) with the keys of its `zarr.json` in reverse order when `reversed`:
/// the same document.
fn x_document(reversed: bool) -> serde_json::Value {
    let doc = int32_array(&[6], &[1]);
    let mut entries: Vec<(String, serde_json::Value)> =
        doc.as_object().unwrap().clone().into_iter().collect();
    if reversed {
        entries.reverse();
    }
    serde_json::Value::Object(entries.into_iter().collect())
}

/// Creates the root group and `x` in `s` and writes `chunks`.
async fn create_x(s: &Session, reversed: bool, chunks: &[u64]) {
    s.create_group(&floe::NodePath::root(), Map::new())
        .await
        .unwrap();
    s.create_array(&p("x"), x_document(reversed)).await.unwrap();
    for &i in chunks {
        s.set_chunk(&p("x"), &[i], chunk(i)).await.unwrap();
    }
}

#[tokio::test]
async fn identical_creations_by_workers_and_the_coordinator_merge() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let coord = repo.writable_session("main").await.unwrap();
    let one = repo.open_fork(&coord.fork().await.unwrap()).await.unwrap();
    let two = repo.open_fork(&coord.fork().await.unwrap()).await.unwrap();
    // After the forks, the coordinator creates the same nodes itself.
    create_x(&coord, false, &[0]).await;
    create_x(&one, false, &[1, 3]).await;
    create_x(&two, true, &[2]).await;
    for (worker, chunks) in [(&one, 2), (&two, 1)] {
        let summary = coord
            .merge_fork(&worker.finish_fork().await.unwrap())
            .await
            .unwrap();
        assert_eq!(
            (summary.nodes, summary.chunks, summary.already_present),
            (0, chunks, 2),
            "the root group and `x` were already there"
        );
    }
    coord.commit("all", None).await.unwrap();
    let s = repo.writable_session("main").await.unwrap();
    for i in 0..6 {
        let want = (i < 4).then(|| chunk(i));
        assert_eq!(s.get_chunk(&p("x"), &[i]).await.unwrap(), want, "chunk {i}");
    }
}

#[tokio::test]
async fn different_creations_by_a_worker_and_the_coordinator_conflict_naming_both() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let coord = repo.writable_session("main").await.unwrap();
    let worker = repo.open_fork(&coord.fork().await.unwrap()).await.unwrap();
    create_x(&coord, false, &[0]).await;
    let mut uint8 = x_document(false);
    uint8["data_type"] = serde_json::json!("uint8");
    worker.create_array(&p("x"), uint8).await.unwrap();
    let status = coord.status();
    let err = coord
        .merge_fork(&worker.finish_fork().await.unwrap())
        .await
        .unwrap_err();
    match &err {
        Error::ForkConflict { detail, .. } => match &**detail {
            ConflictDetail::Node { path, reason } => {
                assert_eq!(path, "/x");
                assert!(
                    reason
                        .contains(r#"`data_type` is "int32" in this session, "uint8" in the fork"#),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other}"),
    }
    assert_eq!(coord.status(), status, "a refused merge changes nothing");
}
