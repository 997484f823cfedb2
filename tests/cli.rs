//! The `floe` binary run on temporary repositories: output, JSON documents and exit codes.

mod common;

use std::path::Path;

use bytes::Bytes;
use common::cli::{floe, floe_env, ok};
use common::{filled, int32_array, p, runtime};
use floe::{NodePath, Repository, SnapshotId};
use serde_json::{json, Value};

fn t2m_json() -> Value {
    json!({
        "zarr_format": 3, "node_type": "array", "shape": [3, 200], "data_type": "float32",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1, 200]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0.0,
        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
        "dimension_names": ["time", "x"],
        "attributes": {"units": "K"}
    })
}

/// Native-sized (800 bytes) chunk of `t2m` for day `d`.
fn day_chunk(d: u8) -> Bytes {
    filled(800, d + 1)
}

/// Snapshot ids of a repository built through the library.
struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    init: SnapshotId,
    day0: SnapshotId,
    day1: SnapshotId,
}

/// `/` (group, 1 attribute), `/forecast` (group), `/forecast/t2m` (float32 [3, 200], chunks
/// [1, 200]; day 0 writes row 0, day 1 row 1, both 800-byte native chunks) and `/small`
/// (int32 [4], chunks [2], two 8-byte inline chunks, created on day 1).
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("repo");
    let (init, day0, day1) = runtime().block_on(async {
        let repo = Repository::init_location(path.to_str().unwrap(), &vec![])
            .await
            .unwrap();
        let init = repo.branch_tip("main").await.unwrap();
        let s = repo.writable_session("main").await.unwrap();
        let mut title = serde_json::Map::new();
        title.insert("title".into(), json!("test"));
        s.create_group(&NodePath::root(), title).await.unwrap();
        s.create_group(&p("forecast"), Default::default())
            .await
            .unwrap();
        let t2m = p("forecast/t2m");
        s.create_array(&t2m, t2m_json()).await.unwrap();
        s.set_chunk(&t2m, &[0, 0], day_chunk(0)).await.unwrap();
        let mut meta = serde_json::Map::new();
        meta.insert("author".into(), json!("cron"));
        let day0 = s.commit("day 0", Some(meta.clone())).await.unwrap();
        s.set_chunk(&t2m, &[1, 0], day_chunk(1)).await.unwrap();
        let small = p("small");
        s.create_array(&small, int32_array(&[4], &[2]))
            .await
            .unwrap();
        s.set_chunk(&small, &[0], Bytes::from_static(&[1, 0, 0, 0, 2, 0, 0, 0]))
            .await
            .unwrap();
        s.set_chunk(&small, &[1], Bytes::from_static(&[3, 0, 0, 0, 4, 0, 0, 0]))
            .await
            .unwrap();
        let day1 = s.commit("day 1\nwith details", Some(meta)).await.unwrap();
        (init, day0, day1)
    });
    Fixture {
        _dir: dir,
        path,
        init,
        day0,
        day1,
    }
}

#[test]
fn init_creates_once_and_refuses_a_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("new");
    let first = ok(&repo, &["init"]);
    assert!(
        first
            .text()
            .starts_with("initialized an empty floe repository"),
        "{}",
        first.text()
    );
    floe(&repo, &["init"]).assert_error(4, "already exists");
    let log = ok(&repo, &["log", "--json"]).json();
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["message"], "Repository initialized");
    assert_eq!(entries[0]["generation"], 0);
}

#[test]
fn log_shows_library_commits_newest_first() {
    let f = fixture();
    let log = ok(&f.path, &["log", "--json"]).json();
    assert_eq!(log["ref"], "main");
    assert_eq!(log["snapshot"], f.day1.to_string());
    let entries = log["entries"].as_array().unwrap();
    let ids: Vec<&str> = entries.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        vec![f.day1.to_string(), f.day0.to_string(), f.init.to_string()]
    );
    assert_eq!(entries[0]["message"], "day 1\nwith details");
    assert_eq!(entries[1]["metadata"], json!({"author": "cron"}));
    assert_eq!(entries[2]["metadata"], json!({}));

    let limited = ok(&f.path, &["log", "-n", "1", "--json"]).json();
    assert_eq!(limited["entries"].as_array().unwrap().len(), 1);

    let human = ok(&f.path, &["log"]).text();
    let lines: Vec<&str> = human.lines().collect();
    assert_eq!(lines.len(), 4, "{human}");
    assert!(lines[0].starts_with("SNAPSHOT"));
    assert!(lines[1].starts_with(&f.day1.short()), "{human}");
    assert!(
        lines[1].contains("day 1 ..."),
        "multi-line message shown on one line: {human}"
    );
    assert!(lines[2].contains(r#"{"author":"cron"}"#), "{human}");
    // columns are aligned: the message column starts at the same offset on every line
    let column = lines[0].find("MESSAGE").unwrap();
    assert_eq!(&lines[1][column..column + 5], "day 1");
    assert_eq!(&lines[3][column..column + 10], "Repository");
}

#[test]
fn refs_by_prefix_tag_and_time() {
    let f = fixture();
    let prefix = &f.day0.to_string()[..10];
    let by_prefix = ok(&f.path, &["log", prefix, "--json"]).json();
    assert_eq!(by_prefix["snapshot"], f.day0.to_string());

    // as-of: the exact commit time of day 0 names day 0; a microsecond earlier names init
    let log = ok(&f.path, &["log", "--json"]).json();
    let day0_time = log["entries"][1]["committed_at"]
        .as_str()
        .unwrap()
        .to_string();
    let at = format!("main@{day0_time}");
    let as_of = ok(&f.path, &["log", &at, "--json"]).json();
    assert_eq!(as_of["snapshot"], f.day0.to_string());
    let t = chrono::DateTime::parse_from_rfc3339(&day0_time).unwrap()
        - chrono::Duration::microseconds(1);
    let before = format!("main@{}", t.to_rfc3339());
    assert_eq!(
        ok(&f.path, &["log", &before, "--json"]).json()["snapshot"],
        f.init.to_string()
    );
    floe(&f.path, &["log", "main@1990-01-01T00:00:00Z"]).assert_error(3, "no commit at or before");

    let old = ok(&f.path, &["ls", "--at", &at, "--json"]).json();
    let paths: Vec<&str> = old["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        vec!["/", "/forecast", "/forecast/t2m"],
        "no /small before day 1"
    );
}

#[test]
fn bad_refs_and_missing_repositories_fail_with_one_line_and_a_code() {
    let f = fixture();
    floe(&f.path, &["log", "nosuch"]).assert_error(3, "nosuch");
    floe(&f.path, &["log", "main@yesterday"]).assert_error(2, "RFC 3339");
    floe(&f.path, &["log", "dead0000"]).assert_error(3, "no snapshot matches");
    floe(
        &f.path,
        &["ls", "--at", "nosuch-branch@2026-01-01T00:00:00Z"],
    )
    .assert_error(3, "does not exist");
    floe(&f.path, &["info", "nowhere"]).assert_error(3, "no group or array at `/nowhere`");
    floe(&f.path, &["info", "a//b"]).assert_error(2, "invalid node path");

    let missing = f.path.parent().unwrap().join("missing");
    floe(&missing, &["status"]).assert_error(3, "floe init");
    assert!(!missing.exists(), "opening must not create the directory");
    floe_env(None, None, &["log"]).assert_error(2, "FLOE_REPO");
    assert_eq!(
        floe(&f.path, &["log", "--no-such-flag"]).code,
        2,
        "clap usage errors exit with 2"
    );
}

#[test]
fn repository_from_the_environment() {
    let f = fixture();
    let run = floe_env(None, Some(&f.path), &["log", "-n", "1", "--json"]);
    assert_eq!(run.json()["snapshot"], f.day1.to_string());
    let status = floe_env(None, Some(&f.path), &["status", "--json"]).json();
    assert_eq!(status["format_version"], 1);
    assert_eq!(status["tag_count"], 0);
    assert_eq!(status["branches"][0]["name"], "main");
    assert_eq!(status["branches"][0]["snapshot"], f.day1.to_string());
    assert_eq!(status["branches"][0]["message"], "day 1\nwith details");
    let human = floe_env(None, Some(&f.path), &["status"]).text();
    assert!(human.contains("format      1"), "{human}");
    assert!(
        human.contains(&format!("main    {}", f.day1.short())),
        "{human}"
    );
}

fn branch_names(repo: &Path) -> Vec<(String, String)> {
    let list = ok(repo, &["branch", "list", "--json"]).json();
    list["branches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().to_string(),
                b["snapshot"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn branch_lifecycle() {
    let f = fixture();
    let prefix = &f.day0.to_string()[..8];
    let created = ok(&f.path, &["branch", "create", "dev", "--from", prefix]).text();
    assert_eq!(
        created.trim(),
        format!("created branch dev at {}", f.day0.short())
    );
    assert_eq!(
        branch_names(&f.path),
        vec![
            ("dev".into(), f.day0.to_string()),
            ("main".into(), f.day1.to_string())
        ]
    );
    floe(&f.path, &["branch", "create", "dev"]).assert_error(4, "already exists");
    floe(&f.path, &["branch", "create", "bad name"]).assert_error(2, "invalid branch name");

    ok(&f.path, &["branch", "reset", "dev", "main"]);
    assert_eq!(branch_names(&f.path)[0], ("dev".into(), f.day1.to_string()));
    let human = ok(&f.path, &["branch", "list"]).text();
    assert!(
        human
            .lines()
            .nth(1)
            .unwrap()
            .starts_with(&format!("dev     {}", f.day1.short())),
        "{human}"
    );

    ok(&f.path, &["branch", "delete", "dev"]);
    assert_eq!(
        branch_names(&f.path),
        vec![("main".into(), f.day1.to_string())]
    );
    floe(&f.path, &["branch", "delete", "dev"]).assert_error(3, "does not exist");
    floe(&f.path, &["branch", "delete", "main"]).assert_error(4, "default branch");
    floe(&f.path, &["branch", "reset", "main", "nosuch"]).assert_error(3, "nosuch");
}

#[test]
fn tag_lifecycle() {
    let f = fixture();
    ok(&f.path, &["tag", "create", "v1"]);
    let day0 = f.day0.to_string();
    ok(&f.path, &["tag", "create", "first", &day0]);
    let list = ok(&f.path, &["tag", "list", "--json"]).json();
    let tags = list["tags"].as_array().unwrap();
    assert_eq!(tags.len(), 2);
    assert_eq!(tags[0]["name"], "first");
    assert_eq!(tags[0]["snapshot"], day0);
    assert_eq!(tags[1]["name"], "v1");
    assert_eq!(tags[1]["snapshot"], f.day1.to_string());
    assert_eq!(
        ok(&f.path, &["log", "first", "--json"]).json()["snapshot"],
        day0
    );

    floe(&f.path, &["tag", "create", "v1"]).assert_error(4, "never reused");
    ok(&f.path, &["tag", "delete", "v1"]);
    let after = ok(&f.path, &["tag", "list", "--json"]).json();
    assert_eq!(after["tags"].as_array().unwrap().len(), 1);
    floe(&f.path, &["tag", "create", "v1"]).assert_error(4, "never reused");
    floe(&f.path, &["tag", "delete", "v1"]).assert_error(3, "was deleted");
    floe(&f.path, &["tag", "delete", "nosuch"]).assert_error(3, "does not exist");
    let human = ok(&f.path, &["tag", "list"]).text();
    assert!(human.starts_with("TAG"), "{human}");
    assert!(
        human.contains(&format!("first  {}", f.day0.short())),
        "{human}"
    );
    let status = ok(&f.path, &["status", "--json"]).json();
    assert_eq!(status["tag_count"], 1);
}

#[test]
fn ls_shows_the_tree() {
    let f = fixture();
    let all = ok(&f.path, &["ls", "--json"]).json();
    assert_eq!(all["snapshot"], f.day1.to_string());
    assert_eq!(all["path"], "/");
    let nodes = all["nodes"].as_array().unwrap();
    let paths: Vec<&str> = nodes.iter().map(|n| n["path"].as_str().unwrap()).collect();
    assert_eq!(paths, vec!["/", "/forecast", "/forecast/t2m", "/small"]);
    assert_eq!(nodes[0], json!({"path": "/", "type": "group"}));
    assert_eq!(
        nodes[2],
        json!({"path": "/forecast/t2m", "type": "array", "shape": [3, 200], "chunk_shape": [1, 200], "dtype": "float32"})
    );

    let sub = ok(&f.path, &["ls", "forecast", "--json"]).json();
    let paths: Vec<&str> = sub["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, vec!["/forecast", "/forecast/t2m"]);

    let human = ok(&f.path, &["ls"]).text();
    let lines: Vec<&str> = human.lines().collect();
    assert_eq!(lines.len(), 5, "{human}");
    assert!(lines[0].starts_with("NAME"));
    assert!(lines[2].starts_with("  forecast/"), "{human}");
    assert!(lines[3].starts_with("    t2m"), "{human}");
    assert!(
        lines[3].contains("float32")
            && lines[3].contains("[3, 200]")
            && lines[3].contains("[1, 200]")
    );
    floe(&f.path, &["ls", "nowhere"]).assert_error(3, "no group or array");
}

#[test]
fn info_describes_arrays_and_groups() {
    let f = fixture();
    let t2m = ok(&f.path, &["info", "forecast/t2m", "--json"]).json();
    assert_eq!(t2m["type"], "array");
    assert_eq!(t2m["path"], "/forecast/t2m");
    assert_eq!(t2m["shape"], json!([3, 200]));
    assert_eq!(t2m["chunk_shape"], json!([1, 200]));
    assert_eq!(t2m["dtype"], "float32");
    assert_eq!(
        t2m["codecs"],
        json!([{"name": "bytes", "configuration": {"endian": "little"}}])
    );
    assert_eq!(t2m["fill_value"], json!(0.0));
    assert_eq!(t2m["dimension_names"], json!(["time", "x"]));
    assert_eq!(t2m["attributes_count"], 1);
    assert_eq!(
        t2m["chunks"],
        json!({"total": 3, "initialized": 2, "inline": 0, "native": 2, "virtual": 0})
    );
    assert_eq!(t2m["bytes_logical"], 3 * 200 * 4);
    assert_eq!(t2m["bytes_stored"], 1600);

    let small = ok(&f.path, &["info", "/small", "--json"]).json();
    assert_eq!(
        small["chunks"],
        json!({"total": 2, "initialized": 2, "inline": 2, "native": 0, "virtual": 0})
    );
    assert_eq!(small["bytes_stored"], 16);
    assert_eq!(small["dimension_names"], Value::Null);

    let day0 = f.day0.to_string();
    let old = ok(&f.path, &["info", "--at", &day0, "forecast/t2m", "--json"]).json();
    assert_eq!(old["chunks"]["initialized"], 1);
    assert_eq!(old["bytes_stored"], 800);
    assert_eq!(old["snapshot"], day0);

    let root = ok(&f.path, &["info", "/", "--json"]).json();
    assert_eq!(
        root,
        json!({"ref": "main", "snapshot": f.day1.to_string(), "path": "/", "type": "group",
               "attributes_count": 1, "members": 2})
    );

    let human = ok(&f.path, &["info", "forecast/t2m"]).text();
    for expected in [
        "Shape             [3, 200]",
        "Chunk shape       [1, 200]",
        "Data type         float32",
        "Codecs            bytes",
        "Dimension names   [time, x]",
        "Chunks            2 of 3 initialized (0 inline, 2 native, 0 virtual)",
        "Bytes             2400 (2.3 KiB)",
        "Bytes stored      1600 (1.6 KiB)",
    ] {
        assert!(
            human.contains(expected),
            "{expected:?} missing in:\n{human}"
        );
    }
}

/// `zarr.json` of a zstd-compressed uint8 array of shape [6000] in chunks of [1000].
fn zstd_uint8_array() -> Value {
    json!({
        "zarr_format": 3, "node_type": "array", "shape": [6000], "data_type": "uint8",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1000]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0,
        "codecs": [
            {"name": "bytes"},
            {"name": "zstd", "configuration": {"level": 3, "checksum": false}}
        ]
    })
}

/// An array with chunks of every kind: chunk 0 inline (a few bytes once compressed), chunks 1
/// and 2 native (1000 noisy bytes stay larger than the inline threshold), chunks 3 and 4
/// virtual (zstd frames in a file under a declared `file://` container), chunk 5 never
/// written. `info` counts each stored chunk once, by kind, in both output forms.
#[test]
fn info_counts_virtual_chunks() {
    use floe::{VirtualChunkRef, VirtualContainer, VirtualSource};
    use rand::{RngCore, SeedableRng};

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let compress = |bytes: &[u8]| Bytes::from(zstd::encode_all(bytes, 3).unwrap());
    let frames = [compress(&[3; 1000]), compress(&[4; 1000])];
    std::fs::write(
        data.join("src.zst"),
        [&frames[0][..], &frames[1][..]].concat(),
    )
    .unwrap();
    let mut noise = vec![0u8; 1000];
    rand::rngs::StdRng::seed_from_u64(7).fill_bytes(&mut noise);
    let inline = compress(&[0; 1000]);
    let native = compress(&noise);
    assert!(inline.len() < 100 && native.len() > 1000, "chunk sizes");

    let path = dir.path().join("repo");
    runtime().block_on(async {
        let repo = Repository::init_location(path.to_str().unwrap(), &vec![])
            .await
            .unwrap();
        let prefix = url::Url::from_directory_path(&data).unwrap().to_string();
        repo.declare_virtual_containers(&[VirtualContainer::new(&prefix, vec![]).unwrap()])
            .await
            .unwrap();
        let source = std::sync::Arc::new(VirtualSource {
            location: format!("{prefix}src.zst"),
            checksum: None,
        });
        let s = repo.writable_session("main").await.unwrap();
        s.create_group(&NodePath::root(), Default::default())
            .await
            .unwrap();
        let mixed = p("mixed");
        s.create_array(&mixed, zstd_uint8_array()).await.unwrap();
        s.set_chunk(&mixed, &[0], inline.clone()).await.unwrap();
        s.set_chunk(&mixed, &[1], native.clone()).await.unwrap();
        s.set_chunk(&mixed, &[2], native.clone()).await.unwrap();
        let mut offset = 0;
        for (i, frame) in frames.iter().enumerate() {
            let chunk = VirtualChunkRef {
                source: source.clone(),
                offset,
                length: frame.len() as u64,
            };
            s.set_virtual_chunk(&mixed, &[3 + i as u64], chunk)
                .await
                .unwrap();
            offset += frame.len() as u64;
        }
        s.commit("inline, native and virtual chunks", None)
            .await
            .unwrap();
    });

    let report = ok(&path, &["info", "mixed", "--json"]).json();
    assert_eq!(
        report["chunks"],
        json!({"total": 6, "initialized": 5, "inline": 1, "native": 2, "virtual": 2})
    );
    let stored = inline.len() + 2 * native.len() + frames[0].len() + frames[1].len();
    assert_eq!(report["bytes_stored"], stored);
    let human = ok(&path, &["info", "mixed"]).text();
    assert!(
        human.contains("Chunks            5 of 6 initialized (1 inline, 2 native, 2 virtual)"),
        "{human}"
    );
    // Reading the virtual chunks back needs an authorized container: the counts do not.
    let chunk = ok(&path, &["cat", "--allow-virtual-declared", "mixed/c/4"]);
    assert_eq!(chunk.stdout, frames[1].to_vec());
}

#[test]
fn cat_writes_raw_key_bytes() {
    let f = fixture();
    let chunk = ok(&f.path, &["cat", "forecast/t2m/c/1/0"]);
    assert_eq!(chunk.stdout, day_chunk(1).to_vec());
    let inline = ok(&f.path, &["cat", "small/c/1"]);
    assert_eq!(inline.stdout, vec![3, 0, 0, 0, 4, 0, 0, 0]);
    let metadata: Value =
        serde_json::from_slice(&ok(&f.path, &["cat", "forecast/t2m/zarr.json"]).stdout).unwrap();
    assert_eq!(metadata, t2m_json());
    let root: Value = serde_json::from_slice(&ok(&f.path, &["cat", "zarr.json"]).stdout).unwrap();
    assert_eq!(root["node_type"], "group");
    assert_eq!(root["attributes"]["title"], "test");

    let day0 = f.day0.to_string();
    floe(&f.path, &["cat", "--at", &day0, "forecast/t2m/c/1/0"]).assert_error(3, "no value at key");
    assert_eq!(
        ok(&f.path, &["cat", "--at", &day0, "forecast/t2m/c/0/0"]).stdout,
        day_chunk(0).to_vec()
    );
    floe(&f.path, &["cat", "forecast/t2m/c/2/0"]).assert_error(3, "forecast/t2m/c/2/0");
    floe(&f.path, &["cat", "nowhere/zarr.json"]).assert_error(3, "no value at key");
}
