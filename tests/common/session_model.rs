//! A model of sessions and commits: operations on nodes, chunks and versions, what each does
//! to a map of nodes (or which error it must raise), and checks that a floe session or every
//! committed version shows exactly what the model says. Used by `model.rs` (random
//! sequences) and `model_sequences.rs` (fixed sequences and regressions).
//!
//! The repository runs with tiny thresholds, so inline chunks, packs, single-object chunks,
//! several manifest shards, inline deltas and their compaction all occur.

use std::collections::BTreeMap;

use bytes::Bytes;
use floe::{
    DynStorage, Error, NodePath, Repository, RepositorySettings, Session, SnapshotId, VersionSpec,
};
use serde_json::{json, Map, Value};

use super::{memory_repo_with, runtime, uint8_array};

/// Node paths the operations pick from ("" is the root group).
pub const PATHS: [&str; 7] = ["", "g", "g/h", "a", "g/b", "g/h/c", "x"];

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
    match uint8_array(&shape[..chunks.len()], chunks) {
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

/// One step of a sequence. `path` indexes [`PATHS`]; coordinates and shapes are cut to the
/// rank of the array that may live at that path. `Checkout` picks a committed version (modulo
/// their number) and checks it read-only; `Reopen` checks every version through a fresh
/// repository handle and continues with a new writable session on it.
#[derive(Clone, Debug)]
pub enum Op {
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
    let (mut repo, storage) = memory_repo_with(settings()).await;
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

/// Runs `ops` on a new in-memory repository and on the model, checking the session after
/// every operation and every version at the end; returns the repository's storage.
pub fn run(ops: Vec<Op>) -> DynStorage {
    runtime().block_on(run_case(ops))
}
