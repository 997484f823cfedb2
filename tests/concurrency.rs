//! Concurrent writers: rebase of disjoint changes, precise conflicts, and two OS processes
//! committing to one local directory repository at the same time.
//!
//! The multi-process test re-executes this test binary: with `FLOE_TEST_WRITER_REPO` set, the
//! ignored test `writer_process` acts as one writer (see `child_writer`).

mod common;

use std::borrow::Borrow;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{filled, linear_history, memory_repo, p, uint8_array};
use floe::{ConflictDetail, Error, NodePath, Repository, Session, SnapshotId, VersionSpec};
use serde_json::{json, Map};

/// A memory repository with group `g` and array `a` (4 x 4 chunks), committed.
async fn setup() -> (Repository, SnapshotId) {
    let (repo, _) = memory_repo().await;
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&NodePath::root(), Map::new()).await.unwrap();
    s.create_group(&p("g"), Map::new()).await.unwrap();
    s.create_array(&p("a"), uint8_array(&[4, 4], &[1, 1]))
        .await
        .unwrap();
    s.set_chunk(&p("a"), &[0, 0], Bytes::from_static(b"base"))
        .await
        .unwrap();
    let base = s.commit("setup", None).await.unwrap();
    (repo, base)
}

/// The parts of a conflict error.
fn conflict(err: Error) -> (String, String, ConflictDetail, String) {
    let message = err.to_string();
    match err {
        Error::Conflict {
            our_base,
            their_snapshot,
            detail,
            ..
        } => {
            let detail: &ConflictDetail = detail.borrow();
            (our_base, their_snapshot, detail.clone(), message)
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn disjoint_chunk_writes_both_land() {
    let (repo, base) = setup().await;
    let one = repo.writable_session("main").await.unwrap();
    let two = repo.writable_session("main").await.unwrap();
    one.set_chunk(&p("a"), &[1, 1], Bytes::from_static(b"one"))
        .await
        .unwrap();
    two.set_chunk(&p("a"), &[2, 2], filled(2000, 2))
        .await
        .unwrap();
    two.delete_chunk(&p("a"), &[0, 0]).await.unwrap();
    let first = one.commit("one", None).await.unwrap();
    let second = two.commit("two", None).await.unwrap();
    assert_eq!(two.snapshot_id(), second);
    let log = linear_history(&repo).await;
    let ids: Vec<SnapshotId> = log.iter().take(3).map(|e| e.id).collect();
    assert_eq!(
        ids,
        vec![second, first, base],
        "the second commit was rebased onto the first"
    );
    let r = repo
        .readonly_session(&VersionSpec::Branch("main".into()))
        .await
        .unwrap();
    assert_eq!(
        r.get_chunk(&p("a"), &[1, 1]).await.unwrap().unwrap(),
        Bytes::from_static(b"one")
    );
    assert_eq!(
        r.get_chunk(&p("a"), &[2, 2]).await.unwrap().unwrap(),
        filled(2000, 2)
    );
    assert_eq!(r.get_chunk(&p("a"), &[0, 0]).await.unwrap(), None);
    // The rebased session sees both commits and goes on from the new tip.
    assert_eq!(
        two.get_chunk(&p("a"), &[1, 1]).await.unwrap().unwrap(),
        Bytes::from_static(b"one")
    );
    two.set_chunk(&p("a"), &[3, 3], Bytes::from_static(b"three"))
        .await
        .unwrap();
    let third = two.commit("three", None).await.unwrap();
    assert!(repo.is_ancestor(second, third).await.unwrap());
    // Disjoint node changes rebase too.
    let x = repo.writable_session("main").await.unwrap();
    let y = repo.writable_session("main").await.unwrap();
    x.create_group(&p("x"), Map::new()).await.unwrap();
    let mut attrs = Map::new();
    attrs.insert("k".into(), json!(1));
    y.set_attributes(&p("g"), attrs.clone()).await.unwrap();
    x.commit("x", None).await.unwrap();
    y.commit("y", None).await.unwrap();
    let r = repo
        .readonly_session(&VersionSpec::Branch("main".into()))
        .await
        .unwrap();
    assert!(r.node(&p("x")).unwrap().is_some());
    assert_eq!(
        r.node(&p("g")).unwrap().unwrap().metadata.attributes(),
        attrs
    );
    linear_history(&repo).await;
}

#[tokio::test]
async fn same_chunk_conflicts_with_path_coordinates_and_ids() {
    let (repo, base) = setup().await;
    let one = repo.writable_session("main").await.unwrap();
    let two = repo.writable_session("main").await.unwrap();
    one.set_chunk(&p("a"), &[1, 2], Bytes::from_static(b"one"))
        .await
        .unwrap();
    one.set_chunk(&p("a"), &[3, 0], Bytes::from_static(b"one"))
        .await
        .unwrap();
    two.set_chunk(&p("a"), &[1, 2], Bytes::from_static(b"two"))
        .await
        .unwrap();
    two.delete_chunk(&p("a"), &[3, 0]).await.unwrap();
    two.set_chunk(&p("a"), &[2, 2], Bytes::from_static(b"two"))
        .await
        .unwrap();
    let theirs = one.commit("one", None).await.unwrap();
    let (our_base, their_snapshot, detail, message) =
        conflict(two.commit("two", None).await.unwrap_err());
    assert_eq!(our_base, base.to_string());
    assert_eq!(their_snapshot, theirs.to_string());
    assert_eq!(
        detail,
        ConflictDetail::Chunks {
            path: "/a".into(),
            coords: vec![vec![1, 2], vec![3, 0]]
        }
    );
    assert!(
        message.contains(&base.to_string()) && message.contains(&theirs.to_string()),
        "{message}"
    );
    assert!(
        message.contains("[1, 2]") && message.contains("`/a`"),
        "{message}"
    );
    // Nothing landed, and the losing session keeps its changes.
    assert_eq!(repo.branch_tip("main").await.unwrap(), theirs);
    assert!(two.has_changes());
    assert_eq!(
        two.get_chunk(&p("a"), &[2, 2]).await.unwrap().unwrap(),
        Bytes::from_static(b"two")
    );
    // A second try conflicts the same way; after a discard the session cannot commit nothing.
    assert!(matches!(
        two.commit("again", None).await,
        Err(Error::Conflict { .. })
    ));
    two.discard().await;
    assert!(matches!(
        two.commit("empty", None).await,
        Err(Error::NothingToCommit)
    ));
}

#[tokio::test]
async fn metadata_change_against_chunk_write_conflicts() {
    let (repo, _) = setup().await;
    let mut attrs = Map::new();
    attrs.insert("units".into(), json!("K"));
    // Their data type change first, then our chunk write (encoded for the old type).
    let meta = repo.writable_session("main").await.unwrap();
    let chunks = repo.writable_session("main").await.unwrap();
    let mut retyped = uint8_array(&[4, 4], &[1, 1]);
    retyped["data_type"] = json!("int8");
    meta.set_metadata(
        &p("a"),
        floe::NodeMetadata::from_value(&p("a"), retyped).unwrap(),
    )
    .await
    .unwrap();
    chunks
        .set_chunk(&p("a"), &[1, 1], Bytes::from_static(b"c"))
        .await
        .unwrap();
    meta.commit("retype", None).await.unwrap();
    let (_, _, detail, _) = conflict(chunks.commit("chunk", None).await.unwrap_err());
    assert!(
        matches!(&detail, ConflictDetail::Node { path, reason } if path == "/a" && reason.contains("data_type")),
        "{detail:?}"
    );
    let (repo, _) = setup().await;

    // Their chunk write first, then our shrink.
    let chunks = repo.writable_session("main").await.unwrap();
    let resize = repo.writable_session("main").await.unwrap();
    chunks
        .set_chunk(&p("a"), &[1, 1], Bytes::from_static(b"c"))
        .await
        .unwrap();
    resize.resize_array(&p("a"), &[2, 2]).await.unwrap();
    chunks.commit("chunk", None).await.unwrap();
    let (_, _, detail, _) = conflict(resize.commit("resize", None).await.unwrap_err());
    assert!(
        matches!(&detail, ConflictDetail::Node { path, .. } if path == "/a"),
        "{detail:?}"
    );

    // Both change the same attribute of one node to different values.
    let one = repo.writable_session("main").await.unwrap();
    let two = repo.writable_session("main").await.unwrap();
    one.set_attributes(&p("g"), attrs.clone()).await.unwrap();
    let mut other = Map::new();
    other.insert("units".into(), json!("degC"));
    two.set_attributes(&p("g"), other).await.unwrap();
    one.commit("one", None).await.unwrap();
    let (_, _, detail, _) = conflict(two.commit("two", None).await.unwrap_err());
    assert!(
        matches!(&detail, ConflictDetail::Node { path, .. } if path == "/g"),
        "{detail:?}"
    );

    // One deletes the array the other writes to.
    let del = repo.writable_session("main").await.unwrap();
    let write = repo.writable_session("main").await.unwrap();
    del.delete_node(&p("a")).await.unwrap();
    write
        .set_chunk(&p("a"), &[0, 1], Bytes::from_static(b"w"))
        .await
        .unwrap();
    del.commit("delete", None).await.unwrap();
    let (_, _, detail, _) = conflict(write.commit("write", None).await.unwrap_err());
    assert!(
        matches!(&detail, ConflictDetail::Node { path, .. } if path == "/a"),
        "{detail:?}"
    );
    linear_history(&repo).await;
}

/// A node created inside a group that a concurrent commit deleted (or replaced by an array)
/// would be an orphan (or a node inside an array): that is a conflict, never a silent merge.
#[tokio::test]
async fn creating_below_a_concurrently_removed_group_conflicts() {
    let (repo, _) = setup().await;
    let del = repo.writable_session("main").await.unwrap();
    let add = repo.writable_session("main").await.unwrap();
    del.delete_node(&p("g")).await.unwrap();
    add.create_array(&p("g/new"), uint8_array(&[1, 1], &[1, 1]))
        .await
        .unwrap();
    del.commit("delete g", None).await.unwrap();
    let (_, _, detail, _) = conflict(add.commit("add below g", None).await.unwrap_err());
    assert!(matches!(&detail, ConflictDetail::Node { .. }), "{detail:?}");

    let (repo, _) = setup().await;
    let replace = repo.writable_session("main").await.unwrap();
    let add = repo.writable_session("main").await.unwrap();
    replace
        .create_array(&p("g"), uint8_array(&[2], &[1]))
        .await
        .unwrap();
    add.create_group(&p("g/sub"), Map::new()).await.unwrap();
    replace.commit("g becomes an array", None).await.unwrap();
    let (_, _, detail, _) = conflict(add.commit("add below g", None).await.unwrap_err());
    assert!(matches!(&detail, ConflictDetail::Node { .. }), "{detail:?}");

    // The other order: we delete a group below which they created a node.
    let (repo, _) = setup().await;
    let add = repo.writable_session("main").await.unwrap();
    let del = repo.writable_session("main").await.unwrap();
    add.create_group(&p("g/sub"), Map::new()).await.unwrap();
    del.delete_node(&p("g")).await.unwrap();
    add.commit("add below g", None).await.unwrap();
    let (_, _, detail, _) = conflict(del.commit("delete g", None).await.unwrap_err());
    assert!(matches!(&detail, ConflictDetail::Node { .. }), "{detail:?}");
    let r = repo
        .readonly_session(&VersionSpec::Branch("main".into()))
        .await
        .unwrap();
    let paths: Vec<String> = r
        .list_nodes()
        .unwrap()
        .into_iter()
        .map(|n| n.path.as_str().to_string())
        .collect();
    assert_eq!(paths, vec!["", "a", "g", "g/sub"]);
}

#[tokio::test]
async fn branch_reset_under_a_session_conflicts() {
    let (repo, base) = setup().await;
    let root = repo.log_from(base, 2).await.unwrap()[1].id;
    let s = repo.writable_session("main").await.unwrap();
    s.set_chunk(&p("a"), &[1, 1], Bytes::from_static(b"x"))
        .await
        .unwrap();
    repo.reset_branch("main", root).await.unwrap();
    let (our_base, their_snapshot, detail, _) =
        conflict(s.commit("after reset", None).await.unwrap_err());
    assert_eq!(our_base, base.to_string());
    assert_eq!(their_snapshot, root.to_string());
    assert!(matches!(detail, ConflictDetail::Node { .. }));
    assert_eq!(
        repo.branch_tip("main").await.unwrap(),
        root,
        "the reset stands"
    );

    // A reset that keeps the session's base in history is not a conflict.
    let (repo, base) = setup().await;
    let s = repo.writable_session("main").await.unwrap();
    s.set_chunk(&p("a"), &[2, 2], Bytes::from_static(b"y"))
        .await
        .unwrap();
    repo.reset_branch("main", base).await.unwrap();
    let id = s.commit("after a no-op reset", None).await.unwrap();
    assert_eq!(repo.branch_tip("main").await.unwrap(), id);
    assert!(repo.is_ancestor(base, id).await.unwrap());
}

#[tokio::test]
async fn a_deleted_branch_refuses_the_commit() {
    let (repo, base) = setup().await;
    repo.create_branch("dev", base).await.unwrap();
    let s = repo.writable_session("dev").await.unwrap();
    s.set_chunk(&p("a"), &[1, 1], Bytes::from_static(b"x"))
        .await
        .unwrap();
    repo.delete_branch("dev").await.unwrap();
    assert!(matches!(
        s.commit("x", None).await,
        Err(Error::BranchNotFound { .. })
    ));
    assert!(matches!(
        repo.branch_tip("dev").await,
        Err(Error::BranchNotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_sessions_commit_at_once() {
    let (repo, _) = setup().await;
    let writers = 6u64;
    let commits = 5u64;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let repo = repo.clone();
        tasks.push(tokio::spawn(async move {
            let s: Session = repo.writable_session("main").await.unwrap();
            for c in 0..commits {
                s.create_group(&p(&format!("g/w{w}c{c}")), Map::new())
                    .await
                    .unwrap();
                s.commit(&format!("w{w} c{c}"), None).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let log = linear_history(&repo).await;
    assert_eq!(log.len() as u64, 2 + writers * commits);
    let r = repo
        .readonly_session(&VersionSpec::Branch("main".into()))
        .await
        .unwrap();
    assert_eq!(r.list_nodes().unwrap().len() as u64, 3 + writers * commits);
}

// ---- two OS processes ---------------------------------------------------------------------

const CHILD_REPO: &str = "FLOE_TEST_WRITER_REPO";
const CHILD_ID: &str = "FLOE_TEST_WRITER_ID";
const CHILD_COMMITS: &str = "FLOE_TEST_WRITER_COMMITS";

fn chunk_bytes(writer: u64, i: u64) -> Bytes {
    // Alternate inline and packed chunks.
    let len = if i % 2 == 0 { 8 } else { 700 };
    Bytes::from(
        (0..len)
            .map(|k| (writer * 100 + i + k) as u8)
            .collect::<Vec<u8>>(),
    )
}

/// One writer process: waits for the start signal, then commits one chunk of its column of
/// array `a` per commit.
async fn child_writer(location: &str, writer: u64, commits: u64) {
    let repo = Repository::open_location(location, &vec![]).await.unwrap();
    let mut session = repo.writable_session("main").await.unwrap();
    // Both writers are ready before either starts, so their commits overlap.
    std::fs::write(signal(location, &format!("ready-{writer}")), b"").unwrap();
    wait_for(&signal(location, "start"));
    for i in 0..commits {
        if i % 5 == 4 {
            // Now and then start afresh from the tip, like a new cron run.
            session = repo.writable_session("main").await.unwrap();
        }
        session
            .set_chunk(&p("a"), &[i, writer], chunk_bytes(writer, i))
            .await
            .unwrap();
        let mut meta = Map::new();
        meta.insert("writer".into(), json!(writer));
        session
            .commit(&format!("writer {writer} commit {i}"), Some(meta))
            .await
            .unwrap();
        // A real writer prepares its next piece of data between commits.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

/// A signal file next to the repository directory.
fn signal(location: &str, name: &str) -> std::path::PathBuf {
    Path::new(location).with_extension(name)
}

fn wait_for(file: &Path) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !file.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Entry point of a writer process (does nothing unless started by `processes_commit`).
#[test]
#[ignore = "helper: run by the multi-process tests"]
fn writer_process() {
    let (Ok(location), Ok(writer), Ok(commits)) = (
        std::env::var(CHILD_REPO),
        std::env::var(CHILD_ID),
        std::env::var(CHILD_COMMITS),
    ) else {
        return;
    };
    let (writer, commits) = (writer.parse().unwrap(), commits.parse().unwrap());
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(child_writer(&location, writer, commits));
}

#[tokio::test]
async fn two_processes_commit_disjoint_chunks_to_one_directory() {
    processes_commit(2, 20).await;
}

/// Heavier: `cargo test --test concurrency -- --ignored four_processes`.
#[tokio::test]
#[ignore = "heavier variant"]
async fn four_processes_commit_disjoint_chunks_to_one_directory() {
    processes_commit(4, 50).await;
}

/// `writers` OS processes each make `commits` commits, one chunk each, in their own column of
/// one array of a local directory repository, all at the same time.
async fn processes_commit(writers: u64, commits: u64) {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("repo");
    let location = location.to_str().unwrap();
    let repo = Repository::init_location(location, &vec![]).await.unwrap();
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&NodePath::root(), Map::new()).await.unwrap();
    s.create_array(&p("a"), uint8_array(&[commits, writers], &[1, 1]))
        .await
        .unwrap();
    s.commit("create", None).await.unwrap();

    let exe = std::env::current_exe().unwrap();
    let children: Vec<std::process::Child> = (0..writers)
        .map(|w| {
            std::process::Command::new(&exe)
                .args([
                    "writer_process",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_REPO, location)
                .env(CHILD_ID, w.to_string())
                .env(CHILD_COMMITS, commits.to_string())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for w in 0..writers {
        wait_for(&signal(location, &format!("ready-{w}")));
    }
    std::fs::write(signal(location, "start"), b"").unwrap();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "writer failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "the writer ran"
        );
    }

    let repo = Repository::open_location(location, &vec![]).await.unwrap();
    let log = linear_history(&repo).await;
    assert_eq!(log.len() as u64, 2 + writers * commits);
    let messages: BTreeSet<String> = log.iter().map(|e| e.message.clone()).collect();
    for w in 0..writers {
        for i in 0..commits {
            assert!(
                messages.contains(&format!("writer {w} commit {i}")),
                "writer {w} commit {i}"
            );
        }
        // Each writer's commits appear in its own order.
        let mine: Vec<&str> = log
            .iter()
            .rev()
            .filter(|e| e.metadata.get("writer") == Some(&json!(w)))
            .map(|e| e.message.as_str())
            .collect();
        let expected: Vec<String> = (0..commits)
            .map(|i| format!("writer {w} commit {i}"))
            .collect();
        assert_eq!(mine, expected);
    }
    let r = repo
        .readonly_session(&VersionSpec::Branch("main".into()))
        .await
        .unwrap();
    for w in 0..writers {
        for i in 0..commits {
            assert_eq!(
                r.get_chunk(&p("a"), &[i, w]).await.unwrap().unwrap(),
                chunk_bytes(w, i),
                "{i},{w}"
            );
        }
    }
    assert_eq!(
        r.list_chunks(&p("a")).await.unwrap().len() as u64,
        writers * commits
    );
}
