//! Identical changes merge on rebase (spec/algorithms.md §8, "Agreed nodes"): two sessions
//! that create the same node with the same `zarr.json`, make the same change to it or both
//! delete it both land, and their chunk writes then merge like any concurrent chunk writes to
//! one array. Different documents stay a conflict naming the key and both values. The last
//! test runs eight `floe import kerchunk` processes at once on a fresh repository.

mod common;

use bytes::Bytes;
use common::conflicts::{conflict, node_reason};
use common::{attrs, linear_history, main_session, memory_repo, p, uint8_array};
use floe::{ConflictDetail, NodeMetadata, NodePath, Repository, Session, SnapshotId};
use serde_json::{json, Map, Value};

/// A fresh memory repository (no root group) and `n` sessions on its `main`.
async fn fresh_sessions(n: usize) -> (Repository, Vec<Session>) {
    let (repo, _) = memory_repo().await;
    let s = sessions(&repo, n).await;
    (repo, s)
}

/// `n` sessions on `main` of `repo`.
async fn sessions(repo: &Repository, n: usize) -> Vec<Session> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(repo.writable_session("main").await.unwrap());
    }
    out
}

fn bytes(tag: u8) -> Bytes {
    Bytes::from(vec![tag; 4])
}

/// The paths of every node at the tip of `main`.
async fn node_paths(repo: &Repository) -> Vec<String> {
    let main = main_session(repo).await;
    let nodes = main.list_nodes().unwrap();
    nodes.iter().map(|n| n.path.to_string()).collect()
}

/// The number of commits on `main` after the initial one, asserting a linear history.
async fn commits(repo: &Repository) -> usize {
    linear_history(repo).await.len() - 1
}

/// Creates the root group and array `t` ([4], chunks of 1) in `s` and writes chunk `chunk`.
async fn create_t(s: &Session, chunk: u64) {
    s.create_group(&NodePath::root(), Map::new()).await.unwrap();
    s.create_array(&p("t"), uint8_array(&[4], &[1]))
        .await
        .unwrap();
    s.set_chunk(&p("t"), &[chunk], bytes(chunk as u8 + 1))
        .await
        .unwrap();
}

/// A memory repository and two sessions on `main` that both created group `g` with
/// `attributes`; the first one committed.
async fn both_created_g(attributes: Map<String, Value>) -> (Repository, Vec<Session>) {
    let (repo, s) = fresh_sessions(2).await;
    for s in &s {
        s.create_group(&p("g"), attributes.clone()).await.unwrap();
    }
    s[0].commit("create", None).await.unwrap();
    (repo, s)
}

/// Sets the fill value of `t` (a key other than shape and attributes) in `s`.
async fn set_t_fill(s: &Session, fill: u64) {
    let mut doc = uint8_array(&[4], &[1]);
    doc["fill_value"] = json!(fill);
    s.set_metadata(&p("t"), NodeMetadata::from_value(&p("t"), doc).unwrap())
        .await
        .unwrap();
}

/// Asserts that array `t` of `main` holds exactly the chunks `written` (written by
/// [`create_t`]).
async fn assert_t_chunks(repo: &Repository, written: &[u64]) {
    let main = main_session(repo).await;
    for chunk in 0..4 {
        let want = written.contains(&chunk).then(|| bytes(chunk as u8 + 1));
        assert_eq!(
            main.get_chunk(&p("t"), &[chunk]).await.unwrap(),
            want,
            "chunk {chunk}"
        );
    }
}

#[tokio::test]
async fn identical_root_groups_on_a_fresh_repository_merge() {
    let (repo, s) = fresh_sessions(3).await;
    for (k, s) in s.iter().enumerate() {
        s.create_group(&NodePath::root(), attrs(&[("title", json!("obs"))]))
            .await
            .unwrap();
        s.create_array(&p(&format!("a{k}")), uint8_array(&[2], &[1]))
            .await
            .unwrap();
    }
    for (k, s) in s.iter().enumerate() {
        s.commit(&format!("session {k}"), None).await.unwrap();
    }
    assert_eq!(commits(&repo).await, 3);
    assert_eq!(node_paths(&repo).await, vec!["/", "/a0", "/a1", "/a2"]);
    let main = main_session(&repo).await;
    let root = main.require_node(&NodePath::root()).unwrap();
    assert_eq!(root.metadata.attributes()["title"], "obs");
}

#[tokio::test]
async fn identical_arrays_with_disjoint_chunks_merge_and_keep_both_sides_chunks() {
    let (repo, s) = fresh_sessions(2).await;
    create_t(&s[0], 0).await;
    create_t(&s[1], 2).await;
    s[0].commit("first", None).await.unwrap();
    s[1].commit("second", None).await.unwrap();
    assert_t_chunks(&repo, &[0, 2]).await;
    assert_eq!(commits(&repo).await, 2);
}

#[tokio::test]
async fn identical_replacements_keep_the_other_sides_chunks() {
    // Both replace group `t` by the same array: each side's node is new (`fresh`), and the
    // later one must not start the array afresh over the first one's chunks.
    let (repo, _) = memory_repo().await;
    let setup = repo.writable_session("main").await.unwrap();
    setup
        .create_group(&NodePath::root(), Map::new())
        .await
        .unwrap();
    setup.create_group(&p("t"), Map::new()).await.unwrap();
    setup.commit("setup", None).await.unwrap();
    let s = sessions(&repo, 2).await;
    for (k, s) in s.iter().enumerate() {
        s.create_array(&p("t"), uint8_array(&[4], &[1]))
            .await
            .unwrap();
        let chunk = 1 + 2 * k as u64;
        s.set_chunk(&p("t"), &[chunk], bytes(chunk as u8 + 1))
            .await
            .unwrap();
    }
    s[0].commit("first", None).await.unwrap();
    s[1].commit("second", None).await.unwrap();
    assert_t_chunks(&repo, &[1, 3]).await;
}

#[tokio::test]
async fn identical_arrays_writing_the_same_chunk_conflict() {
    let (_, s) = fresh_sessions(2).await;
    create_t(&s[0], 1).await;
    create_t(&s[1], 1).await;
    let first = s[0].commit("first", None).await.unwrap();
    let (their, detail) = conflict(s[1].commit("second", None).await.unwrap_err());
    assert_eq!(their, first.to_string());
    assert_eq!(
        detail,
        ConflictDetail::Chunks {
            path: "/t".into(),
            coords: vec![vec![1]],
        }
    );
    assert!(s[1].has_changes(), "the losing session keeps its changes");
}

#[tokio::test]
async fn different_creations_conflict_naming_both_versions() {
    let (_, s) = fresh_sessions(2).await;
    s[0].create_array(&p("t"), uint8_array(&[4], &[1]))
        .await
        .unwrap();
    let mut int16 = uint8_array(&[4], &[1]);
    int16["data_type"] = json!("int16");
    s[1].create_array(&p("t"), int16).await.unwrap();
    s[0].commit("uint8", None).await.unwrap();
    let (_, detail) = conflict(s[1].commit("int16", None).await.unwrap_err());
    let reason = node_reason(&detail, "/t");
    assert!(
        reason.contains("`data_type`")
            && reason.contains("\"int16\"")
            && reason.contains("\"uint8\"")
            && reason.find("int16") < reason.find("uint8"),
        "names the key, ours first, then theirs: {reason}"
    );

    // Groups whose attributes differ name the attribute; long values are cut short.
    let (_, s) = fresh_sessions(2).await;
    let long = "x".repeat(5000);
    s[0].create_group(&p("g"), attrs(&[("title", json!(long))]))
        .await
        .unwrap();
    s[1].create_group(&p("g"), attrs(&[("title", json!("short"))]))
        .await
        .unwrap();
    s[0].commit("long", None).await.unwrap();
    let (_, detail) = conflict(s[1].commit("short", None).await.unwrap_err());
    let reason = node_reason(&detail, "/g");
    assert!(
        reason.contains("`attributes.title`") && reason.contains("\"short\""),
        "{reason}"
    );
    assert!(reason.len() < 400, "long values are truncated: {reason}");
    assert!(reason.contains("…"), "{reason}");
}

#[tokio::test]
async fn identical_updates_merge() {
    let (repo, _) = memory_repo().await;
    let setup = repo.writable_session("main").await.unwrap();
    setup
        .create_group(&p("g"), attrs(&[("title", json!("base"))]))
        .await
        .unwrap();
    setup
        .create_array(&p("t"), uint8_array(&[4], &[1]))
        .await
        .unwrap();
    setup.commit("setup", None).await.unwrap();

    // The same attribute update.
    let s = sessions(&repo, 2).await;
    for s in &s {
        s.set_attributes(&p("g"), attrs(&[("title", json!("new")), ("n", json!(1))]))
            .await
            .unwrap();
    }
    s[0].commit("one", None).await.unwrap();
    s[1].commit("two", None).await.unwrap();
    let g = main_session(&repo).await.require_node(&p("g")).unwrap();
    assert_eq!(
        g.metadata.attributes(),
        attrs(&[("title", json!("new")), ("n", json!(1))])
    );

    // The same change of a key other than shape and attributes, with chunk writes on both
    // sides: the documents agree, so the chunks merge as for any array.
    let s = sessions(&repo, 2).await;
    for (k, s) in s.iter().enumerate() {
        set_t_fill(s, 7).await;
        s.set_chunk(&p("t"), &[k as u64], bytes(k as u8 + 1))
            .await
            .unwrap();
    }
    s[0].commit("one", None).await.unwrap();
    s[1].commit("two", None).await.unwrap();
    assert_t_chunks(&repo, &[0, 1]).await;
    let t = main_session(&repo).await.require_node(&p("t")).unwrap();
    assert_eq!(t.metadata.document()["fill_value"], json!(7));
    assert_eq!(commits(&repo).await, 5);
}

#[tokio::test]
async fn deleting_the_same_node_merges() {
    let (repo, _) = memory_repo().await;
    let setup = repo.writable_session("main").await.unwrap();
    setup.create_group(&p("g"), Map::new()).await.unwrap();
    setup
        .create_array(&p("g/t"), uint8_array(&[4], &[1]))
        .await
        .unwrap();
    setup.set_chunk(&p("g/t"), &[0], bytes(1)).await.unwrap();
    setup.create_group(&p("keep"), Map::new()).await.unwrap();
    setup.commit("setup", None).await.unwrap();
    let s = sessions(&repo, 2).await;
    for s in &s {
        s.delete_node(&p("g")).await.unwrap();
    }
    s[1].create_group(&p("keep/new"), Map::new()).await.unwrap();
    s[0].commit("one", None).await.unwrap();
    s[1].commit("two", None).await.unwrap();
    assert_eq!(node_paths(&repo).await, vec!["/keep", "/keep/new"]);
}

#[tokio::test]
async fn an_identical_parent_with_different_children_merges() {
    let (repo, s) = fresh_sessions(2).await;
    for (k, s) in s.iter().enumerate() {
        s.create_group(&NodePath::root(), Map::new()).await.unwrap();
        s.create_group(&p("obs"), attrs(&[("source", json!("station"))]))
            .await
            .unwrap();
        let child = p(&format!("obs/s{k}"));
        s.create_array(&child, uint8_array(&[2], &[1]))
            .await
            .unwrap();
        s.set_chunk(&child, &[1], bytes(k as u8 + 1)).await.unwrap();
    }
    s[0].commit("one", None).await.unwrap();
    s[1].commit("two", None).await.unwrap();
    let main = main_session(&repo).await;
    for k in 0..2u8 {
        let child = p(&format!("obs/s{k}"));
        assert_eq!(
            main.get_chunk(&child, &[1]).await.unwrap(),
            Some(bytes(k + 1)),
            "{child}"
        );
    }
    assert_eq!(
        main.require_node(&p("obs")).unwrap().metadata.attributes()["source"],
        "station"
    );
}

#[tokio::test]
async fn different_parents_still_conflict_for_the_children() {
    let (_, s) = fresh_sessions(2).await;
    for (k, s) in s.iter().enumerate() {
        s.create_group(&p("obs"), attrs(&[("source", json!(k))]))
            .await
            .unwrap();
        s.create_group(&p(&format!("obs/s{k}")), Map::new())
            .await
            .unwrap();
    }
    s[0].commit("one", None).await.unwrap();
    let (_, detail) = conflict(s[1].commit("two", None).await.unwrap_err());
    let reason = node_reason(&detail, "/obs");
    assert!(reason.contains("`attributes.source`"), "{reason}");
}

/// An identical creation followed by another commit that changed the node further: the
/// identical version is the base of the merge, so the later change is kept when this session
/// did nothing else to the node, and conflicts as any concurrent change would otherwise.
#[tokio::test]
async fn a_later_update_of_an_identically_created_node_merges_against_it() {
    let (repo, s) = both_created_g(attrs(&[("title", json!("obs"))])).await;
    let update = repo.writable_session("main").await.unwrap();
    update
        .set_attributes(&p("g"), attrs(&[("title", json!("obs")), ("n", json!(2))]))
        .await
        .unwrap();
    update.commit("update", None).await.unwrap();
    s[1].commit("create too", None).await.unwrap();
    let g = main_session(&repo).await.require_node(&p("g")).unwrap();
    assert_eq!(
        g.metadata.attributes(),
        attrs(&[("title", json!("obs")), ("n", json!(2))]),
        "the later update is kept"
    );

    // A later change of the fill value while this session wrote chunks of the array it
    // created identically: the same conflict as for any concurrent fill value change.
    let (repo, s) = fresh_sessions(2).await;
    create_t(&s[0], 0).await;
    create_t(&s[1], 1).await;
    s[0].commit("create", None).await.unwrap();
    let refill = repo.writable_session("main").await.unwrap();
    set_t_fill(&refill, 9).await;
    let refilled = refill.commit("refill", None).await.unwrap();
    let (their, detail) = conflict(s[1].commit("create too", None).await.unwrap_err());
    assert_eq!(their, refilled.to_string());
    let reason = node_reason(&detail, "/t");
    assert!(reason.contains("fill_value"), "{reason}");
}

/// A put that changes nothing on the new parent is not recorded as a change: a third session
/// that deleted the node after the first creation still lands.
#[tokio::test]
async fn a_rebased_identical_put_is_not_a_change_for_later_writers() {
    let (repo, s) = both_created_g(Map::new()).await;
    let delete = repo.writable_session("main").await.unwrap();
    delete.delete_node(&p("g")).await.unwrap();
    let created: SnapshotId = s[1].commit("create too", None).await.unwrap();
    delete.commit("delete", None).await.unwrap();
    let main = main_session(&repo).await;
    assert!(main.node(&p("g")).unwrap().is_none());
    let older = repo.session_at_snapshot(created).await.unwrap();
    assert!(older.node(&p("g")).unwrap().is_some());
}

/// A memory repository whose `main` holds the root group and array `t` ([4], chunks of 1)
/// with chunks 0 to 3 written (`bytes(1)` to `bytes(4)`).
async fn written_t() -> Repository {
    let (repo, _) = memory_repo().await;
    let setup = repo.writable_session("main").await.unwrap();
    create_t(&setup, 0).await;
    for chunk in 1..4 {
        setup
            .set_chunk(&p("t"), &[chunk], bytes(chunk as u8 + 1))
            .await
            .unwrap();
    }
    setup.commit("setup", None).await.unwrap();
    repo
}

/// `t`'s setup document, with attribute `v` when given.
fn t_doc(v: Option<u64>) -> Value {
    let mut doc = uint8_array(&[4], &[1]);
    if let Some(v) = v {
        doc["attributes"] = json!({ "v": v });
    }
    doc
}

/// Deletes `t` in `s` and creates it again from `doc`: a new array without chunks.
async fn recreate_t(s: &Session, doc: Value) {
    s.delete_node(&p("t")).await.unwrap();
    s.create_array(&p("t"), doc).await.unwrap();
}

/// The same final document is no agreement when the other side re-created a node this
/// session only updated: this session's chunk writes must not land on the other side's new
/// array (whose base chunks are gone).
#[tokio::test]
async fn an_update_does_not_agree_with_a_re_creation() {
    for (ours_doc, theirs_doc) in [(Some(2), Some(2)), (None, None)] {
        let repo = written_t().await;
        let ours = repo.writable_session("main").await.unwrap();
        let theirs = repo.writable_session("main").await.unwrap();
        recreate_t(&theirs, t_doc(theirs_doc)).await;
        theirs.set_chunk(&p("t"), &[0], bytes(10)).await.unwrap();
        let recreated = theirs.commit("re-create", None).await.unwrap();
        // An update to the re-created document (or a put of the unchanged one).
        ours.create_array(&p("t"), t_doc(ours_doc)).await.unwrap();
        ours.set_chunk(&p("t"), &[1], bytes(11)).await.unwrap();
        let (their, detail) = conflict(ours.commit("update", None).await.unwrap_err());
        assert_eq!(their, recreated.to_string());
        let reason = node_reason(&detail, "/t");
        assert!(reason.contains("re-created"), "{reason}");
    }
}

/// A newer commit that leaves a node as this session does hides nothing older from this
/// session's chunk writes: a shrink, a re-creation or a fill value change undone before the
/// agreeing commit still conflicts, naming the older commit. Without chunk writes, the same
/// session lands.
#[tokio::test]
async fn an_older_change_undone_before_an_agreeing_commit_still_conflicts() {
    for (older, named) in [
        ("shrink", "shrank"),
        ("re-create", "Created"),
        ("fill", "`fill_value`"),
    ] {
        for write in [true, false] {
            let repo = written_t().await;
            let ours = repo.writable_session("main").await.unwrap();
            let c0 = repo.writable_session("main").await.unwrap();
            match older {
                "shrink" => c0.resize_array(&p("t"), &[2]).await.unwrap(),
                "re-create" => recreate_t(&c0, t_doc(None)).await,
                _ => set_t_fill(&c0, 9).await,
            }
            let c0 = c0.commit(older, None).await.unwrap();
            // The next commit undoes it and sets `v`, as this session does.
            let c1 = repo.writable_session("main").await.unwrap();
            c1.create_array(&p("t"), t_doc(Some(2))).await.unwrap();
            c1.commit("agree", None).await.unwrap();
            ours.set_attributes(&p("t"), attrs(&[("v", json!(2))]))
                .await
                .unwrap();
            if !write {
                ours.commit("attribute", None).await.unwrap();
                continue;
            }
            ours.set_chunk(&p("t"), &[3], bytes(200)).await.unwrap();
            let (their, detail) = conflict(ours.commit("write", None).await.unwrap_err());
            assert_eq!(their, c0.to_string(), "{older}");
            let reason = node_reason(&detail, "/t");
            assert!(reason.contains(named), "{older}: {reason}");
        }
    }
}

/// Chunks an older commit wrote and a newer, agreeing re-creation dropped do not conflict
/// with this session's writes of the same chunks.
#[tokio::test]
async fn chunks_dropped_by_an_agreed_re_creation_do_not_conflict() {
    let repo = written_t().await;
    let ours = repo.writable_session("main").await.unwrap();
    let c0 = repo.writable_session("main").await.unwrap();
    c0.set_chunk(&p("t"), &[1], bytes(30)).await.unwrap();
    c0.commit("write", None).await.unwrap();
    let c1 = repo.writable_session("main").await.unwrap();
    recreate_t(&c1, t_doc(None)).await;
    c1.set_chunk(&p("t"), &[0], bytes(31)).await.unwrap();
    c1.commit("re-create", None).await.unwrap();
    recreate_t(&ours, t_doc(None)).await;
    ours.set_chunk(&p("t"), &[1], bytes(32)).await.unwrap();
    ours.commit("re-create too", None).await.unwrap();
    let main = main_session(&repo).await;
    let mut got = Vec::new();
    for chunk in 0..4 {
        got.push(main.get_chunk(&p("t"), &[chunk]).await.unwrap());
    }
    assert_eq!(got, vec![Some(bytes(31)), Some(bytes(32)), None, None]);
}

#[cfg(feature = "cli")]
mod cli {
    //! Eight `floe import kerchunk` processes started at once on a freshly initialised
    //! repository (no root group yet): every one creates the same root group, and all land.

    use std::path::Path;
    use std::process::{Command, Stdio};

    use serde_json::{json, Value};

    use super::common::cli::ok;
    use super::common::inline_refs::base64_ref;

    const PROCESSES: usize = 8;

    /// Inline kerchunk references: a group with one attribute and a uint8 array `v` of 4
    /// elements in chunks of 2, holding 1, 2, 3, 4.
    fn write_refs(path: &Path) {
        let zarray = json!({"zarr_format": 2, "shape": [4], "chunks": [2], "dtype": "|u1",
            "fill_value": 0, "order": "C", "filters": null, "compressor": null});
        let refs = json!({
            "version": 1,
            "refs": {
                ".zgroup": "{\"zarr_format\": 2}",
                ".zattrs": "{\"title\": \"inline\"}",
                "v/.zarray": zarray.to_string(),
                "v/.zattrs": "{\"_ARRAY_DIMENSIONS\": [\"x\"]}",
                "v/0": base64_ref(&[1, 2]),
                "v/1": base64_ref(&[3, 4]),
            }
        });
        std::fs::write(path, refs.to_string()).unwrap();
    }

    #[test]
    fn eight_concurrent_imports_on_a_fresh_repository_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        let refs = dir.path().join("refs.json");
        write_refs(&refs);
        ok(&repo, &["init"]);
        let children: Vec<_> = (0..PROCESSES)
            .map(|n| {
                Command::new(env!("CARGO_BIN_EXE_floe"))
                    .env_remove("FLOE_REPO")
                    .arg("-r")
                    .arg(&repo)
                    .args(["import", "kerchunk"])
                    .arg(&refs)
                    .args(["--to", &format!("p{n}")])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for (n, child) in children.into_iter().enumerate() {
            let output = child.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "import {n} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let log = ok(&repo, &["log", "--json"]).json();
        let entries = log["entries"].as_array().unwrap();
        assert_eq!(entries.len(), PROCESSES + 1, "{log}");
        let imports = entries
            .iter()
            .filter(|e| {
                e["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("import kerchunk")
            })
            .count();
        assert_eq!(imports, PROCESSES);
        for n in 0..PROCESSES {
            let group: Value =
                serde_json::from_slice(&ok(&repo, &["cat", &format!("p{n}/zarr.json")]).stdout)
                    .unwrap();
            assert_eq!(group["attributes"]["title"], "inline", "p{n}");
            for (chunk, want) in [(0, [1u8, 2]), (1, [3, 4])] {
                let got = ok(&repo, &["cat", &format!("p{n}/v/{chunk}")]).stdout;
                assert_eq!(got, want, "p{n}/v chunk {chunk}");
            }
        }
        let root: Value = serde_json::from_slice(&ok(&repo, &["cat", "zarr.json"]).stdout).unwrap();
        assert_eq!(root["node_type"], "group");
    }
}
