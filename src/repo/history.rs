//! History: building each snapshot's history index, log, as-of and ancestry lookups.
//!
//! Every snapshot of generation `g > 0` points at the ancestors whose generations are
//! `floor((g - 1) / 2^k) * 2^k` for k = 0, 1, 2, ... (its parent, then ever coarser aligned
//! generations down to the root). A child's pointers are a subset of its parent's pointers
//! plus the parent, so they are built without any read. Commit times strictly increase along
//! ancestry, so "newest ancestor at or before t" and "ancestor of generation n" descend these
//! pointers in O(log n) snapshot reads. Each snapshot also carries the log entries of its
//! nearest ancestors, so listing n entries reads about n / 32 snapshots.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::loaded::LoadedSnapshot;
use super::repository::Repository;
use crate::error::{Error, Result};
use crate::format::snapshot::{
    micros_to_time, AncestorRef, LogRecord, Snapshot, RECENT_ENTRY_MAX_TEXT, RECENT_LOG_LEN,
};
use crate::id::SnapshotId;

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

/// The history fields of a new child of `parent`.
pub(crate) fn child_history(
    parent_id: SnapshotId,
    parent: &Snapshot,
) -> (u64, Vec<AncestorRef>, Vec<LogRecord>) {
    let p = parent.generation;
    let parent_ref = AncestorRef {
        id: parent_id,
        generation: p,
        committed_at_us: parent.committed_at_us,
    };
    let mut skips: Vec<AncestorRef> = vec![parent_ref.clone()];
    let mut k = 1u32;
    loop {
        let target = if k >= 64 { 0 } else { (p >> k) << k };
        if target != skips.last().map_or(u64::MAX, |s| s.generation) {
            match parent.skips.iter().find(|s| s.generation == target) {
                Some(found) => skips.push(found.clone()),
                None if target == p => {}
                None => break, // parent's index is partial (cannot happen for floe-written data)
            }
        }
        if target == 0 {
            break;
        }
        k += 1;
    }
    let text_len = parent.message.len() + parent.metadata_json.len();
    let parent_log = LogRecord {
        id: parent_id,
        generation: p,
        committed_at_us: parent.committed_at_us,
        text: (text_len <= RECENT_ENTRY_MAX_TEXT)
            .then(|| (parent.message.clone(), parent.metadata_json.clone())),
    };
    let mut recent = Vec::with_capacity(RECENT_LOG_LEN);
    recent.push(parent_log);
    recent.extend(parent.recent.iter().take(RECENT_LOG_LEN - 1).cloned());
    (p + 1, skips, recent)
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
    /// The history ending at `tip`, newest first, at most `limit` entries.
    pub async fn log_from(&self, tip: SnapshotId, limit: usize) -> Result<Vec<LogEntry>> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let mut current = self.load_snapshot(&tip).await?;
        out.push(entry_of(&current));
        while out.len() < limit {
            let recent = &current.snapshot.recent;
            if recent.is_empty() {
                break;
            }
            for record in recent {
                if out.len() >= limit {
                    return Ok(out);
                }
                out.push(match &record.text {
                    Some((message, metadata)) => LogEntry {
                        id: record.id,
                        generation: record.generation,
                        committed_at: micros_to_time(record.committed_at_us),
                        message: message.clone(),
                        metadata: parse_metadata(metadata),
                    },
                    None => entry_of(&*self.load_snapshot(&record.id).await?),
                });
            }
            let Some(last) = recent.last() else { break };
            if last.generation == 0 {
                break;
            }
            current = self.load_snapshot(&last.id).await?;
        }
        Ok(out)
    }

    /// Descends from `from` to the nearest ancestor-or-self satisfying `stop_at` where the
    /// predicate `too_new(generation, time)` is monotone along the chain (true near the tip,
    /// false from some ancestor on). Returns the newest node for which `too_new` is false.
    async fn descend(
        &self,
        from: SnapshotId,
        too_new: impl Fn(u64, i64) -> bool,
    ) -> Result<Option<Arc<LoadedSnapshot>>> {
        let mut current = self.load_snapshot(&from).await?;
        loop {
            let s = &current.snapshot;
            if !too_new(s.generation, s.committed_at_us) {
                return Ok(Some(current));
            }
            // Jump to the farthest pointer that is still too new; if even the parent is old
            // enough, the parent is the answer.
            let farthest_too_new = s
                .skips
                .iter()
                .filter(|a| too_new(a.generation, a.committed_at_us))
                .min_by_key(|a| a.generation);
            let next = match farthest_too_new {
                Some(a) => a.id,
                None => match s.skips.first() {
                    Some(parent) => parent.id,
                    None => return Ok(None),
                },
            };
            current = self.load_snapshot(&next).await?;
        }
    }

    /// The newest snapshot at or before `time` in the history ending at `tip`.
    pub async fn snapshot_as_of(
        &self,
        tip: SnapshotId,
        time: DateTime<Utc>,
    ) -> Result<Option<SnapshotId>> {
        let t = time.timestamp_micros();
        Ok(self.descend(tip, |_, at| at > t).await?.map(|s| s.id))
    }

    /// The ancestor-or-self of `tip` with the given generation.
    pub async fn ancestor_at_generation(
        &self,
        tip: SnapshotId,
        generation: u64,
    ) -> Result<Option<SnapshotId>> {
        let found = self.descend(tip, |g, _| g > generation).await?;
        Ok(found
            .filter(|s| s.snapshot.generation == generation)
            .map(|s| s.id))
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
    use crate::format::snapshot::TxLogRef;
    use crate::format::txlog::TxLog;

    fn snap(generation: u64) -> Snapshot {
        Snapshot {
            parent: None,
            generation,
            committed_at_us: generation as i64,
            message: format!("c{generation}"),
            metadata_json: "{}".into(),
            nodes: vec![],
            txlog: TxLogRef::Inline(TxLog::default()),
            skips: vec![],
            recent: vec![],
        }
    }

    #[test]
    fn skips_are_aligned_generations() {
        let mut parent = snap(0);
        let mut parent_id = SnapshotId::of_bytes(b"0");
        for g in 1..=300u64 {
            let (gen, skips, recent) = child_history(parent_id, &parent);
            assert_eq!(gen, g);
            let gens: Vec<u64> = skips.iter().map(|s| s.generation).collect();
            let mut expected: Vec<u64> = (0..64).map(|k| ((g - 1) >> k) << k).collect();
            expected.dedup();
            assert_eq!(gens, expected, "generation {g}");
            assert_eq!(recent.len(), (g as usize).min(RECENT_LOG_LEN));
            assert_eq!(recent[0].generation, g - 1);
            let mut child = snap(g);
            child.skips = skips;
            child.recent = recent;
            parent_id = SnapshotId::of_bytes(&g.to_le_bytes());
            parent = child;
        }
    }
}
