//! A chunk write whose future is dropped (a caller's timeout), or a pack upload that never
//! finishes, must not wedge the session: the commit sends the upload again and everything
//! lands.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use floe::{Fault, FaultRule, FaultyStorage, NodePath, Repository, RepositorySettings, StorageOp};

#[tokio::test]
async fn a_cancelled_pack_upload_is_redone_at_commit() {
    let storage = Arc::new(FaultyStorage::new(
        floe::open_storage("memory://", &vec![]).unwrap(),
        0,
    ));
    // The first plain write of a chunk object never completes.
    storage.add_rule(
        FaultRule::new(Fault::Hang)
            .ops(&[StorageOp::Put])
            .prefix("chunks/")
            .nth(1),
    );
    let settings = RepositorySettings {
        pack_target_bytes: 1000,
        upload_hedge_after: Duration::from_millis(100),
        ..RepositorySettings::default()
    };
    let repo = Repository::init(storage, settings).await.unwrap();
    let a = NodePath::new("a").unwrap();
    let s = repo.writable_session("main").await.unwrap();
    s.create_array(
        &a,
        serde_json::json!({
            "zarr_format": 3, "node_type": "array", "shape": [4], "data_type": "uint8",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1]}},
            "chunk_key_encoding": {"name": "default"}, "fill_value": 0,
            "codecs": [{"name": "bytes"}]
        }),
    )
    .await
    .unwrap();
    let chunk = |i: u8| Bytes::from(vec![i; 600]);
    s.set_chunk(&a, &[0], chunk(0)).await.unwrap();
    // This write seals the first pack, whose upload (in the background) hangs; the caller
    // gives up on the write or not, depending on timing.
    let _ = tokio::time::timeout(Duration::from_millis(50), s.set_chunk(&a, &[1], chunk(1))).await;
    // The chunk it recorded before uploading is readable from memory, and a commit works: it
    // sends the hung upload again after `upload_hedge_after`.
    assert_eq!(s.get_chunk(&a, &[0]).await.unwrap().unwrap(), chunk(0));
    s.set_chunk(&a, &[2], chunk(2)).await.unwrap();
    let id = s.commit("after a cancelled upload", None).await.unwrap();
    let r = repo.session_at_snapshot(id).await.unwrap();
    assert_eq!(r.get_chunk(&a, &[0]).await.unwrap().unwrap(), chunk(0));
    assert_eq!(r.get_chunk(&a, &[2]).await.unwrap().unwrap(), chunk(2));
    // Chunk 1's write was cancelled before it was recorded, or after: either way it reads
    // back whole or not at all.
    match r.get_chunk(&a, &[1]).await.unwrap() {
        None => {}
        Some(bytes) => assert_eq!(bytes, chunk(1)),
    }
}
