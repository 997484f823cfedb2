//! Expiry (spec/algorithms.md §13): choosing, per branch, the oldest commit to keep, and
//! recording the history edges below it as cut. Nothing is rewritten or deleted here: the
//! expired snapshots stay readable by id until a GC run deletes them, and history queries stop
//! at the cuts from now on.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::format::lifecycle::{ExpiryCut, ExpiryRecord};
use crate::format::snapshot::{micros_to_time, Snapshot};
use crate::id::SnapshotId;
use crate::repo::history::lifecycle_records::{Appended, EXPIRY};
use crate::repo::ops::gc::GcReport;
use crate::repo::read::repository::Repository;
use crate::storage::clock::store_now_us;

/// Attempts at appending the expiry record when other expiry runs keep taking the slot.
const APPEND_ATTEMPTS: u32 = 8;

/// Which history is old enough to expire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpireBefore {
    /// Commits older than this, measured back from the store's clock when expiry runs.
    Age(Duration),
    /// Commits before this time.
    Time(DateTime<Utc>),
}

impl ExpireBefore {
    fn cutoff_us(self, now_us: i64) -> Result<i64> {
        match self {
            ExpireBefore::Time(t) => Ok(t.timestamp_micros()),
            ExpireBefore::Age(age) => {
                let micros =
                    i64::try_from(age.as_micros()).map_err(|_| Error::InvalidLifecycleOption {
                        option: "expiry age".into(),
                        reason: format!("{age:?} is too long"),
                    })?;
                Ok(now_us.saturating_sub(micros))
            }
        }
    }
}

/// What [`Repository::expire`] keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpireOptions {
    /// History older than this is expired, on every branch without its own threshold.
    pub older_than: ExpireBefore,
    /// Every branch keeps at least this many of its newest commits, whatever their age
    /// (at least 1: the tip is always kept).
    pub keep_last: u64,
    /// Thresholds for particular branches.
    pub per_branch: BTreeMap<String, ExpireBefore>,
    /// Report what would be expired, and what GC would then free, without recording anything.
    pub dry_run: bool,
}

impl ExpireOptions {
    /// Expire history older than `older_than` on every branch, keeping at least the tip.
    pub fn older_than(older_than: ExpireBefore) -> Self {
        ExpireOptions {
            older_than,
            keep_last: 1,
            per_branch: BTreeMap::new(),
            dry_run: false,
        }
    }
}

/// What expiry did to one branch.
#[derive(Clone, Debug, PartialEq)]
pub struct BranchExpiry {
    /// The branch.
    pub branch: String,
    /// Its tip when expiry ran.
    pub tip: SnapshotId,
    /// The threshold applied to it.
    pub older_than: DateTime<Utc>,
    /// The oldest commit its history keeps (the root when nothing is expired).
    pub oldest_kept: SnapshotId,
    /// Commits its history keeps (tip included).
    pub kept: u64,
    /// Commits of its history expired by this run (not counting those expired before).
    pub newly_expired: u64,
}

/// What [`Repository::expire`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpireReport {
    /// The store's clock when expiry ran.
    pub store_time: DateTime<Utc>,
    /// Per branch, sorted by name.
    pub branches: Vec<BranchExpiry>,
    /// Tags whose snapshot is kept without its history (no branch keeps it), sorted.
    pub tags_cut: Vec<String>,
    /// Cuts this run added.
    pub new_cuts: Vec<ExpiryCut>,
    /// The expiry record written (`None` for a dry run or when nothing changed).
    pub record: Option<u64>,
    /// (Dry runs) what garbage collection would free after this expiry, once its grace period
    /// is over: objects and bytes that only expired or unreferenced history holds.
    pub would_free: Option<(u64, u64)>,
}

/// The newest commit a branch keeps below its tip.
struct Plan {
    branch: BranchExpiry,
    tip_generation: u64,
    floor: u64,
    cut: Option<ExpiryCut>,
}

impl Repository {
    /// The expiry horizon and the seq of its record (`None` when nothing was ever expired).
    async fn expiry_with_seq(&self) -> Result<(Option<u64>, ExpiryRecord)> {
        let horizon = self.expiry_horizon().await?;
        let seq = if horizon.cuts.is_empty() && horizon.seq == 0 {
            EXPIRY
                .newest::<serde::de::IgnoredAny>(self.storage().as_ref())
                .await?
                .map(|(seq, _)| seq)
        } else {
            Some(horizon.seq)
        };
        Ok((seq, horizon))
    }

    /// Expires old history (spec/algorithms.md §13): per branch, the commits newer than the
    /// threshold and at least `keep_last` of the newest are kept, every tagged snapshot is
    /// kept (without its history when no branch keeps it), and the root is kept. The edge
    /// below each branch's oldest kept commit is recorded as cut: log and as-of stop there
    /// from now on, and [`Repository::gc`] deletes what only the expired history reaches.
    ///
    /// History is never rewritten; expiry never moves a cut back (a branch expired further
    /// before keeps its older cut). Safe beside writers and other expiry runs (a run that
    /// loses the race for the record reads it again and merges).
    pub async fn expire(&self, options: &ExpireOptions) -> Result<ExpireReport> {
        if options.keep_last == 0 {
            return Err(Error::InvalidLifecycleOption {
                option: "keep_last".into(),
                reason: "must be at least 1 (a branch always keeps its tip)".into(),
            });
        }
        let now_us = store_now_us(self.storage().as_ref()).await?;
        for attempt in 1..=APPEND_ATTEMPTS {
            let (seq, horizon) = self.expiry_with_seq().await?;
            let report = self.plan_expiry(options, now_us, &horizon).await?;
            let mut cuts: BTreeMap<SnapshotId, ExpiryCut> =
                horizon.cuts.iter().map(|c| (c.child, c.clone())).collect();
            for cut in &report.new_cuts {
                cuts.insert(cut.child, cut.clone());
            }
            let next = seq.map_or(0, |s| s + 1);
            let record = ExpiryRecord {
                seq: next,
                written_at_us: now_us,
                cuts: cuts.into_values().collect(),
            };
            if options.dry_run {
                let preview = self.gc_preview(record).await?;
                let freed = [&preview.condemned, &preview.waiting, &preview.deleted];
                let objects = freed.iter().map(|list| list.len() as u64).sum();
                let bytes = freed.iter().map(|list| GcReport::bytes(list)).sum();
                return Ok(ExpireReport {
                    would_free: Some((objects, bytes)),
                    ..report
                });
            }
            if report.new_cuts.is_empty() {
                return Ok(report);
            }
            match EXPIRY
                .append(self.storage().as_ref(), next, &record)
                .await?
            {
                Appended::Landed => {
                    return Ok(ExpireReport {
                        record: Some(next),
                        ..report
                    })
                }
                Appended::Lost if attempt < APPEND_ATTEMPTS => continue,
                Appended::Lost => break,
            }
        }
        Err(Error::InvalidLifecycleOption {
            option: "expiry".into(),
            reason: format!(
                "other expiry runs took the record slot {APPEND_ATTEMPTS} times in a row; retry"
            ),
        })
    }

    /// Carries expiry cuts over to rewritten history (spec/algorithms.md §16): for each
    /// `(original, copy)` where the edge from `original` to its parent is cut, the edge from
    /// `copy` (whose parent is the same snapshot, or the copy of the original's parent) is cut
    /// too, so that a squash or amend never brings expired history back (its objects may be
    /// collected already). Appends one expiry record when there is anything to cut. Returns
    /// the copies whose edge to their parent is cut.
    pub(crate) async fn carry_cuts(
        &self,
        rewritten: &[(SnapshotId, &Snapshot, SnapshotId)],
    ) -> Result<std::collections::HashSet<SnapshotId>> {
        for _ in 1..=APPEND_ATTEMPTS {
            let (seq, horizon) = self.expiry_with_seq().await?;
            let mut cuts: BTreeMap<SnapshotId, ExpiryCut> =
                horizon.cuts.iter().map(|c| (c.child, c.clone())).collect();
            let mut added = false;
            let mut cut_copies = std::collections::HashSet::new();
            for (original, copy, copy_id) in rewritten {
                let (Some(old), Some(parent)) = (horizon.cut_of(original), copy.parent) else {
                    continue;
                };
                let cut = ExpiryCut {
                    child: *copy_id,
                    child_generation: copy.generation,
                    child_committed_at_us: copy.committed_at_us,
                    parent,
                    reason: format!("rewrite of {original} ({})", old.reason),
                    older_than_us: old.older_than_us,
                    expired_at_us: old.expired_at_us,
                };
                added |= cuts.insert(*copy_id, cut).is_none();
                cut_copies.insert(*copy_id);
            }
            if !added {
                return Ok(cut_copies);
            }
            let next = seq.map_or(0, |s| s + 1);
            let record = ExpiryRecord {
                seq: next,
                written_at_us: store_now_us(self.storage().as_ref()).await?,
                cuts: cuts.into_values().collect(),
            };
            if let Appended::Landed = EXPIRY
                .append(self.storage().as_ref(), next, &record)
                .await?
            {
                return Ok(cut_copies);
            }
        }
        Err(Error::InvalidLifecycleOption {
            option: "expiry".into(),
            reason: format!(
                "other expiry runs took the record slot {APPEND_ATTEMPTS} times in a row; retry"
            ),
        })
    }

    async fn plan_expiry(
        &self,
        options: &ExpireOptions,
        now_us: i64,
        horizon: &ExpiryRecord,
    ) -> Result<ExpireReport> {
        let mut plans = Vec::new();
        for branch in self.list_branches().await? {
            let threshold = options
                .per_branch
                .get(&branch.name)
                .copied()
                .unwrap_or(options.older_than);
            let cutoff_us = threshold.cutoff_us(now_us)?;
            plans.push(
                self.plan_branch(
                    &branch.name,
                    branch.snapshot,
                    cutoff_us,
                    options,
                    now_us,
                    horizon,
                )
                .await?,
            );
        }
        for name in options.per_branch.keys() {
            if !plans.iter().any(|p| &p.branch.branch == name) {
                return Err(Error::BranchNotFound { name: name.clone() });
            }
        }
        let mut new_cuts: Vec<ExpiryCut> = plans.iter().filter_map(|p| p.cut.clone()).collect();
        let mut tags_cut = Vec::new();
        for tag in self.list_tags().await? {
            let tagged = self.load_snapshot(&tag.snapshot).await?;
            let Some(parent) = tagged.snapshot.parent else {
                continue;
            };
            if horizon.is_cut(&tag.snapshot) || new_cuts.iter().any(|c| c.child == tag.snapshot) {
                continue;
            }
            let generation = tagged.snapshot.generation;
            let mut kept_by_branch = false;
            for plan in &plans {
                if generation > plan.tip_generation || generation < plan.floor {
                    continue;
                }
                if plan.branch.tip == tag.snapshot
                    || self
                        .ancestor_at_generation(plan.branch.tip, generation)
                        .await?
                        == Some(tag.snapshot)
                {
                    kept_by_branch = true;
                    break;
                }
            }
            if kept_by_branch {
                continue;
            }
            tags_cut.push(tag.name.clone());
            new_cuts.push(ExpiryCut {
                child: tag.snapshot,
                child_generation: generation,
                child_committed_at_us: tagged.snapshot.committed_at_us,
                parent,
                reason: format!("tag {}", tag.name),
                older_than_us: options.older_than.cutoff_us(now_us)?,
                expired_at_us: now_us,
            });
        }
        new_cuts.sort_by_key(|e| e.child);
        new_cuts.dedup_by(|a, b| a.child == b.child);
        tags_cut.sort();
        Ok(ExpireReport {
            store_time: micros_to_time(now_us),
            branches: plans.into_iter().map(|p| p.branch).collect(),
            tags_cut,
            new_cuts,
            record: None,
            would_free: None,
        })
    }

    /// Chooses the oldest commit `branch` keeps and the cut below it (none when the branch
    /// keeps all its history, or an older expiry already cut at or above that commit).
    async fn plan_branch(
        &self,
        branch: &str,
        tip: SnapshotId,
        cutoff_us: i64,
        options: &ExpireOptions,
        now_us: i64,
        horizon: &ExpiryRecord,
    ) -> Result<Plan> {
        let top = self.load_snapshot(&tip).await?.snapshot.generation;
        let existing = self
            .cut_on_history(horizon, tip, top, 0, |_| true)
            .await?
            .map_or(0, |c| c.child_generation);
        // The newest ancestor older than the cutoff, looking only above the existing cut
        // (below it the snapshots are expired and may be gone).
        let older = self
            .descend(tip, |g, at| at >= cutoff_us && g > existing)
            .await?;
        let by_time = match older {
            Some(a) if a.generation > existing || a.committed_at_us < cutoff_us => a.generation + 1,
            _ => existing,
        };
        let by_count = top.saturating_sub(options.keep_last - 1);
        let wanted = by_time.min(by_count).min(top);
        let floor = wanted.max(existing);
        let mut cut = None;
        if wanted > existing && wanted > 1 {
            let child = self
                .ancestor_at_generation(tip, wanted)
                .await?
                .ok_or_else(|| {
                    Error::corrupt(
                        crate::storage::layout::snapshot_key(&tip),
                        format!("its history reaches no ancestor of generation {wanted}"),
                    )
                })?;
            let loaded = self.load_snapshot(&child).await?;
            if let Some(parent) = loaded.snapshot.parent {
                cut = Some(ExpiryCut {
                    child,
                    child_generation: wanted,
                    child_committed_at_us: loaded.snapshot.committed_at_us,
                    parent,
                    reason: format!("branch {branch}"),
                    older_than_us: cutoff_us,
                    expired_at_us: now_us,
                });
            }
        }
        let floor = if cut.is_some() || existing > 0 {
            floor
        } else {
            0
        };
        let oldest_kept = match &cut {
            Some(c) => c.child,
            None => self
                .ancestor_at_generation(tip, floor)
                .await?
                .unwrap_or(tip),
        };
        Ok(Plan {
            branch: BranchExpiry {
                branch: branch.to_string(),
                tip,
                older_than: micros_to_time(cutoff_us),
                oldest_kept,
                kept: top - floor + 1,
                newly_expired: if cut.is_some() {
                    wanted - existing.max(1)
                } else {
                    0
                },
            },
            tip_generation: top,
            floor,
            cut,
        })
    }
}
