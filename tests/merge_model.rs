//! Merge semantics against a model (spec/algorithms.md §8): 2 to 4 writable sessions of
//! `main` each apply random operations (chunk writes and deletions, appends along dimension
//! 0, shrinks, fill value changes, attribute sets and removals, new groups, arrays deleted and
//! created again), then commit one after another in a random order, each rebasing onto what
//! landed since it opened. Most sessions open on the same base; some open only after earlier
//! ones committed, so that a newer commit can leave a node as a session does after an older
//! one changed it.
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
//! identical change, each kind of conflict, a conflict with a commit older than an identical
//! change) occurs.

mod common;

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use common::{linear_history, memory_repo_with, p, runtime};
use floe::{ConflictDetail, Error, Repository, RepositorySettings, Session, SnapshotId};
use proptest::prelude::*;
use serde_json::{json, Map};

/// One case: each session's operations, the order in which the sessions commit, and for
/// each position of that order, how many commits are tried before that session opens (at
/// most its position; mostly none, so most sessions open on the same base).
#[derive(Clone, Debug)]
struct Case {
    ops: Vec<Vec<Op>>,
    order: Vec<usize>,
    opens_after: Vec<usize>,
}

fn case() -> impl Strategy<Value = Case> {
    prop_oneof![3 => random_case(), 1 => agreeing_case()]
}

/// 2 to 4 sessions with random operations, committed in a random order.
fn random_case() -> impl Strategy<Value = Case> {
    use proptest::collection::vec;
    (2usize..=4).prop_flat_map(|n| {
        let delay = prop_oneof![3 => Just(0usize), 2 => 1usize..4];
        (
            vec(vec(op(), 1..6), n),
            Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
            vec(delay, n),
        )
            .prop_map(|(ops, order, delays)| Case {
                ops,
                order,
                opens_after: delays.iter().enumerate().map(|(k, d)| *d.min(&k)).collect(),
            })
    })
}

/// Three sessions where a newer commit leaves an array as this session does after an older
/// commit changed it: the older commit changes the array (and maybe more), the newer one,
/// opened after it, sets the array back to the base document (and maybe re-creates it), and
/// the last session, opened on the base, does the same and writes a chunk of the array.
fn agreeing_case() -> impl Strategy<Value = Case> {
    use proptest::collection::vec;
    let sessions = (vec(op(), 0..3), vec(op(), 0..2), vec(op(), 0..3));
    let chunk = (0..BASE_ROWS, 0..COLUMNS, any::<u8>());
    (
        0..ARRAYS.len(),
        0u8..5,
        1u64..4,
        any::<bool>(),
        sessions,
        chunk,
    )
        .prop_map(
            |(array, change, rows, recreate, (older, newer, ours), (row, col, seed))| {
                let first = match change {
                    0 => Op::Shrink { array, rows },
                    1 => Op::SetFillValue { array, value: 1 },
                    2 => Op::Recreate { array },
                    3 => Op::Append {
                        array,
                        rows: 1,
                        col,
                        seed,
                    },
                    _ => Op::Write {
                        array,
                        row,
                        col,
                        seed,
                    },
                };
                let mut agree = vec![Op::Restore { array }];
                if recreate {
                    agree.push(Op::Recreate { array });
                }
                let write = Op::Write {
                    array,
                    row,
                    col,
                    seed,
                };
                Case {
                    ops: vec![
                        [vec![first], older].concat(),
                        [newer, agree.clone()].concat(),
                        [ours, agree, vec![write]].concat(),
                    ],
                    order: vec![0, 1, 2],
                    opens_after: vec![0, 1, 0],
                }
            },
        )
}

#[path = "merge_model/rules.rs"]
mod rules;

use rules::{decide, Changes, Expected, Named, State};

#[path = "merge_model/writer.rs"]
mod writer;

use writer::{
    base_attributes, base_document, coord, group_doc, op, Op, Writer, ARRAYS, BASE_ROWS, COLUMNS,
    KEYS,
};

// ---- driving floe ----------------------------------------------------------------------

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
    for (array, name) in ARRAYS.iter().enumerate() {
        let (json, doc) = base_document(array);
        s.create_array(&p(name), json).await.unwrap();
        state.nodes.insert(name.to_string(), doc);
    }
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
        (Named::Node { path }, ConflictDetail::Node { path: got_path, .. }) => {
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
        Named::Node { .. } => "node changed by both",
        Named::Attributes { .. } => "attribute conflict",
        Named::OtherKey { .. } => "fill value conflict",
        Named::Shrink { .. } => "shrink conflict",
    }
}

/// A session opened during a case: the writer, the state it opened on, and how many
/// commits had landed then.
struct Opened {
    writer: Writer,
    base: State,
    landed_before: usize,
}

async fn run_case(case: Case) -> Outcomes {
    let Case {
        ops,
        order,
        opens_after,
    } = case;
    let (repo, storage) = memory_repo_with(settings()).await;
    let base = setup(&repo).await;
    let mut sessions: Vec<Option<Opened>> = (0..ops.len()).map(|_| None).collect();
    // Landed sessions in landing order: what their transaction logs say, snapshot id, state
    // after it.
    let mut landed: Vec<(Changes, SnapshotId, State)> = Vec::new();
    let mut outcomes = Outcomes::default();
    for (position, &i) in order.iter().enumerate() {
        for (later, &j) in order.iter().enumerate().skip(position) {
            if opens_after[later] != position {
                continue;
            }
            let tip = landed.last().map_or(&base, |(_, _, state)| state).clone();
            let mut writer = Writer {
                session: repo.writable_session("main").await.unwrap(),
                view: tip.clone(),
                changes: Changes::default(),
                tag: 0x10 * (j as u8 + 1),
            };
            for (step, op) in ops[j].iter().enumerate() {
                writer.apply(step, op).await;
            }
            let context = format!("session {j} before commit");
            assert_state(&writer.session, &writer.view, &context).await;
            sessions[j] = Some(Opened {
                writer,
                base: tip,
                landed_before: landed.len(),
            });
        }
        let Some(opened) = &sessions[i] else {
            unreachable!("every session opens before it commits")
        };
        let context = format!(
            "commit of session {i} ({:?}, opened after {} landed)",
            ops[i], opened.landed_before
        );
        let writer = &opened.writer;
        let result = writer.session.commit(&format!("session {i}"), None).await;
        if writer.changes.is_empty() {
            assert!(
                matches!(result, Err(Error::NothingToCommit)),
                "{context}: {result:?}"
            );
            continue;
        }
        let history: Vec<(&Changes, &State)> = landed[opened.landed_before..]
            .iter()
            .map(|(logged, _, state)| (logged, state))
            .collect();
        let ours = &writer.changes;
        // Whether some landed commit since put a node as this session does.
        let identical_after = |from: usize| {
            history[from..].iter().any(|(c, state)| {
                c.puts.keys().any(|p| {
                    !ours.clips.contains_key(p)
                        && ours
                            .puts
                            .get(p)
                            .is_some_and(|doc| state.nodes.get(p) == Some(doc))
                })
            })
        };
        match decide(&opened.base, &history, ours) {
            Ok(next) => {
                let id = result.unwrap_or_else(|e| panic!("{context}: false conflict: {e}"));
                let version = repo.session_at_snapshot(id).await.unwrap();
                assert_state(&version, &next.state, &format!("{context}: landed")).await;
                let merged_a_node = history
                    .iter()
                    .any(|(c, _)| c.puts.keys().any(|p| ours.puts.contains_key(p)));
                let kind = if identical_after(0) {
                    "landed after an identical change"
                } else if merged_a_node {
                    "landed after a node merge"
                } else {
                    "landed"
                };
                *outcomes.entry(kind).or_default() += 1;
                let tip = landed.last().map_or(&base, |(_, _, state)| state);
                let logged = ours.as_logged(tip, &next);
                landed.push((logged, id, next.state));
            }
            Err(expected) => {
                let err = match result {
                    Ok(id) => panic!("{context}: landed as {id}, expected {expected:?}"),
                    Err(e) => e,
                };
                let their_snapshot = landed[opened.landed_before + expected.their_commit].1;
                assert_conflict(err, &expected, their_snapshot, &context);
                assert!(writer.session.has_changes(), "{context}: changes kept");
                *outcomes.entry(conflict_kind(&expected.what)).or_default() += 1;
                if identical_after(expected.their_commit + 1) {
                    *outcomes
                        .entry("conflict with a commit older than an identical change")
                        .or_default() += 1;
                }
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
    fn concurrent_sessions_merge_like_the_model(case in case()) {
        runtime().block_on(run_case(case));
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
        .run(&case(), |case| {
            let outcomes = runtime().block_on(run_case(case));
            for (kind, n) in outcomes {
                *totals.borrow_mut().entry(kind).or_default() += n;
            }
            Ok(())
        })
        .unwrap();
    let totals = totals.into_inner();
    eprintln!("merge model soak: {totals:?}");
    assert_eq!(totals.len(), 9, "every outcome occurs: {totals:?}");
}
