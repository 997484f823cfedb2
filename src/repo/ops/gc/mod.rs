//! Garbage collection (spec/algorithms.md §14): deletes objects no retained version reaches,
//! in two phases separated by a grace period measured on the store's clock, without a lock.
//!
//! A run condemns what became unreachable since the last run (and, with `full`, what a
//! listing finds unreferenced) and deletes what an earlier run condemned at least a grace
//! period ago and is still unreachable. Its record (`gc/<seq>`) is written before the first
//! delete; ref moves refuse condemned snapshots and commits of long sessions check their
//! uploads against it (`history/gc_guard.rs`).

mod full;
mod graph;
mod slots;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

pub use full::SparsePack;

use crate::error::{Error, Result};
use crate::format::lifecycle::{ExpiryRecord, GcEntry, GcObject, GcReason, GcRecord};
use crate::format::snapshot::micros_to_time;
use crate::id::SnapshotId;
use crate::repo::history::gc_guard::UPLOAD_AGE_NEEDING_CHECK;
use crate::repo::history::lifecycle_records::{Appended, GC_RUNS};
use crate::repo::read::repository::Repository;
use crate::storage::clock::store_now_us;
use crate::storage::layout;

/// Requests sent at once while sizing and deleting objects.
const IN_FLIGHT: usize = 32;

/// Attempts at a run when concurrent runs keep taking the record slot.
const RUN_ATTEMPTS: u32 = 4;

/// How [`Repository::gc`] runs.
#[derive(Clone, Debug, PartialEq)]
pub struct GcOptions {
    /// How long an object stays condemned before a later run may delete it, and how old an
    /// unreferenced object must be before a full run condemns it. Must exceed the longest
    /// commit (from its first upload to its branch record).
    pub grace: Duration,
    /// Also list storage, to find orphans no snapshot references (crashed commits, aborted
    /// uploads) and to report sparse packs.
    pub full: bool,
    /// Report without writing a record or deleting anything.
    pub dry_run: bool,
    /// A full run reports chunk objects whose live bytes are below this fraction of their
    /// size.
    pub sparse_pack_threshold: f64,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            grace: Duration::from_secs(7 * 24 * 3600),
            full: false,
            dry_run: false,
            sparse_pack_threshold: 0.5,
        }
    }
}

/// What a GC run did.
#[derive(Clone, Debug, PartialEq)]
pub struct GcReport {
    /// The run's record (`None` for a dry run).
    pub run: Option<u64>,
    /// The store's clock when the run started.
    pub store_time: DateTime<Utc>,
    /// True for a full run.
    pub full: bool,
    /// True for a dry run (nothing written, nothing deleted).
    pub dry_run: bool,
    /// Snapshots retained (reached by a branch or tag, not expired; the root included).
    pub retained_snapshots: u64,
    /// Snapshots read by the run.
    pub snapshots_read: u64,
    /// Manifest bases read by the run.
    pub manifests_read: u64,
    /// Objects this run condemned (they may be deleted by a run after the grace period).
    pub condemned: Vec<GcEntry>,
    /// Objects condemned earlier that are still within the grace period.
    pub waiting: Vec<GcEntry>,
    /// Objects condemned earlier that are reachable again (a ref moved to them, a commit
    /// used them): no longer condemned.
    pub spared: Vec<GcEntry>,
    /// Objects this run deleted (a dry run: would delete).
    pub deleted: Vec<GcEntry>,
    /// (Full runs) unreferenced objects left alone because they are younger than the grace.
    pub too_young: u64,
    /// (Full runs) chunk objects whose live bytes are below the threshold.
    pub sparse_packs: Vec<SparsePack>,
}

impl GcReport {
    /// Total size of entries, in bytes.
    pub fn bytes(entries: &[GcEntry]) -> u64 {
        entries.iter().map(|e| e.size).sum()
    }
}

impl Repository {
    /// Runs garbage collection (spec/algorithms.md §14). Safe beside writers, readers, ref
    /// moves and other GC runs; see [`GcOptions`] for the grace period's contract.
    pub async fn gc(&self, options: &GcOptions) -> Result<GcReport> {
        if !options.sparse_pack_threshold.is_finite() || options.sparse_pack_threshold < 0.0 {
            return Err(Error::InvalidLifecycleOption {
                option: "sparse pack threshold".into(),
                reason: "must be a fraction between 0 and 1".into(),
            });
        }
        if options.grace < UPLOAD_AGE_NEEDING_CHECK {
            return Err(Error::InvalidLifecycleOption {
                option: "grace period".into(),
                reason: format!(
                    "{:?} is shorter than the minimum {:?} (commits of younger sessions do not \
                     check their uploads against GC records)",
                    options.grace, UPLOAD_AGE_NEEDING_CHECK
                ),
            });
        }
        let grace_us = i64::try_from(options.grace.as_micros()).map_err(|_| {
            Error::InvalidLifecycleOption {
                option: "grace period".into(),
                reason: format!("{:?} is too long", options.grace),
            }
        })?;
        for _ in 0..RUN_ATTEMPTS {
            if let Some(report) = self.gc_attempt(options, grace_us, None).await? {
                return Ok(report);
            }
        }
        Err(Error::InvalidLifecycleOption {
            option: "gc".into(),
            reason: format!(
                "other GC runs recorded first {RUN_ATTEMPTS} times in a row; run again later"
            ),
        })
    }

    /// What a GC run would leave unreachable if the expiry horizon were `horizon`: a dry run
    /// (nothing written or deleted); its condemned, waiting and deleted entries together are
    /// everything GC would free once their grace period is over.
    pub(crate) async fn gc_preview(&self, horizon: ExpiryRecord) -> Result<GcReport> {
        let options = GcOptions {
            dry_run: true,
            ..GcOptions::default()
        };
        let grace_us = i64::try_from(options.grace.as_micros()).unwrap_or(i64::MAX);
        self.gc_attempt(&options, grace_us, Some(horizon))
            .await?
            .ok_or_else(|| Error::InvalidLifecycleOption {
                option: "gc preview".into(),
                reason: "a dry run never loses the record slot".into(),
            })
    }

    /// One attempt; `None` when another run took the record slot first. `horizon` replaces
    /// the recorded expiry horizon (for previews).
    async fn gc_attempt(
        &self,
        options: &GcOptions,
        grace_us: i64,
        horizon: Option<ExpiryRecord>,
    ) -> Result<Option<GcReport>> {
        let now_us = store_now_us(self.storage().as_ref()).await?;
        let previous = self.newest_gc_record().await?;
        let next_seq = previous.as_ref().map_or(0, |(s, _)| s + 1);
        let previous = previous.map(|(_, r)| r);
        // Refs before the horizon: a squash or amend carries its cuts before it moves the
        // branch, so every tip read here has its carried cuts in the horizon read next (read
        // the other way round, a copy's cut could be missed and the walk would take its
        // parent, possibly deleted already, for retained).
        let refs = self.gc_refs().await?;
        let horizon = match horizon {
            Some(horizon) => horizon,
            None => self.expiry_horizon().await?,
        };
        let graph = self.gc_graph(&refs, &horizon, previous.as_ref()).await?;
        let cut_parents: HashSet<SnapshotId> = graph
            .retained
            .values()
            .filter_map(|n| n.parent)
            .filter(|p| !graph.retained.contains_key(p))
            .collect();
        let mut cache = slots::BaseCache::default();
        let mut candidates = self.gc_candidates(&graph, &cut_parents, &mut cache).await?;
        let mut report = GcReport {
            run: None,
            store_time: micros_to_time(now_us),
            full: options.full,
            dry_run: options.dry_run,
            retained_snapshots: graph.retained.len() as u64,
            snapshots_read: graph.loaded.len() as u64,
            manifests_read: 0,
            condemned: Vec::new(),
            waiting: Vec::new(),
            spared: Vec::new(),
            deleted: Vec::new(),
            too_young: 0,
            sparse_packs: Vec::new(),
        };
        let mut sizes: HashMap<GcObject, u64> = HashMap::new();
        if options.full {
            let listing = self
                .gc_full_listing(&graph, now_us, grace_us, options.sparse_pack_threshold)
                .await?;
            for (object, size) in listing.orphans {
                candidates.objects.entry(object).or_insert(GcReason::Orphan);
                sizes.insert(object, size);
            }
            report.too_young = listing.too_young;
            report.sparse_packs = listing.sparse_packs;
            report.snapshots_read += listing.snapshots_read;
            report.manifests_read += listing.manifests_read;
        }

        // Earlier condemnations: spared when reachable again, due when the grace is over.
        let mut earlier: HashMap<GcObject, GcEntry> = HashMap::new();
        if let Some(p) = &previous {
            // The previous run's deletes, unless it finished them (then they are gone).
            let finished = p.deleting.is_empty()
                || self
                    .storage()
                    .head(&layout::gc_done_key(p.seq))
                    .await?
                    .is_some();
            let unfinished = if finished { &[][..] } else { &p.deleting[..] };
            for entry in p.condemned.iter().chain(unfinished) {
                earlier
                    .entry(entry.object)
                    .and_modify(|e| {
                        e.condemned_at_us = e.condemned_at_us.min(entry.condemned_at_us)
                    })
                    .or_insert_with(|| entry.clone());
            }
        }
        let reachable_again = if earlier.is_empty() {
            HashSet::new()
        } else {
            let before: HashSet<SnapshotId> = previous
                .as_ref()
                .map(|p| p.retained.iter().map(|n| n.id).collect())
                .unwrap_or_default();
            self.gc_entered_references(&graph, &before, &mut cache)
                .await?
        };
        let mut condemned = Vec::new();
        let mut deleting = Vec::new();
        for (object, entry) in earlier {
            let reachable = match object {
                GcObject::Snapshot(id) => graph.retained.contains_key(&id),
                _ => false,
            } || reachable_again.contains(&object);
            if reachable {
                report.spared.push(entry);
            } else if entry.condemned_at_us.saturating_add(grace_us) <= now_us {
                deleting.push(entry);
            } else {
                condemned.push(entry.clone());
                report.waiting.push(entry);
            }
            candidates.objects.remove(&object);
        }
        // New condemnations, sized (objects already gone are dropped from the list). A
        // snapshot no run had seen before (written below a carried cut, §16) may name objects
        // condemned earlier: it takes their condemnation time, so that it is deleted no later
        // than they are and every snapshot still in storage stays complete.
        let pending_since: HashMap<GcObject, i64> = condemned
            .iter()
            .chain(&deleting)
            .map(|e| (e.object, e.condemned_at_us))
            .collect();
        let condemned_at = |object: &GcObject| -> i64 {
            let GcObject::Snapshot(id) = object else {
                return now_us;
            };
            graph.loaded.get(id).map_or(now_us, |loaded| {
                slots::objects_named(&loaded.snapshot, &cache)
                    .filter_map(|o| pending_since.get(&o).copied())
                    .fold(now_us, i64::min)
            })
        };
        let new: Vec<(GcObject, GcReason, i64)> = candidates
            .objects
            .into_iter()
            .map(|(object, reason)| (object, reason, condemned_at(&object)))
            .collect();
        let sizing: Vec<_> = new
            .into_iter()
            .map(|(object, reason, condemned_at_us)| {
                let known = sizes.get(&object).copied();
                async move {
                    let size = match known {
                        Some(size) => Some(size),
                        None => self.storage().head(&layout::gc_object_key(&object)).await?,
                    };
                    Ok::<_, Error>(size.map(|size| GcEntry {
                        object,
                        reason,
                        condemned_at_us,
                        size,
                    }))
                }
            })
            .collect();
        let sized = stream::iter(sizing)
            .buffer_unordered(IN_FLIGHT)
            .collect::<Vec<Result<Option<GcEntry>>>>()
            .await;
        for entry in sized {
            let Some(entry) = entry? else { continue };
            if entry.condemned_at_us < now_us
                && entry.condemned_at_us.saturating_add(grace_us) <= now_us
            {
                deleting.push(entry);
            } else {
                report.condemned.push(entry.clone());
                condemned.push(entry);
            }
        }
        report.manifests_read += cache.reads;
        condemned.sort_by_key(|e| e.object);
        deleting.sort_by_key(|e| e.object);
        for list in [
            &mut report.condemned,
            &mut report.waiting,
            &mut report.spared,
        ] {
            list.sort_by_key(|e| e.object);
        }
        report.deleted = deleting.clone();
        if options.dry_run {
            return Ok(Some(report));
        }
        let mut others: Vec<_> = graph
            .all
            .into_values()
            .filter(|n| !graph.retained.contains_key(&n.id))
            .collect();
        others.sort_by_key(|e| e.id);
        let mut retained: Vec<_> = graph.retained.into_values().collect();
        retained.sort_by_key(|e| e.id);
        let record = GcRecord {
            seq: next_seq,
            started_at_us: now_us,
            grace_us,
            full: options.full,
            branches: refs.heads,
            retained,
            others,
            condemned,
            deleting,
        };
        match GC_RUNS
            .append(self.storage().as_ref(), next_seq, &record)
            .await?
        {
            Appended::Lost => return Ok(None),
            Appended::Landed => {}
        }
        report.run = Some(next_seq);
        self.gc_delete(&record.deleting).await?;
        if !record.deleting.is_empty() {
            self.storage()
                .put(
                    &layout::gc_done_key(next_seq),
                    bytes::Bytes::from_static(b"done"),
                )
                .await?;
        }
        Ok(Some(report))
    }

    /// Deletes in order: all snapshots, then transaction logs, then manifests, then chunk
    /// objects, each group finished before the next starts.
    async fn gc_delete(&self, entries: &[GcEntry]) -> Result<()> {
        let mut start = 0;
        while start < entries.len() {
            let kind = std::mem::discriminant(&entries[start].object);
            let end = entries[start..]
                .iter()
                .position(|e| std::mem::discriminant(&e.object) != kind)
                .map_or(entries.len(), |n| start + n);
            let deletes: Vec<_> = entries[start..end]
                .iter()
                .map(|e| {
                    let key = layout::gc_object_key(&e.object);
                    async move { self.storage().delete(&key).await }
                })
                .collect();
            let results: Vec<Result<()>> = stream::iter(deletes)
                .buffer_unordered(IN_FLIGHT)
                .collect()
                .await;
            for r in results {
                r?;
            }
            start = end;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
