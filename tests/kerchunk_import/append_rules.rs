//! The rules of appends, on references built inline (no Python needed): CF time values in
//! other units re-encoded when loaded and refused when kept virtual, decoding attributes that
//! differ refused before anything changes (library and CLI), other attributes kept and
//! reported, `--load`/`--virtual` overrides, and byte strings that zarrs reads.

use std::path::Path;
use std::sync::Arc;

use floe::{
    import_kerchunk, ImportOptions, KerchunkRefs, LoadReason, Session, SyncZarrsStore, VersionSpec,
};
use serde_json::{json, Value};
use zarrs::array::Array;

use super::common::inline_refs::base64_ref;
use super::{new_repo, p};

fn b64(bytes: &[u8]) -> String {
    base64_ref(bytes)
}

/// The loaded arrays of a summary, as (path, reason).
fn loaded(summary: &floe::ImportSummary) -> Vec<(&str, &LoadReason)> {
    summary
        .loaded
        .iter()
        .map(|l| (l.path.as_str(), &l.reason))
        .collect()
}

fn zarray(shape: &[u64], chunks: &[u64], dtype: &str, fill: Value) -> String {
    json!({"zarr_format": 2, "shape": shape, "chunks": chunks, "dtype": dtype,
        "fill_value": fill, "order": "C", "filters": null, "compressor": null})
    .to_string()
}

/// One file: `time` (float64 hours, `units`), `t2m` (int16 packed with `scale`, one chunk of
/// 2 steps per chunk), a global attribute `history`.
fn day(units: &str, hours: [f64; 2], scale: f64, history: &str) -> KerchunkRefs {
    let times: Vec<u8> = hours.iter().flat_map(|h| h.to_le_bytes()).collect();
    let t2m: Vec<u8> = [1i16, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
    let refs = json!({
        ".zgroup": "{\"zarr_format\": 2}",
        ".zattrs": json!({"history": history}).to_string(),
        "time/.zarray": zarray(&[2], &[512], "<f8", Value::Null),
        "time/.zattrs": json!({"_ARRAY_DIMENSIONS": ["time"], "units": units,
            "calendar": "standard"}).to_string(),
        "time/0": b64(&{
            let mut full = times.clone();
            full.resize(512 * 8, 0);
            full
        }),
        "t2m/.zarray": zarray(&[2], &[2], "<i2", json!(-32767)),
        "t2m/.zattrs": json!({"_ARRAY_DIMENSIONS": ["time"], "scale_factor": scale,
            "add_offset": 273.15, "units": "K", "long_name": history}).to_string(),
        "t2m/0": b64(&t2m),
    });
    KerchunkRefs::from_json("day", refs.to_string().as_bytes()).unwrap()
}

fn append_options(to: &str) -> ImportOptions {
    let mut options = ImportOptions::new(p(to));
    options.append_dim = Some("time".into());
    options
}

/// Every value of a float64 array, read through zarrs.
fn f64_values(session: &Session, path: &str) -> Vec<f64> {
    let store = Arc::new(SyncZarrsStore::new(
        session.zarr(),
        tokio::runtime::Handle::current(),
    ));
    let array = Array::open(store, &format!("/{path}")).unwrap();
    array
        .retrieve_array_subset::<Vec<f64>>(&array.subset_all())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loaded_times_are_re_encoded_and_decoding_attributes_must_agree() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path()).await;
    let session = repo.writable_session("main").await.unwrap();
    let first = import_kerchunk(
        &session,
        &day("hours since 2026-01-01", [0.0, 1.0], 0.01, "day 1"),
        &append_options("d"),
    )
    .await
    .unwrap();
    assert_eq!(loaded(&first), vec![("d/time", &LoadReason::Coordinate)]);
    // The loaded coordinate: zstd, room to grow along time; xarray's attributes.
    let time = session.node(&p("d/time")).unwrap().unwrap();
    assert_eq!(time.metadata.document()["codecs"][1]["name"], "zstd");
    assert_eq!(
        time.metadata.document()["chunk_grid"]["configuration"]["chunk_shape"],
        json!([131072])
    );
    let t2m = session.node(&p("d/t2m")).unwrap().unwrap();
    assert_eq!(
        t2m.metadata.document()["attributes"]["_FillValue"],
        json!(-32767)
    );
    assert_eq!(t2m.metadata.document()["dimension_names"], json!(["time"]));
    assert!(t2m.metadata.document()["attributes"]
        .get("_ARRAY_DIMENSIONS")
        .is_none());

    // The next day counts hours from its own midnight: re-encoded to the stored units.
    let second = import_kerchunk(
        &session,
        &day("hours since 2026-01-02 00:00:00", [0.0, 1.0], 0.01, "day 2"),
        &append_options("d"),
    )
    .await
    .unwrap();
    assert_eq!(second.converted_times.len(), 1, "{second}");
    assert_eq!(second.converted_times[0].values, 2);
    assert!(second.to_string().contains(
        "converted 2 values of /d/time from `hours since 2026-01-02 00:00:00, calendar standard` \
         to `hours since 2026-01-01, calendar standard`"
    ), "{second}");
    // Other attributes keep the stored value and are reported.
    let kept: Vec<(&str, &str)> = second
        .kept_attributes
        .iter()
        .map(|k| (k.path.as_str(), k.name.as_str()))
        .collect();
    assert_eq!(kept, vec![("d", "history"), ("d/t2m", "long_name")]);
    assert_eq!(
        session.node(&p("d")).unwrap().unwrap().metadata.document()["attributes"]["history"],
        "day 1"
    );
    assert_eq!(f64_values(&session, "d/time"), vec![0.0, 1.0, 24.0, 25.0]);
    session.commit("two days", None).await.unwrap();

    // Another packing is refused, naming the variable, the attribute and both values, and
    // nothing changes.
    let third = repo.writable_session("main").await.unwrap();
    let err = import_kerchunk(
        &third,
        &day("hours since 2026-01-01", [48.0, 49.0], 0.02, "day 3"),
        &append_options("d"),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("array `/d/t2m`")
            && err.contains("`scale_factor` is 0.02")
            && err.contains("but 0.01"),
        "{err}"
    );
    assert!(!third.has_changes());

    // References cannot follow an array an earlier import loaded (floe encoded it).
    let mut virtual_time = append_options("d");
    virtual_time.keep_virtual = vec!["time".into()];
    let err = import_kerchunk(
        &third,
        &day("hours since 2026-01-01", [48.0, 49.0], 0.01, "day 3"),
        &virtual_time,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`codecs`") && err.contains("without --virtual"),
        "{err}"
    );
    assert!(!third.has_changes());

    // Times kept virtual from the start cannot be re-encoded: refused with the way out.
    let mut virtual_time = append_options("v");
    virtual_time.keep_virtual = vec!["time".into()];
    let day1 = day("hours since 2026-01-01", [0.0, 1.0], 0.01, "day 1");
    import_kerchunk(&third, &day1, &virtual_time).await.unwrap();
    let err = import_kerchunk(
        &third,
        &day("hours since 2026-01-03", [0.0, 1.0], 0.01, "day 3"),
        &virtual_time,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("--load") && err.contains("`units`"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_load_data_and_keep_coordinates_virtual() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path()).await;
    let session = repo.writable_session("main").await.unwrap();
    let mut options = ImportOptions::new(p("o"));
    options.load = vec!["t2m".into()];
    options.keep_virtual = vec!["time".into()];
    let summary = import_kerchunk(
        &session,
        &day("hours since 2026-01-01", [0.0, 1.0], 0.01, "x"),
        &options,
    )
    .await
    .unwrap();
    assert_eq!(loaded(&summary), vec![("o/t2m", &LoadReason::Asked)]);
    // `time` stays as kerchunk described it: one chunk of 512.
    let time = session.node(&p("o/time")).unwrap().unwrap();
    assert_eq!(
        time.metadata.document()["chunk_grid"]["configuration"]["chunk_shape"],
        json!([512])
    );
    options.load = vec!["nope".into()];
    let err = import_kerchunk(
        &session,
        &day("hours since 2026-01-01", [0.0, 1.0], 0.01, "x"),
        &options,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("--load `nope`"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_cli_import_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let repo_dir = dir.path().join("repo");
    let write = |name: &str, refs: &KerchunkRefs| -> String {
        // Back to JSON: inline references as kerchunk writes them.
        let mut map = serde_json::Map::new();
        for (key, reference) in &refs.refs {
            let floe::KerchunkRef::Inline(bytes) = reference else {
                unreachable!()
            };
            let text = match std::str::from_utf8(bytes) {
                Ok(t) if key.contains(".z") => t.to_string(),
                _ => b64(bytes),
            };
            map.insert(key.clone(), Value::String(text));
        }
        let path = dir.path().join(name);
        std::fs::write(&path, Value::Object(map).to_string()).unwrap();
        path.to_str().unwrap().to_string()
    };
    let day1 = write(
        "d1.json",
        &day("hours since 2026-01-01", [0.0, 1.0], 0.01, "1"),
    );
    let day2 = write(
        "d2.json",
        &day("hours since 2026-01-01", [2.0, 3.0], 0.5, "2"),
    );
    let floe = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_floe"))
            .arg("-r")
            .arg(&repo_dir)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(floe(&["init"]).0, Some(0));
    let (code, out, err) = floe(&[
        "import",
        "kerchunk",
        &day1,
        "--to",
        "d",
        "--append-dim",
        "time",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("loaded /d/time (coordinate variable)"),
        "{out}"
    );
    let files_before = list_files(&repo_dir);
    let (code, out, err) = floe(&[
        "import",
        "kerchunk",
        &day2,
        "--to",
        "d",
        "--append-dim",
        "time",
    ]);
    assert_ne!(code, Some(0), "{out}");
    assert!(
        err.contains("`scale_factor` is 0.5") && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(
        list_files(&repo_dir),
        files_before,
        "the refused import wrote objects"
    );
    let repo = floe::Repository::open_location(repo_dir.to_str().unwrap(), &vec![])
        .await
        .unwrap();
    let read = repo
        .readonly_session(&VersionSpec::Branch("main".into()))
        .await
        .unwrap();
    assert_eq!(
        read.node(&p("d/t2m"))
            .unwrap()
            .unwrap()
            .metadata
            .geometry()
            .unwrap()
            .shape,
        vec![2]
    );
}

fn list_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_strings_read_as_characters_through_zarrs() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path()).await;
    let session = repo.writable_session("main").await.unwrap();
    let refs = json!({
        ".zgroup": "{\"zarr_format\": 2}",
        "name/.zarray": zarray(&[2, 3], &[2, 3], "|S1", json!("IA==")),
        "name/.zattrs": json!({"_ARRAY_DIMENSIONS": ["station", "strlen"]}).to_string(),
        "name/0.0": b64(b"abcde\0"),
    });
    let refs = KerchunkRefs::from_json("strings", refs.to_string().as_bytes()).unwrap();
    let mut options = ImportOptions::new(p("s"));
    options.load = vec!["name".into()];
    import_kerchunk(&session, &refs, &options).await.unwrap();
    let doc = session
        .node(&p("s/name"))
        .unwrap()
        .unwrap()
        .metadata
        .document()
        .clone();
    assert_eq!(
        doc["data_type"],
        json!({"name": "null_terminated_bytes", "configuration": {"length_bytes": 1}})
    );
    assert_eq!(doc["fill_value"], "IA==");
    // zarrs knows raw bits, not zarr-python's name: floe hands it the raw-bits form.
    let store = Arc::new(SyncZarrsStore::new(
        session.zarr(),
        tokio::runtime::Handle::current(),
    ));
    let array = Array::open(store, "/s/name").unwrap();
    let bytes: Vec<u8> = array
        .retrieve_array_subset::<zarrs::array::ArrayBytes<'static>>(&array.subset_all())
        .unwrap()
        .into_fixed()
        .unwrap()
        .into_owned();
    assert_eq!(bytes, b"abcde\0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_missing_a_variable_cannot_leave_lengths_apart() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path()).await;
    let session = repo.writable_session("main").await.unwrap();
    let full = day("hours since 2026-01-01", [0.0, 1.0], 0.01, "1");
    import_kerchunk(&session, &full, &append_options("m"))
        .await
        .unwrap();
    // The next file lacks `t2m`: `time` would grow to 4 while `t2m` stays at 2.
    let mut partial = day("hours since 2026-01-01", [2.0, 3.0], 0.01, "2");
    partial.refs.retain(|key, _| !key.starts_with("t2m/"));
    let err = import_kerchunk(&session, &partial, &append_options("m"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("different lengths")
            && err.contains("/m/t2m: 2")
            && err.contains("/m/time: 4"),
        "{err}"
    );
    assert_eq!(
        session
            .node(&p("m/time"))
            .unwrap()
            .unwrap()
            .metadata
            .geometry()
            .unwrap()
            .shape,
        vec![2]
    );
}

/// Writes `values` (int16, little endian) to `dir/name` and returns references to it as one
/// array `v` along `time` of `len` steps in one chunk of 4 (partly filled when `len` < 4).
fn file_refs(dir: &Path, name: &str, values: &[i16], len: u64) -> KerchunkRefs {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    let mut bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    bytes.resize(8, 0);
    std::fs::write(&path, &bytes).unwrap();
    let refs = json!({
        ".zgroup": "{\"zarr_format\": 2}",
        "v/.zarray": zarray(&[len], &[4], "<i2", Value::Null),
        "v/.zattrs": json!({"_ARRAY_DIMENSIONS": ["time"]}).to_string(),
        "v/0": [path.to_str().unwrap(), 0, 8],
    });
    KerchunkRefs::from_json(name, refs.to_string().as_bytes()).unwrap()
}

/// Day 0 of `d/v` (three values in a chunk of 4, in a file in `day0/`) imported
/// and committed through a handle that trusts declared containers, and day 1 written in
/// another directory, with a handle that may read only day 1's directory (as the CLI
/// authorizes the imported files' directories).
struct DayInAnotherDir {
    _dir: tempfile::TempDir,
    repo: floe::Repository,
    trusting: floe::Repository,
    narrow: floe::Repository,
    day1: KerchunkRefs,
}

async fn day0_committed_day1_elsewhere() -> DayInAnotherDir {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path()).await;
    let trusting = repo
        .clone()
        .with_virtual_access(floe::VirtualAccess::deny_all().allow_declared());
    let day0 = file_refs(&dir.path().join("day0"), "f.bin", &[1, 2, 3], 3);
    let session = trusting.writable_session("main").await.unwrap();
    import_kerchunk(&session, &day0, &append_options("d"))
        .await
        .unwrap();
    session.commit("day 0", None).await.unwrap();
    assert_eq!(repo.virtual_containers().await.unwrap().len(), 1);
    let day1_dir = dir.path().join("day1");
    let day1 = file_refs(&day1_dir, "f.bin", &[4, 5, 6], 3);
    let prefix = url::Url::from_directory_path(&day1_dir)
        .unwrap()
        .to_string();
    let narrow = repo.clone().with_virtual_access(
        floe::VirtualAccess::deny_all()
            .allow_undeclared(&prefix)
            .unwrap(),
    );
    DayInAnotherDir {
        _dir: dir,
        repo,
        trusting,
        narrow,
        day1,
    }
}

/// The values of `/d/v` as the session sees them.
fn values_of_v(session: &floe::Session) -> Vec<i16> {
    let store = Arc::new(SyncZarrsStore::new(
        session.zarr(),
        tokio::runtime::Handle::current(),
    ));
    let array = Array::open(store, "/d/v").unwrap();
    array.retrieve_array_subset(&array.subset_all()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_that_cannot_be_read_to_be_cut_refuses_before_anything_changes() {
    let setup = day0_committed_day1_elsewhere().await;
    // Day 0's partly filled chunk lies outside what the narrow handle may read: it cannot be
    // read to be cut.
    let session = setup.narrow.writable_session("main").await.unwrap();
    let err = import_kerchunk(&session, &setup.day1, &append_options("d"))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, floe::Error::VirtualSourceNotAuthorized { .. })
            && text.contains("partly filled last chunk of `/d/v`")
            && text.contains("--allow-virtual"),
        "{text}"
    );
    assert!(!session.has_changes());
    assert_eq!(
        setup.repo.virtual_containers().await.unwrap().len(),
        1,
        "the refused import declared a container"
    );

    // Authorized, the chunk is cut and day 1 follows it.
    let session = setup.trusting.writable_session("main").await.unwrap();
    let summary = import_kerchunk(&session, &setup.day1, &append_options("d"))
        .await
        .unwrap();
    assert_eq!(summary.materialized_chunks, 1, "{summary}");
    assert_eq!(values_of_v(&session), vec![1, 2, 3, 4, 5, 6]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_chunk_shapes_are_refused_without_allocating_them() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path()).await;
    let session = repo.writable_session("main").await.unwrap();
    // A static array of 3 elements declared in one chunk of 2^40: absent on day 1.
    let day = |with_chunk: bool| {
        let mut refs = json!({
            ".zgroup": "{\"zarr_format\": 2}",
            "s/.zarray": zarray(&[3], &[1 << 40], "<i2", Value::Null),
            "s/.zattrs": json!({"_ARRAY_DIMENSIONS": ["x"]}).to_string(),
            "t/.zarray": zarray(&[1], &[1], "<i2", Value::Null),
            "t/.zattrs": json!({"_ARRAY_DIMENSIONS": ["time"]}).to_string(),
            "t/0": b64(&[0, 0]),
        });
        if with_chunk {
            refs["s/0"] = json!(b64(&[1, 0, 2, 0, 3, 0]));
        }
        KerchunkRefs::from_json("hostile", refs.to_string().as_bytes()).unwrap()
    };
    let mut options = append_options("h");
    options.keep_virtual = vec!["s".into()];
    import_kerchunk(&session, &day(false), &options)
        .await
        .unwrap();
    let err = import_kerchunk(&session, &day(true), &options)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("too large to decode") || err.contains("more than"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrays_found_unchanged_are_compared_by_value_however_encoded() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path()).await;
    let session = repo.writable_session("main").await.unwrap();
    let day = |first: i16| {
        let v: Vec<u8> = [first, first + 1]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let refs = json!({
            ".zgroup": "{\"zarr_format\": 2}",
            "x/.zarray": zarray(&[2], &[2], "<i2", Value::Null),
            "x/.zattrs": json!({"_ARRAY_DIMENSIONS": ["x"]}).to_string(),
            "x/0": b64(&[7, 0, 8, 0]),
            "v/.zarray": zarray(&[2], &[2], "<i2", Value::Null),
            "v/.zattrs": json!({"_ARRAY_DIMENSIONS": ["time"]}).to_string(),
            "v/0": b64(&v),
        });
        KerchunkRefs::from_json("day", refs.to_string().as_bytes()).unwrap()
    };
    // Day 1 loads the coordinate `x` (floe's codecs); day 2 keeps it virtual (the file's):
    // its values are equal, so it is unchanged.
    import_kerchunk(&session, &day(0), &append_options("u"))
        .await
        .unwrap();
    let mut options = append_options("u");
    options.keep_virtual = vec!["x".into()];
    let summary = import_kerchunk(&session, &day(10), &options).await.unwrap();
    assert_eq!(
        (summary.arrays_appended, summary.arrays_unchanged),
        (1, 1),
        "{summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loading_onto_an_unreadable_chunk_or_below_an_array_refuses_before_anything_changes() {
    let setup = day0_committed_day1_elsewhere().await;
    let repo = &setup.repo;
    // Loading day 1 onto `v` completes its partly filled chunk, stored virtually in day 0's
    // file, which this handle may not read: refused before any write or declaration.
    let session = setup.narrow.writable_session("main").await.unwrap();
    let mut load = append_options("d");
    load.load = vec!["v".into()];
    let err = import_kerchunk(&session, &setup.day1, &load)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("cut or complete"), "{err}");
    assert!(!session.has_changes());
    assert_eq!(repo.virtual_containers().await.unwrap().len(), 1);

    // `--to` below an existing array: refused before declaring day 1's directory.
    let err = import_kerchunk(&session, &setup.day1, &ImportOptions::new(p("d/v/x")))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`/d/v`") && err.contains("is an array"),
        "{err}"
    );
    assert!(!session.has_changes());
    assert_eq!(repo.virtual_containers().await.unwrap().len(), 1);

    // Trusted, the loaded values complete the chunk: one loaded array of six values.
    let session = setup.trusting.writable_session("main").await.unwrap();
    let summary = import_kerchunk(&session, &setup.day1, &load).await.unwrap();
    assert_eq!(summary.loaded.len(), 1, "{summary}");
    assert_eq!(values_of_v(&session), vec![1, 2, 3, 4, 5, 6]);
}
