//! Merge semantics against a model (spec/algorithms.md §8): 2 to 4 writable sessions, all
//! opened on the same base of `main`, each apply random operations (chunk writes and
//! deletions, appends along dimension 0, shrinks, fill value changes, attribute sets and
//! removals, new groups), then commit one after another in a random order, each rebasing onto
//! what landed before it.
//!
//! The model (`merge_model/rules.rs`) decides from the documented rules alone, never from
//! floe's conflict code, whether each commit merges or conflicts, and which snapshot, node,
//! chunk coordinates or attribute keys the conflict names. A landed commit applies its
//! session's changes on the model's state, with merged metadata (shape = element-wise
//! maximum, attributes merged key by key; nodes another commit left exactly as the session
//! does merge against that version). After every landed commit, and at the end through a
//! fresh repository handle, floe must hold exactly the model's state (nodes, shapes, fill
//! values, attributes, every chunk of every grid), and history must be linear with one commit
//! per landed session, in landing order.
//!
//! `PROPTEST_CASES` sets the number of cases of the default run; the ignored soak test runs
//! 2000 and checks that every outcome (plain landing, landing after a node merge or after an
//! identical change, each kind of conflict) occurs.

mod common;

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use common::{linear_history, memory_repo_with, p, runtime, uint8_array};
use floe::{
    ConflictDetail, Error, NodeMetadata, Repository, RepositorySettings, Session, SnapshotId,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// The arrays: `a` is 2-D (`BASE_ROWS` x `COLUMNS` chunks of one element), `b` is 1-D.
const ARRAYS: [&str; 2] = ["a", "b"];
/// Chunk columns of `a` (its second dimension never changes).
const COLUMNS: u64 = 4;
/// Rows of both arrays in the base.
const BASE_ROWS: u64 = 4;
/// Nodes whose attributes the sessions change.
const ATTRIBUTE_NODES: [&str; 3] = ["a", "b", "g"];
/// Attribute keys the sessions set or remove.
const KEYS: [&str; 3] = ["k0", "k1", "k2"];
/// Groups the sessions may create (absent from the base).
const NEW_GROUPS: [&str; 3] = ["x0", "x1", "g/x0"];

/// One operation of one session.
#[derive(Clone, Debug)]
enum Op {
    /// Writes chunk `[row, col]` of `a` (`[row]` of `b`); out of bounds is refused.
    Write {
        array: usize,
        row: u64,
        col: u64,
        seed: u8,
    },
    /// Deletes a chunk; out of bounds is refused.
    Delete { array: usize, row: u64, col: u64 },
    /// Grows dimension 0 by `rows` and writes a chunk in the last new row.
    Append {
        array: usize,
        rows: u64,
        col: u64,
        seed: u8,
    },
    /// Sets one attribute key of a node.
    SetAttribute { node: usize, key: usize, value: u8 },
    /// Removes one attribute key of a node (which may be absent).
    RemoveAttribute { node: usize, key: usize },
    /// Creates (or, if this session created it already, rewrites) a group.
    CreateGroup { group: usize, value: u8 },
    /// Shrinks dimension 0 to `rows` (skipped unless smaller than the current extent).
    Shrink { array: usize, rows: u64 },
    /// Sets the array's `fill_value` (a change of a key other than shape and attributes).
    SetFillValue { array: usize, value: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    let array = 0usize..ARRAYS.len();
    prop_oneof![
        5 => (array.clone(), 0u64..7, 0..COLUMNS, any::<u8>())
            .prop_map(|(array, row, col, seed)| Op::Write { array, row, col, seed }),
        2 => (array.clone(), 0u64..7, 0..COLUMNS)
            .prop_map(|(array, row, col)| Op::Delete { array, row, col }),
        3 => (array, 1u64..=2, 0..COLUMNS, any::<u8>())
            .prop_map(|(array, rows, col, seed)| Op::Append { array, rows, col, seed }),
        3 => (0..ATTRIBUTE_NODES.len(), 0..KEYS.len(), 0u8..3)
            .prop_map(|(node, key, value)| Op::SetAttribute { node, key, value }),
        1 => (0..ATTRIBUTE_NODES.len(), 0..KEYS.len())
            .prop_map(|(node, key)| Op::RemoveAttribute { node, key }),
        1 => (0..NEW_GROUPS.len(), 0u8..3)
            .prop_map(|(group, value)| Op::CreateGroup { group, value }),
        1 => (0..ARRAYS.len(), 1u64..4).prop_map(|(array, rows)| Op::Shrink { array, rows }),
        1 => (0..ARRAYS.len(), 0u8..2)
            .prop_map(|(array, value)| Op::SetFillValue { array, value }),
    ]
}

/// Each session's operations, and the order in which the sessions commit.
fn case() -> impl Strategy<Value = (Vec<Vec<Op>>, Vec<usize>)> {
    (2usize..=4).prop_flat_map(|n| {
        (
            proptest::collection::vec(proptest::collection::vec(op(), 1..6), n),
            Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
        )
    })
}

#[path = "merge_model/rules.rs"]
mod rules;

use rules::{decide, Changes, Doc, Expected, Named, State};

// ---- driving floe ----------------------------------------------------------------------

fn base_attributes(pairs: &[(&str, u8)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect()
}

/// The base: root group, group `g` (attributes k0, k1), array `a` ([4, 4], attribute k0) and
/// array `b` ([4], no attributes), with every chunk of `a` and half of `b` written.
async fn setup(repo: &Repository) -> State {
    let s = repo.writable_session("main").await.unwrap();
    let mut state = State::default();
    s.create_group(&p(""), Map::new()).await.unwrap();
    state.nodes.insert(String::new(), group_doc(Map::new()));
    let g_attributes = base_attributes(&[("k0", 0), ("k1", 0)]);
    s.create_group(&p("g"), g_attributes.clone()).await.unwrap();
    state.nodes.insert("g".into(), group_doc(g_attributes));
    let a_attributes = base_attributes(&[("k0", 0)]);
    let mut a = uint8_array(&[BASE_ROWS, COLUMNS], &[1, 1]);
    a["attributes"] = Value::Object(a_attributes.clone());
    s.create_array(&p("a"), a).await.unwrap();
    s.create_array(&p("b"), uint8_array(&[BASE_ROWS], &[1]))
        .await
        .unwrap();
    state.nodes.insert(
        "a".into(),
        Doc {
            shape: Some(vec![BASE_ROWS, COLUMNS]),
            fill: Some(0),
            attributes: a_attributes,
        },
    );
    state.nodes.insert(
        "b".into(),
        Doc {
            shape: Some(vec![BASE_ROWS]),
            fill: Some(0),
            attributes: Map::new(),
        },
    );
    for row in 0..BASE_ROWS {
        for col in 0..COLUMNS {
            let bytes = vec![0xB0, row as u8, col as u8];
            s.set_chunk(&p("a"), &[row, col], Bytes::from(bytes.clone()))
                .await
                .unwrap();
            state.chunks.insert(("a".into(), vec![row, col]), bytes);
        }
        if row % 2 == 0 {
            let bytes = vec![0xB1, row as u8];
            s.set_chunk(&p("b"), &[row], Bytes::from(bytes.clone()))
                .await
                .unwrap();
            state.chunks.insert(("b".into(), vec![row]), bytes);
        }
    }
    s.commit("setup", None).await.unwrap();
    state
}

fn group_doc(attributes: Map<String, Value>) -> Doc {
    Doc {
        shape: None,
        fill: None,
        attributes,
    }
}

/// Chunk coordinates of `array` for a drawn row and column.
fn coord(array: usize, row: u64, col: u64) -> Vec<u64> {
    if array == 0 {
        vec![row, col]
    } else {
        vec![row]
    }
}

/// A writable session with the model's view of it.
struct Writer {
    session: Session,
    view: State,
    changes: Changes,
    /// Distinguishes this session's chunk bytes from every other's.
    tag: u8,
}

impl Writer {
    /// Applies `op` to the session and to the model, checking that floe accepts or refuses
    /// it as the model expects.
    async fn apply(&mut self, step: usize, op: &Op) {
        match *op {
            Op::Write {
                array,
                row,
                col,
                seed,
            } => {
                let bytes = vec![self.tag, step as u8, seed];
                self.edit_chunk(array, coord(array, row, col), Some(bytes))
                    .await;
            }
            Op::Delete { array, row, col } => {
                self.edit_chunk(array, coord(array, row, col), None).await;
            }
            Op::Append {
                array,
                rows,
                col,
                seed,
            } => {
                let name = ARRAYS[array];
                let mut doc = self.view.nodes[name].clone();
                let shape = doc.shape.as_mut().unwrap();
                shape[0] += rows;
                self.session.resize_array(&p(name), shape).await.unwrap();
                let last = shape[0] - 1;
                self.put(name, doc);
                let bytes = vec![self.tag, step as u8, seed];
                self.edit_chunk(array, coord(array, last, col), Some(bytes))
                    .await;
            }
            Op::SetAttribute { node, key, value } => {
                let name = ATTRIBUTE_NODES[node];
                let mut doc = self.view.nodes[name].clone();
                doc.attributes.insert(KEYS[key].into(), json!(value));
                self.set_attributes(name, doc).await;
            }
            Op::RemoveAttribute { node, key } => {
                let name = ATTRIBUTE_NODES[node];
                let mut doc = self.view.nodes[name].clone();
                doc.attributes.remove(KEYS[key]);
                self.set_attributes(name, doc).await;
            }
            Op::CreateGroup { group, value } => {
                let name = NEW_GROUPS[group];
                let attributes = base_attributes(&[("v", value)]);
                self.session
                    .create_group(&p(name), attributes.clone())
                    .await
                    .unwrap();
                self.changes.created.insert(name.into());
                self.put(name, group_doc(attributes));
            }
            Op::Shrink { array, rows } => {
                let name = ARRAYS[array];
                let mut doc = self.view.nodes[name].clone();
                let shape = doc.shape.as_mut().unwrap();
                if rows >= shape[0] {
                    return;
                }
                shape[0] = rows;
                self.session.resize_array(&p(name), shape).await.unwrap();
                self.put(name, doc);
                // Chunks beyond the new extent are gone, the session's own edits included.
                self.view
                    .chunks
                    .retain(|(p, c), _| p != name || c[0] < rows);
                if let Some(edits) = self.changes.chunks.get_mut(name) {
                    edits.retain(|c, _| c[0] < rows);
                    if edits.is_empty() {
                        self.changes.chunks.remove(name);
                    }
                }
                let clip = self.changes.clips.entry(name.into()).or_insert(rows);
                *clip = (*clip).min(rows);
            }
            Op::SetFillValue { array, value } => {
                let name = ARRAYS[array];
                let node = self.session.require_node(&p(name)).unwrap();
                let mut json = node.metadata.document().clone();
                json.insert("fill_value".into(), json!(value));
                let metadata = NodeMetadata::from_value(&p(name), Value::Object(json)).unwrap();
                self.session.set_metadata(&p(name), metadata).await.unwrap();
                let mut doc = self.view.nodes[name].clone();
                doc.fill = Some(value);
                self.put(name, doc);
            }
        }
    }

    fn put(&mut self, name: &str, doc: Doc) {
        self.view.nodes.insert(name.into(), doc.clone());
        self.changes.puts.insert(name.into(), doc);
    }

    async fn set_attributes(&mut self, name: &str, doc: Doc) {
        self.session
            .set_attributes(&p(name), doc.attributes.clone())
            .await
            .unwrap();
        self.put(name, doc);
    }

    async fn edit_chunk(&mut self, array: usize, coord: Vec<u64>, bytes: Option<Vec<u8>>) {
        let name = ARRAYS[array];
        let rows = self.view.nodes[name].shape.as_ref().unwrap()[0];
        let result = match &bytes {
            Some(b) => {
                self.session
                    .set_chunk(&p(name), &coord, Bytes::from(b.clone()))
                    .await
            }
            None => self.session.delete_chunk(&p(name), &coord).await,
        };
        if coord[0] >= rows {
            assert!(
                matches!(result, Err(Error::ChunkOutOfBounds { .. })),
                "{name}{coord:?} is outside {rows} rows: {result:?}"
            );
            return;
        }
        result.unwrap();
        let key = (name.to_string(), coord.clone());
        match &bytes {
            Some(b) => self.view.chunks.insert(key, b.clone()),
            None => self.view.chunks.remove(&key),
        };
        self.changes
            .chunks
            .entry(name.into())
            .or_default()
            .insert(coord, bytes);
    }
}

/// Asserts that `session` holds exactly `state`: the same nodes, shapes and attributes, and
/// for every coordinate of every array's grid the same chunk bytes (or none).
async fn assert_state(session: &Session, state: &State, context: &str) {
    let nodes: Vec<String> = session
        .list_nodes()
        .unwrap()
        .iter()
        .map(|n| n.path.to_string()[1..].to_string())
        .collect();
    let want: Vec<String> = state.nodes.keys().cloned().collect();
    assert_eq!(nodes, want, "{context}: nodes");
    for (name, doc) in &state.nodes {
        let node = session.require_node(&p(name)).unwrap();
        let shape = node.metadata.geometry().map(|g| g.shape.clone());
        assert_eq!(shape, doc.shape, "{context}: shape of /{name}");
        let fill = node.metadata.document().get("fill_value").cloned();
        assert_eq!(
            fill,
            doc.fill.map(|f| json!(f)),
            "{context}: fill value of /{name}"
        );
        assert_eq!(
            node.metadata.attributes(),
            doc.attributes,
            "{context}: attributes of /{name}"
        );
    }
    for (array, name) in ARRAYS.iter().enumerate() {
        let rows = state.nodes[*name].shape.as_ref().unwrap()[0];
        let columns = if array == 0 { COLUMNS } else { 1 };
        for row in 0..rows {
            for col in 0..columns {
                let c = coord(array, row, col);
                let got = session.get_chunk(&p(name), &c).await.unwrap();
                let want = state.chunks.get(&(name.to_string(), c.clone()));
                assert_eq!(
                    got.as_deref(),
                    want.map(Vec::as_slice),
                    "{context}: /{name}{c:?}"
                );
            }
        }
    }
}

/// Asserts that `err` is the conflict the model expects, naming `their_snapshot`.
fn assert_conflict(err: Error, expected: &Expected, their_snapshot: SnapshotId, context: &str) {
    let Error::Conflict {
        their_snapshot: named,
        detail,
        ..
    } = err
    else {
        panic!("{context}: expected {expected:?}, got {err:?}");
    };
    let detail: &ConflictDetail = detail.borrow();
    assert_eq!(
        named,
        their_snapshot.to_string(),
        "{context}: the conflicting snapshot ({detail:?}, expected {expected:?})"
    );
    match (&expected.what, detail) {
        (
            Named::Chunks { path, coords },
            ConflictDetail::Chunks {
                path: got_path,
                coords: got_coords,
            },
        ) => {
            assert_eq!(got_path, &format!("/{path}"), "{context}");
            assert_eq!(got_coords, coords, "{context}: coordinates");
        }
        (Named::Created { path }, ConflictDetail::Node { path: got_path, .. }) => {
            assert_eq!(got_path, &format!("/{path}"), "{context}: {detail:?}");
        }
        (
            Named::OtherKey { path },
            ConflictDetail::Node {
                path: got_path,
                reason,
            },
        ) => {
            assert_eq!(got_path, &format!("/{path}"), "{context}: {detail:?}");
            assert!(reason.contains("`fill_value`"), "{context}: {reason}");
        }
        (
            Named::Shrink { path },
            ConflictDetail::Node {
                path: got_path,
                reason,
            },
        ) => {
            assert_eq!(got_path, &format!("/{path}"), "{context}: {detail:?}");
            assert!(reason.contains("shrank"), "{context}: {reason}");
        }
        (
            Named::Attributes { path, keys },
            ConflictDetail::Node {
                path: got_path,
                reason,
            },
        ) => {
            assert_eq!(got_path, &format!("/{path}"), "{context}: {detail:?}");
            for key in keys {
                assert!(reason.contains(&format!("`{key}`")), "{context}: {reason}");
            }
            for key in KEYS.iter().filter(|k| !keys.iter().any(|c| c == *k)) {
                assert!(!reason.contains(&format!("`{key}`")), "{context}: {reason}");
            }
        }
        (want, got) => panic!("{context}: expected {want:?}, got {got:?}"),
    }
}

fn settings() -> RepositorySettings {
    RepositorySettings {
        commit_backoff_base: Duration::from_micros(10),
        commit_backoff_max: Duration::from_micros(100),
        ..Default::default()
    }
}

/// How many commits of a case ended each way (`landed`, `landed after a node merge`, `landed
/// after an identical change`, or the kind of conflict), for the distribution check of the
/// soak test.
type Outcomes = BTreeMap<&'static str, usize>;

fn conflict_kind(named: &Named) -> &'static str {
    match named {
        Named::Chunks { .. } => "chunk conflict",
        Named::Created { .. } => "created differently by both",
        Named::Attributes { .. } => "attribute conflict",
        Named::OtherKey { .. } => "fill value conflict",
        Named::Shrink { .. } => "shrink conflict",
    }
}

async fn run_case(ops: Vec<Vec<Op>>, order: Vec<usize>) -> Outcomes {
    let (repo, storage) = memory_repo_with(settings()).await;
    let base = setup(&repo).await;
    let mut writers = Vec::new();
    for (i, session_ops) in ops.iter().enumerate() {
        let mut writer = Writer {
            session: repo.writable_session("main").await.unwrap(),
            view: base.clone(),
            changes: Changes::default(),
            tag: 0x10 * (i as u8 + 1),
        };
        for (step, op) in session_ops.iter().enumerate() {
            writer.apply(step, op).await;
        }
        assert_state(
            &writer.session,
            &writer.view,
            &format!("session {i} before commit"),
        )
        .await;
        writers.push(writer);
    }
    // Landed sessions in landing order: what their transaction logs say, snapshot id, state
    // after it.
    let mut landed: Vec<(Changes, SnapshotId, State)> = Vec::new();
    let mut outcomes = Outcomes::default();
    for &i in &order {
        let context = format!("commit of session {i} ({:?})", ops[i]);
        let writer = &writers[i];
        let result = writer.session.commit(&format!("session {i}"), None).await;
        if writer.changes.is_empty() {
            assert!(
                matches!(result, Err(Error::NothingToCommit)),
                "{context}: {result:?}"
            );
            continue;
        }
        let history: Vec<(&Changes, &State)> = landed
            .iter()
            .map(|(logged, _, state)| (logged, state))
            .collect();
        match decide(&base, &history, &writer.changes) {
            Ok(next) => {
                let id = result.unwrap_or_else(|e| panic!("{context}: false conflict: {e}"));
                let version = repo.session_at_snapshot(id).await.unwrap();
                assert_state(&version, &next, &format!("{context}: landed")).await;
                let ours = &writer.changes;
                let identical = history.iter().any(|(c, state)| {
                    c.puts.keys().any(|p| {
                        !ours.clips.contains_key(p)
                            && ours
                                .puts
                                .get(p)
                                .is_some_and(|doc| state.nodes.get(p) == Some(doc))
                    })
                });
                let merged_a_node = history
                    .iter()
                    .any(|(c, _)| c.puts.keys().any(|p| ours.puts.contains_key(p)));
                let kind = if identical {
                    "landed after an identical change"
                } else if merged_a_node {
                    "landed after a node merge"
                } else {
                    "landed"
                };
                *outcomes.entry(kind).or_default() += 1;
                let tip = landed.last().map_or(&base, |(_, _, state)| state);
                let logged = ours.as_logged(tip, &next);
                landed.push((logged, id, next));
            }
            Err(expected) => {
                let err = match result {
                    Ok(id) => panic!("{context}: landed as {id}, expected {expected:?}"),
                    Err(e) => e,
                };
                let their_snapshot = landed[expected.their_commit].1;
                assert_conflict(err, &expected, their_snapshot, &context);
                assert!(writer.session.has_changes(), "{context}: changes kept");
                *outcomes.entry(conflict_kind(&expected.what)).or_default() += 1;
            }
        }
    }
    let fresh = Repository::open(storage, settings()).await.unwrap();
    let log = linear_history(&fresh).await;
    let ids: Vec<SnapshotId> = log.iter().map(|e| e.id).collect();
    let want: Vec<SnapshotId> = landed.iter().rev().map(|(_, id, _)| *id).collect();
    assert_eq!(ids.len(), want.len() + 2, "one commit per landed session");
    assert_eq!(ids[..want.len()], want[..], "landed commits, in order");
    let main = fresh
        .readonly_session(&floe::VersionSpec::Branch("main".into()))
        .await
        .unwrap();
    let tip = landed.last().map_or(&base, |(_, _, state)| state);
    assert_state(&main, tip, "main after every commit").await;
    outcomes
}

/// Cases of the default run: `PROPTEST_CASES`, or 256 (a few seconds in a debug build).
fn default_cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: default_cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Concurrent sessions on one base, committed in a random order: exactly the commits the
    /// rules allow land, the others fail with the conflict the rules name, and `main` ends up
    /// as the serial application of the landed sessions.
    #[test]
    fn concurrent_sessions_merge_like_the_model((ops, order) in case()) {
        runtime().block_on(run_case(ops, order));
    }
}

/// A longer run (`cargo test --all-features --test merge_model -- --ignored`); also checks that
/// the cases reach every outcome.
#[test]
#[ignore = "soak: 2000 cases, about half a minute"]
fn concurrent_sessions_merge_like_the_model_soak() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let totals = std::cell::RefCell::new(Outcomes::default());
    runner
        .run(&case(), |(ops, order)| {
            let outcomes = runtime().block_on(run_case(ops, order));
            for (kind, n) in outcomes {
                *totals.borrow_mut().entry(kind).or_default() += n;
            }
            Ok(())
        })
        .unwrap();
    let totals = totals.into_inner();
    eprintln!("merge model soak: {totals:?}");
    assert_eq!(totals.len(), 8, "every outcome occurs: {totals:?}");
}
