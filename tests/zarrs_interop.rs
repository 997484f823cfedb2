//! zarrs (a Zarr client nobody here wrote) reading and writing floe sessions through the
//! storage adapters, checked against the same arrays written by zarrs to a plain filesystem
//! store: same element values, same keys, same encoded chunk bytes.

mod common;

use std::collections::BTreeSet;
use std::num::NonZeroU64;
use std::sync::Arc;

use common::{runtime, tempdir_repo};
use floe::{AsyncZarrsStore, Repository, RepositorySettings, SyncZarrsStore, VersionSpec};
use serde_json::{json, Value};
use zarrs::array::chunk_key_encoding::{DefaultChunkKeyEncoding, V2ChunkKeyEncoding};
use zarrs::array::codec::{Crc32cCodec, GzipCodec, ShardingCodecBuilder, ZstdCodec};
use zarrs::array::{data_type, Array, ArrayBuilder};
use zarrs::filesystem::FilesystemStore;
use zarrs::group::{Group, GroupBuilder};
use zarrs::storage::{
    ListableStorageTraits, ReadableStorageTraits, ReadableWritableListableStorageTraits, StoreKey,
    StorePrefix, WritableStorageTraits,
};

const SHAPE: [u64; 2] = [20, 30];

fn settings() -> RepositorySettings {
    // Small thresholds so the chunks below land inline, in packs and in objects of their own.
    RepositorySettings {
        inline_threshold: 64,
        single_object_threshold: 200,
        ..RepositorySettings::default()
    }
}

fn values() -> Vec<u16> {
    // Rows 12.. stay at the fill value, so zarrs erases (never writes) those chunks.
    (0..SHAPE[0] * SHAPE[1])
        .map(|i| {
            if i / SHAPE[1] >= 12 {
                0
            } else {
                (i * 7 % 1000) as u16 + 1
            }
        })
        .collect()
}

/// The arrays under test: name and builder (codecs, chunk key encoding).
fn cases() -> Vec<(&'static str, ArrayBuilder)> {
    let new = || ArrayBuilder::new(SHAPE.to_vec(), vec![8, 8], data_type::uint16(), 0u16);
    let mut out = Vec::new();
    out.push(("plain", new()));
    let mut b = new();
    b.bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(3, false))])
        .chunk_key_encoding(DefaultChunkKeyEncoding::new_dot());
    out.push(("zstd_dot", b));
    let mut b = new();
    b.bytes_to_bytes_codecs(vec![Arc::new(GzipCodec::new(5).unwrap())])
        .chunk_key_encoding(V2ChunkKeyEncoding::new_dot());
    out.push(("gzip_v2", b));
    let mut b = new();
    b.bytes_to_bytes_codecs(vec![Arc::new(Crc32cCodec::new())]);
    out.push(("crc32c", b));
    let mut b = ArrayBuilder::new(SHAPE.to_vec(), vec![8, 16], data_type::uint16(), 0u16);
    b.array_to_bytes_codec(Arc::new(
        ShardingCodecBuilder::new(vec![NonZeroU64::new(4).unwrap(); 2], &data_type::uint16())
            .bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(1, true))])
            .build(),
    ));
    out.push(("sharded", b));
    let mut b = ArrayBuilder::new(SHAPE.to_vec(), vec![10, 10], data_type::uint16(), 0u16);
    b.subchunk_shape(vec![5, 5])
        .chunk_key_encoding(V2ChunkKeyEncoding::new_slash());
    out.push(("sharded_v2", b));
    out
}

/// Writes the root group and every case array through zarrs' sync API: whole array, then a
/// partial overwrite (read-modify-write of touched chunks), then one chunk erased.
fn write_sync<S: ReadableWritableListableStorageTraits + ?Sized + 'static>(store: Arc<S>) {
    let mut root = GroupBuilder::new().build(store.clone(), "/").unwrap();
    root.attributes_mut()
        .insert("title".into(), json!("interop"));
    root.store_metadata().unwrap();
    for (name, builder) in cases() {
        let array = builder.build(store.clone(), &format!("/{name}")).unwrap();
        array.store_metadata().unwrap();
        array
            .store_array_subset(&[0..SHAPE[0], 0..SHAPE[1]], values())
            .unwrap();
        array
            .store_array_subset(&[3..5, 5..9], vec![9999u16; 8])
            .unwrap();
        array.erase_chunk(&[0, 0]).unwrap();
    }
}

/// The values after the writes of [`write_sync`], for an array with chunks of `chunk` shape
/// (the erased chunk [0, 0] reads as the fill value).
fn expected(chunk: [u64; 2]) -> Vec<u16> {
    let mut v = values();
    for r in 3..5 {
        for c in 5..9 {
            v[(r * SHAPE[1] + c) as usize] = 9999;
        }
    }
    for r in 0..chunk[0] {
        for c in 0..chunk[1] {
            v[(r * SHAPE[1] + c) as usize] = 0;
        }
    }
    v
}

fn chunk_of(name: &str) -> [u64; 2] {
    match name {
        "sharded" => [8, 16],
        "sharded_v2" => [10, 10],
        _ => [8, 8],
    }
}

/// Element values through zarrs, per case.
fn read_sync<S: ReadableStorageTraits + ?Sized + 'static>(
    store: Arc<S>,
) -> Vec<(String, Vec<u16>)> {
    cases()
        .into_iter()
        .map(|(name, _)| {
            let array = Array::open(store.clone(), &format!("/{name}")).unwrap();
            let data: Vec<u16> = array.retrieve_array_subset(&array.subset_all()).unwrap();
            (name.to_string(), data)
        })
        .collect()
}

/// Every key under each case array with its bytes (metadata parsed as JSON, chunks raw).
fn raw_contents<S: ReadableStorageTraits + ListableStorageTraits + ?Sized>(
    store: &S,
) -> Vec<(String, Result<Value, Vec<u8>>)> {
    let mut out = Vec::new();
    for (name, _) in cases() {
        for key in store
            .list_prefix(&StorePrefix::new(format!("{name}/")).unwrap())
            .unwrap()
        {
            let bytes = store.get(&key).unwrap().unwrap();
            assert_eq!(
                store.size_key(&key).unwrap(),
                Some(bytes.len() as u64),
                "{key}"
            );
            let content = if key.as_str().ends_with("zarr.json") {
                Ok(serde_json::from_slice(&bytes).unwrap())
            } else {
                Err(bytes.to_vec())
            };
            out.push((key.as_str().to_string(), content));
        }
    }
    out
}

fn reference_store() -> (tempfile::TempDir, Arc<FilesystemStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FilesystemStore::new(dir.path()).unwrap());
    write_sync(store.clone());
    (dir, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_adapter_round_trips_every_codec_and_encoding() {
    let (_ref_dir, reference) = reference_store();
    let (dir, repo) = tempdir_repo(settings()).await;
    let location = dir.path().to_str().unwrap().to_string();
    let session = repo.writable_session("main").await.unwrap();

    // Called from a runtime worker: the adapter uses block_in_place.
    let writable = Arc::new(SyncZarrsStore::new(
        session.zarr(),
        tokio::runtime::Handle::current(),
    ));
    write_sync(writable.clone());
    // Uncommitted data already reads back through zarrs.
    for (name, data) in read_sync(writable.clone()) {
        assert_eq!(data, expected(chunk_of(&name)), "{name} before commit");
    }
    let id = session.commit("written by zarrs", None).await.unwrap();

    // Reopen the repository and read the snapshot from plain threads with an owned runtime.
    let reopened = Repository::open_location(&location, &vec![]).await.unwrap();
    let ro = reopened
        .readonly_session(&VersionSpec::Snapshot(id))
        .await
        .unwrap();
    let reference_for_thread = reference.clone();
    let (ours, theirs, floe_raw, ref_raw) = std::thread::spawn(move || {
        let floe_store = Arc::new(SyncZarrsStore::with_own_runtime(ro.zarr()).unwrap());
        (
            read_sync(floe_store.clone()),
            read_sync(reference_for_thread.clone()),
            raw_contents(floe_store.as_ref()),
            raw_contents(reference_for_thread.as_ref()),
        )
    })
    .join()
    .unwrap();
    for ((name, data), (_, reference_data)) in ours.iter().zip(&theirs) {
        assert_eq!(data, &expected(chunk_of(name)), "{name} after commit");
        assert_eq!(data, reference_data, "{name} vs filesystem store");
    }
    let floe_keys: Vec<&String> = floe_raw.iter().map(|(k, _)| k).collect();
    let ref_keys: Vec<&String> = ref_raw.iter().map(|(k, _)| k).collect();
    assert_eq!(floe_keys, ref_keys, "same keys as the filesystem store");
    assert!(floe_keys.iter().any(|k| k.as_str() == "zstd_dot/c.1.2"));
    assert!(floe_keys.iter().any(|k| k.as_str() == "gzip_v2/1.2"));
    assert!(floe_keys.iter().any(|k| k.as_str() == "sharded_v2/1/2"));
    assert!(
        !floe_keys.iter().any(|k| k.as_str() == "plain/c/0/0"),
        "erased chunk"
    );
    assert!(
        !floe_keys.iter().any(|k| k.as_str() == "plain/c/2/0"),
        "fill-value chunk never written"
    );
    for ((key, ours), (_, theirs)) in floe_raw.iter().zip(&ref_raw) {
        assert_eq!(ours, theirs, "{key}: identical bytes");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_adapter_round_trips_through_zarrs_async_api() {
    let (_ref_dir, reference) = reference_store();
    let (_dir, repo) = tempdir_repo(settings()).await;
    let session = repo.writable_session("main").await.unwrap();
    let store = Arc::new(AsyncZarrsStore::new(session.zarr()));
    let root = GroupBuilder::new().build(store.clone(), "/").unwrap();
    root.async_store_metadata().await.unwrap();
    for (name, builder) in cases() {
        let array = builder.build(store.clone(), &format!("/{name}")).unwrap();
        array.async_store_metadata().await.unwrap();
        array
            .async_store_array_subset(&[0..SHAPE[0], 0..SHAPE[1]], values())
            .await
            .unwrap();
        array
            .async_store_array_subset(&[3..5, 5..9], vec![9999u16; 8])
            .await
            .unwrap();
        array.async_erase_chunk(&[0, 0]).await.unwrap();
    }
    let id = session
        .commit("written by async zarrs", None)
        .await
        .unwrap();

    let ro = Arc::new(AsyncZarrsStore::new(
        repo.session_at_snapshot(id).await.unwrap().zarr(),
    ));
    let sync_ro = SyncZarrsStore::new(ro.store().clone(), tokio::runtime::Handle::current());
    for (name, _) in cases() {
        let array = Array::async_open(ro.clone(), &format!("/{name}"))
            .await
            .unwrap();
        let data: Vec<u16> = array
            .async_retrieve_array_subset(&array.subset_all())
            .await
            .unwrap();
        let expected = expected(chunk_of(name));
        assert_eq!(data, expected, "{name}");
        // A sub-region read (partial decoding of shards uses ranged reads).
        let part: Vec<u16> = array
            .async_retrieve_array_subset(&[2..7, 4..11])
            .await
            .unwrap();
        let want: Vec<u16> = (2..7u64)
            .flat_map(|r| {
                (4..11u64)
                    .map(|c| expected[(r * SHAPE[1] + c) as usize])
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(part, want, "{name} subset");
    }
    assert_eq!(raw_contents(&sync_ro), raw_contents(reference.as_ref()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_hierarchy_and_attributes_read_back_through_zarrs() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let session = repo.writable_session("main").await.unwrap();
    let store = Arc::new(SyncZarrsStore::new(
        session.zarr(),
        tokio::runtime::Handle::current(),
    ));
    let attrs = |v: Value| v.as_object().unwrap().clone();
    let mut root = GroupBuilder::new().build(store.clone(), "/").unwrap();
    *root.attributes_mut() = attrs(json!({"title": "forecast", "version": 2}));
    root.store_metadata().unwrap();
    let mut g = GroupBuilder::new()
        .build(store.clone(), "/weather")
        .unwrap();
    *g.attributes_mut() = attrs(json!({"source": "model-x", "levels": [1000, 850, 500]}));
    g.store_metadata().unwrap();
    GroupBuilder::new()
        .build(store.clone(), "/weather/surface")
        .unwrap()
        .store_metadata()
        .unwrap();
    let mut t = ArrayBuilder::new(vec![4, 4], vec![2, 2], data_type::float32(), f32::NAN);
    t.attributes(attrs(json!({"units": "K"})));
    let t = t.build(store.clone(), "/weather/surface/t2m").unwrap();
    t.store_metadata().unwrap();
    t.store_array_subset(&[0..2, 0..4], vec![280.5f32; 8])
        .unwrap();
    ArrayBuilder::new(vec![3], vec![3], data_type::uint16(), 0u16)
        .build(store.clone(), "/weather/time")
        .unwrap()
        .store_metadata()
        .unwrap();
    let id = session.commit("hierarchy", None).await.unwrap();

    let expected_paths: BTreeSet<String> = [
        "/weather",
        "/weather/surface",
        "/weather/surface/t2m",
        "/weather/time",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let ro_session = repo.session_at_snapshot(id).await.unwrap();
    for consolidated in [true, false] {
        let ro = Arc::new(SyncZarrsStore::new(
            ro_session.zarr().with_consolidated(consolidated),
            tokio::runtime::Handle::current(),
        ));
        let root = Group::open(ro.clone(), "/").unwrap();
        assert_eq!(root.attributes()["title"], "forecast");
        assert_eq!(root.consolidated_metadata().is_some(), consolidated);
        let paths: BTreeSet<String> = root
            .traverse()
            .unwrap()
            .into_iter()
            .map(|(p, _)| p.as_str().to_string())
            .collect();
        assert_eq!(paths, expected_paths, "consolidated={consolidated}");
        let g = Group::open(ro.clone(), "/weather").unwrap();
        assert_eq!(g.attributes()["levels"], json!([1000, 850, 500]));
        let mut children: Vec<String> = g
            .child_paths()
            .unwrap()
            .iter()
            .map(|p| p.as_str().to_string())
            .collect();
        children.sort();
        assert_eq!(children, vec!["/weather/surface", "/weather/time"]);
        let t = Array::open(ro.clone(), "/weather/surface/t2m").unwrap();
        assert_eq!(t.attributes()["units"], "K");
        let data: Vec<f32> = t.retrieve_array_subset(&[0..4, 0..4]).unwrap();
        assert!(data[..8].iter().all(|&x| x == 280.5));
        assert!(data[8..].iter().all(|x| x.is_nan()));
    }
}

/// zarr-python 3.1 writes empty arrays with a chunk size of 0 (`shape=(0, 3), chunks=(0, 3)`),
/// which zarrs' regular grid refuses; the adapters hand zarrs a chunk size of 1 there (the same
/// array: no element, no chunk), so zarrs opens, reads and grows them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zarrs_opens_empty_arrays_written_by_zarr_python() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let session = repo.writable_session("main").await.unwrap();
    let z = session.zarr();
    let document = |shape: &[u64], chunks: &[u64]| {
        bytes::Bytes::from(
            json!({"zarr_format": 3, "node_type": "array", "shape": shape,
                "data_type": "int32",
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunks}},
                "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
                "fill_value": 0,
                "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}]})
            .to_string(),
        )
    };
    z.set(
        "zarr.json",
        bytes::Bytes::from_static(br#"{"zarr_format":3,"node_type":"group"}"#),
    )
    .await
    .unwrap();
    z.set("e/zarr.json", document(&[0], &[0])).await.unwrap();
    z.set("m/zarr.json", document(&[0, 3], &[0, 3]))
        .await
        .unwrap();
    let id = session.commit("empty arrays", None).await.unwrap();

    let ro_session = repo.session_at_snapshot(id).await.unwrap();
    let ro = Arc::new(AsyncZarrsStore::new(ro_session.zarr()));
    let root = Group::async_open(ro.clone(), "/").await.unwrap();
    let mut paths: Vec<String> = root
        .async_child_paths()
        .await
        .unwrap()
        .iter()
        .map(|p| p.as_str().to_string())
        .collect();
    paths.sort();
    assert_eq!(paths, vec!["/e", "/m"]);
    for (path, shape) in [("/e", vec![0u64]), ("/m", vec![0, 3])] {
        let array = Array::async_open(ro.clone(), path).await.unwrap();
        assert_eq!(array.shape(), shape.as_slice(), "{path}");
        let data: Vec<i32> = array
            .async_retrieve_array_subset(&array.subset_all())
            .await
            .unwrap();
        assert!(data.is_empty(), "{path}");
    }
    // zarr-python reads the document as it wrote it.
    let stored: Value =
        serde_json::from_slice(&ro_session.zarr().get("m/zarr.json").await.unwrap().unwrap())
            .unwrap();
    assert_eq!(
        stored["chunk_grid"]["configuration"]["chunk_shape"],
        json!([0, 3])
    );

    // zarrs grows the array with the chunk size it was given, which floe accepts.
    let store = Arc::new(AsyncZarrsStore::new(session.zarr()));
    let mut array = Array::async_open(store.clone(), "/e").await.unwrap();
    array.set_shape(vec![3]).unwrap();
    array.async_store_metadata().await.unwrap();
    array
        .async_store_array_subset(&array.subset_all(), vec![7i32, 8, 9])
        .await
        .unwrap();
    let id = session.commit("grown by zarrs", None).await.unwrap();
    let ro = Arc::new(AsyncZarrsStore::new(
        repo.session_at_snapshot(id).await.unwrap().zarr(),
    ));
    let array = Array::async_open(ro, "/e").await.unwrap();
    let data: Vec<i32> = array
        .async_retrieve_array_subset(&array.subset_all())
        .await
        .unwrap();
    assert_eq!(data, vec![7, 8, 9]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adapter_errors_carry_floe_messages() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let session = repo.writable_session("main").await.unwrap();
    let w = SyncZarrsStore::new(session.zarr(), tokio::runtime::Handle::current());
    let key = |k: &str| StoreKey::new(k).unwrap();
    let err = w
        .set(&key("a/zarr.json"), bytes::Bytes::from_static(b"{}"))
        .unwrap_err();
    assert!(err.to_string().contains("invalid Zarr metadata"), "{err}");
    let err = w
        .set(&key("a/c/0"), bytes::Bytes::from_static(b"x"))
        .unwrap_err();
    assert!(
        err.to_string().contains("invalid Zarr key `a/c/0`"),
        "{err}"
    );
    assert_eq!(w.get(&key("a/c/0")).unwrap(), None);
    assert!(w.supports_get_partial() && !w.supports_set_partial());
    let head = repo
        .session_at_snapshot(session.snapshot_id())
        .await
        .unwrap();
    let ro = SyncZarrsStore::new(head.zarr(), tokio::runtime::Handle::current());
    let err = ro
        .set(&key("zarr.json"), bytes::Bytes::from_static(b"{}"))
        .unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    let err = ro.erase_prefix(&StorePrefix::root()).unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
}

#[test]
fn sync_adapter_inside_a_current_thread_runtime_fails_cleanly_or_uses_its_own_runtime() {
    runtime().block_on(async {
        let (_dir, repo) = tempdir_repo(settings()).await;
        let session = repo.writable_session("main").await.unwrap();
        let key = StoreKey::new("zarr.json").unwrap();
        let doc = bytes::Bytes::from(json!({"zarr_format": 3, "node_type": "group"}).to_string());
        let borrowed = SyncZarrsStore::new(session.zarr(), tokio::runtime::Handle::current());
        let err = borrowed.set(&key, doc.clone()).unwrap_err();
        assert!(err.to_string().contains("current-thread"), "{err}");
        let owned = SyncZarrsStore::with_own_runtime(session.zarr()).unwrap();
        owned.set(&key, doc.clone()).unwrap();
        assert_eq!(owned.get(&key).unwrap().unwrap(), doc);
        drop(owned); // dropping an owned runtime inside async code must not panic
    });
}
