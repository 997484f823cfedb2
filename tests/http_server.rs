//! The read-only HTTP server at its edges: Range forms, HEAD, 404s for absent keys and Zarr v2
//! probes, version addressing (branch, tag, snapshot id, as-of), ETag / 304 / Cache-Control,
//! HTML listings, hostile paths, bearer-token auth and the `floe serve` binary.

#![cfg(feature = "server")]

mod common;

use bytes::Bytes;
use common::http::{client, get, head, raw_get, send, TestServer};
use common::{consolidated_keys, filled, p, uint8_array};
use floe::server::{ServeOptions, Server};
use floe::{Error, Repository, SnapshotId};
use reqwest::StatusCode;
use serde_json::{json, Map, Value};

/// `blob/c/0`: 100 bytes 0, 1, ..., 99.
fn blob_bytes() -> Bytes {
    Bytes::from((0u8..100).collect::<Vec<u8>>())
}

/// A repository with a committed hierarchy on `main`, tagged `v1`:
/// root group {title}, group `g`, int32 array `g/t` [4, 4] / [2, 2] with dimension names and
/// chunks (0, 0) and (1, 1) written, uint8 array `blob` [100] / [100] with one chunk.
async fn fixture() -> (Repository, SnapshotId) {
    let (repo, _) = common::memory_repo().await;
    let s = repo.writable_session("main").await.unwrap();
    let mut attrs = Map::new();
    attrs.insert("title".into(), json!("demo"));
    s.create_group(&floe::NodePath::root(), attrs)
        .await
        .unwrap();
    s.create_group(&p("g"), Map::new()).await.unwrap();
    s.create_array(
        &p("g/t"),
        json!({
            "zarr_format": 3, "node_type": "array", "shape": [4, 4], "data_type": "int32",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2, 2]}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": 0, "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
            "dimension_names": ["y", "x"]
        }),
    )
    .await
    .unwrap();
    s.set_chunk(&p("g/t"), &[0, 0], filled(16, 1))
        .await
        .unwrap();
    s.set_chunk(&p("g/t"), &[1, 1], filled(16, 2))
        .await
        .unwrap();
    s.create_array(&p("blob"), uint8_array(&[100], &[100]))
        .await
        .unwrap();
    s.set_chunk(&p("blob"), &[0], blob_bytes()).await.unwrap();
    let id = s.commit("first", None).await.unwrap();
    repo.create_tag("v1", id).await.unwrap();
    (repo, id)
}

/// Commits new bytes (all 7) for `blob/c/0` on `main`.
async fn change_blob(repo: &Repository) -> SnapshotId {
    let s = repo.writable_session("main").await.unwrap();
    s.set_chunk(&p("blob"), &[0], filled(100, 7)).await.unwrap();
    s.commit("second", None).await.unwrap()
}

#[tokio::test]
async fn every_range_form() {
    let (repo, _) = fixture().await;
    let server = TestServer::start(repo).await;
    let key = "/main/blob/c/0";
    let all = blob_bytes();

    let whole = get(&server, key, &[]).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.body, all);
    assert_eq!(whole.header("accept-ranges"), "bytes");
    assert_eq!(whole.header("content-length"), "100");
    assert_eq!(whole.header("content-type"), "application/octet-stream");

    let partial = [
        ("bytes=10-19", 10..20, "bytes 10-19/100"),
        ("bytes=90-", 90..100, "bytes 90-99/100"),
        ("bytes=-5", 95..100, "bytes 95-99/100"),
        ("bytes=-500", 0..100, "bytes 0-99/100"),
        ("bytes=95-200", 95..100, "bytes 95-99/100"),
        ("bytes=0-0", 0..1, "bytes 0-0/100"),
        ("bytes=99-99", 99..100, "bytes 99-99/100"),
    ];
    for (range, expected, content_range) in partial {
        let got = get(&server, key, &[("range", range)]).await;
        assert_eq!(got.status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(got.body, all.slice(expected.clone()), "{range}");
        assert_eq!(got.header("content-range"), content_range, "{range}");
        assert_eq!(
            got.header("content-length"),
            (expected.end - expected.start).to_string(),
            "{range}"
        );
        assert_eq!(got.header("accept-ranges"), "bytes");
    }

    for range in ["bytes=100-", "bytes=100-200", "bytes=500-", "bytes=-0"] {
        let got = get(&server, key, &[("range", range)]).await;
        assert_eq!(got.status, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(got.header("content-range"), "bytes */100", "{range}");
    }

    // Several ranges, other units and malformed headers get the whole value.
    for range in ["bytes=0-1,5-6", "items=0-1", "bytes=5-2", "bytes=x-"] {
        let got = get(&server, key, &[("range", range)]).await;
        assert_eq!(got.status, StatusCode::OK, "{range}");
        assert_eq!(got.body, all, "{range}");
    }

    // `If-Range` with the current ETag keeps the range; anything else gets the whole value.
    let etag = whole.header("etag").to_string();
    let kept = get(&server, key, &[("range", "bytes=0-9"), ("if-range", &etag)]).await;
    assert_eq!(kept.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(kept.body, all.slice(0..10));
    for stale in ["\"old\"", "Sat, 21 Nov 2026 00:00:00 GMT"] {
        let got = get(&server, key, &[("range", "bytes=0-9"), ("if-range", stale)]).await;
        assert_eq!(got.status, StatusCode::OK, "{stale}");
        assert_eq!(got.body, all, "{stale}");
    }

    // Metadata documents are ranged the same way.
    let doc = get(&server, "/main/g/t/zarr.json", &[]).await;
    let first = get(&server, "/main/g/t/zarr.json", &[("range", "bytes=0-0")]).await;
    assert_eq!(first.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(first.body, doc.body.slice(0..1));
    let size = doc.body.len();
    assert_eq!(first.header("content-range"), format!("bytes 0-0/{size}"));
    server.stop().await;
}

#[tokio::test]
async fn head_reports_length_without_a_body() {
    let (repo, _) = fixture().await;
    let server = TestServer::start(repo).await;
    for path in ["/main/blob/c/0", "/main/zarr.json", "/main/g/t/c/1/1"] {
        let full = get(&server, path, &[]).await;
        let got = head(&server, path, &[]).await;
        assert_eq!(got.status, StatusCode::OK, "{path}");
        assert_eq!(got.header("content-length"), full.body.len().to_string());
        assert_eq!(got.header("accept-ranges"), "bytes");
        assert_eq!(got.header("etag"), full.header("etag"));
        assert!(got.body.is_empty());
    }
    let ranged = head(&server, "/main/blob/c/0", &[("range", "bytes=-10")]).await;
    assert_eq!(ranged.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(ranged.header("content-length"), "10");
    assert_eq!(ranged.header("content-range"), "bytes 90-99/100");
    let missing = head(&server, "/main/.zgroup", &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn absent_keys_and_v2_probes_are_404() {
    let (repo, _) = fixture().await;
    let server = TestServer::start(repo).await;
    for path in [
        "/main/.zgroup",
        "/main/.zattrs",
        "/main/.zmetadata",
        "/main/.zarray",
        "/main/g/.zgroup",
        "/main/g/.zattrs",
        "/main/g/t/.zarray",
        "/main/g/t/.zattrs",
        "/main/g/t/c/1/0",
        "/main/g/t/c/9/9",
        "/main/g/t/c/0",
        "/main/nope/zarr.json",
        "/main/g/t/c",
        "/main/blob/c/0/0",
    ] {
        let got = get(&server, path, &[]).await;
        assert_eq!(got.status, StatusCode::NOT_FOUND, "{path}");
    }
    for path in [
        "/main/zarr.json",
        "/main/g/zarr.json",
        "/main/g/t/zarr.json",
    ] {
        let got = get(&server, path, &[]).await;
        assert_eq!(got.status, StatusCode::OK, "{path}");
        assert_eq!(got.header("content-type"), "application/json");
        let doc: Value = serde_json::from_slice(&got.body).unwrap();
        assert_eq!(doc["zarr_format"], 3);
    }
    server.stop().await;
}

#[tokio::test]
async fn unknown_and_malformed_versions() {
    let (repo, _) = fixture().await;
    let server = TestServer::start(repo).await;
    for path in [
        "/nosuch/zarr.json",
        "/deadbeef/zarr.json",
        "/nosuch@2026-01-01T00:00:00Z/zarr.json",
        "/main@1990-01-01T00:00:00Z/zarr.json",
        "/nosuch/",
    ] {
        let got = get(&server, path, &[]).await;
        assert_eq!(got.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!got.text().is_empty(), "{path}: no reason given");
    }
    for path in [
        "/main@yesterday/zarr.json",
        "/main;chunks=t=1,1/zarr.json",
        "/main;oops/zarr.json",
    ] {
        let got = get(&server, path, &[]).await;
        assert_eq!(got.status, StatusCode::BAD_REQUEST, "{path}");
    }
    // Rechunked views (tests/http_rechunk.rs) of an array that does not exist.
    let view = get(&server, "/main;chunks=t=1,1/zarr.json", &[]).await;
    assert!(view.text().contains("no array `t`"), "{}", view.text());
    let header = get(&server, "/main/zarr.json", &[("chunks", "t=1,1")]).await;
    assert_eq!(header.status, StatusCode::BAD_REQUEST);
    assert!(header.text().contains("no array `t`"), "{}", header.text());
    let unknown = get(&server, "/main;rows=1/zarr.json", &[]).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(
        unknown.text().contains("unknown view parameter"),
        "{}",
        unknown.text()
    );
    let put = send(client().put(server.url("/main/zarr.json")).body("{}")).await;
    assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(put.header("allow"), "GET, HEAD");
    server.stop().await;
}

#[tokio::test]
async fn snapshot_urls_are_immutable_and_revalidate_to_304() {
    let (repo, id) = fixture().await;
    let server = TestServer::start(repo).await;
    let by_id = format!("/{id}/g/t/c/0/0");
    let got = get(&server, &by_id, &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, filled(16, 1));
    assert_eq!(
        got.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    let etag = got.header("etag").to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 10);

    let again = get(&server, &by_id, &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), etag);

    let other = get(&server, &by_id, &[("if-none-match", "\"something-else\"")]).await;
    assert_eq!(other.status, StatusCode::OK);

    // Other keys of the same snapshot, and the same key of a branch, differ as they should.
    let other_key = get(&server, &format!("/{id}/g/t/c/1/1"), &[]).await;
    assert_ne!(other_key.header("etag"), etag);
    let by_branch = get(&server, "/main/g/t/c/0/0", &[]).await;
    assert_eq!(by_branch.header("cache-control"), "no-cache");
    assert_eq!(by_branch.header("etag"), etag, "same snapshot and key");

    // A unique id prefix resolves but may become ambiguous: revalidated, not immutable.
    let prefix = &id.to_string()[..12];
    let by_prefix = get(&server, &format!("/{prefix}/g/t/c/0/0"), &[]).await;
    assert_eq!(by_prefix.status, StatusCode::OK);
    assert_eq!(by_prefix.header("cache-control"), "no-cache");
    server.stop().await;
}

#[tokio::test]
async fn branch_urls_follow_new_commits() {
    let (repo, first) = fixture().await;
    let server = TestServer::start(repo.clone()).await;
    let before = get(&server, "/main/blob/c/0", &[]).await;
    assert_eq!(before.body, blob_bytes());
    let old_etag = before.header("etag").to_string();
    let unchanged = get(&server, "/main/blob/c/0", &[("if-none-match", &old_etag)]).await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    assert_eq!(unchanged.header("cache-control"), "no-cache");

    let second = change_blob(&repo).await;
    let after = get(&server, "/main/blob/c/0", &[("if-none-match", &old_etag)]).await;
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(after.body, filled(100, 7));
    assert_ne!(after.header("etag"), old_etag);
    let root = get(&server, "/main/zarr.json", &[]).await;
    assert_eq!(root.status, StatusCode::OK);

    // The old snapshot, the tag and the new snapshot each keep their own bytes.
    let old = get(&server, &format!("/{first}/blob/c/0"), &[]).await;
    assert_eq!(old.body, blob_bytes());
    assert_eq!(old.header("etag"), old_etag);
    let tagged = get(&server, "/v1/blob/c/0", &[]).await;
    assert_eq!(tagged.body, blob_bytes());
    assert_eq!(tagged.header("cache-control"), "no-cache");
    let new = get(&server, &format!("/{second}/blob/c/0"), &[]).await;
    assert_eq!(new.body, filled(100, 7));
    server.stop().await;
}

#[tokio::test]
async fn as_of_urls_pick_the_commit_at_that_time() {
    let (repo, first) = fixture().await;
    let first_time = repo.snapshot_entry(first).await.unwrap().committed_at;
    change_blob(&repo).await;
    let server = TestServer::start(repo).await;
    let time = first_time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let encoded = format!("main%40{}", time.replace(':', "%3A"));
    for segment in [format!("main@{time}"), encoded] {
        let got = get(&server, &format!("/{segment}/blob/c/0"), &[]).await;
        assert_eq!(got.status, StatusCode::OK, "{segment}");
        assert_eq!(got.body, blob_bytes(), "{segment}");
        assert_eq!(got.header("cache-control"), "no-cache");
    }
    let now = get(&server, "/main@2999-01-01T00:00:00Z/blob/c/0", &[]).await;
    assert_eq!(now.body, filled(100, 7));
    server.stop().await;
}

#[tokio::test]
async fn consolidated_root_metadata() {
    let (repo, _) = fixture().await;
    let server = TestServer::start(repo).await;
    let got = get(&server, "/v1/zarr.json", &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.header("content-type"), "application/json");
    let doc: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(doc["node_type"], "group");
    assert_eq!(doc["attributes"]["title"], "demo");
    let block = &doc["consolidated_metadata"];
    assert_eq!(block["kind"], "inline");
    assert_eq!(block["must_understand"], false);
    assert_eq!(consolidated_keys(&doc), ["blob", "g", "g/t"]);
    let nodes = &block["metadata"];
    assert_eq!(nodes["g/t"]["dimension_names"], json!(["y", "x"]));
    assert_eq!(nodes["g/t"]["shape"], json!([4, 4]));
    // Array documents are plain.
    let g: Value =
        serde_json::from_slice(&get(&server, "/v1/g/t/zarr.json", &[]).await.body).unwrap();
    assert_eq!(g["dimension_names"], json!(["y", "x"]));
    assert!(g.get("consolidated_metadata").is_none());
    server.stop().await;
}

#[tokio::test]
async fn every_group_document_is_consolidated() {
    let (repo, _) = fixture().await;
    // Below `g`: a nested group with an array; beside it, `g-2` (which sorts between `g` and
    // `g/...`) with an array of its own.
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&p("g/sub"), Map::new()).await.unwrap();
    s.create_array(&p("g/sub/u"), uint8_array(&[3], &[3]))
        .await
        .unwrap();
    s.create_group(&p("g-2"), Map::new()).await.unwrap();
    s.create_array(&p("g-2/w"), uint8_array(&[3], &[3]))
        .await
        .unwrap();
    s.commit("nested", None).await.unwrap();
    let server = TestServer::start(repo).await;
    let parse = |got: &common::http::Got| -> Value { serde_json::from_slice(&got.body).unwrap() };

    let g = get(&server, "/main/g/zarr.json", &[]).await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.header("content-type"), "application/json");
    let doc = parse(&g);
    assert_eq!(consolidated_keys(&doc), ["sub", "sub/u", "t"]);
    let entries = &doc["consolidated_metadata"]["metadata"];
    assert_eq!(
        entries["t"],
        parse(&get(&server, "/main/g/t/zarr.json", &[]).await)
    );
    assert_eq!(
        entries["sub"]["consolidated_metadata"],
        json!({"kind": "inline", "must_understand": false, "metadata": {}})
    );
    assert_eq!(
        consolidated_keys(&parse(&get(&server, "/main/g/sub/zarr.json", &[]).await)),
        ["u"]
    );
    assert_eq!(
        consolidated_keys(&parse(&get(&server, "/main/g-2/zarr.json", &[]).await)),
        ["w"]
    );
    // The older version knows nothing of the new nodes.
    assert_eq!(
        consolidated_keys(&parse(&get(&server, "/v1/g/zarr.json", &[]).await)),
        ["t"]
    );
    // HEAD, ranges and ETags treat the document like any value.
    let headed = head(&server, "/main/g/zarr.json", &[]).await;
    assert_eq!(headed.header("content-length"), g.body.len().to_string());
    let tail = get(&server, "/main/g/zarr.json", &[("range", "bytes=-10")]).await;
    assert_eq!(tail.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(tail.body, g.body.slice(g.body.len() - 10..));
    let etag = g.header("etag").to_string();
    let again = get(&server, "/main/g/zarr.json", &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    server.stop().await;
}

#[tokio::test]
async fn html_listings_link_children() {
    let (repo, id) = fixture().await;
    let server = TestServer::start(repo).await;

    let root = get(&server, "/main/", &[]).await;
    assert_eq!(root.status, StatusCode::OK);
    assert_eq!(root.header("content-type"), "text/html; charset=utf-8");
    let page = root.text();
    // Links are relative to the listed prefix.
    for href in ["zarr.json", "g/", "blob/"] {
        assert!(
            page.contains(&format!("href=\"{href}\"")),
            "{href} in {page}"
        );
    }
    assert!(!page.contains("href=\"g/t/"), "{page}");

    let array = get(&server, "/main/g/t/", &[]).await.text();
    assert!(array.contains("href=\"zarr.json\""), "{array}");
    assert!(array.contains("href=\"c/\""), "{array}");
    let chunks = get(&server, "/main/g/t/c/", &[]).await.text();
    assert!(chunks.contains("href=\"0/\""), "{chunks}");
    assert!(chunks.contains("href=\"1/\""), "{chunks}");
    let row = get(&server, "/main/g/t/c/1/", &[]).await.text();
    assert!(row.contains("href=\"1\""), "{row}");
    assert!(!row.contains("href=\"0\""), "{row}");

    // Relative links stay inside the URL whatever spelling the client used for it.
    let encoded = get(&server, "/main%402999-01-01T00%3A00%3A00Z/g/", &[]).await;
    assert_eq!(encoded.status, StatusCode::OK);
    assert!(encoded.text().contains("href=\"t/\""));
    // A group or array path without its trailing slash redirects to its listing (fsspec
    // lists directories that way); absent keys, chunk directories included, stay 404.
    let group = get(&server, "/main/g", &[]).await;
    assert_eq!(group.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(group.header("location"), "/main/g/");
    let array_dir = get(&server, "/main/g/t", &[]).await;
    assert_eq!(array_dir.header("location"), "/main/g/t/");
    assert_eq!(
        get(&server, "/main/g/nothing", &[]).await.status,
        StatusCode::NOT_FOUND
    );

    let by_id = get(&server, &format!("/{id}/"), &[]).await;
    assert_eq!(
        by_id.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    let etag = by_id.header("etag").to_string();
    let again = get(&server, &format!("/{id}/"), &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);

    assert_eq!(
        get(&server, "/main/nothing/", &[]).await.status,
        StatusCode::NOT_FOUND
    );
    let redirect = get(&server, "/main", &[]).await;
    assert_eq!(redirect.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(redirect.header("location"), "/main/");
    let unknown = get(&server, "/nosuch", &[]).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let refs = get(&server, "/", &[]).await.text();
    assert!(refs.contains("href=\"/main/\""), "{refs}");
    assert!(refs.contains("href=\"/v1/\""), "{refs}");
    server.stop().await;
}

#[tokio::test]
async fn hostile_paths_never_escape() {
    let (repo, _) = fixture().await;
    let server = TestServer::start(repo).await;
    let long = format!("/main/{}", "a/".repeat(5 * 1024));
    let payloads: Vec<Vec<u8>> = vec![
        b"/main/../x".to_vec(),
        b"/main/../../etc/passwd".to_vec(),
        b"/main/%2e%2e/%2e%2e/etc/passwd".to_vec(),
        b"/main/%2E%2E/zarr.json".to_vec(),
        b"/%2e%2e/%2e%2e/etc/passwd".to_vec(),
        b"/main/a%2fb".to_vec(),
        b"/main/g%2Fzarr.json".to_vec(),
        b"/main/..%2f..%2fetc%2fpasswd".to_vec(),
        b"/main/g%5Czarr.json".to_vec(),
        b"/main/a%00b".to_vec(),
        b"/main/zarr.json%00".to_vec(),
        b"/main/%ff%fe".to_vec(),
        b"/main//zarr.json".to_vec(),
        b"/main/./zarr.json".to_vec(),
        long.into_bytes(),
        format!("/{}/zarr.json", "m".repeat(10 * 1024)).into_bytes(),
    ];
    for payload in payloads {
        let shown = String::from_utf8_lossy(&payload[..payload.len().min(60)]).into_owned();
        let (status, response) = raw_get(server.addr, &payload).await;
        assert!(
            status == 400 || status == 404,
            "{shown}: status {status}: {}",
            &response[..response.len().min(300)]
        );
        assert!(!response.contains("root:"), "{shown}");
    }
    // The same through an ordinary client, which normalises dot segments before sending.
    for path in [
        "/main/../x",
        "/main/%2e%2e/%2e%2e/etc/passwd",
        "/main/a%2fb",
    ] {
        let got = get(&server, path, &[]).await;
        assert!(
            got.status == StatusCode::BAD_REQUEST || got.status == StatusCode::NOT_FOUND,
            "{path}: {}",
            got.status
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn bearer_token_guards_every_request() {
    let (repo, _) = fixture().await;
    let options = ServeOptions::new("127.0.0.1:0".parse().unwrap()).with_auth_token("s3cret");
    let server = TestServer::start_with(repo, options).await;
    for path in ["/main/zarr.json", "/", "/main/", "/main/.zgroup"] {
        let none = get(&server, path, &[]).await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(none.header("www-authenticate"), "Bearer");
        for wrong in ["Bearer s3cre", "Bearer s3cret2", "Basic s3cret", "s3cret"] {
            let got = get(&server, path, &[("authorization", wrong)]).await;
            assert_eq!(got.status, StatusCode::UNAUTHORIZED, "{path} {wrong}");
        }
    }
    let ok = get(
        &server,
        "/main/zarr.json",
        &[("authorization", "Bearer s3cret")],
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    let probe = get(
        &server,
        "/main/.zgroup",
        &[("authorization", "Bearer s3cret")],
    )
    .await;
    assert_eq!(probe.status, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn non_loopback_binds_need_a_token_or_an_explicit_opt_out() {
    let (repo, _) = fixture().await;
    let exposed = ServeOptions::new("0.0.0.0:0".parse().unwrap());
    assert!(matches!(
        exposed.check_exposure(),
        Err(Error::UnauthenticatedBind { .. })
    ));
    assert!(matches!(
        Server::bind(repo.clone(), &exposed).await,
        Err(Error::UnauthenticatedBind { .. })
    ));
    assert!(exposed
        .clone()
        .with_auth_token("t")
        .check_exposure()
        .is_ok());
    let opted_out = ServeOptions {
        allow_unauthenticated: true,
        ..exposed
    };
    assert!(opted_out.check_exposure().is_ok());
    assert!(ServeOptions::new("127.0.0.1:0".parse().unwrap())
        .check_exposure()
        .is_ok());
    assert!(ServeOptions::new("[::1]:0".parse().unwrap())
        .check_exposure()
        .is_ok());
}

#[cfg(feature = "cli")]
mod binary {
    use std::process::Command;

    use super::*;

    #[tokio::test]
    async fn floe_serve_prints_its_address_and_serves() {
        let (dir, repo) = common::tempdir_repo(floe::RepositorySettings::default()).await;
        let s = repo.writable_session("main").await.unwrap();
        s.create_group(&floe::NodePath::root(), Map::new())
            .await
            .unwrap();
        s.commit("root", None).await.unwrap();

        let (_child, base) = common::http::spawn_floe_serve(dir.path(), &[]).await;
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        let response = client()
            .get(format!("{base}/main/zarr.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let doc: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(doc["node_type"], "group");
        let probe = client()
            .get(format!("{base}/main/.zmetadata"))
            .send()
            .await
            .unwrap();
        assert_eq!(probe.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn floe_serve_refuses_an_exposed_address_without_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        common::cli::ok(&repo, &["init"]);
        let mut command = Command::new(env!("CARGO_BIN_EXE_floe"));
        command.env_remove("FLOE_SERVE_TOKEN");
        let output = command
            .arg("-r")
            .arg(&repo)
            .args(["serve", "--addr", "0.0.0.0:0"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains("--auth-token"), "{stderr}");
        assert!(output.stdout.is_empty());
    }
}
