//! The nearest common ancestor of two snapshots, where a merge starts from
//! (spec/algorithms.md §15, steps 1-2).
//!
//! Ancestry follows parents and merge sources ([`crate::format::snapshot::Snapshot::merged`]),
//! so the next merge of the same branch starts from what the last one merged. Commit times
//! strictly increase along both kinds of edge, so walking both histories newest first
//! reaches every descendant of a snapshot before the snapshot itself: the first snapshot
//! found from both sides is a common ancestor that no other common ancestor descends from.

use std::collections::{BinaryHeap, HashMap};

use crate::error::{Error, Result};
use crate::id::SnapshotId;
use crate::repo::read::repository::Repository;

/// Which side reached a snapshot: bit 0 the first, bit 1 the second.
type Sides = u8;
const BOTH: Sides = 0b11;

impl Repository {
    /// The nearest common ancestor of `a` and `b` (itself when one descends from the
    /// other), or `None` when their histories never meet. Snapshots deleted by garbage
    /// collection end a line of the walk.
    pub async fn merge_base(&self, a: SnapshotId, b: SnapshotId) -> Result<Option<SnapshotId>> {
        if a == b {
            return Ok(Some(a));
        }
        let (first, second) =
            futures::try_join!(self.load_named_snapshot(&a), self.load_named_snapshot(&b))?;
        let mut sides: HashMap<SnapshotId, Sides> = HashMap::from([(a, 0b01), (b, 0b10)]);
        let mut queue: BinaryHeap<(i64, SnapshotId)> = BinaryHeap::from([
            (first.snapshot.committed_at_us, a),
            (second.snapshot.committed_at_us, b),
        ]);
        while let Some((_, id)) = queue.pop() {
            let reached = sides.get(&id).copied().unwrap_or(0);
            if reached == BOTH {
                return Ok(Some(id));
            }
            let loaded = match self.load_snapshot(&id).await {
                Ok(loaded) => loaded,
                Err(Error::SnapshotNotFound { .. } | Error::SnapshotExpired { .. }) => continue,
                Err(e) => return Err(e),
            };
            let parents = loaded
                .snapshot
                .parent
                .into_iter()
                .chain(loaded.snapshot.merged);
            for parent in parents {
                let entry = sides.entry(parent).or_insert(0);
                let before = *entry;
                *entry |= reached;
                if before == 0 {
                    // Its time is known only once loaded; the parent's is in the index.
                    let time = match loaded.snapshot.skips.first() {
                        Some(p) if p.id == parent => p.committed_at_us,
                        _ => self
                            .load_snapshot(&parent)
                            .await
                            .map_or(i64::MIN, |p| p.snapshot.committed_at_us),
                    };
                    queue.push((time, parent));
                }
            }
        }
        Ok(None)
    }
}
