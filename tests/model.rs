//! Property test of sessions and commits against a simple in-memory model.
//!
//! Random sequences of node, chunk, commit, discard and checkout operations run both on a
//! floe repository (with tiny thresholds, so inline chunks, packs, single-object chunks,
//! several manifest shards, inline deltas and their compaction all occur) and on a model made
//! of `BTreeMap`s. After every operation the writable session must show exactly the model's
//! working state; every committed version must read back exactly what the model recorded for
//! it, through the same handle and through a freshly opened one (cold caches).
//!
//! Heavier run: `PROPTEST_CASES=2000 cargo test --test model -- --include-ignored` (the
//! variable sets the number of cases of both properties).

use std::collections::BTreeMap;

use bytes::Bytes;
use floe::{
    DynStorage, Error, NodePath, Repository, RepositorySettings, Session, SnapshotId, VersionSpec,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Node paths the operations pick from ("" is the root group).
const PATHS: [&str; 7] = ["", "g", "g/h", "a", "g/b", "g/h/c", "x"];

/// Chunk shape of the array that may live at a path (fixed per path, so ranks never change).
fn chunk_shape_of(path: &str) -> &'static [u64] {
    match path {
        "g" => &[1, 2],
        "g/b" => &[2, 3],
        "g/h/c" => &[1],
        "x" => &[4],
        _ => &[2],
    }
}

fn settings() -> RepositorySettings {
    RepositorySettings {
        inline_threshold: 16,
        single_object_threshold: 4096,
        pack_target_bytes: 8192,
        shard_target_refs: 8,
        delta_max_entries: 4,
        delta_max_bytes: 512,
        txlog_inline_max_bytes: 48,
        ..Default::default()
    }
}

fn array_doc(path: &str, shape: &[u64]) -> Map<String, Value> {
    let chunks = chunk_shape_of(path);
    let value = json!({
        "zarr_format": 3, "node_type": "array", "shape": &shape[..chunks.len()], "data_type": "uint8",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunks}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0, "codecs": [{"name": "bytes"}]
    });
    match value {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

fn attrs(tag: Option<u8>) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(t) = tag {
        m.insert("k".into(), json!(t));
        if t % 2 == 0 {
            m.insert("even".into(), json!([t, "x"]));
        }
    }
    m
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add((i as u8).wrapping_mul(31)))
        .collect()
}

// ---- operations ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    CreateGroup {
        path: usize,
        attr: Option<u8>,
    },
    CreateArray {
        path: usize,
        shape: [u64; 2],
    },
    SetChunk {
        path: usize,
        coord: [u64; 2],
        len: usize,
        seed: u8,
    },
    DeleteChunk {
        path: usize,
        coord: [u64; 2],
    },
    Resize {
        path: usize,
        shape: [u64; 2],
    },
    SetAttributes {
        path: usize,
        attr: Option<u8>,
    },
    DeleteNode {
        path: usize,
    },
    Commit,
    Discard,
    Checkout {
        version: usize,
    },
    Reopen,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let path = 0..PATHS.len();
    let array_path = 1..PATHS.len();
    let shape = [0u64..=9, 0u64..=9];
    let coord = [0u64..=5, 0u64..=4];
    let len = prop_oneof![4 => 0usize..=16, 3 => 17usize..=600, 2 => 601usize..4096, 1 => 4096usize..=4400];
    prop_oneof![
        2 => (path.clone(), proptest::option::of(any::<u8>())).prop_map(|(path, attr)| Op::CreateGroup { path, attr }),
        3 => (array_path.clone(), shape.clone()).prop_map(|(path, shape)| Op::CreateArray { path, shape }),
        12 => (array_path.clone(), coord.clone(), len, any::<u8>())
            .prop_map(|(path, coord, len, seed)| Op::SetChunk { path, coord, len, seed }),
        3 => (array_path.clone(), coord).prop_map(|(path, coord)| Op::DeleteChunk { path, coord }),
        3 => (array_path, shape).prop_map(|(path, shape)| Op::Resize { path, shape }),
        2 => (path.clone(), proptest::option::of(any::<u8>())).prop_map(|(path, attr)| Op::SetAttributes { path, attr }),
        1 => path.prop_map(|path| Op::DeleteNode { path }),
        4 => Just(Op::Commit),
        1 => Just(Op::Discard),
        1 => any::<usize>().prop_map(|version| Op::Checkout { version }),
        1 => Just(Op::Reopen),
    ]
}

// ---- the model ----------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
struct ModelNode {
    doc: Map<String, Value>,
    /// `Some` for arrays.
    chunks: Option<BTreeMap<Vec<u64>, Vec<u8>>>,
}

type Model = BTreeMap<String, ModelNode>;

/// Which error an operation must fail with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expected {
    NodeNotFound,
    WrongNodeKind,
    OutOfBounds,
    Hierarchy,
}

fn within(path: &str, ancestor: &str) -> bool {
    ancestor.is_empty() || path == ancestor || path.starts_with(&format!("{ancestor}/"))
}

fn strict_ancestors(path: &str) -> Vec<String> {
    if path.is_empty() {
        return vec![];
    }
    let mut out = vec![String::new()];
    let parts: Vec<&str> = path.split('/').collect();
    for i in 1..parts.len() {
        out.push(parts[..i].join("/"));
    }
    out
}

fn shape_of(doc: &Map<String, Value>) -> Vec<u64> {
    doc["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

fn grid_of(path: &str, doc: &Map<String, Value>) -> Vec<u64> {
    shape_of(doc)
        .iter()
        .zip(chunk_shape_of(path))
        .map(|(s, c)| s.div_ceil(*c))
        .collect()
}

fn in_grid(coord: &[u64], grid: &[u64]) -> bool {
    coord.len() == grid.len() && coord.iter().zip(grid).all(|(c, g)| c < g)
}

fn under_array(model: &Model, path: &str) -> bool {
    strict_ancestors(path)
        .iter()
        .any(|a| model.get(a).is_some_and(|n| n.chunks.is_some()))
}

fn set_doc(node: &mut ModelNode, path: &str, doc: Map<String, Value>) {
    node.doc = doc;
    if let Some(chunks) = &mut node.chunks {
        let grid = grid_of(path, &node.doc);
        chunks.retain(|c, _| in_grid(c, &grid));
    }
}

fn require_array<'m>(model: &'m mut Model, path: &str) -> Result<&'m mut ModelNode, Expected> {
    match model.get_mut(path) {
        None => Err(Expected::NodeNotFound),
        Some(n) if n.chunks.is_none() => Err(Expected::WrongNodeKind),
        Some(n) => Ok(n),
    }
}

/// Applies a mutating operation to the model, or says which error it must raise.
fn model_apply(model: &mut Model, op: &Op) -> Result<(), Expected> {
    match op {
        Op::CreateGroup { path, attr } => {
            let p = PATHS[*path];
            if under_array(model, p) {
                return Err(Expected::Hierarchy);
            }
            let mut doc = Map::new();
            doc.insert("zarr_format".into(), json!(3));
            doc.insert("node_type".into(), json!("group"));
            let a = attrs(*attr);
            if !a.is_empty() {
                doc.insert("attributes".into(), Value::Object(a));
            }
            model.insert(p.to_string(), ModelNode { doc, chunks: None });
        }
        Op::CreateArray { path, shape } => {
            let p = PATHS[*path];
            if under_array(model, p) {
                return Err(Expected::Hierarchy);
            }
            let doc = array_doc(p, shape);
            match model.get_mut(p) {
                Some(n) if n.chunks.is_some() => set_doc(n, p, doc),
                _ => {
                    model.retain(|q, _| !within(q, p));
                    model.insert(
                        p.to_string(),
                        ModelNode {
                            doc,
                            chunks: Some(BTreeMap::new()),
                        },
                    );
                }
            }
        }
        Op::SetChunk {
            path,
            coord,
            len,
            seed,
        } => {
            let p = PATHS[*path];
            let node = require_array(model, p)?;
            let grid = grid_of(p, &node.doc);
            let coord = coord[..grid.len()].to_vec();
            if !in_grid(&coord, &grid) {
                return Err(Expected::OutOfBounds);
            }
            node.chunks
                .as_mut()
                .unwrap()
                .insert(coord, payload(*len, *seed));
        }
        Op::DeleteChunk { path, coord } => {
            let p = PATHS[*path];
            let node = require_array(model, p)?;
            let grid = grid_of(p, &node.doc);
            let coord = coord[..grid.len()].to_vec();
            if !in_grid(&coord, &grid) {
                return Err(Expected::OutOfBounds);
            }
            node.chunks.as_mut().unwrap().remove(&coord);
        }
        Op::Resize { path, shape } => {
            let p = PATHS[*path];
            let node = require_array(model, p)?;
            let mut doc = node.doc.clone();
            doc.insert("shape".into(), json!(&shape[..chunk_shape_of(p).len()]));
            set_doc(node, p, doc);
        }
        Op::SetAttributes { path, attr } => {
            let p = PATHS[*path];
            let node = model.get_mut(p).ok_or(Expected::NodeNotFound)?;
            let mut doc = node.doc.clone();
            let a = attrs(*attr);
            if a.is_empty() {
                doc.remove("attributes");
            } else {
                doc.insert("attributes".into(), Value::Object(a));
            }
            set_doc(node, p, doc);
        }
        Op::DeleteNode { path } => {
            let p = PATHS[*path];
            if !model.contains_key(p) {
                return Err(Expected::NodeNotFound);
            }
            model.retain(|q, _| !within(q, p));
        }
        Op::Commit | Op::Discard | Op::Checkout { .. } | Op::Reopen => {
            unreachable!("not a session write")
        }
    }
    Ok(())
}

fn classify(err: &Error) -> Option<Expected> {
    match err {
        Error::NodeNotFound { .. } => Some(Expected::NodeNotFound),
        Error::WrongNodeKind { .. } => Some(Expected::WrongNodeKind),
        Error::ChunkOutOfBounds { .. } => Some(Expected::OutOfBounds),
        Error::InvalidHierarchy { .. } => Some(Expected::Hierarchy),
        _ => None,
    }
}

/// Applies a mutating operation to the session.
async fn session_apply(session: &Session, op: &Op) -> floe::Result<()> {
    let path = |i: usize| NodePath::new(PATHS[i]).unwrap();
    let rank = |i: usize| chunk_shape_of(PATHS[i]).len();
    match op {
        Op::CreateGroup { path: i, attr } => session.create_group(&path(*i), attrs(*attr)).await,
        Op::CreateArray { path: i, shape } => {
            session
                .create_array(&path(*i), Value::Object(array_doc(PATHS[*i], shape)))
                .await
        }
        Op::SetChunk {
            path: i,
            coord,
            len,
            seed,
        } => {
            let data = Bytes::from(payload(*len, *seed));
            let c = coord_for(*i, coord);
            session.set_chunk(&path(*i), &c, data).await
        }
        Op::DeleteChunk { path: i, coord } => {
            let c = coord_for(*i, coord);
            session.delete_chunk(&path(*i), &c).await
        }
        Op::Resize { path: i, shape } => session.resize_array(&path(*i), &shape[..rank(*i)]).await,
        Op::SetAttributes { path: i, attr } => {
            session.set_attributes(&path(*i), attrs(*attr)).await
        }
        Op::DeleteNode { path: i } => session.delete_node(&path(*i)).await,
        Op::Commit | Op::Discard | Op::Checkout { .. } | Op::Reopen => {
            unreachable!("not a session write")
        }
    }
}

/// The coordinates an operation addresses: as many as the rank of the array at the path.
fn coord_for(path: usize, coord: &[u64; 2]) -> Vec<u64> {
    coord[..chunk_shape_of(PATHS[path]).len()].to_vec()
}

// ---- checking a view ----------------------------------------------------------------------

fn all_coords(bound: &[u64]) -> Vec<Vec<u64>> {
    let mut out = vec![vec![]];
    for &b in bound {
        out = out
            .into_iter()
            .flat_map(|prefix: Vec<u64>| {
                (0..b).map(move |x| {
                    let mut c = prefix.clone();
                    c.push(x);
                    c
                })
            })
            .collect();
    }
    out
}

/// Asserts that `session` shows exactly `model`: nodes, documents, and every chunk of every
/// array (including absent ones and one step past the grid).
async fn check_view(session: &Session, model: &Model, context: &str) {
    let listed: Vec<(String, Map<String, Value>)> = session
        .list_nodes()
        .unwrap()
        .into_iter()
        .map(|n| (n.path.as_str().to_string(), n.metadata.document().clone()))
        .collect();
    let expected: Vec<(String, Map<String, Value>)> = model
        .iter()
        .map(|(p, n)| (p.clone(), n.doc.clone()))
        .collect();
    assert_eq!(listed, expected, "{context}: node list");
    for p in PATHS {
        let path = NodePath::new(p).unwrap();
        let node = session.node(&path).unwrap();
        assert_eq!(
            node.map(|n| n.metadata.document().clone()),
            model.get(p).map(|n| n.doc.clone()),
            "{context}: node `{p}`"
        );
    }
    for (p, node) in model {
        let Some(chunks) = &node.chunks else { continue };
        let path = NodePath::new(p).unwrap();
        let grid = grid_of(p, &node.doc);
        let past: Vec<u64> = grid.iter().map(|g| g + 1).collect();
        for coord in all_coords(&past) {
            let got = session.get_chunk(&path, &coord).await.unwrap();
            let want = chunks.get(&coord);
            assert_eq!(
                got.as_deref(),
                want.map(|v| v.as_slice()),
                "{context}: chunk {coord:?} of `{p}`"
            );
            if let Some(want) = want {
                let size = session.chunk_size(&path, &coord).await.unwrap();
                assert_eq!(
                    size,
                    Some(want.len() as u64),
                    "{context}: size of {coord:?} of `{p}`"
                );
                let half = (want.len() / 2) as u64;
                let range = session
                    .get_chunk_range(&path, &coord, half..want.len() as u64)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(
                    &range[..],
                    &want[half as usize..],
                    "{context}: range of {coord:?} of `{p}`"
                );
            }
        }
        let stored = session.list_chunks(&path).await.unwrap();
        assert_eq!(
            stored,
            chunks.keys().cloned().collect::<Vec<_>>(),
            "{context}: chunk list of `{p}`"
        );
    }
}

/// Checks every committed version through a repository handle.
async fn check_versions(repo: &Repository, versions: &[(SnapshotId, Model)], context: &str) {
    for (i, (id, model)) in versions.iter().enumerate() {
        let session = repo
            .readonly_session(&VersionSpec::Snapshot(*id))
            .await
            .unwrap();
        assert!(!session.is_writable());
        check_view(&session, model, &format!("{context}: version {i}")).await;
    }
    let tip = repo.branch_tip("main").await.unwrap();
    assert_eq!(tip, versions.last().unwrap().0, "{context}: branch tip");
    let log = repo.log_from(tip, usize::MAX).await.unwrap();
    let ids: Vec<SnapshotId> = log.iter().map(|e| e.id).collect();
    let expected: Vec<SnapshotId> = versions.iter().rev().map(|(id, _)| *id).collect();
    assert_eq!(ids, expected, "{context}: log");
}

async fn run_case(ops: Vec<Op>) -> DynStorage {
    let storage: DynStorage = floe::open_storage("memory://", &vec![]).unwrap();
    let mut repo = Repository::init(storage.clone(), settings()).await.unwrap();
    let mut session = repo.writable_session("main").await.unwrap();
    let mut versions: Vec<(SnapshotId, Model)> = vec![(session.snapshot_id(), Model::new())];
    let mut working = Model::new();
    check_view(&session, &working, "initial").await;
    for (step, op) in ops.iter().enumerate() {
        let context = format!("step {step} ({op:?})");
        match op {
            Op::Commit => {
                let head = &versions.last().unwrap().1;
                match session.commit(&format!("commit {step}"), None).await {
                    Ok(id) => {
                        assert_eq!(session.snapshot_id(), id, "{context}");
                        assert!(
                            !session.has_changes(),
                            "{context}: changes left after commit"
                        );
                        versions.push((id, working.clone()));
                        let fresh = repo.session_at_snapshot(id).await.unwrap();
                        check_view(&fresh, &working, &format!("{context}: new version")).await;
                    }
                    Err(Error::NothingToCommit) => {
                        assert_eq!(&working, head, "{context}: changes were not committed");
                    }
                    Err(e) => panic!("{context}: {e}"),
                }
            }
            Op::Discard => {
                session.discard().await;
                working = versions.last().unwrap().1.clone();
                assert!(session.status().is_empty(), "{context}");
            }
            Op::Checkout { version } => {
                let (id, model) = &versions[version % versions.len()];
                let old = repo
                    .readonly_session(&VersionSpec::Snapshot(*id))
                    .await
                    .unwrap();
                check_view(&old, model, &context).await;
                let err = old
                    .create_group(&NodePath::root(), Map::new())
                    .await
                    .unwrap_err();
                assert!(matches!(err, Error::ReadOnlySession), "{context}: {err}");
                let err = old.commit("no", None).await.unwrap_err();
                assert!(matches!(err, Error::ReadOnlySession), "{context}: {err}");
            }
            Op::Reopen => {
                // A fresh handle has cold caches: everything comes from storage again. The
                // writable session moves to it, losing nothing committed.
                repo = Repository::open(storage.clone(), settings()).await.unwrap();
                check_versions(&repo, &versions, &context).await;
                session = repo.writable_session("main").await.unwrap();
                working = versions.last().unwrap().1.clone();
            }
            write => {
                let expected = model_apply(&mut working, write);
                let got = session_apply(&session, write).await;
                match (&expected, &got) {
                    (Ok(()), Ok(())) => {}
                    (Err(want), Err(e)) => assert_eq!(classify(e), Some(*want), "{context}: {e}"),
                    _ => panic!("{context}: model says {expected:?}, session says {got:?}"),
                }
            }
        }
        check_view(&session, &working, &context).await;
    }
    let reopened = Repository::open(storage.clone(), settings()).await.unwrap();
    check_versions(&reopened, &versions, "end").await;
    storage
}

fn run(ops: Vec<Op>) -> DynStorage {
    runtime().block_on(run_case(ops))
}

/// The number of cases: `PROPTEST_CASES` when set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn sessions_and_versions_match_the_model(ops in proptest::collection::vec(op_strategy(), 1..40)) {
        run(ops);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(400), failure_persistence: None, ..ProptestConfig::default() })]

    /// Longer sequences; run with `cargo test --test model -- --ignored`.
    #[test]
    #[ignore]
    fn long_sequences_match_the_model(ops in proptest::collection::vec(op_strategy(), 40..160)) {
        run(ops);
    }
}

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
