//! Criterion benches of floe's hot paths:
//!
//! - `commit/append_one_chunk/{memory,local}`: one append commit (grow a 1-D array by one and
//!   write its 4-byte chunk) on a branch that already has 1,000 commits; only `commit` is timed.
//! - `chunk_lookup/get_chunk_warm`: `Session::get_chunk` of random chunks of an array with
//!   1,000,000 inline chunks (about 60 manifest shards), every shard already cached;
//!   `get_chunk_warm_1k` the same on an array of 1,000 chunks (one small shard).
//! - `zarr_get/chunk_key_warm`: the same lookups through `ZarrStore::get` with Zarr keys.
//!
//! Run with `cargo bench --bench core`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use floe::{NodePath, Repository, RepositorySettings, Session, StorageOptions, VersionSpec};
use tokio::runtime::Runtime;

const HISTORY: u64 = 1_000;
const BIG_CHUNKS: u64 = 1_000_000;
const SMALL_CHUNKS: u64 = 1_000;

fn array_json(len: u64) -> serde_json::Value {
    serde_json::json!({
        "zarr_format": 3, "node_type": "array", "shape": [len], "data_type": "int32",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0, "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}]
    })
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"))
}

fn chunk_of(i: u64) -> Bytes {
    Bytes::copy_from_slice(&(i as i32).to_le_bytes())
}

/// A repository at `location` whose `main` holds an array `a` of `len` chunks after `len`
/// commits of one chunk each.
async fn repo_with_history(location: &str, len: u64) -> floe::Result<Repository> {
    let repo = Repository::init_location(location, &StorageOptions::default()).await?;
    let a = NodePath::new("a")?;
    let session = repo.writable_session("main").await?;
    session
        .create_group(&NodePath::root(), Default::default())
        .await?;
    session.create_array(&a, array_json(0)).await?;
    session.commit("create", None).await?;
    for i in 0..len {
        append(&repo, &a, i)
            .await?
            .commit(&format!("append {i}"), None)
            .await?;
    }
    Ok(repo)
}

/// A writable session that grew `a` to `i + 1` elements and wrote chunk `i`.
async fn append(repo: &Repository, a: &NodePath, i: u64) -> floe::Result<Session> {
    let session = repo.writable_session("main").await?;
    session.resize_array(a, &[i + 1]).await?;
    session.set_chunk(a, &[i], chunk_of(i)).await?;
    Ok(session)
}

fn bench_commit(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let local = dir
        .path()
        .to_str()
        .unwrap_or_else(|| panic!("tempdir path is not UTF-8"))
        .to_string();
    let mut group = c.benchmark_group("commit");
    group
        .measurement_time(Duration::from_secs(4))
        .sample_size(30);
    for (name, location) in [("memory", "memory://".to_string()), ("local", local)] {
        let repo = rt
            .block_on(repo_with_history(&location, HISTORY))
            .unwrap_or_else(|e| panic!("setup: {e}"));
        let a = NodePath::new("a").unwrap_or_else(|e| panic!("{e}"));
        let mut next = HISTORY;
        group.bench_function(format!("append_one_chunk/{name}"), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let session = rt
                        .block_on(append(&repo, &a, next))
                        .unwrap_or_else(|e| panic!("{e}"));
                    let start = Instant::now();
                    rt.block_on(session.commit("bench append", None))
                        .unwrap_or_else(|e| panic!("{e}"));
                    spent += start.elapsed();
                    next += 1;
                }
                spent
            })
        });
    }
    group.finish();
}

/// A read-only session on an array `big` with `chunks` inline chunks, every shard loaded.
async fn manifest_session(chunks: u64) -> floe::Result<Session> {
    let repo = Repository::init(
        floe::open_storage("memory://", &StorageOptions::default())?,
        RepositorySettings::default(),
    )
    .await?;
    let big = NodePath::new("big")?;
    let session = repo.writable_session("main").await?;
    session
        .create_group(&NodePath::root(), Default::default())
        .await?;
    session.create_array(&big, array_json(chunks)).await?;
    for i in 0..chunks {
        session.set_chunk(&big, &[i], chunk_of(i)).await?;
    }
    session.commit("a million chunks", None).await?;
    let reader = repo
        .readonly_session(&VersionSpec::Branch("main".into()))
        .await?;
    for i in (0..chunks).step_by(1024) {
        if reader.get_chunk(&big, &[i]).await?.as_deref() != Some(&chunk_of(i)[..]) {
            panic!("chunk {i} reads back wrong");
        }
    }
    Ok(reader)
}

/// Pseudo-random chunk indices below `.1` (a fixed LCG), so every run looks up the same
/// sequence.
struct Coords(u64, u64);

impl Coords {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % self.1
    }
}

fn bench_lookups(c: &mut Criterion) {
    let rt = runtime();
    let big = NodePath::new("big").unwrap_or_else(|e| panic!("{e}"));
    let mut group = c.benchmark_group("chunk_lookup");
    group.measurement_time(Duration::from_secs(3));
    let mut big_reader = None;
    for (name, chunks) in [
        ("get_chunk_warm_1k", SMALL_CHUNKS),
        ("get_chunk_warm", BIG_CHUNKS),
    ] {
        let setup = Instant::now();
        let reader = rt
            .block_on(manifest_session(chunks))
            .unwrap_or_else(|e| panic!("setup: {e}"));
        eprintln!(
            "chunk lookup setup ({chunks} chunks): {:.1} s",
            setup.elapsed().as_secs_f64()
        );
        let mut coords = Coords(1, chunks);
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| {
                let i = coords.next();
                let (reader, big) = (&reader, &big);
                async move {
                    let got = reader
                        .get_chunk(big, &[i])
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                    assert_eq!(got.as_deref(), Some(&chunk_of(i)[..]));
                }
            })
        });
        big_reader = Some(reader);
    }
    group.finish();
    let Some(reader) = big_reader else {
        return;
    };

    let zarr = reader.zarr();
    let mut group = c.benchmark_group("zarr_get");
    group.measurement_time(Duration::from_secs(3));
    let mut coords = Coords(2, BIG_CHUNKS);
    group.bench_function("chunk_key_warm", |b| {
        b.to_async(&rt).iter(|| {
            let i = coords.next();
            let key = format!("big/c/{i}");
            let zarr = &zarr;
            async move {
                let got = zarr.get(&key).await.unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(got.as_deref(), Some(&chunk_of(i)[..]));
            }
        })
    });
    group.bench_function("array_metadata", |b| {
        b.to_async(&rt).iter(|| async {
            let got = zarr
                .get("big/zarr.json")
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(got.is_some());
        })
    });
    group.finish();
}

criterion_group!(benches, bench_commit, bench_lookups);
criterion_main!(benches);
