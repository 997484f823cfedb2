//! The repository handle: opening, object I/O and in-memory caches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::loaded::{lock, LoadedSnapshot, ShardIndex};
use super::settings::RepositorySettings;
use crate::error::{Error, Result};
use crate::format::branch_hint::BranchHint;
use crate::format::envelope::{self, ObjectKind};
use crate::format::manifest::ManifestColumns;
use crate::format::snapshot::{Snapshot, TxLogRef};
use crate::format::txlog::TxLog;
use crate::format::{now_us, snapshot::micros_to_time};
use crate::id::{ManifestId, SnapshotId, TxLogId};
use crate::storage::{
    create_storage, get_optional, layout, open_storage, DynStorage, PutOutcome, StorageOptions,
};

/// The newest repository format this build reads and the one it writes.
pub const REPOSITORY_FORMAT: u32 = 1;
/// How many times a read of a digest-addressed object is tried before a storage error is
/// returned.
const IMMUTABLE_READ_ATTEMPTS: u32 = 3;

/// Name of the branch created with every repository.
pub const DEFAULT_BRANCH: &str = "main";

/// Contents of `floe.json`.
#[derive(Debug, Serialize, Deserialize)]
struct RepoInfo {
    floe_format: u32,
    created_at: String,
}

/// A handle to a floe repository. Cheap to clone; clones share caches.
#[derive(Clone, Debug)]
pub struct Repository {
    pub(crate) inner: Arc<RepoInner>,
    /// What this handle may read of virtual chunks, and its clients for their sources.
    pub(crate) virtual_reader: Arc<crate::virtual_refs::VirtualReader>,
}

pub(crate) struct RepoInner {
    pub(crate) storage: DynStorage,
    pub(crate) settings: RepositorySettings,
    snapshots: quick_cache::sync::Cache<SnapshotId, Arc<LoadedSnapshot>>,
    manifests: quick_cache::sync::Cache<ManifestId, Arc<ShardIndex>, ShardWeighter>,
    /// Per branch, the newest record this handle has seen exist (records are never deleted,
    /// so it stays a lower bound of the head).
    known_heads: Mutex<HashMap<String, u64>>,
    /// Branch hints read ahead when the handle opened (the default branch's), used once.
    prefetched_hints: Mutex<HashMap<String, BranchHint>>,
}

impl RepoInner {
    pub(crate) fn known_head(&self, branch: &str) -> Option<u64> {
        lock(&self.known_heads).get(branch).copied()
    }

    /// Notes that record `seq` of `branch` exists.
    pub(crate) fn saw_record(&self, branch: &str, seq: u64) {
        let mut heads = lock(&self.known_heads);
        let known = heads.entry(branch.to_string()).or_insert(seq);
        *known = (*known).max(seq);
    }

    pub(crate) fn take_prefetched_hint(&self, branch: &str) -> Option<BranchHint> {
        lock(&self.prefetched_hints).remove(branch)
    }
}

impl std::fmt::Debug for RepoInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("location", &self.storage.location())
            .finish()
    }
}

#[derive(Clone)]
struct ShardWeighter;

impl quick_cache::Weighter<ManifestId, Arc<ShardIndex>> for ShardWeighter {
    fn weight(&self, _key: &ManifestId, value: &Arc<ShardIndex>) -> u64 {
        value.approx_bytes().max(1)
    }
}

impl Repository {
    fn with_storage(storage: DynStorage, settings: RepositorySettings) -> Self {
        let manifests = quick_cache::sync::Cache::with_weighter(
            1024,
            settings.manifest_cache_bytes,
            ShardWeighter,
        );
        Repository {
            inner: Arc::new(RepoInner {
                storage,
                snapshots: quick_cache::sync::Cache::new(settings.snapshot_cache_entries.max(1)),
                manifests,
                settings,
                known_heads: Mutex::default(),
                prefetched_hints: Mutex::default(),
            }),
            virtual_reader: Arc::default(),
        }
    }

    /// Creates a new, empty repository with a `main` branch pointing at an empty snapshot.
    ///
    /// Fails with [`Error::RepositoryExists`] if the location already holds one.
    pub async fn init(storage: DynStorage, settings: RepositorySettings) -> Result<Self> {
        let repo = Self::with_storage(storage, settings);
        let storage = repo.storage();
        if storage.head(layout::REPO_INFO_KEY).await?.is_some() {
            return Err(Error::RepositoryExists {
                location: storage.location().to_string(),
            });
        }
        let root = Snapshot {
            parent: None,
            generation: 0,
            committed_at_us: now_us(),
            message: "Repository initialized".into(),
            metadata_json: "{}".into(),
            nodes: Vec::new(),
            txlog: TxLogRef::Inline(TxLog::default()),
            skips: Vec::new(),
            recent: Vec::new(),
            pages: Vec::new(),
            merged: None,
            rewritten_from: None,
        };
        let root_id = repo.write_snapshot(&root).await?;
        match repo
            .write_first_branch_record(DEFAULT_BRANCH, root_id)
            .await
        {
            Ok(()) => {}
            // An earlier init stopped after creating `main` and before writing `floe.json`
            // (or another init is racing this one): finish the repository with that `main`;
            // `floe.json` below decides who created the repository.
            Err(Error::BranchExists { .. }) => {}
            Err(e) => return Err(e),
        }
        let info = RepoInfo {
            floe_format: REPOSITORY_FORMAT,
            created_at: micros_to_time(root.committed_at_us).to_rfc3339(),
        };
        let info_json = serde_json::to_vec_pretty(&info)
            .map_err(|e| Error::corrupt(layout::REPO_INFO_KEY, e.to_string()))?;
        match storage
            .put_if_absent(layout::REPO_INFO_KEY, Bytes::from(info_json))
            .await?
        {
            PutOutcome::Created => Ok(repo),
            PutOutcome::AlreadyExists => Err(Error::RepositoryExists {
                location: storage.location().to_string(),
            }),
        }
    }

    /// Opens an existing repository, checking its format version. The default branch's hint
    /// is read at the same time, so finding its head later costs one round trip less.
    pub async fn open(storage: DynStorage, settings: RepositorySettings) -> Result<Self> {
        let repo = Self::with_storage(storage.clone(), settings);
        let (info, hint) = tokio::join!(
            get_optional(storage.as_ref(), layout::REPO_INFO_KEY),
            repo.read_hint(DEFAULT_BRANCH)
        );
        let Some(bytes) = info? else {
            return Err(Error::RepositoryNotFound {
                location: storage.location().to_string(),
            });
        };
        let info: RepoInfo = serde_json::from_slice(&bytes).map_err(|e| {
            Error::corrupt(
                layout::REPO_INFO_KEY,
                format!("not a floe repository marker: {e}"),
            )
        })?;
        if info.floe_format > REPOSITORY_FORMAT {
            return Err(Error::UnsupportedFormatVersion {
                found: info.floe_format,
                supported: REPOSITORY_FORMAT,
            });
        }
        if let Some(hint) = hint {
            lock(&repo.inner.prefetched_hints).insert(DEFAULT_BRANCH.to_string(), hint);
        }
        Ok(repo)
    }

    /// Opens the repository at a path or URL (see [`open_storage`]) with default settings.
    pub async fn open_location(location: &str, options: &StorageOptions) -> Result<Self> {
        Self::open(
            open_storage(location, options)?,
            RepositorySettings::default(),
        )
        .await
    }

    /// Creates a repository at a path or URL with default settings (creating a missing local
    /// directory).
    pub async fn init_location(location: &str, options: &StorageOptions) -> Result<Self> {
        Self::init(
            create_storage(location, options)?,
            RepositorySettings::default(),
        )
        .await
    }

    /// The storage under this repository.
    pub fn storage(&self) -> &DynStorage {
        &self.inner.storage
    }

    /// The settings of this handle.
    pub fn settings(&self) -> &RepositorySettings {
        &self.inner.settings
    }

    // ---- object I/O -------------------------------------------------------------------

    /// Writes an encoded immutable object under its digest key. The key is the digest of
    /// bytes that include a random nonce, so no other write can target it: a plain (atomic)
    /// put suffices, and a repeated put can only rewrite the very same bytes. A plain put is
    /// also the cheaper request everywhere (on a local directory it saves a link and an
    /// unlink per object).
    pub(crate) async fn put_immutable(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.storage().put(key, bytes).await
    }

    pub(crate) async fn write_snapshot(&self, snapshot: &Snapshot) -> Result<SnapshotId> {
        let bytes = envelope::encode(ObjectKind::Snapshot, snapshot)?;
        let id = SnapshotId::of_bytes(&bytes);
        self.put_immutable(&layout::snapshot_key(&id), bytes)
            .await?;
        Ok(id)
    }

    pub(crate) async fn write_manifest(&self, columns: &ManifestColumns) -> Result<ManifestId> {
        let bytes = envelope::encode(ObjectKind::Manifest, columns)?;
        let id = ManifestId::of_bytes(&bytes);
        self.put_immutable(&layout::manifest_key(&id), bytes)
            .await?;
        Ok(id)
    }

    pub(crate) async fn write_txlog(&self, log: &TxLog) -> Result<TxLogId> {
        let bytes = envelope::encode(ObjectKind::TxLog, log)?;
        let id = TxLogId::of_bytes(&bytes);
        self.put_immutable(&layout::txlog_key(&id), bytes).await?;
        Ok(id)
    }

    /// Reads a digest-addressed object and checks its digest. Such objects never change, so a
    /// read that failed for a transient reason ([`Error::Storage`]) is retried a few times
    /// with a short pause: a long rebase walk or history search then survives a flaky store.
    pub(crate) async fn get_verified(&self, key: &str, digest: &[u8; 32]) -> Result<Bytes> {
        let mut attempt = 0u32;
        let bytes = loop {
            match self.storage().get(key).await {
                Err(Error::Storage { .. }) if attempt + 1 < IMMUTABLE_READ_ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(2 << attempt)).await;
                }
                other => break other?,
            }
        };
        let found = blake3::hash(&bytes);
        if found.as_bytes() != digest {
            return Err(Error::DigestMismatch {
                key: key.to_string(),
                expected: hex(digest),
                found: found.to_hex().to_string(),
            });
        }
        Ok(bytes)
    }

    /// Loads a snapshot (verified against its id), from the cache when possible.
    pub(crate) async fn load_snapshot(&self, id: &SnapshotId) -> Result<Arc<LoadedSnapshot>> {
        if let Some(found) = self.inner.snapshots.get(id) {
            return Ok(found);
        }
        let key = layout::snapshot_key(id);
        let bytes = match self.get_verified(&key, id.as_bytes()).await {
            Err(Error::ObjectMissing { .. }) => {
                return Err(Error::SnapshotNotFound { id: id.to_string() });
            }
            other => other?,
        };
        let snapshot: Snapshot = envelope::decode(&key, &bytes, ObjectKind::Snapshot)?;
        let loaded = Arc::new(LoadedSnapshot::new(*id, snapshot));
        self.inner.snapshots.insert(*id, loaded.clone());
        Ok(loaded)
    }

    /// Puts a snapshot this handle just wrote into the cache (so the next session on the
    /// branch does not read it back).
    pub(crate) fn cache_snapshot(&self, loaded: Arc<LoadedSnapshot>) {
        self.inner.snapshots.insert(loaded.id, loaded);
    }

    /// Loads a manifest shard (verified against its id) as a lookup index.
    pub(crate) async fn load_manifest(&self, id: &ManifestId) -> Result<Arc<ShardIndex>> {
        if let Some(found) = self.inner.manifests.get(id) {
            return Ok(found);
        }
        let key = layout::manifest_key(id);
        let bytes = self.get_verified(&key, id.as_bytes()).await?;
        let columns: ManifestColumns = envelope::decode(&key, &bytes, ObjectKind::Manifest)?;
        let index = Arc::new(ShardIndex::from_columns(columns).map_err(|e| retarget(e, &key))?);
        self.inner.manifests.insert(*id, index.clone());
        Ok(index)
    }

    /// Loads a transaction log wherever it lives.
    pub(crate) async fn load_txlog(&self, txlog: &TxLogRef) -> Result<TxLog> {
        match txlog {
            TxLogRef::Inline(log) => Ok(log.clone()),
            TxLogRef::Object(id) => {
                let key = layout::txlog_key(id);
                let bytes = self.get_verified(&key, id.as_bytes()).await?;
                envelope::decode(&key, &bytes, ObjectKind::TxLog)
            }
        }
    }
}

/// Names the object in a corruption error raised while decoding its payload.
pub(crate) fn retarget(err: Error, key: &str) -> Error {
    match err {
        Error::CorruptObject { reason, .. } => Error::CorruptObject {
            key: key.to_string(),
            reason,
        },
        other => other,
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
