//! Rectilinear chunk grids (the `rectilinear` grid of the Zarr extensions): metadata
//! validation, monthly chunks of daily data written by zarrs into floe and read back both
//! natively (zarrs 0.23 reads the `rectilinear` grid) and through the regular-grid view,
//! appends that extend the grid, and the HTTP server's default regular view and `;grid=native`.

mod common;

use std::sync::Arc;

use common::{memory_repo, p, tempdir_repo};
use floe::{
    AsyncZarrsStore, DecodedChunkCache, Error, NodeMetadata, RechunkedStore, Repository,
    RepositorySettings, Session, SnapshotId, ZarrStore,
};
use serde_json::{json, Value};
use zarrs::array::{Array, ArrayBytes};
use zarrs::storage::store::MemoryStore;
use zarrs::storage::{StoreKey, WritableStorageTraits};

const STATIONS: u64 = 3;
const FILL: f32 = -1.0;

/// Days per month of 2023 (not a leap year) and 2024 (a leap year).
fn months() -> Vec<u64> {
    let year = |feb| vec![31, feb, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    [year(28), year(29)].concat()
}

/// Run-length encodes `lengths` as the extension allows: equal neighbours become
/// `[length, repeat]`, single lengths stay plain integers.
fn rle(lengths: &[u64]) -> Value {
    let mut out: Vec<Value> = Vec::new();
    let mut i = 0;
    while i < lengths.len() {
        let run = lengths[i..]
            .iter()
            .take_while(|&&l| l == lengths[i])
            .count();
        out.push(if run == 1 {
            json!(lengths[i])
        } else {
            json!([lengths[i], run])
        });
        i += run;
    }
    Value::Array(out)
}

/// `zarr.json` of a float32 array of `days` x STATIONS with one chunk per month of `lengths`
/// (run-length encoded) along time and every station in one chunk (a plain integer).
fn daily_array(days: u64, lengths: &[u64]) -> Value {
    json!({
        "zarr_format": 3, "node_type": "array", "shape": [days, STATIONS],
        "data_type": "float32",
        "chunk_grid": {"name": "rectilinear",
                       "configuration": {"kind": "inline", "chunk_shapes": [rle(lengths), STATIONS]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": FILL,
        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                   {"name": "zstd", "configuration": {"level": 1, "checksum": false}}],
        "dimension_names": ["time", "station"]
    })
}

fn value(day: u64, station: u64) -> f32 {
    (day * 10 + station) as f32
}

/// Rows `days` of every station, row-major.
fn values(days: std::ops::Range<u64>) -> Vec<f32> {
    days.flat_map(|d| (0..STATIONS).map(move |s| value(d, s)))
        .collect()
}

/// Writes rows `days` of `temp` through zarrs (which reads the rectilinear grid floe stored).
async fn write_days(session: &Session, days: std::ops::Range<u64>) {
    let store = Arc::new(AsyncZarrsStore::new(session.zarr()));
    let array = Array::async_open(store, "/temp").await.unwrap();
    array
        .async_store_array_subset(&[days.clone(), 0..STATIONS], values(days))
        .await
        .unwrap();
}

/// A committed repository: root group, `temp` (2 years of daily data in monthly chunks,
/// February 2023 never written) and a regular int32 array `reg`.
async fn fixture() -> (tempfile::TempDir, Repository, SnapshotId) {
    let (dir, repo) = tempdir_repo(RepositorySettings::default()).await;
    let session = repo.writable_session("main").await.unwrap();
    session
        .create_group(&p(""), serde_json::Map::new())
        .await
        .unwrap();
    let days: u64 = months().iter().sum();
    assert_eq!(days, 731);
    session
        .create_array(&p("temp"), daily_array(days, &months()))
        .await
        .unwrap();
    write_days(&session, 0..31).await;
    write_days(&session, 59..days).await;
    session
        .create_array(&p("reg"), common::int32_array(&[4], &[2]))
        .await
        .unwrap();
    session
        .zarr()
        .set(
            "reg/c/1",
            bytes::Bytes::from_static(&[1, 0, 0, 0, 2, 0, 0, 0]),
        )
        .await
        .unwrap();
    let id = session.commit("two years", None).await.unwrap();
    (dir, repo, id)
}

/// What `temp` holds for `days` days when February 2023 (days 31..59) was never written.
fn expected(days: u64) -> Vec<f32> {
    (0..days)
        .flat_map(|d| {
            (0..STATIONS).map(move |s| {
                if (31..59).contains(&d) {
                    FILL
                } else {
                    value(d, s)
                }
            })
        })
        .collect()
}

/// The whole of `temp` read by zarrs directly from floe, in its native rectilinear grid.
async fn read_native(session: &Session) -> Vec<f32> {
    let store = Arc::new(AsyncZarrsStore::new(session.zarr()));
    let array = Array::async_open(store, "/temp").await.unwrap();
    array
        .async_retrieve_array_subset(&array.subset_all())
        .await
        .unwrap()
}

/// The default regular-grid view of a read-only `session`.
fn regular_view(session: &Session) -> RechunkedStore {
    RechunkedStore::with_regular_grids(
        ZarrStore::new(session.clone()).with_consolidated(true),
        None,
        DecodedChunkCache::default(),
    )
    .unwrap()
    .expect("a rectilinear array needs a view")
}

/// Every key of `view` in a zarrs memory store, and `temp` read from there by zarrs (a
/// regular-grid reader), with its chunk shape.
async fn read_through_view(view: &RechunkedStore) -> (Vec<f32>, Vec<u64>) {
    let memory = Arc::new(MemoryStore::new());
    for key in view.list().await.unwrap() {
        let bytes = view.get(&key).await.unwrap().expect("listed keys exist");
        memory.set(&StoreKey::new(key).unwrap(), bytes).unwrap();
    }
    let array = Array::open(memory, "/temp").unwrap();
    let chunk: Vec<u64> = array
        .chunk_shape(&[0, 0])
        .unwrap()
        .iter()
        .map(|c| c.get())
        .collect();
    let bytes: ArrayBytes<'static> = array.retrieve_array_subset(&array.subset_all()).unwrap();
    let floats = bytes
        .into_fixed()
        .unwrap()
        .chunks(4)
        .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (floats, chunk)
}

fn assert_same(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let (day, station) = (i as u64 / STATIONS, i as u64 % STATIONS);
        assert_eq!(g, w, "{what}: day {day} station {station}");
    }
}

fn metadata(doc: Value) -> floe::Result<NodeMetadata> {
    NodeMetadata::from_value(&p("a"), doc)
}

fn rectilinear(shape: Value, chunk_shapes: Value) -> Value {
    let mut doc = daily_array(1, &[1]);
    doc["shape"] = shape;
    doc["chunk_grid"]["configuration"]["chunk_shapes"] = chunk_shapes;
    doc
}

#[test]
fn metadata_accepts_the_extension_forms_and_refuses_the_rest() {
    // The extension's own example: an integer, an explicit list, a run, a run mixed with an
    // integer, and an explicit list overflowing the length.
    let m = metadata(rectilinear(
        json!([6, 6, 6, 6, 6]),
        json!([4, [1, 2, 3], [[4, 2]], [[1, 3], 3], [4, 4, 4]]),
    ))
    .unwrap();
    let g = m.geometry().unwrap();
    assert_eq!(g.grid_shape(), vec![2, 3, 2, 4, 2]);
    assert_eq!(g.chunk_start(3, 3), Some(3));
    assert_eq!(g.chunk_length(3, 3), Some(3));
    assert_eq!(g.chunk_of(1, 2), Some(1));
    assert_eq!(g.chunk_of(1, 3), Some(2));
    // The overflow chunk past the end holds nothing and is not part of the grid.
    assert!(!g.contains_chunk(&[0, 0, 0, 0, 2]));

    for (shape, chunk_shapes, needle) in [
        (
            json!([6]),
            json!([[1, 2]]),
            "sum to 3, less than the array's length 6",
        ),
        (json!([6]), json!([[0, 6]]), "positive"),
        (
            json!([6]),
            json!([[[3, 0], 6]]),
            "repeat counts must be positive",
        ),
        (json!([6]), json!([[[3, 1, 1], 3]]), "[length, repeat]"),
        (json!([6]), json!([[3, -3]]), "positive"),
        (json!([6]), json!([0]), "positive"),
        (json!([6]), json!([6, 6]), "dimensions"),
        (json!([6]), json!("6"), "must be a list"),
    ] {
        let err = metadata(rectilinear(shape, chunk_shapes.clone())).unwrap_err();
        assert!(matches!(err, Error::InvalidMetadata { .. }), "{err:?}");
        assert!(err.to_string().contains(needle), "{chunk_shapes}: {err}");
    }
    let mut other_kind = rectilinear(json!([6]), json!([6]));
    other_kind["chunk_grid"]["configuration"]["kind"] = json!("external");
    let err = metadata(other_kind).unwrap_err().to_string();
    assert!(err.contains("inline"), "{err}");
}

#[test]
fn hostile_repeats_are_never_expanded() {
    // 10^18 chunks of one element, then chunks of 2^64-1 elements repeated 2^64-1 times: the
    // sum overflows u64 and the expansion would not fit in any memory. Validation and lookups
    // only walk the runs.
    let huge = json!([[[1, 1_000_000_000_000_000_000u64], [u64::MAX, u64::MAX]]]);
    let m = metadata(rectilinear(json!([1_000_000_000_000_000_005u64]), huge)).unwrap();
    let g = m.geometry().unwrap();
    assert_eq!(g.grid_shape(), vec![1_000_000_000_000_000_001]);
    assert_eq!(
        g.chunk_of(0, 999_999_999_999_999_999),
        Some(999_999_999_999_999_999)
    );
    assert_eq!(
        g.chunk_of(0, 1_000_000_000_000_000_004),
        Some(1_000_000_000_000_000_000)
    );
    assert_eq!(g.chunk_length(0, 1_000_000_000_000_000_000), Some(u64::MAX));
    assert_eq!(g.max_chunk_shape(), vec![u64::MAX]);
    // A short array with the same declaration keeps only the chunks it needs.
    let short = json!([[[1, 1_000_000_000_000_000_000u64], [u64::MAX, u64::MAX]]]);
    let m = metadata(rectilinear(json!([10]), short)).unwrap();
    assert_eq!(m.geometry().unwrap().grid_shape(), vec![10]);
    assert_eq!(m.geometry().unwrap().max_chunk_shape(), vec![1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monthly_chunks_read_back_natively_and_through_the_regular_view() {
    let (_dir, repo, id) = fixture().await;
    let session = repo.session_at_snapshot(id).await.unwrap();
    let want = expected(731);

    // floe serves the native document as written; its grid has one chunk per month.
    let stored: Value =
        serde_json::from_slice(&session.zarr().get("temp/zarr.json").await.unwrap().unwrap())
            .unwrap();
    assert_eq!(
        stored["chunk_grid"],
        daily_array(731, &months())["chunk_grid"]
    );
    let chunks = session.list_chunks(&p("temp")).await.unwrap();
    assert_eq!(chunks.len(), 23, "24 months, February 2023 never written");
    assert!(!chunks.contains(&vec![1, 0]));
    assert_eq!(chunks.last(), Some(&vec![23, 0]));

    // zarrs 0.23 reads the rectilinear grid itself.
    assert_same(&read_native(&session).await, &want, "native");

    // The regular-grid view: chunks of the longest month, every value identical.
    let view = regular_view(&session);
    assert_eq!(view.request().to_string(), "temp=31,3");
    let doc: Value =
        serde_json::from_slice(&view.get("temp/zarr.json").await.unwrap().unwrap()).unwrap();
    assert_eq!(
        doc["chunk_grid"],
        json!({"name": "regular", "configuration": {"chunk_shape": [31, 3]}})
    );
    assert_eq!(doc["shape"], json!([731, 3]));
    assert_eq!(doc["dimension_names"], json!(["time", "station"]));
    let (got, chunk) = read_through_view(&view).await;
    assert_eq!(chunk, vec![31, 3]);
    assert_same(&got, &want, "regular view");
    // Regular arrays pass through untouched; view chunk 24 would start past the end.
    assert_eq!(
        view.get("reg/zarr.json").await.unwrap(),
        session.zarr().get("reg/zarr.json").await.unwrap()
    );
    assert_eq!(view.get("temp/c/24/0").await.unwrap(), None);
    // Rows 31..59 (February 2023) are view chunk 1 (rows 31..62), which also overlaps March.
    assert!(view.exists("temp/c/1/0").await.unwrap());

    // A version without rectilinear arrays needs no view.
    let (plain, _) = memory_repo().await;
    let s = plain.writable_session("main").await.unwrap();
    s.create_array(&p("reg"), common::int32_array(&[4], &[2]))
        .await
        .unwrap();
    let plain_id = s.commit("regular only", None).await.unwrap();
    let plain_session = plain.session_at_snapshot(plain_id).await.unwrap();
    assert!(RechunkedStore::with_regular_grids(
        plain_session.zarr(),
        None,
        DecodedChunkCache::default()
    )
    .unwrap()
    .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_keys_are_checked_against_the_rectilinear_grid() {
    let (_dir, repo, _) = fixture().await;
    let session = repo.writable_session("main").await.unwrap();
    let store = session.zarr();
    let chunk = store.get("temp/c/0/0").await.unwrap().unwrap();
    // Month 23 is the last chunk; 24 is outside the grid for reads and writes.
    store.set("temp/c/23/0", chunk.clone()).await.unwrap();
    assert!(store.set("temp/c/24/0", chunk.clone()).await.is_err());
    assert!(store.set("temp/c/0/1", chunk.clone()).await.is_err());
    assert_eq!(store.get("temp/c/24/0").await.unwrap(), None);
    assert!(session
        .set_chunk(&p("temp"), &[24, 0], chunk)
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appending_a_month_extends_the_grid() {
    let (_dir, repo, _) = fixture().await;
    let session = repo.writable_session("main").await.unwrap();
    // Growing the shape without declaring the new month's chunk is refused.
    let err = session
        .resize_array(&p("temp"), &[762, STATIONS])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("sum to 731"), "{err}");

    // Declaring other lengths for chunks that exist is refused: their bytes hold other days.
    let mut leap_2023 = months();
    leap_2023[1] = 29;
    leap_2023.push(30);
    let err = session
        .create_array(&p("temp"), daily_array(761, &leap_2023))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidMetadata { .. }), "{err:?}");
    assert!(
        err.to_string().contains("chunk 1 along dimension 0"),
        "{err}"
    );

    // January 2025: the writer declares one more chunk of 31 days.
    let mut lengths = months();
    lengths.push(31);
    session
        .create_array(&p("temp"), daily_array(762, &lengths))
        .await
        .unwrap();
    write_days(&session, 731..762).await;
    // February 2025, declared whole (28 days) but only 10 days known yet: the lengths may
    // exceed the shape.
    lengths.push(28);
    session
        .create_array(&p("temp"), daily_array(772, &lengths))
        .await
        .unwrap();
    write_days(&session, 762..772).await;
    let id = session
        .commit("january and part of february 2025", None)
        .await
        .unwrap();

    let reader = repo.session_at_snapshot(id).await.unwrap();
    let node = reader.node(&p("temp")).unwrap().unwrap();
    let geometry = node.metadata.geometry().unwrap();
    assert_eq!(geometry.grid_shape(), vec![26, 1]);
    assert_eq!(geometry.chunk_shape_at(&[25, 0]), Some(vec![28, STATIONS]));
    let want = expected(772);
    assert_same(&read_native(&reader).await, &want, "native after append");
    let (got, chunk) = read_through_view(&regular_view(&reader)).await;
    assert_eq!(chunk, vec![31, 3]);
    assert_same(&got, &want, "regular view after append");

    // The rest of February arrives without a metadata change of the chunk lengths.
    let session = repo.writable_session("main").await.unwrap();
    session
        .resize_array(&p("temp"), &[790, STATIONS])
        .await
        .unwrap();
    write_days(&session, 772..790).await;
    // Shrinking back drops the chunks that no longer hold an element.
    let id = session.commit("rest of february", None).await.unwrap();
    let reader = repo.session_at_snapshot(id).await.unwrap();
    assert_same(
        &read_native(&reader).await,
        &expected(790),
        "whole february",
    );

    let session = repo.writable_session("main").await.unwrap();
    session
        .resize_array(&p("temp"), &[731, STATIONS])
        .await
        .unwrap();
    let id = session.commit("back to two years", None).await.unwrap();
    let reader = repo.session_at_snapshot(id).await.unwrap();
    let chunks = reader.list_chunks(&p("temp")).await.unwrap();
    assert_eq!(chunks.last(), Some(&vec![23, 0]));
    assert_same(&read_native(&reader).await, &expected(731), "shrunk");
}

#[cfg(feature = "server")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_serves_the_regular_view_by_default_and_the_native_grid_on_request() {
    use common::http::{get, TestServer};
    use reqwest::StatusCode;

    let (_dir, repo, id) = fixture().await;
    let session = repo.session_at_snapshot(id).await.unwrap();
    let direct = regular_view(&session);
    let server = TestServer::start(repo).await;
    let json = |body: &[u8]| serde_json::from_slice::<Value>(body).unwrap();

    // By default: the regular-grid view, byte for byte what the library view serves.
    let doc = get(&server, "/main/temp/zarr.json", &[]).await;
    assert_eq!(doc.status, StatusCode::OK, "{}", doc.text());
    assert_eq!(
        Some(doc.body.clone()),
        direct.get("temp/zarr.json").await.unwrap()
    );
    assert_eq!(
        json(&doc.body)["chunk_grid"]["configuration"]["chunk_shape"],
        json!([31, 3])
    );
    let root = json(&get(&server, "/main/zarr.json", &[]).await.body);
    let nested = &root["consolidated_metadata"]["metadata"];
    assert_eq!(nested["temp"]["chunk_grid"]["name"], "regular");
    assert_eq!(
        nested["reg"]["chunk_grid"]["configuration"]["chunk_shape"],
        json!([2])
    );
    for k in 0..25 {
        let key = format!("temp/c/{k}/0");
        let got = get(&server, &format!("/main/{key}"), &[]).await;
        match direct.get(&key).await.unwrap() {
            Some(bytes) => {
                assert_eq!(got.status, StatusCode::OK, "{key}");
                assert_eq!(got.body, bytes, "{key}");
            }
            None => assert_eq!(got.status, StatusCode::NOT_FOUND, "{key}"),
        }
    }
    assert_eq!(
        get(&server, "/main/temp/c/24/0", &[]).await.status,
        StatusCode::NOT_FOUND
    );

    // `;grid=native`: the stored rectilinear metadata and chunks.
    let native = get(&server, "/main;grid=native/temp/zarr.json", &[]).await;
    assert_eq!(native.status, StatusCode::OK, "{}", native.text());
    assert_eq!(
        Some(native.body.clone()),
        session.zarr().get("temp/zarr.json").await.unwrap()
    );
    assert_ne!(native.header("etag"), doc.header("etag"));
    let root = json(&get(&server, "/main;grid=native/zarr.json", &[]).await.body);
    let nested = &root["consolidated_metadata"]["metadata"];
    assert_eq!(nested["temp"]["chunk_grid"]["name"], "rectilinear");
    let last = get(&server, "/main;grid=native/temp/c/23/0", &[]).await;
    assert_eq!(
        Some(last.body),
        session.zarr().get("temp/c/23/0").await.unwrap()
    );
    let outside = get(&server, "/main;grid=native/temp/c/24/0", &[]).await;
    assert_eq!(outside.status, StatusCode::NOT_FOUND);

    // With `chunks`: the named arrays as requested, other rectilinear arrays still regular
    // unless the grid is native.
    let both = json(&get(&server, "/main;chunks=reg=1/zarr.json", &[]).await.body);
    let nested = &both["consolidated_metadata"]["metadata"];
    assert_eq!(
        nested["temp"]["chunk_grid"]["configuration"]["chunk_shape"],
        json!([31, 3])
    );
    assert_eq!(
        nested["reg"]["chunk_grid"]["configuration"]["chunk_shape"],
        json!([1])
    );
    let native_rechunked = get(
        &server,
        "/main;grid=native;chunks=temp=100,1/temp/zarr.json",
        &[],
    )
    .await;
    assert_eq!(
        json(&native_rechunked.body)["chunk_grid"]["configuration"]["chunk_shape"],
        json!([100, 1])
    );
    let native_other = get(
        &server,
        "/main;grid=native;chunks=reg=1/temp/zarr.json",
        &[],
    )
    .await;
    assert_eq!(
        json(&native_other.body)["chunk_grid"]["name"],
        "rectilinear"
    );

    let bad = get(&server, "/main;grid=rectangular/temp/zarr.json", &[]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text().contains("native"), "{}", bad.text());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regular_array_becomes_rectilinear_when_a_shorter_month_is_appended() {
    let (repo, _) = memory_repo().await;
    let session = repo.writable_session("main").await.unwrap();
    let mut regular = daily_array(62, &[31]);
    regular["chunk_grid"] =
        json!({"name": "regular", "configuration": {"chunk_shape": [31, STATIONS]}});
    session.create_array(&p("temp"), regular).await.unwrap();
    write_days(&session, 0..62).await;
    // Chunks 0 and 1 keep their 31 days; February adds a chunk of 28.
    session
        .create_array(&p("temp"), daily_array(90, &[31, 31, 28]))
        .await
        .unwrap();
    write_days(&session, 62..90).await;
    // Going back to a regular grid of 30 would move chunk 0.
    let mut thirty = daily_array(90, &[30]);
    thirty["chunk_grid"] =
        json!({"name": "regular", "configuration": {"chunk_shape": [30, STATIONS]}});
    let err = session.create_array(&p("temp"), thirty).await.unwrap_err();
    assert!(
        err.to_string().contains("chunk 0 along dimension 0"),
        "{err}"
    );
    let id = session
        .commit("january, december, february", None)
        .await
        .unwrap();
    let reader = repo.session_at_snapshot(id).await.unwrap();
    let want: Vec<f32> = values(0..90);
    assert_same(&read_native(&reader).await, &want, "native");
    let (got, chunk) = read_through_view(&regular_view(&reader)).await;
    assert_eq!(chunk, vec![31, 3]);
    assert_same(&got, &want, "regular view");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_rectilinear_arrays_read_back_through_the_regular_view() {
    let (repo, _) = memory_repo().await;
    let session = repo.writable_session("main").await.unwrap();
    let mut doc = daily_array(90, &[31, 31, 28]);
    doc["codecs"] = json!([{"name": "sharding_indexed", "configuration": {
        "chunk_shape": [1, STATIONS],
        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                   {"name": "zstd", "configuration": {"level": 1, "checksum": false}}],
        "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                         {"name": "crc32c"}],
        "index_location": "end"}}]);
    session.create_array(&p("temp"), doc).await.unwrap();
    write_days(&session, 0..90).await;
    let id = session.commit("sharded", None).await.unwrap();
    let reader = repo.session_at_snapshot(id).await.unwrap();
    let want = values(0..90);
    assert_same(&read_native(&reader).await, &want, "native sharded");
    let view = regular_view(&reader);
    let doc: Value =
        serde_json::from_slice(&view.get("temp/zarr.json").await.unwrap().unwrap()).unwrap();
    let names: Vec<&str> = doc["codecs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bytes", "zstd"]);
    let (got, chunk) = read_through_view(&view).await;
    assert_eq!(chunk, vec![31, 3]);
    assert_same(&got, &want, "regular view of a sharded array");
}
