//! Rebase against a model: two writers whose changes never overlap (each owns an array and one
//! column of a shared array) interleave random writes, resizes and commits. Every commit must
//! land, rebasing when the other writer committed first, and every version must be exactly
//! the union of what was committed before it. Small settings make the shared array span
//! several manifest shards with inline deltas and compactions.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use common::{memory_repo_with, p, runtime, uint8_array};
use floe::{Error, Repository, RepositorySettings, Session, SnapshotId};

/// One operation of one of two writers. Writer 0 owns array `a` and column 0 of the shared
/// array `s`; writer 1 owns `c` and column 1 of `s`. Their changes never overlap, so every
/// commit must land (rebasing when the other committed first).
#[derive(Clone, Debug)]
enum WriterOp {
    SetOwn {
        who: usize,
        index: u64,
        len: usize,
        seed: u8,
    },
    DeleteOwn {
        who: usize,
        index: u64,
    },
    ResizeOwn {
        who: usize,
        len: u64,
    },
    SetShared {
        who: usize,
        row: u64,
        len: usize,
        seed: u8,
    },
    DeleteShared {
        who: usize,
        row: u64,
    },
    Commit {
        who: usize,
    },
}

fn writer_op() -> impl proptest::strategy::Strategy<Value = WriterOp> {
    use proptest::prelude::*;
    let who = 0usize..2;
    let len = prop_oneof![0usize..=16, 17usize..=300, 4096usize..=4200];
    prop_oneof![
        4 => (who.clone(), 0u64..10, len.clone(), any::<u8>())
            .prop_map(|(who, index, len, seed)| WriterOp::SetOwn { who, index, len, seed }),
        1 => (who.clone(), 0u64..10).prop_map(|(who, index)| WriterOp::DeleteOwn { who, index }),
        1 => (who.clone(), 0u64..=10).prop_map(|(who, len)| WriterOp::ResizeOwn { who, len }),
        4 => (who.clone(), 0u64..12, len, any::<u8>())
            .prop_map(|(who, row, len, seed)| WriterOp::SetShared { who, row, len, seed }),
        1 => (who.clone(), 0u64..12).prop_map(|(who, row)| WriterOp::DeleteShared { who, row }),
        3 => who.prop_map(|who| WriterOp::Commit { who }),
    ]
}

/// The repository as the model sees it: array shapes and chunks by (array, coordinates).
#[derive(Clone, Debug, PartialEq, Default)]
struct State {
    own_len: [u64; 2],
    chunks: BTreeMap<(String, Vec<u64>), Vec<u8>>,
}

const OWN: [&str; 2] = ["a", "c"];

impl State {
    /// Replaces what `who` owns by what `from` has.
    fn take_owned(&mut self, who: usize, from: &State) {
        self.own_len[who] = from.own_len[who];
        let owned =
            |k: &(String, Vec<u64>)| k.0 == OWN[who] || (k.0 == "s" && k.1[1] == who as u64);
        self.chunks.retain(|k, _| !owned(k));
        for (k, v) in &from.chunks {
            if owned(k) {
                self.chunks.insert(k.clone(), v.clone());
            }
        }
    }
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_add(i as u8)).collect()
}

async fn check_state(session: &Session, state: &State, context: &str) {
    for (who, name) in OWN.iter().enumerate() {
        let node = session.node(&p(name)).unwrap().unwrap();
        assert_eq!(
            node.metadata.geometry().unwrap().shape,
            vec![state.own_len[who]],
            "{context}: {name}"
        );
        for i in 0..=10u64 {
            let got = session.get_chunk(&p(name), &[i]).await.unwrap();
            let want = state.chunks.get(&(name.to_string(), vec![i]));
            assert_eq!(
                got.as_deref(),
                want.map(|v| v.as_slice()),
                "{context}: {name}[{i}]"
            );
        }
    }
    for row in 0..12u64 {
        for col in 0..2u64 {
            let got = session.get_chunk(&p("s"), &[row, col]).await.unwrap();
            let want = state.chunks.get(&("s".to_string(), vec![row, col]));
            assert_eq!(
                got.as_deref(),
                want.map(|v| v.as_slice()),
                "{context}: s[{row}, {col}]"
            );
        }
    }
}

async fn run_writers(ops: Vec<WriterOp>) {
    let settings = RepositorySettings {
        inline_threshold: 16,
        single_object_threshold: 4096,
        pack_target_bytes: 1024,
        shard_target_refs: 4,
        delta_max_entries: 3,
        commit_backoff_base: Duration::from_micros(10),
        ..Default::default()
    };
    let (repo, storage) = memory_repo_with(settings.clone()).await;
    let setup = repo.writable_session("main").await.unwrap();
    setup
        .create_array(&p("a"), uint8_array(&[10], &[1]))
        .await
        .unwrap();
    setup
        .create_array(&p("c"), uint8_array(&[10], &[1]))
        .await
        .unwrap();
    setup
        .create_array(&p("s"), uint8_array(&[12, 2], &[1, 1]))
        .await
        .unwrap();
    let first = setup.commit("setup", None).await.unwrap();
    let mut head = State {
        own_len: [10, 10],
        ..Default::default()
    };
    let mut versions = vec![(first, head.clone())];
    let sessions = [
        repo.writable_session("main").await.unwrap(),
        repo.writable_session("main").await.unwrap(),
    ];
    let mut views = [head.clone(), head.clone()];
    let mut dirty = [false, false];
    for (step, op) in ops.iter().enumerate() {
        let context = format!("step {step} ({op:?})");
        let who = match op {
            WriterOp::SetOwn { who, .. }
            | WriterOp::DeleteOwn { who, .. }
            | WriterOp::ResizeOwn { who, .. }
            | WriterOp::SetShared { who, .. }
            | WriterOp::DeleteShared { who, .. }
            | WriterOp::Commit { who } => *who,
        };
        let (session, view) = (&sessions[who], &mut views[who]);
        let own = OWN[who];
        match op {
            WriterOp::SetOwn {
                index, len, seed, ..
            } => {
                let result = session
                    .set_chunk(&p(own), &[*index], Bytes::from(data(*len, *seed)))
                    .await;
                if *index < view.own_len[who] {
                    result.unwrap();
                    view.chunks
                        .insert((own.to_string(), vec![*index]), data(*len, *seed));
                    dirty[who] = true;
                } else {
                    assert!(
                        matches!(result, Err(Error::ChunkOutOfBounds { .. })),
                        "{context}"
                    );
                }
            }
            WriterOp::DeleteOwn { index, .. } => {
                let result = session.delete_chunk(&p(own), &[*index]).await;
                if *index < view.own_len[who] {
                    result.unwrap();
                    view.chunks.remove(&(own.to_string(), vec![*index]));
                    dirty[who] = true;
                } else {
                    assert!(
                        matches!(result, Err(Error::ChunkOutOfBounds { .. })),
                        "{context}"
                    );
                }
            }
            WriterOp::ResizeOwn { len, .. } => {
                session.resize_array(&p(own), &[*len]).await.unwrap();
                view.own_len[who] = *len;
                view.chunks
                    .retain(|(name, c), _| name != own || c[0] < *len);
                dirty[who] = true;
            }
            WriterOp::SetShared { row, len, seed, .. } => {
                let coord = vec![*row, who as u64];
                session
                    .set_chunk(&p("s"), &coord, Bytes::from(data(*len, *seed)))
                    .await
                    .unwrap();
                view.chunks
                    .insert(("s".to_string(), coord), data(*len, *seed));
                dirty[who] = true;
            }
            WriterOp::DeleteShared { row, .. } => {
                let coord = vec![*row, who as u64];
                session.delete_chunk(&p("s"), &coord).await.unwrap();
                view.chunks.remove(&("s".to_string(), coord));
                dirty[who] = true;
            }
            WriterOp::Commit { .. } => match session.commit(&format!("step {step}"), None).await {
                Ok(id) => {
                    assert!(dirty[who], "{context}: committed without changes");
                    head.take_owned(who, view);
                    *view = head.clone();
                    dirty[who] = false;
                    versions.push((id, head.clone()));
                    let r = repo.session_at_snapshot(id).await.unwrap();
                    check_state(&r, &head, &format!("{context}: committed")).await;
                }
                Err(Error::NothingToCommit) => {
                    assert!(!dirty[who], "{context}: changes were not committed")
                }
                Err(e) => panic!("{context}: {e}"),
            },
        }
        check_state(session, view, &context).await;
    }
    let fresh = Repository::open(storage, settings).await.unwrap();
    let tip = fresh.branch_tip("main").await.unwrap();
    let log = fresh.log_from(tip, usize::MAX).await.unwrap();
    let ids: Vec<SnapshotId> = log.iter().rev().skip(1).map(|e| e.id).collect();
    assert_eq!(
        ids,
        versions.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        "linear history of every commit"
    );
    for (i, (id, state)) in versions.iter().enumerate() {
        let r = fresh.session_at_snapshot(*id).await.unwrap();
        check_state(&r, state, &format!("version {i}")).await;
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..Default::default()
    })]

    /// Two writers with disjoint changes, interleaved at random: every commit lands and every
    /// version is exactly the union of what was committed before it.
    #[test]
    fn interleaved_writers_rebase_to_the_union(ops in proptest::collection::vec(writer_op(), 1..60)) {
        runtime().block_on(run_writers(ops));
    }
}
