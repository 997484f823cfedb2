//! The virtual-dataset journey on a corpus of real layouts: files written by netCDF4-python,
//! h5py and xarray (`tests/python/virtual_corpus.py`: unlimited `time` with netCDF's default
//! chunking, contiguous variables, scalars and fixed-length strings, nested groups, packed
//! `int16`, `_FillValue` and `missing_value`, per-file time units, a `noleap` calendar, a
//! dimension without a coordinate variable, a partly filled last chunk, monthly files of
//! 31/28/31 days, float32 packing, groups with their own dimensions, variable-length
//! strings, a variable written for fewer records, a plain HDF5 file, a netCDF-3 file, an
//! xarray-written file), referenced by kerchunk, imported day after day, served, and compared
//! with xarray.
//!
//! For each case the first file is imported and the following ones appended along `time`; at
//! every snapshot, `xarray.open_zarr` through the server must be identical
//! (`xarray.testing.assert_identical`: values, dtypes, attributes, coordinates) to
//! `xarray.open_mfdataset` of the files imported so far, and must open from consolidated
//! metadata without a warning.
//!
//! - `the_cli_imports_every_layout_day_after_day`: `floe import kerchunk --append-dim time`
//!   processes, then the real `floe serve` binary;
//! - `the_library_imports_the_same_way`: `import_kerchunk` in one process, served in-process.
//!
//! Needs `FLOE_TEST_PYTHON` (scripts/check sets it to a venv with kerchunk, netCDF4, h5py,
//! xarray, dask); without it the tests say why and pass.

#![cfg(feature = "server")]

mod common;

use std::path::Path;

use common::cli::floe;
use common::http::{spawn_floe_serve, TestServer};
use common::python::{python, run_python};
use floe::{import_kerchunk, ImportOptions, KerchunkRefs, NodePath, Repository, VirtualAccess};
use serde_json::{json, Map, Value};

const SCRIPT: &str = "virtual_corpus.py";

/// Writes the corpus into `dir` and returns its manifest's cases.
async fn make_corpus(python: &Path, dir: &Path) -> Map<String, Value> {
    run_python(
        python,
        SCRIPT,
        vec!["make".into(), dir.display().to_string()],
    )
    .await;
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    manifest["cases"].as_object().unwrap().clone()
}

fn refs_of(case: &Value) -> Vec<String> {
    case["refs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

/// Compares every case at every version through `server` and checks each comparison ran.
async fn compare(python: &Path, server: &str, dir: &Path, versions: &Map<String, Value>) {
    let path = dir.join("versions.json");
    std::fs::write(&path, Value::Object(versions.clone()).to_string()).unwrap();
    let args = vec![
        "compare".into(),
        server.to_string(),
        dir.display().to_string(),
        path.display().to_string(),
    ];
    let out = run_python(python, SCRIPT, args).await;
    for (case, snapshots) in versions {
        for k in 1..=snapshots.as_array().unwrap().len() {
            assert!(
                out.contains(&format!("ok {case} {k}\n")),
                "no `ok {case} {k}` in:\n{out}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_imports_every_layout_day_after_day() {
    let Some(python) = python("the_cli_imports_every_layout_day_after_day") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cases = make_corpus(&python, dir.path()).await;
    let repo = dir.path().join("repo");
    let init = floe(&repo, &["init"]);
    assert_eq!(init.code, 0, "{}", init.stderr);
    let mut versions = Map::new();
    for (name, case) in &cases {
        let mut snapshots = Vec::new();
        for refs in refs_of(case) {
            let run = floe(
                &repo,
                &[
                    "import",
                    "kerchunk",
                    &refs,
                    "--to",
                    name,
                    "--append-dim",
                    "time",
                ],
            );
            assert_eq!(run.code, 0, "{name}: {refs}: {}", run.stderr);
            let text = run.text();
            let snapshot = text
                .split("snapshot ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .unwrap_or_else(|| panic!("no snapshot in {text}"));
            snapshots.push(json!(snapshot));
        }
        versions.insert(name.clone(), Value::Array(snapshots));
    }
    // What the summaries and `floe info` say of one case: the coordinate loaded (native
    // chunks), the data virtual.
    let count = |info: &Value, kind: &str| info["chunks"][kind].as_u64().unwrap();
    let info = floe(&repo, &["info", "/unlimited_default/time", "--json"]).json();
    assert_eq!(count(&info, "initialized"), 1, "{info}");
    assert_eq!(count(&info, "virtual"), 0, "{info}");
    let info = floe(&repo, &["info", "/unlimited_default/t2m", "--json"]).json();
    assert_eq!(count(&info, "virtual"), 36, "{info}");
    // The partly filled chunks of `partial_chunk/t2m` were cut and stored: two of three
    // time chunks per file became native (the last one of the last file stays virtual).
    let info = floe(&repo, &["info", "/partial_chunk/t2m", "--json"]).json();
    assert_eq!(info["shape"], json!([36, 4, 5]), "{info}");
    assert_eq!(
        count(&info, "virtual") + count(&info, "native") + count(&info, "inline"),
        count(&info, "initialized"),
        "{info}"
    );
    assert_eq!(
        count(&info, "native") + count(&info, "inline"),
        2 * 2,
        "{info}"
    );
    let info = floe(&repo, &["info", "/unlimited_default/t2m", "--json"]).json();
    assert_eq!(info["shape"], json!([36, 4, 5]), "{info}");
    let allow = std::ffi::OsStr::new("--allow-virtual-declared");
    let (_server, url) = spawn_floe_serve(&repo, &[allow]).await;
    compare(&python, &url, dir.path(), &versions).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_imports_the_same_way() {
    let Some(python) = python("the_library_imports_the_same_way") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cases = make_corpus(&python, dir.path()).await;
    let repo = Repository::init_location(dir.path().join("lib-repo").to_str().unwrap(), &vec![])
        .await
        .unwrap()
        .with_virtual_access(VirtualAccess::deny_all().allow_declared());
    let mut versions = Map::new();
    for name in [
        "unlimited_default",
        "time_units",
        "partial_chunk",
        "packed_fill",
    ] {
        let mut snapshots = Vec::new();
        for refs in refs_of(&cases[name]) {
            let session = repo.writable_session("main").await.unwrap();
            let mut options = ImportOptions::new(NodePath::new(name).unwrap());
            options.append_dim = Some("time".into());
            let refs = KerchunkRefs::read(Path::new(&refs)).unwrap();
            let summary = import_kerchunk(&session, &refs, &options).await.unwrap();
            println!("{name}: {summary}");
            let id = session.commit(name, None).await.unwrap();
            snapshots.push(json!(id.to_string()));
        }
        versions.insert(name.to_string(), Value::Array(snapshots));
    }
    let server = TestServer::start(repo).await;
    compare(&python, &server.url(""), dir.path(), &versions).await;
    server.stop().await;
}
