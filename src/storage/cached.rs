//! [`CachedStorage`]: a decorator that keeps immutable objects from a slow storage in a
//! persistent local cache directory ([`LocalCache`]).
//!
//! What it caches and how is documented on the type.

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::cache::{self, CacheStats, LocalCache, SharedCache};
use super::{layout, DirListing, DynStorage, ListedObject, PutOutcome, Storage};
use crate::error::Result;

/// A [`Storage`] decorator keeping immutable objects from a slow storage in a persistent
/// [`LocalCache`] directory, within a byte budget.
///
/// What is cached, and how:
///
/// - Only keys whose object can never change (snapshots,
///   manifests, transaction logs, chunk objects). Refs, hints, tombstones, `floe.json` and
///   listings always go to the wrapped storage, so a branch moved by another writer is seen at
///   once.
/// - A whole-object read ([`Storage::get`]) caches the whole object under `<key>@all`.
/// - A ranged read ([`Storage::get_range`], [`Storage::get_ranges`]) caches exactly the bytes
///   asked for, under `<key>@<start>-<end>`: a chunk inside a large pack never pulls the pack.
///   A ranged read is also answered from a cached whole object. Overlapping ranges are
///   separate entries. A read that comes back shorter than asked (the object is shorter than
///   the caller thinks) is passed on and not cached.
/// - Writes are not cached (no write-through): a writer's own reads are served by the
///   repository's in-memory caches, and a bulk load would otherwise evict what readers use.
/// - Deleting a key through the decorator drops its entries. Deletions made elsewhere (by
///   another process) are not seen: a cached immutable object stays readable until evicted.
///
/// The cache never fails a read: if the cache directory misbehaves (disk full, I/O error), the
/// problem is logged with `tracing::warn!` and the read goes to the wrapped storage.
///
/// To read a repository through a cache, wrap its storage before opening it:
/// `Repository::open(with_cache(storage, dir, budget)?, settings)`.
pub struct CachedStorage {
    inner: DynStorage,
    cache: Arc<LocalCache>,
}

impl fmt::Debug for CachedStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedStorage")
            .field("inner", &self.inner)
            .field("cache", &self.cache.dir())
            .finish()
    }
}

/// Wraps `storage` in a [`CachedStorage`] using the cache directory `dir` with a byte
/// budget: the one call a server or tool needs. Fails as [`CachedStorage::open`] does.
pub fn with_cache(storage: DynStorage, dir: &Path, budget_bytes: u64) -> Result<DynStorage> {
    Ok(Arc::new(CachedStorage::open(storage, dir, budget_bytes)?))
}

impl CachedStorage {
    /// Wraps `inner` with the cache in `dir` (created if missing), kept within
    /// `budget_bytes` of entry files. Fails as [`LocalCache::open`] does, notably when
    /// another process has the directory open.
    pub fn open(inner: DynStorage, dir: &Path, budget_bytes: u64) -> Result<Self> {
        let cache = LocalCache::open(dir, Some(budget_bytes))?;
        Ok(Self::new(inner, Arc::new(cache)))
    }

    /// Wraps `inner` with an already open cache.
    pub fn new(inner: DynStorage, cache: Arc<LocalCache>) -> Self {
        CachedStorage { inner, cache }
    }

    /// The wrapped storage.
    pub fn inner(&self) -> &DynStorage {
        &self.inner
    }

    /// The cache.
    pub fn cache(&self) -> &Arc<LocalCache> {
        &self.cache
    }

    /// The cache's statistics.
    pub fn stats(&self) -> Result<CacheStats> {
        self.cache.stats()
    }

    /// Empties the cache.
    pub fn clear(&self) -> Result<()> {
        self.cache.clear()
    }
}

fn whole_name(key: &str) -> String {
    format!("{key}@all")
}

fn range_name(key: &str, range: &Range<u64>) -> String {
    format!("{key}@{}-{}", range.start, range.end)
}

/// Cuts `range` out of a cached whole object, if it lies inside.
fn slice_whole(whole: &Bytes, range: &Range<u64>) -> Option<Bytes> {
    (range.start <= range.end && range.end <= whole.len() as u64)
        .then(|| whole.slice(range.start as usize..range.end as usize))
}

#[async_trait]
impl Storage for CachedStorage {
    async fn get(&self, key: &str) -> Result<Bytes> {
        if !layout::is_immutable_key(key) {
            return self.inner.get(key).await;
        }
        if let Some((_, bytes)) = self.cache.lookup_any(vec![whole_name(key)]).await {
            return Ok(bytes);
        }
        let bytes = self.inner.get(key).await?;
        self.cache
            .insert_all(vec![(whole_name(key), bytes.clone())])
            .await;
        Ok(bytes)
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        if !layout::is_immutable_key(key) || range.start >= range.end {
            return self.inner.get_range(key, range).await;
        }
        let names = vec![range_name(key, &range), whole_name(key)];
        match self.cache.lookup_any(names).await {
            Some((0, bytes)) => return Ok(bytes),
            Some((_, whole)) => {
                if let Some(part) = slice_whole(&whole, &range) {
                    return Ok(part);
                }
            }
            None => {}
        }
        let bytes = self.inner.get_range(key, range.clone()).await?;
        if bytes.len() as u64 == range.end - range.start {
            self.cache
                .insert_all(vec![(range_name(key, &range), bytes.clone())])
                .await;
        }
        Ok(bytes)
    }

    async fn get_ranges(&self, key: &str, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        if !layout::is_immutable_key(key) {
            return self.inner.get_ranges(key, ranges).await;
        }
        let names: Vec<Option<String>> = ranges
            .iter()
            .map(|range| (range.start < range.end).then(|| range_name(key, range)))
            .collect();
        let count = names.len();
        let mut found = self
            .cache
            .run("lookup", move |cache| {
                let mut found = Vec::with_capacity(names.len());
                for name in &names {
                    let Some(name) = name else {
                        found.push(Some(Bytes::new()));
                        continue;
                    };
                    let hit = cache.lookup(name).map_err(|e| cache::db_error(cache, e))?;
                    if hit.is_none() {
                        cache.count_miss();
                    }
                    found.push(hit.map(Bytes::from));
                }
                Ok(found)
            })
            .await
            .unwrap_or_default();
        found.resize(count, None);
        let missing: Vec<Range<u64>> = ranges
            .iter()
            .zip(&found)
            .filter(|(_, hit)| hit.is_none())
            .map(|(range, _)| range.clone())
            .collect();
        if missing.is_empty() {
            return Ok(found.into_iter().flatten().collect());
        }
        let fetched = self.inner.get_ranges(key, &missing).await?;
        if fetched.len() != missing.len() {
            // Not what the contract promises: let the caller see the storage's answer as is.
            return Ok(fetched);
        }
        let to_cache: Vec<(String, Bytes)> = missing
            .iter()
            .zip(&fetched)
            .filter(|(range, bytes)| bytes.len() as u64 == range.end - range.start)
            .map(|(range, bytes)| (range_name(key, range), bytes.clone()))
            .collect();
        self.cache.insert_all(to_cache).await;
        let mut fetched = fetched.into_iter();
        Ok(found
            .into_iter()
            .map(|hit| hit.or_else(|| fetched.next()).unwrap_or_default())
            .collect())
    }

    async fn head(&self, key: &str) -> Result<Option<u64>> {
        self.inner.head(key).await
    }
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.inner.put(key, bytes).await
    }
    async fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<PutOutcome> {
        self.inner.put_if_absent(key, bytes).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>> {
        self.inner.list(prefix).await
    }
    async fn list_dir(&self, prefix: &str) -> Result<DirListing> {
        self.inner.list_dir(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(key).await?;
        if layout::is_immutable_key(key) {
            let prefix = format!("{key}@");
            self.cache
                .run("forget", move |cache| cache.forget(&prefix))
                .await;
        }
        Ok(())
    }
    fn location(&self) -> &str {
        self.inner.location()
    }
}
