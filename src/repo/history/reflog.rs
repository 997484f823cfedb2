//! The reflog of a branch: every move it made, read from its records (objects.md §8), newest
//! first, each classified by comparing it with the record before.

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};

use super::refs::BranchHead;
use crate::error::{Error, Result};
use crate::format::snapshot::micros_to_time;
use crate::id::SnapshotId;
use crate::repo::read::repository::Repository;
use crate::storage::layout;

/// Records (and their snapshots) read at once.
const RECORDS_IN_FLIGHT: usize = 64;

/// What one record of a branch did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BranchMove {
    /// The branch was created (record 0, or the first record after a deletion).
    Created,
    /// A commit on the branch: the new snapshot's parent is the previous tip.
    Commit,
    /// The branch was moved to a snapshot whose parent is not the previous tip (a reset).
    Reset,
    /// The branch was deleted.
    Deleted,
}

/// One record of a branch.
#[derive(Clone, Debug, PartialEq)]
pub struct ReflogEntry {
    /// The record's position in the branch's sequence.
    pub seq: u64,
    /// The tip after this record (`None`: deleted).
    pub snapshot: Option<SnapshotId>,
    /// When the record was written (the writer's clock; informative).
    pub written_at: DateTime<Utc>,
    /// What the record did.
    pub kind: BranchMove,
}

impl Repository {
    /// Every move of branch `name`, newest first, at most `limit` (the newest ones). Costs one
    /// read per record and one per snapshot named, sent together (64 at a time).
    pub async fn reflog(&self, name: &str, limit: usize) -> Result<Vec<ReflogEntry>> {
        let Some(BranchHead { seq: head, .. }) = self.branch_head_record(name, None).await? else {
            return Err(Error::BranchNotFound {
                name: name.to_string(),
            });
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let wanted = u64::try_from(limit).unwrap_or(u64::MAX).min(head + 1);
        // One record more than listed: the oldest listed needs the one before it.
        let first = (head + 1 - wanted).saturating_sub(1);
        let records: Vec<_> = futures::stream::iter((first..=head).map(|seq| async move {
            match self.read_branch_record(name, seq).await? {
                Some(record) => Ok(record),
                None => Err(Error::corrupt(
                    layout::branch_record_key(name, seq),
                    format!("missing, although record {head} exists (records never have gaps)"),
                )),
            }
        }))
        .buffered(RECORDS_IN_FLIGHT)
        .try_collect()
        .await?;
        let snapshots: Vec<Option<SnapshotId>> = records.iter().map(|r| r.snapshot).collect();
        let parents: Vec<Option<SnapshotId>> =
            futures::stream::iter(snapshots.into_iter().map(|snapshot| async move {
                match snapshot {
                    Some(id) => Ok::<_, Error>(self.load_snapshot(&id).await?.snapshot.parent),
                    None => Ok(None),
                }
            }))
            .buffered(RECORDS_IN_FLIGHT)
            .try_collect()
            .await?;
        let mut out = Vec::with_capacity(records.len());
        for (i, record) in records.iter().enumerate() {
            if record.seq + wanted <= head {
                continue; // the extra record before the oldest listed
            }
            let previous = i.checked_sub(1).map(|j| records[j].snapshot);
            let kind = match (previous, record.snapshot) {
                (_, None) => BranchMove::Deleted,
                (None, Some(_)) | (Some(None), Some(_)) => BranchMove::Created,
                (Some(Some(before)), Some(_)) if parents[i] == Some(before) => BranchMove::Commit,
                (Some(Some(_)), Some(_)) => BranchMove::Reset,
            };
            out.push(ReflogEntry {
                seq: record.seq,
                snapshot: record.snapshot,
                written_at: micros_to_time(record.written_at_us),
                kind,
            });
        }
        out.reverse();
        Ok(out)
    }
}
