//! History queries: log, as-of and ancestry lookups, answered from the history index every
//! snapshot carries (`index.rs`, history.md §1).
//!
//! Commit times strictly increase along ancestry, so "newest ancestor at or before t" and
//! "ancestor of generation n" descend the index in O(log n) snapshot reads, one after
//! another; the log fetches the history pages a level at a time, all of a level together.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, Value};

use super::gather::LogGather;
use super::version::VersionSpec;
use crate::error::{Error, Result};
use crate::format::lifecycle::ExpiryRecord;
use crate::format::snapshot::{micros_to_time, AncestorRef};
use crate::id::SnapshotId;
use crate::repo::read::loaded::LoadedSnapshot;
use crate::repo::read::repository::Repository;

/// Snapshots a history query fetches at once. A whole level of history pages is fetched
/// together (up to 31 per block of the level above: 279 of level 1 at 10,000 commits), so
/// this is well above the data path's `io_concurrency`.
pub(crate) const SNAPSHOTS_IN_FLIGHT: usize = 256;

/// One entry of a branch's history.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    /// The snapshot.
    pub id: SnapshotId,
    /// Number of ancestors.
    pub generation: u64,
    /// Commit time.
    pub committed_at: DateTime<Utc>,
    /// Commit message.
    pub message: String,
    /// Commit metadata.
    pub metadata: Map<String, Value>,
}

pub(crate) fn parse_metadata(json: &str) -> Map<String, Value> {
    serde_json::from_str(json).unwrap_or_default()
}

fn entry_of(loaded: &LoadedSnapshot) -> LogEntry {
    let s = &loaded.snapshot;
    LogEntry {
        id: loaded.id,
        generation: s.generation,
        committed_at: s.committed_at(),
        message: s.message.clone(),
        metadata: parse_metadata(&s.metadata_json),
    }
}

impl Repository {
    /// The history of a version, newest first, at most `limit` entries, and the snapshot the
    /// version names. For a branch this costs a round trip less than [`Self::resolve`] then
    /// [`Self::log_from`]: the snapshots its hint names are fetched together with its head.
    pub async fn log(
        &self,
        version: &VersionSpec,
        limit: usize,
    ) -> Result<(SnapshotId, Vec<LogEntry>)> {
        let depth = u64::try_from(limit).unwrap_or(u64::MAX);
        // The expiry horizon is read together with the head (no extra round trip).
        let (tip, horizon) =
            futures::join!(self.resolve_for_log(version, depth), self.expiry_horizon());
        let tip = tip?;
        Ok((tip, self.log_within(tip, limit, Some(horizon?)).await?))
    }

    /// The history ending at `tip`, newest first, at most `limit` entries (history.md §4).
    ///
    /// Fetches the snapshots it needs a level of history pages at a time, all of a level
    /// together: at most 2 + log32(n) round trips for n entries (plus one for entries whose
    /// text was too long to carry), instead of one per 32 entries.
    pub async fn log_from(&self, tip: SnapshotId, limit: usize) -> Result<Vec<LogEntry>> {
        self.log_within(tip, limit, None).await
    }

    /// [`Self::log_from`] with the expiry horizon when the caller read it already.
    async fn log_within(
        &self,
        tip: SnapshotId,
        limit: usize,
        horizon: Option<ExpiryRecord>,
    ) -> Result<Vec<LogEntry>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (tip, horizon) = match horizon {
            Some(horizon) => (self.load_snapshot(&tip).await, Ok(horizon)),
            None => futures::join!(self.load_snapshot(&tip), self.expiry_horizon()),
        };
        let tip = match tip {
            Ok(tip) => tip,
            Err(e) => return Err(self.explain_missing(e).await),
        };
        let horizon = horizon?;
        let top = tip.snapshot.generation;
        let wanted = u64::try_from(limit).unwrap_or(u64::MAX);
        // Entries of generations `lowest ..= top` are listed, none below a cut (the expired
        // history is neither read nor listed).
        let mut lowest = top.saturating_sub(wanted.saturating_sub(1));
        if let Some(cut) = self
            .cut_on_history(&horizon, tip.id, top, lowest, |_| true)
            .await?
        {
            lowest = cut.child_generation;
        }
        let mut gather = LogGather::new(lowest);
        gather.add_snapshot(&tip);
        loop {
            let next = gather.next_round(top);
            if next.is_empty() {
                break;
            }
            for loaded in self.load_snapshots(&next).await? {
                gather.add_snapshot(&loaded);
            }
        }
        let missing = gather.missing(top);
        if let Some(&generation) = missing.first() {
            return Err(Error::corrupt(
                crate::storage::layout::snapshot_key(&tip.id),
                format!("its history index reaches no ancestor of generation {generation}"),
            ));
        }
        let untold: Vec<SnapshotId> = gather
            .records
            .values()
            .filter(|r| r.text.is_none())
            .map(|r| r.id)
            .collect();
        let told: HashMap<SnapshotId, Arc<LoadedSnapshot>> = self
            .load_snapshots(&untold)
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        let mut out = Vec::with_capacity(gather.records.len());
        for record in gather.records.values().rev() {
            out.push(match &record.text {
                Some((message, metadata)) => LogEntry {
                    id: record.id,
                    generation: record.generation,
                    committed_at: micros_to_time(record.committed_at_us),
                    message: message.clone(),
                    metadata: parse_metadata(metadata),
                },
                None => match told.get(&record.id) {
                    Some(loaded) => entry_of(loaded),
                    None => entry_of(&*self.load_snapshot(&record.id).await?),
                },
            });
        }
        Ok(out)
    }

    /// Loads snapshots together, at most [`SNAPSHOTS_IN_FLIGHT`] requests at a time, in no
    /// particular order.
    async fn load_snapshots(&self, ids: &[SnapshotId]) -> Result<Vec<Arc<LoadedSnapshot>>> {
        let loads: Vec<_> = ids
            .iter()
            .map(|&id| async move { self.load_snapshot(&id).await })
            .collect();
        futures::stream::iter(loads)
            .buffer_unordered(SNAPSHOTS_IN_FLIGHT)
            .try_collect()
            .await
    }

    /// The newest ancestor-or-self of `from` for which `too_new(generation, time)` is false,
    /// where `too_new` is true near the tip and false from some ancestor on (history.md §3).
    /// Every snapshot read narrows the bracket between the newest known ancestor that is old
    /// enough and the oldest known one that is too new, using all three history fields.
    pub(crate) async fn descend(
        &self,
        from: SnapshotId,
        too_new: impl Fn(u64, i64) -> bool,
    ) -> Result<Option<AncestorRef>> {
        let mut current = self.load_snapshot(&from).await?;
        loop {
            let s = &current.snapshot;
            if !too_new(s.generation, s.committed_at_us) {
                return Ok(Some(AncestorRef {
                    id: current.id,
                    generation: s.generation,
                    committed_at_us: s.committed_at_us,
                }));
            }
            let known = s
                .skips
                .iter()
                .chain(&s.pages)
                .map(|a| (a.id, a.generation, a.committed_at_us))
                .chain(
                    s.recent
                        .iter()
                        .map(|r| (r.id, r.generation, r.committed_at_us)),
                );
            let mut old_enough: Option<(SnapshotId, u64, i64)> = None;
            let mut newer: Vec<(SnapshotId, u64, i64)> = Vec::new();
            for (id, generation, at) in known {
                if too_new(generation, at) {
                    newer.push((id, generation, at));
                } else if old_enough.is_none_or(|(_, g, _)| generation > g) {
                    old_enough = Some((id, generation, at));
                }
            }
            let floor = old_enough.map(|(_, g, _)| g);
            let ceiling = newer
                .iter()
                .filter(|(_, g, _)| floor.is_none_or(|f| *g > f))
                .min_by_key(|(_, g, _)| *g);
            match (old_enough, ceiling) {
                // Nothing known is too new below `current`: the old-enough one is its parent.
                (Some((id, generation, at)), None) => {
                    return Ok(Some(AncestorRef {
                        id,
                        generation,
                        committed_at_us: at,
                    }))
                }
                (Some((id, generation, at)), Some((_, above, _))) if *above == generation + 1 => {
                    return Ok(Some(AncestorRef {
                        id,
                        generation,
                        committed_at_us: at,
                    }))
                }
                (_, Some((id, _, _))) => {
                    let next = self.load_snapshot(id).await?;
                    if next.snapshot.generation >= s.generation {
                        return Err(Error::corrupt(
                            crate::storage::layout::snapshot_key(&current.id),
                            "its history index names a snapshot that is not older than itself",
                        ));
                    }
                    current = next;
                }
                // No ancestors at all: the root is still too new.
                (None, None) => return Ok(None),
            }
        }
    }

    /// The newest snapshot at or before `time` in the history ending at `tip`.
    ///
    /// Fails with [`Error::HistoryExpired`] when that snapshot lies below an expiry cut.
    pub async fn snapshot_as_of(
        &self,
        tip: SnapshotId,
        time: DateTime<Utc>,
    ) -> Result<Option<SnapshotId>> {
        let label = format!("snapshot {tip} as of {}", time.to_rfc3339());
        self.snapshot_as_of_named(&label, tip, time, None).await
    }

    /// [`Self::snapshot_as_of`], naming the version `label` in errors, with the expiry
    /// horizon when the caller read it already.
    pub(crate) async fn snapshot_as_of_named(
        &self,
        label: &str,
        tip: SnapshotId,
        time: DateTime<Utc>,
        horizon: Option<ExpiryRecord>,
    ) -> Result<Option<SnapshotId>> {
        let t = time.timestamp_micros();
        // The horizon is read together with the descent (no extra round trip); a descent
        // below a cut may meet deleted snapshots, so the horizon's verdict comes first.
        let (horizon, found) = match horizon {
            Some(horizon) => (Ok(horizon), self.descend(tip, |_, at| at > t).await),
            None => futures::join!(self.expiry_horizon(), self.descend(tip, |_, at| at > t)),
        };
        self.check_as_of_horizon(&horizon?, label, tip, t).await?;
        Ok(found?.map(|a| a.id))
    }

    /// The ancestor-or-self of `tip` with the given generation.
    pub async fn ancestor_at_generation(
        &self,
        tip: SnapshotId,
        generation: u64,
    ) -> Result<Option<SnapshotId>> {
        let found = self.descend(tip, |g, _| g > generation).await?;
        Ok(found.filter(|a| a.generation == generation).map(|a| a.id))
    }

    /// True when `ancestor` is `descendant` or one of its ancestors.
    pub async fn is_ancestor(&self, ancestor: SnapshotId, descendant: SnapshotId) -> Result<bool> {
        let a = self.load_snapshot(&ancestor).await?;
        Ok(self
            .ancestor_at_generation(descendant, a.snapshot.generation)
            .await?
            == Some(ancestor))
    }

    /// The log entry of one snapshot.
    pub async fn snapshot_entry(&self, id: SnapshotId) -> Result<LogEntry> {
        Ok(entry_of(&*self.load_snapshot(&id).await?))
    }

    /// Snapshots whose id starts with `prefix` (hex). Lists the snapshot directory.
    pub async fn find_snapshots_by_prefix(&self, prefix: &str) -> Result<Vec<SnapshotId>> {
        let prefix = prefix.to_ascii_lowercase();
        let listed = self
            .storage()
            .list(crate::storage::layout::SNAPSHOTS_DIR)
            .await?;
        let mut out = Vec::new();
        for object in listed {
            if let Some(id) = crate::storage::layout::id_of_key(
                crate::storage::layout::SNAPSHOTS_DIR,
                &object.key,
            ) {
                if id.starts_with(&prefix) {
                    out.push(
                        SnapshotId::parse(id)
                            .map_err(|_| Error::corrupt(&object.key, "not a snapshot id"))?,
                    );
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::snapshot::{Snapshot, TxLogRef};
    use crate::format::txlog::TxLog;
    use crate::repo::history::index::child_history_in;
    use crate::repo::RepositorySettings;
    use crate::storage::open_storage;

    /// Histories written before pages existed (32 `recent` entries, no pages, from generation
    /// 33 on): the log, as-of and ancestry still find every ancestor, walking `recent` one
    /// snapshot after another; writers continue them in their form and fsck accepts them.
    #[tokio::test]
    async fn histories_without_pages_still_read_whole() {
        let storage = open_storage("memory://", &vec![]).unwrap();
        let repo = Repository::init(storage, RepositorySettings::default())
            .await
            .unwrap();
        let root = repo.branch_tip("main").await.unwrap();
        let mut parent = repo.load_snapshot(&root).await.unwrap();
        let mut ids = vec![root];
        for g in 1..=150u64 {
            let history = child_history_in(parent.id, &parent.snapshot, false);
            let child = Snapshot {
                parent: Some(parent.id),
                generation: history.generation,
                committed_at_us: parent.snapshot.committed_at_us + 10,
                message: if g % 7 == 0 {
                    "x".repeat(600)
                } else {
                    format!("c{g}")
                },
                metadata_json: "{}".into(),
                nodes: vec![],
                txlog: TxLogRef::Inline(TxLog::default()),
                skips: history.skips,
                recent: history.recent,
                pages: Vec::new(),
                merged: None,
                rewritten_from: None,
            };
            let id = repo.write_snapshot(&child).await.unwrap();
            ids.push(id);
            parent = repo.load_snapshot(&id).await.unwrap();
        }
        let tip = ids[150];
        // A writer continues such a history in its form, and fsck finds it sound.
        repo.reset_branch("main", tip).await.unwrap();
        let session = repo.writable_session("main").await.unwrap();
        session
            .create_group(&crate::NodePath::root(), Default::default())
            .await
            .unwrap();
        let next = session.commit("continued", None).await.unwrap();
        let continued = repo.load_snapshot(&next).await.unwrap();
        assert!(continued.snapshot.pages.is_empty());
        assert_eq!(continued.snapshot.recent.len(), 32);
        let report = repo.fsck(Default::default()).await.unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        let log = repo.log_from(tip, usize::MAX).await.unwrap();
        let logged: Vec<SnapshotId> = log.iter().map(|e| e.id).collect();
        let expected: Vec<SnapshotId> = ids.iter().rev().copied().collect();
        assert_eq!(logged, expected);
        assert_eq!(log[150 - 14].message, "x".repeat(600));
        assert_eq!(log[150 - 15].message, "c15");
        assert_eq!(repo.log_from(tip, 70).await.unwrap(), log[..70].to_vec());
        for g in [0usize, 1, 31, 32, 33, 100, 149, 150] {
            let at = log[150 - g].committed_at;
            assert_eq!(repo.snapshot_as_of(tip, at).await.unwrap(), Some(ids[g]));
            assert_eq!(
                repo.ancestor_at_generation(tip, g as u64).await.unwrap(),
                Some(ids[g])
            );
        }
    }
}
