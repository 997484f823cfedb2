//! Rechunked views under hostile or unusual requests: a rectilinear root array, listings that
//! would enumerate millions of view chunks, stored chunks declared far larger than their array,
//! and view parameters smuggled through percent-encoding.

mod common;

use bytes::Bytes;
use common::{memory_repo, p};
use floe::{ChunkShapeRequest, DecodedChunkCache, Error, RechunkedStore, ZarrStore};
use serde_json::{json, Value};

fn uint8_rectilinear(shape: u64, edges: Value) -> Value {
    json!({"zarr_format": 3, "node_type": "array", "shape": [shape], "data_type": "uint8",
        "chunk_grid": {"name": "rectilinear",
            "configuration": {"kind": "inline", "chunk_shapes": [edges]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0, "codecs": [{"name": "bytes"}]})
}

#[tokio::test]
async fn a_rectilinear_root_array_is_served_on_the_regular_grid_of_its_chunks() {
    let (repo, _) = memory_repo().await;
    let s = repo.writable_session("main").await.unwrap();
    s.create_array(&p(""), uint8_rectilinear(5, json!([3, 2])))
        .await
        .unwrap();
    s.set_chunk(&p(""), &[0], Bytes::from_static(&[1, 2, 3]))
        .await
        .unwrap();
    s.set_chunk(&p(""), &[1], Bytes::from_static(&[4, 5]))
        .await
        .unwrap();
    let id = s.commit("root array", None).await.unwrap();
    let store = ZarrStore::new(repo.session_at_snapshot(id).await.unwrap()).with_consolidated(true);
    let view = RechunkedStore::with_regular_grids(store, None, DecodedChunkCache::default())
        .unwrap()
        .expect("a rectilinear array gets a view");
    let meta: Value =
        serde_json::from_slice(&view.get("zarr.json").await.unwrap().unwrap()).unwrap();
    assert_eq!(meta["chunk_grid"]["name"], "regular", "{meta}");
    assert_eq!(
        meta["chunk_grid"]["configuration"]["chunk_shape"],
        json!([3])
    );
    // The keys follow that grid: chunk 1 holds elements 3..6, the last one past the end.
    assert_eq!(
        view.get("c/1").await.unwrap().unwrap(),
        Bytes::from_static(&[4, 5, 0])
    );
}

#[tokio::test]
async fn listings_refuse_to_enumerate_millions_of_view_chunks() {
    let (repo, _) = memory_repo().await;
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&floe::NodePath::root(), Default::default())
        .await
        .unwrap();
    s.create_array(&p("a"), common::uint8_array(&[4096, 4096], &[4096, 4096]))
        .await
        .unwrap();
    s.set_chunk(&p("a"), &[0, 0], Bytes::from(vec![7u8; 4096 * 4096]))
        .await
        .unwrap();
    let id = s.commit("one big chunk", None).await.unwrap();
    let store = ZarrStore::new(repo.session_at_snapshot(id).await.unwrap()).with_consolidated(true);
    let request = ChunkShapeRequest::parse("a=1,1").unwrap();
    let view = RechunkedStore::new(store, &request, DecodedChunkCache::default()).unwrap();
    // Levels above the array never enumerate its chunks.
    let (keys, prefixes) = view.list_dir("").await.unwrap();
    assert_eq!(keys, vec!["zarr.json".to_string()]);
    assert_eq!(prefixes, vec!["a/".to_string()]);
    // Its chunk level would hold 16.8 million keys: refused with the reason.
    match view.list_dir("a/c/").await {
        Err(Error::InvalidRechunk { reason, .. }) => {
            assert!(reason.contains("view chunks"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(matches!(
        view.list().await,
        Err(Error::InvalidRechunk { .. })
    ));
    // Single keys still work.
    assert_eq!(
        view.get("a/c/4095/4095").await.unwrap().unwrap(),
        Bytes::from_static(&[7])
    );
}

#[tokio::test]
async fn a_stored_chunk_declared_past_any_limit_is_not_decoded() {
    let (repo, _) = memory_repo().await;
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&floe::NodePath::root(), Default::default())
        .await
        .unwrap();
    // One chunk declared 10^12 elements long for an array of 10.
    s.create_array(
        &p("a"),
        uint8_rectilinear(10, json!([1_000_000_000_000u64])),
    )
    .await
    .unwrap();
    s.set_chunk(&p("a"), &[0], Bytes::from(vec![1u8; 10]))
        .await
        .unwrap();
    let id = s.commit("huge edge", None).await.unwrap();
    let store = ZarrStore::new(repo.session_at_snapshot(id).await.unwrap()).with_consolidated(true);
    let request = ChunkShapeRequest::parse("a=10").unwrap();
    let view = RechunkedStore::new(store, &request, DecodedChunkCache::default()).unwrap();
    match view.get("a/c/0").await {
        Err(Error::InvalidRechunk { reason, .. }) => {
            assert!(reason.contains("would decode to more than"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[cfg(feature = "server")]
mod http {
    use super::*;
    use common::http::{get, TestServer};

    #[tokio::test]
    async fn view_parameters_are_decoded_once_and_encoded_semicolons_never_split_them() {
        let (repo, _) = memory_repo().await;
        let s = repo.writable_session("main").await.unwrap();
        s.create_group(&floe::NodePath::root(), Default::default())
            .await
            .unwrap();
        s.create_group(&p("g"), Default::default()).await.unwrap();
        s.create_array(&p("g/t"), common::uint8_array(&[8], &[4]))
            .await
            .unwrap();
        s.commit("nested", None).await.unwrap();
        let server = TestServer::start(repo).await;
        // Decoded once: `%2F` names the nested array...
        let ok = get(&server, "/main;chunks=g%2Ft=2/g/t/zarr.json", &[]).await;
        assert_eq!(ok.status.as_u16(), 200, "{}", ok.text());
        // ...and `%252F` is the text `g%2Ft`, not a second decoding into `g/t`.
        let twice = get(&server, "/main;chunks=g%252Ft=2/g/t/zarr.json", &[]).await;
        assert_eq!(twice.status.as_u16(), 400, "{}", twice.text());
        // An encoded `;` cannot smuggle in another parameter or split the version.
        for path in [
            "/main;chunks=g%2Ft=2%3Bgrid=native/g/t/zarr.json",
            "/main%3Bgrid=native/g/t/zarr.json",
        ] {
            let refused = get(&server, path, &[]).await;
            assert_eq!(refused.status.as_u16(), 400, "{path}: {}", refused.text());
        }
        // A header naming the same arrays in another order asks for the same view.
        let both = get(
            &server,
            "/main;chunks=g%2Ft=2/g/t/zarr.json",
            &[("chunks", "/g/t=2")],
        )
        .await;
        assert_eq!(both.status.as_u16(), 200, "{}", both.text());
        server.stop().await;
    }
}
