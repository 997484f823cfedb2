//! Fork merges against a model (spec/distributed.md §4): a coordinator takes random changes,
//! forks two workers, takes more changes itself, and merges both workers' random changes,
//! once in each order, on two identical repositories.
//!
//! - The order never matters: both workers merge in one order exactly when they merge in the
//!   other, and then to the same state.
//! - Nothing written is lost: when both merge, every node or chunk that one side (the
//!   coordinator since the fork, or a worker) changed holds that side's value, the other
//!   nodes and chunks are as in the ticket, and a chunk one side wrote beats a removal by
//!   another (which must then remove it by a chunk-grid change, never the same chunk). No
//!   node is left without its parent. Commit and re-merge change nothing of this.
//! - A refused merge leaves the coordinator as it was.
//!
//! `PROPTEST_CASES` sets the number of cases (default 64).

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::{memory_repo_with, p, runtime, uint8_array};
use floe::{NodePath, Repository, RepositorySettings, Session};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Arrays the operations pick from (`g/y` is absent from the base).
const ARRAYS: [&str; 3] = ["t", "g/u", "g/y"];
/// Nodes whose attributes change or that are deleted.
const NODES: [&str; 5] = ["", "t", "g", "g/u", "g/y"];

#[derive(Clone, Debug)]
enum Op {
    Write {
        array: usize,
        coord: u64,
        seed: u8,
    },
    DeleteChunk {
        array: usize,
        coord: u64,
    },
    Resize {
        array: usize,
        rows: u64,
    },
    DeleteNode {
        node: usize,
    },
    /// Deletes the array and creates it again from its base document.
    Recreate {
        array: usize,
    },
    /// Creates `g/y` when `g` exists and `g/y` does not.
    CreateY,
    SetAttribute {
        node: usize,
        value: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let array = 0..ARRAYS.len();
    prop_oneof![
        6 => (array.clone(), 0u64..6, any::<u8>())
            .prop_map(|(array, coord, seed)| Op::Write { array, coord, seed }),
        2 => (array.clone(), 0u64..6).prop_map(|(array, coord)| Op::DeleteChunk { array, coord }),
        2 => (array.clone(), 1u64..=6).prop_map(|(array, rows)| Op::Resize { array, rows }),
        1 => (0..NODES.len()).prop_map(|node| Op::DeleteNode { node }),
        1 => array.prop_map(|array| Op::Recreate { array }),
        1 => Just(Op::CreateY),
        2 => (0..NODES.len(), 0u8..2).prop_map(|(node, value)| Op::SetAttribute { node, value }),
    ]
}

/// Operations of the coordinator before the fork, after it, and of the two workers.
type Case = [Vec<Op>; 4];

fn case() -> impl Strategy<Value = Case> {
    let ops = |n| proptest::collection::vec(op(), 0..n);
    (ops(3), ops(3), ops(5), ops(5)).prop_map(|(a, b, c, d)| [a, b, c, d])
}

/// A version as the model sees it: node documents (without empty attributes) and chunk
/// bytes by (array, coordinates).
#[derive(Clone, Debug, Default, PartialEq)]
struct View {
    nodes: BTreeMap<String, Value>,
    chunks: BTreeMap<(String, Vec<u64>), Bytes>,
}

async fn view(s: &Session) -> View {
    let mut out = View::default();
    for node in s.list_nodes().unwrap() {
        let path = node.path.to_string()[1..].to_string();
        let mut doc = node.metadata.document().clone();
        if doc.get("attributes") == Some(&json!({})) {
            doc.remove("attributes");
        }
        if node.metadata.geometry().is_some() {
            for coord in s.list_chunks(&node.path).await.unwrap() {
                let bytes = s.get_chunk(&node.path, &coord).await.unwrap().unwrap();
                out.chunks.insert((path.clone(), coord), bytes);
            }
        }
        out.nodes.insert(path, Value::Object(doc));
    }
    out
}

/// Applies `op` (operations that do not apply, such as writes outside an array, are
/// skipped); `who` and `step` make the chunk bytes unique.
async fn apply(s: &Session, op: &Op, who: u8, step: usize) {
    let exists = |path: &str| s.node(&p(path)).unwrap().is_some();
    match *op {
        Op::Write { array, coord, seed } => {
            let data = Bytes::from(vec![who, step as u8, seed]);
            let _ = s.set_chunk(&p(ARRAYS[array]), &[coord], data).await;
        }
        Op::DeleteChunk { array, coord } => {
            let _ = s.delete_chunk(&p(ARRAYS[array]), &[coord]).await;
        }
        Op::Resize { array, rows } => {
            let _ = s.resize_array(&p(ARRAYS[array]), &[rows]).await;
        }
        Op::DeleteNode { node } => {
            let _ = s.delete_node(&p(NODES[node])).await;
        }
        Op::Recreate { array } => {
            if exists(ARRAYS[array]) {
                s.delete_node(&p(ARRAYS[array])).await.unwrap();
                s.create_array(&p(ARRAYS[array]), uint8_array(&[4], &[1]))
                    .await
                    .unwrap();
            }
        }
        Op::CreateY => {
            if exists("g") && !exists("g/y") {
                s.create_array(&p("g/y"), uint8_array(&[4], &[1]))
                    .await
                    .unwrap();
            }
        }
        Op::SetAttribute { node, value } => {
            let attributes: Map<String, Value> =
                [("v".to_string(), json!(value))].into_iter().collect();
            let _ = s.set_attributes(&p(NODES[node]), attributes).await;
        }
    }
}

async fn apply_all(s: &Session, ops: &[Op], who: u8) {
    for (step, op) in ops.iter().enumerate() {
        apply(s, op, who, step).await;
    }
}

/// What one run shows: the ticket's view, each side's view (the coordinator's after its own
/// changes since the fork, then the workers'), which merges succeeded, and the final view
/// when both did.
struct Run {
    ticket: View,
    sides: [View; 3],
    merged: [bool; 2],
    last: Option<View>,
}

/// Runs `case` on a new repository, merging worker 0 first unless `reversed`.
async fn run(case: &Case, reversed: bool) -> Run {
    let (repo, _) = memory_repo_with(RepositorySettings::default()).await;
    base(&repo).await;
    let coord = repo.writable_session("main").await.unwrap();
    apply_all(&coord, &case[0], 1).await;
    let mut workers = Vec::new();
    for _ in 0..2 {
        workers.push(repo.open_fork(&coord.fork().await.unwrap()).await.unwrap());
    }
    let ticket = view(&workers[0]).await;
    apply_all(&coord, &case[1], 2).await;
    let mut streams = Vec::new();
    let mut sides = vec![view(&coord).await];
    for (k, worker) in workers.iter().enumerate() {
        apply_all(worker, &case[2 + k], 3 + k as u8).await;
        sides.push(view(worker).await);
        streams.push(worker.finish_fork().await.unwrap());
    }
    let order: [usize; 2] = if reversed { [1, 0] } else { [0, 1] };
    let mut merged = [false; 2];
    for k in order {
        let before = view(&coord).await;
        match coord.merge_fork(&streams[k]).await {
            Ok(_) => merged[k] = true,
            Err(e) => {
                assert!(
                    matches!(
                        e,
                        floe::Error::ForkConflict { .. } | floe::Error::Fork { .. }
                    ),
                    "{e}"
                );
                assert_eq!(
                    view(&coord).await,
                    before,
                    "a refused merge changes nothing"
                );
            }
        }
    }
    let mut last = None;
    if merged == [true, true] {
        let now = view(&coord).await;
        for stream in &streams {
            let again = coord.merge_fork(stream).await.unwrap();
            assert!(again.already_merged, "merging again: {again:?}");
        }
        if coord.has_changes() {
            coord.commit("merged", None).await.unwrap();
        }
        let main = repo.writable_session("main").await.unwrap();
        assert_eq!(view(&main).await, now, "the commit holds what was merged");
        last = Some(now);
    }
    let sides: [View; 3] = sides.try_into().unwrap();
    Run {
        ticket,
        sides,
        merged,
        last,
    }
}

/// The base: root group, `t` ([4], chunks 0 to 3), group `g` and `g/u` ([4], chunks 0 and 2).
async fn base(repo: &Repository) {
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&NodePath::root(), Map::new()).await.unwrap();
    s.create_group(&p("g"), Map::new()).await.unwrap();
    for (array, chunks) in [("t", &[0u64, 1, 2, 3][..]), ("g/u", &[0, 2])] {
        s.create_array(&p(array), uint8_array(&[4], &[1]))
            .await
            .unwrap();
        for &c in chunks {
            s.set_chunk(&p(array), &[c], Bytes::from(vec![0xB0, c as u8]))
                .await
                .unwrap();
        }
    }
    s.commit("base", None).await.unwrap();
}

/// The state the three sides' changes make together from the ticket, or why they cannot
/// all apply (two sides changed a node, or wrote a chunk, differently).
fn compose(ticket: &View, sides: &[View; 3]) -> Result<View, String> {
    let mut out = ticket.clone();
    let mut set: BTreeMap<String, Option<&Value>> = BTreeMap::new();
    for side in sides {
        let paths = ticket.nodes.keys().chain(side.nodes.keys());
        for path in paths {
            let value = side.nodes.get(path);
            if value == ticket.nodes.get(path) {
                continue;
            }
            if set.get(path).is_some_and(|other| *other != value) {
                return Err(format!("/{path} changed differently"));
            }
            set.insert(path.clone(), value);
            match value {
                Some(v) => {
                    out.nodes.insert(path.clone(), v.clone());
                }
                None => {
                    out.nodes.remove(path);
                }
            }
        }
    }
    let mut written: BTreeMap<&(String, Vec<u64>), &Bytes> = BTreeMap::new();
    for side in sides {
        for key in ticket.chunks.keys().chain(side.chunks.keys()) {
            let value = side.chunks.get(key);
            if value == ticket.chunks.get(key) {
                continue;
            }
            match value {
                Some(bytes) => {
                    if written.get(key).is_some_and(|w| *w != bytes) {
                        return Err(format!("{key:?} written differently"));
                    }
                    written.insert(key, bytes);
                    out.chunks.insert(key.clone(), bytes.clone());
                }
                None if !written.contains_key(key) => {
                    out.chunks.remove(key);
                }
                None => {}
            }
        }
    }
    Ok(out)
}

async fn check(case: Case) {
    let forward = run(&case, false).await;
    let backward = run(&case, true).await;
    assert_eq!(
        forward.merged == [true, true],
        backward.merged == [true, true],
        "the order decided: {:?} then {:?}",
        forward.merged,
        backward.merged
    );
    let Some(last) = &forward.last else {
        return;
    };
    assert_eq!(
        backward.last.as_ref(),
        Some(last),
        "the order changed the result"
    );
    let want = compose(&forward.ticket, &forward.sides)
        .unwrap_or_else(|why| panic!("both merged although {why}"));
    assert_eq!(last, &want, "nothing written is lost");
    for path in last.nodes.keys().filter(|p| !p.is_empty()) {
        let parent = path.rsplit_once('/').map_or("", |(parent, _)| parent);
        assert!(
            last.nodes.contains_key(parent),
            "/{path} without its parent"
        );
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Two workers merged in either order: the same outcome, and nothing written lost.
    #[test]
    fn fork_merges_do_not_depend_on_order_and_lose_nothing(case in case()) {
        runtime().block_on(check(case));
    }
}
