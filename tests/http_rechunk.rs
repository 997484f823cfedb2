//! Rechunked views over HTTP: the `;chunks=` URL form and the zarr-proxy `chunks` header,
//! compared with what `RechunkedStore` produces and decoded by zarrs; 400s with the reason,
//! ETags, ranges, listings, and `floe serve --cache` on the real binary.

#![cfg(feature = "server")]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::http::{get, head, TestServer};
use floe::server::ServeOptions;
use floe::{ChunkShapeRequest, DecodedChunkCache, RechunkedStore, Repository, Session, SnapshotId};
use reqwest::StatusCode;
use serde_json::Value;
use zarrs::array::codec::{GzipCodec, ZstdCodec};
use zarrs::array::{data_type, Array, ArrayBuilder};
use zarrs::storage::store::MemoryStore;
use zarrs::storage::{StoreKey, WritableStorageTraits};

const DAYS: u64 = 6;

/// `temp(day, y, x) = day * 100 + y * 10 + x`.
fn temp_value(day: u64, y: u64, x: u64) -> f32 {
    (day * 100 + y * 10 + x) as f32
}

/// A committed repository on `main`: root group; float32 array `temp` [6, 4, 4] stored one
/// day per chunk (zstd, fill -1, dimension names) with day 3 never written; group `g` with
/// int32 array `g/p` [4, 4] in [2, 2] chunks (gzip), `p(y, x) = 10 y + x`.
async fn fixture() -> (tempfile::TempDir, Repository, SnapshotId) {
    let (dir, repo, session, store) = common::zarrs_repo::zarrs_repo(&["/", "/g"]).await;
    let mut b = ArrayBuilder::new(vec![DAYS, 4, 4], vec![1, 4, 4], data_type::float32(), -1f32);
    b.bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(1, false))]);
    b.dimension_names(Some(["time", "y", "x"]));
    let temp = b.build(store.clone(), "/temp").unwrap();
    temp.async_store_metadata().await.unwrap();
    for day in (0..DAYS).filter(|&d| d != 3) {
        let values: Vec<f32> = (0..16).map(|i| temp_value(day, i / 4, i % 4)).collect();
        temp.async_store_chunk(&[day, 0, 0], values).await.unwrap();
    }
    let mut b = ArrayBuilder::new(vec![4, 4], vec![2, 2], data_type::int32(), 0i32);
    b.bytes_to_bytes_codecs(vec![Arc::new(GzipCodec::new(5).unwrap())]);
    let p = b.build(store.clone(), "/g/p").unwrap();
    p.async_store_metadata().await.unwrap();
    let values: Vec<i32> = (0..16).map(|i| (i / 4) * 10 + i % 4).collect();
    p.async_store_array_subset(&[0..4, 0..4], values)
        .await
        .unwrap();
    let id = session.commit("fixture", None).await.unwrap();
    (dir, repo, id)
}

/// The view `request` of snapshot `id` built directly (not through the server).
async fn direct_view(repo: &Repository, id: SnapshotId, request: &str) -> RechunkedStore {
    let session: Session = repo.session_at_snapshot(id).await.unwrap();
    let request = ChunkShapeRequest::parse(request).unwrap();
    RechunkedStore::new(
        floe::ZarrStore::new(session).with_consolidated(true),
        &request,
        DecodedChunkCache::default(),
    )
    .unwrap()
}

/// Decodes chunk `coords` of the array at `path` with zarrs, given its `zarr.json` and the
/// chunk's bytes as served.
fn decode_chunk<T: zarrs::array::ElementOwned>(
    path: &str,
    metadata: &Bytes,
    chunk_key: &str,
    chunk: &Bytes,
    coords: &[u64],
) -> Vec<T> {
    let memory = Arc::new(MemoryStore::new());
    memory
        .set(
            &StoreKey::new(format!("{path}/zarr.json")).unwrap(),
            metadata.clone(),
        )
        .unwrap();
    memory
        .set(&StoreKey::new(chunk_key).unwrap(), chunk.clone())
        .unwrap();
    let array = Array::open(memory, &format!("/{path}")).unwrap();
    array.retrieve_chunk(coords).unwrap()
}

fn chunk_shape(doc: &Value) -> Vec<u64> {
    doc["chunk_grid"]["configuration"]["chunk_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_metadata_reports_the_requested_chunk_shape() {
    let (_dir, repo, _) = fixture().await;
    let server = TestServer::start(repo).await;

    let url_form = get(&server, "/main;chunks=temp=6,1,1/temp/zarr.json", &[]).await;
    assert_eq!(url_form.status, StatusCode::OK, "{}", url_form.text());
    assert_eq!(url_form.header("content-type"), "application/json");
    let doc: Value = serde_json::from_slice(&url_form.body).unwrap();
    assert_eq!(chunk_shape(&doc), [6, 1, 1]);
    assert_eq!(doc["shape"], serde_json::json!([6, 4, 4]));
    assert_eq!(
        doc["dimension_names"],
        serde_json::json!(["time", "y", "x"])
    );

    let header_form = get(&server, "/main/temp/zarr.json", &[("chunks", "temp=6,1,1")]).await;
    assert_eq!(header_form.body, url_form.body);

    // The consolidated root document shows the view's chunk shape for the requested array
    // only.
    let root = get(&server, "/main;chunks=temp=6,1,1/zarr.json", &[]).await;
    let root: Value = serde_json::from_slice(&root.body).unwrap();
    let nested = &root["consolidated_metadata"]["metadata"];
    assert_eq!(chunk_shape(&nested["temp"]), [6, 1, 1]);
    assert_eq!(chunk_shape(&nested["g/p"]), [2, 2]);

    // Nested arrays: `%2F` in the URL form, a plain `/` (or `%2F`) in the header.
    let nested_url = get(&server, "/main;chunks=g%2Fp=4,1/g/p/zarr.json", &[]).await;
    assert_eq!(nested_url.status, StatusCode::OK, "{}", nested_url.text());
    let doc: Value = serde_json::from_slice(&nested_url.body).unwrap();
    assert_eq!(chunk_shape(&doc), [4, 1]);
    for header in ["g/p=4,1", "g%2Fp=4,1"] {
        let got = get(&server, "/main/g/p/zarr.json", &[("chunks", header)]).await;
        assert_eq!(got.body, nested_url.body, "{header}");
    }
    // ... and the consolidated document of their group lists them as the view serves them.
    let group = get(&server, "/main;chunks=g%2Fp=4,1/g/zarr.json", &[]).await;
    let group: Value = serde_json::from_slice(&group.body).unwrap();
    assert_eq!(group["consolidated_metadata"]["metadata"]["p"], doc);
    let stored_group = get(&server, "/main/g/zarr.json", &[]).await;
    let stored_group: Value = serde_json::from_slice(&stored_group.body).unwrap();
    assert_eq!(
        chunk_shape(&stored_group["consolidated_metadata"]["metadata"]["p"]),
        [2, 2]
    );
    // The stored view is untouched.
    let stored = get(&server, "/main/temp/zarr.json", &[]).await;
    let doc: Value = serde_json::from_slice(&stored.body).unwrap();
    assert_eq!(chunk_shape(&doc), [1, 4, 4]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_chunks_equal_the_rechunked_store_and_decode_to_the_stored_values() {
    let (_dir, repo, id) = fixture().await;
    let direct = direct_view(&repo, id, "temp=6,1,1,g/p=4,1").await;
    let server = TestServer::start(repo).await;
    let view_url = "/main;chunks=temp=6,1,1,g%2Fp=4,1";
    let metadata = get(&server, &format!("{view_url}/temp/zarr.json"), &[]).await;
    for y in 0..4 {
        for x in 0..4 {
            let key = format!("temp/c/0/{y}/{x}");
            let by_url = get(&server, &format!("{view_url}/{key}"), &[]).await;
            assert_eq!(by_url.status, StatusCode::OK, "{key}: {}", by_url.text());
            assert_eq!(by_url.header("content-type"), "application/octet-stream");
            let by_header = get(
                &server,
                &format!("/main/{key}"),
                &[("chunks", "temp=6,1,1,g/p=4,1")],
            )
            .await;
            assert_eq!(by_header.body, by_url.body, "{key}");
            assert_eq!(by_header.header("etag"), by_url.header("etag"), "{key}");
            let expected = direct.get(&key).await.unwrap().unwrap();
            assert_eq!(by_url.body, expected, "{key}");
            let series: Vec<f32> =
                decode_chunk("temp", &metadata.body, &key, &by_url.body, &[0, y, x]);
            let want: Vec<f32> = (0..DAYS)
                .map(|d| if d == 3 { -1.0 } else { temp_value(d, y, x) })
                .collect();
            assert_eq!(series, want, "{key}");
        }
    }
    // Requested chunks outside the grid, and stored-grid keys of a requested array, are 404.
    for key in ["temp/c/1/0/0", "temp/c/0/4/0", "temp/c/0/0", "g/p/c/0/4"] {
        let got = get(&server, &format!("{view_url}/{key}"), &[]).await;
        assert_eq!(got.status, StatusCode::NOT_FOUND, "{key}");
    }
    // The nested array, column by column.
    let metadata = get(&server, &format!("{view_url}/g/p/zarr.json"), &[]).await;
    for x in 0..4 {
        let key = format!("g/p/c/0/{x}");
        let got = get(&server, &format!("{view_url}/{key}"), &[]).await;
        assert_eq!(got.body, direct.get(&key).await.unwrap().unwrap(), "{key}");
        let column: Vec<i32> = decode_chunk("g/p", &metadata.body, &key, &got.body, &[0, x]);
        assert_eq!(
            column,
            (0..4).map(|y| y * 10 + x as i32).collect::<Vec<_>>()
        );
    }
    server.stop().await;
}

/// Extra request headers.
type Headers<'a> = &'a [(&'a str, &'a str)];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_requests_are_400_with_the_reason() {
    let (_dir, repo, _) = fixture().await;
    let server = TestServer::start(repo).await;
    let cases: [(&str, Headers, &str); 10] = [
        ("/main;chunks=temp=0,1,1/temp/zarr.json", &[], "positive"),
        ("/main;chunks=temp=1,1/temp/zarr.json", &[], "3 dimensions"),
        ("/main;chunks=nope=1/zarr.json", &[], "no array `nope`"),
        ("/main;chunks=g=1/zarr.json", &[], "is a group"),
        (
            "/main;chunks=temp=a,1,1/zarr.json",
            &[],
            "not a non-negative",
        ),
        ("/main;chunks=/zarr.json", &[], "empty"),
        (
            "/main;rows=3/zarr.json",
            &[],
            "unknown view parameter `rows`",
        ),
        (
            "/main;chunks=temp=1,1,1;chunks=temp=1,1,1/zarr.json",
            &[],
            "twice",
        ),
        ("/main/zarr.json", &[("chunks", "temp=-1,1,1")], "negative"),
        (
            "/main;chunks=temp=6,1,1/zarr.json",
            &[("chunks", "temp=6,2,2")],
            "different views",
        ),
    ];
    for (path, headers, reason) in cases {
        let got = get(&server, path, headers).await;
        assert_eq!(got.status, StatusCode::BAD_REQUEST, "{path} {headers:?}");
        assert!(got.text().contains(reason), "{path}: {}", got.text());
    }
    // The same request in both forms is accepted, whatever its spelling.
    let both = get(
        &server,
        "/main;chunks=temp=6,1,1/temp/zarr.json",
        &[("chunks", " /temp = 6, 1, 1")],
    )
    .await;
    assert_eq!(both.status, StatusCode::OK, "{}", both.text());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etags_differ_from_the_stored_view_and_revalidate() {
    let (_dir, repo, id) = fixture().await;
    let server = TestServer::start(repo).await;
    for key in ["temp/zarr.json", "zarr.json", "g/zarr.json", "temp/c/0/0/0"] {
        let stored_key = if key.starts_with("temp/c/") {
            "temp/c/0/0/0"
        } else {
            key
        };
        let stored = get(&server, &format!("/{id}/{stored_key}"), &[]).await;
        let view = get(&server, &format!("/{id};chunks=temp=6,1,1/{key}"), &[]).await;
        let other = get(&server, &format!("/{id};chunks=temp=3,2,2/{key}"), &[]).await;
        assert_eq!(view.status, StatusCode::OK, "{key}");
        assert_ne!(view.header("etag"), stored.header("etag"), "{key}");
        assert_ne!(view.header("etag"), other.header("etag"), "{key}");
        assert_eq!(view.header("vary"), "chunks");
        assert_eq!(
            view.header("cache-control"),
            "public, max-age=31536000, immutable"
        );
        let etag = view.header("etag").to_string();
        let revalidated = get(
            &server,
            &format!("/{id};chunks=temp=6,1,1/{key}"),
            &[("if-none-match", &etag)],
        )
        .await;
        assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED, "{key}");
        // The stored view's ETag does not validate the rechunked bytes.
        let stale = get(
            &server,
            &format!("/{id};chunks=temp=6,1,1/{key}"),
            &[("if-none-match", stored.header("etag"))],
        )
        .await;
        assert_eq!(stale.status, StatusCode::OK, "{key}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_and_head_on_view_chunks() {
    let (_dir, repo, _) = fixture().await;
    let server = TestServer::start(repo).await;
    let path = "/main;chunks=temp=6,1,1/temp/c/0/1/2";
    let whole = get(&server, path, &[]).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.header("accept-ranges"), "bytes");
    let size = whole.body.len();
    assert!(size > 8, "{size}");
    let etag = whole.header("etag").to_string();
    let cases = [
        ("bytes=0-3".to_string(), 0..4),
        ("bytes=5-".to_string(), 5..size),
        ("bytes=-4".to_string(), size - 4..size),
        (format!("bytes=2-{}", size + 50), 2..size),
    ];
    for (range, expected) in cases {
        let got = get(&server, path, &[("range", &range), ("if-range", &etag)]).await;
        assert_eq!(got.status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(got.body, whole.body.slice(expected.clone()), "{range}");
        assert_eq!(
            got.header("content-range"),
            format!("bytes {}-{}/{size}", expected.start, expected.end - 1),
            "{range}"
        );
    }
    let beyond = get(&server, path, &[("range", &format!("bytes={size}-"))]).await;
    assert_eq!(beyond.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(beyond.header("content-range"), format!("bytes */{size}"));

    let headed = head(&server, path, &[]).await;
    assert_eq!(headed.status, StatusCode::OK);
    assert_eq!(headed.header("content-length"), size.to_string());
    assert_eq!(headed.header("etag"), etag);
    assert!(headed.body.is_empty());
    let ranged = head(&server, path, &[("range", "bytes=-4")]).await;
    assert_eq!(ranged.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(ranged.header("content-length"), "4");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_of_a_view_list_the_view_keys() {
    let (_dir, repo, _) = fixture().await;
    let server = TestServer::start(repo).await;
    let links = |page: &str| -> Vec<String> {
        page.split("<a href=\"")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap().to_string())
            .collect()
    };
    let stored = get(&server, "/main/temp/c/", &[]).await;
    assert_eq!(links(&stored.text()), ["0/", "1/", "2/", "4/", "5/"]);
    let view = "/main;chunks=temp=6,1,1";
    let top = get(&server, &format!("{view}/temp/c/"), &[]).await;
    assert_eq!(top.status, StatusCode::OK);
    assert_eq!(links(&top.text()), ["0/"]);
    let row = get(&server, &format!("{view}/temp/c/0/2/"), &[]).await;
    assert_eq!(links(&row.text()), ["0", "1", "2", "3"]);
    let header_row = get(&server, "/main/temp/c/0/2/", &[("chunks", "temp=6,1,1")]).await;
    assert_eq!(links(&header_row.text()), links(&row.text()));
    assert_ne!(top.header("etag"), stored.header("etag"));
    let root = get(&server, &format!("{view}/"), &[]).await;
    assert_eq!(links(&root.text()), ["g/", "temp/", "zarr.json"]);
    assert_ne!(
        root.header("etag"),
        get(&server, "/main/", &[]).await.header("etag")
    );
    server.stop().await;
}

/// Also runs the server on a current-thread runtime, where view chunks are assembled on the
/// blocking pool while the test's thread drives I/O.
#[tokio::test]
async fn a_server_without_a_decoded_cache_serves_the_same_bytes() {
    let (_dir, repo, id) = fixture().await;
    let direct = direct_view(&repo, id, "temp=6,1,1").await;
    let options = ServeOptions::new("127.0.0.1:0".parse().unwrap()).with_decoded_cache_bytes(0);
    let server = TestServer::start_with(repo, options).await;
    for x in 0..4 {
        let key = format!("temp/c/0/3/{x}");
        let got = get(&server, &format!("/main;chunks=temp=6,1,1/{key}"), &[]).await;
        assert_eq!(got.body, direct.get(&key).await.unwrap().unwrap(), "{key}");
    }
    server.stop().await;
}

#[cfg(feature = "cli")]
mod binary {
    use std::ffi::OsStr;
    use std::path::Path;
    use std::process::Command;

    use super::*;
    use common::http::{spawn_floe_serve, ServeProcess};

    /// Starts `floe -r repo serve --cache cache` and returns it with its base URL.
    async fn serve_cached(repo: &Path, cache: &Path) -> (ServeProcess, String) {
        let extra = [
            OsStr::new("--cache-mib"),
            OsStr::new("64"),
            OsStr::new("--cache"),
            cache.as_os_str(),
        ];
        spawn_floe_serve(repo, &extra).await
    }

    /// Stops the server with SIGTERM (so it saves its cache index) and waits for it.
    fn stop(mut child: ServeProcess) {
        let status = Command::new("kill")
            .args(["-TERM", &child.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = child.0.wait().unwrap();
        assert!(exit.success(), "floe serve ended with {exit}");
    }

    async fn fetch(base: &str, path: &str) -> Bytes {
        let response = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.bytes().await.unwrap()
    }

    fn cache_totals(cache: &Path) -> Value {
        let run = common::cli::floe_env(
            None,
            None,
            &[
                "cache",
                "stats",
                "--cache",
                cache.to_str().unwrap(),
                "--json",
            ],
        );
        run.json()["totals"].clone()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn floe_serve_with_a_cache_serves_and_hits_it_on_the_next_run() {
        let (dir, repo, id) = fixture().await;
        let direct = direct_view(&repo, id, "temp=6,1,1").await;
        drop(repo);
        let cache = tempfile::tempdir().unwrap();
        let paths = [
            "/main/zarr.json",
            "/main/temp/c/2/0/0",
            "/main;chunks=temp=6,1,1/temp/c/0/1/1",
        ];

        let (child, base) = serve_cached(dir.path(), cache.path()).await;
        let mut first = Vec::new();
        for path in paths {
            first.push(fetch(&base, path).await);
        }
        stop(child);
        assert_eq!(first[2], direct.get("temp/c/0/1/1").await.unwrap().unwrap());
        let after_first = cache_totals(cache.path());
        assert!(
            after_first["inserts"].as_u64().unwrap() > 0,
            "{after_first}"
        );

        let (child, base) = serve_cached(dir.path(), cache.path()).await;
        for (path, before) in paths.iter().zip(&first) {
            assert_eq!(&fetch(&base, path).await, before, "{path}");
        }
        stop(child);
        let after_second = cache_totals(cache.path());
        assert!(
            after_second["hits"].as_u64().unwrap() > after_first["hits"].as_u64().unwrap(),
            "first {after_first}, second {after_second}"
        );
    }
}
