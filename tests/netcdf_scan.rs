//! `floe import netcdf`: netCDF-3 files scanned by floe's own parser.
//!
//! - `netcdf4_python_files_read_in_xarray_as_the_files_do`: files written by netCDF4-python
//!   (`tests/python/netcdf3_scan.py`: classic daily files with several record variables,
//!   packing, `_FillValue`, characters, a scalar and per-file time units, appended along
//!   `time`; a single record variable with unpadded records; padded records; CDF-5 unsigned
//!   and 64-bit types; a 20 MiB variable split into row blocks): the byte ranges equal
//!   kerchunk's `NetCDF3ToZarr` where kerchunk reads the file right, and `xarray.open_zarr`
//!   through `floe serve` is identical to `xarray.open_dataset` / `open_mfdataset`. Needs
//!   `FLOE_TEST_PYTHON`; without it the test says why and passes.
//! - the others build files byte by byte: hostile and broken files are refused with a clear
//!   error and change nothing.

#![cfg(all(feature = "cli", feature = "server"))]

mod common;

use std::path::Path;

use common::cli::{floe, ok};
use common::http::spawn_floe_serve;
use common::python::{python, run_python};
use serde_json::{json, Map, Value};

const SCRIPT: &str = "netcdf3_scan.py";

fn snapshot_of(text: &str) -> String {
    text.split("snapshot ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no snapshot in {text}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netcdf4_python_files_read_in_xarray_as_the_files_do() {
    let Some(python) = python("netcdf4_python_files_read_in_xarray_as_the_files_do") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    run_python(&python, SCRIPT, vec!["make".into(), out.clone()]).await;
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    let repo = dir.path().join("repo");
    ok(&repo, &["init"]);
    let mut versions = Map::new();
    for (name, case) in manifest["cases"].as_object().unwrap() {
        let files: Vec<&str> = case["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        // What floe finds in each file, for the comparison with kerchunk: a dry run changes
        // nothing.
        for file in &files {
            let emitted = format!("{file}.floe.json");
            let run = ok(
                &repo,
                &[
                    "import",
                    "netcdf",
                    file,
                    "--to",
                    name,
                    "--dry-run",
                    "--emit-kerchunk",
                    &emitted,
                ],
            );
            assert!(
                run.text().contains("dry run: nothing imported"),
                "{}",
                run.text()
            );
            assert!(Path::new(&emitted).exists());
        }
        let mut args = vec!["import", "netcdf"];
        if name == "daily_reversed" {
            args.extend(files.iter().rev());
        } else {
            args.extend(&files);
        }
        args.extend(["--to", name.as_str()]);
        if let Some(dim) = case["append_dim"].as_str() {
            args.extend(["--append-dim", dim]);
        }
        let run = ok(&repo, &args);
        let text = run.text();
        // One HEAD request and one read per file (every header here fits the first read),
        // and two small reads of the time coordinate to order several files.
        let requests = if files.len() > 1 {
            "(4 requests"
        } else {
            "(2 requests"
        };
        assert_eq!(text.matches(requests).count(), files.len(), "{text}");
        versions.insert(name.clone(), json!(snapshot_of(&text)));
    }
    // Only `t2m`, with the coordinates of its dimensions; then all but `flag`.
    let daily: Vec<&str> = manifest["cases"]["daily"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    let mut args = vec!["import", "netcdf"];
    args.extend(&daily);
    args.extend([
        "--to",
        "only_t2m",
        "--append-dim",
        "time",
        "--variables",
        "t2m",
    ]);
    ok(&repo, &args);
    for present in ["t2m", "time", "lat", "lon"] {
        ok(&repo, &["info", &format!("/only_t2m/{present}")]);
    }
    for absent in ["flag", "station", "crs"] {
        floe(&repo, &["info", &format!("/only_t2m/{absent}")]).assert_error(3, absent);
    }
    ok(
        &repo,
        &[
            "import",
            "netcdf",
            daily[0],
            "--to",
            "no_flag",
            "--drop-variables",
            "flag,station",
        ],
    );
    floe(&repo, &["info", "/no_flag/flag"]).assert_error(3, "flag");
    ok(&repo, &["info", "/no_flag/t2m"]);
    floe(
        &repo,
        &[
            "import",
            "netcdf",
            daily[0],
            "--to",
            "x",
            "--variables",
            "nope",
        ],
    )
    .assert_error(2, "no variable `nope`");
    // Files whose times overlap are refused, naming both, and nothing is committed.
    let daily = manifest["cases"]["daily"]["files"][0].as_str().unwrap();
    floe(
        &repo,
        &[
            "import",
            "netcdf",
            daily,
            daily,
            "--to",
            "twice",
            "--append-dim",
            "time",
        ],
    )
    .assert_error(2, "overlap");
    let log = ok(&repo, &["log", "--json"]).json();
    assert_eq!(
        log["entries"].as_array().unwrap().len(),
        1 + versions.len() + 2,
        "one commit per import, none for the dry runs or refusals: {log}"
    );
    let refs = run_python(&python, SCRIPT, vec!["refs".into(), out.clone()]).await;
    assert_eq!(refs.matches("refs ok ").count(), 5, "{refs}");
    // kerchunk miscounts the records of the file with a single record variable.
    assert!(
        refs.contains("single_record.nc (2 kerchunk ranges past the end)"),
        "{refs}"
    );
    let info = ok(&repo, &["info", "/big/v", "--json"]).json();
    assert_eq!(info["chunks"]["virtual"], json!(2), "{info}");
    let versions_path = dir.path().join("versions.json");
    std::fs::write(&versions_path, Value::Object(versions.clone()).to_string()).unwrap();
    let allow = std::ffi::OsStr::new("--allow-virtual-declared");
    let (_server, url) = spawn_floe_serve(&repo, &[allow]).await;
    let compared = run_python(
        &python,
        SCRIPT,
        vec![
            "compare".into(),
            url,
            out,
            versions_path.display().to_string(),
        ],
    )
    .await;
    for case in versions.keys() {
        assert!(compared.contains(&format!("ok {case}\n")), "{compared}");
    }
}

/// A classic file: dimension `x` (3), global attribute `title`, variable `v(x)` of shorts
/// 1, 2, 3 right after the header (its `begin` at `begin` when given).
fn tiny_classic(begin: Option<u32>) -> Vec<u8> {
    let be = |n: u32| n.to_be_bytes();
    let name = |out: &mut Vec<u8>, text: &str| {
        out.extend(be(text.len() as u32));
        out.extend(text.as_bytes());
        while out.len() % 4 != 0 {
            out.push(0);
        }
    };
    let mut h = b"CDF\x01".to_vec();
    h.extend(be(0));
    h.extend(be(0x0A));
    h.extend(be(1));
    name(&mut h, "x");
    h.extend(be(3));
    h.extend(be(0x0C));
    h.extend(be(1));
    name(&mut h, "title");
    h.extend(be(2));
    h.extend(be(4));
    h.extend(b"tiny");
    h.extend(be(0x0B));
    h.extend(be(1));
    name(&mut h, "v");
    h.extend(be(1));
    h.extend(be(0));
    h.extend([0; 8]);
    h.extend(be(3));
    h.extend(be(8));
    let header_len = h.len() as u32 + 4;
    h.extend(be(begin.unwrap_or(header_len)));
    for value in [1u16, 2, 3, 0] {
        h.extend(value.to_be_bytes());
    }
    h
}

/// The scans can be spawned on a multi-threaded runtime (the Python package does).
#[test]
fn scan_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let files = vec!["/nowhere.nc".to_string()];
    let options = Vec::new();
    let many = floe::scan_sources(&files, &options, 4, Some("time"));
    assert_send(&many);
    let one = floe::scan_source(&files[0], &options);
    assert_send(&one);
}

#[test]
fn a_file_built_by_hand_reads_back_and_hostile_ones_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    ok(&repo, &["init"]);
    let good = dir.path().join("good.nc");
    std::fs::write(&good, tiny_classic(None)).unwrap();
    let run = ok(
        &repo,
        &["import", "netcdf", good.to_str().unwrap(), "--to", "tiny"],
    );
    assert!(
        run.text()
            .contains("netCDF-3 classic, 1 arrays, 1 chunk references"),
        "{}",
        run.text()
    );
    // The chunk is the file's own bytes: three big-endian shorts, the padding left out.
    let cat = ok(&repo, &["--allow-virtual-declared", "cat", "/tiny/v/0"]);
    assert_eq!(cat.stdout, [0, 1, 0, 2, 0, 3]);
    let metadata: Value =
        serde_json::from_slice(&ok(&repo, &["cat", "/tiny/v/zarr.json"]).stdout).unwrap();
    assert_eq!(metadata["data_type"], json!("int16"), "{metadata}");
    assert_eq!(metadata["dimension_names"], json!(["x"]), "{metadata}");
    let group: Value =
        serde_json::from_slice(&ok(&repo, &["cat", "/tiny/zarr.json"]).stdout).unwrap();
    assert_eq!(group["attributes"]["title"], json!("tiny"), "{group}");
    let before = ok(&repo, &["log", "--json"]).json();

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated.nc",
            tiny_classic(None)[..40].to_vec(),
            "past the end of the file",
        ),
        (
            "garbage.nc",
            b"not a netcdf file at all".to_vec(),
            "neither netCDF nor HDF5",
        ),
        (
            "hdf5.nc",
            b"\x89HDF\r\n\x1a\n\x00\x00\x00\x00".to_vec(),
            "its HDF5 superblock",
        ),
        ("overlap.nc", tiny_classic(Some(8)), "inside the header"),
        ("empty.nc", Vec::new(), "neither netCDF nor HDF5"),
    ];
    for (name, bytes, needle) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        floe(
            &repo,
            &["import", "netcdf", path.to_str().unwrap(), "--to", "bad"],
        )
        .assert_error(2, needle);
    }
    // A header whose data lies past the end of the file: refused by the scan.
    let mut short = tiny_classic(None);
    short.truncate(short.len() - 8);
    let path = dir.path().join("short.nc");
    std::fs::write(&path, short).unwrap();
    floe(
        &repo,
        &["import", "netcdf", path.to_str().unwrap(), "--to", "bad"],
    )
    .assert_error(2, "past the end of the file");
    let missing = dir.path().join("missing.nc");
    floe(
        &repo,
        &["import", "netcdf", missing.to_str().unwrap(), "--to", "bad"],
    )
    .assert_error(3, "missing.nc");
    let two = floe(
        &repo,
        &[
            "import",
            "netcdf",
            good.to_str().unwrap(),
            good.to_str().unwrap(),
            "--to",
            "bad",
        ],
    );
    two.assert_error(2, "--append-dim");
    assert_eq!(
        ok(&repo, &["log", "--json"]).json(),
        before,
        "nothing committed"
    );
}

/// A netCDF-3 file on S3 (moto started by `scripts/check`): scanned with two requests,
/// imported through the library and read back through the repository; a header longer than
/// the first read costs one more.
#[tokio::test]
async fn a_file_on_s3_is_scanned_in_two_requests() {
    use object_store::ObjectStoreExt;
    let Some((bucket, options, store)) =
        common::s3_sources::s3_sources("a_file_on_s3_is_scanned_in_two_requests")
    else {
        return;
    };
    let key = format!(
        "{}/tiny.nc",
        common::s3_sources::unique_prefix("netcdf-scan")
    );
    store
        .put(
            &object_store::path::Path::from(key.as_str()),
            tiny_classic(None).into(),
        )
        .await
        .unwrap();
    let url = format!("s3://{bucket}/{key}");
    let (refs, summary) = floe::scan_source(&url, &options).await.unwrap();
    assert_eq!(summary.format, "netCDF-3 classic");
    assert_eq!(summary.requests, 2, "{summary:?}");
    assert_eq!(
        refs.refs["v/0"],
        floe::KerchunkRef::Range {
            url: url.as_str().into(),
            offset: tiny_classic(None).len() as u64 - 8,
            length: 6
        }
    );

    // A header of 100,000 bytes (a long global attribute): one more read.
    let long = long_header_file(100_000);
    let long_key = key.replace("tiny.nc", "long.nc");
    store
        .put(
            &object_store::path::Path::from(long_key.as_str()),
            long.clone().into(),
        )
        .await
        .unwrap();
    let long_url = format!("s3://{bucket}/{long_key}");
    let (long_refs, long_summary) = floe::scan_source(&long_url, &options).await.unwrap();
    assert_eq!(long_summary.requests, 3, "{long_summary:?}");
    let group: Value = match &long_refs.refs[".zattrs"] {
        floe::KerchunkRef::Inline(bytes) => serde_json::from_slice(bytes).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(group["history"].as_str().unwrap().len(), 100_000);

    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("s3://{bucket}/");
    let repo = floe::Repository::init_location(dir.path().to_str().unwrap(), &vec![])
        .await
        .unwrap()
        .with_virtual_access(floe::VirtualAccess::deny_all().allow(&prefix).unwrap());
    repo.declare_virtual_containers(&[
        floe::VirtualContainer::new(&prefix, options.clone()).unwrap()
    ])
    .await
    .unwrap();
    let session = repo.writable_session("main").await.unwrap();
    let mut import = floe::ImportOptions::new(floe::NodePath::new("tiny").unwrap());
    import.source_options = options.clone();
    floe::import_kerchunk(&session, &refs, &import)
        .await
        .unwrap();
    session.commit("tiny from s3", None).await.unwrap();
    let read = repo
        .readonly_session(&floe::VersionSpec::Branch("main".into()))
        .await
        .unwrap();
    let chunk = read
        .get_chunk(&floe::NodePath::new("tiny/v").unwrap(), &[0])
        .await
        .unwrap();
    assert_eq!(chunk.as_deref(), Some(&[0u8, 1, 0, 2, 0, 3][..]));
}

/// A classic file whose global attribute `history` holds `length` bytes of text.
fn long_header_file(length: usize) -> Vec<u8> {
    let be = |n: u32| n.to_be_bytes();
    let mut h = b"CDF\x01".to_vec();
    h.extend(be(0));
    h.extend([0; 8]);
    h.extend(be(0x0C));
    h.extend(be(1));
    h.extend(be(7));
    h.extend(b"history\0");
    h.extend(be(2));
    h.extend(be(length as u32));
    h.extend(std::iter::repeat_n(b'h', length));
    while h.len() % 4 != 0 {
        h.push(0);
    }
    h.extend([0; 8]);
    h
}
