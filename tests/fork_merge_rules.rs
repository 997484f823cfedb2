//! Fork merges follow the rebase rules (spec/distributed.md §4.2, algorithms.md §8): a worker
//! that deletes, re-creates or shrinks an array conflicts with chunk writes to it that the
//! coordinator received since the fork, a node never lands below a group the other side
//! deleted, and the outcome never depends on the order in which workers are merged.

mod common;

use bytes::Bytes;
use common::{p, tempdir_repo, uint8_array};
use floe::{ConflictDetail, Error, NodePath, Repository, RepositorySettings, Session};
use serde_json::Map;

/// A coordinator on `main`, whose base holds the root group, array `t` ([4], chunks of 1,
/// chunks 0 to 3 written as `bytes(1)`..`bytes(4)`), group `g` and array `g/u` ([4]).
async fn coordinator() -> (tempfile::TempDir, Repository, Session) {
    let (dir, repo) = tempdir_repo(RepositorySettings::default()).await;
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&NodePath::root(), Map::new()).await.unwrap();
    s.create_array(&p("t"), uint8_array(&[4], &[1]))
        .await
        .unwrap();
    for c in 0..4 {
        s.set_chunk(&p("t"), &[c], bytes(c as u8 + 1))
            .await
            .unwrap();
    }
    s.create_group(&p("g"), Map::new()).await.unwrap();
    s.create_array(&p("g/u"), uint8_array(&[4], &[1]))
        .await
        .unwrap();
    s.commit("base", None).await.unwrap();
    (dir, repo, s)
}

fn bytes(tag: u8) -> Bytes {
    Bytes::from(vec![tag; 3])
}

async fn fork(repo: &Repository, coord: &Session) -> Session {
    repo.open_fork(&coord.fork().await.unwrap()).await.unwrap()
}

async fn merge(coord: &Session, worker: &Session) -> floe::Result<floe::ForkMergeSummary> {
    coord.merge_fork(&worker.finish_fork().await.unwrap()).await
}

/// The reason of a fork conflict on node `want`; panics on anything else.
fn fork_conflict(result: floe::Result<floe::ForkMergeSummary>, want: &str) -> String {
    match result {
        Err(Error::ForkConflict { detail, .. }) => match *detail {
            ConflictDetail::Node { path, reason } if path == want => reason,
            other => panic!("expected a conflict on {want}, got {other:?}"),
        },
        other => panic!("expected a fork conflict on {want}, got {other:?}"),
    }
}

/// The chunks of `t` in `s`, by coordinate.
async fn t_chunks(s: &Session) -> Vec<Option<Bytes>> {
    let mut out = Vec::new();
    for c in 0..4 {
        out.push(s.get_chunk(&p("t"), &[c]).await.unwrap());
    }
    out
}

/// What a worker may do to `t` that drops chunks of it.
#[derive(Clone, Copy, Debug)]
enum Destroy {
    Shrink,
    Delete,
    Recreate,
}

async fn destroy(s: &Session, how: Destroy) {
    match how {
        Destroy::Shrink => s.resize_array(&p("t"), &[2]).await.unwrap(),
        Destroy::Delete => s.delete_node(&p("t")).await.unwrap(),
        Destroy::Recreate => {
            s.delete_node(&p("t")).await.unwrap();
            s.create_array(&p("t"), uint8_array(&[4], &[1]))
                .await
                .unwrap();
        }
    }
}

/// A worker that deletes, re-creates or shrinks `t` while another writes a chunk of it: a
/// conflict whichever is merged first, unless the chunk lies inside the smaller grid (then
/// nothing is lost, and both orders give the same array).
#[tokio::test]
async fn a_worker_dropping_an_array_conflicts_with_another_workers_chunks_in_either_order() {
    for how in [Destroy::Shrink, Destroy::Delete, Destroy::Recreate] {
        for chunk in [3, 0] {
            let mut merged = Vec::new();
            for writer_first in [true, false] {
                let context = format!("{how:?}, chunk {chunk}, writer first: {writer_first}");
                let (_dir, repo, coord) = coordinator().await;
                let writer = fork(&repo, &coord).await;
                let dropper = fork(&repo, &coord).await;
                writer
                    .set_chunk(&p("t"), &[chunk], bytes(30))
                    .await
                    .unwrap();
                destroy(&dropper, how).await;
                let (first, second) = if writer_first {
                    (&writer, &dropper)
                } else {
                    (&dropper, &writer)
                };
                merge(&coord, first).await.unwrap();
                let status = coord.status();
                let result = merge(&coord, second).await;
                if matches!(how, Destroy::Shrink) && chunk == 0 {
                    result.unwrap_or_else(|e| panic!("{context}: {e}"));
                    merged.push(t_chunks(&coord).await);
                    continue;
                }
                let reason = fork_conflict(result, "/t");
                assert!(reason.contains("fork again"), "{context}: {reason}");
                assert_eq!(coord.status(), status, "{context}: nothing merged");
            }
            if !merged.is_empty() {
                let want = vec![Some(bytes(30)), Some(bytes(2)), None, None];
                assert_eq!(merged, vec![want.clone(), want], "{how:?}");
            }
        }
    }
}

/// The coordinator's own chunk writes after the fork are not lost to a worker's re-creation,
/// deletion or shrink either.
#[tokio::test]
async fn a_re_creation_conflicts_with_chunks_the_coordinator_wrote_after_the_fork() {
    for (how, chunk) in [
        (Destroy::Recreate, 1),
        (Destroy::Delete, 1),
        (Destroy::Shrink, 3),
        (Destroy::Shrink, 1),
    ] {
        let (_dir, repo, coord) = coordinator().await;
        let worker = fork(&repo, &coord).await;
        coord.set_chunk(&p("t"), &[chunk], bytes(20)).await.unwrap();
        destroy(&worker, how).await;
        let mut want = vec![
            Some(bytes(1)),
            Some(bytes(2)),
            Some(bytes(3)),
            Some(bytes(4)),
        ];
        want[chunk as usize] = Some(bytes(20));
        if chunk == 1 && matches!(how, Destroy::Shrink) {
            // Inside the smaller grid: kept.
            merge(&coord, &worker).await.unwrap();
            want.truncate(2);
            want.extend([None, None]);
        } else {
            let reason = fork_conflict(merge(&coord, &worker).await, "/t");
            assert!(reason.contains("fork again"), "{how:?}: {reason}");
        }
        assert_eq!(t_chunks(&coord).await, want, "{how:?}");
    }
}

#[tokio::test]
async fn nodes_never_land_below_a_group_the_other_side_deleted() {
    // The coordinator deletes `g` after the fork; the worker creates `g/y`.
    let (_dir, repo, coord) = coordinator().await;
    let worker = fork(&repo, &coord).await;
    coord.delete_node(&p("g")).await.unwrap();
    worker.create_group(&p("g/y"), Map::new()).await.unwrap();
    fork_conflict(merge(&coord, &worker).await, "/g/y");
    // The worker deletes `g`; the coordinator creates `g/y` after the fork.
    let (_dir, repo, coord) = coordinator().await;
    let worker = fork(&repo, &coord).await;
    coord.create_group(&p("g/y"), Map::new()).await.unwrap();
    worker.delete_node(&p("g")).await.unwrap();
    fork_conflict(merge(&coord, &worker).await, "/g");
    // Two workers, in either order; and chunks of `g/u` written by one of them.
    for creates_first in [true, false] {
        for write_chunk in [false, true] {
            let (_dir, repo, coord) = coordinator().await;
            let creator = fork(&repo, &coord).await;
            let deleter = fork(&repo, &coord).await;
            if write_chunk {
                creator.set_chunk(&p("g/u"), &[1], bytes(9)).await.unwrap();
            } else {
                creator.create_group(&p("g/y"), Map::new()).await.unwrap();
            }
            deleter.delete_node(&p("g")).await.unwrap();
            let (first, second) = if creates_first {
                (&creator, &deleter)
            } else {
                (&deleter, &creator)
            };
            merge(&coord, first).await.unwrap();
            let result = merge(&coord, second).await;
            assert!(
                matches!(result, Err(Error::ForkConflict { .. })),
                "creator first: {creates_first}, chunk: {write_chunk}: {result:?}"
            );
        }
    }
}

#[tokio::test]
async fn identical_re_creations_merge_and_merging_again_is_a_no_op() {
    let (_dir, repo, coord) = coordinator().await;
    let one = fork(&repo, &coord).await;
    let two = fork(&repo, &coord).await;
    for (worker, chunk) in [(&one, 0u64), (&two, 1)] {
        destroy(worker, Destroy::Recreate).await;
        worker
            .set_chunk(&p("t"), &[chunk], bytes(40 + chunk as u8))
            .await
            .unwrap();
    }
    merge(&coord, &one).await.unwrap();
    merge(&coord, &two).await.unwrap();
    assert!(merge(&coord, &one).await.unwrap().already_merged);
    assert!(merge(&coord, &two).await.unwrap().already_merged);
    coord.commit("re-created", None).await.unwrap();
    let main = repo.writable_session("main").await.unwrap();
    assert_eq!(
        t_chunks(&main).await,
        vec![Some(bytes(40)), Some(bytes(41)), None, None]
    );
    // A worker that shrinks an array and writes inside it merges, also twice.
    let worker = fork(&repo, &main).await;
    destroy(&worker, Destroy::Shrink).await;
    worker.set_chunk(&p("t"), &[1], bytes(50)).await.unwrap();
    merge(&main, &worker).await.unwrap();
    assert!(merge(&main, &worker).await.unwrap().already_merged);
    assert_eq!(
        t_chunks(&main).await,
        vec![Some(bytes(40)), Some(bytes(50)), None, None]
    );
}
