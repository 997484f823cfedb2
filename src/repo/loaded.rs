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
    shards: Mutex<ShardCache>,
    deltas: Mutex<ShardCache>,
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
            shards: Mutex::default(),
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

    /// The merged index of one shard of array `path`.
    pub(crate) async fn shard_index(
        &self,
        repo: &Repository,
        path: &NodePath,
        shard: &ShardRef,
    ) -> Result<Arc<ShardIndex>> {
        if let Some(found) = cached(&self.shards, path, &shard.coord) {
            return Ok(found);
        }
        let base = match &shard.base {
            Some(id) => Some(repo.load_manifest(id).await?),
            None => None,
        };
        let index = match &shard.delta {
            None => base.unwrap_or_default(),
            Some(delta) => {
                let delta = delta.decode().map_err(|e| Error::CorruptObject {
                    key: format!("snapshots/{}", self.id),
                    reason: e.to_string(),
                })?;
                Arc::new(ShardIndex::overlay(base.as_deref(), &delta)?)
            }
        };
        cache(&self.shards, path, shard, index.clone());
        Ok(index)
    }

    /// The chunk reference stored for `coord` of array `path` in this snapshot.
    pub(crate) async fn chunk_ref(
        &self,
        repo: &Repository,
        path: &NodePath,
        coord: &[u64],
    ) -> Result<Option<ChunkRef>> {
        let Some(shard) = self.shard_ref(path, coord) else {
            return Ok(None);
        };
        if outside_base_box(shard, coord) {
            // Only the delta can hold this chunk: no need to read the base.
            return self.delta_index(path, shard).map(|d| d.get(coord));
        }
        let index = self.shard_index(repo, path, shard).await?;
        Ok(index.get(coord))
    }

    /// The decoded inline delta of one shard (its tombstones dropped).
    fn delta_index(&self, path: &NodePath, shard: &ShardRef) -> Result<Arc<ShardIndex>> {
        if let Some(found) = cached(&self.deltas, path, &shard.coord) {
            return Ok(found);
        }
        let index = match &shard.delta {
            None => ShardIndex::default(),
            Some(delta) => {
                ShardIndex::from_columns(delta.clone()).map_err(|e| Error::CorruptObject {
                    key: format!("snapshots/{}", self.id),
                    reason: e.to_string(),
                })?
            }
        };
        let index = Arc::new(index);
        cache(&self.deltas, path, shard, index.clone());
        Ok(index)
    }
}

/// Shard indexes by array and shard coordinates (nested, so that a lookup allocates no key).
type ShardCache = HashMap<NodePath, HashMap<ChunkCoord, Arc<ShardIndex>>>;

fn cached(cache: &Mutex<ShardCache>, path: &NodePath, shard: &[u64]) -> Option<Arc<ShardIndex>> {
    lock(cache).get(path)?.get(shard).cloned()
}

fn cache(cache: &Mutex<ShardCache>, path: &NodePath, shard: &ShardRef, index: Arc<ShardIndex>) {
    lock(cache)
        .entry(path.clone())
        .or_default()
        .insert(shard.coord.clone(), index);
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
