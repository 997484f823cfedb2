//! GC behaviour only reachable from inside the crate: a ref move that raced the run that
//! condemned its snapshot (written without the guard, as a move that read the GC record just
//! before the run wrote it would be).

use std::time::Duration;

use bytes::Bytes;
use serde_json::json;

use super::GcOptions;
use crate::format::lifecycle::GcObject;
use crate::repo::history::refs::AdvanceOutcome;
use crate::repo::{Repository, RepositorySettings};
use crate::storage::open_storage;
use crate::NodePath;

fn path(p: &str) -> NodePath {
    NodePath::new(p).unwrap()
}

#[tokio::test]
async fn a_ref_move_that_raced_the_condemning_run_spares_what_it_reaches() {
    let settings = RepositorySettings {
        inline_threshold: 0,
        single_object_threshold: 0,
        ..RepositorySettings::default()
    };
    let repo = Repository::init(open_storage("memory://", &vec![]).unwrap(), settings)
        .await
        .unwrap();
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&NodePath::root(), Default::default())
        .await
        .unwrap();
    let metadata = json!({
        "zarr_format": 3, "node_type": "array", "shape": [8], "data_type": "uint8",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [4]}},
        "chunk_key_encoding": {"name": "default"}, "fill_value": 0,
        "codecs": [{"name": "bytes"}]
    });
    s.create_array(&path("a"), metadata).await.unwrap();
    s.set_chunk(&path("a"), &[0], Bytes::from_static(b"mainmain"))
        .await
        .unwrap();
    let c1 = s.commit("c1", None).await.unwrap();
    repo.create_branch("dev", c1).await.unwrap();
    let dev = repo.writable_session("dev").await.unwrap();
    dev.set_chunk(&path("a"), &[1], Bytes::from_static(b"dev-only"))
        .await
        .unwrap();
    let d1 = dev.commit("d1", None).await.unwrap();
    repo.reset_branch("dev", c1).await.unwrap();

    let grace = GcOptions {
        grace: Duration::from_secs(1),
        ..GcOptions::default()
    };
    let first = repo.gc(&grace).await.unwrap();
    let condemned: Vec<GcObject> = first.condemned.iter().map(|e| e.object).collect();
    assert!(condemned.contains(&GcObject::Snapshot(d1)));
    assert_eq!(
        condemned
            .iter()
            .filter(|o| matches!(o, GcObject::Chunks(_)))
            .count(),
        1
    );
    // The move that raced the run: written as if its check had read the record before it.
    assert!(matches!(
        repo.try_advance_branch("late", 0, Some(d1), None)
            .await
            .unwrap(),
        AdvanceOutcome::Landed
    ));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = repo.gc(&grace).await.unwrap();
    assert!(second.deleted.is_empty(), "{:?}", second.deleted);
    let spared: Vec<GcObject> = second.spared.iter().map(|e| e.object).collect();
    assert_eq!(spared.len(), condemned.len(), "{spared:?}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let third = repo.gc(&grace).await.unwrap();
    assert!(third.deleted.is_empty() && third.condemned.is_empty());
    let fresh = Repository::open(repo.storage().clone(), RepositorySettings::default())
        .await
        .unwrap();
    let late = fresh.session_at_snapshot(d1).await.unwrap();
    assert_eq!(
        late.get_chunk(&path("a"), &[1]).await.unwrap(),
        Some(Bytes::from_static(b"dev-only"))
    );
    assert!(fresh.fsck(Default::default()).await.unwrap().is_clean());
}
