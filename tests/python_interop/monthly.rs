//! A rectilinear array for the Python interop suite: two years of daily values of a few
//! stations in monthly chunks (31, 28, 31, 30, ... days along `time`), written by zarrs through
//! floe's [`AsyncZarrsStore`]. zarr-python 3.1 cannot read the `rectilinear` grid itself; it
//! reads the array through `floe serve`'s default regular-grid view (chunks of the longest
//! month), and the values must equal the model built here.

use std::sync::Arc;

use floe::{AsyncZarrsStore, Repository};
use serde_json::{json, Value};
use zarrs::array::Array;

/// The array's path.
pub const PATH: &str = "monthly";
/// Stations (the second dimension, one chunk).
const STATIONS: u64 = 3;
/// The fill value.
const FILL: f32 = -1.0;

/// Days per month of 2023 (not a leap year) and 2024 (a leap year).
fn month_lengths() -> Vec<u64> {
    let year = |feb| vec![31, feb, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    [year(28), year(29)].concat()
}

fn value(day: u64, station: u64) -> f32 {
    day as f32 * 0.5 + station as f32 * 1000.0
}

/// Writes the array on `main` of `repo` (February 2023, days 31..59, never written: missing
/// chunk, read as fill) and returns what Python must find: path, numpy dtype, shape,
/// dimension names, the chunk shape of the regular-grid view, the fill value, and the values
/// (hex of the little-endian buffer).
pub async fn build(repo: &Repository) -> Value {
    let lengths = month_lengths();
    let days: u64 = lengths.iter().sum();
    let edges: Vec<Value> = lengths.iter().map(|&l| json!(l)).collect();
    let session = repo.writable_session("main").await.unwrap();
    session
        .create_group(&floe::NodePath::root(), serde_json::Map::new())
        .await
        .unwrap();
    let document = json!({
        "zarr_format": 3, "node_type": "array", "shape": [days, STATIONS],
        "data_type": "float32",
        "chunk_grid": {"name": "rectilinear",
                       "configuration": {"kind": "inline", "chunk_shapes": [edges, STATIONS]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": FILL,
        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                   {"name": "zstd", "configuration": {"level": 1, "checksum": false}}],
        "dimension_names": ["time", "station"]
    });
    session
        .create_array(&floe::NodePath::new(PATH).unwrap(), document)
        .await
        .unwrap();
    let store = Arc::new(AsyncZarrsStore::new(session.zarr()));
    let array = Array::async_open(store, &format!("/{PATH}")).await.unwrap();
    let row = |d: u64| (0..STATIONS).map(move |s| value(d, s));
    for written in [0..31, 59..days] {
        let values: Vec<f32> = written.clone().flat_map(row).collect();
        array
            .async_store_array_subset(&[written, 0..STATIONS], values)
            .await
            .unwrap();
    }
    session
        .commit("two years in monthly chunks", None)
        .await
        .unwrap();
    let hex: String = (0..days)
        .flat_map(|d| {
            (0..STATIONS).map(move |s| {
                if (31..59).contains(&d) {
                    FILL
                } else {
                    value(d, s)
                }
            })
        })
        .flat_map(f32::to_le_bytes)
        .map(|b| format!("{b:02x}"))
        .collect();
    json!({
        "segment": "main",
        "path": PATH,
        "numpy": "<f4",
        "shape": [days, STATIONS],
        "dims": ["time", "station"],
        "chunks": [lengths.iter().max(), STATIONS],
        "fill": FILL,
        "values": {"hex": hex},
    })
}
