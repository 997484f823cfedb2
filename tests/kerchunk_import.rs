//! Importing kerchunk references, checked against references produced by kerchunk itself.
//!
//! `tests/python/make_kerchunk_refs.py` (run with the interpreter in `FLOE_TEST_PYTHON`, which
//! needs the packages of `scripts/python-kerchunk-requirements.txt`) writes netCDF4 files
//! (netCDF4) and HDF5 files (h5py) with chunking, shuffle and zlib, references to them made by
//! `kerchunk.hdf.SingleHdf5ToZarr` (JSON v0, v1, v1 with templates, parquet through
//! `kerchunk.df.refs_to_dataframe`, and a v1 file with `gen`), and the values netCDF4/h5py read.
//! Every array is imported, read back through zarrs over floe and compared value by value;
//! monthly files of 31, 28 and 31 days (one chunk per file along time) appended along `time`
//! make a rectilinear chunk grid that zarrs reads natively.
//! Without `FLOE_TEST_PYTHON` those tests print why and pass; the tests built from inline
//! references (appends, rectilinear grids and refusals, in `kerchunk_import/inline.rs`) always
//! run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use floe::{
    import_kerchunk, Error, ImportOptions, KerchunkRefs, NodePath, Repository, Session,
    SyncZarrsStore, VersionSpec, VirtualAccess,
};
use serde_json::Value;
use zarrs::array::Array;

fn p(path: &str) -> NodePath {
    NodePath::new(path).unwrap()
}

/// The interpreter with kerchunk, or `None` (after saying why) to skip.
fn python() -> Option<PathBuf> {
    match std::env::var_os("FLOE_TEST_PYTHON") {
        Some(python) => Some(PathBuf::from(python)),
        None => {
            eprintln!(
                "skipping: FLOE_TEST_PYTHON is not set (scripts/check sets it to a venv with the \
                 packages of scripts/python-kerchunk-requirements.txt)"
            );
            None
        }
    }
}

/// Files, references and expected values written by the Python script into a fresh directory.
struct Generated {
    dir: tempfile::TempDir,
    manifest: Value,
}

impl Generated {
    fn new(python: &Path) -> Generated {
        let dir = tempfile::tempdir().unwrap();
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/make_kerchunk_refs.py");
        let output = std::process::Command::new(python)
            .arg(&script)
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{} failed (install scripts/python-kerchunk-requirements.txt into that venv):\n{}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        eprintln!("{}", String::from_utf8_lossy(&output.stdout).trim());
        let manifest =
            serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap())
                .unwrap();
        Generated { dir, manifest }
    }

    fn set(&self, name: &str) -> &Value {
        &self.manifest["sets"][name]
    }

    fn refs(&self, name: &str) -> KerchunkRefs {
        KerchunkRefs::read(Path::new(self.set(name)["refs"].as_str().unwrap())).unwrap()
    }

    fn data(&self, file: &str) -> PathBuf {
        self.dir.path().join("data").join(file)
    }

    /// The expected values of one array, as little-endian bytes.
    fn expected(&self, set: &str, array: &str) -> Vec<u8> {
        let rel = self.set(set)["arrays"][array]["expected"].as_str().unwrap();
        std::fs::read(self.dir.path().join(rel)).unwrap()
    }
}

async fn new_repo(dir: &Path) -> Repository {
    Repository::init_location(dir.join("repo").to_str().unwrap(), &vec![])
        .await
        .unwrap()
}

/// A read-only session at `main` of a handle that trusts every declared container.
async fn reader(repo: &Repository) -> Session {
    repo.clone()
        .with_virtual_access(VirtualAccess::deny_all().allow_declared())
        .readonly_session(&VersionSpec::Branch("main".into()))
        .await
        .unwrap()
}

/// Every value of the array at `path`, read through zarrs over floe, as little-endian bytes.
fn read_le_bytes(session: &Session, path: &str, dtype: &str) -> (Vec<u64>, Vec<u8>) {
    let store = Arc::new(SyncZarrsStore::new(
        session.zarr(),
        tokio::runtime::Handle::current(),
    ));
    let array = Array::open(store, &format!("/{path}")).unwrap();
    let all = array.subset_all();
    let shape = array.shape().to_vec();
    macro_rules! read {
        ($t:ty) => {
            array
                .retrieve_array_subset::<Vec<$t>>(&all)
                .unwrap()
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>()
        };
    }
    let bytes = match dtype {
        "<f4" => read!(f32),
        "<f8" => read!(f64),
        "<i2" => read!(i16),
        "<i4" => read!(i32),
        "<i8" => read!(i64),
        "|u1" => read!(u8),
        other => panic!("no reader for {other}"),
    };
    (shape, bytes)
}

/// Checks every array of reference set `set`, imported at `to`.
fn check_set(generated: &Generated, session: &Session, set: &str, to: &str) -> usize {
    let arrays = generated.set(set)["arrays"].as_object().unwrap();
    for (name, info) in arrays {
        let path = format!("{to}/{name}");
        let dtype = info["dtype"].as_str().unwrap();
        let (shape, bytes) = read_le_bytes(session, &path, dtype);
        let want_shape: Vec<u64> = serde_json::from_value(info["shape"].clone()).unwrap();
        assert_eq!(shape, want_shape, "{set}: {name} shape");
        assert!(
            bytes == generated.expected(set, name),
            "{set}: values of {name} differ from what netCDF4/h5py read"
        );
    }
    arrays.len()
}

async fn import(
    session: &Session,
    refs: &KerchunkRefs,
    to: &str,
    append: Option<&str>,
) -> floe::ImportSummary {
    let mut options = ImportOptions::new(p(to));
    options.append_dim = append.map(str::to_string);
    import_kerchunk(session, refs, &options).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reference_form_reads_back_the_values_netcdf4_and_h5py_read() {
    let Some(python) = python() else { return };
    let generated = Generated::new(&python);
    let repo = new_repo(generated.dir.path()).await;
    let session = repo.writable_session("main").await.unwrap();
    let data_prefix = url::Url::from_directory_path(generated.dir.path().join("data"))
        .unwrap()
        .to_string();
    let sets = [
        ("day1", "nc/day1"),
        ("mixed_v0", "h5/v0"),
        ("mixed_v1", "h5/v1"),
        ("mixed_parquet", "h5/parquet"),
        ("grid_gen", "gen"),
    ];
    let mut inline = 0;
    for (i, (set, to)) in sets.iter().enumerate() {
        let summary = import(&session, &generated.refs(set), to, None).await;
        assert_eq!(summary.containers.len(), 1, "{set}: {summary}");
        assert_eq!(summary.containers[0].prefix, data_prefix);
        // The first import declares the data directory; later ones find it declared.
        assert_eq!(summary.containers[0].newly_declared, i == 0, "{set}");
        assert!(summary.virtual_refs > 0, "{set}: {summary}");
        assert_eq!(summary.skipped_keys, 0, "{set}");
        inline += summary.inline_chunks;
        if i == 0 {
            assert!(
                summary
                    .to_string()
                    .contains(&format!("declared container {data_prefix} for 1 source")),
                "{summary}"
            );
        }
    }
    assert!(
        inline > 0,
        "kerchunk inlined no chunk: the inline path went untested"
    );
    assert_eq!(repo.virtual_containers().await.unwrap().len(), 1);
    // The translated metadata keeps the attributes and names the dimensions.
    let t2m = session.node(&p("nc/day1/t2m")).unwrap().unwrap();
    let doc = t2m.metadata.document();
    assert_eq!(
        doc["dimension_names"],
        serde_json::json!(["time", "lat", "lon"])
    );
    assert_eq!(doc["attributes"]["units"], "K");
    assert_eq!(doc["codecs"][1]["name"], "numcodecs.shuffle");
    assert_eq!(doc["codecs"][2]["name"], "numcodecs.zlib");
    session.commit("import", None).await.unwrap();

    let read = reader(&repo).await;
    let mut checked = 0;
    for (set, to) in sets {
        checked += check_set(&generated, &read, set, to);
    }
    assert_eq!(checked, 7 + 7 * 3 + 1);

    // Reading still needs authorization.
    let denied = repo
        .readonly_session(&VersionSpec::Branch("main".into()))
        .await
        .unwrap();
    assert!(matches!(
        denied.get_chunk(&p("nc/day1/t2m"), &[0, 0, 0]).await,
        Err(Error::VirtualSourceNotAuthorized { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_files_append_along_time() {
    let Some(python) = python() else { return };
    let generated = Generated::new(&python);
    // Appending compares the coordinates with the existing ones, which reads their chunks.
    let repo = new_repo(generated.dir.path())
        .await
        .with_virtual_access(VirtualAccess::deny_all().allow_declared());
    for day in ["day1", "day2"] {
        let session = repo.writable_session("main").await.unwrap();
        let summary = import(&session, &generated.refs(day), "daily", Some("time")).await;
        if day == "day2" {
            // t2m, precip, count, mask and time grow; lat and lon are found unchanged.
            assert_eq!(
                (
                    summary.arrays_appended,
                    summary.arrays_unchanged,
                    summary.arrays_created
                ),
                (5, 2, 0),
                "{summary}"
            );
        }
        session.commit(day, None).await.unwrap();
    }
    let read = reader(&repo).await;
    for (name, info) in generated.set("day1")["arrays"].as_object().unwrap() {
        let dtype = info["dtype"].as_str().unwrap();
        let (shape, bytes) = read_le_bytes(&read, &format!("daily/{name}"), dtype);
        let mut expected = generated.expected("day1", name);
        let mut want_shape: Vec<u64> = serde_json::from_value(info["shape"].clone()).unwrap();
        if name != "lat" && name != "lon" {
            expected.extend(generated.expected("day2", name));
            want_shape[0] *= 2;
        }
        assert_eq!(shape, want_shape, "{name}");
        assert!(bytes == expected, "values of daily/{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monthly_files_of_unequal_lengths_append_into_a_rectilinear_grid() {
    let Some(python) = python() else { return };
    let generated = Generated::new(&python);
    let repo = new_repo(generated.dir.path())
        .await
        .with_virtual_access(VirtualAccess::deny_all().allow_declared());
    let months = ["month1", "month2", "month3"];
    for (i, month) in months.iter().enumerate() {
        let session = repo.writable_session("main").await.unwrap();
        let summary = import(&session, &generated.refs(month), "monthly", Some("time")).await;
        if i > 0 {
            // time, temp and rain grow by one chunk each; lat and lon are found unchanged.
            assert_eq!(
                (
                    summary.arrays_appended,
                    summary.arrays_unchanged,
                    summary.arrays_created
                ),
                (3, 2, 0),
                "{month}: {summary}"
            );
        }
        session.commit(month, None).await.unwrap();
    }
    let read = reader(&repo).await;
    // One chunk per month along time, the other dimensions as the files chunk them.
    assert_eq!(
        chunk_grid(&read, "monthly/temp"),
        rectilinear_grid(serde_json::json!([[31, 28, 31], 3, 2]))
    );
    assert_eq!(
        chunk_grid(&read, "monthly/rain"),
        rectilinear_grid(serde_json::json!([[31, 28, 31], 3, 4]))
    );
    // `time` is a coordinate: loaded, in one regular chunk that grows with each month.
    assert_eq!(
        chunk_grid(&read, "monthly/time"),
        serde_json::json!({"name": "regular", "configuration": {"chunk_shape": [131072]}})
    );
    assert_eq!(chunk_grid(&read, "monthly/lat")["name"], "regular");
    // zarrs reads the rectilinear grid natively: every value is what netCDF4 read.
    for (name, info) in generated.set("month1")["arrays"].as_object().unwrap() {
        let dtype = info["dtype"].as_str().unwrap();
        let (shape, bytes) = read_le_bytes(&read, &format!("monthly/{name}"), dtype);
        let mut want_shape: Vec<u64> = serde_json::from_value(info["shape"].clone()).unwrap();
        let expected: Vec<u8> = if name == "lat" || name == "lon" {
            generated.expected("month1", name)
        } else {
            want_shape[0] = 31 + 28 + 31;
            months
                .iter()
                .flat_map(|month| generated.expected(month, name))
                .collect()
        };
        assert_eq!(shape, want_shape, "{name}");
        assert!(bytes == expected, "values of monthly/{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_changed_after_import_fails_with_source_changed() {
    let Some(python) = python() else { return };
    let generated = Generated::new(&python);
    let repo = new_repo(generated.dir.path()).await;
    let session = repo.writable_session("main").await.unwrap();
    import(&session, &generated.refs("day1"), "d", None).await;
    session.commit("import", None).await.unwrap();
    let read = reader(&repo).await;
    assert!(read
        .get_chunk(&p("d/t2m"), &[0, 0, 0])
        .await
        .unwrap()
        .is_some());

    // Same length, other bytes, and a later modification time.
    let file = generated.data("day1.nc");
    let modified = std::fs::metadata(&file).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(modified + Duration::from_secs(10))
        .unwrap();
    match read.get_chunk(&p("d/t2m"), &[0, 0, 0]).await {
        Err(Error::VirtualSourceChanged { location }) => {
            assert!(location.ends_with("/day1.nc"), "{location}")
        }
        other => panic!("expected VirtualSourceChanged, got {other:?}"),
    }
}

#[cfg(feature = "cli")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_imports_appends_and_commits() {
    let Some(python) = python() else { return };
    let generated = Generated::new(&python);
    let repo_dir = generated.dir.path().join("repo");
    let floe = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_floe"))
            .arg("-r")
            .arg(&repo_dir)
            .args(args)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    assert_eq!(floe(&["init"]).0, Some(0));
    let refs1 = generated.set("day1")["refs"].as_str().unwrap().to_string();
    let refs2 = generated.set("day2")["refs"].as_str().unwrap().to_string();
    let (code, out, err) = floe(&[
        "import",
        "kerchunk",
        &refs1,
        "--to",
        "daily",
        "--append-dim",
        "time",
        "-m",
        "day 1",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("declared container file://"), "{out}");
    assert!(out.contains("7 arrays created"), "{out}");
    let (code, out, err) = floe(&[
        "import",
        "kerchunk",
        &refs2,
        "--to",
        "daily",
        "--append-dim",
        "time",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("5 appended, 2 unchanged"), "{out}");
    assert!(out.contains("used declared container"), "{out}");
    // A bad append dimension is a usage error naming it.
    let (code, _, err) = floe(&[
        "import",
        "kerchunk",
        &refs2,
        "--to",
        "daily",
        "--append-dim",
        "level",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("`level`"), "{err}");
    let (_, log, _) = floe(&["log"]);
    assert!(
        log.contains("day 1") && log.contains("import kerchunk"),
        "{log}"
    );

    let repo = Repository::open_location(repo_dir.to_str().unwrap(), &vec![])
        .await
        .unwrap();
    let read = reader(&repo).await;
    let (shape, bytes) = read_le_bytes(&read, "daily/t2m", "<f4");
    assert_eq!(shape, vec![8, 6, 5]);
    let mut expected = generated.expected("day1", "t2m");
    expected.extend(generated.expected("day2", "t2m"));
    assert!(bytes == expected);
}

/// The `chunk_grid` of the array at `path`.
fn chunk_grid(session: &Session, path: &str) -> Value {
    let node = session.node(&p(path)).unwrap().unwrap();
    node.metadata.document()["chunk_grid"].clone()
}

fn rectilinear_grid(chunk_shapes: Value) -> Value {
    serde_json::json!({"name": "rectilinear",
        "configuration": {"kind": "inline", "chunk_shapes": chunk_shapes}})
}

mod common;

#[path = "kerchunk_import/inline.rs"]
mod inline;

#[path = "kerchunk_import/parquet_layout.rs"]
mod parquet_layout;

#[path = "kerchunk_import/append_rules.rs"]
mod append_rules;
