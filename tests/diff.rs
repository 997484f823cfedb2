//! `Repository::diff` and `floe diff`: what changed between two versions, related or not, on a
//! real local repository; equal manifest shards are skipped without being read.

mod common;

use bytes::Bytes;
use common::cli::{floe, ok};
use common::{attrs, int32_array, p, tempdir_repo};
use floe::{
    ChunkDiff, DiffOptions, MetadataDiff, NodeChange, NodeType, Repository, RepositorySettings,
    SnapshotId,
};
use serde_json::json;

fn chunk(v: u8, len: usize) -> Bytes {
    Bytes::from(vec![v; len])
}

/// Two commits on `main`: c1 builds the tree, c2 changes a bit of everything.
async fn two_commits(repo: &Repository) -> (SnapshotId, SnapshotId) {
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&p("/"), attrs(&[("title", json!("t"))]))
        .await
        .unwrap();
    s.create_group(&p("g"), attrs(&[("a", json!(1)), ("b", json!(2))]))
        .await
        .unwrap();
    s.create_group(&p("gone"), Default::default())
        .await
        .unwrap();
    // Chunks of 3 elements over 10: the last chunk is partial.
    s.create_array(&p("g/t"), int32_array(&[10], &[3]))
        .await
        .unwrap();
    for i in 0..4u8 {
        s.set_chunk(&p("g/t"), &[i as u64], chunk(i, 12))
            .await
            .unwrap();
    }
    s.create_array(&p("swap"), int32_array(&[2], &[2]))
        .await
        .unwrap();
    s.set_chunk(&p("swap"), &[0], chunk(9, 8)).await.unwrap();
    let c1 = s.commit("c1", None).await.unwrap();

    s.set_chunk(&p("g/t"), &[1], chunk(77, 12)).await.unwrap(); // changed
    s.set_chunk(&p("g/t"), &[3], chunk(3, 12)).await.unwrap(); // same bytes: unchanged
    s.delete_chunk(&p("g/t"), &[2]).await.unwrap(); // removed
    s.resize_array(&p("g/t"), &[13]).await.unwrap();
    s.set_chunk(&p("g/t"), &[4], chunk(4, 12)).await.unwrap(); // added
    s.set_attributes(&p("g/t"), attrs(&[("units", json!("K"))]))
        .await
        .unwrap();
    s.set_attributes(
        &p("g"),
        attrs(&[("a", json!(1)), ("b", json!(3)), ("c", json!(0))]),
    )
    .await
    .unwrap();
    s.delete_node(&p("gone")).await.unwrap();
    s.delete_node(&p("swap")).await.unwrap();
    s.create_group(&p("swap"), Default::default())
        .await
        .unwrap();
    s.create_array(&p("new"), int32_array(&[4], &[2]))
        .await
        .unwrap();
    s.set_chunk(&p("new"), &[0], chunk(5, 8)).await.unwrap();
    s.set_chunk(&p("new"), &[1], chunk(6, 8)).await.unwrap();
    let c2 = s.commit("c2", None).await.unwrap();
    (c1, c2)
}

#[tokio::test]
async fn every_kind_of_change_between_two_commits() {
    let (_dir, repo) = tempdir_repo(RepositorySettings::default()).await;
    let (c1, c2) = two_commits(&repo).await;
    let diff = repo.diff(c1, c2, &DiffOptions::default()).await.unwrap();
    assert_eq!((diff.from, diff.to), (c1, c2));
    // Only g/t's shard is read: the added and the replaced arrays are counted from their
    // shard statistics.
    assert_eq!((diff.shards_read, diff.shards_skipped), (1, 0));
    let summary: Vec<(String, NodeChange, Option<ChunkDiff>)> = diff
        .nodes
        .iter()
        .map(|n| (n.path.to_string(), n.change.clone(), n.chunks.clone()))
        .collect();
    let updated = |m: MetadataDiff| NodeChange::Updated(m);
    assert_eq!(
        summary,
        vec![
            (
                "/g".into(),
                updated(MetadataDiff {
                    attributes_added: vec!["c".into()],
                    attributes_changed: vec!["b".into()],
                    ..Default::default()
                }),
                None
            ),
            (
                "/g/t".into(),
                updated(MetadataDiff {
                    shape: Some((vec![10], vec![13])),
                    attributes_added: vec!["units".into()],
                    ..Default::default()
                }),
                Some(ChunkDiff {
                    added: 1,
                    changed: 1,
                    removed: 1,
                    bytes_added: 24,
                    bytes_removed: 24,
                    coords: None,
                })
            ),
            ("/gone".into(), NodeChange::Deleted(NodeType::Group), None),
            (
                "/new".into(),
                NodeChange::Added(NodeType::Array),
                Some(ChunkDiff {
                    added: 2,
                    bytes_added: 16,
                    ..Default::default()
                })
            ),
            (
                "/swap".into(),
                NodeChange::Replaced {
                    from: NodeType::Array,
                    to: NodeType::Group
                },
                Some(ChunkDiff {
                    removed: 1,
                    bytes_removed: 8,
                    ..Default::default()
                })
            ),
        ]
    );

    // With coordinates; the new array's shard is then read too.
    let with_coords = DiffOptions {
        chunk_coords: true,
        ..Default::default()
    };
    let diff = repo.diff(c1, c2, &with_coords).await.unwrap();
    let t = diff.nodes.iter().find(|n| n.path == p("g/t")).unwrap();
    let coords = t.chunks.as_ref().unwrap().coords.clone().unwrap();
    assert_eq!(
        (coords.added, coords.changed, coords.removed),
        (vec![vec![4]], vec![vec![1]], vec![vec![2]])
    );
    let new = diff.nodes.iter().find(|n| n.path == p("new")).unwrap();
    assert_eq!(
        new.chunks.as_ref().unwrap().coords.as_ref().unwrap().added,
        vec![vec![0], vec![1]]
    );

    // The other way round, every change is mirrored.
    let back = repo.diff(c2, c1, &DiffOptions::default()).await.unwrap();
    let t = back.nodes.iter().find(|n| n.path == p("g/t")).unwrap();
    let c = t.chunks.as_ref().unwrap();
    assert_eq!((c.added, c.changed, c.removed), (1, 1, 1));
    match &t.change {
        NodeChange::Updated(m) => {
            assert_eq!(m.shape, Some((vec![13], vec![10])));
            assert_eq!(m.attributes_removed, vec!["units".to_string()]);
        }
        other => panic!("{other:?}"),
    }
    assert!(back
        .nodes
        .iter()
        .any(|n| n.path == p("gone") && n.change == NodeChange::Added(NodeType::Group)));

    // A version against itself, and a path filter.
    assert!(repo
        .diff(c2, c2, &DiffOptions::default())
        .await
        .unwrap()
        .nodes
        .is_empty());
    let only_g = DiffOptions {
        path: Some(p("g")),
        ..Default::default()
    };
    let paths: Vec<String> = repo
        .diff(c1, c2, &only_g)
        .await
        .unwrap()
        .nodes
        .iter()
        .map(|n| n.path.to_string())
        .collect();
    assert_eq!(paths, vec!["/g", "/g/t"]);
}

#[tokio::test]
async fn unrelated_branches_and_unread_equal_shards() {
    // Four chunks per shard: 64 chunks make 16 shards.
    let settings = RepositorySettings {
        shard_target_refs: 4,
        ..Default::default()
    };
    let (_dir, repo) = tempdir_repo(settings).await;
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&p("/"), Default::default()).await.unwrap();
    s.create_array(&p("a"), int32_array(&[64], &[1]))
        .await
        .unwrap();
    for i in 0..64u64 {
        s.set_chunk(
            &p("a"),
            &[i],
            Bytes::from((i as u32).to_le_bytes().to_vec()),
        )
        .await
        .unwrap();
    }
    let before = s.commit("64 chunks", None).await.unwrap();
    s.set_chunk(&p("a"), &[37], Bytes::from(vec![0xff; 4]))
        .await
        .unwrap();
    let after = s.commit("one chunk", None).await.unwrap();
    let diff = repo
        .diff(before, after, &DiffOptions::default())
        .await
        .unwrap();
    assert_eq!(diff.nodes.len(), 1);
    let c = diff.nodes[0].chunks.clone().unwrap();
    assert_eq!((c.added, c.changed, c.removed), (0, 1, 0));
    assert_eq!(
        (diff.shards_read, diff.shards_skipped),
        (1, 15),
        "only the shard of chunk 37 is read"
    );

    // A branch from the root with different content: the diff compares snapshots, not
    // histories.
    let root = repo
        .log(&floe::VersionSpec::Branch("main".into()), usize::MAX)
        .await
        .unwrap()
        .1
        .last()
        .unwrap()
        .id;
    repo.create_branch("other", root).await.unwrap();
    let o = repo.writable_session("other").await.unwrap();
    o.create_group(&p("/"), Default::default()).await.unwrap();
    o.create_array(&p("a"), int32_array(&[64], &[1]))
        .await
        .unwrap();
    o.set_chunk(&p("a"), &[37], Bytes::from(vec![0xff; 4]))
        .await
        .unwrap();
    o.set_chunk(&p("a"), &[38], Bytes::from(vec![1; 4]))
        .await
        .unwrap();
    let other = o.commit("other", None).await.unwrap();
    let diff = repo
        .diff(after, other, &DiffOptions::default())
        .await
        .unwrap();
    let c = diff.nodes[0].chunks.clone().unwrap();
    // 37 equal on both sides; 38 differs; the other 62 are gone.
    assert_eq!((c.added, c.changed, c.removed), (0, 1, 62));
}

#[tokio::test]
async fn floe_diff_on_the_command_line() {
    let (dir, repo) = tempdir_repo(RepositorySettings::default()).await;
    let (c1, c2) = two_commits(&repo).await;
    repo.create_tag("v1", c1).await.unwrap();
    let run = ok(dir.path(), &["diff", "v1", "main", "--json", "--coords"]);
    let doc = run.json();
    assert_eq!(doc["from"], json!(c1.to_string()));
    assert_eq!(doc["to"], json!(c2.to_string()));
    let t = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["path"] == "/g/t")
        .unwrap()
        .clone();
    assert_eq!(t["change"], "updated");
    assert_eq!(t["type"], "array");
    assert_eq!(t["metadata"]["shape"], json!([[10], [13]]));
    assert_eq!(t["chunks"]["coords"]["removed"], json!([[2]]));
    let swap = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["path"] == "/swap")
        .unwrap()
        .clone();
    assert_eq!(
        (
            swap["change"].clone(),
            swap["from_type"].clone(),
            swap["type"].clone()
        ),
        (json!("replaced"), json!("array"), json!("group"))
    );
    let text = ok(dir.path(), &["diff", "v1", "main", "g"]).text();
    assert!(text.contains("/g/t") && text.contains("+1 ~1 -1"), "{text}");
    assert!(!text.contains("/new"), "{text}");
    floe(dir.path(), &["diff", "v1", "nope"]).assert_error(3, "nope");
}

#[tokio::test]
async fn floe_du_sums_shard_statistics() {
    let (dir, repo) = tempdir_repo(RepositorySettings::default()).await;
    let (c1, _) = two_commits(&repo).await;
    // A large chunk goes to a chunk object of its own (native); small ones stay inline.
    let s = repo.writable_session("main").await.unwrap();
    s.create_array(&p("big"), int32_array(&[1 << 20], &[1 << 18]))
        .await
        .unwrap();
    s.set_chunk(&p("big"), &[1], chunk(1, 1 << 20))
        .await
        .unwrap();
    s.commit("big", None).await.unwrap();
    let doc = ok(dir.path(), &["du", "--json"]).json();
    let arrays = doc["arrays"].as_array().unwrap();
    let paths: Vec<&str> = arrays.iter().map(|a| a["path"].as_str().unwrap()).collect();
    assert_eq!(paths, vec!["/big", "/g/t", "/new"]);
    let big = &arrays[0];
    assert_eq!(
        (
            big["chunks_total"].clone(),
            big["chunks_initialized"].clone()
        ),
        (json!(4), json!(1))
    );
    assert_eq!(
        (big["native"].clone(), big["inline"].clone()),
        (json!(1), json!(0))
    );
    assert_eq!(big["bytes_logical"], json!(4u64 << 20));
    assert_eq!(big["bytes_stored"], json!(1u64 << 20));
    // g/t: chunks 0, 1, 3, 4 of 5 (shape 13, chunks of 3), 12 bytes each, inline.
    let t = &arrays[1];
    assert_eq!(
        (
            t["chunks_total"].clone(),
            t["chunks_initialized"].clone(),
            t["inline"].clone()
        ),
        (json!(5), json!(4), json!(4))
    );
    assert_eq!(
        (t["bytes_logical"].clone(), t["bytes_stored"].clone()),
        (json!(52), json!(48))
    );
    let total = &doc["total"];
    assert_eq!(total["bytes_stored"], json!((1u64 << 20) + 48 + 16));
    assert_eq!(total["bytes_logical"], json!((4u64 << 20) + 52 + 16));
    // A path and an older version.
    let doc = ok(dir.path(), &["du", "g", "--at", &c1.to_string(), "--json"]).json();
    let arrays = doc["arrays"].as_array().unwrap();
    assert_eq!(arrays.len(), 1);
    assert_eq!(arrays[0]["chunks_initialized"], json!(4));
    assert_eq!(arrays[0]["bytes_logical"], json!(40));
    let text = ok(dir.path(), &["du"]).text();
    assert!(text.contains("total") && text.contains("/big"), "{text}");
    floe(dir.path(), &["du", "nope"]).assert_error(3, "nope");
}
