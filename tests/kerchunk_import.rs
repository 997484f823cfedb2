//! Importing kerchunk references, checked against references produced by kerchunk itself.
//!
//! `tests/python/make_kerchunk_refs.py` (run with the interpreter in `FLOE_TEST_PYTHON`, which
//! needs the packages of `scripts/python-kerchunk-requirements.txt`) writes netCDF4 files
//! (netCDF4) and HDF5 files (h5py) with chunking, shuffle and zlib, references to them made by
//! `kerchunk.hdf.SingleHdf5ToZarr` (JSON v0, v1, v1 with templates, parquet through
//! `kerchunk.df.refs_to_dataframe`, and a v1 file with `gen`), and the values netCDF4/h5py read.
//! Every array is imported, read back through zarrs over floe and compared value by value.
//! Without `FLOE_TEST_PYTHON` those tests print why and pass; the tests built from inline
//! references (append refusals) always run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
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

// ---- append refusals, from inline references (no Python needed) ----------------------------

/// References of one day: `v` (dimension `time`, `len` steps, chunks of 2, int16 values
/// `first..`) and the coordinate `x` (dimension `x`, values `x_values`), all inline.
fn inline_day(len: u64, first: i16, x_values: [i16; 2]) -> KerchunkRefs {
    let zarray = |shape: u64, chunk: u64| {
        serde_json::json!({"zarr_format": 2, "shape": [shape], "chunks": [chunk], "dtype": "<i2",
            "fill_value": null, "order": "C", "filters": null, "compressor": null})
        .to_string()
    };
    let mut refs = serde_json::json!({
        ".zgroup": "{\"zarr_format\": 2}",
        "v/.zarray": zarray(len, 2),
        "v/.zattrs": "{\"_ARRAY_DIMENSIONS\": [\"time\"]}",
        "x/.zarray": zarray(2, 2),
        "x/.zattrs": "{\"_ARRAY_DIMENSIONS\": [\"x\"]}",
    });
    let b64 = |values: &[i16]| {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        format!("base64:{}", base64_encode(&bytes))
    };
    refs["x/0"] = Value::String(b64(&x_values));
    for chunk in 0..len.div_ceil(2) {
        let values: Vec<i16> = (0..2).map(|i| first + (chunk * 2 + i) as i16).collect();
        refs[format!("v/{chunk}")] = Value::String(b64(&values));
    }
    KerchunkRefs::from_json("inline", refs.to_string().as_bytes()).unwrap()
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |a, (i, &b)| a | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

async fn inline_chunks(session: &Session, path: &str) -> Vec<Bytes> {
    let mut out = Vec::new();
    for coord in session.list_chunks(&p(path)).await.unwrap() {
        out.push(session.get_chunk(&p(path), &coord).await.unwrap().unwrap());
    }
    out
}

#[tokio::test]
async fn appends_grow_arrays_and_refuse_what_does_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path()).await;
    let session = repo.writable_session("main").await.unwrap();
    let first = import(&session, &inline_day(4, 0, [7, 8]), "a", Some("time")).await;
    assert_eq!(
        (
            first.arrays_created,
            first.inline_chunks,
            first.virtual_refs
        ),
        (2, 3, 0)
    );
    assert!(first.containers.is_empty());
    let second = import(&session, &inline_day(4, 100, [7, 8]), "a", Some("time")).await;
    assert_eq!((second.arrays_appended, second.arrays_unchanged), (1, 1));
    let v = session.node(&p("a/v")).unwrap().unwrap();
    assert_eq!(v.metadata.geometry().unwrap().shape, vec![8]);
    let le = |values: [i16; 2]| {
        Bytes::from(
            values
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>(),
        )
    };
    assert_eq!(
        inline_chunks(&session, "a/v").await,
        vec![le([0, 1]), le([2, 3]), le([100, 101]), le([102, 103])]
    );

    // A coordinate that differs is refused.
    let err = import_kerchunk(&session, &inline_day(2, 0, [7, 9]), &{
        let mut o = ImportOptions::new(p("a"));
        o.append_dim = Some("time".into());
        o
    })
    .await
    .unwrap_err();
    assert!(
        matches!(err, Error::KerchunkImport { .. })
            && err.to_string().contains("chunk [0] holds other bytes"),
        "{err}"
    );

    // An unknown append dimension is refused before anything changes.
    let mut options = ImportOptions::new(p("a"));
    options.append_dim = Some("level".into());
    let err = import_kerchunk(&session, &inline_day(2, 0, [7, 8]), &options)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("append dimension `level`"),
        "{err}"
    );

    // After 3 steps (chunks of 2), the next day would start inside a chunk.
    let odd = repo.writable_session("main").await.unwrap();
    import(&odd, &inline_day(3, 0, [7, 8]), "b", Some("time")).await;
    options.to = p("b");
    options.append_dim = Some("time".into());
    let err = import_kerchunk(&odd, &inline_day(2, 0, [7, 8]), &options)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("rectilinear"), "{err}");
    assert!(
        err.to_string()
            .contains("not a multiple of the chunk length 2"),
        "{err}"
    );

    // Without an append dimension the arrays are replaced.
    let replaced = import(&session, &inline_day(2, 50, [1, 2]), "a", None).await;
    assert_eq!(replaced.arrays_created, 2);
    assert_eq!(inline_chunks(&session, "a/v").await, vec![le([50, 51])]);
}

#[tokio::test]
async fn unsupported_codecs_and_bad_keys_are_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path()).await;
    let session = repo.writable_session("main").await.unwrap();
    let refs = |zarray: &str, key: &str| {
        let json = serde_json::json!({".zgroup": "{\"zarr_format\": 2}", "t/.zarray": zarray, key: "base64:AAA="});
        KerchunkRefs::from_json("case", json.to_string().as_bytes()).unwrap()
    };
    let lz4 = r#"{"zarr_format": 2, "shape": [2], "chunks": [2], "dtype": "<i2", "fill_value": 0, "order": "C", "filters": null, "compressor": {"id": "lz4"}}"#;
    let err = import_kerchunk(&session, &refs(lz4, "t/0"), &ImportOptions::new(p("x")))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("`lz4`") && text.contains("variable `t`"),
        "{text}"
    );
    let plain = r#"{"zarr_format": 2, "shape": [2], "chunks": [2], "dtype": "<i2", "fill_value": 0, "order": "C", "filters": null, "compressor": null}"#;
    let err = import_kerchunk(&session, &refs(plain, "t/0.0"), &ImportOptions::new(p("x")))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("key `t/0.0`"), "{err}");
    let err = import_kerchunk(&session, &refs(plain, "t/5"), &ImportOptions::new(p("x")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ChunkOutOfBounds { .. }), "{err}");
    // A reference outside any supported location form is refused.
    let json = serde_json::json!({".zgroup": "{\"zarr_format\": 2}", "t/.zarray": plain, "t/0": ["relative/file.nc", 0, 4]});
    let rel = KerchunkRefs::from_json("case", json.to_string().as_bytes()).unwrap();
    let err = import_kerchunk(&session, &rel, &ImportOptions::new(p("y")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::VirtualLocationRefused { .. }), "{err}");
}
