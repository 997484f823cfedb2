//! Figures for the closing note of the rechunked views work (not a pass/fail test): reading
//! the time series at one point of a (365, 64, 64) float32 array stored one day per chunk
//! (zstd), over HTTP, (a) directly (365 chunk GETs, each decoded in the client by zarrs'
//! codec chain), (b) through the rechunked view `chunks=t2m=365,1,1` (one GET) with the
//! server's decoded-chunk cache cold and warm, and (c) with the decoded-chunk cache disabled.
//! Each figure is the median of 3 runs; every series read is checked against the stored
//! values.
//!
//! Run with:
//! `cargo test --release --all-features --test http_rechunk_timing -- --ignored --nocapture`

#![cfg(feature = "server")]

mod common;

use std::borrow::Cow;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::http::{client, TestServer};
use floe::server::ServeOptions;
use floe::Repository;
use futures::{StreamExt, TryStreamExt};
use reqwest::StatusCode;
use zarrs::array::codec::ZstdCodec;
use zarrs::array::{
    data_type, Array, ArrayBuilder, ArrayMetadata, ArrayMetadataV3, ArrayToBytesCodecTraits,
    CodecOptions,
};
use zarrs::storage::store::MemoryStore;

const DAYS: u64 = 365;
const SIDE: u64 = 64;
const VIEW: &str = "/main;chunks=t2m=365,1,1";

/// A smooth field with deterministic noise, so zstd compresses it as it would real data.
fn value(day: u64, y: u64, x: u64) -> f32 {
    let noise = ((day * 7919 + y * 104_729 + x * 1_299_709) % 1000) as f32 / 1000.0;
    let (d, y, x) = (day as f32, y as f32, x as f32);
    288.0 - 30.0 * (y / 20.0).sin().abs() + 5.0 * (x / 10.0 + d / 58.0).sin() + noise
}

/// A committed repository holding `t2m` (365, 64, 64) float32 in (1, 64, 64) zstd chunks.
async fn fixture() -> (tempfile::TempDir, Repository) {
    let (dir, repo, session, store) = common::zarrs_repo::zarrs_repo(&["/"]).await;
    let mut b = ArrayBuilder::new(
        vec![DAYS, SIDE, SIDE],
        vec![1, SIDE, SIDE],
        data_type::float32(),
        f32::NAN,
    );
    b.bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(1, false))]);
    b.dimension_names(Some(["time", "y", "x"]));
    let array = b.build(store.clone(), "/t2m").unwrap();
    array.async_store_metadata().await.unwrap();
    for day in 0..DAYS {
        let field: Vec<f32> = (0..SIDE * SIDE)
            .map(|i| value(day, i / SIDE, i % SIDE))
            .collect();
        array.async_store_chunk(&[day, 0, 0], field).await.unwrap();
    }
    session.commit("a year", None).await.unwrap();
    (dir, repo)
}

/// The zarrs array described by the `zarr.json` served at `url` (its codec chain decodes).
async fn client_array(url: &str) -> Array<MemoryStore> {
    let doc = fetch(url).await;
    let metadata: ArrayMetadataV3 = serde_json::from_slice(&doc).unwrap();
    Array::new_with_metadata(
        Arc::new(MemoryStore::new()),
        "/t2m",
        ArrayMetadata::V3(metadata),
    )
    .unwrap()
}

/// One client for the whole measurement, so connections are reused as an HTTP client
/// library (aiohttp, reqwest) does.
fn shared_client() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(client)
}

async fn fetch(url: &str) -> Bytes {
    let response = shared_client().get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    response.bytes().await.unwrap()
}

/// The float32 values of an encoded chunk of `shape`, decoded by `array`'s codecs.
fn decode(array: &Array<MemoryStore>, encoded: &[u8], shape: &[u64]) -> Vec<f32> {
    let shape: Vec<NonZeroU64> = shape.iter().map(|&s| NonZeroU64::new(s).unwrap()).collect();
    let bytes = array
        .codecs()
        .decode(
            Cow::Borrowed(encoded),
            &shape,
            array.data_type(),
            array.fill_value(),
            &CodecOptions::default(),
        )
        .unwrap()
        .into_fixed()
        .unwrap();
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_ne_bytes(b.try_into().unwrap()))
        .collect()
}

fn expected(y: u64, x: u64) -> Vec<f32> {
    (0..DAYS).map(|d| value(d, y, x)).collect()
}

/// (a): one GET per day, `in_flight` at a time, each decoded; the value at (y, x) kept.
async fn direct_series(server: &TestServer, y: u64, x: u64, in_flight: usize) -> Vec<f32> {
    let array = client_array(&server.url("/main/t2m/zarr.json")).await;
    let array = &array;
    let mut series: Vec<(u64, f32)> = futures::stream::iter(0..DAYS)
        .map(|day| async move {
            let chunk = fetch(&server.url(&format!("/main/t2m/c/{day}/0/0"))).await;
            let field = decode(array, &chunk, &[1, SIDE, SIDE]);
            Ok::<_, ()>((day, field[(y * SIDE + x) as usize]))
        })
        .buffer_unordered(in_flight)
        .try_collect()
        .await
        .unwrap();
    series.sort_by_key(|(day, _)| *day);
    series.into_iter().map(|(_, v)| v).collect()
}

/// (b), (c): one GET of the view chunk holding the whole series at (y, x), decoded.
async fn view_series(server: &TestServer, y: u64, x: u64) -> Vec<f32> {
    let array = client_array(&server.url(&format!("{VIEW}/t2m/zarr.json"))).await;
    let chunk = fetch(&server.url(&format!("{VIEW}/t2m/c/0/{y}/{x}"))).await;
    decode(&array, &chunk, &[DAYS, 1, 1])
}

async fn timed<F: std::future::Future<Output = Vec<f32>>>(y: u64, x: u64, read: F) -> Duration {
    let started = Instant::now();
    let series = read.await;
    let elapsed = started.elapsed();
    assert_eq!(series, expected(y, x), "series at ({y}, {x})");
    elapsed
}

fn median(mut runs: Vec<Duration>) -> String {
    runs.sort();
    let all: Vec<String> = runs
        .iter()
        .map(|d| format!("{:.1}", d.as_secs_f64() * 1e3))
        .collect();
    format!(
        "{:>8.1} ms  (runs: {})",
        runs[runs.len() / 2].as_secs_f64() * 1e3,
        all.join(", ")
    )
}

fn options(decoded_cache_bytes: u64) -> ServeOptions {
    ServeOptions::new("127.0.0.1:0".parse().unwrap()).with_decoded_cache_bytes(decoded_cache_bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "prints timings; run with --release -- --ignored --nocapture"]
async fn time_series_over_http_direct_and_through_a_rechunked_view() {
    let (_dir, repo) = fixture().await;
    let default_cache = floe::DecodedChunkCache::DEFAULT_CAPACITY_BYTES;
    let points = [(5, 7), (40, 2), (63, 63)];

    let server = TestServer::start_with(repo.clone(), options(default_cache)).await;
    direct_series(&server, 0, 0, 1).await; // warms the page cache and the open snapshot
    let mut sequential = Vec::new();
    let mut concurrent = Vec::new();
    for &(y, x) in &points {
        sequential.push(timed(y, x, direct_series(&server, y, x, 1)).await);
        concurrent.push(timed(y, x, direct_series(&server, y, x, 16)).await);
    }
    server.stop().await;

    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for &(y, x) in &points {
        // A fresh server: empty decoded cache; the view is built before timing.
        let server = TestServer::start_with(repo.clone(), options(default_cache)).await;
        fetch(&server.url(&format!("{VIEW}/t2m/zarr.json"))).await;
        cold.push(timed(y, x, view_series(&server, y, x)).await);
        let (wy, wx) = (SIDE - 1 - y, x / 2);
        warm.push(timed(wy, wx, view_series(&server, wy, wx)).await);
        server.stop().await;
    }

    let server = TestServer::start_with(repo.clone(), options(0)).await;
    fetch(&server.url(&format!("{VIEW}/t2m/zarr.json"))).await;
    let mut uncached = Vec::new();
    for &(y, x) in &points {
        uncached.push(timed(y, x, view_series(&server, y, x)).await);
    }
    server.stop().await;

    println!("time series of 365 days at one point, t2m (365, 64, 64) float32, zstd, (1, 64, 64) chunks, median of 3:");
    println!(
        "  (a) direct, 365 GETs one at a time, decoded in the client: {}",
        median(sequential)
    );
    println!(
        "  (a) direct, 365 GETs 16 in flight, decoded in the client:  {}",
        median(concurrent)
    );
    println!(
        "  (b) view t2m=365,1,1, one GET, decoded cache cold:         {}",
        median(cold)
    );
    println!(
        "  (b) view t2m=365,1,1, one GET, decoded cache warm:         {}",
        median(warm)
    );
    println!(
        "  (c) view t2m=365,1,1, one GET, decoded cache disabled:     {}",
        median(uncached)
    );
}
