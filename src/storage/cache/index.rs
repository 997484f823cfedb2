//! The cache index: a redb database recording, for each cached entry, its size, the blake3
//! digest of its bytes, its last access and hit count, plus an access-ordered table for
//! least-recently-used eviction and the persisted totals.
//!
//! Every write transaction also adds the counters accumulated in memory since the previous
//! one, so persisted totals trail the in-process ones by at most one transaction. Commits are
//! not synced ([`Durability::None`]) except every [`SYNC_EVERY`] commits and on
//! [`Index::flush`]: a crash loses at most recent bookkeeping, which is harmless because the
//! cache is never trusted (files are verified on every hit, orphans are swept at open).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};

use super::CacheCounters;

/// Entry name → (size, blake3 digest of the bytes, last access in µs since the epoch, hits).
const ENTRIES: TableDefinition<&str, (u64, [u8; 32], u64, u64)> = TableDefinition::new("entries");
/// (last access, entry name) → nothing: entries in least-recently-used order.
const BY_ACCESS: TableDefinition<(u64, &str), ()> = TableDefinition::new("by_access");
/// Named totals and settings.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The index schema this build writes; an index with another one is rebuilt.
const SCHEMA: u64 = 1;
/// Every this many commits, one is synced to disk.
const SYNC_EVERY: u64 = 64;

const SCHEMA_KEY: &str = "schema";
const BUDGET_KEY: &str = "budget";
const BYTES_KEY: &str = "bytes";
const ENTRIES_KEY: &str = "entries";
const COUNTER_KEYS: [&str; 5] = ["hits", "misses", "inserts", "evictions", "corrupt_entries"];

pub(crate) type DbResult<T> = std::result::Result<T, redb::Error>;

/// One index record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Size of the bytes.
    pub(crate) size: u64,
    /// blake3 digest of the bytes.
    pub(crate) digest: [u8; 32],
    /// Last access, µs since the Unix epoch (strictly increasing within a process).
    pub(crate) last_access_us: u64,
    /// Hits served from this entry.
    pub(crate) hits: u64,
}

/// What the index holds overall.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) counters: CacheCounters,
    pub(crate) entries: u64,
    pub(crate) bytes: u64,
    pub(crate) budget: Option<u64>,
}

/// The redb index of one cache directory.
pub(crate) struct Index {
    db: Database,
    /// Counters not yet added to the persisted totals.
    pending: Mutex<CacheCounters>,
    commits: AtomicU64,
    clock: AtomicU64,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").finish_non_exhaustive()
    }
}

fn get_u64(table: &impl ReadableTable<&'static str, u64>, key: &str) -> DbResult<u64> {
    Ok(table.get(key)?.map(|v| v.value()).unwrap_or(0))
}

fn add_u64(table: &mut redb::Table<'_, &'static str, u64>, key: &str, delta: i128) -> DbResult<()> {
    let old = get_u64(table, key)? as i128;
    let new = (old + delta).clamp(0, u64::MAX as i128) as u64;
    table.insert(key, new)?;
    Ok(())
}

impl Index {
    /// Opens (creating if needed) the index at `path` and checks it end to end: schema,
    /// every record readable, totals consistent. Any failure is returned as is; the caller
    /// decides whether to rebuild.
    pub(crate) fn open(path: &Path) -> std::result::Result<Index, redb::Error> {
        let db = Database::create(path)?;
        let index = Index {
            db,
            pending: Mutex::new(CacheCounters::default()),
            commits: AtomicU64::new(0),
            clock: AtomicU64::new(0),
        };
        index.check()?;
        Ok(index)
    }

    /// Creates missing tables, then reads every record: a damaged page fails here rather
    /// than on some later hit. Fixes the byte and entry totals if they disagree with the
    /// records (they cannot, short of damage).
    fn check(&self) -> DbResult<()> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let entries = txn.open_table(ENTRIES)?;
            let by_access = txn.open_table(BY_ACCESS)?;
            let mut meta = txn.open_table(META)?;
            let schema = meta.get(SCHEMA_KEY)?.map(|v| v.value());
            match schema {
                None if entries.is_empty()? => {
                    meta.insert(SCHEMA_KEY, SCHEMA)?;
                }
                Some(SCHEMA) => {}
                other => {
                    return Err(redb::Error::Corrupted(format!(
                        "cache index schema {other:?}, expected {SCHEMA}"
                    )))
                }
            }
            let (mut count, mut bytes, mut newest) = (0u64, 0u64, 0u64);
            for row in entries.iter()? {
                let (name, value) = row?;
                let (size, _, last, _) = value.value();
                if by_access.get((last, name.value()))?.is_none() {
                    return Err(redb::Error::Corrupted(format!(
                        "cache entry {} is missing from the access order",
                        name.value()
                    )));
                }
                count += 1;
                bytes = bytes.saturating_add(size);
                newest = newest.max(last);
            }
            if by_access.len()? != count {
                return Err(redb::Error::Corrupted(
                    "the cache access order does not match its entries".into(),
                ));
            }
            meta.insert(ENTRIES_KEY, count)?;
            meta.insert(BYTES_KEY, bytes)?;
            self.clock.fetch_max(newest, Ordering::Relaxed);
        }
        txn.commit()?;
        Ok(())
    }

    /// A strictly increasing access time, µs since the Unix epoch.
    fn tick(&self) -> u64 {
        let now = crate::format::now_us().max(0) as u64;
        let previous = self
            .clock
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(now.max(last + 1))
            })
            .unwrap_or(now);
        now.max(previous + 1)
    }

    /// Adds in-process counters to be persisted with the next commit.
    pub(crate) fn count(&self, update: impl FnOnce(&mut CacheCounters)) {
        update(&mut self.pending.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Runs `body` in a write transaction that also persists the pending counters.
    fn write<T>(
        &self,
        force_sync: bool,
        body: impl FnOnce(&redb::WriteTransaction) -> DbResult<T>,
    ) -> DbResult<T> {
        let mut txn = self.db.begin_write()?;
        let commits = self.commits.fetch_add(1, Ordering::Relaxed) + 1;
        let sync = force_sync || commits % SYNC_EVERY == 0;
        txn.set_durability(if sync {
            Durability::Immediate
        } else {
            Durability::None
        })?;
        let out = body(&txn)?;
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        {
            let mut meta = txn.open_table(META)?;
            for (key, value) in COUNTER_KEYS.iter().zip(pending.as_array()) {
                if value > 0 {
                    add_u64(&mut meta, key, value as i128)?;
                }
            }
        }
        match txn.commit() {
            Ok(()) => Ok(out),
            Err(e) => {
                // Keep the counters for the next commit.
                self.count(|c| c.add(&pending));
                Err(e.into())
            }
        }
    }

    /// Persists pending counters and syncs everything to disk.
    pub(crate) fn flush(&self) -> DbResult<()> {
        self.write(true, |_| Ok(()))
    }

    /// The record of `name`, if any.
    pub(crate) fn lookup(&self, name: &str) -> DbResult<Option<Entry>> {
        let txn = self.db.begin_read()?;
        let entries = txn.open_table(ENTRIES)?;
        Ok(entries.get(name)?.map(|v| {
            let (size, digest, last_access_us, hits) = v.value();
            Entry {
                size,
                digest,
                last_access_us,
                hits,
            }
        }))
    }

    /// Records a hit on `name` (if it still holds `digest`): moves it to the most recently
    /// used end and counts it.
    pub(crate) fn record_hit(&self, name: &str, digest: &[u8; 32]) -> DbResult<()> {
        let now = self.tick();
        self.count(|c| c.hits += 1);
        self.write(false, |txn| {
            let mut entries = txn.open_table(ENTRIES)?;
            let mut by_access = txn.open_table(BY_ACCESS)?;
            let found = entries.get(name)?.map(|v| v.value());
            if let Some((size, held, last, hits)) = found {
                if &held == digest {
                    by_access.remove((last, name))?;
                    by_access.insert((now, name), ())?;
                    entries.insert(name, (size, held, now, hits + 1))?;
                }
            }
            Ok(())
        })
    }

    /// Inserts (or replaces) `name`, then evicts least recently used entries until the total
    /// is within `budget`. Returns the names evicted (their files are the caller's to remove).
    pub(crate) fn insert(
        &self,
        name: &str,
        size: u64,
        digest: [u8; 32],
        budget: u64,
    ) -> DbResult<Vec<String>> {
        let now = self.tick();
        self.count(|c| c.inserts += 1);
        self.write(false, |txn| {
            let mut entries = txn.open_table(ENTRIES)?;
            let mut by_access = txn.open_table(BY_ACCESS)?;
            let mut meta = txn.open_table(META)?;
            let old = entries.get(name)?.map(|v| v.value());
            if let Some((old_size, _, last, _)) = old {
                by_access.remove((last, name))?;
                add_u64(&mut meta, BYTES_KEY, -(old_size as i128))?;
                add_u64(&mut meta, ENTRIES_KEY, -1)?;
            }
            entries.insert(name, (size, digest, now, 0))?;
            by_access.insert((now, name), ())?;
            add_u64(&mut meta, BYTES_KEY, size as i128)?;
            add_u64(&mut meta, ENTRIES_KEY, 1)?;
            evict_within(&mut entries, &mut by_access, &mut meta, budget)
        })
        .inspect(|victims| {
            let evicted = victims.len() as u64;
            self.count(|c| c.evictions += evicted);
        })
    }

    /// Evicts least recently used entries until the total is within `budget`, and records
    /// `budget` as the cache's budget.
    pub(crate) fn set_budget(&self, budget: u64) -> DbResult<Vec<String>> {
        let victims = self.write(true, |txn| {
            let mut entries = txn.open_table(ENTRIES)?;
            let mut by_access = txn.open_table(BY_ACCESS)?;
            let mut meta = txn.open_table(META)?;
            meta.insert(BUDGET_KEY, budget)?;
            evict_within(&mut entries, &mut by_access, &mut meta, budget)
        })?;
        let evicted = victims.len() as u64;
        self.count(|c| c.evictions += evicted);
        Ok(victims)
    }

    /// Drops `name` if it still holds `digest` (its file was found damaged or missing).
    /// Returns whether it was dropped.
    pub(crate) fn drop_damaged(&self, name: &str, digest: &[u8; 32]) -> DbResult<bool> {
        let dropped = self.write(false, |txn| {
            let mut entries = txn.open_table(ENTRIES)?;
            let mut by_access = txn.open_table(BY_ACCESS)?;
            let mut meta = txn.open_table(META)?;
            let found = entries.get(name)?.map(|v| v.value());
            match found {
                Some((size, held, last, _)) if &held == digest => {
                    entries.remove(name)?;
                    by_access.remove((last, name))?;
                    add_u64(&mut meta, BYTES_KEY, -(size as i128))?;
                    add_u64(&mut meta, ENTRIES_KEY, -1)?;
                    Ok(true)
                }
                _ => Ok(false),
            }
        })?;
        if dropped {
            self.count(|c| c.corrupt_entries += 1);
        }
        Ok(dropped)
    }

    /// Removes every entry whose name starts with `prefix` (all of them for `""`); returns
    /// their names. With `reset_counters`, the persisted totals restart from zero too.
    pub(crate) fn remove_prefix(
        &self,
        prefix: &str,
        reset_counters: bool,
    ) -> DbResult<Vec<String>> {
        if reset_counters {
            *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = CacheCounters::default();
        }
        self.write(true, |txn| {
            let mut entries = txn.open_table(ENTRIES)?;
            let mut by_access = txn.open_table(BY_ACCESS)?;
            let mut meta = txn.open_table(META)?;
            let mut removed = Vec::new();
            for row in entries.range(prefix..)? {
                let (name, value) = row?;
                let name = name.value().to_string();
                if !name.starts_with(prefix) {
                    break;
                }
                removed.push((name, value.value()));
            }
            for (name, (size, _, last, _)) in &removed {
                entries.remove(name.as_str())?;
                by_access.remove((*last, name.as_str()))?;
                add_u64(&mut meta, BYTES_KEY, -(*size as i128))?;
                add_u64(&mut meta, ENTRIES_KEY, -1)?;
            }
            if reset_counters {
                for key in COUNTER_KEYS {
                    meta.insert(key, 0)?;
                }
            }
            Ok(removed.into_iter().map(|(name, _)| name).collect())
        })
    }

    /// Every entry name.
    pub(crate) fn names(&self) -> DbResult<Vec<String>> {
        let txn = self.db.begin_read()?;
        let entries = txn.open_table(ENTRIES)?;
        let mut names = Vec::new();
        for row in entries.iter()? {
            names.push(row?.0.value().to_string());
        }
        Ok(names)
    }

    /// The persisted totals (including counters not yet committed).
    pub(crate) fn totals(&self) -> DbResult<Totals> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let mut counters = [0u64; 5];
        for (slot, key) in counters.iter_mut().zip(COUNTER_KEYS) {
            *slot = get_u64(&meta, key)?;
        }
        let mut counters = CacheCounters::from_array(counters);
        counters.add(&self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        Ok(Totals {
            counters,
            entries: get_u64(&meta, ENTRIES_KEY)?,
            bytes: get_u64(&meta, BYTES_KEY)?,
            budget: meta.get(BUDGET_KEY)?.map(|v| v.value()),
        })
    }
}

/// Pops least recently used entries until the byte total is within `budget`.
fn evict_within(
    entries: &mut redb::Table<'_, &'static str, (u64, [u8; 32], u64, u64)>,
    by_access: &mut redb::Table<'_, (u64, &'static str), ()>,
    meta: &mut redb::Table<'_, &'static str, u64>,
    budget: u64,
) -> DbResult<Vec<String>> {
    let mut victims = Vec::new();
    while get_u64(meta, BYTES_KEY)? > budget {
        let Some((oldest, _)) = by_access.pop_first()? else {
            break;
        };
        let name = oldest.value().1.to_string();
        drop(oldest);
        if let Some(value) = entries.remove(name.as_str())? {
            let (size, _, _, _) = value.value();
            drop(value);
            add_u64(meta, BYTES_KEY, -(size as i128))?;
            add_u64(meta, ENTRIES_KEY, -1)?;
        }
        victims.push(name);
    }
    Ok(victims)
}

/// Path of the index inside a cache directory.
pub(crate) fn index_path(dir: &Path) -> PathBuf {
    dir.join("index.redb")
}
