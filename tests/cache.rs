//! The persistent local cache (`CachedStorage`): reads of immutable objects are served from
//! local disk after the first, survive a reopen, stay within the byte budget with LRU
//! eviction, never trust a damaged file or index, and never cache refs.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use common::counting::Counting;
use common::{p, uint8_array};
use floe::{
    CachedStorage, DynStorage, Error, Repository, RepositorySettings, Storage, VersionSpec,
};
use serde_json::Map;

const CHUNK: usize = 4096;
const CHUNKS: u64 = 8;

fn chunk_bytes(i: u64) -> Bytes {
    Bytes::from(
        (0..CHUNK)
            .map(|k| (k as u64 * 31 + i * 7) as u8)
            .collect::<Vec<u8>>(),
    )
}

/// An in-memory repository with array `a` of `CHUNKS` packed chunks of `CHUNK` bytes.
async fn seeded() -> DynStorage {
    let storage = floe::open_storage("memory://", &vec![]).unwrap();
    // Deltas compacted at once, so the chunk references live in a manifest object.
    let settings = RepositorySettings {
        delta_max_entries: 0,
        ..RepositorySettings::default()
    };
    let repo = Repository::init(storage.clone(), settings).await.unwrap();
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&floe::NodePath::root(), Map::new())
        .await
        .unwrap();
    s.create_array(
        &p("a"),
        uint8_array(&[CHUNKS * CHUNK as u64], &[CHUNK as u64]),
    )
    .await
    .unwrap();
    for i in 0..CHUNKS {
        s.set_chunk(&p("a"), &[i], chunk_bytes(i)).await.unwrap();
    }
    s.commit("seed", None).await.unwrap();
    storage
}

/// A counting decorator over `base`, behind a cache in `dir`.
fn cached(base: &DynStorage, dir: &Path, budget: u64) -> (Arc<CachedStorage>, Arc<Counting>) {
    let counting = Counting::wrap(base.clone());
    let inner: DynStorage = counting.clone();
    (
        Arc::new(CachedStorage::open(inner, dir, budget).unwrap()),
        counting,
    )
}

/// Reads chunk `i` of `a` at `main` through a fresh repository handle (cold memory caches).
async fn read_chunk(storage: &Arc<CachedStorage>, i: u64) -> Bytes {
    let dyn_storage: DynStorage = storage.clone();
    let repo = Repository::open(dyn_storage, RepositorySettings::default())
        .await
        .unwrap();
    let session = repo
        .readonly_session(&VersionSpec::Branch("main".into()))
        .await
        .unwrap();
    session.get_chunk(&p("a"), &[i]).await.unwrap().unwrap()
}

fn immutable_gets(counting: &Counting) -> usize {
    let seen = counting.take();
    ["snapshots/", "manifests/", "txlogs/", "chunks/"]
        .iter()
        .map(|dir| seen.gets_under(dir))
        .sum()
}

/// Files and their total size under the cache's `objects/` directory.
fn cached_files(dir: &Path) -> (Vec<PathBuf>, u64) {
    let mut found = Vec::new();
    let objects = dir.join("objects");
    if let Ok(fans) = std::fs::read_dir(&objects) {
        for fan in fans {
            for file in std::fs::read_dir(fan.unwrap().path()).unwrap() {
                found.push(file.unwrap().path());
            }
        }
    }
    let total = found
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    (found, total)
}

fn digest_key(dir: &str, n: u8) -> String {
    format!("{dir}/{}", format!("{n:02x}").repeat(32))
}

#[tokio::test]
async fn second_read_of_chunk_snapshot_and_manifest_skips_the_inner_store() {
    let base = seeded().await;
    let dir = tempfile::tempdir().unwrap();
    let (storage, counting) = cached(&base, dir.path(), 1 << 20);

    assert_eq!(read_chunk(&storage, 3).await, chunk_bytes(3));
    let first = counting.take();
    assert!(first.gets_under("snapshots/") >= 1);
    assert!(first.gets_under("manifests/") >= 1);
    assert_eq!(first.gets_under("chunks/"), 1);

    assert_eq!(read_chunk(&storage, 3).await, chunk_bytes(3));
    let second = counting.take();
    for dir in ["snapshots/", "manifests/", "txlogs/", "chunks/"] {
        assert_eq!(second.gets_under(dir), 0, "{dir}: {:?}", second.gets);
    }
    // The branch is still resolved against the inner store.
    assert!(second.gets_under("refs/") + second.heads.len() + second.lists > 0);

    let stats = storage.stats().unwrap();
    assert!(stats.process.hits >= 3, "{stats:?}");
    assert!(stats.process.misses >= 3, "{stats:?}");
    assert_eq!(stats.process.corrupt_entries, 0);
    assert_eq!(stats.persisted.hits, stats.process.hits);
}

#[tokio::test]
async fn a_reopened_cache_still_hits_and_keeps_its_totals() {
    let base = seeded().await;
    let dir = tempfile::tempdir().unwrap();
    let hits_before = {
        let (storage, _) = cached(&base, dir.path(), 1 << 20);
        read_chunk(&storage, 5).await;
        read_chunk(&storage, 5).await;
        storage.stats().unwrap().persisted.hits
    };
    assert!(hits_before > 0);
    let (storage, counting) = cached(&base, dir.path(), 1 << 20);
    assert_eq!(read_chunk(&storage, 5).await, chunk_bytes(5));
    assert_eq!(immutable_gets(&counting), 0);
    let stats = storage.stats().unwrap();
    assert_eq!(stats.process.misses, 0, "{stats:?}");
    assert!(stats.persisted.hits > hits_before, "{stats:?}");
}

#[tokio::test]
async fn ranges_inside_a_pack_are_cached_without_the_pack() {
    let base = seeded().await;
    let dir = tempfile::tempdir().unwrap();
    let (storage, counting) = cached(&base, dir.path(), 1 << 20);
    read_chunk(&storage, 1).await;
    read_chunk(&storage, 2).await;
    let packs = base.list("chunks").await.unwrap();
    assert_eq!(packs.len(), 1, "{packs:?}");
    assert!(packs[0].size >= CHUNKS * CHUNK as u64);
    let stats = storage.stats().unwrap();
    // Two chunk ranges plus metadata objects: far less than the pack.
    assert!(stats.bytes < packs[0].size, "{stats:?} vs {packs:?}");

    // get_ranges: cached ranges are served locally, only missing ones go to the store.
    let key = &packs[0].key;
    let ranges = [0..10u64, 100..150, 1000..1001];
    counting.take();
    let first = storage.get_ranges(key, &ranges).await.unwrap();
    assert_eq!(counting.take().gets.len(), 1);
    let again = storage.get_ranges(key, &ranges).await.unwrap();
    assert_eq!(first, again);
    assert!(counting.take().gets.is_empty());
    let whole = base.get(key).await.unwrap();
    for (range, part) in ranges.iter().zip(&first) {
        assert_eq!(part[..], whole[range.start as usize..range.end as usize]);
    }
}

#[tokio::test]
async fn the_budget_is_respected_and_the_least_recently_used_entry_goes_first() {
    let base = floe::open_storage("memory://", &vec![]).unwrap();
    for n in 0..60u8 {
        let len = 500 + (n as usize * 37) % 900;
        base.put(&digest_key("chunks", n), Bytes::from(vec![n; len]))
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let budget = 5_000;
    let (storage, counting) = cached(&base, dir.path(), budget);
    for n in 0..60u8 {
        storage.get(&digest_key("chunks", n)).await.unwrap();
        let (_, on_disk) = cached_files(dir.path());
        assert!(on_disk <= budget, "{on_disk} bytes on disk after {n}");
    }
    let stats = storage.stats().unwrap();
    assert!(
        stats.bytes <= budget && stats.process.evictions > 0,
        "{stats:?}"
    );
    assert_eq!(cached_files(dir.path()).1, stats.bytes);

    // LRU: with four 1000-byte entries a, b, c, d (budget 4000), touching a makes b the
    // oldest; inserting e evicts b only.
    let small = tempfile::tempdir().unwrap();
    let keys: Vec<String> = (100..105u8).map(|n| digest_key("manifests", n)).collect();
    for key in &keys {
        base.put(key, Bytes::from(vec![7u8; 1000])).await.unwrap();
    }
    let (storage, counting2) = cached(&base, small.path(), 4000);
    drop(counting);
    for key in &keys[..4] {
        storage.get(key).await.unwrap();
    }
    storage.get(&keys[0]).await.unwrap();
    storage.get(&keys[4]).await.unwrap();
    counting2.take();
    for key in [&keys[0], &keys[2], &keys[3], &keys[4]] {
        storage.get(key).await.unwrap();
    }
    assert!(counting2.take().gets.is_empty(), "a survivor was evicted");
    storage.get(&keys[1]).await.unwrap();
    assert_eq!(counting2.take().gets, vec![keys[1].clone()]);
}

/// One cached object, then `damage` applied to its file; the next read must be correct,
/// refetched and counted as a corrupt entry.
async fn damaged_file_is_refetched(damage: impl Fn(&Path)) {
    let base = floe::open_storage("memory://", &vec![]).unwrap();
    let key = digest_key("snapshots", 9);
    let bytes = Bytes::from((0..3000u32).map(|i| i as u8).collect::<Vec<u8>>());
    base.put(&key, bytes.clone()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (storage, counting) = cached(&base, dir.path(), 1 << 20);
    storage.get(&key).await.unwrap();
    let (files, _) = cached_files(dir.path());
    assert_eq!(files.len(), 1);
    damage(&files[0]);
    counting.take();
    assert_eq!(storage.get(&key).await.unwrap(), bytes);
    assert_eq!(counting.take().gets, vec![key.clone()]);
    let stats = storage.stats().unwrap();
    assert_eq!(stats.process.corrupt_entries, 1, "{stats:?}");
    // Refetched bytes were cached again, intact.
    assert_eq!(storage.get(&key).await.unwrap(), bytes);
    assert!(counting.take().gets.is_empty());
    assert_eq!(cached_files(dir.path()).0.len(), 1);
}

#[tokio::test]
async fn a_truncated_cache_file_is_detected() {
    damaged_file_is_refetched(|f| {
        let file = std::fs::OpenOptions::new().write(true).open(f).unwrap();
        file.set_len(1000).unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_tampered_cache_file_is_detected() {
    damaged_file_is_refetched(|f| {
        let mut content = std::fs::read(f).unwrap();
        content[1234] ^= 0x01;
        std::fs::write(f, content).unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_deleted_cache_file_is_detected() {
    damaged_file_is_refetched(|f| std::fs::remove_file(f).unwrap()).await;
}

#[tokio::test]
async fn a_garbage_or_deleted_index_is_rebuilt_empty() {
    let base = seeded().await;
    let dir = tempfile::tempdir().unwrap();
    {
        let (storage, _) = cached(&base, dir.path(), 1 << 20);
        read_chunk(&storage, 0).await;
    }
    let index = dir.path().join("index.redb");
    let garbage: Vec<u8> = (0..20_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&index, garbage).unwrap();
    let (storage, counting) = cached(&base, dir.path(), 1 << 20);
    let stats = storage.stats().unwrap();
    assert_eq!((stats.entries, stats.bytes), (0, 0), "{stats:?}");
    assert!(cached_files(dir.path()).0.is_empty(), "orphans were kept");
    assert_eq!(read_chunk(&storage, 0).await, chunk_bytes(0));
    assert!(immutable_gets(&counting) > 0);
    drop(storage);

    std::fs::remove_file(&index).unwrap();
    assert!(!cached_files(dir.path()).0.is_empty());
    let (storage, counting) = cached(&base, dir.path(), 1 << 20);
    assert_eq!(storage.stats().unwrap().entries, 0);
    assert!(cached_files(dir.path()).0.is_empty(), "orphans were kept");
    assert_eq!(read_chunk(&storage, 0).await, chunk_bytes(0));
    assert!(immutable_gets(&counting) > 0);
}

#[tokio::test]
async fn refs_are_never_cached() {
    let base = seeded().await;
    let dir = tempfile::tempdir().unwrap();
    let (storage, counting) = cached(&base, dir.path(), 1 << 20);
    let through_cache = Repository::open(storage.clone(), RepositorySettings::default())
        .await
        .unwrap();
    let first = through_cache.branch_tip("main").await.unwrap();

    let direct = Repository::open(base.clone(), RepositorySettings::default())
        .await
        .unwrap();
    let s = direct.writable_session("main").await.unwrap();
    s.set_chunk(&p("a"), &[0], chunk_bytes(99)).await.unwrap();
    let moved = s.commit("move", None).await.unwrap();
    assert_ne!(first, moved);

    counting.take();
    assert_eq!(through_cache.branch_tip("main").await.unwrap(), moved);
    assert_eq!(read_chunk(&storage, 0).await, chunk_bytes(99));
    let seen = counting.take();
    assert!(seen.gets_under("refs/") + seen.heads.len() + seen.lists > 0);

    // Mutable keys read through the cache always reflect the store's current bytes.
    for key in ["refs/branch.main/hint", "floe.json", "refs/tag.v1/ref"] {
        let entries = storage.stats().unwrap().entries;
        base.put(key, Bytes::from_static(b"one")).await.unwrap();
        assert_eq!(storage.get(key).await.unwrap(), "one");
        assert_eq!(storage.get_range(key, 0..2).await.unwrap(), "on");
        base.put(key, Bytes::from_static(b"two")).await.unwrap();
        assert_eq!(storage.get(key).await.unwrap(), "two", "{key}");
        assert_eq!(storage.get_range(key, 0..2).await.unwrap(), "tw", "{key}");
        assert_eq!(storage.stats().unwrap().entries, entries, "{key}");
    }
}

#[tokio::test]
async fn a_second_open_of_the_same_directory_fails_clearly() {
    let base = floe::open_storage("memory://", &vec![]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let _first = CachedStorage::open(base.clone(), dir.path(), 1 << 20).unwrap();
    let err = CachedStorage::open(base, dir.path(), 1 << 20).unwrap_err();
    match &err {
        Error::Io { path, source } => {
            assert_eq!(path, &dir.path().join("index.redb"));
            assert_eq!(source.kind(), std::io::ErrorKind::WouldBlock);
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().contains("in use"), "{err}");
}

#[cfg(feature = "cli")]
#[tokio::test]
async fn cache_stats_and_clear_on_the_binary() {
    use common::cli::floe_env;

    let base = seeded().await;
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("cache");
    let cache = cache_dir.to_str().unwrap();
    let (storage, _) = cached(&base, &cache_dir, 1 << 20);
    read_chunk(&storage, 2).await;
    read_chunk(&storage, 2).await;
    let expected = storage.stats().unwrap();

    let missing = dir.path().join("missing");
    floe_env(
        None,
        None,
        &["cache", "stats", "--cache", missing.to_str().unwrap()],
    )
    .assert_error(3, "no cache directory");
    assert!(!missing.exists());

    // Held open by this process: the binary refuses with one clear line.
    let busy = floe_env(None, None, &["cache", "stats", "--cache", cache]);
    busy.assert_error(1, "in use");
    drop(storage);

    let stats = floe_env(None, None, &["cache", "stats", "--cache", cache, "--json"]).json();
    assert_eq!(stats["entries"], expected.entries);
    assert_eq!(stats["bytes"], expected.bytes);
    assert_eq!(stats["budget_bytes"], 1 << 20);
    assert_eq!(stats["totals"]["hits"], expected.persisted.hits);
    assert_eq!(stats["totals"]["misses"], expected.persisted.misses);
    let text = floe_env(None, None, &["cache", "stats", "--cache", cache]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(text
        .text()
        .contains(&format!("entries    {}", expected.entries)));

    let cleared = floe_env(None, None, &["cache", "clear", "--cache", cache]);
    assert_eq!(cleared.code, 0, "{}", cleared.stderr);
    assert!(cleared.text().contains("cleared"));
    let stats = floe_env(None, None, &["cache", "stats", "--cache", cache, "--json"]).json();
    assert_eq!(stats["entries"], 0);
    assert_eq!(stats["totals"]["hits"], 0);
    assert_eq!(stats["budget_bytes"], 1 << 20);
    assert!(cached_files(&cache_dir).0.is_empty());
}
