//! Real Python clients (zarr-python 3.1, xarray, fsspec's HTTP filesystem over aiohttp) reading
//! a floe repository through the HTTP server: every version form (branch, tag, snapshot id,
//! `branch@<time>`), many data types and codecs, missing chunks, nested groups, sharding,
//! consolidated and listing-based discovery; rechunked views in their URL and header forms; a
//! rectilinear array through the server's default regular-grid view; datasets in sub-groups
//! opened from their own URL with consolidated metadata; empty arrays with a chunk size of 0.
//! Also prints how long xarray takes to open a 50-variable dataset.
//!
//! The Python interpreter comes from `FLOE_TEST_PYTHON` (scripts/check sets it to its venv's
//! python, with the packages installed); without it these tests say why and pass. The scripts
//! live in tests/python/ and run through `common::python`.

#![cfg(feature = "server")]

mod common;
#[path = "python_interop/dataset.rs"]
mod dataset;
#[path = "python_interop/monthly.rs"]
mod monthly;
#[path = "python_interop/subgroups.rs"]
mod subgroups;

use std::sync::Arc;

use common::http::TestServer;
use common::python::{python, run_python};
use common::tempdir_repo;
use floe::RepositorySettings;
use serde_json::{json, Value};
use zarrs::array::codec::ZstdCodec;
use zarrs::array::{data_type, ArrayBuilder};

/// Small thresholds so chunks land inline, in packs and in objects of their own (the server
/// then answers ranges out of every kind of storage).
fn settings() -> RepositorySettings {
    RepositorySettings {
        inline_threshold: 64,
        single_object_threshold: 300,
        ..RepositorySettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_clients_read_every_version() {
    let Some(python) = python("python_clients_read_every_version") else {
        return;
    };
    let (dir, repo) = tempdir_repo(settings()).await;
    let versions = dataset::build_history(&repo).await;
    let expected = json!({
        "groups": dataset::group_attributes()
            .into_iter()
            .map(|(path, attrs)| (path.to_string(), attrs))
            .collect::<serde_json::Map<String, Value>>(),
        "versions": versions.iter().map(|v| v.expected.clone()).collect::<Vec<_>>(),
    });
    let expected_path = dir.path().join("expected.json");
    std::fs::write(&expected_path, expected.to_string()).unwrap();

    let server = TestServer::start(repo).await;
    let out = run_python(
        &python,
        "read_versions.py",
        vec![server.url(""), expected_path.to_str().unwrap().to_string()],
    )
    .await;
    for v in &versions {
        assert!(
            out.contains(&format!("ok {}", v.label)),
            "no success line for {}",
            v.label
        );
    }
    server.stop().await;
}

/// A rectilinear array (monthly chunks of daily values) read by zarr-python and xarray through
/// the server's default regular-grid view: chunks of the longest month, every value (missing
/// chunks as fill) equal to the model. The native form (`;grid=native`) is not read from
/// Python: zarr-python 3.1 does not know the `rectilinear` grid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_reads_a_rectilinear_array_through_the_regular_view() {
    let Some(python) = python("python_reads_a_rectilinear_array_through_the_regular_view") else {
        return;
    };
    let (dir, repo) = tempdir_repo(settings()).await;
    let expected = json!({"rectilinear": monthly::build(&repo).await});
    let expected_path = dir.path().join("expected.json");
    std::fs::write(&expected_path, expected.to_string()).unwrap();
    let server = TestServer::start(repo).await;
    let out = run_python(
        &python,
        "read_versions.py",
        vec![server.url(""), expected_path.to_str().unwrap().to_string()],
    )
    .await;
    assert!(
        out.contains(&format!("ok rectilinear {}", monthly::PATH)),
        "{out}"
    );
    server.stop().await;
}

/// A `zarr.json` as zarr-python 3.1 writes it for `create_array(name, shape=shape,
/// chunks=shape, dtype=dtype, dimension_names=dims)` when the first dimension is empty: the
/// chunk size along it is 0.
fn zarr_python_empty_array(shape: &[u64], dtype: &str, dims: &[&str]) -> bytes::Bytes {
    bytes::Bytes::from(
        json!({"shape": shape, "data_type": dtype,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": shape}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": 0,
            "codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                       {"name": "zstd", "configuration": {"level": 0, "checksum": false}}],
            "attributes": {}, "dimension_names": dims, "zarr_format": 3,
            "node_type": "array", "storage_transformers": []})
        .to_string(),
    )
}

/// Empty arrays with a chunk size of 0 (zarr-python's `shape=(0,), chunks=(0,)` and
/// `shape=(0, 3), chunks=(0, 3)`) read by zarr-python (consolidated and by listing) and xarray
/// through the server: their shapes and chunk shapes as written, no chunk, empty values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_reads_empty_arrays_with_zero_chunk_sizes() {
    let Some(python) = python("python_reads_empty_arrays_with_zero_chunk_sizes") else {
        return;
    };
    let (_dir, repo) = tempdir_repo(settings()).await;
    let session = repo.writable_session("main").await.unwrap();
    let z = session.zarr();
    let root = json!({"zarr_format": 3, "node_type": "group", "attributes": {}});
    z.set("zarr.json", bytes::Bytes::from(root.to_string()))
        .await
        .unwrap();
    z.set(
        "e/zarr.json",
        zarr_python_empty_array(&[0], "int32", &["t"]),
    )
    .await
    .unwrap();
    z.set(
        "m/zarr.json",
        zarr_python_empty_array(&[0, 3], "float64", &["t", "x"]),
    )
    .await
    .unwrap();
    session.commit("empty arrays", None).await.unwrap();
    let server = TestServer::start(repo).await;
    let out = run_python(&python, "read_empty.py", vec![server.url("")]).await;
    assert!(out.contains("ok empty"), "{out}");
    server.stop().await;
}

/// Variables in the timing dataset.
const TIMING_VARIABLES: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xarray_opens_fifty_variables_over_http() {
    let Some(python) = python("xarray_opens_fifty_variables_over_http") else {
        return;
    };
    let (_dir, repo, session, store) = common::zarrs_repo::zarrs_repo(&["/"]).await;
    for v in 0..TIMING_VARIABLES {
        let mut b = ArrayBuilder::new(vec![365, 20], vec![73, 20], data_type::float32(), 0f32);
        b.dimension_names(Some(["time", "station"]))
            .bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(3, false))]);
        let array = b.build(store.clone(), &format!("/var{v:02}")).unwrap();
        array.async_store_metadata().await.unwrap();
        let values: Vec<f32> = (0..365 * 20).map(|i| (i + v) as f32).collect();
        array
            .async_store_array_subset(&[0..365, 0..20], values)
            .await
            .unwrap();
    }
    session.commit("50 variables", None).await.unwrap();

    let server = TestServer::start(repo).await;
    let out = run_python(
        &python,
        "open_time.py",
        vec![server.url("/main"), TIMING_VARIABLES.to_string()],
    )
    .await;
    assert!(out.contains("median"), "{out}");
    server.stop().await;
}

/// Rechunked views as Python sees them: `/main;chunks=...` in the URL and the zarr-proxy
/// `chunks` header (fsspec `storage_options={"headers": ...}`), through zarr-python and xarray:
/// requested chunk shapes reported, values identical to the stored arrays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_reads_rechunked_views() {
    let Some(python) = python("python_reads_rechunked_views") else {
        return;
    };
    let (dir, repo) = tempdir_repo(settings()).await;
    let versions = dataset::build_history(&repo).await;
    assert_eq!(versions[0].label, "branch main");
    let expected_path = dir.path().join("expected.json");
    std::fs::write(&expected_path, versions[0].expected.to_string()).unwrap();
    let server = TestServer::start(repo).await;
    let out = run_python(
        &python,
        "read_rechunked.py",
        vec![server.url(""), expected_path.to_str().unwrap().to_string()],
    )
    .await;
    assert!(
        out.contains("ok url form") && out.contains("ok header form"),
        "{out}"
    );
    server.stop().await;
}

/// Datasets stored below the root (`ds`, `ds/sub`) open from their own URL with consolidated
/// metadata: `xarray.open_zarr(<server>/main/ds)` with no warning (the "failed to open Zarr
/// store with consolidated metadata" fallback of issue 9 would be one), also with
/// `consolidated=True`, with the right variables and values; zarr-python finds every node below
/// them without listing; a rechunked view opened at `ds` shows its chunk shape. Opening `ds/sub`
/// (at the tag `counted`, which nothing else reads) reads one metadata document: its
/// `zarr.json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xarray_opens_datasets_in_sub_groups_with_one_metadata_request() {
    let Some(python) = python("xarray_opens_datasets_in_sub_groups_with_one_metadata_request")
    else {
        return;
    };
    let (dir, repo, session, store) = common::zarrs_repo::zarrs_repo(&[]).await;
    let (_, expected) = subgroups::build(&repo, &session, &store).await;
    let expected_path = dir.path().join("expected.json");
    std::fs::write(&expected_path, expected.to_string()).unwrap();
    let (server, log) = TestServer::start_recording(repo).await;
    let out = run_python(
        &python,
        "open_subgroups.py",
        vec![server.url(""), expected_path.to_str().unwrap().to_string()],
    )
    .await;
    for line in ["ok counted", "ok ds:", "ok ds/sub:", "ok view:"] {
        assert!(
            out.lines().any(|l| l.starts_with(line)),
            "no `{line}` in {out}"
        );
    }
    // The counted open: one metadata document, `ds/sub/zarr.json`, then the chunks of `u`
    // when the values load. zarr-python also probes the Zarr v2 names in parallel when the
    // format is not given: those are 404. No listing, no array document.
    let counted: Vec<_> = log
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/counted/"))
        .collect();
    let documents: Vec<&str> = counted
        .iter()
        .filter(|r| r.status == 200 && !r.path.starts_with("/counted/ds/sub/u/c/"))
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(documents, ["/counted/ds/sub/zarr.json"], "{counted:#?}");
    for request in counted.iter().filter(|r| r.status != 200) {
        let name = request.path.strip_prefix("/counted/ds/sub/");
        assert!(
            request.status == 404 && matches!(name, Some(".zgroup" | ".zattrs" | ".zmetadata")),
            "unexpected request {request:?} in {counted:#?}"
        );
    }
    server.stop().await;
}
