//! Merging branches, squashing and amending on a real local repository: merged versions read
//! back exactly as both sides left them, conflicts name the node and the chunks, rewritten
//! history refuses writers still based on the replaced commits, and garbage collection keeps
//! everything a merge or a rewrite carries over after the original commits are gone.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use common::cli::{floe, ok};
use common::{attrs, int32_array, lifecycle_settings, p, tempdir_repo};
use floe::{
    ConflictDetail, Error, ExpireBefore, ExpireOptions, GcOptions, MergeOptions, MergeStrategy,
    Repository, RepositorySettings, SnapshotId, SquashOptions, VersionSpec,
};
use serde_json::json;

fn settings() -> RepositorySettings {
    RepositorySettings {
        // Every transaction log an object, so replays share them with the originals.
        txlog_inline_max_bytes: 0,
        ..lifecycle_settings()
    }
}

fn chunk(v: u8) -> Bytes {
    Bytes::from(vec![v; 16])
}

/// Chunk coordinate -> bytes, per array path.
type Model = BTreeMap<String, BTreeMap<u64, Bytes>>;

/// Reads every chunk of every array of the model (and the absent ones up to 25) at `id`.
async fn reads_back(repo: &Repository, id: SnapshotId, model: &Model) {
    let s = repo.session_at_snapshot(id).await.unwrap();
    for (path, chunks) in model {
        for coord in 0..25u64 {
            let got = s.get_chunk(&p(path), &[coord]).await.unwrap();
            assert_eq!(
                got.as_ref(),
                chunks.get(&coord),
                "{id}: {path} chunk {coord}"
            );
        }
    }
}

/// The message of the refused default merge of branch `source`'s tip into `into`.
async fn merge_refusal(repo: &Repository, source: &str, into: &str) -> String {
    repo.merge(tip(repo, source).await, into, &MergeOptions::default())
        .await
        .unwrap_err()
        .to_string()
}

/// [`start`], then branch `dev` at `main`'s tip.
async fn start_with_dev(repo: &Repository) -> Model {
    let model = start(repo).await;
    repo.create_branch("dev", tip(repo, "main").await)
        .await
        .unwrap();
    model
}

/// Arrays `a` and `b` (100 elements, chunks of 4) under the root group, chunks 0-3 written.
async fn start(repo: &Repository) -> Model {
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&p("/"), Default::default()).await.unwrap();
    let mut model = Model::new();
    for name in ["a", "b"] {
        s.create_array(&p(name), int32_array(&[100], &[4]))
            .await
            .unwrap();
        for c in 0..4u64 {
            s.set_chunk(&p(name), &[c], chunk(c as u8)).await.unwrap();
            model
                .entry(name.into())
                .or_default()
                .insert(c, chunk(c as u8));
        }
    }
    s.commit("start", None).await.unwrap();
    model
}

async fn write(repo: &Repository, branch: &str, writes: &[(&str, u64, u8)], model: &mut Model) {
    let s = repo.writable_session(branch).await.unwrap();
    for &(path, coord, v) in writes {
        s.set_chunk(&p(path), &[coord], chunk(v)).await.unwrap();
        model.get_mut(path).unwrap().insert(coord, chunk(v));
    }
    s.commit(&format!("write on {branch}"), None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2)).await;
}

async fn tip(repo: &Repository, branch: &str) -> SnapshotId {
    repo.branch_tip(branch).await.unwrap()
}

#[tokio::test]
async fn merges_take_each_side_and_the_next_merge_starts_where_the_last_ended() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let base_model = start_with_dev(&repo).await;
    let fork = tip(&repo, "dev").await;
    let (mut main, mut dev) = (base_model.clone(), base_model.clone());
    write(&repo, "main", &[("a", 1, 101), ("a", 20, 120)], &mut main).await;
    write(&repo, "dev", &[("b", 2, 202), ("a", 7, 107)], &mut dev).await;
    let s = repo.writable_session("dev").await.unwrap();
    s.set_attributes(&p("b"), attrs(&[("units", json!("K"))]))
        .await
        .unwrap();
    s.commit("units", None).await.unwrap();
    let dev_tip = tip(&repo, "dev").await;
    let main_tip = tip(&repo, "main").await;

    // A dry run works it out and publishes nothing.
    let dry = repo
        .merge(
            dev_tip,
            "main",
            &MergeOptions {
                dry_run: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((dry.snapshot, dry.base), (None, fork));
    assert_eq!(tip(&repo, "main").await, main_tip);

    let report = repo
        .merge(dev_tip, "main", &MergeOptions::default())
        .await
        .unwrap();
    let merged = report.snapshot.expect("a merge commit");
    assert_eq!(
        (report.base, report.parent, report.source),
        (fork, main_tip, dev_tip)
    );
    assert_eq!(tip(&repo, "main").await, merged);
    // `b` only dev changed: taken whole, its shard reused. `a` both changed: merged.
    assert_eq!(report.counts.nodes_from_source, 1);
    assert_eq!(report.counts.nodes_merged, 1);
    let mut expected = main.clone();
    expected.get_mut("a").unwrap().insert(7, chunk(107));
    expected.get_mut("b").unwrap().insert(2, chunk(202));
    reads_back(&repo, merged, &expected).await;
    let s = repo.session_at_snapshot(merged).await.unwrap();
    let b = s.require_node(&p("b")).unwrap();
    assert_eq!(b.metadata.attributes().get("units"), Some(&json!("K")));
    // The merge commit's own log entry sits on main's line; diff shows what dev brought.
    let (_, log) = repo
        .log(&VersionSpec::Branch("main".into()), 3)
        .await
        .unwrap();
    assert_eq!(log[0].id, merged);
    assert_eq!(log[1].id, main_tip);
    let diff = repo
        .diff(main_tip, merged, &Default::default())
        .await
        .unwrap();
    let changed: Vec<String> = diff.nodes.iter().map(|n| n.path.to_string()).collect();
    assert_eq!(changed, vec!["/a", "/b"]);

    // Merging the same version again: nothing to do.
    let again = repo
        .merge(dev_tip, "main", &MergeOptions::default())
        .await
        .unwrap();
    assert!(again.up_to_date && again.snapshot.is_none());

    // Dev moves on and rewrites a chunk main took from it: the next merge starts at the
    // last merged version, so that chunk is no conflict.
    write(&repo, "dev", &[("a", 7, 77), ("b", 9, 209)], &mut dev).await;
    let dev_tip2 = tip(&repo, "dev").await;
    let second = repo
        .merge(dev_tip2, "main", &MergeOptions::default())
        .await
        .unwrap();
    assert_eq!(second.base, dev_tip);
    expected.get_mut("a").unwrap().insert(7, chunk(77));
    expected.get_mut("b").unwrap().insert(9, chunk(209));
    reads_back(&repo, second.snapshot.unwrap(), &expected).await;

    // And the other way round: main into dev takes main's chunks.
    let back = repo
        .merge(tip(&repo, "main").await, "dev", &MergeOptions::default())
        .await
        .unwrap();
    reads_back(&repo, back.snapshot.unwrap(), &expected).await;
    assert!(repo.fsck(Default::default()).await.unwrap().is_clean());
}

#[tokio::test]
async fn chunks_both_sides_changed_conflict_unless_a_strategy_decides() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let base_model = start_with_dev(&repo).await;
    let (mut main, mut dev) = (base_model.clone(), base_model.clone());
    write(
        &repo,
        "main",
        &[("a", 1, 11), ("a", 2, 12), ("b", 0, 10)],
        &mut main,
    )
    .await;
    write(
        &repo,
        "dev",
        &[("a", 1, 21), ("a", 2, 12), ("a", 3, 23)],
        &mut dev,
    )
    .await;
    let dev_tip = tip(&repo, "dev").await;
    let main_tip = tip(&repo, "main").await;

    let err = repo
        .merge(dev_tip, "main", &MergeOptions::default())
        .await
        .unwrap_err();
    match &err {
        Error::Conflict { detail, .. } => match detail.as_ref() {
            // Chunk 2 got the same bytes on both sides, but as two objects: like concurrent
            // commits, merges compare references, not bytes.
            ConflictDetail::Chunks { path, coords } => {
                assert_eq!(path, "/a");
                assert_eq!(coords, &vec![vec![1u64], vec![2]]);
            }
            other => panic!("unexpected conflict {other:?}"),
        },
        other => panic!("unexpected error {other}"),
    }
    assert_eq!(tip(&repo, "main").await, main_tip, "nothing published");

    let ours = repo
        .merge(
            dev_tip,
            "main",
            &MergeOptions {
                strategy: MergeStrategy::Ours,
                dry_run: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ours.counts.chunks_resolved, 2);
    let theirs = repo
        .merge(
            dev_tip,
            "main",
            &MergeOptions {
                strategy: MergeStrategy::Theirs,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut expected = main.clone();
    expected.get_mut("a").unwrap().insert(1, chunk(21));
    expected.get_mut("a").unwrap().insert(2, chunk(12));
    expected.get_mut("a").unwrap().insert(3, chunk(23));
    reads_back(&repo, theirs.snapshot.unwrap(), &expected).await;
    let _ = dev;
}

#[tokio::test]
async fn deletions_against_changes_and_orphans_conflict_by_name() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    start(&repo).await;
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&p("g"), Default::default()).await.unwrap();
    s.commit("group g", None).await.unwrap();
    repo.create_branch("dev", tip(&repo, "main").await)
        .await
        .unwrap();
    // dev deletes g and changes a; main adds g/x and deletes a.
    let d = repo.writable_session("dev").await.unwrap();
    d.delete_node(&p("g")).await.unwrap();
    d.set_chunk(&p("a"), &[5], chunk(5)).await.unwrap();
    d.commit("dev", None).await.unwrap();
    let m = repo.writable_session("main").await.unwrap();
    m.create_array(&p("g/x"), int32_array(&[8], &[4]))
        .await
        .unwrap();
    m.commit("x", None).await.unwrap();
    let text = merge_refusal(&repo, "dev", "main").await;
    assert!(
        text.contains("`/g/x`") && text.contains("deleted `/g`"),
        "{text}"
    );

    let m = repo.writable_session("main").await.unwrap();
    m.delete_node(&p("g/x")).await.unwrap();
    m.delete_node(&p("a")).await.unwrap();
    m.commit("drop a", None).await.unwrap();
    let text = merge_refusal(&repo, "dev", "main").await;
    assert!(
        text.contains("`/a`") && text.contains("deleted on the target branch"),
        "{text}"
    );
}

#[tokio::test]
async fn shapes_grow_and_attributes_merge_by_key() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let base_model = start_with_dev(&repo).await;
    let mut expected = base_model.clone();
    // main appends along the only dimension; dev sets an attribute and rewrites chunk 0.
    let m = repo.writable_session("main").await.unwrap();
    m.resize_array(&p("a"), &[120]).await.unwrap();
    m.set_chunk(&p("a"), &[27], chunk(27)).await.unwrap();
    m.set_attributes(&p("a"), attrs(&[("source", json!("main"))]))
        .await
        .unwrap();
    m.commit("append", None).await.unwrap();
    let d = repo.writable_session("dev").await.unwrap();
    d.set_chunk(&p("a"), &[0], chunk(200)).await.unwrap();
    d.set_attributes(&p("a"), attrs(&[("units", json!("K"))]))
        .await
        .unwrap();
    d.commit("fix", None).await.unwrap();
    let report = repo
        .merge(tip(&repo, "dev").await, "main", &MergeOptions::default())
        .await
        .unwrap();
    let merged = report.snapshot.unwrap();
    expected.get_mut("a").unwrap().insert(0, chunk(200));
    reads_back(&repo, merged, &expected).await;
    let s = repo.session_at_snapshot(merged).await.unwrap();
    assert_eq!(s.get_chunk(&p("a"), &[27]).await.unwrap(), Some(chunk(27)));
    let a = s.require_node(&p("a")).unwrap();
    assert_eq!(a.metadata.geometry().unwrap().shape, vec![120]);
    // Attributes set on both sides (different keys) are both kept.
    let attributes = a.metadata.attributes();
    assert_eq!(attributes.get("units"), Some(&json!("K")));
    assert_eq!(attributes.get("source"), Some(&json!("main")));
}

#[tokio::test]
async fn squash_and_amend_publish_only_where_the_branch_was_seen() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let mut model = start(&repo).await;
    let mut ids = vec![tip(&repo, "main").await];
    let mut models = vec![model.clone()];
    for i in 0..5u8 {
        write(&repo, "main", &[("a", u64::from(i), 50 + i)], &mut model).await;
        ids.push(tip(&repo, "main").await);
        models.push(model.clone());
    }
    // A writer that started on the old tip.
    let stale = repo.writable_session("main").await.unwrap();
    stale.set_chunk(&p("b"), &[9], chunk(9)).await.unwrap();

    // A moved branch is refused.
    let err = repo
        .squash(
            "main",
            ids[2],
            ids[4],
            &SquashOptions {
                expect: Some(ids[4]),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BranchMoved { .. }), "{err}");
    // The root cannot be squashed; a reversed range, or one off the branch, is refused.
    let (_, full) = repo
        .log(&VersionSpec::Branch("main".into()), 100)
        .await
        .unwrap();
    let root = full.last().unwrap().id;
    for (first, last) in [(root, ids[1]), (ids[3], ids[2])] {
        let err = repo
            .squash("main", first, last, &Default::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidHistoryEdit { .. }), "{err}");
    }
    repo.create_branch("side", ids[1]).await.unwrap();
    let s = repo.writable_session("side").await.unwrap();
    s.set_chunk(&p("a"), &[24], chunk(24)).await.unwrap();
    let off = s.commit("off main", None).await.unwrap();
    let err = repo
        .squash("main", ids[1], off, &Default::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a range"), "{err}");

    let report = repo
        .squash(
            "main",
            ids[2],
            ids[4],
            &SquashOptions {
                message: Some("days 2-4".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(report.squashed, vec![ids[2], ids[3], ids[4]]);
    assert_eq!(report.replayed.len(), 1);
    assert_eq!(report.replayed[0].0, ids[5]);
    let new_tip = tip(&repo, "main").await;
    assert_eq!(new_tip, report.tip);
    let (_, log) = repo
        .log(&VersionSpec::Branch("main".into()), 100)
        .await
        .unwrap();
    let logged: Vec<SnapshotId> = log.iter().map(|e| e.id).collect();
    assert_eq!(
        logged,
        vec![report.tip, report.snapshot, ids[1], ids[0], root]
    );
    assert_eq!(log[1].message, "days 2-4");
    reads_back(&repo, report.snapshot, &models[4]).await;
    reads_back(&repo, report.tip, &models[5]).await;
    // The replaced commits still read by id.
    reads_back(&repo, ids[3], &models[3]).await;

    // The writer based on the replaced tip is refused, with its changes kept.
    let err = stale.commit("late", None).await.unwrap_err();
    assert!(err.to_string().contains("rewritten"), "{err}");
    assert!(stale.has_changes());

    // Amend: the tip gets the session's changes and a new message, on the same parent.
    let s = repo.writable_session("main").await.unwrap();
    s.set_chunk(&p("b"), &[11], chunk(111)).await.unwrap();
    let amended = s.amend(Some("day 5, fixed"), None).await.unwrap();
    model = models[5].clone();
    model.get_mut("b").unwrap().insert(11, chunk(111));
    reads_back(&repo, amended, &model).await;
    let (_, log) = repo
        .log(&VersionSpec::Branch("main".into()), 2)
        .await
        .unwrap();
    assert_eq!((log[0].id, log[1].id), (amended, report.snapshot));
    assert_eq!(log[0].message, "day 5, fixed");
    // A session still on the amended-away tip cannot amend or commit over it.
    let old = repo.session_at_snapshot(report.tip).await.unwrap();
    assert!(old.amend(Some("x"), None).await.is_err());
    let racing = repo.writable_session("main").await.unwrap();
    let other = repo.writable_session("main").await.unwrap();
    other.set_chunk(&p("a"), &[13], chunk(13)).await.unwrap();
    other.commit("moved", None).await.unwrap();
    let err = racing.amend(Some("late amend"), None).await.unwrap_err();
    assert!(matches!(err, Error::BranchMoved { .. }), "{err}");
    assert!(repo.fsck(Default::default()).await.unwrap().is_clean());
}

/// After a merge, a squash and an amend, the merged branch is deleted and the replaced
/// commits are left behind; two GC runs a grace period apart delete what only they hold, and
/// every version main still reaches reads back whole: the merge commit and the rewritten
/// commits carry objects first written by commits that are now gone.
#[tokio::test]
async fn gc_keeps_what_merges_and_rewrites_carry_over() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let mut main = start(&repo).await;
    let mut models: BTreeMap<SnapshotId, Model> = BTreeMap::new();
    models.insert(tip(&repo, "main").await, main.clone());
    repo.create_branch("dev", tip(&repo, "main").await)
        .await
        .unwrap();
    let mut dev = main.clone();
    for i in 0..4u8 {
        write(
            &repo,
            "dev",
            &[("b", u64::from(i) + 10, i), ("b", 3, 30 + i)],
            &mut dev,
        )
        .await;
    }
    write(&repo, "main", &[("a", 0, 99)], &mut main).await;
    models.insert(tip(&repo, "main").await, main.clone());
    let merged = repo
        .merge(tip(&repo, "dev").await, "main", &MergeOptions::default())
        .await
        .unwrap()
        .snapshot
        .unwrap();
    main.insert("b".into(), dev["b"].clone());
    models.insert(merged, main.clone());
    for i in 0..4u8 {
        write(&repo, "main", &[("a", u64::from(i) + 5, 60 + i)], &mut main).await;
        models.insert(tip(&repo, "main").await, main.clone());
    }
    // Squash the two commits after the merge; the two after them are replayed.
    let (_, log) = repo
        .log(&VersionSpec::Branch("main".into()), 5)
        .await
        .unwrap();
    let report = repo
        .squash("main", log[3].id, log[2].id, &Default::default())
        .await
        .unwrap();
    models.insert(report.snapshot, models[&log[2].id].clone());
    for (original, copy) in &report.replayed {
        models.insert(*copy, models[original].clone());
    }
    let s = repo.writable_session("main").await.unwrap();
    s.set_chunk(&p("b"), &[20], chunk(220)).await.unwrap();
    main.get_mut("b").unwrap().insert(20, chunk(220));
    let amended = s.amend(None, None).await.unwrap();
    models.insert(amended, main.clone());
    repo.delete_branch("dev").await.unwrap();

    let gc = GcOptions {
        grace: Duration::from_secs(1),
        ..Default::default()
    };
    let first = repo.gc(&gc).await.unwrap();
    assert!(!first.condemned.is_empty());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = repo.gc(&gc).await.unwrap();
    assert!(second.deleted.len() >= first.condemned.len());
    let fresh = Repository::open(repo.storage().clone(), settings())
        .await
        .unwrap();
    let (_, log) = fresh
        .log(&VersionSpec::Branch("main".into()), 100)
        .await
        .unwrap();
    let mut checked = 0;
    for entry in &log {
        if let Some(model) = models.get(&entry.id) {
            reads_back(&fresh, entry.id, model).await;
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        log.len() - 1,
        "every commit but the root has a model"
    );
    let fsck = fresh.fsck(Default::default()).await.unwrap();
    assert!(fsck.is_clean(), "{:?}", fsck.problems);
    // A full run agrees: it condemns nothing a retained version reads.
    fresh
        .gc(&GcOptions {
            full: true,
            ..gc.clone()
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    fresh.gc(&GcOptions { full: true, ..gc }).await.unwrap();
    for entry in &log {
        if let Some(model) = models.get(&entry.id) {
            reads_back(&fresh, entry.id, model).await;
        }
    }
}

/// A merge commit that expiry dropped and GC deleted reads as expired, and the version that
/// replaced it keeps everything.
#[tokio::test]
async fn expired_merge_commits_read_as_expired() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let mut main = start(&repo).await;
    repo.create_branch("dev", tip(&repo, "main").await)
        .await
        .unwrap();
    let mut dev = main.clone();
    write(&repo, "dev", &[("b", 10, 1)], &mut dev).await;
    let merged = repo
        .merge(tip(&repo, "dev").await, "main", &MergeOptions::default())
        .await
        .unwrap()
        .snapshot
        .unwrap();
    main.insert("b".into(), dev["b"].clone());
    write(&repo, "main", &[("a", 9, 9)], &mut main).await;
    repo.delete_branch("dev").await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    repo.expire(&ExpireOptions {
        keep_last: 1,
        ..ExpireOptions::older_than(ExpireBefore::Age(Duration::ZERO))
    })
    .await
    .unwrap();
    let gc = GcOptions {
        grace: Duration::from_secs(1),
        ..Default::default()
    };
    repo.gc(&gc).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = repo.gc(&gc).await.unwrap();
    assert!(second
        .deleted
        .iter()
        .any(|e| e.object == floe::GcObject::Snapshot(merged)));
    // A fresh handle (this one still caches the merge commit it wrote).
    let repo = Repository::open(repo.storage().clone(), settings())
        .await
        .unwrap();
    let gone = repo.session_at_snapshot(merged).await.map(|_| ());
    assert!(
        matches!(gone, Err(Error::SnapshotExpired { .. })),
        "{gone:?}"
    );
    reads_back(&repo, tip(&repo, "main").await, &main).await;
    assert!(repo.fsck(Default::default()).await.unwrap().is_clean());
}

/// The same operations through the `floe` binary: JSON reports, conflicts as exit code 4
/// naming the chunks, a bad range as a usage error.
#[tokio::test]
async fn merge_squash_and_amend_from_the_command_line() {
    let (dir, repo) = tempdir_repo(settings()).await;
    let base_model = start_with_dev(&repo).await;
    let (mut main, mut dev) = (base_model.clone(), base_model);
    write(&repo, "main", &[("a", 1, 11)], &mut main).await;
    write(&repo, "dev", &[("a", 1, 21), ("b", 4, 24)], &mut dev).await;
    let main_tip = tip(&repo, "main").await.to_string();

    floe(dir.path(), &["merge", "dev", "--into", "main"]).assert_error(4, "`/a` at [1]");
    let doc = ok(
        dir.path(),
        &[
            "merge",
            "dev",
            "--into",
            "main",
            "--strategy",
            "ours",
            "--json",
        ],
    )
    .json();
    assert_eq!(doc["parent"], main_tip.as_str());
    assert_eq!(doc["chunks_resolved"], 1);
    assert_eq!(doc["nodes_from_source"], 1);
    let merged: SnapshotId = doc["snapshot"].as_str().unwrap().parse().unwrap();
    let fresh = Repository::open(repo.storage().clone(), settings())
        .await
        .unwrap();
    let mut expected = main.clone();
    expected.get_mut("b").unwrap().insert(4, chunk(24));
    reads_back(&fresh, merged, &expected).await;
    let text = ok(dir.path(), &["merge", "dev", "--into", "main"]).text();
    assert!(text.contains("nothing to merge"), "{text}");

    write(&repo, "main", &[("a", 2, 12)], &mut expected).await;
    let (_, log) = repo
        .log(&VersionSpec::Branch("main".into()), 3)
        .await
        .unwrap();
    let range = format!("{}..{}", log[1].id, log[0].id);
    let doc = ok(
        dir.path(),
        &["squash", &range, "-m", "merged and day 2", "--json"],
    )
    .json();
    assert_eq!(doc["tip"], doc["snapshot"]);
    floe(dir.path(), &["squash", "nope"]).assert_error(2, "FIRST..LAST");
    let reversed = format!("{}..{}", log[0].id, log[1].id);
    floe(dir.path(), &["squash", &reversed]).assert_error(2, "comes after");
    let text = ok(dir.path(), &["amend", "-m", "renamed"]).text();
    assert!(text.contains("amended the tip of `main`"), "{text}");
    let fresh = Repository::open(repo.storage().clone(), settings())
        .await
        .unwrap();
    let (_, log) = fresh
        .log(&VersionSpec::Branch("main".into()), 2)
        .await
        .unwrap();
    assert_eq!(log[0].message, "renamed");
    reads_back(&fresh, log[0].id, &expected).await;
    floe(dir.path(), &["amend", "-m", "x", "--expect", &main_tip]).assert_error(4, "moved");
}

/// Amending or squashing right above an expiry cut keeps the expired history expired: the
/// replacement commits inherit the cut, so log stops there and GC's deletions of the expired
/// commits' objects never leave a retained version half there.
#[tokio::test]
async fn rewrites_above_an_expiry_cut_keep_the_history_below_expired() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let mut model = start(&repo).await;
    for i in 0..4u8 {
        write(
            &repo,
            "main",
            &[("a", 1, 40 + i), ("b", u64::from(i), i)],
            &mut model,
        )
        .await;
    }
    let expire = ExpireOptions {
        keep_last: 2,
        ..ExpireOptions::older_than(ExpireBefore::Age(Duration::ZERO))
    };
    repo.expire(&expire).await.unwrap();
    let gc = GcOptions {
        grace: Duration::from_secs(1),
        ..Default::default()
    };
    // The expired commits are condemned; then the tip is amended and the two kept commits
    // squashed (the oldest kept one is the cut child), and GC deletes after the grace period.
    let first = repo.gc(&gc).await.unwrap();
    assert!(!first.condemned.is_empty());
    let s = repo.writable_session("main").await.unwrap();
    s.set_chunk(&p("a"), &[9], chunk(9)).await.unwrap();
    model.get_mut("a").unwrap().insert(9, chunk(9));
    s.amend(Some("amended"), None).await.unwrap();
    let (_, log) = repo
        .log(&VersionSpec::Branch("main".into()), 100)
        .await
        .unwrap();
    assert_eq!(log.len(), 2, "log stops at the inherited cut: {log:?}");
    repo.squash("main", log[1].id, log[0].id, &Default::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = repo.gc(&gc).await.unwrap();
    assert!(!second.deleted.is_empty());
    let fresh = Repository::open(repo.storage().clone(), settings())
        .await
        .unwrap();
    let (tip_now, log) = fresh
        .log(&VersionSpec::Branch("main".into()), 100)
        .await
        .unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    reads_back(&fresh, tip_now, &model).await;
    let fsck = fresh.fsck(Default::default()).await.unwrap();
    assert!(fsck.is_clean(), "{:?}", fsck.problems);
    // Later runs agree (nothing retained lost an object).
    fresh.gc(&gc).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    fresh.gc(&gc).await.unwrap();
    reads_back(&fresh, tip_now, &model).await;
}
