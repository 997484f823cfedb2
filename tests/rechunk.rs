//! Rechunked views: arrays written by zarrs, served in another chunk shape by
//! `RechunkedStore`, read back by zarrs (a client nobody here wrote) and compared element by
//! element (as raw element bytes) with the stored arrays.

mod common;

use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::Instant;

use common::p;
use floe::{
    AsyncZarrsStore, ByteRange, ChunkShapeRequest, DecodedChunkCache, Error, RechunkedStore,
    Session,
};
use serde_json::{json, Value};
use zarrs::array::chunk_key_encoding::V2ChunkKeyEncoding;
use zarrs::array::codec::{Crc32cCodec, GzipCodec, ShardingCodecBuilder, ZstdCodec};
use zarrs::array::{data_type, Array, ArrayBuilder, ArrayBytes, FillValue};
use zarrs::storage::store::MemoryStore;
use zarrs::storage::{StoreKey, WritableStorageTraits};

const SHAPE: [u64; 2] = [13, 17];

/// One stored array of the fixture: path, builder and element size.
struct Case {
    path: &'static str,
    builder: ArrayBuilder,
    element_size: usize,
}

fn cases() -> Vec<Case> {
    let new = |dtype, fill: FillValue| ArrayBuilder::new(SHAPE.to_vec(), vec![4, 5], dtype, fill);
    let mut out = Vec::new();
    out.push(Case {
        path: "f32_bytes",
        builder: new(data_type::float32(), FillValue::from(-1.5f32)),
        element_size: 4,
    });
    let mut b = new(data_type::float64(), FillValue::from(2.25f64));
    b.bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(3, false))]);
    out.push(Case {
        path: "f64_zstd",
        builder: b,
        element_size: 8,
    });
    let mut b = new(data_type::int16(), FillValue::from(-7i16));
    b.bytes_to_bytes_codecs(vec![Arc::new(GzipCodec::new(5).unwrap())]);
    out.push(Case {
        path: "i16_gzip",
        builder: b,
        element_size: 2,
    });
    let mut b = new(data_type::uint8(), FillValue::from(9u8));
    b.bytes_to_bytes_codecs(vec![Arc::new(Crc32cCodec::new())]);
    out.push(Case {
        path: "u8_crc32c",
        builder: b,
        element_size: 1,
    });
    out.push(Case {
        path: "bool_bytes",
        builder: new(data_type::bool(), FillValue::from(true)),
        element_size: 1,
    });
    let complex_fill: Vec<u8> = [1.0f32.to_ne_bytes(), (-2.0f32).to_ne_bytes()].concat();
    let mut b = new(data_type::complex64(), FillValue::from(complex_fill));
    b.bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(1, true))]);
    out.push(Case {
        path: "c64_zstd",
        builder: b,
        element_size: 8,
    });
    let mut b = ArrayBuilder::new(SHAPE.to_vec(), vec![8, 10], data_type::uint16(), 3u16);
    b.array_to_bytes_codec(Arc::new(
        ShardingCodecBuilder::new(
            vec![NonZeroU64::new(4).unwrap(), NonZeroU64::new(5).unwrap()],
            &data_type::uint16(),
        )
        .bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(1, false))])
        .build(),
    ));
    out.push(Case {
        path: "u16_sharded",
        builder: b,
        element_size: 2,
    });
    let mut b = new(data_type::int32(), FillValue::from(0i32));
    b.chunk_key_encoding(V2ChunkKeyEncoding::new_dot());
    out.push(Case {
        path: "grp/i32_v2",
        builder: b,
        element_size: 4,
    });
    out
}

/// Deterministic element bytes (bools are 0 or 1).
fn element_bytes(case: &Case) -> Vec<u8> {
    let n = (SHAPE[0] * SHAPE[1]) as usize;
    if case.path.starts_with("bool") {
        return (0..n).map(|i| u8::from(i % 3 == 0)).collect();
    }
    (0..n)
        .flat_map(|i| (0..case.element_size).map(move |k| ((i * 31 + k * 7 + 1) % 251) as u8))
        .collect()
}

/// A committed repository with the fixture arrays written by zarrs; stored chunk [0, 0] and
/// the corner chunk [3, 3] ([1, 1] for the sharded array) are erased. Returns a read-only
/// session at the commit.
async fn fixture() -> (tempfile::TempDir, Session) {
    let (dir, repo, session, store) = common::zarrs_repo::zarrs_repo(&["/", "/grp"]).await;
    for case in cases() {
        let array = case
            .builder
            .build(store.clone(), &format!("/{}", case.path))
            .unwrap();
        array.async_store_metadata().await.unwrap();
        array
            .async_store_array_subset(
                &[0..SHAPE[0], 0..SHAPE[1]],
                ArrayBytes::new_flen(element_bytes(&case)),
            )
            .await
            .unwrap();
        array.async_erase_chunk(&[0, 0]).await.unwrap();
        let corner = if case.path == "u16_sharded" {
            [1, 1]
        } else {
            [3, 3]
        };
        array.async_erase_chunk(&corner).await.unwrap();
    }
    let id = session.commit("fixture", None).await.unwrap();
    (dir, repo.session_at_snapshot(id).await.unwrap())
}

/// The whole array at `path` read by zarrs, as raw element bytes.
async fn read_stored(session: &Session, path: &str) -> Vec<u8> {
    let store = Arc::new(AsyncZarrsStore::new(session.zarr()));
    let array = Array::async_open(store, &format!("/{path}")).await.unwrap();
    let bytes: ArrayBytes<'static> = array
        .async_retrieve_array_subset(&array.subset_all())
        .await
        .unwrap();
    bytes.into_fixed().unwrap().into_owned()
}

/// Every key of the view copied into a zarrs memory store.
async fn copy_view(view: &RechunkedStore) -> Arc<MemoryStore> {
    let memory = Arc::new(MemoryStore::new());
    for key in view.list().await.unwrap() {
        let bytes = view.get(&key).await.unwrap().expect("listed keys exist");
        assert_eq!(view.size(&key).await.unwrap(), Some(bytes.len() as u64));
        memory.set(&StoreKey::new(key).unwrap(), bytes).unwrap();
    }
    memory
}

fn request_for_all(shape: [u64; 2]) -> ChunkShapeRequest {
    let text: Vec<String> = cases()
        .iter()
        .map(|c| format!("{}={},{}", c.path, shape[0], shape[1]))
        .collect();
    ChunkShapeRequest::parse(&text.join(",")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_data_type_and_codec_reads_back_identical_in_every_chunk_shape() {
    let (_dir, session) = fixture().await;
    let mut originals = Vec::new();
    for case in cases() {
        originals.push((case.path, read_stored(&session, case.path).await));
    }
    // Dividing shapes, edge chunks, bigger than the array, one element, a column.
    for shape in [[3, 7], [20, 40], [1, 1], [13, 2]] {
        let view = RechunkedStore::new(
            session.zarr(),
            &request_for_all(shape),
            DecodedChunkCache::default(),
        )
        .unwrap();
        let memory = copy_view(&view).await;
        let root: Value =
            serde_json::from_slice(&view.get("zarr.json").await.unwrap().unwrap()).unwrap();
        for (path, original) in &originals {
            let array = Array::open(memory.clone(), &format!("/{path}")).unwrap();
            assert_eq!(
                array.chunk_shape(&[0, 0]).unwrap(),
                vec![
                    NonZeroU64::new(shape[0]).unwrap(),
                    NonZeroU64::new(shape[1]).unwrap()
                ],
                "{path} {shape:?}"
            );
            let bytes: ArrayBytes<'static> =
                array.retrieve_array_subset(&array.subset_all()).unwrap();
            assert_eq!(
                &bytes.into_fixed().unwrap().into_owned(),
                original,
                "{path} in chunks of {shape:?}"
            );
            let doc: Value = serde_json::from_slice(
                &view
                    .get(&format!("{path}/zarr.json"))
                    .await
                    .unwrap()
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(
                doc["chunk_grid"],
                json!({"name": "regular", "configuration": {"chunk_shape": shape}})
            );
            assert!(!doc["codecs"].to_string().contains("sharding_indexed"));
            assert_eq!(
                root["consolidated_metadata"]["metadata"][*path]["chunk_grid"], doc["chunk_grid"],
                "consolidated entry of {path}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requested_chunks_without_stored_chunks_are_absent() {
    let (_dir, session) = fixture().await;
    let view = RechunkedStore::new(
        session.zarr(),
        &request_for_all([1, 1]),
        DecodedChunkCache::default(),
    )
    .unwrap();
    let keys = view.list().await.unwrap();
    // Requested chunk [0, 0] lies inside erased stored chunk [0, 0]: absent.
    for key in ["f32_bytes/c/0/0", "u16_sharded/c/0/0", "grp/i32_v2/0.0"] {
        assert_eq!(view.get(key).await.unwrap(), None, "{key}");
        assert!(!view.exists(key).await.unwrap(), "{key}");
        assert_eq!(view.size(key).await.unwrap(), None, "{key}");
        assert!(!keys.iter().any(|k| k == key), "{key} listed");
    }
    // Next to it, inside stored chunk [0, 1]: present.
    for key in ["f32_bytes/c/0/5", "grp/i32_v2/0.5"] {
        assert!(view.exists(key).await.unwrap(), "{key}");
        assert!(keys.iter().any(|k| k == key), "{key} not listed");
    }
    // 221 requested chunks minus those under the two erased stored chunks (20 + 2).
    let f32_chunks = keys
        .iter()
        .filter(|k| k.starts_with("f32_bytes/c/"))
        .count();
    assert_eq!(f32_chunks, 221 - 20 - 2);
    // Outside the requested grid, or not a chunk key: absent.
    for key in [
        "f32_bytes/c/13/0",
        "f32_bytes/c/0",
        "f32_bytes/0.0",
        "grp/i32_v2/c/0/5",
    ] {
        assert_eq!(view.get(key).await.unwrap(), None, "{key}");
        assert!(!view.exists(key).await.unwrap(), "{key}");
    }
}

/// The consolidated `zarr.json` of `key` in `view`, parsed, and its block's entries.
async fn consolidated(view: &RechunkedStore, key: &str) -> (Value, serde_json::Map<String, Value>) {
    let bytes = view.get(key).await.unwrap().unwrap();
    assert_eq!(view.size(key).await.unwrap(), Some(bytes.len() as u64));
    assert!(view.exists(key).await.unwrap());
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    let entries = doc["consolidated_metadata"]["metadata"]
        .as_object()
        .unwrap_or_else(|| panic!("no consolidated block in {key}: {doc}"))
        .clone();
    (doc, entries)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_documents_above_requested_arrays_show_the_view() {
    let (_dir, session) = fixture().await;
    let store = session.zarr();
    let request = ChunkShapeRequest::parse("grp/i32_v2=13,17").unwrap();
    let view = RechunkedStore::new(store.clone(), &request, DecodedChunkCache::default()).unwrap();
    let view_doc: Value =
        serde_json::from_slice(&view.get("grp/i32_v2/zarr.json").await.unwrap().unwrap()).unwrap();
    assert_eq!(
        view_doc["chunk_grid"]["configuration"]["chunk_shape"],
        json!([13, 17])
    );
    // The group holding the requested array lists it, by relative path, as the view serves it.
    let (grp, entries) = consolidated(&view, "grp/zarr.json").await;
    assert_eq!(entries.keys().collect::<Vec<_>>(), ["i32_v2"]);
    assert_eq!(entries["i32_v2"], view_doc);
    let stored_grp: Value =
        serde_json::from_slice(&store.get("grp/zarr.json").await.unwrap().unwrap()).unwrap();
    assert_eq!(grp["attributes"], stored_grp["attributes"]);
    assert_ne!(
        stored_grp["consolidated_metadata"]["metadata"]["i32_v2"],
        view_doc
    );
    // So does the root, by full path; other arrays keep their stored metadata.
    let (_, root) = consolidated(&view, "zarr.json").await;
    assert_eq!(root["grp/i32_v2"], view_doc);
    let stored_f32: Value =
        serde_json::from_slice(&store.get("f32_bytes/zarr.json").await.unwrap().unwrap()).unwrap();
    assert_eq!(root["f32_bytes"], stored_f32);
    assert_eq!(root.len(), cases().len() + 1, "every array and `grp`");
    // Asked twice, the same bytes (kept by the view).
    assert_eq!(
        view.get("grp/zarr.json").await.unwrap(),
        view.get("grp/zarr.json").await.unwrap()
    );
    // Keys that merely end like a group document are not one.
    assert_eq!(view.get("grpzarr.json").await.unwrap(), None);
    assert!(!view.exists("grp/i32_v2zarr.json").await.unwrap());

    // A view whose requested arrays all lie elsewhere serves `grp` as stored.
    let elsewhere = ChunkShapeRequest::parse("f32_bytes=7,9").unwrap();
    let view =
        RechunkedStore::new(store.clone(), &elsewhere, DecodedChunkCache::default()).unwrap();
    assert_eq!(
        view.get("grp/zarr.json").await.unwrap(),
        store.get("grp/zarr.json").await.unwrap()
    );
    // Without consolidation, group documents are plain in the view too.
    let plain = store.clone().with_consolidated(false);
    let view = RechunkedStore::new(plain.clone(), &request, DecodedChunkCache::default()).unwrap();
    for key in ["zarr.json", "grp/zarr.json"] {
        let got = view.get(key).await.unwrap();
        assert_eq!(got, plain.get(key).await.unwrap(), "{key}");
        let doc: Value = serde_json::from_slice(&got.unwrap()).unwrap();
        assert!(doc.get("consolidated_metadata").is_none(), "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_ranges_and_untouched_arrays() {
    let (_dir, session) = fixture().await;
    let store = session.zarr();
    let request = ChunkShapeRequest::parse("grp/i32_v2=13,17,f32_bytes=7,9").unwrap();
    let view = RechunkedStore::new(store.clone(), &request, DecodedChunkCache::default()).unwrap();
    // Arrays the request does not name are served unchanged (`grp/zarr.json` is not: its
    // consolidated block shows the view of `grp/i32_v2`, see the test below).
    for key in ["f64_zstd/zarr.json", "f64_zstd/c/1/1"] {
        assert_eq!(
            view.get(key).await.unwrap(),
            store.get(key).await.unwrap(),
            "{key}"
        );
    }
    assert_eq!(
        view.list_prefix("f64_zstd/").await.unwrap(),
        store.list_prefix("f64_zstd/").await.unwrap()
    );
    // One chunk covers the whole requested array.
    assert_eq!(
        view.list_prefix("grp/").await.unwrap(),
        vec!["grp/i32_v2/0.0", "grp/i32_v2/zarr.json", "grp/zarr.json"]
    );
    assert_eq!(
        view.list_dir("grp/i32_v2/").await.unwrap(),
        (
            vec![
                "grp/i32_v2/0.0".to_string(),
                "grp/i32_v2/zarr.json".to_string()
            ],
            vec![]
        )
    );
    let (keys, prefixes) = view.list_dir("f32_bytes/").await.unwrap();
    assert_eq!(keys, vec!["f32_bytes/zarr.json"]);
    assert_eq!(prefixes, vec!["f32_bytes/c/"]);
    let (_, prefixes) = view.list_dir("f32_bytes/c/").await.unwrap();
    assert_eq!(prefixes, vec!["f32_bytes/c/0/", "f32_bytes/c/1/"]);
    assert_eq!(
        view.list_dir("f32_bytes/c/1/").await.unwrap().0,
        vec!["f32_bytes/c/1/0", "f32_bytes/c/1/1"]
    );
    let (_, root_prefixes) = view.list_dir("").await.unwrap();
    assert!(root_prefixes.contains(&"grp/".to_string()));
    // Ranges of an assembled chunk.
    let whole = view.get("f32_bytes/c/1/1").await.unwrap().unwrap();
    let n = whole.len() as u64;
    assert_eq!(n, 7 * 9 * 4, "bytes codec, full-size edge chunk");
    let ranges = [
        (ByteRange::Bounded { start: 4, end: 12 }, 4..12),
        (ByteRange::FromOffset(n - 5), n - 5..n),
        (ByteRange::Suffix(3), n - 3..n),
        (ByteRange::Suffix(n + 10), 0..n),
    ];
    for (range, want) in ranges {
        let got = view
            .get_range("f32_bytes/c/1/1", range)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            got,
            whole.slice(want.start as usize..want.end as usize),
            "{range:?}"
        );
    }
    let err = view
        .get_range("f32_bytes/c/1/1", ByteRange::FromOffset(n + 1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidByteRange { .. }), "{err}");
    // Edge chunk [1, 1] covers rows 7..13 and columns 9..17: rows 13.. are padding.
    let fill = (-1.5f32).to_ne_bytes();
    let last_row = &whole[(6 * 9 * 4) as usize..];
    assert!(
        last_row.chunks(4).all(|e| e == fill),
        "padding is the fill value"
    );
    // The view's futures can run on a multi-thread runtime (a server needs Send futures).
    fn assert_send<T: Send>(t: T) -> T {
        t
    }
    let owned = view.clone();
    let sent = assert_send(async move { owned.get("f32_bytes/c/0/1").await });
    assert!(tokio::spawn(sent).await.unwrap().unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_requests_are_refused_with_the_reason() {
    let (_dir, session) = fixture().await;
    let text_session = session.clone();
    let parse_errors = [
        ("", "empty"),
        ("f32_bytes", "before any"),
        ("f32_bytes=0,1", "positive"),
        ("f32_bytes=-1,1", "negative"),
        ("f32_bytes=1.5,1", "integer"),
        ("f32_bytes=a,1", "integer"),
        ("f32_bytes=1,1,f32_bytes=1,1", "twice"),
        ("=1,1", "empty"),
    ];
    for (text, reason) in parse_errors {
        let err = ChunkShapeRequest::parse(text).unwrap_err();
        assert!(matches!(err, Error::InvalidRechunk { .. }), "{text}: {err}");
        assert!(err.to_string().contains(reason), "{text}: {err}");
        assert!(err.to_string().contains("invalid rechunk request"), "{err}");
    }
    let view_errors = [
        ("nope=1,1", "no array `nope`"),
        ("grp=1,1", "is a group"),
        ("f32_bytes=1", "has 2 dimensions but 1 chunk sizes"),
        ("f32_bytes=1,2,3", "has 2 dimensions but 3 chunk sizes"),
        ("f32_bytes=100000000,100000000", "exceed"),
    ];
    for (text, reason) in view_errors {
        let request = ChunkShapeRequest::parse(text).unwrap();
        let err = RechunkedStore::new(session.zarr(), &request, DecodedChunkCache::default())
            .unwrap_err();
        assert!(matches!(err, Error::InvalidRechunk { .. }), "{text}: {err}");
        assert!(err.to_string().contains(reason), "{text}: {err}");
    }
    // Variable-length data types cannot be assembled.
    let repo = text_session.repository().clone();
    let writable = repo.writable_session("main").await.unwrap();
    writable
        .create_array(
            &p("names"),
            json!({"zarr_format": 3, "node_type": "array", "shape": [4], "data_type": "string",
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2]}},
                "chunk_key_encoding": {"name": "default"}, "fill_value": "",
                "codecs": [{"name": "vlen-utf8"}]}),
        )
        .await
        .unwrap();
    let request = ChunkShapeRequest::parse("names=1").unwrap();
    let err =
        RechunkedStore::new(writable.zarr(), &request, DecodedChunkCache::default()).unwrap_err();
    assert!(err.to_string().contains("read-only session"), "{err}");
    let id = writable.commit("strings", None).await.unwrap();
    let ro = repo.session_at_snapshot(id).await.unwrap();
    let err = RechunkedStore::new(ro.zarr(), &request, DecodedChunkCache::default()).unwrap_err();
    assert!(matches!(err, Error::InvalidRechunk { .. }), "{err}");
    assert!(err.to_string().contains("variable-length"), "{err}");
}

/// (365, 20, 20) float32 stored one day per chunk, read as 400 time series of 365 days.
async fn daily_fixture() -> (tempfile::TempDir, Session, Vec<f32>) {
    let (dir, repo, session, store) = common::zarrs_repo::zarrs_repo(&["/"]).await;
    let mut b = ArrayBuilder::new(
        vec![365, 20, 20],
        vec![1, 20, 20],
        data_type::float32(),
        0f32,
    );
    b.bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(1, false))]);
    let array = b.build(store.clone(), "/t2m").unwrap();
    array.async_store_metadata().await.unwrap();
    let values: Vec<f32> = (0..365 * 400).map(|i| i as f32 * 0.5 + 1.0).collect();
    array
        .async_store_array_subset(&[0..365, 0..20, 0..20], values.clone())
        .await
        .unwrap();
    let id = session.commit("daily", None).await.unwrap();
    (dir, repo.session_at_snapshot(id).await.unwrap(), values)
}

fn series_key(y: u64, x: u64) -> String {
    format!("t2m/c/0/{y}/{x}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_series_scan_decodes_each_stored_chunk_once() {
    let (_dir, session, values) = daily_fixture().await;
    let request = ChunkShapeRequest::parse("t2m=365,1,1").unwrap();
    let cache = DecodedChunkCache::new(64 << 20);
    let view = RechunkedStore::new(session.zarr(), &request, cache.clone()).unwrap();
    let started = Instant::now();
    for y in 0..20 {
        for x in 0..20 {
            let bytes = view.get(&series_key(y, x)).await.unwrap().unwrap();
            assert!(!bytes.is_empty());
        }
    }
    let cached_time = started.elapsed();
    let stats = cache.stats();
    assert_eq!(
        stats.misses, 365,
        "each stored chunk decoded once: {stats:?}"
    );
    assert_eq!(stats.hits, 400 * 365 - 365, "{stats:?}");
    assert_eq!(stats.entries, 365);

    // Another view sharing the cache decodes nothing new.
    let other = RechunkedStore::new(session.zarr(), &request, cache.clone()).unwrap();
    other.get(&series_key(7, 3)).await.unwrap().unwrap();
    assert_eq!(cache.stats().misses, 365);

    // The series are right: read the whole view with zarrs.
    let memory = copy_view(&view).await;
    let array = Array::open(memory, "/t2m").unwrap();
    assert_eq!(array.chunk_shape(&[0, 0, 0]).unwrap()[0].get(), 365);
    let read: Vec<f32> = array.retrieve_array_subset(&array.subset_all()).unwrap();
    assert_eq!(read, values);

    // With a cache too small to hold one decoded chunk, every request decodes all 365.
    let tiny = DecodedChunkCache::new(1);
    let view = RechunkedStore::new(session.zarr(), &request, tiny.clone()).unwrap();
    let started = Instant::now();
    for x in 0..4 {
        view.get(&series_key(0, x)).await.unwrap().unwrap();
    }
    let uncached_time = started.elapsed();
    let stats = tiny.stats();
    assert_eq!((stats.misses, stats.hits), (4 * 365, 0), "{stats:?}");
    eprintln!(
        "time-series scan: 400 requested chunks with the decoded cache in {cached_time:?}; \
         4 requested chunks without it in {uncached_time:?} (~{:?} for 400)",
        uncached_time * 100
    );
}
