//! What keeps writers and ref moves from reviving what GC is about to delete
//! (spec/algorithms.md §14.1).
//!
//! - A branch or tag may not be moved to a snapshot the newest GC record condemns or is
//!   deleting. A move that raced the run that condemned it is seen by the next run, which
//!   spares what the snapshot reaches; deletion only ever happens a grace period later.
//! - A commit whose session wrote its first chunk object longer ago than
//!   [`UPLOAD_AGE_NEEDING_CHECK`] checks its uploads against the newest GC record before
//!   publishing: a full run may have condemned them as orphans.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::format::lifecycle::{GcObject, GcRecord};
use crate::id::{ChunkObjectId, SnapshotId};
use crate::repo::history::lifecycle_records::{check_seq, GC_RUNS};
use crate::repo::read::repository::Repository;
use crate::storage::layout;

/// Uploads younger than this cannot have been condemned: a full run condemns only objects
/// older than its grace period, and GC refuses a grace shorter than this.
pub const UPLOAD_AGE_NEEDING_CHECK: Duration = Duration::from_secs(1);

impl Repository {
    /// The newest GC record and its seq, `None` when GC never ran.
    pub(crate) async fn newest_gc_record(&self) -> Result<Option<(u64, GcRecord)>> {
        match GC_RUNS.newest::<GcRecord>(self.storage().as_ref()).await? {
            None => Ok(None),
            Some((seq, record)) => {
                check_seq(seq, record.seq, layout::gc_record_key(seq))?;
                Ok(Some((seq, record)))
            }
        }
    }

    /// Fails with [`Error::SnapshotCondemned`] when the newest GC record condemns `snapshot`,
    /// with [`Error::SnapshotExpired`] when it deleted it. Costs two requests when GC never ran.
    pub(crate) async fn refuse_condemned(&self, snapshot: SnapshotId) -> Result<()> {
        let Some((run, record)) = self.newest_gc_record().await? else {
            return Ok(());
        };
        let object = GcObject::Snapshot(snapshot);
        if let Some(entry) = record.deleting.iter().find(|e| e.object == object) {
            return Err(Error::SnapshotExpired {
                id: snapshot.to_string(),
                run,
                reason: format!("{:?}", entry.reason).to_lowercase(),
            });
        }
        if record.condemned.iter().any(|e| e.object == object) {
            return Err(Error::SnapshotCondemned {
                id: snapshot.to_string(),
                run,
            });
        }
        // A snapshot GC never saw (one written below an expiry cut by a squash or amend) is
        // not condemned itself, yet what it references may be: check its manifest bases and
        // delta chunk objects too.
        let pending: std::collections::HashSet<GcObject> = record
            .condemned
            .iter()
            .chain(&record.deleting)
            .map(|e| e.object)
            .filter(|o| matches!(o, GcObject::Manifest(_) | GcObject::Chunks(_)))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let loaded = self.load_snapshot(&snapshot).await?;
        let referenced = loaded
            .snapshot
            .nodes
            .iter()
            .flat_map(|node| match &node.kind {
                crate::format::snapshot::NodeKind::Array(manifest) => manifest.shards.as_slice(),
                crate::format::snapshot::NodeKind::Group => &[],
            });
        for shard in referenced {
            let base = shard.base.map(GcObject::Manifest);
            let deltas = shard
                .delta
                .iter()
                .flat_map(|d| d.objects.iter().map(|o| GcObject::Chunks(*o)));
            if base.into_iter().chain(deltas).any(|o| pending.contains(&o)) {
                return Err(Error::SnapshotCondemned {
                    id: snapshot.to_string(),
                    run,
                });
            }
        }
        Ok(())
    }

    /// Fails with [`Error::SessionObjectsCollected`] when the newest GC record condemns or is
    /// deleting any of `uploads`.
    pub(crate) async fn refuse_collected_uploads(&self, uploads: &[ChunkObjectId]) -> Result<()> {
        if uploads.is_empty() {
            return Ok(());
        }
        let Some((_, record)) = self.newest_gc_record().await? else {
            return Ok(());
        };
        let wanted: std::collections::HashSet<GcObject> =
            uploads.iter().map(|o| GcObject::Chunks(*o)).collect();
        let hit: Vec<&GcObject> = record
            .condemned
            .iter()
            .chain(&record.deleting)
            .map(|e| &e.object)
            .filter(|o| wanted.contains(o))
            .collect();
        match hit.first() {
            None => Ok(()),
            Some(GcObject::Chunks(example)) => Err(Error::SessionObjectsCollected {
                count: hit.len(),
                example: example.to_string(),
            }),
            Some(other) => Err(Error::SessionObjectsCollected {
                count: hit.len(),
                example: format!("{other:?}"),
            }),
        }
    }
}
