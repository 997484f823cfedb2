//! Decoded snapshots with lazily built lookup structures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::format::manifest::{ChunkCoord, ChunkRef, ManifestEntry};
use crate::format::path::NodePath;
use crate::format::snapshot::{NodeKind, ShardRef, Snapshot};
use crate::id::SnapshotId;
use crate::zarr::metadata::NodeMetadata;

use super::repository::Repository;

/// The live chunk references of one shard, sorted by coordinates, for binary search.
#[derive(Debug, Default)]
pub(crate) struct ShardIndex {
    entries: Vec<(ChunkCoord, ChunkRef)>,
}

impl ShardIndex {
    /// Builds an index from base entries (tombstones, which bases never hold, are skipped).
    pub(crate) fn from_base(entries: Vec<ManifestEntry>) -> Self {
        ShardIndex {
            entries: entries
                .into_iter()
                .filter_map(|(c, r)| r.map(|r| (c, r)))
                .collect(),
        }
    }

    /// The entries of `base` with `delta` applied (delta entries replace or delete).
    pub(crate) fn overlay(base: Option<&ShardIndex>, delta: &[ManifestEntry]) -> Self {
        let base = base.map(|b| b.entries.as_slice()).unwrap_or(&[]);
        let mut out = Vec::with_capacity(base.len() + delta.len());
        let (mut i, mut j) = (0, 0);
        while i < base.len() || j < delta.len() {
            let take_delta = match (base.get(i), delta.get(j)) {
                (Some((bc, _)), Some((dc, _))) => {
                    if bc == dc {
                        i += 1;
                        true
                    } else {
                        dc < bc
                    }
                }
                (None, Some(_)) => true,
                _ => false,
            };
            if take_delta {
                let (c, r) = &delta[j];
                if let Some(r) = r {
                    out.push((c.clone(), r.clone()));
                }
                j += 1;
            } else {
                out.push(base[i].clone());
                i += 1;
            }
        }
        ShardIndex { entries: out }
    }

    pub(crate) fn get(&self, coord: &[u64]) -> Option<&ChunkRef> {
        self.entries
            .binary_search_by(|(c, _)| c.as_slice().cmp(coord))
            .ok()
            .map(|i| &self.entries[i].1)
    }

    pub(crate) fn entries(&self) -> &[(ChunkCoord, ChunkRef)] {
        &self.entries
    }

    pub(crate) fn into_entries(self) -> Vec<(ChunkCoord, ChunkRef)> {
        self.entries
    }

    pub(crate) fn approx_bytes(&self) -> u64 {
        self.entries
            .iter()
            .map(|(c, r)| {
                let inline = match r {
                    ChunkRef::Inline(b) => b.len(),
                    ChunkRef::Native { .. } => 0,
                };
                (c.len() * 8 + 64 + inline) as u64
            })
            .sum()
    }
}

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
    shards: Mutex<HashMap<(NodePath, ChunkCoord), Arc<ShardIndex>>>,
    deltas: Mutex<HashMap<(NodePath, ChunkCoord), Arc<ShardIndex>>>,
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
        let key = (path.clone(), shard.coord.clone());
        if let Some(found) = lock(&self.shards).get(&key) {
            return Ok(found.clone());
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
                Arc::new(ShardIndex::overlay(base.as_deref(), &delta))
            }
        };
        lock(&self.shards).insert(key, index.clone());
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
            return self.delta_index(path, shard).map(|d| d.get(coord).cloned());
        }
        let index = self.shard_index(repo, path, shard).await?;
        Ok(index.get(coord).cloned())
    }

    /// The decoded inline delta of one shard (its tombstones dropped).
    fn delta_index(&self, path: &NodePath, shard: &ShardRef) -> Result<Arc<ShardIndex>> {
        let key = (path.clone(), shard.coord.clone());
        if let Some(found) = lock(&self.deltas).get(&key) {
            return Ok(found.clone());
        }
        let entries = match &shard.delta {
            None => Vec::new(),
            Some(delta) => delta.decode().map_err(|e| Error::CorruptObject {
                key: format!("snapshots/{}", self.id),
                reason: e.to_string(),
            })?,
        };
        let index = Arc::new(ShardIndex::from_base(entries));
        lock(&self.deltas).insert(key, index.clone());
        Ok(index)
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
    use bytes::Bytes;

    fn inline(b: &'static [u8]) -> Option<ChunkRef> {
        Some(ChunkRef::Inline(Bytes::from_static(b)))
    }

    #[test]
    fn overlay_replaces_deletes_and_inserts() {
        let base = ShardIndex::from_base(vec![
            (vec![0], inline(b"a")),
            (vec![2], inline(b"b")),
            (vec![4], inline(b"c")),
        ]);
        let delta = vec![
            (vec![1], inline(b"x")),
            (vec![2], None),
            (vec![4], inline(b"y")),
            (vec![5], inline(b"z")),
        ];
        let merged = ShardIndex::overlay(Some(&base), &delta);
        let keys: Vec<u64> = merged.entries().iter().map(|(c, _)| c[0]).collect();
        assert_eq!(keys, vec![0, 1, 4, 5]);
        assert_eq!(merged.get(&[4]), inline(b"y").as_ref());
        assert_eq!(merged.get(&[2]), None);
        assert_eq!(ShardIndex::overlay(None, &delta).entries().len(), 3);
    }

    #[test]
    fn shard_coordinates() {
        assert_eq!(shard_of(&[5, 17], &[4, 16]), vec![1, 1]);
        assert_eq!(shard_of(&[], &[]), Vec::<u64>::new());
    }
}
