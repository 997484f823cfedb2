//! Key-level behaviour of the Zarr v3 view of a session (`ZarrStore`).

mod common;
#[path = "zarr_store/empty_arrays.rs"]
mod empty_arrays;

use bytes::Bytes;
use common::{filled, p, tempdir_repo};
use floe::{ByteRange, Error, Repository, RepositorySettings, Session, SnapshotId, ZarrStore};
use serde_json::{json, Value};

fn settings() -> RepositorySettings {
    RepositorySettings {
        inline_threshold: 16,
        single_object_threshold: 4096,
        ..RepositorySettings::default()
    }
}

fn array(shape: &[u64], chunks: &[u64], encoding: &str, separator: &str) -> Value {
    json!({
        "zarr_format": 3, "node_type": "array", "shape": shape, "data_type": "uint8",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunks}},
        "chunk_key_encoding": {"name": encoding, "configuration": {"separator": separator}},
        "fill_value": 0, "codecs": [{"name": "bytes"}],
        "attributes": {"kind": encoding}
    })
}

fn group(attrs: Value) -> Value {
    json!({"zarr_format": 3, "node_type": "group", "attributes": attrs})
}

fn doc(v: &Value) -> Bytes {
    Bytes::from(v.to_string())
}

async fn get_json(store: &ZarrStore, key: &str) -> Value {
    serde_json::from_slice(&store.get(key).await.unwrap().unwrap()).unwrap()
}

/// Root group, group `g`, array `g/a` (2-d, default `/`), array `b` (2-d, v2 `.`), chunks in
/// both, committed.
async fn hierarchy() -> (tempfile::TempDir, Repository, Session, SnapshotId) {
    let (dir, repo) = tempdir_repo(settings()).await;
    let session = repo.writable_session("main").await.unwrap();
    let z = session.zarr();
    z.set("zarr.json", doc(&group(json!({"title": "root"}))))
        .await
        .unwrap();
    z.set("g/zarr.json", doc(&group(json!({"level": 1}))))
        .await
        .unwrap();
    z.set(
        "g/a/zarr.json",
        doc(&array(&[4, 4], &[2, 2], "default", "/")),
    )
    .await
    .unwrap();
    z.set("b/zarr.json", doc(&array(&[2, 3], &[1, 3], "v2", ".")))
        .await
        .unwrap();
    for key in ["g/a/c/0/0", "g/a/c/0/1", "g/a/c/1/1", "b/0.0", "b/1.0"] {
        z.set(key, Bytes::from(key.as_bytes().to_vec()))
            .await
            .unwrap();
    }
    let id = session.commit("hierarchy", None).await.unwrap();
    (dir, repo, session, id)
}

#[tokio::test]
async fn every_chunk_key_encoding_maps_to_the_same_coordinates() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let s = repo.writable_session("main").await.unwrap();
    let z = s.zarr();
    let cases = [
        ("ds", "default", "/", "ds/c/1/2"),
        ("dd", "default", ".", "dd/c.1.2"),
        ("vd", "v2", ".", "vd/1.2"),
        ("vs", "v2", "/", "vs/1/2"),
    ];
    for (name, encoding, sep, key) in cases {
        z.set(
            &format!("{name}/zarr.json"),
            doc(&array(&[4, 6], &[2, 2], encoding, sep)),
        )
        .await
        .unwrap();
        z.set(key, Bytes::from(name)).await.unwrap();
        assert_eq!(
            s.get_chunk(&p(name), &[1, 2]).await.unwrap().unwrap(),
            Bytes::from(name),
            "{key}"
        );
        assert_eq!(z.get(key).await.unwrap().unwrap(), Bytes::from(name));
        assert_eq!(z.size(key).await.unwrap(), Some(name.len() as u64));
        assert!(z.exists(key).await.unwrap());
        assert_eq!(
            z.list_prefix(&format!("{name}/")).await.unwrap(),
            vec![key.to_string(), format!("{name}/zarr.json")]
        );
    }
    // A key of another encoding does not alias the chunk.
    assert_eq!(z.get("ds/c.1.2").await.unwrap(), None);
    assert_eq!(z.get("dd/c/1/2").await.unwrap(), None);
    assert_eq!(z.get("vd/c/1/2").await.unwrap(), None);
    // 0-d arrays: `c` for the default encoding, `0` for v2.
    z.set("s0/zarr.json", doc(&array(&[], &[], "default", "/")))
        .await
        .unwrap();
    z.set("s1/zarr.json", doc(&array(&[], &[], "v2", ".")))
        .await
        .unwrap();
    z.set("s0/c", Bytes::from_static(b"x")).await.unwrap();
    z.set("s1/0", Bytes::from_static(b"y")).await.unwrap();
    assert_eq!(
        s.get_chunk(&p("s0"), &[]).await.unwrap().unwrap(),
        Bytes::from_static(b"x")
    );
    assert_eq!(
        s.get_chunk(&p("s1"), &[]).await.unwrap().unwrap(),
        Bytes::from_static(b"y")
    );
    assert_eq!(
        z.list_prefix("s0/").await.unwrap(),
        vec!["s0/c", "s0/zarr.json"]
    );
    assert_eq!(
        z.list_prefix("s1/").await.unwrap(),
        vec!["s1/0", "s1/zarr.json"]
    );
    // Chunks written through the session API are listed under the array's encoding.
    s.set_chunk(&p("dd"), &[0, 0], Bytes::from_static(b"z"))
        .await
        .unwrap();
    assert!(z.list().await.unwrap().contains(&"dd/c.0.0".to_string()));
}

#[tokio::test]
async fn listing_follows_zarr_semantics() {
    let (_dir, repo, _s, id) = hierarchy().await;
    let ro = repo.session_at_snapshot(id).await.unwrap();
    let z = ro.zarr();
    let all = z.list().await.unwrap();
    assert_eq!(
        all,
        vec![
            "b/0.0",
            "b/1.0",
            "b/zarr.json",
            "g/a/c/0/0",
            "g/a/c/0/1",
            "g/a/c/1/1",
            "g/a/zarr.json",
            "g/zarr.json",
            "zarr.json"
        ]
    );
    assert_eq!(z.list_prefix("").await.unwrap(), all);
    assert_eq!(z.list_prefix("g/").await.unwrap(), all[3..8].to_vec());
    assert_eq!(
        z.list_prefix("g/a/c/0/").await.unwrap(),
        vec!["g/a/c/0/0", "g/a/c/0/1"]
    );
    assert_eq!(z.list_prefix("x/").await.unwrap(), Vec::<String>::new());
    // `g/` must not match a node named `g2`.
    assert!(z.list_prefix("g/a/c/2/").await.unwrap().is_empty());

    let dir = |keys: &[&str], prefixes: &[&str]| {
        (
            keys.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            prefixes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        z.list_dir("").await.unwrap(),
        dir(&["zarr.json"], &["b/", "g/"])
    );
    assert_eq!(
        z.list_dir("g/").await.unwrap(),
        dir(&["g/zarr.json"], &["g/a/"])
    );
    assert_eq!(
        z.list_dir("g/a/").await.unwrap(),
        dir(&["g/a/zarr.json"], &["g/a/c/"])
    );
    assert_eq!(
        z.list_dir("g/a/c/").await.unwrap(),
        dir(&[], &["g/a/c/0/", "g/a/c/1/"])
    );
    assert_eq!(
        z.list_dir("g/a/c/1/").await.unwrap(),
        dir(&["g/a/c/1/1"], &[])
    );
    assert_eq!(
        z.list_dir("b/").await.unwrap(),
        dir(&["b/0.0", "b/1.0", "b/zarr.json"], &[])
    );
    assert_eq!(z.list_dir("nothing/").await.unwrap(), dir(&[], &[]));

    for bad in ["g", "/g/", "g//", "../"] {
        assert!(
            matches!(z.list_prefix(bad).await, Err(Error::InvalidKey { .. })),
            "{bad}"
        );
        assert!(
            matches!(z.list_dir(bad).await, Err(Error::InvalidKey { .. })),
            "{bad}"
        );
    }
    // Sizes reported agree with the bytes served, for every key (consolidated root included).
    let mut total = 0;
    for key in &all {
        let bytes = z.get(key).await.unwrap().unwrap();
        assert_eq!(
            z.size(key).await.unwrap(),
            Some(bytes.len() as u64),
            "{key}"
        );
        total += bytes.len() as u64;
    }
    assert_eq!(z.size_prefix("").await.unwrap(), total);
}

#[tokio::test]
async fn ranged_reads_cover_bounded_open_and_suffix_ranges() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let s = repo.writable_session("main").await.unwrap();
    let z = s.zarr();
    z.set("a/zarr.json", doc(&array(&[3], &[1], "default", "/")))
        .await
        .unwrap();
    // Inline (10 bytes), packed (1000 bytes), single object (5000 bytes).
    let values: Vec<Bytes> = [10usize, 1000, 5000]
        .iter()
        .map(|&n| Bytes::from((0..n).map(|i| (i % 251) as u8).collect::<Vec<_>>()))
        .collect();
    for (i, v) in values.iter().enumerate() {
        z.set(&format!("a/c/{i}"), v.clone()).await.unwrap();
    }
    let check = |z: ZarrStore, values: Vec<Bytes>| async move {
        for (i, v) in values.iter().enumerate() {
            let key = format!("a/c/{i}");
            let n = v.len() as u64;
            let get = |r: ByteRange| {
                let z = z.clone();
                let key = key.clone();
                async move { z.get_range(&key, r).await }
            };
            assert_eq!(get((2..7).into()).await.unwrap().unwrap(), v.slice(2..7));
            assert_eq!(get((3..).into()).await.unwrap().unwrap(), v.slice(3..));
            assert_eq!(
                get(ByteRange::Suffix(4)).await.unwrap().unwrap(),
                v.slice(v.len() - 4..)
            );
            assert_eq!(
                get(ByteRange::Suffix(n + 100)).await.unwrap().unwrap(),
                v.clone()
            );
            assert_eq!(
                get((5..n + 50).into()).await.unwrap().unwrap(),
                v.slice(5..),
                "end clamps"
            );
            assert_eq!(get((n..n).into()).await.unwrap().unwrap().len(), 0);
            assert!(matches!(
                get((n + 1..n + 2).into()).await,
                Err(Error::InvalidByteRange { key: k, .. }) if k == key
            ));
            assert!(matches!(
                get(ByteRange::FromOffset(n + 1)).await,
                Err(Error::InvalidByteRange { .. })
            ));
            assert!(matches!(
                get(ByteRange::Bounded { start: 4, end: 2 }).await,
                Err(Error::InvalidByteRange { .. })
            ));
            assert_eq!(z.get_range("a/c/7", (0..1).into()).await.unwrap(), None);
        }
        let meta = z.get("a/zarr.json").await.unwrap().unwrap();
        assert_eq!(
            z.get_range("a/zarr.json", ByteRange::Suffix(5))
                .await
                .unwrap()
                .unwrap(),
            meta.slice(meta.len() - 5..)
        );
    };
    check(z.clone(), values.clone()).await;
    let id = s.commit("ranges", None).await.unwrap();
    check(repo.session_at_snapshot(id).await.unwrap().zarr(), values).await;
}

#[tokio::test]
async fn invalid_keys_read_as_absent_and_are_refused_by_writes() {
    let (_dir, repo, s, _id) = hierarchy().await;
    let z = s.zarr();
    let long = format!("g/a/c/{}", "0/".repeat(3000));
    let bad = [
        "",
        "/zarr.json",
        "g//zarr.json",
        "g/../zarr.json",
        "./zarr.json",
        "g/a/c/0",
        "g/a/c/0/0/0",
        "g/a/c/01/0",
        "g/a/c/-1/0",
        "g/a/c/2/0",
        "g/a/c/0.0",
        "b/0/0",
        "b/2.0",
        "nope/c/0",
        "g/c/0/0",
        long.as_str(),
    ];
    for key in bad {
        assert_eq!(z.get(key).await.unwrap(), None, "{key}");
        assert_eq!(z.size(key).await.unwrap(), None, "{key}");
        assert_eq!(
            z.get_range(key, (0..1).into()).await.unwrap(),
            None,
            "{key}"
        );
        match z.set(key, Bytes::from_static(b"x")).await {
            Err(Error::InvalidKey { key: k, reason }) => assert!(!reason.is_empty() && k == key),
            other => panic!("set {key:?}: {other:?}"),
        }
    }
    // Deleting a malformed key is refused, deleting a well-formed absent key succeeds.
    for key in ["", "g//zarr.json", "../zarr.json", "/g/zarr.json"] {
        assert!(
            matches!(z.delete(key).await, Err(Error::InvalidKey { .. })),
            "{key:?}"
        );
    }
    for key in [
        "nope/zarr.json",
        "g/a/c/1/0",
        "g/a/c/9/9",
        ".zarray",
        "g/a/.zattrs",
    ] {
        z.delete(key).await.unwrap();
    }
    assert!(!s.has_changes(), "deleting absent keys changes nothing");
    // A node cannot be put inside an array, and a bad document is refused.
    assert!(matches!(
        z.set("g/a/x/zarr.json", doc(&group(json!({})))).await,
        Err(Error::InvalidHierarchy { .. })
    ));
    assert!(matches!(
        z.set("h/zarr.json", Bytes::from_static(b"{not json")).await,
        Err(Error::InvalidMetadata { .. })
    ));
    drop(repo);
}

#[tokio::test]
async fn read_only_sessions_refuse_writes() {
    let (_dir, repo, _s, id) = hierarchy().await;
    let z = repo.session_at_snapshot(id).await.unwrap().zarr();
    assert!(!z.is_writable());
    let ro = |r: floe::Result<()>| matches!(r, Err(Error::ReadOnlySession));
    assert!(ro(z.set("g/a/c/0/0", Bytes::from_static(b"x")).await));
    assert!(ro(z.set("x/zarr.json", doc(&group(json!({})))).await));
    assert!(ro(z.delete("g/a/c/0/0").await));
    assert!(ro(z.delete("g/zarr.json").await));
    assert!(ro(z.delete_prefix("g/").await));
    assert_eq!(
        z.get("g/a/c/0/0").await.unwrap().unwrap(),
        Bytes::from_static(b"g/a/c/0/0")
    );
}

#[tokio::test]
async fn consolidated_root_lists_every_descendant() {
    let (_dir, repo, writable, id) = hierarchy().await;
    let z = repo.session_at_snapshot(id).await.unwrap().zarr();
    assert!(z.is_consolidated());
    let root = get_json(&z, "zarr.json").await;
    assert_eq!(root["node_type"], "group");
    assert_eq!(root["attributes"]["title"], "root");
    let block = &root["consolidated_metadata"];
    assert_eq!(block["kind"], "inline");
    assert_eq!(block["must_understand"], false);
    let metadata = block["metadata"].as_object().unwrap();
    assert_eq!(metadata.keys().collect::<Vec<_>>(), vec!["b", "g", "g/a"]);
    for name in ["b", "g/a"] {
        assert_eq!(
            metadata[name],
            get_json(&z, &format!("{name}/zarr.json")).await,
            "{name}"
        );
    }
    assert_eq!(metadata["g"]["attributes"]["level"], 1);
    assert_eq!(
        metadata["g"]["consolidated_metadata"]["metadata"],
        json!({})
    );
    // Sub-groups carry their own block (see the next test); switching it off gives the plain
    // root and plain sub-groups.
    let g = get_json(&z, "g/zarr.json").await;
    assert_eq!(
        g["consolidated_metadata"]["metadata"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["a"]
    );
    let off = z.clone().with_consolidated(false);
    assert_eq!(
        get_json(&off, "g/zarr.json").await,
        group(json!({"level": 1}))
    );
    let plain = get_json(&z.clone().with_consolidated(false), "zarr.json").await;
    assert_eq!(plain, group(json!({"title": "root"})));
    // Writable sessions: off by default, on when asked (and it follows uncommitted changes).
    let w = writable.zarr();
    assert!(!w.is_consolidated());
    assert!(get_json(&w, "zarr.json")
        .await
        .get("consolidated_metadata")
        .is_none());
    w.set("n/zarr.json", doc(&group(json!({})))).await.unwrap();
    let live = get_json(&w.clone().with_consolidated(true), "zarr.json").await;
    assert!(live["consolidated_metadata"]["metadata"].get("n").is_some());
    // A block written by a client is not stored (floe derives it).
    let mut with_block = group(json!({"title": "root"}));
    with_block["consolidated_metadata"] =
        json!({"kind": "inline", "must_understand": false, "metadata": {"stale": {}}});
    w.set("zarr.json", doc(&with_block)).await.unwrap();
    assert!(get_json(&w, "zarr.json")
        .await
        .get("consolidated_metadata")
        .is_none());
    let live = get_json(&w.clone().with_consolidated(true), "zarr.json").await;
    assert!(live["consolidated_metadata"]["metadata"]
        .get("stale")
        .is_none());
}

/// The sorted keys of the consolidated block of the `zarr.json` at `key`.
async fn block_keys(store: &ZarrStore, key: &str) -> Vec<String> {
    common::consolidated_keys(&get_json(store, key).await)
}

#[tokio::test]
async fn every_group_lists_exactly_its_descendants() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let s = repo.writable_session("main").await.unwrap();
    let z = s.zarr();
    // `ds-1` sorts between `ds` and `ds/...`, `dsx` after them: neither is below `ds`.
    for (path, level) in [
        ("", 0),
        ("ds", 1),
        ("ds/sub", 2),
        ("ds/sub/deep", 3),
        ("ds-1", 1),
    ] {
        let key = format!("{}zarr.json", p(path).key_prefix());
        z.set(&key, doc(&group(json!({"level": level}))))
            .await
            .unwrap();
    }
    for path in ["ds/t", "ds/sub/u", "ds/sub/deep/v", "ds-1/t", "dsx"] {
        z.set(
            &format!("{path}/zarr.json"),
            doc(&array(&[2], &[1], "default", "/")),
        )
        .await
        .unwrap();
    }
    let id = s.commit("datasets", None).await.unwrap();
    let ro = repo.session_at_snapshot(id).await.unwrap().zarr();

    let expected: [(&str, &[&str]); 5] = [
        (
            "zarr.json",
            &[
                "ds",
                "ds-1",
                "ds-1/t",
                "ds/sub",
                "ds/sub/deep",
                "ds/sub/deep/v",
                "ds/sub/u",
                "ds/t",
                "dsx",
            ],
        ),
        (
            "ds/zarr.json",
            &["sub", "sub/deep", "sub/deep/v", "sub/u", "t"],
        ),
        ("ds/sub/zarr.json", &["deep", "deep/v", "u"]),
        ("ds/sub/deep/zarr.json", &["v"]),
        ("ds-1/zarr.json", &["t"]),
    ];
    for (key, keys) in expected {
        assert_eq!(block_keys(&ro, key).await, keys, "{key}");
        // Served sizes agree with the bytes, and repeated reads give the same bytes.
        let bytes = ro.get(key).await.unwrap().unwrap();
        assert_eq!(
            ro.size(key).await.unwrap(),
            Some(bytes.len() as u64),
            "{key}"
        );
        assert_eq!(ro.get(key).await.unwrap().unwrap(), bytes, "{key}");
    }
    // Entries are the nodes' documents: arrays as served, groups with an empty block.
    let ds = get_json(&ro, "ds/zarr.json").await;
    let entries = &ds["consolidated_metadata"]["metadata"];
    assert_eq!(ds["attributes"]["level"], 1);
    for (entry, key) in [
        ("t", "ds/t/zarr.json"),
        ("sub/deep/v", "ds/sub/deep/v/zarr.json"),
    ] {
        assert_eq!(entries[entry], get_json(&ro, key).await, "{entry}");
        assert!(entries[entry].get("consolidated_metadata").is_none());
    }
    for (entry, level) in [("sub", 2), ("sub/deep", 3)] {
        assert_eq!(entries[entry]["attributes"]["level"], level, "{entry}");
        assert_eq!(
            entries[entry]["consolidated_metadata"],
            json!({"kind": "inline", "must_understand": false, "metadata": {}}),
            "{entry}"
        );
    }
    // Array documents never carry a block.
    assert!(get_json(&ro, "dsx/zarr.json")
        .await
        .get("consolidated_metadata")
        .is_none());

    // A writable session asked to consolidate follows its uncommitted changes.
    let live = z.clone().with_consolidated(true);
    z.delete("ds/sub/zarr.json").await.unwrap();
    z.set("ds/new/zarr.json", doc(&group(json!({}))))
        .await
        .unwrap();
    assert_eq!(block_keys(&live, "ds/zarr.json").await, ["new", "t"]);
    assert!(get_json(&z, "ds/zarr.json")
        .await
        .get("consolidated_metadata")
        .is_none());
    // The committed version is unchanged.
    assert_eq!(
        block_keys(&ro, "ds/zarr.json").await,
        ["sub", "sub/deep", "sub/deep/v", "sub/u", "t"]
    );
}

#[tokio::test]
async fn no_root_node_means_no_root_metadata() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let s = repo.writable_session("main").await.unwrap();
    let z = s.zarr();
    z.set("a/zarr.json", doc(&array(&[2], &[1], "default", "/")))
        .await
        .unwrap();
    let id = s.commit("no root", None).await.unwrap();
    let ro = repo.session_at_snapshot(id).await.unwrap().zarr();
    assert_eq!(ro.get("zarr.json").await.unwrap(), None);
    assert_eq!(ro.size("zarr.json").await.unwrap(), None);
    assert_eq!(ro.list().await.unwrap(), vec!["a/zarr.json"]);
    assert_eq!(
        ro.list_dir("").await.unwrap(),
        (vec![], vec!["a/".to_string()])
    );
}

#[tokio::test]
async fn resize_hides_chunks_outside_the_new_shape() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let s = repo.writable_session("main").await.unwrap();
    let z = s.zarr();
    z.set("a/zarr.json", doc(&array(&[6], &[2], "default", "/")))
        .await
        .unwrap();
    for i in 0..3 {
        z.set(&format!("a/c/{i}"), filled(3, i as u8))
            .await
            .unwrap();
    }
    s.commit("three chunks", None).await.unwrap();
    z.set("a/zarr.json", doc(&array(&[3], &[2], "default", "/")))
        .await
        .unwrap();
    assert_eq!(
        z.list_prefix("a/").await.unwrap(),
        vec!["a/c/0", "a/c/1", "a/zarr.json"]
    );
    assert_eq!(z.get("a/c/2").await.unwrap(), None);
    assert_eq!(z.size("a/c/2").await.unwrap(), None);
    assert!(matches!(
        z.set("a/c/2", Bytes::from_static(b"x")).await,
        Err(Error::InvalidKey { .. })
    ));
    let id = s.commit("shrink", None).await.unwrap();
    let ro = repo.session_at_snapshot(id).await.unwrap().zarr();
    assert_eq!(
        ro.list_prefix("a/").await.unwrap(),
        vec!["a/c/0", "a/c/1", "a/zarr.json"]
    );
    assert_eq!(ro.get("a/c/1").await.unwrap().unwrap(), filled(3, 1));
}

#[tokio::test]
async fn deletes_remove_nodes_chunks_and_prefixes() {
    let (_dir, repo, s, _id) = hierarchy().await;
    let z = s.zarr();
    z.delete("g/a/c/0/1").await.unwrap();
    assert_eq!(z.get("g/a/c/0/1").await.unwrap(), None);
    assert_eq!(z.list_prefix("g/a/c/0/").await.unwrap(), vec!["g/a/c/0/0"]);
    z.delete("g/zarr.json").await.unwrap();
    assert!(z.list_prefix("g/").await.unwrap().is_empty());
    assert_eq!(z.get("g/a/c/0/0").await.unwrap(), None);
    assert_eq!(z.get("g/a/zarr.json").await.unwrap(), None);
    // Prefix inside an array's key space: only matching chunks go.
    z.set("c/zarr.json", doc(&array(&[4, 4], &[2, 2], "default", "/")))
        .await
        .unwrap();
    for key in ["c/c/0/0", "c/c/0/1", "c/c/1/0"] {
        z.set(key, Bytes::from_static(b"v")).await.unwrap();
    }
    z.delete_prefix("c/c/0/").await.unwrap();
    assert_eq!(
        z.list_prefix("c/").await.unwrap(),
        vec!["c/c/1/0", "c/zarr.json"]
    );
    z.delete_prefix("b/").await.unwrap();
    assert_eq!(
        z.list().await.unwrap(),
        vec!["c/c/1/0", "c/zarr.json", "zarr.json"]
    );
    let id = s.commit("deletes", None).await.unwrap();
    let ro = repo.session_at_snapshot(id).await.unwrap().zarr();
    assert_eq!(
        ro.list().await.unwrap(),
        vec!["c/c/1/0", "c/zarr.json", "zarr.json"]
    );
    s.zarr().delete_prefix("").await.unwrap();
    assert!(s.zarr().list().await.unwrap().is_empty());
    assert!(matches!(
        s.zarr().delete_prefix("c").await,
        Err(Error::InvalidKey { .. })
    ));
}

#[tokio::test]
async fn several_ranges_of_a_chunk_are_one_backend_call() {
    use common::counting::counted;
    let storage = floe::open_storage("memory://", &vec![]).unwrap();
    let repo = Repository::init(storage.clone(), RepositorySettings::default())
        .await
        .unwrap();
    let s = repo.writable_session("main").await.unwrap();
    let a = p("a");
    s.create_array(&a, common::int32_array(&[4], &[1]))
        .await
        .unwrap();
    let data: Vec<u8> = (0..=255u8).cycle().take(4000).collect();
    s.set_chunk(&a, &[2], Bytes::from(data.clone()))
        .await
        .unwrap();
    s.commit("packed chunk", None).await.unwrap();

    let (fresh, counter) = counted(&storage, RepositorySettings::default()).await;
    let r = fresh
        .readonly_session(&floe::VersionSpec::Name("main".into()))
        .await
        .unwrap();
    let store = r.zarr();
    store.get("a/zarr.json").await.unwrap();
    counter.take();
    let ranges = [
        ByteRange::Bounded { start: 0, end: 10 },
        ByteRange::Bounded {
            start: 10,
            end: 300,
        },
        ByteRange::Suffix(16),
        ByteRange::FromOffset(3990),
    ];
    let parts = store.get_ranges("a/c/2", &ranges).await.unwrap().unwrap();
    assert_eq!(parts[0], data[0..10]);
    assert_eq!(parts[1], data[10..300]);
    assert_eq!(parts[2], data[3984..]);
    assert_eq!(parts[3], data[3990..]);
    let seen = counter.take();
    assert_eq!(seen.gets_under("chunks/"), 1, "{:?}", seen.gets);
    // Absent chunk, metadata ranges, and an unsatisfiable range.
    assert_eq!(store.get_ranges("a/c/1", &ranges).await.unwrap(), None);
    let meta = store.get("a/zarr.json").await.unwrap().unwrap();
    let head = store
        .get_ranges("a/zarr.json", &[ByteRange::Bounded { start: 0, end: 5 }])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head[0], meta.slice(0..5));
    let err = store
        .get_ranges("a/c/2", &[ByteRange::FromOffset(5000)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, floe::Error::InvalidByteRange { size: 4000, .. }),
        "{err:?}"
    );
}
