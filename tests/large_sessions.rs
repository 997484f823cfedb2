//! Sessions holding far more chunk edits than fit in their in-memory map: edits are frozen
//! into compact runs, spilled to the spool directory past the memory budget, read back during
//! the session, committed in slabs, and everything reads back bit-exact from a fresh handle.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::{int32_array, p, tempdir_repo};
use floe::{FsckOptions, Repository, RepositorySettings, VersionSpec};
use serde_json::Map;

/// Inline (8 bytes), packed (600 bytes) or deleted, depending on `i` and the round.
fn value(i: u64, round: u64) -> Option<Bytes> {
    match (i + round) % 11 {
        0 => None,
        1 | 2 => Some(Bytes::from(vec![(i % 251) as u8 ^ round as u8; 600])),
        _ => Some(Bytes::from((i * 31 + round).to_le_bytes().to_vec())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_edits_spill_and_commit() {
    let spool = tempfile::tempdir().unwrap();
    let settings = RepositorySettings {
        spool_memory_bytes: 64 * 1024,
        spool_dir: Some(spool.path().to_path_buf()),
        pack_target_bytes: 256 * 1024,
        ..RepositorySettings::default()
    };
    let (_dir, repo) = tempdir_repo(settings.clone()).await;
    let n = 100_000u64;
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&floe::NodePath::root(), Map::new())
        .await
        .unwrap();
    s.create_array(&p("x"), int32_array(&[n], &[1]))
        .await
        .unwrap();
    let mut model: BTreeMap<u64, Option<Bytes>> = BTreeMap::new();
    for round in 0..2u64 {
        // The second round rewrites a strided subset, out of order.
        let coords: Vec<u64> = if round == 0 {
            (0..n).collect()
        } else {
            (0..n).rev().step_by(3).collect()
        };
        for i in coords {
            match value(i, round) {
                Some(bytes) => s.set_chunk(&p("x"), &[i], bytes.clone()).await.unwrap(),
                None => s.delete_chunk(&p("x"), &[i]).await.unwrap(),
            }
            model.insert(i, value(i, round));
        }
    }
    let spilled: u64 = std::fs::read_dir(spool.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(spilled > 100_000, "edits were spilled ({spilled} bytes)");
    for i in (0..n).step_by(997) {
        assert_eq!(
            s.get_chunk(&p("x"), &[i]).await.unwrap(),
            model[&i],
            "chunk {i} during the session"
        );
    }
    let status = s.status();
    let written = model.values().filter(|v| v.is_some()).count();
    assert_eq!(status.chunks[0].written, written);
    assert_eq!(status.chunks[0].deleted, model.len() - written);
    // Shrinking drops the edits beyond the new end, frozen and spilled ones included.
    s.resize_array(&p("x"), &[n - 1000]).await.unwrap();
    model.retain(|i, _| *i < n - 1000);
    let listed = s.list_chunks(&p("x")).await.unwrap();
    let live: Vec<Vec<u64>> = model
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(i, _)| vec![*i])
        .collect();
    assert_eq!(listed, live);
    s.commit("many edits", None).await.unwrap();

    let fresh = Repository::open(repo.storage().clone(), settings)
        .await
        .unwrap();
    let main = fresh
        .readonly_session(&VersionSpec::parse("main").unwrap())
        .await
        .unwrap();
    for (i, v) in &model {
        assert_eq!(
            &main.get_chunk(&p("x"), &[*i]).await.unwrap(),
            v,
            "chunk {i}"
        );
    }
    let report = fresh.fsck(FsckOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_two_dimensional_edits_commit_slab_by_slab() {
    let settings = RepositorySettings {
        shard_target_refs: 256,
        ..RepositorySettings::default()
    };
    let (_dir, repo) = tempdir_repo(settings).await;
    let (rows, cols) = (300u64, 400u64);
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&floe::NodePath::root(), Map::new())
        .await
        .unwrap();
    s.create_array(&p("m"), int32_array(&[rows, cols], &[1, 1]))
        .await
        .unwrap();
    let mut model = BTreeMap::new();
    let mut state = 7u64;
    for step in 0..80_000u64 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let (r, c) = ((state >> 20) % rows, (state >> 40) % cols);
        let bytes = Bytes::from(step.to_le_bytes().to_vec());
        s.set_chunk(&p("m"), &[r, c], bytes.clone()).await.unwrap();
        model.insert((r, c), bytes);
    }
    s.commit("random", None).await.unwrap();
    let main = repo
        .readonly_session(&VersionSpec::parse("main").unwrap())
        .await
        .unwrap();
    assert_eq!(main.list_chunks(&p("m")).await.unwrap().len(), model.len());
    for ((r, c), bytes) in model.iter().step_by(13) {
        assert_eq!(
            main.get_chunk(&p("m"), &[*r, *c]).await.unwrap().as_ref(),
            Some(bytes)
        );
    }
    let report = repo.fsck(FsckOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}
