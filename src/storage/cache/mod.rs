//! [`LocalCache`]: a persistent cache directory of immutable object bytes, with a byte budget,
//! least-recently-used eviction and statistics. [`super::CachedStorage`] puts it in front of a
//! storage.
//!
//! The directory layout and trust rules are documented on [`LocalCache`].

mod async_ops;
mod files;
mod index;

pub(crate) use async_ops::{db_error, SharedCache};

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use index::{DbResult, Index};

use crate::error::{Error, Result};

/// Budget used when a cache is opened without one and none was recorded: 1 GiB.
pub const DEFAULT_CACHE_BUDGET: u64 = 1 << 30;

/// Counts of cache events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheCounters {
    /// Reads answered from the cache.
    pub hits: u64,
    /// Reads of cacheable objects that had to go to the wrapped storage.
    pub misses: u64,
    /// Entries written into the cache.
    pub inserts: u64,
    /// Entries evicted to stay within the byte budget.
    pub evictions: u64,
    /// Entries whose file was missing, truncated or altered: dropped and refetched.
    pub corrupt_entries: u64,
}

impl CacheCounters {
    fn as_array(&self) -> [u64; 5] {
        [
            self.hits,
            self.misses,
            self.inserts,
            self.evictions,
            self.corrupt_entries,
        ]
    }

    fn from_array(values: [u64; 5]) -> Self {
        let [hits, misses, inserts, evictions, corrupt_entries] = values;
        CacheCounters {
            hits,
            misses,
            inserts,
            evictions,
            corrupt_entries,
        }
    }

    fn add(&mut self, other: &CacheCounters) {
        let mut mine = self.as_array();
        for (slot, value) in mine.iter_mut().zip(other.as_array()) {
            *slot = slot.saturating_add(value);
        }
        *self = Self::from_array(mine);
    }
}

/// A snapshot of a cache's statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    /// Events since this handle was opened.
    pub process: CacheCounters,
    /// Events over the cache directory's life (since it was created or last cleared),
    /// including this handle's.
    pub persisted: CacheCounters,
    /// Entries held.
    pub entries: u64,
    /// Bytes held in entry files (the index file comes on top).
    pub bytes: u64,
    /// The byte budget `bytes` is kept within.
    pub budget_bytes: u64,
}

/// A persistent cache directory of immutable bytes.
///
/// ```text
/// <dir>/index.redb                    the index (redb): entry → size, blake3, last access, hits
/// <dir>/objects/<2 hex>/<62 hex>      one file per entry, named by a digest of the entry name
/// <dir>/tmp/                          files being written (renamed into objects/ when complete)
/// ```
///
/// Nothing in the directory is trusted: every hit re-checks the file's size and blake3 digest
/// against the index, files the index does not know are deleted at open, and an index that
/// cannot be read is deleted and rebuilt empty. Deleting the directory loses nothing but
/// speed.
///
/// Only one handle may have a directory open at a time, across processes: redb locks the
/// index file, and a second [`LocalCache::open`] fails with an [`Error::Io`] of kind
/// `WouldBlock` naming the index (it does not fall back to running uncached: a server
/// silently running without its cache would be a surprise). Handles are shared with `Arc`.
#[derive(Debug)]
pub struct LocalCache {
    dir: PathBuf,
    index: Index,
    budget: u64,
    process: Mutex<CacheCounters>,
    /// Serialises changes (file writes, index updates, file removals) made by this handle.
    writer: Mutex<()>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl LocalCache {
    /// Opens the cache in `dir` (created if missing) with a byte budget, evicting at once if
    /// the directory holds more. `None` keeps the budget recorded by the last open with one
    /// (or [`DEFAULT_CACHE_BUDGET`]).
    ///
    /// An index that is unreadable, damaged or of another schema is logged, deleted and
    /// rebuilt empty; files it does not reference are deleted. Fails if the directory cannot
    /// be created or the index is held by another handle (see the type docs).
    pub fn open(dir: &Path, budget_bytes: Option<u64>) -> Result<LocalCache> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let index = open_or_rebuild(dir)?;
        let db_error = |e| index_error(dir, e);
        let recorded = index.totals().map_err(db_error)?.budget;
        let budget = budget_bytes.or(recorded).unwrap_or(DEFAULT_CACHE_BUDGET);
        let cache = LocalCache {
            dir: dir.to_path_buf(),
            index,
            budget,
            process: Mutex::new(CacheCounters::default()),
            writer: Mutex::new(()),
        };
        cache.sweep().map_err(db_error)?;
        if budget_bytes.is_some() || recorded.is_none() {
            let victims = cache.index.set_budget(budget).map_err(db_error)?;
            cache.remove_files(&victims);
            cache.count(|c| c.evictions += victims.len() as u64);
        }
        Ok(cache)
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The byte budget entry files are kept within.
    pub fn budget_bytes(&self) -> u64 {
        self.budget
    }

    /// Current statistics.
    pub fn stats(&self) -> Result<CacheStats> {
        let totals = self.index.totals().map_err(|e| index_error(&self.dir, e))?;
        Ok(CacheStats {
            process: *lock(&self.process),
            persisted: totals.counters,
            entries: totals.entries,
            bytes: totals.bytes,
            budget_bytes: self.budget,
        })
    }

    /// Removes every entry and resets the persisted counters (the in-process ones too).
    pub fn clear(&self) -> Result<()> {
        let _writer = lock(&self.writer);
        let removed = self
            .index
            .remove_prefix("", true)
            .map_err(|e| index_error(&self.dir, e))?;
        self.remove_files(&removed);
        *lock(&self.process) = CacheCounters::default();
        Ok(())
    }

    fn count(&self, update: impl Fn(&mut CacheCounters)) {
        update(&mut lock(&self.process));
    }

    /// The verified bytes of entry `name`, or `None` (absent, or damaged and now dropped).
    /// Counts a hit or a damaged entry, not a miss (see [`LocalCache::count_miss`]).
    pub(crate) fn lookup(&self, name: &str) -> DbResult<Option<Vec<u8>>> {
        let Some(entry) = self.index.lookup(name)? else {
            return Ok(None);
        };
        let file = files::entry_file_name(name);
        match files::read_verified(&self.dir, &file, entry.size, &entry.digest) {
            Some(bytes) => {
                self.count(|c| c.hits += 1);
                self.index.record_hit(name, &entry.digest)?;
                Ok(Some(bytes))
            }
            None => {
                let _writer = lock(&self.writer);
                if self.index.drop_damaged(name, &entry.digest)? {
                    tracing::warn!(
                        cache = %self.dir.display(),
                        entry = name,
                        "cache file missing, truncated or altered: dropped, refetching"
                    );
                    files::remove(&self.dir, &file);
                    self.count(|c| c.corrupt_entries += 1);
                }
                Ok(None)
            }
        }
    }

    /// Counts one read that the cache could not answer.
    pub(crate) fn count_miss(&self) {
        self.count(|c| c.misses += 1);
        self.index.count(|c| c.misses += 1);
    }

    /// Stores `bytes` as entry `name`, then evicts least recently used entries over budget.
    /// Entries larger than the whole budget are not stored.
    pub(crate) fn insert(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let size = bytes.len() as u64;
        if size > self.budget {
            return Ok(());
        }
        let digest = *blake3::hash(bytes).as_bytes();
        let file = files::entry_file_name(name);
        let _writer = lock(&self.writer);
        files::write_atomically(&self.dir, &file, bytes, false).map_err(|source| Error::Io {
            path: self.dir.join(&file),
            source,
        })?;
        let victims = self
            .index
            .insert(name, size, digest, self.budget)
            .map_err(|e| index_error(&self.dir, e))?;
        self.count(|c| {
            c.inserts += 1;
            c.evictions += victims.len() as u64;
        });
        self.remove_files(&victims);
        Ok(())
    }

    /// Drops every entry whose name starts with `prefix`.
    pub(crate) fn forget(&self, prefix: &str) -> Result<()> {
        let _writer = lock(&self.writer);
        let removed = self
            .index
            .remove_prefix(prefix, false)
            .map_err(|e| index_error(&self.dir, e))?;
        self.remove_files(&removed);
        Ok(())
    }

    fn remove_files(&self, names: &[String]) {
        for name in names {
            files::remove(&self.dir, &files::entry_file_name(name));
        }
    }

    /// Deletes files the index does not reference (left by a crash between writing a file
    /// and recording it, or by a rebuilt index) and leftovers of interrupted writes.
    fn sweep(&self) -> DbResult<()> {
        let _writer = lock(&self.writer);
        files::clear_tmp(&self.dir);
        let known: std::collections::HashSet<PathBuf> = self
            .index
            .names()?
            .iter()
            .map(|name| files::entry_file_name(name))
            .collect();
        let found = files::list_entry_files(&self.dir).map_err(redb::Error::Io)?;
        let mut orphans = 0usize;
        for file in found.iter().filter(|f| !known.contains(*f)) {
            files::remove(&self.dir, file);
            orphans += 1;
        }
        if orphans > 0 {
            tracing::warn!(cache = %self.dir.display(), orphans, "removed unreferenced cache files");
        }
        Ok(())
    }
}

impl Drop for LocalCache {
    fn drop(&mut self) {
        if let Err(e) = self.index.flush() {
            tracing::warn!(cache = %self.dir.display(), error = %e, "cannot save the cache index");
        }
    }
}

/// Opens the index of `dir`, deleting and recreating it when it is damaged.
fn open_or_rebuild(dir: &Path) -> Result<Index> {
    let path = index::index_path(dir);
    match Index::open(&path) {
        Ok(index) => Ok(index),
        Err(e) if !is_damage(&e) => Err(index_error(dir, e)),
        Err(e) => {
            tracing::warn!(
                index = %path.display(),
                error = %e,
                "the cache index is damaged: deleting it and starting an empty cache"
            );
            std::fs::remove_file(&path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            Index::open(&path).map_err(|e| index_error(dir, e))
        }
    }
}

/// Whether an error opening the index means the file is damaged (rather than locked or
/// unreachable).
fn is_damage(error: &redb::Error) -> bool {
    match error {
        redb::Error::DatabaseAlreadyOpen | redb::Error::LockPoisoned(_) => false,
        redb::Error::Io(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::PermissionDenied
                | std::io::ErrorKind::WouldBlock
                | std::io::ErrorKind::NotFound
                | std::io::ErrorKind::ReadOnlyFilesystem
                | std::io::ErrorKind::StorageFull
        ),
        _ => true,
    }
}

/// A floe error for an index failure.
fn index_error(dir: &Path, error: redb::Error) -> Error {
    let path = index::index_path(dir);
    let source = match error {
        redb::Error::DatabaseAlreadyOpen => std::io::Error::new(
            std::io::ErrorKind::WouldBlock,
            "the cache is in use by another process or handle (one user at a time)",
        ),
        redb::Error::Io(e) => e,
        other => std::io::Error::other(format!("cache index: {other}")),
    };
    Error::Io { path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_garbage_index_is_damage_and_is_rebuilt_but_a_locked_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = index::index_path(dir.path());
        let garbage: Vec<u8> = (0..20_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        std::fs::write(&path, &garbage).unwrap();
        let err = Index::open(&path).unwrap_err();
        assert!(is_damage(&err), "{err}");
        let cache = LocalCache::open(dir.path(), Some(1000)).unwrap();
        assert_eq!(cache.stats().unwrap().entries, 0);
        assert_ne!(std::fs::read(&path).unwrap(), garbage);

        let locked = Index::open(&path).unwrap_err();
        assert!(!is_damage(&locked), "{locked}");
        drop(cache);
        assert!(Index::open(&path).is_ok());
    }

    #[test]
    fn entries_over_budget_are_not_stored_and_hits_are_verified() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LocalCache::open(dir.path(), Some(10)).unwrap();
        cache.insert("big", &[1u8; 11]).unwrap();
        assert_eq!(cache.lookup("big").unwrap(), None);
        cache.insert("small", &[2u8; 10]).unwrap();
        assert_eq!(cache.lookup("small").unwrap(), Some(vec![2u8; 10]));
        let stats = cache.stats().unwrap();
        assert_eq!((stats.entries, stats.bytes, stats.process.hits), (1, 10, 1));
    }
}
