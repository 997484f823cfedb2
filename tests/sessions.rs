//! Session rules: read-only sessions refuse writes, nothing to commit, status and discard, the
//! node hierarchy (no node inside an array, kind replacement drops what was below), listing a
//! subtree, and committed shrinks dropping chunks for good.

mod common;

use bytes::Bytes;
use common::{filled, history, int32_array, memory_repo, memory_repo_with, p};
use floe::{Error, NodePath, Repository, RepositorySettings, Session, VersionSpec};
use serde_json::{json, Map};

#[tokio::test]
async fn read_only_sessions_refuse_writes() {
    let (repo, _) = memory_repo().await;
    let ids = history(&repo, 1).await;
    let s = repo
        .readonly_session(&VersionSpec::Snapshot(ids[0]))
        .await
        .unwrap();
    assert!(!s.is_writable());
    assert_eq!(s.branch(), None);
    let a = p("a");
    let refused = |r: floe::Result<()>| matches!(r, Err(Error::ReadOnlySession));
    assert!(refused(
        s.set_chunk(&a, &[0], Bytes::from_static(b"x")).await
    ));
    assert!(refused(s.delete_chunk(&a, &[0]).await));
    assert!(refused(s.create_group(&p("g"), Map::new()).await));
    assert!(refused(
        s.create_array(&p("b"), int32_array(&[1], &[1])).await
    ));
    assert!(refused(s.resize_array(&a, &[5]).await));
    assert!(refused(s.set_attributes(&a, Map::new()).await));
    assert!(refused(s.delete_node(&a).await));
    assert!(matches!(
        s.commit("x", None).await,
        Err(Error::ReadOnlySession)
    ));
    assert!(!s.has_changes());
    // Reading works.
    assert_eq!(
        s.get_chunk(&a, &[0]).await.unwrap().unwrap(),
        Bytes::from(0u64.to_le_bytes().to_vec())
    );
    // A read-only session on a branch name is read-only too.
    let by_name = repo
        .readonly_session(&VersionSpec::Branch("main".into()))
        .await
        .unwrap();
    assert!(matches!(
        by_name.delete_node(&a).await,
        Err(Error::ReadOnlySession)
    ));
}

#[tokio::test]
async fn nothing_to_commit_status_and_discard() {
    let (repo, _) = memory_repo().await;
    let s = repo.writable_session("main").await.unwrap();
    assert!(matches!(
        s.commit("empty", None).await,
        Err(Error::NothingToCommit)
    ));
    assert!(s.status().is_empty());
    s.create_group(&NodePath::root(), Map::new()).await.unwrap();
    s.create_group(&p("old"), Map::new()).await.unwrap();
    s.create_array(&p("a"), int32_array(&[4], &[1]))
        .await
        .unwrap();
    s.set_chunk(&p("a"), &[0], Bytes::from_static(b"zero"))
        .await
        .unwrap();
    let base = s.commit("base", None).await.unwrap();
    assert!(matches!(
        s.commit("again", None).await,
        Err(Error::NothingToCommit)
    ));

    let mut attrs = Map::new();
    attrs.insert("units".into(), json!("K"));
    s.set_attributes(&p("a"), attrs.clone()).await.unwrap();
    s.set_chunk(&p("a"), &[1], Bytes::from_static(b"one"))
        .await
        .unwrap();
    s.set_chunk(&p("a"), &[2], filled(4000, 2)).await.unwrap();
    s.delete_chunk(&p("a"), &[0]).await.unwrap();
    s.create_group(&p("new"), Map::new()).await.unwrap();
    s.delete_node(&p("old")).await.unwrap();
    let status = s.status();
    assert_eq!(status.new_nodes, vec![p("new")]);
    assert_eq!(status.updated_nodes, vec![p("a")]);
    assert_eq!(status.deleted_nodes, vec![p("old")]);
    assert_eq!(status.chunks.len(), 1);
    assert_eq!(
        (
            status.chunks[0].path.clone(),
            status.chunks[0].written,
            status.chunks[0].deleted
        ),
        (p("a"), 2, 1)
    );
    assert!(s.has_changes());
    assert_eq!(
        s.node(&p("a")).unwrap().unwrap().metadata.attributes(),
        attrs
    );

    s.discard().await;
    assert!(s.status().is_empty());
    assert!(!s.has_changes());
    assert_eq!(s.snapshot_id(), base);
    assert!(s
        .node(&p("a"))
        .unwrap()
        .unwrap()
        .metadata
        .attributes()
        .is_empty());
    assert!(s.node(&p("old")).unwrap().is_some());
    assert!(s.node(&p("new")).unwrap().is_none());
    assert_eq!(
        s.get_chunk(&p("a"), &[0]).await.unwrap().unwrap(),
        Bytes::from_static(b"zero")
    );
    assert_eq!(s.get_chunk(&p("a"), &[2]).await.unwrap(), None);
    assert!(matches!(
        s.commit("after discard", None).await,
        Err(Error::NothingToCommit)
    ));
    // The session is usable after a discard.
    s.set_chunk(&p("a"), &[3], filled(100, 3)).await.unwrap();
    let next = s.commit("after discard", None).await.unwrap();
    let r = repo.session_at_snapshot(next).await.unwrap();
    assert_eq!(
        r.get_chunk(&p("a"), &[3]).await.unwrap().unwrap(),
        filled(100, 3)
    );
    assert_eq!(
        r.list_chunks(&p("a")).await.unwrap(),
        vec![vec![0], vec![3]]
    );
}

#[tokio::test]
async fn hierarchy_rules() {
    let (repo, _) = memory_repo().await;
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&NodePath::root(), Map::new()).await.unwrap();
    s.create_array(&p("arr"), int32_array(&[2], &[1]))
        .await
        .unwrap();
    for inside in ["arr/x", "arr/x/y"] {
        assert!(
            matches!(
                s.create_group(&p(inside), Map::new()).await,
                Err(Error::InvalidHierarchy { .. })
            ),
            "{inside}"
        );
        assert!(matches!(
            s.create_array(&p(inside), int32_array(&[1], &[1])).await,
            Err(Error::InvalidHierarchy { .. })
        ));
    }
    // create_array refuses a group document.
    assert!(matches!(
        s.create_array(&p("g"), json!({"zarr_format": 3, "node_type": "group"}))
            .await,
        Err(Error::WrongNodeKind { .. })
    ));
    assert!(matches!(
        s.create_array(&p("bad"), json!({"zarr_format": 2})).await,
        Err(Error::InvalidMetadata { .. })
    ));
    // Chunk and resize errors.
    assert!(matches!(
        s.set_chunk(&p("arr"), &[2], Bytes::new()).await,
        Err(Error::ChunkOutOfBounds { .. })
    ));
    assert!(matches!(
        s.set_chunk(&p("arr"), &[0, 0], Bytes::new()).await,
        Err(Error::ChunkOutOfBounds { .. })
    ));
    assert!(matches!(
        s.set_chunk(&p(""), &[0], Bytes::new()).await,
        Err(Error::WrongNodeKind { .. })
    ));
    assert!(matches!(
        s.set_chunk(&p("none"), &[0], Bytes::new()).await,
        Err(Error::NodeNotFound { .. })
    ));
    assert!(matches!(
        s.resize_array(&p("arr"), &[1, 1]).await,
        Err(Error::InvalidMetadata { .. })
    ));
    assert!(matches!(
        s.delete_node(&p("none")).await,
        Err(Error::NodeNotFound { .. })
    ));

    // Replacing a group by an array drops the group's children, committed or not.
    s.create_group(&p("g"), Map::new()).await.unwrap();
    s.create_group(&p("g/sub"), Map::new()).await.unwrap();
    s.create_array(&p("g/sub/v"), int32_array(&[3], &[1]))
        .await
        .unwrap();
    s.set_chunk(&p("g/sub/v"), &[1], Bytes::from_static(b"v"))
        .await
        .unwrap();
    let with_children = s.commit("children", None).await.unwrap();
    s.create_group(&p("g/late"), Map::new()).await.unwrap();
    s.create_array(&p("g"), int32_array(&[5], &[5]))
        .await
        .unwrap();
    let paths = |s: &Session| {
        s.list_nodes()
            .unwrap()
            .into_iter()
            .map(|n| n.path.as_str().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(paths(&s), vec!["", "arr", "g"]);
    assert_eq!(s.get_chunk(&p("g/sub/v"), &[1]).await.unwrap(), None);
    let replaced = s.commit("replace", None).await.unwrap();
    let r = repo.session_at_snapshot(replaced).await.unwrap();
    assert_eq!(paths(&r), vec!["", "arr", "g"]);
    assert!(r
        .node(&p("g"))
        .unwrap()
        .unwrap()
        .metadata
        .geometry()
        .is_some());
    // ... and the older version still has them.
    let old = repo.session_at_snapshot(with_children).await.unwrap();
    assert_eq!(paths(&old), vec!["", "arr", "g", "g/sub", "g/sub/v"]);
    assert_eq!(
        old.get_chunk(&p("g/sub/v"), &[1]).await.unwrap().unwrap(),
        Bytes::from_static(b"v")
    );

    // Replacing an array by a group drops its chunks.
    s.set_chunk(&p("arr"), &[0], Bytes::from_static(b"a"))
        .await
        .unwrap();
    s.commit("chunk", None).await.unwrap();
    s.create_group(&p("arr"), Map::new()).await.unwrap();
    s.create_array(&p("arr"), int32_array(&[2], &[1]))
        .await
        .unwrap();
    assert_eq!(s.get_chunk(&p("arr"), &[0]).await.unwrap(), None);
    let id = s.commit("array again", None).await.unwrap();
    let r = repo.session_at_snapshot(id).await.unwrap();
    assert_eq!(
        r.list_chunks(&p("arr")).await.unwrap(),
        Vec::<Vec<u64>>::new()
    );
}

/// The paths of `s.list_descendants(path)`.
fn descendants(s: &Session, path: &str) -> Vec<String> {
    s.list_descendants(&p(path))
        .unwrap()
        .into_iter()
        .map(|n| n.path.as_str().to_string())
        .collect()
}

#[tokio::test]
async fn descendants_are_the_subtree_with_uncommitted_changes() {
    let (repo, _) = memory_repo().await;
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&NodePath::root(), Map::new()).await.unwrap();
    // `ds-1` sorts between `ds` and `ds/...`, `dsx` after them: neither is below `ds`.
    for group in ["ds", "ds/sub", "ds/sub/deep", "ds-1"] {
        s.create_group(&p(group), Map::new()).await.unwrap();
    }
    for array in ["ds/t", "ds/sub/u", "ds-1/t", "dsx"] {
        s.create_array(&p(array), int32_array(&[2], &[1]))
            .await
            .unwrap();
    }
    let id = s.commit("tree", None).await.unwrap();
    let r = repo.session_at_snapshot(id).await.unwrap();
    assert_eq!(
        descendants(&r, "ds"),
        ["ds/sub", "ds/sub/deep", "ds/sub/u", "ds/t"]
    );
    assert_eq!(descendants(&r, "ds/sub"), ["ds/sub/deep", "ds/sub/u"]);
    assert_eq!(descendants(&r, "ds-1"), ["ds-1/t"]);
    assert!(descendants(&r, "ds/sub/deep").is_empty());
    assert!(descendants(&r, "dsx").is_empty());
    assert!(descendants(&r, "none").is_empty());
    let all: Vec<String> = r.list_nodes().unwrap()[1..]
        .iter()
        .map(|n| n.path.as_str().to_string())
        .collect();
    assert_eq!(descendants(&r, ""), all);

    // A writable session sees its own creations and deletions.
    s.create_group(&p("ds/new"), Map::new()).await.unwrap();
    s.delete_node(&p("ds/sub")).await.unwrap();
    s.create_array(&p("ds-1/u"), int32_array(&[2], &[1]))
        .await
        .unwrap();
    assert_eq!(descendants(&s, "ds"), ["ds/new", "ds/t"]);
    assert_eq!(descendants(&s, "ds-1"), ["ds-1/t", "ds-1/u"]);
    // The committed version is unchanged.
    assert_eq!(descendants(&r, "ds/sub"), ["ds/sub/deep", "ds/sub/u"]);
}

#[tokio::test]
async fn committed_shrink_drops_chunks_for_good() {
    let settings = RepositorySettings {
        shard_target_refs: 4,
        delta_max_entries: 2,
        ..Default::default()
    };
    let (repo, _) = memory_repo_with(settings).await;
    let s = repo.writable_session("main").await.unwrap();
    let a = p("a");
    s.create_array(&a, int32_array(&[10, 4], &[1, 2]))
        .await
        .unwrap();
    for i in 0..10u64 {
        for j in 0..2u64 {
            s.set_chunk(
                &a,
                &[i, j],
                filled(1 + (i as usize) * 100, (i * 2 + j) as u8),
            )
            .await
            .unwrap();
        }
    }
    let full = s.commit("full", None).await.unwrap();
    s.resize_array(&a, &[3, 2]).await.unwrap();
    let shrunk = s.commit("shrink", None).await.unwrap();
    s.resize_array(&a, &[10, 4]).await.unwrap();
    let regrown = s.commit("grow", None).await.unwrap();
    let fresh = Repository::open(repo.storage().clone(), RepositorySettings::default())
        .await
        .unwrap();
    let f = fresh.session_at_snapshot(full).await.unwrap();
    assert_eq!(f.list_chunks(&a).await.unwrap().len(), 20);
    let sh = fresh.session_at_snapshot(shrunk).await.unwrap();
    assert_eq!(
        sh.list_chunks(&a).await.unwrap(),
        vec![vec![0, 0], vec![1, 0], vec![2, 0]]
    );
    let g = fresh.session_at_snapshot(regrown).await.unwrap();
    assert_eq!(
        g.list_chunks(&a).await.unwrap(),
        vec![vec![0, 0], vec![1, 0], vec![2, 0]]
    );
    for i in 0..10u64 {
        for j in 0..2u64 {
            let want = (i < 3 && j == 0).then(|| filled(1 + (i as usize) * 100, (i * 2 + j) as u8));
            assert_eq!(g.get_chunk(&a, &[i, j]).await.unwrap(), want, "{i},{j}");
        }
    }
}
