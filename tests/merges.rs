//! Semantic merges on rebase: concurrent appends along one dimension of one array merge
//! (shape = element-wise max, chunk regions disjoint), attribute updates to different keys
//! merge, and everything else that both sides changed stays a precise conflict.

mod common;

use bytes::Bytes;
use common::conflicts::{conflict, node_reason};
use common::{attrs, linear_history, main_session, memory_repo, p, uint8_array};
use floe::{ConflictDetail, NodeMetadata, NodePath, Repository, Session, SnapshotId};
use serde_json::{json, Map, Value};

/// Rows of `t2m` (one chunk row per day, 4 columns in one chunk).
const COLUMNS: u64 = 4;

/// A memory repository with group `g` (attribute `title`) and array `t2m` holding days 0 and
/// 1 (shape [2, 4], chunks [1, 4], attribute `units`).
async fn setup() -> (Repository, SnapshotId) {
    let (repo, _) = memory_repo().await;
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&NodePath::root(), Map::new()).await.unwrap();
    s.create_group(&p("g"), attrs(&[("title", json!("base"))]))
        .await
        .unwrap();
    let mut doc = uint8_array(&[2, COLUMNS], &[1, COLUMNS]);
    doc["attributes"] = json!({"units": "K"});
    s.create_array(&p("t2m"), doc).await.unwrap();
    for day in 0..2 {
        s.set_chunk(&p("t2m"), &[day, 0], day_bytes(day))
            .await
            .unwrap();
    }
    let base = s.commit("setup", None).await.unwrap();
    (repo, base)
}

fn day_bytes(day: u64) -> Bytes {
    Bytes::from(vec![day as u8 + 10; COLUMNS as usize])
}

/// A session on `main` that appends `day` to `t2m`: grows it to `day + 1` rows and writes
/// that day's chunk.
async fn appender(repo: &Repository, day: u64) -> Session {
    let s = repo.writable_session("main").await.unwrap();
    s.resize_array(&p("t2m"), &[day + 1, COLUMNS])
        .await
        .unwrap();
    s.set_chunk(&p("t2m"), &[day, 0], day_bytes(day))
        .await
        .unwrap();
    s
}

/// Asserts that history from the tip of `main` is a single chain with consecutive
/// generations and returns its ids, newest first.
async fn linear_log(repo: &Repository) -> Vec<SnapshotId> {
    linear_history(repo).await.iter().map(|e| e.id).collect()
}

/// Asserts that `t2m` in `session` has `days` rows and every day's chunk.
async fn assert_days(session: &Session, days: u64) {
    let node = session.require_node(&p("t2m")).unwrap();
    assert_eq!(node.metadata.geometry().unwrap().shape, vec![days, COLUMNS]);
    for day in 0..days {
        assert_eq!(
            session.get_chunk(&p("t2m"), &[day, 0]).await.unwrap(),
            Some(day_bytes(day)),
            "day {day}"
        );
    }
}

#[tokio::test]
async fn two_daily_appenders_both_land() {
    for later_first in [false, true] {
        let (repo, base) = setup().await;
        let day2 = appender(&repo, 2).await;
        let day3 = appender(&repo, 3).await;
        let (first, second) = if later_first {
            (&day3, &day2)
        } else {
            (&day2, &day3)
        };
        let one = first.commit("first", None).await.unwrap();
        let two = second.commit("second", None).await.unwrap();
        assert_eq!(linear_log(&repo).await[..3], [two, one, base]);
        assert_days(&main_session(&repo).await, 4).await;
        // The session that rebased sees the merged array and goes on from there.
        assert_eq!(second.snapshot_id(), two);
        assert!(!second.has_changes());
        assert_days(second, 4).await;
        second.resize_array(&p("t2m"), &[5, COLUMNS]).await.unwrap();
        second
            .set_chunk(&p("t2m"), &[4, 0], day_bytes(4))
            .await
            .unwrap();
        second.commit("day 4", None).await.unwrap();
        assert_days(&main_session(&repo).await, 5).await;
        // Attributes of the array survive the merge untouched.
        let node = main_session(&repo).await.require_node(&p("t2m")).unwrap();
        assert_eq!(node.metadata.attributes()["units"], "K");
    }
}

#[tokio::test]
async fn three_daily_appenders_all_land() {
    let (repo, base) = setup().await;
    let sessions = [
        appender(&repo, 3).await,
        appender(&repo, 2).await,
        appender(&repo, 4).await,
    ];
    let mut ids = Vec::new();
    for s in &sessions {
        ids.push(s.commit("append", None).await.unwrap());
    }
    ids.reverse();
    ids.push(base);
    assert_eq!(linear_log(&repo).await[..4], ids[..]);
    assert_days(&main_session(&repo).await, 5).await;
}

/// Many appenders commit at the same time: some rebase several times, each time merging
/// the array's shape again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_all_land() {
    let (repo, _) = setup().await;
    let mut sessions = Vec::new();
    for day in 2..8 {
        sessions.push(appender(&repo, day).await);
    }
    let commits = sessions.iter().map(|s| {
        let s = s.clone();
        tokio::spawn(async move { s.commit("append", None).await })
    });
    for result in futures::future::join_all(commits).await {
        result.unwrap().unwrap();
    }
    assert_eq!(linear_log(&repo).await.len(), 2 + 6);
    assert_days(&main_session(&repo).await, 8).await;
}

#[tokio::test]
async fn a_chunk_write_inside_the_old_shape_merges_with_an_append() {
    for append_first in [true, false] {
        let (repo, _) = setup().await;
        let append = appender(&repo, 2).await;
        let rewrite = repo.writable_session("main").await.unwrap();
        rewrite
            .set_chunk(&p("t2m"), &[1, 0], Bytes::from_static(b"new!"))
            .await
            .unwrap();
        let (first, second) = if append_first {
            (&append, &rewrite)
        } else {
            (&rewrite, &append)
        };
        first.commit("first", None).await.unwrap();
        second.commit("second", None).await.unwrap();
        let main = main_session(&repo).await;
        assert_eq!(
            main.get_chunk(&p("t2m"), &[1, 0]).await.unwrap(),
            Some(Bytes::from_static(b"new!"))
        );
        let shape = main.require_node(&p("t2m")).unwrap().metadata;
        assert_eq!(shape.geometry().unwrap().shape, vec![3, COLUMNS]);
        assert_eq!(
            main.get_chunk(&p("t2m"), &[2, 0]).await.unwrap(),
            Some(day_bytes(2))
        );
    }
}

#[tokio::test]
async fn attribute_updates_to_different_keys_merge() {
    let (repo, _) = setup().await;
    for path in ["g", "t2m"] {
        let before = main_session(&repo).await.require_node(&p(path)).unwrap();
        let base_attrs = before.metadata.attributes();
        let one = repo.writable_session("main").await.unwrap();
        let two = repo.writable_session("main").await.unwrap();
        let mut a = base_attrs.clone();
        a.insert("source".into(), json!("era5"));
        let mut b = base_attrs.clone();
        b.insert("history".into(), json!("regridded"));
        one.set_attributes(&p(path), a).await.unwrap();
        two.set_attributes(&p(path), b).await.unwrap();
        one.commit("source", None).await.unwrap();
        two.commit("history", None).await.unwrap();
        let merged = main_session(&repo)
            .await
            .require_node(&p(path))
            .unwrap()
            .metadata
            .attributes();
        let mut want = base_attrs;
        want.insert("source".into(), json!("era5"));
        want.insert("history".into(), json!("regridded"));
        assert_eq!(merged, want, "{path}");
    }
    // A key removed by one side and another added by the other.
    let one = repo.writable_session("main").await.unwrap();
    let two = repo.writable_session("main").await.unwrap();
    one.set_attributes(&p("g"), attrs(&[("title", json!("base"))]))
        .await
        .unwrap();
    two.set_attributes(
        &p("g"),
        attrs(&[
            ("title", json!("base")),
            ("source", json!("era5")),
            ("history", json!("regridded")),
            ("extra", json!(1)),
        ]),
    )
    .await
    .unwrap();
    one.commit("drop keys", None).await.unwrap();
    two.commit("add extra", None).await.unwrap();
    let merged = main_session(&repo)
        .await
        .require_node(&p("g"))
        .unwrap()
        .metadata
        .attributes();
    assert_eq!(
        merged,
        attrs(&[("title", json!("base")), ("extra", json!(1))])
    );
}

#[tokio::test]
async fn the_same_attribute_key_merges_only_to_the_same_value() {
    let (repo, _) = setup().await;
    let one = repo.writable_session("main").await.unwrap();
    let two = repo.writable_session("main").await.unwrap();
    one.set_attributes(&p("g"), attrs(&[("title", json!("one"))]))
        .await
        .unwrap();
    two.set_attributes(&p("g"), attrs(&[("title", json!("two"))]))
        .await
        .unwrap();
    let theirs = one.commit("one", None).await.unwrap();
    let (their_snapshot, detail) = conflict(two.commit("two", None).await.unwrap_err());
    assert_eq!(their_snapshot, theirs.to_string());
    let reason = node_reason(&detail, "/g");
    assert!(reason.contains("`title`"), "{reason}");
    assert!(two.has_changes(), "a conflict keeps the session's changes");

    let three = repo.writable_session("main").await.unwrap();
    let four = repo.writable_session("main").await.unwrap();
    for s in [&three, &four] {
        s.set_attributes(&p("g"), attrs(&[("title", json!("same"))]))
            .await
            .unwrap();
    }
    three.commit("three", None).await.unwrap();
    four.commit("four", None).await.unwrap();
    let node = main_session(&repo).await.require_node(&p("g")).unwrap();
    assert_eq!(node.metadata.attributes()["title"], "same");
}

/// `t2m`'s document with one top-level key replaced.
fn t2m_with(key: &str, value: Value) -> NodeMetadata {
    let mut doc = uint8_array(&[2, COLUMNS], &[1, COLUMNS]);
    doc["attributes"] = json!({"units": "K"});
    doc[key] = value;
    NodeMetadata::from_value(&p("t2m"), doc).unwrap()
}

#[tokio::test]
async fn data_type_or_codec_changes_conflict_with_an_append() {
    let changes = [
        ("data_type", json!("int8")),
        ("codecs", json!([{"name": "bytes"}, {"name": "crc32c"}])),
        ("fill_value", json!(7)),
    ];
    for (key, value) in changes {
        for change_first in [true, false] {
            let (repo, _) = setup().await;
            let change = repo.writable_session("main").await.unwrap();
            change
                .set_metadata(&p("t2m"), t2m_with(key, value.clone()))
                .await
                .unwrap();
            let append = appender(&repo, 2).await;
            let (first, second) = if change_first {
                (&change, &append)
            } else {
                (&append, &change)
            };
            first.commit("first", None).await.unwrap();
            let (_, detail) = conflict(second.commit("second", None).await.unwrap_err());
            let reason = node_reason(&detail, "/t2m");
            assert!(reason.contains(key), "{key}: {reason}");
        }
    }
}

#[tokio::test]
async fn a_shrink_conflicts_with_an_append() {
    for shrink_first in [true, false] {
        let (repo, _) = setup().await;
        let shrink = repo.writable_session("main").await.unwrap();
        shrink.resize_array(&p("t2m"), &[1, COLUMNS]).await.unwrap();
        let append = appender(&repo, 2).await;
        let (first, second) = if shrink_first {
            (&shrink, &append)
        } else {
            (&append, &shrink)
        };
        first.commit("first", None).await.unwrap();
        let (_, detail) = conflict(second.commit("second", None).await.unwrap_err());
        let reason = node_reason(&detail, "/t2m");
        assert!(reason.contains("shrank"), "{reason}");
    }
    // A shrink undone within the session still clips the chunks beyond it.
    let (repo, _) = setup().await;
    let clip = repo.writable_session("main").await.unwrap();
    clip.resize_array(&p("t2m"), &[1, COLUMNS]).await.unwrap();
    clip.resize_array(&p("t2m"), &[3, COLUMNS]).await.unwrap();
    let append = appender(&repo, 2).await;
    append.commit("append", None).await.unwrap();
    let (_, detail) = conflict(clip.commit("clip", None).await.unwrap_err());
    node_reason(&detail, "/t2m");
}

#[tokio::test]
async fn appending_the_same_day_twice_conflicts_with_coordinates() {
    let (repo, _) = setup().await;
    let one = appender(&repo, 2).await;
    let two = appender(&repo, 2).await;
    two.set_chunk(&p("t2m"), &[1, 0], day_bytes(1))
        .await
        .unwrap();
    let theirs = one.commit("one", None).await.unwrap();
    let (their_snapshot, detail) = conflict(two.commit("two", None).await.unwrap_err());
    assert_eq!(their_snapshot, theirs.to_string());
    assert_eq!(
        detail,
        ConflictDetail::Chunks {
            path: "/t2m".into(),
            coords: vec![vec![2, 0]],
        }
    );
    assert_days(&main_session(&repo).await, 3).await;
}

#[tokio::test]
async fn deleted_or_recreated_arrays_still_conflict_with_an_append() {
    let (repo, _) = setup().await;
    let delete = repo.writable_session("main").await.unwrap();
    delete.delete_node(&p("t2m")).await.unwrap();
    let append = appender(&repo, 2).await;
    delete.commit("delete", None).await.unwrap();
    let (_, detail) = conflict(append.commit("append", None).await.unwrap_err());
    node_reason(&detail, "/t2m");

    let (repo, _) = setup().await;
    let recreate = repo.writable_session("main").await.unwrap();
    recreate.delete_node(&p("t2m")).await.unwrap();
    recreate
        .create_array(&p("t2m"), uint8_array(&[9, COLUMNS], &[1, COLUMNS]))
        .await
        .unwrap();
    let append = appender(&repo, 2).await;
    append.commit("append", None).await.unwrap();
    let (_, detail) = conflict(recreate.commit("recreate", None).await.unwrap_err());
    node_reason(&detail, "/t2m");
}

#[tokio::test]
async fn a_data_type_change_merges_only_with_an_attribute_change() {
    let (repo, _) = setup().await;
    let retype = repo.writable_session("main").await.unwrap();
    retype
        .set_metadata(&p("t2m"), t2m_with("data_type", json!("int8")))
        .await
        .unwrap();
    let label = repo.writable_session("main").await.unwrap();
    label
        .set_attributes(
            &p("t2m"),
            attrs(&[("units", json!("K")), ("source", json!("era5"))]),
        )
        .await
        .unwrap();
    retype.commit("retype", None).await.unwrap();
    label.commit("label", None).await.unwrap();
    let node = main_session(&repo).await.require_node(&p("t2m")).unwrap();
    assert_eq!(node.metadata.document()["data_type"], "int8");
    assert_eq!(node.metadata.attributes()["source"], "era5");

    // Both change a key other than shape and attributes: a conflict naming both values,
    // unless the resulting documents are identical (tests/identical_changes.rs).
    let one = repo.writable_session("main").await.unwrap();
    let two = repo.writable_session("main").await.unwrap();
    for (s, fill) in [(&one, 3), (&two, 4)] {
        let mut doc = Value::Object(node.metadata.document().clone());
        doc["fill_value"] = json!(fill);
        s.set_metadata(&p("t2m"), NodeMetadata::from_value(&p("t2m"), doc).unwrap())
            .await
            .unwrap();
    }
    one.commit("one", None).await.unwrap();
    let (_, detail) = conflict(two.commit("two", None).await.unwrap_err());
    let reason = node_reason(&detail, "/t2m");
    assert!(
        reason.contains("`fill_value` changed by both commits to different values: 4 in this session, 3 in the other commit"),
        "{reason}"
    );
}
