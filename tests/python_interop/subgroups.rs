//! A repository whose datasets live below the root, as an import into a sub-group leaves them:
//! dataset `ds` (a time coordinate, a station coordinate, a 2-d temperature), a nested dataset
//! `ds/sub` with a group `ds/sub/deep` below it, and a sibling `ds-1` (which sorts between
//! `ds` and `ds/...`) whose array must not leak into `ds`. The expected contents are handed to
//! tests/python/open_subgroups.py as JSON.

use std::sync::Arc;

use floe::{AsyncZarrsStore, Repository, Session, SnapshotId};
use serde_json::{json, Value};
use zarrs::array::codec::ZstdCodec;
use zarrs::array::{data_type, ArrayBuilder, DataType, Element, FillValue};
use zarrs::group::GroupBuilder;

const TIMES: u64 = 6;
const STATIONS: u64 = 4;

/// Groups with their attributes.
fn groups() -> Vec<(&'static str, Value)> {
    vec![
        ("/", json!({"title": "root"})),
        ("/ds", json!({"title": "dataset", "source": "import"})),
        ("/ds/sub", json!({"title": "nested dataset"})),
        ("/ds/sub/deep", json!({})),
        ("/ds-1", json!({"title": "sibling"})),
    ]
}

/// Stores a 1-d or 2-d array at `path` with dimension names `dims` and the given values.
async fn store_array<T: Element + Send + Sync>(
    store: &Arc<AsyncZarrsStore>,
    path: &str,
    (shape, chunks): (&[u64], &[u64]),
    (data_type, fill): (DataType, FillValue),
    dims: &[&str],
    values: Vec<T>,
) {
    let mut b = ArrayBuilder::new(shape.to_vec(), chunks.to_vec(), data_type, fill);
    b.dimension_names(Some(dims.to_vec()))
        .bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(3, false))]);
    let array = b.build(store.clone(), path).unwrap();
    array.async_store_metadata().await.unwrap();
    let region: Vec<std::ops::Range<u64>> = shape.iter().map(|&n| 0..n).collect();
    array
        .async_store_array_subset(&region.as_slice(), values)
        .await
        .unwrap();
}

/// Writes the datasets on `main`, commits (tagged `counted`), and returns the snapshot and what
/// Python should find: per dataset path (relative to a version), its attributes, its variables
/// (dimensions and values) and every node below it (relative paths, as consolidated metadata
/// lists them); and a rechunked view of `ds` with `temperature` in whole-series chunks.
pub async fn build(
    repo: &Repository,
    session: &Session,
    store: &Arc<AsyncZarrsStore>,
) -> (SnapshotId, Value) {
    for (path, attrs) in groups() {
        let mut group = GroupBuilder::new().build(store.clone(), path).unwrap();
        *group.attributes_mut() = attrs.as_object().unwrap().clone();
        group.async_store_metadata().await.unwrap();
    }
    let time: Vec<i64> = (0..TIMES as i64).collect();
    let station: Vec<i32> = (0..STATIONS as i32).map(|s| 100 + s).collect();
    let temperature: Vec<f32> = (0..TIMES * STATIONS)
        .map(|i| (i / STATIONS * 10 + i % STATIONS) as f32)
        .collect();
    let u: Vec<f64> = (0..TIMES).map(|t| t as f64 * 0.5).collect();
    let v: Vec<i16> = vec![-1, 0, 1];
    let int64 = (data_type::int64(), FillValue::from(0i64));
    store_array(
        store,
        "/ds/time",
        (&[TIMES], &[3]),
        int64,
        &["time"],
        time.clone(),
    )
    .await;
    let int32 = (data_type::int32(), FillValue::from(0i32));
    let stations = (&[STATIONS][..], &[STATIONS][..]);
    store_array(
        store,
        "/ds/station",
        stations,
        int32,
        &["station"],
        station.clone(),
    )
    .await;
    let float32 = (data_type::float32(), FillValue::from(f32::NAN));
    let grid = (&[TIMES, STATIONS][..], &[3, 2][..]);
    let dims = ["time", "station"];
    store_array(
        store,
        "/ds/temperature",
        grid,
        float32,
        &dims,
        temperature.clone(),
    )
    .await;
    let float64 = (data_type::float64(), FillValue::from(f64::NAN));
    store_array(
        store,
        "/ds/sub/u",
        (&[TIMES], &[2]),
        float64,
        &["time"],
        u.clone(),
    )
    .await;
    let int16 = (data_type::int16(), FillValue::from(0i16));
    store_array(store, "/ds/sub/deep/v", (&[3], &[3]), int16, &["z"], v).await;
    let float32 = (data_type::float32(), FillValue::from(0f32));
    store_array(
        store,
        "/ds-1/w",
        (&[2], &[2]),
        float32,
        &["x"],
        vec![1f32, 2.0],
    )
    .await;
    let id = session
        .commit("datasets in sub-groups", None)
        .await
        .unwrap();
    repo.create_tag("counted", id).await.unwrap();

    let rows: Vec<Vec<f32>> = temperature
        .chunks(STATIONS as usize)
        .map(<[f32]>::to_vec)
        .collect();
    let expected = json!({
        "datasets": {
            "ds": {
                "attrs": groups()[1].1,
                "variables": {
                    "time": {"dims": ["time"], "values": time},
                    "station": {"dims": ["station"], "values": station},
                    "temperature": {"dims": ["time", "station"], "values": rows},
                },
                "members": [
                    "station", "sub", "sub/deep", "sub/deep/v", "sub/u", "temperature", "time"
                ],
            },
            "ds/sub": {
                "attrs": groups()[2].1,
                "variables": {"u": {"dims": ["time"], "values": u}},
                "members": ["deep", "deep/v", "u"],
            },
        },
        "view": {
            "segment": "main;chunks=ds%2Ftemperature=6,1",
            "dataset": "ds",
            "array": "temperature",
            "chunks": [TIMES, 1],
        },
    });
    (id, expected)
}
