//! A bounded in-memory cache of decoded stored chunks, shared by rechunked views.
//!
//! Entries are keyed by snapshot id, array path and stored chunk coordinates, so one cache can
//! serve every view of every snapshot of a repository: a snapshot's chunks never change, and
//! views of different snapshots never see each other's entries. Absent stored chunks are
//! cached too (as a small marker), so repeated requests do not ask the store again.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use quick_cache::sync::Cache;
use quick_cache::Weighter;

use crate::error::Result;
use crate::format::path::NodePath;
use crate::id::SnapshotId;

/// Identifies one stored chunk of one array at one snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct CacheKey {
    snapshot: SnapshotId,
    array: NodePath,
    coords: Vec<u64>,
}

/// Bookkeeping bytes charged per entry on top of the decoded bytes.
const ENTRY_OVERHEAD: u64 = 96;

#[derive(Clone, Debug)]
struct ByteWeighter;

impl Weighter<CacheKey, Option<Bytes>> for ByteWeighter {
    fn weight(&self, key: &CacheKey, value: &Option<Bytes>) -> u64 {
        let data = value.as_ref().map_or(0, |b| b.len() as u64);
        ENTRY_OVERHEAD + key.array.as_str().len() as u64 + 8 * key.coords.len() as u64 + data
    }
}

/// Hit and miss counts and occupancy of a [`DecodedChunkCache`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodedChunkCacheStats {
    /// Lookups answered from the cache (including lookups that waited for a concurrent decode
    /// of the same chunk).
    pub hits: u64,
    /// Lookups that had to read (and, when present, decode) the stored chunk.
    pub misses: u64,
    /// Entries currently held.
    pub entries: u64,
    /// Bytes currently charged (decoded bytes plus a small per-entry overhead).
    pub weight_bytes: u64,
    /// The byte budget.
    pub capacity_bytes: u64,
}

struct Inner {
    cache: Cache<CacheKey, Option<Bytes>, ByteWeighter>,
    capacity_bytes: u64,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// A bounded cache of decoded stored chunks, weighted by bytes.
///
/// Cheap to clone; clones share the entries and the counters. Give the same cache to several
/// [`super::RechunkedStore`]s (of one or several snapshots) to share decoded chunks between
/// them. When full, the least recently useful entries are evicted; a chunk larger than the
/// budget is never kept. Two concurrent requests for the same missing chunk decode it once.
#[derive(Clone)]
pub struct DecodedChunkCache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DecodedChunkCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedChunkCache")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Default for DecodedChunkCache {
    /// A cache of [`DecodedChunkCache::DEFAULT_CAPACITY_BYTES`].
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY_BYTES)
    }
}

impl DecodedChunkCache {
    /// The default byte budget: 256 MiB.
    pub const DEFAULT_CAPACITY_BYTES: u64 = 256 << 20;

    /// A cache holding up to about `capacity_bytes` of decoded chunks (0 keeps nothing).
    pub fn new(capacity_bytes: u64) -> Self {
        // quick_cache sizes its tables from an item estimate; assume 64 KiB chunks.
        let estimated_items = (capacity_bytes / (64 << 10)).clamp(16, 1 << 20) as usize;
        DecodedChunkCache {
            inner: Arc::new(Inner {
                cache: Cache::with_weighter(estimated_items, capacity_bytes.max(1), ByteWeighter),
                capacity_bytes,
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
            }),
        }
    }

    /// Current counters and occupancy.
    pub fn stats(&self) -> DecodedChunkCacheStats {
        DecodedChunkCacheStats {
            hits: self.inner.hits.load(Ordering::Relaxed),
            misses: self.inner.misses.load(Ordering::Relaxed),
            entries: self.inner.cache.len() as u64,
            weight_bytes: self.inner.cache.weight(),
            capacity_bytes: self.inner.capacity_bytes,
        }
    }

    /// Drops every entry (the counters are kept).
    pub fn clear(&self) {
        self.inner.cache.clear();
    }

    /// The decoded bytes of stored chunk `coords` of `array` at `snapshot` (`None` when the
    /// chunk is absent), running `load` only when the cache does not hold it. A failed load
    /// is not cached.
    pub(crate) async fn get_or_load<F>(
        &self,
        snapshot: SnapshotId,
        array: &NodePath,
        coords: &[u64],
        load: F,
    ) -> Result<Option<Bytes>>
    where
        F: Future<Output = Result<Option<Bytes>>>,
    {
        let key = CacheKey {
            snapshot,
            array: array.clone(),
            coords: coords.to_vec(),
        };
        match self.inner.cache.get_value_or_guard_async(&key).await {
            Ok(value) => {
                self.inner.hits.fetch_add(1, Ordering::Relaxed);
                Ok(value)
            }
            Err(guard) => {
                self.inner.misses.fetch_add(1, Ordering::Relaxed);
                let value = load.await?;
                // An entry over the budget is refused; the value is still returned.
                let _ = guard.insert(value.clone());
                Ok(value)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_hits_and_misses_and_respects_the_budget() {
        let cache = DecodedChunkCache::new(10_000);
        let a = NodePath::new("a").unwrap();
        let snap = SnapshotId::from_bytes([1; 32]);
        let load = || async { Ok(Some(Bytes::from(vec![7u8; 1000]))) };
        for _ in 0..3 {
            let v = cache.get_or_load(snap, &a, &[0], load()).await.unwrap();
            assert_eq!(v.unwrap().len(), 1000);
        }
        let absent = cache.get_or_load(snap, &a, &[1], async { Ok(None) }).await;
        assert_eq!(absent.unwrap(), None);
        let s = cache.stats();
        assert_eq!((s.hits, s.misses, s.entries), (2, 2, 2));
        // Another snapshot does not share entries.
        let other = SnapshotId::from_bytes([2; 32]);
        cache.get_or_load(other, &a, &[0], load()).await.unwrap();
        assert_eq!(cache.stats().misses, 3);
        // Far more than the budget: the weight stays bounded.
        for i in 0..100 {
            cache
                .get_or_load(snap, &a, &[i + 10], load())
                .await
                .unwrap();
        }
        assert!(cache.stats().weight_bytes <= 10_000, "{:?}", cache.stats());
        cache.clear();
        assert_eq!(cache.stats().entries, 0);
    }
}
