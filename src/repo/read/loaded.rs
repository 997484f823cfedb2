//! Decoded snapshots with lazily built lookup structures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::format::manifest::{ChunkCoord, ChunkRef};
use crate::format::path::NodePath;
use crate::format::snapshot::{NodeKind, ShardRef, Snapshot};
use crate::id::SnapshotId;
use crate::zarr::metadata::NodeMetadata;

use super::repository::Repository;
pub(crate) use super::shard_index::ShardIndex;

/// Shard coordinates of the chunk at `coord` in a shard layout.
pub(crate) fn shard_of(coord: &[u64], shard_shape: &[u64]) -> ChunkCoord {
    coord
        .iter()
        .zip(shard_shape)
        .map(|(c, s)| c / s.max(&1))
        .collect()
}

/// A decoded snapshot plus caches of what readers derive from it.
pub(crate) struct LoadedSnapshot {
    pub(crate) id: SnapshotId,
    pub(crate) snapshot: Snapshot,
    metadata: Mutex<HashMap<NodePath, Arc<NodeMetadata>>>,
    /// Decoded inline deltas by array and shard coordinates (nested, so that a lookup
    /// allocates no key). They are no larger than the snapshot itself.
    deltas: Mutex<HashMap<NodePath, HashMap<ChunkCoord, Arc<DeltaIndex>>>>,
}

impl std::fmt::Debug for LoadedSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LoadedSnapshot({})", self.id.short())
    }
}

impl LoadedSnapshot {
    pub(crate) fn new(id: SnapshotId, snapshot: Snapshot) -> Self {
        LoadedSnapshot {
            id,
            snapshot,
            metadata: Mutex::default(),
            deltas: Mutex::default(),
        }
    }

    /// The parsed metadata of the node at `path`, if the snapshot has one.
    pub(crate) fn node_metadata(&self, path: &NodePath) -> Result<Option<Arc<NodeMetadata>>> {
        if let Some(found) = lock(&self.metadata).get(path) {
            return Ok(Some(found.clone()));
        }
        let Some(node) = self.snapshot.node(path) else {
            return Ok(None);
        };
        let parsed = Arc::new(
            NodeMetadata::parse(path, node.zarr_json.as_bytes()).map_err(|e| {
                Error::CorruptObject {
                    key: format!("snapshots/{}", self.id),
                    reason: e.to_string(),
                }
            })?,
        );
        lock(&self.metadata).insert(path.clone(), parsed.clone());
        Ok(Some(parsed))
    }

    /// The shard of array `path` holding `coord`, if any chunk of that region is stored.
    pub(crate) fn shard_ref(&self, path: &NodePath, coord: &[u64]) -> Option<&ShardRef> {
        let node = self.snapshot.node(path)?;
        let NodeKind::Array(manifest) = &node.kind else {
            return None;
        };
        let shard = shard_of(coord, &manifest.shard_shape);
        manifest
            .shards
            .binary_search_by(|s| s.coord.cmp(&shard))
            .ok()
            .map(|i| &manifest.shards[i])
    }

    /// The merged index of one shard (base with the delta applied), built
    /// for each call: for listing and statistics, not for point lookups (see `chunk_ref`).
    pub(crate) async fn shard_index(
        &self,
        repo: &Repository,
        shard: &ShardRef,
    ) -> Result<Arc<ShardIndex>> {
        let base = match &shard.base {
            Some(id) => Some(repo.load_manifest(id).await?),
            None => None,
        };
        match &shard.delta {
            None => Ok(base.unwrap_or_default()),
            Some(delta) => {
                let delta = delta.decode().map_err(|e| self.corrupt(e))?;
                Ok(Arc::new(ShardIndex::overlay(base.as_deref(), &delta)?))
            }
        }
    }

    /// The chunk reference stored for `coord` of array `path` in this snapshot: the shard's
    /// delta decides if it mentions the chunk, else the base does. Nothing is copied: the
    /// base index is shared through the repository's byte-bounded manifest cache, and a
    /// snapshot keeps only its small decoded deltas.
    pub(crate) async fn chunk_ref(
        &self,
        repo: &Repository,
        path: &NodePath,
        coord: &[u64],
    ) -> Result<Option<ChunkRef>> {
        let Some(shard) = self.shard_ref(path, coord) else {
            return Ok(None);
        };
        let delta = self.delta_index(path, shard)?;
        if let Some(found) = delta.live.get(coord) {
            return Ok(Some(found));
        }
        if delta.deletes(coord) || outside_base_box(shard, coord) {
            return Ok(None);
        }
        match &shard.base {
            Some(id) => Ok(repo.load_manifest(id).await?.get(coord)),
            None => Ok(None),
        }
    }

    /// The decoded inline delta of one shard.
    fn delta_index(&self, path: &NodePath, shard: &ShardRef) -> Result<Arc<DeltaIndex>> {
        if let Some(found) = lock(&self.deltas)
            .get(path)
            .and_then(|m| m.get(&shard.coord))
        {
            return Ok(found.clone());
        }
        let index = match &shard.delta {
            None => DeltaIndex::default(),
            Some(delta) => {
                let entries = delta.decode().map_err(|e| self.corrupt(e))?;
                let tombstones = entries
                    .iter()
                    .filter(|(_, r)| r.is_none())
                    .map(|(c, _)| c.clone())
                    .collect();
                DeltaIndex {
                    live: ShardIndex::from_base(entries)?,
                    tombstones,
                }
            }
        };
        let index = Arc::new(index);
        lock(&self.deltas)
            .entry(path.clone())
            .or_default()
            .insert(shard.coord.clone(), index.clone());
        Ok(index)
    }

    fn corrupt(&self, e: Error) -> Error {
        Error::CorruptObject {
            key: format!("snapshots/{}", self.id),
            reason: e.to_string(),
        }
    }
}

/// A shard's decoded inline delta: the chunks it adds or replaces, and those it deletes.
#[derive(Debug, Default)]
pub(crate) struct DeltaIndex {
    live: ShardIndex,
    /// Sorted coordinates of the base entries the delta deletes.
    tombstones: Vec<ChunkCoord>,
}

impl DeltaIndex {
    fn deletes(&self, coord: &[u64]) -> bool {
        self.tombstones
            .binary_search_by(|c| c.as_slice().cmp(coord))
            .is_ok()
    }
}

/// True when the shard has a base whose bounding box excludes `coord`, so that only the
/// shard's delta can hold the chunk.
pub(crate) fn outside_base_box(shard: &ShardRef, coord: &[u64]) -> bool {
    match (&shard.base, &shard.base_box) {
        (Some(_), Some((lo, hi))) => {
            coord.len() != lo.len()
                || coord
                    .iter()
                    .zip(lo)
                    .zip(hi)
                    .any(|((c, l), h)| c < l || c > h)
        }
        _ => false,
    }
}

/// Locks a mutex, recovering the data if another thread panicked while holding it (the data
/// guarded here are caches and change sets that stay consistent between statements).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_coordinates() {
        assert_eq!(shard_of(&[5, 17], &[4, 16]), vec![1, 1]);
        assert_eq!(shard_of(&[], &[]), Vec::<u64>::new());
    }
}
