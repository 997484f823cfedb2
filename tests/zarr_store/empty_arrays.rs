//! Arrays with a chunk size of 0 along an empty dimension, as zarr-python 3.1 writes them
//! (`zarr.create_array(shape=(0,), chunks=(0,))`), and the root prefix spelled `"/"`, as
//! zarr-python's stateful hierarchy test asks for it (`store.is_empty("/")`).

use bytes::Bytes;
use floe::{ChunkShapeRequest, DecodedChunkCache, Error, RechunkedStore, ZarrStore};
use serde_json::{json, Value};

use super::common::{filled, p, tempdir_repo};
use super::{array, doc, get_json, group, hierarchy, settings};

/// An array document of `shape` in `chunks`, default `/` encoding.
fn regular(shape: &[u64], chunks: &[u64]) -> Value {
    array(shape, chunks, "default", "/")
}

fn chunk_shape(document: &Value) -> &Value {
    &document["chunk_grid"]["configuration"]["chunk_shape"]
}

fn is_invalid_key<T: std::fmt::Debug>(result: floe::Result<T>) -> bool {
    matches!(result, Err(Error::InvalidKey { .. }))
}

#[tokio::test]
async fn empty_arrays_with_zero_chunk_sizes_are_created_listed_read_and_deleted() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let s = repo.writable_session("main").await.unwrap();
    let z = s.zarr();
    z.set("zarr.json", doc(&group(json!({})))).await.unwrap();
    z.set("e/zarr.json", doc(&regular(&[0], &[0])))
        .await
        .unwrap();
    z.set("m/zarr.json", doc(&array(&[0, 3], &[0, 3], "v2", ".")))
        .await
        .unwrap();
    // No chunk key names anything: every coordinate is outside the (empty) grid.
    for key in ["e/c/0", "m/0.0", "m/1.0"] {
        assert!(
            is_invalid_key(z.set(key, filled(4, 1)).await),
            "{key} accepted"
        );
        assert_eq!(z.get(key).await.unwrap(), None, "{key}");
        assert_eq!(z.size(key).await.unwrap(), None, "{key}");
        z.delete(key).await.unwrap();
    }
    let stats = s.array_stats(&p("m")).await.unwrap();
    assert_eq!((stats.chunks_total, stats.chunks_initialized), (0, 0));
    let id = s.commit("empty arrays", None).await.unwrap();

    let ro = repo.session_at_snapshot(id).await.unwrap().zarr();
    assert_eq!(
        ro.list().await.unwrap(),
        vec!["e/zarr.json", "m/zarr.json", "zarr.json"]
    );
    assert_eq!(ro.list_prefix("e/").await.unwrap(), vec!["e/zarr.json"]);
    assert_eq!(
        ro.list_dir("m/").await.unwrap(),
        (vec!["m/zarr.json".to_string()], vec![])
    );
    assert!(ro.is_empty("e/c/").await.unwrap());
    let served = get_json(&ro, "m/zarr.json").await;
    assert_eq!(served["shape"], json!([0, 3]));
    assert_eq!(chunk_shape(&served), &json!([0, 3]));
    // The consolidated root describes them as stored.
    let root = get_json(&ro, "zarr.json").await;
    let entry = &root["consolidated_metadata"]["metadata"]["e"];
    assert_eq!(chunk_shape(entry), &json!([0]));

    // Deleting them goes through like any array.
    z.delete("m/zarr.json").await.unwrap();
    z.delete_prefix("e/").await.unwrap();
    assert_eq!(z.list().await.unwrap(), vec!["zarr.json"]);
    let id = s.commit("deleted", None).await.unwrap();
    let ro = repo.session_at_snapshot(id).await.unwrap().zarr();
    assert_eq!(ro.list().await.unwrap(), vec!["zarr.json"]);
}

#[tokio::test]
async fn empty_arrays_grow_only_with_a_positive_chunk_size() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let s = repo.writable_session("main").await.unwrap();
    let z = s.zarr();
    z.set("e/zarr.json", doc(&regular(&[0], &[0])))
        .await
        .unwrap();
    s.commit("empty", None).await.unwrap();
    // zarr-python's `resize` divides by the chunk size of 0 and fails; floe refuses it with
    // the reason, whether as a resize or as a new document.
    let refused = |result: floe::Result<()>| match result {
        Err(Error::InvalidMetadata { path, reason }) => {
            assert_eq!(path, "e");
            assert!(
                reason.contains("dimension 0 is 0") && reason.contains("positive chunk size"),
                "{reason}"
            );
        }
        other => panic!("not refused: {other:?}"),
    };
    refused(s.resize_array(&p("e"), &[5]).await);
    refused(z.set("e/zarr.json", doc(&regular(&[5], &[0]))).await);
    assert_eq!(chunk_shape(&get_json(&z, "e/zarr.json").await), &json!([0]));
    // With a positive chunk size in the same document it grows and takes chunks.
    z.set("e/zarr.json", doc(&regular(&[5], &[2])))
        .await
        .unwrap();
    for i in 0..3u8 {
        z.set(&format!("e/c/{i}"), filled(2, i)).await.unwrap();
    }
    let id = s.commit("grown", None).await.unwrap();
    let ro = repo.session_at_snapshot(id).await.unwrap().zarr();
    assert_eq!(
        ro.list_prefix("e/").await.unwrap(),
        vec!["e/c/0", "e/c/1", "e/c/2", "e/zarr.json"]
    );
    assert_eq!(ro.get("e/c/2").await.unwrap(), Some(filled(2, 2)));
    // Emptied again with a chunk size of 0: every chunk goes, before and after the commit.
    z.set("e/zarr.json", doc(&regular(&[0], &[0])))
        .await
        .unwrap();
    assert_eq!(z.list_prefix("e/").await.unwrap(), vec!["e/zarr.json"]);
    let id = s.commit("emptied", None).await.unwrap();
    let ro = repo.session_at_snapshot(id).await.unwrap().zarr();
    assert_eq!(ro.list_prefix("e/").await.unwrap(), vec!["e/zarr.json"]);
    assert_eq!(ro.get("e/c/0").await.unwrap(), None);
    let stats = ro.session().array_stats(&p("e")).await.unwrap();
    assert_eq!((stats.chunks_total, stats.chunks_initialized), (0, 0));
}

#[tokio::test]
async fn a_rechunked_view_of_an_empty_array_has_no_chunks() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let s = repo.writable_session("main").await.unwrap();
    let z = s.zarr();
    z.set("m/zarr.json", doc(&regular(&[0, 3], &[0, 3])))
        .await
        .unwrap();
    let id = s.commit("empty", None).await.unwrap();
    let ro = repo.session_at_snapshot(id).await.unwrap().zarr();
    let request = ChunkShapeRequest::parse("m=4,2").unwrap();
    let view = RechunkedStore::new(ro, &request, DecodedChunkCache::default()).unwrap();
    let document: Value =
        serde_json::from_slice(&view.get("m/zarr.json").await.unwrap().unwrap()).unwrap();
    assert_eq!(chunk_shape(&document), &json!([4, 2]));
    assert_eq!(view.list_prefix("m/").await.unwrap(), vec!["m/zarr.json"]);
    assert_eq!(view.get("m/c/0/0").await.unwrap(), None);
}

/// `(keys, prefixes)` of a listing, owned.
type Dir = (Vec<String>, Vec<String>);

async fn listings(z: &ZarrStore, prefix: &str) -> (Vec<String>, Dir, bool, u64) {
    (
        z.list_prefix(prefix).await.unwrap(),
        z.list_dir(prefix).await.unwrap(),
        z.is_empty(prefix).await.unwrap(),
        z.size_prefix(prefix).await.unwrap(),
    )
}

#[tokio::test]
async fn a_lone_slash_is_the_root_prefix() {
    let (_dir, repo, s, id) = hierarchy().await;
    let ro = repo.session_at_snapshot(id).await.unwrap().zarr();
    let root = listings(&ro, "").await;
    assert!(!root.2 && root.0.len() == 9);
    assert_eq!(listings(&ro, "/").await, root);
    // `is_empty` looks inside arrays' key spaces too.
    assert!(!ro.is_empty("g/a/c/1/").await.unwrap());
    assert!(ro.is_empty("g/a/c/2/").await.unwrap());
    assert!(ro.is_empty("x/").await.unwrap());
    // Through a rechunked view too.
    let request = ChunkShapeRequest::parse("g/a=1,1").unwrap();
    let view = RechunkedStore::new(ro.clone(), &request, DecodedChunkCache::default()).unwrap();
    assert_eq!(
        view.list_prefix("/").await.unwrap(),
        view.list_prefix("").await.unwrap()
    );
    assert_eq!(
        view.list_dir("/").await.unwrap(),
        view.list_dir("").await.unwrap()
    );
    // Any other leading slash stays malformed, like keys starting with `/`.
    for bad in ["/g/", "//", "/g/a/c/"] {
        assert!(is_invalid_key(ro.list_prefix(bad).await), "{bad}");
        assert!(is_invalid_key(ro.list_dir(bad).await), "{bad}");
        assert!(is_invalid_key(ro.is_empty(bad).await), "{bad}");
        assert!(is_invalid_key(view.list_prefix(bad).await), "{bad}");
        assert!(is_invalid_key(s.zarr().delete_prefix(bad).await), "{bad}");
    }
    // zarr-python's stateful test: clear the store, it is empty at "/"; create the root group,
    // it is not.
    let z = s.zarr();
    z.delete_prefix("/").await.unwrap();
    assert!(z.is_empty("/").await.unwrap());
    assert!(z.list().await.unwrap().is_empty());
    z.set("zarr.json", doc(&group(json!({})))).await.unwrap();
    assert!(!z.is_empty("/").await.unwrap());
    z.set("a/zarr.json", doc(&regular(&[4], &[2])))
        .await
        .unwrap();
    z.set("a/c/1", Bytes::from_static(b"xy")).await.unwrap();
    let id = s.commit("cleared and recreated", None).await.unwrap();
    let ro = repo.session_at_snapshot(id).await.unwrap().zarr();
    assert_eq!(
        ro.list_prefix("/").await.unwrap(),
        vec!["a/c/1", "a/zarr.json", "zarr.json"]
    );
}
