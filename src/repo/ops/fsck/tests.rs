//! Damage that only a buggy or hostile writer can produce, crafted with the crate's internals:
//! each case writes one forged snapshot on top of a sound history and expects exactly the
//! problems it planted.

use bytes::Bytes;

use super::{FsckOptions, FsckProblem, ShardCounts};
use crate::format::envelope::{self, ObjectKind};
use crate::format::manifest::{ChunkRef, ManifestColumns};
use crate::format::path::NodePath;
use crate::format::snapshot::{ArrayManifest, NodeKind, NodeRecord, Snapshot, TxLogRef};
use crate::format::txlog::TxLog;
use crate::id::{ChunkObjectId, ManifestId, SnapshotId, TxLogId};
use crate::repo::history::index::child_history;
use crate::repo::{Repository, RepositorySettings};
use crate::storage::{layout, open_storage};
use crate::zarr::metadata::tests::array_json;

fn p(path: &str) -> NodePath {
    NodePath::new(path).unwrap()
}

/// `/` and array `a` [16] chunks [1] (shard shape [4]): shard [0] holds a[0] inline (4
/// bytes) and a[1] packed (100 bytes), shard [1] holds a[5] inline (3 bytes); all deltas.
async fn sound_repo() -> Repository {
    let storage = open_storage("memory://", &vec![]).unwrap();
    let settings = RepositorySettings {
        shard_target_refs: 4,
        ..RepositorySettings::default()
    };
    let repo = Repository::init(storage, settings).await.unwrap();
    let s = repo.writable_session("main").await.unwrap();
    let a = p("a");
    s.create_group(&NodePath::root(), Default::default())
        .await
        .unwrap();
    s.create_array(&a, array_json(&[16], &[1])).await.unwrap();
    s.set_chunk(&a, &[0], Bytes::from_static(b"abcd"))
        .await
        .unwrap();
    s.set_chunk(&a, &[1], Bytes::from(vec![7u8; 600]))
        .await
        .unwrap();
    s.set_chunk(&a, &[5], Bytes::from_static(b"xyz"))
        .await
        .unwrap();
    s.commit("sound", None).await.unwrap();
    let report = repo.fsck(FsckOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{:#?}", report.problems);
    repo
}

/// Writes a child of `main`'s tip, as a correct writer would, altered by `edit`, and moves
/// `main` to it.
async fn forge(repo: &Repository, edit: impl FnOnce(&mut Snapshot)) -> (SnapshotId, String) {
    let tip = repo.branch_tip("main").await.unwrap();
    let parent = repo.load_snapshot(&tip).await.unwrap();
    let history = child_history(tip, &parent.snapshot);
    let mut child = Snapshot {
        parent: Some(tip),
        generation: history.generation,
        committed_at_us: parent.snapshot.committed_at_us + 1,
        message: "forged".into(),
        metadata_json: "{}".into(),
        nodes: parent.snapshot.nodes.clone(),
        txlog: TxLogRef::Inline(TxLog::default()),
        skips: history.skips,
        recent: history.recent,
        pages: history.pages,
        merged: None,
        rewritten_from: None,
    };
    edit(&mut child);
    let id = repo.write_snapshot(&child).await.unwrap();
    repo.reset_branch("main", id).await.unwrap();
    (id, layout::snapshot_key(&id))
}

fn array_a(s: &mut Snapshot) -> &mut ArrayManifest {
    let node = s.nodes.iter_mut().find(|n| n.path == p("a")).unwrap();
    match &mut node.kind {
        NodeKind::Array(m) => m,
        NodeKind::Group => panic!("a is an array"),
    }
}

async fn problems(repo: &Repository) -> Vec<FsckProblem> {
    repo.fsck(FsckOptions::default()).await.unwrap().problems
}

/// The pack holding a[1], and its size.
async fn pack_of_a1(repo: &Repository) -> (ChunkObjectId, u64) {
    let tip = repo.branch_tip("main").await.unwrap();
    let loaded = repo.load_snapshot(&tip).await.unwrap();
    let Some(ChunkRef::Native { object, .. }) =
        loaded.chunk_ref(repo, &p("a"), &[1]).await.unwrap()
    else {
        panic!("a[1] is packed")
    };
    let size = repo
        .storage()
        .head(&layout::chunk_object_key(&object))
        .await
        .unwrap()
        .unwrap();
    (object, size)
}

#[tokio::test]
async fn wrong_shard_statistics() {
    let repo = sound_repo().await;
    let (_, key) = forge(&repo, |s| array_a(s).shards[0].chunk_count += 1).await;
    let actual = ShardCounts {
        chunk_count: 2,
        chunk_bytes: 604,
        inline_count: 1,
        virtual_count: 0,
    };
    let recorded = ShardCounts {
        chunk_count: 3,
        ..actual
    };
    assert_eq!(
        problems(&repo).await,
        vec![FsckProblem::StatsMismatch {
            key,
            path: p("a"),
            shard: vec![0],
            recorded,
            actual
        }]
    );
}

#[tokio::test]
async fn commit_time_not_after_the_parent() {
    let repo = sound_repo().await;
    let (_, key) = forge(&repo, |s| s.committed_at_us -= 1).await;
    let found = problems(&repo).await;
    assert!(
        matches!(&found[..], [FsckProblem::InconsistentHistory { key: k, reason }] if *k == key && reason.contains("not after")),
        "{found:#?}"
    );
}

#[tokio::test]
async fn recent_log_that_does_not_match_the_parent() {
    let repo = sound_repo().await;
    let (_, key) = forge(&repo, |s| {
        s.recent[0].text = Some(("rewritten".into(), "{}".into()))
    })
    .await;
    let found = problems(&repo).await;
    assert!(
        matches!(&found[..], [FsckProblem::InconsistentHistory { key: k, reason }] if *k == key && reason.contains("recent")),
        "{found:#?}"
    );
}

#[tokio::test]
async fn skips_with_wrong_generations() {
    let repo = sound_repo().await;
    let (_, key) = forge(&repo, |s| s.skips.push(s.skips[0].clone())).await;
    let found = problems(&repo).await;
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found
            .iter()
            .all(|f| f.kind() == "inconsistent_history" && f.key() == key),
        "{found:#?}"
    );
}

#[tokio::test]
async fn delta_entry_in_the_wrong_shard() {
    let repo = sound_repo().await;
    let delta =
        ManifestColumns::encode(&[(vec![2], Some(ChunkRef::Inline(Bytes::from_static(b"xyz"))))])
            .unwrap();
    let (_, key) = forge(&repo, |s| array_a(s).shards[1].delta = Some(delta)).await;
    assert_eq!(
        problems(&repo).await,
        vec![FsckProblem::EntryOutsideShard {
            key,
            path: p("a"),
            shard: vec![1],
            coord: vec![2]
        }]
    );
}

#[tokio::test]
async fn chunks_outside_the_array_grid() {
    let repo = sound_repo().await;
    let shrunk = array_json(&[4], &[1]).to_string();
    let (_, key) = forge(&repo, |s| {
        s.nodes
            .iter_mut()
            .find(|n| n.path == p("a"))
            .unwrap()
            .zarr_json = shrunk;
    })
    .await;
    assert_eq!(
        problems(&repo).await,
        vec![FsckProblem::ChunksOutsideGrid {
            key,
            path: p("a"),
            shard: vec![1],
            grid: vec![4]
        }]
    );
}

#[tokio::test]
async fn chunk_references_outside_their_object() {
    let repo = sound_repo().await;
    let (pack, size) = pack_of_a1(&repo).await;
    let native = |offset, length| {
        Some(ChunkRef::Native {
            object: pack,
            offset,
            length,
        })
    };
    let entries = vec![
        (vec![0], Some(ChunkRef::Inline(Bytes::from_static(b"abcd")))),
        (vec![1], native(size - 10, 600)),
        (vec![2], native(0, 10)),
    ];
    let delta = ManifestColumns::encode(&entries).unwrap();
    let (_, key) = forge(&repo, |s| {
        let shard = &mut array_a(s).shards[0];
        shard.delta = Some(delta);
        shard.chunk_count = 3;
        shard.chunk_bytes = 614;
    })
    .await;
    let chunk_key = layout::chunk_object_key(&pack);
    let out_of_range = |coord: u64, offset, length| FsckProblem::ChunkRefOutOfRange {
        key: chunk_key.clone(),
        referenced_by: key.clone(),
        coord: vec![coord],
        offset,
        length,
        object_size: size,
    };
    let mut expected = vec![out_of_range(1, size - 10, 600), out_of_range(2, 0, 10)];
    expected.sort_by_key(|p| p.to_string());
    assert_eq!(problems(&repo).await, expected);
}

#[tokio::test]
async fn transaction_log_that_hashes_right_but_does_not_decode() {
    let repo = sound_repo().await;
    let bytes = envelope::encode(ObjectKind::TxLog, &"not a transaction log").unwrap();
    let id = TxLogId::of_bytes(&bytes);
    repo.put_immutable(&layout::txlog_key(&id), bytes)
        .await
        .unwrap();
    forge(&repo, |s| s.txlog = TxLogRef::Object(id)).await;
    let found = problems(&repo).await;
    assert!(
        matches!(&found[..], [FsckProblem::Corrupt { key, .. }] if *key == layout::txlog_key(&id)),
        "{found:#?}"
    );
}

#[tokio::test]
async fn invalid_nodes() {
    let repo = sound_repo().await;
    let group = r#"{"zarr_format":3,"node_type":"group"}"#;
    let (_, key) = forge(&repo, |s| {
        s.nodes.push(NodeRecord {
            path: p("a/x"),
            zarr_json: group.into(),
            kind: NodeKind::Group,
        });
        s.nodes.push(NodeRecord {
            path: p("b"),
            zarr_json: r#"{"zarr_format":2}"#.into(),
            kind: NodeKind::Group,
        });
        s.nodes.push(NodeRecord {
            path: p("c"),
            zarr_json: group.into(),
            kind: NodeKind::Array(ArrayManifest::default()),
        });
        s.nodes.sort_by(|x, y| x.path.cmp(&y.path));
    })
    .await;
    let found = problems(&repo).await;
    let paths: Vec<(&str, &str)> = found
        .iter()
        .map(|f| match f {
            FsckProblem::InvalidNode { key: k, path, .. } if *k == key => (f.kind(), path.as_str()),
            other => panic!("unexpected {other}"),
        })
        .collect();
    assert_eq!(
        paths,
        vec![
            ("invalid_node", "a/x"),
            ("invalid_node", "b"),
            ("invalid_node", "c")
        ]
    );
}

#[tokio::test]
async fn unsorted_nodes() {
    let repo = sound_repo().await;
    let (_, key) = forge(&repo, |s| s.nodes.swap(0, 1)).await;
    let found = problems(&repo).await;
    assert!(
        matches!(&found[..], [FsckProblem::Corrupt { key: k, reason }] if *k == key && reason.contains("sorted")),
        "{found:#?}"
    );
}

#[tokio::test]
async fn missing_manifest_base() {
    let repo = sound_repo().await;
    let absent = ManifestId::of_bytes(b"never written");
    let (_, key) = forge(&repo, |s| array_a(s).shards[1].base = Some(absent)).await;
    assert_eq!(
        problems(&repo).await,
        vec![FsckProblem::Missing {
            key: layout::manifest_key(&absent),
            referenced_by: key
        }]
    );
}

#[tokio::test]
async fn base_holding_a_tombstone() {
    let repo = sound_repo().await;
    let entries = vec![
        (vec![4], None),
        (vec![5], Some(ChunkRef::Inline(Bytes::from_static(b"xyz")))),
    ];
    let base = repo
        .write_manifest(&ManifestColumns::encode(&entries).unwrap())
        .await
        .unwrap();
    forge(&repo, |s| {
        let shard = &mut array_a(s).shards[1];
        shard.base = Some(base);
        shard.delta = None;
    })
    .await;
    let found = problems(&repo).await;
    assert!(
        matches!(&found[..], [FsckProblem::Corrupt { key, reason }] if *key == layout::manifest_key(&base) && reason.contains("tombstone")),
        "{found:#?}"
    );
}
