//! Fixed operation sequences checked against the session model (see `common/session_model.rs`):
//! one that crosses every storage path, and regressions found by the property test in
//! `model.rs`, kept as plain tests so they show without proptest.

mod common;

use common::runtime;
use common::session_model::{run, Op};

/// A fixed sequence that crosses every storage path at least once (kept as a plain test so a
/// regression shows without proptest).
#[test]
fn scripted_sequence_matches_the_model() {
    let mut ops = vec![
        Op::CreateGroup {
            path: 0,
            attr: Some(1),
        },
        Op::CreateGroup {
            path: 1,
            attr: None,
        },
        Op::CreateArray {
            path: 4,
            shape: [9, 9],
        },
    ];
    for i in 0..5u64 {
        for j in 0..3u64 {
            ops.push(Op::SetChunk {
                path: 4,
                coord: [i, j],
                len: [3, 100, 700, 4100][((i + j) % 4) as usize],
                seed: (i * 7 + j) as u8,
            });
        }
        ops.push(Op::Commit);
    }
    ops.extend([
        Op::Resize {
            path: 4,
            shape: [3, 9],
        },
        Op::Commit,
        Op::Resize {
            path: 4,
            shape: [9, 9],
        },
        Op::SetChunk {
            path: 4,
            coord: [4, 2],
            len: 20,
            seed: 9,
        },
        Op::Commit,
        Op::Reopen,
        Op::DeleteNode { path: 1 },
        Op::Commit,
        Op::Checkout { version: 3 },
    ]);
    let storage = run(ops);
    // The sequence really went through every storage path.
    let count = |dir: &'static str| {
        let storage = storage.clone();
        runtime().block_on(async move { storage.list(dir).await.unwrap().len() })
    };
    assert!(
        count("manifests") >= 2,
        "delta compaction wrote manifest objects"
    );
    assert!(
        count("txlogs") >= 1,
        "large transaction logs became objects"
    );
    let chunks = count("chunks");
    assert!(
        chunks >= 6,
        "packs and single-object chunks were written: {chunks}"
    );
}

/// Regression: deleting a group whose children are committed deleted only the group, and the
/// children stayed visible (and were committed as orphans).
#[test]
fn deleting_a_group_deletes_its_committed_children() {
    run(vec![
        Op::CreateGroup {
            path: 1,
            attr: None,
        },
        Op::CreateArray {
            path: 4,
            shape: [4, 4],
        },
        Op::SetChunk {
            path: 4,
            coord: [1, 1],
            len: 3,
            seed: 1,
        },
        Op::CreateGroup {
            path: 2,
            attr: None,
        },
        Op::CreateArray {
            path: 5,
            shape: [4, 0],
        },
        Op::Commit,
        Op::DeleteNode { path: 1 },
        Op::Commit,
        Op::CreateGroup {
            path: 1,
            attr: Some(3),
        },
        Op::Commit,
    ]);
}

/// Regression: deleting a child, then its parent, in one session brought the child back.
#[test]
fn deleting_a_child_then_its_parent_keeps_both_deleted() {
    run(vec![
        Op::CreateGroup {
            path: 1,
            attr: None,
        },
        Op::CreateArray {
            path: 4,
            shape: [2, 2],
        },
        Op::Commit,
        Op::DeleteNode { path: 4 },
        Op::DeleteNode { path: 1 },
        Op::Commit,
        Op::Reopen,
    ]);
}

/// Regression: shrinking an array and growing it again in one session brought back the chunks
/// the shrink had dropped (in the session view and in the committed version).
#[test]
fn shrink_then_grow_in_one_session_drops_chunks() {
    let mut ops = vec![Op::CreateArray {
        path: 6,
        shape: [16, 0],
    }];
    for i in 0..4u64 {
        ops.push(Op::SetChunk {
            path: 6,
            coord: [i, 0],
            len: [2, 40, 800, 4200][i as usize],
            seed: i as u8,
        });
    }
    ops.extend([
        Op::Commit,
        Op::Resize {
            path: 6,
            shape: [4, 0],
        },
        Op::SetChunk {
            path: 6,
            coord: [0, 0],
            len: 5,
            seed: 7,
        },
        Op::CreateArray {
            path: 6,
            shape: [12, 0],
        },
        Op::SetChunk {
            path: 6,
            coord: [2, 0],
            len: 30,
            seed: 8,
        },
        Op::Resize {
            path: 6,
            shape: [16, 0],
        },
        Op::Commit,
        Op::Resize {
            path: 6,
            shape: [0, 0],
        },
        Op::Resize {
            path: 6,
            shape: [8, 0],
        },
        Op::Discard,
        Op::Resize {
            path: 6,
            shape: [3, 0],
        },
        Op::Resize {
            path: 6,
            shape: [16, 0],
        },
        Op::Commit,
        Op::Reopen,
    ]);
    run(ops);
}
