//! How history reads meet the expiry horizon (spec/algorithms.md §13): a history query stops
//! at a cut edge instead of reading the expired snapshots below it, a query for a time before
//! the horizon fails with [`Error::HistoryExpired`], and a snapshot GC deleted is reported as
//! [`Error::SnapshotExpired`], never as corruption.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::lifecycle::{ExpiryCut, ExpiryRecord, GcObject, GcRecord};
use crate::format::snapshot::micros_to_time;
use crate::id::SnapshotId;
use crate::repo::history::lifecycle_records::{EXPIRY, GC_RUNS};
use crate::repo::read::loaded::LoadedSnapshot;
use crate::repo::read::repository::Repository;
use crate::storage::layout;

impl Repository {
    /// The current expiry horizon (empty when nothing was ever expired). Costs two requests
    /// sent together when nothing was, a few more when something was.
    pub(crate) async fn expiry_horizon(&self) -> Result<ExpiryRecord> {
        match EXPIRY
            .newest::<ExpiryRecord>(self.storage().as_ref())
            .await?
        {
            None => Ok(ExpiryRecord::default()),
            Some((seq, record)) => {
                super::lifecycle_records::check_seq(
                    seq,
                    record.seq,
                    layout::expiry_record_key(seq),
                )?;
                Ok(record)
            }
        }
    }

    /// The newest cut on the history ending at `tip` (of generation `top`) whose child has a
    /// generation in `lowest ..= top`, if any: the history below it is expired.
    ///
    /// Candidates are checked newest first with [`Self::ancestor_at_generation`], which reads
    /// only snapshots newer than the candidate (never expired ones); there is nothing to check
    /// when no cut lies in the range, the common case.
    pub(crate) async fn cut_on_history<'h>(
        &self,
        horizon: &'h ExpiryRecord,
        tip: SnapshotId,
        top: u64,
        lowest: u64,
        relevant: impl Fn(&ExpiryCut) -> bool,
    ) -> Result<Option<&'h ExpiryCut>> {
        let mut candidates: Vec<&ExpiryCut> = horizon
            .cuts
            .iter()
            .filter(|c| c.child_generation >= lowest && c.child_generation <= top && relevant(c))
            .collect();
        candidates.sort_by_key(|c| std::cmp::Reverse(c.child_generation));
        for cut in candidates {
            let on_history = cut.child == tip
                || self
                    .ancestor_at_generation(tip, cut.child_generation)
                    .await?
                    == Some(cut.child);
            if on_history {
                return Ok(Some(cut));
            }
        }
        Ok(None)
    }

    /// Fails with [`Error::HistoryExpired`] when the newest snapshot at or before `time_us`
    /// in the history ending at `tip` lies below a cut.
    pub(crate) async fn check_as_of_horizon(
        &self,
        horizon: &ExpiryRecord,
        version: &str,
        tip: SnapshotId,
        time_us: i64,
    ) -> Result<()> {
        if horizon.cuts.is_empty() {
            return Ok(());
        }
        let top = self.load_snapshot(&tip).await?.snapshot.generation;
        let cut = self
            .cut_on_history(horizon, tip, top, 0, |c| c.child_committed_at_us > time_us)
            .await?;
        match cut {
            None => Ok(()),
            Some(cut) => Err(Error::HistoryExpired {
                version: version.to_string(),
                horizon: micros_to_time(cut.child_committed_at_us).to_rfc3339(),
                cut_at: cut.child.to_string(),
            }),
        }
    }

    /// Loads a snapshot a caller named; one garbage collection deleted fails with
    /// [`Error::SnapshotExpired`] rather than [`Error::SnapshotNotFound`].
    pub(crate) async fn load_named_snapshot(&self, id: &SnapshotId) -> Result<Arc<LoadedSnapshot>> {
        match self.load_snapshot(id).await {
            Err(e @ Error::SnapshotNotFound { .. }) => Err(self.explain_missing(e).await),
            other => other,
        }
    }

    /// Turns "snapshot not found" into [`Error::SnapshotExpired`] when a GC run deleted that
    /// snapshot; any other error is returned unchanged. Reads the GC records (only on this
    /// error path).
    pub(crate) async fn explain_missing(&self, error: Error) -> Error {
        let Error::SnapshotNotFound { id } = &error else {
            return error;
        };
        let Ok(snapshot) = SnapshotId::parse(id) else {
            return error;
        };
        match self.gc_deletion_of(&GcObject::Snapshot(snapshot)).await {
            Ok(Some((run, reason))) => Error::SnapshotExpired {
                id: id.clone(),
                run,
                reason,
            },
            _ => error,
        }
    }

    /// Every snapshot GC runs have seen leave the retained history (dropped, condemned or
    /// deleted), from the newest GC record alone: those that are missing were deleted by GC.
    pub(crate) async fn gc_deleted_snapshots(
        &self,
    ) -> Result<std::collections::HashSet<SnapshotId>> {
        let Some((_, record)) = self.newest_gc_record().await? else {
            return Ok(Default::default());
        };
        Ok(record
            .others
            .iter()
            .map(|n| n.id)
            .chain(record.deleting.iter().filter_map(|e| match e.object {
                GcObject::Snapshot(id) => Some(id),
                _ => None,
            }))
            .collect())
    }

    /// The GC run that deleted `object`, with why; `None` when no run did. Reads the newest
    /// record, then older ones only when the newest says GC dropped the object (an error
    /// path: a snapshot that is gone).
    pub(crate) async fn gc_deletion_of(&self, object: &GcObject) -> Result<Option<(u64, String)>> {
        let storage = self.storage().as_ref();
        let Some((newest, record)) = self.newest_gc_record().await? else {
            return Ok(None);
        };
        let seen = |record: &GcRecord| match object {
            GcObject::Snapshot(id) => record.others.iter().any(|n| &n.id == id),
            _ => true,
        };
        if !seen(&record) && !record.deleting.iter().any(|e| &e.object == object) {
            return Ok(None);
        }
        let mut current = Some(record);
        for seq in (0..=newest).rev() {
            let record = match current.take() {
                Some(record) => record,
                None => match GC_RUNS.read::<GcRecord>(storage, seq).await? {
                    Some(record) => record,
                    None => continue,
                },
            };
            if let Some(entry) = record.deleting.iter().find(|e| &e.object == object) {
                return Ok(Some((seq, format!("{:?}", entry.reason).to_lowercase())));
            }
        }
        Ok(None)
    }
}
