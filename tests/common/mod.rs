//! Helpers shared by the integration tests: `zarr.json` documents, node paths, chunk bytes,
//! repositories in memory and in temporary directories, a small committed history, and a
//! runtime for plain `#[test]` functions. Larger shared pieces live in the submodules.
//!
//! Each test file includes this module with `mod common;` and uses only part of it, hence
//! the module-wide `dead_code` allowance.

#![allow(dead_code)]

#[cfg(feature = "cli")]
pub mod cli;
pub mod conflicts;
pub mod counting;
pub mod damaged_repo;
#[cfg(feature = "server")]
pub mod http;
pub mod inline_refs;
pub mod python;
pub mod s3_sources;
pub mod session_model;
pub mod soak;
pub mod zarrs_repo;

use bytes::Bytes;
use floe::{
    DynStorage, NodePath, Repository, RepositorySettings, Session, SnapshotId, VersionSpec,
};
use serde_json::{json, Map, Value};

/// Settings for lifecycle tests: every chunk in its own object and manifests rewritten often,
/// so GC has every kind of object to collect.
pub fn lifecycle_settings() -> RepositorySettings {
    RepositorySettings {
        inline_threshold: 0,
        single_object_threshold: 0,
        delta_max_entries: 2,
        ..RepositorySettings::default()
    }
}

/// `zarr.json` of an int32 array (little-endian `bytes` codec, fill value 0, default `/` chunk
/// keys) with the given shape and regular chunk shape.
pub fn int32_array(shape: &[u64], chunks: &[u64]) -> Value {
    json!({
        "zarr_format": 3, "node_type": "array", "shape": shape, "data_type": "int32",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunks}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0, "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}]
    })
}

/// `zarr.json` of a uint8 array (`bytes` codec without configuration, fill value 0, default
/// `/` chunk keys) with the given shape and regular chunk shape.
pub fn uint8_array(shape: &[u64], chunks: &[u64]) -> Value {
    json!({
        "zarr_format": 3, "node_type": "array", "shape": shape, "data_type": "uint8",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunks}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0, "codecs": [{"name": "bytes"}]
    })
}

/// The sorted keys of the `consolidated_metadata` block of a group `zarr.json` document;
/// panics when it has none.
pub fn consolidated_keys(document: &Value) -> Vec<String> {
    let mut keys: Vec<String> = document["consolidated_metadata"]["metadata"]
        .as_object()
        .unwrap_or_else(|| panic!("no consolidated block in {document}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

/// An attributes object from `(key, value)` pairs.
pub fn attrs(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// The node path `path`; panics on an invalid one.
pub fn p(path: &str) -> NodePath {
    NodePath::new(path).unwrap()
}

/// `len` bytes, all equal to `byte`.
pub fn filled(len: usize, byte: u8) -> Bytes {
    Bytes::from(vec![byte; len])
}

/// A new repository with default settings on a fresh in-memory storage, and that storage.
pub async fn memory_repo() -> (Repository, DynStorage) {
    memory_repo_with(RepositorySettings::default()).await
}

/// A new repository with `settings` on a fresh in-memory storage, and that storage.
pub async fn memory_repo_with(settings: RepositorySettings) -> (Repository, DynStorage) {
    let storage = floe::open_storage("memory://", &vec![]).unwrap();
    let repo = Repository::init(storage.clone(), settings).await.unwrap();
    (repo, storage)
}

/// A new repository with `settings` directly in a fresh temporary directory (deleted when the
/// returned guard drops).
pub async fn tempdir_repo(settings: RepositorySettings) -> (tempfile::TempDir, Repository) {
    let dir = tempfile::tempdir().unwrap();
    let storage = floe::open_storage(dir.path().to_str().unwrap(), &vec![]).unwrap();
    let repo = Repository::init(storage, settings).await.unwrap();
    (dir, repo)
}

/// A repository with an array `a` (shape [n], chunks of 1) and `n` commits each writing one
/// chunk. Returns the snapshot ids of the commits, oldest first (the root is not included).
pub async fn history(repo: &Repository, n: u64) -> Vec<SnapshotId> {
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&NodePath::root(), Map::new()).await.unwrap();
    s.create_array(&p("a"), int32_array(&[n.max(1)], &[1]))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        s.set_chunk(
            &p("a"),
            &[i % n.max(1)],
            Bytes::from(i.to_le_bytes().to_vec()),
        )
        .await
        .unwrap();
        let mut meta = Map::new();
        meta.insert("i".into(), json!(i));
        ids.push(s.commit(&format!("commit {i}"), Some(meta)).await.unwrap());
    }
    ids
}

/// A read-only session at the tip of `main`.
pub async fn main_session(repo: &Repository) -> Session {
    repo.readonly_session(&VersionSpec::Branch("main".into()))
        .await
        .unwrap()
}

/// A single-threaded tokio runtime, for `#[test]` functions that drive async code.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The whole log of `main`, newest first, after asserting the history is linear: consecutive
/// generations down to 0, each entry a descendant of the next.
pub async fn linear_history(repo: &Repository) -> Vec<floe::LogEntry> {
    let tip = repo.branch_tip("main").await.unwrap();
    let log = repo.log_from(tip, usize::MAX).await.unwrap();
    for (k, entry) in log.iter().enumerate() {
        assert_eq!(
            entry.generation,
            (log.len() - 1 - k) as u64,
            "history is not linear at entry {k}"
        );
        if k + 1 < log.len() {
            assert!(repo.is_ancestor(log[k + 1].id, entry.id).await.unwrap());
        }
    }
    log
}
