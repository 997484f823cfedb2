//! `floe import netcdf` (alias `hdf5`): HDF5 and netCDF-4 files scanned by floe's own parser.
//!
//! - `hdf5_and_netcdf4_files_read_as_h5py_and_xarray_read_them`: the corpus of
//!   `tests/python/hdf5_scan.py` (netCDF4-python files with groups, an unlimited dimension,
//!   zlib+shuffle, fletcher32, big-endian, strings, packing, fill values; h5py files with
//!   superblocks 0-3, every chunk index, compact and contiguous layouts, unfiltered chunks,
//!   every integer and float type, dense attributes and links, dimension scales and phony
//!   dimensions; 30 daily netCDF-4 files). Each file's dry run emits kerchunk references whose
//!   byte ranges, inline chunks and metadata must equal what h5py and netCDF4-python report;
//!   each file imported and served reads as `xarray.open_dataset` (netCDF-4, group by group) or
//!   h5py (bit for bit) reads it; the daily files appended along `time` read as
//!   `xarray.open_mfdataset`. Needs `FLOE_TEST_PYTHON`; without it the test says why and
//!   passes. Every failure is collected and reported at the end, file by file.
//! - `hostile_hdf5_files_are_refused_and_change_nothing`: files built byte by byte (a
//!   truncated superblock, garbage after the signature, a root group past the end of the
//!   file, a superblock with a wrong checksum) are refused with a clear error and nothing is
//!   committed.

#![cfg(all(feature = "cli", feature = "server"))]

mod common;

use std::path::Path;

use common::cli::{floe, ok, Run};
use common::http::spawn_floe_serve;
use common::python::{python, run_python};
use serde_json::{json, Value};

const SCRIPT: &str = "hdf5_scan.py";

/// The lines of a script's output that report a failure (`FAIL ...`, `refs FAIL ...`).
fn failed_lines(output: &str) -> Vec<String> {
    output
        .lines()
        .filter(|line| line.starts_with("FAIL ") || line.starts_with("refs FAIL "))
        .map(str::to_string)
        .collect()
}

/// `what` and the error of a run that failed, or `None` when it succeeded.
fn failure(what: &str, run: &Run) -> Option<String> {
    (run.code != 0).then(|| format!("{what}: exit {}: {}", run.code, run.stderr.trim()))
}

fn commits(repo: &Path) -> usize {
    ok(repo, &["log", "--json"]).json()["entries"]
        .as_array()
        .unwrap()
        .len()
}

/// One file of the manifest.
struct Case<'a> {
    name: &'a str,
    path: &'a str,
    /// `netcdf` for netCDF4-python files, `hdf5` (the alias) for h5py ones.
    subcommand: &'a str,
    /// What the scan reports the file as.
    format: String,
    import: bool,
}

fn cases(manifest: &Value) -> Vec<Case<'_>> {
    manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| {
            let superblock = file["superblock"].as_u64().unwrap();
            let netcdf = file["kind"] == "netcdf4";
            Case {
                name: file["name"].as_str().unwrap(),
                path: file["path"].as_str().unwrap(),
                subcommand: if netcdf { "netcdf" } else { "hdf5" },
                format: if netcdf {
                    format!("netCDF-4 (HDF5 superblock version {superblock})")
                } else {
                    format!("HDF5 (superblock version {superblock})")
                },
                import: file["import"].as_bool().unwrap(),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hdf5_and_netcdf4_files_read_as_h5py_and_xarray_read_them() {
    let Some(python) = python("hdf5_and_netcdf4_files_read_as_h5py_and_xarray_read_them") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("corpus").display().to_string();
    run_python(&python, SCRIPT, vec!["make".into(), out.clone()]).await;
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(Path::new(&out).join("manifest.json")).unwrap())
            .unwrap();
    let cases = cases(&manifest);
    let repo = dir.path().join("repo");
    ok(&repo, &["init"]);
    let mut failures: Vec<String> = Vec::new();

    // What floe finds in each file, emitted as kerchunk references: a dry run commits
    // nothing and says what the file is.
    for case in &cases {
        let emitted = format!("{}.floe.json", case.path);
        let run = floe(
            &repo,
            &[
                "import",
                case.subcommand,
                case.path,
                "--to",
                case.name,
                "--dry-run",
                "--emit-kerchunk",
                &emitted,
            ],
        );
        if let Some(f) = failure(&format!("dry run of {}", case.name), &run) {
            failures.push(f);
            continue;
        }
        let text = run.text();
        for needle in [case.format.as_str(), "dry run: nothing imported"] {
            if !text.contains(needle) {
                failures.push(format!("dry run of {}: no {needle:?} in {text}", case.name));
            }
        }
    }
    assert_eq!(commits(&repo), 1, "dry runs commit nothing");

    // Byte ranges, inline chunks and metadata against h5py / netCDF4-python.
    let refs = run_python(&python, SCRIPT, vec!["refs".into(), out.clone()]).await;
    failures.extend(failed_lines(&refs));
    assert_eq!(
        refs.matches("refs ok ").count() + failed_lines(&refs).len(),
        cases.len(),
        "one verdict per file: {refs}"
    );

    // Every file imported for real (h5py files through the `hdf5` alias), then the daily
    // files appended along `time`, given out of order.
    let mut imported: Vec<&str> = Vec::new();
    for case in cases.iter().filter(|c| c.import) {
        let run = floe(
            &repo,
            &["import", case.subcommand, case.path, "--to", case.name],
        );
        match failure(&format!("import of {}", case.name), &run) {
            Some(f) => failures.push(f),
            None => imported.push(case.name),
        }
    }
    let mut args = vec!["import", "netcdf"];
    args.extend(
        manifest["daily"]["order"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap()),
    );
    args.extend(["--to", "daily", "--append-dim", "time"]);
    match failure("import of the daily files", &floe(&repo, &args)) {
        Some(f) => failures.push(f),
        None => imported.push("daily"),
    }
    assert_eq!(
        commits(&repo),
        1 + imported.len(),
        "one commit per import, none for a refused one"
    );

    // Read back through `floe serve`: xarray for netCDF-4, zarr against h5py for the rest.
    if !imported.is_empty() {
        let imported_path = dir.path().join("imported.json");
        std::fs::write(&imported_path, json!(imported).to_string()).unwrap();
        let allow = std::ffi::OsStr::new("--allow-virtual-declared");
        let (_server, url) = spawn_floe_serve(&repo, &[allow]).await;
        let compared = run_python(
            &python,
            SCRIPT,
            vec![
                "compare".into(),
                url,
                out,
                imported_path.display().to_string(),
            ],
        )
        .await;
        failures.extend(failed_lines(&compared));
        for name in &imported {
            let verdicts = compared
                .lines()
                .filter(|l| l.starts_with(&format!("ok {name}")))
                .count();
            if verdicts == 0 && !compared.contains(&format!("FAIL {name}")) {
                failures.push(format!("compare: no verdict for {name}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The HDF5 signature and a version 0 superblock (8-byte offsets and lengths, no base
/// address) whose end-of-file address is `eof` and whose root group's object header is at
/// `root`: 96 bytes.
fn superblock_v0(root: u64, eof: u64) -> Vec<u8> {
    let mut b = b"\x89HDF\r\n\x1a\n".to_vec();
    // Versions of the superblock, free-space storage, root symbol table entry; reserved;
    // version of the shared header message format; sizes of offsets and lengths; reserved.
    b.extend([0, 0, 0, 0, 0, 8, 8, 0]);
    b.extend(4u16.to_le_bytes()); // group leaf node K
    b.extend(16u16.to_le_bytes()); // group internal node K
    b.extend(0u32.to_le_bytes()); // file consistency flags
    b.extend(0u64.to_le_bytes()); // base address
    b.extend(u64::MAX.to_le_bytes()); // free-space info: undefined
    b.extend(eof.to_le_bytes());
    b.extend(u64::MAX.to_le_bytes()); // driver information block: undefined

    // The root group's symbol table entry: link name offset, object header address, cache
    // type, reserved, scratch pad.
    b.extend(0u64.to_le_bytes());
    b.extend(root.to_le_bytes());
    b.extend([0; 24]);
    assert_eq!(b.len(), 96);
    b
}

/// A version 2 superblock (48 bytes) with a checksum that is not its Jenkins lookup3 hash.
fn superblock_v2_bad_checksum() -> Vec<u8> {
    let mut b = b"\x89HDF\r\n\x1a\n".to_vec();
    b.extend([2, 8, 8, 0]); // version, sizes of offsets and lengths, flags
    b.extend(0u64.to_le_bytes()); // base address
    b.extend(u64::MAX.to_le_bytes()); // superblock extension: undefined
    b.extend(48u64.to_le_bytes()); // end of file
    b.extend(48u64.to_le_bytes()); // root group object header
    b.extend(0xdead_beef_u32.to_le_bytes());
    b
}

#[test]
fn hostile_hdf5_files_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    ok(&repo, &["init"]);
    let before = ok(&repo, &["log", "--json"]).json();
    let mut garbage = b"\x89HDF\r\n\x1a\n".to_vec();
    garbage.extend((0..200u32).map(|i| (i * 97 % 251) as u8 | 0x80));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated.h5",
            superblock_v0(96, 96)[..50].to_vec(),
            "truncated",
        ),
        (
            "signature_only.h5",
            b"\x89HDF\r\n\x1a\n".to_vec(),
            "truncated",
        ),
        ("garbage.h5", garbage, "superblock version"),
        (
            "root_past_end.h5",
            superblock_v0(1 << 40, 96),
            "past the end of the file",
        ),
        (
            "root_past_eof_address.h5",
            superblock_v0(96, 1 << 20),
            "past the end",
        ),
        ("checksum.h5", superblock_v2_bad_checksum(), "checksum"),
    ];
    for (name, bytes, needle) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        for subcommand in ["netcdf", "hdf5"] {
            floe(
                &repo,
                &["import", subcommand, path.to_str().unwrap(), "--to", "bad"],
            )
            .assert_error(2, needle);
        }
        let emitted = dir.path().join(format!("{name}.json"));
        floe(
            &repo,
            &[
                "import",
                "netcdf",
                path.to_str().unwrap(),
                "--to",
                "bad",
                "--dry-run",
                "--emit-kerchunk",
                emitted.to_str().unwrap(),
            ],
        )
        .assert_error(2, needle);
        assert!(!emitted.exists(), "{name}: no references emitted");
    }
    floe(&repo, &["info", "/bad"]).assert_error(3, "bad");
    assert_eq!(
        ok(&repo, &["log", "--json"]).json(),
        before,
        "nothing committed"
    );
}
