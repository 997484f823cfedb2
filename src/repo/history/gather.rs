//! Gathering the log entries of a history (history.md §4): which snapshots to fetch next, a
//! level of history pages at a time, and which entries are still missing.

use std::collections::{BTreeMap, HashSet};

use super::index::{page_level, page_span};
use crate::format::snapshot::{LogRecord, RECENT_LOG_LEN};
use crate::id::SnapshotId;
use crate::repo::read::loaded::LoadedSnapshot;

/// The entries found so far of generations `lowest ..= top`, and the pages known but not
/// fetched yet.
pub(crate) struct LogGather {
    lowest: u64,
    /// Entries found, by generation.
    pub(crate) records: BTreeMap<u64, LogRecord>,
    /// Snapshots loaded or chosen for loading.
    requested: HashSet<SnapshotId>,
    /// Pages named by loaded snapshots and not requested yet, by generation.
    pages: BTreeMap<u64, SnapshotId>,
}

impl LogGather {
    /// Gathers the entries of generations `lowest` and up.
    pub(crate) fn new(lowest: u64) -> Self {
        LogGather {
            lowest,
            records: BTreeMap::new(),
            requested: HashSet::new(),
            pages: BTreeMap::new(),
        }
    }

    /// Takes in a loaded snapshot: its own entry, its `recent` entries and its pages.
    pub(crate) fn add_snapshot(&mut self, loaded: &LoadedSnapshot) {
        self.requested.insert(loaded.id);
        self.pages.retain(|_, id| *id != loaded.id);
        let s = &loaded.snapshot;
        if s.generation >= self.lowest {
            self.records
                .entry(s.generation)
                .or_insert_with(|| LogRecord {
                    id: loaded.id,
                    generation: s.generation,
                    committed_at_us: s.committed_at_us,
                    text: Some((s.message.clone(), s.metadata_json.clone())),
                });
        }
        for record in &s.recent {
            if record.generation >= self.lowest {
                self.records
                    .entry(record.generation)
                    .or_insert_with(|| record.clone());
            }
        }
        for page in &s.pages {
            if !self.requested.contains(&page.id) {
                self.pages.insert(page.generation, page.id);
            }
        }
    }

    /// The generations of `lowest ..= top` without an entry yet, as inclusive ranges in
    /// increasing order.
    pub(crate) fn gaps(&self, top: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut next = self.lowest;
        for &generation in self.records.range(self.lowest..=top).map(|(g, _)| g) {
            if generation > next {
                out.push((next, generation - 1));
            }
            next = generation.saturating_add(1);
        }
        if next <= top {
            out.push((next, top));
        }
        out
    }

    /// The generations still missing, lowest first (for error messages).
    pub(crate) fn missing(&self, top: u64) -> Vec<u64> {
        self.gaps(top).into_iter().map(|(lo, _)| lo).collect()
    }

    /// The snapshots to fetch together next: every known page whose span holds a missing
    /// entry. When no page does (snapshots written before pages existed), the snapshot just
    /// above the newest gap, whose `recent` continues the log. Empty when nothing is missing
    /// or nothing more can be found.
    pub(crate) fn next_round(&mut self, top: u64) -> Vec<SnapshotId> {
        let gaps = self.gaps(top);
        if gaps.is_empty() {
            return Vec::new();
        }
        let mut chosen = Vec::new();
        for (&generation, &id) in &self.pages {
            let span = page_span(page_level(generation)).max(RECENT_LOG_LEN as u64);
            // Pages are never generation 0 (a damaged index that says so is ignored).
            let Some(cover_hi) = generation.checked_sub(1) else {
                continue;
            };
            let cover_lo = generation.saturating_sub(span);
            let i = gaps.partition_point(|&(_, hi)| hi < cover_lo);
            if gaps.get(i).is_some_and(|&(lo, _)| lo <= cover_hi) {
                chosen.push((generation, id));
            }
        }
        for (generation, id) in &chosen {
            self.pages.remove(generation);
            self.requested.insert(*id);
        }
        if !chosen.is_empty() {
            return chosen.into_iter().map(|(_, id)| id).collect();
        }
        let Some(&(_, newest_gap_end)) = gaps.last() else {
            return Vec::new();
        };
        let above = self
            .records
            .range(newest_gap_end.saturating_add(1)..)
            .next()
            .map(|(_, record)| record.id);
        match above {
            Some(id) if self.requested.insert(id) => vec![id],
            _ => Vec::new(),
        }
    }
}
