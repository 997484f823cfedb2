//! Building snapshots that are not a session's plain commit (merges, squashes, amends, the
//! commits a squash replays): history fields from the new parent, the transaction log
//! inline or as an object, and the log of several commits composed into one.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Result;
use crate::format::manifest::ChunkCoord;
use crate::format::path::NodePath;
use crate::format::snapshot::{NodeKind, NodeRecord, Snapshot, TxLogRef};
use crate::format::txlog::{CoordList, NodeChange, TxLog};
use crate::id::SnapshotId;
use crate::repo::history::index::child_history;
use crate::repo::read::loaded::LoadedSnapshot;
use crate::repo::read::repository::Repository;

/// What a new snapshot holds besides the fields its parent decides.
pub(crate) struct Content {
    pub(crate) committed_at_us: i64,
    pub(crate) message: String,
    pub(crate) metadata_json: String,
    pub(crate) nodes: Vec<NodeRecord>,
    pub(crate) txlog: TxLogRef,
    pub(crate) merged: Option<SnapshotId>,
    pub(crate) rewritten_from: Option<SnapshotId>,
}

/// A child of `parent` (the history fields follow from it) holding `content`. The commit
/// time is raised above the parent's where needed: times strictly increase along ancestry.
pub(crate) fn child_snapshot(parent: &LoadedSnapshot, content: Content) -> Snapshot {
    let history = child_history(parent.id, &parent.snapshot);
    Snapshot {
        parent: Some(parent.id),
        generation: history.generation,
        committed_at_us: content
            .committed_at_us
            .max(parent.snapshot.committed_at_us + 1),
        message: content.message,
        metadata_json: content.metadata_json,
        nodes: content.nodes,
        txlog: content.txlog,
        skips: history.skips,
        recent: history.recent,
        pages: history.pages,
        merged: content.merged,
        rewritten_from: content.rewritten_from,
    }
}

/// A snapshot taking the place of `original` on the same parent (an amended tip, a squash on
/// its first commit's parent), holding `content`. Its history fields are the original's (same
/// parent, same generation), so the parent, which expiry and GC may have removed, is not
/// read. The commit time is raised above the parent's where needed.
pub(crate) fn replacing_snapshot(original: &Snapshot, content: Content) -> Snapshot {
    let parent_time = original
        .skips
        .first()
        .map_or(i64::MIN, |p| p.committed_at_us);
    Snapshot {
        parent: original.parent,
        generation: original.generation,
        committed_at_us: content.committed_at_us.max(parent_time.saturating_add(1)),
        message: content.message,
        metadata_json: content.metadata_json,
        nodes: content.nodes,
        txlog: content.txlog,
        skips: original.skips.clone(),
        recent: original.recent.clone(),
        pages: original.pages.clone(),
        merged: content.merged,
        rewritten_from: content.rewritten_from,
    }
}

impl Repository {
    /// A transaction log carried in the snapshot when small, else written as an object.
    pub(crate) async fn txlog_ref(&self, log: TxLog) -> Result<TxLogRef> {
        let size = rmp_serde::to_vec_named(&log)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size <= self.settings().txlog_inline_max_bytes {
            Ok(TxLogRef::Inline(log))
        } else {
            Ok(TxLogRef::Object(self.write_txlog(&log).await?))
        }
    }
}

/// One transaction log standing for several consecutive commits (`logs`, oldest first) whose
/// last leaves the tree `after`: a node any of them created or deleted counts as created
/// (deleted when `after` lacks it), one they only updated as updated, and every chunk any of
/// them wrote counts for arrays `after` has. Later writers check their changes against it as
/// against the original commits' logs: it names at least everything they did to the tree.
pub(crate) fn compose_txlogs(after: &[NodeRecord], logs: &[TxLog]) -> Result<TxLog> {
    let after_by_path: BTreeMap<&NodePath, &NodeRecord> =
        after.iter().map(|n| (&n.path, n)).collect();
    let mut changes: BTreeMap<&NodePath, NodeChange> = BTreeMap::new();
    for log in logs {
        for (path, change) in &log.nodes {
            let entry = changes.entry(path).or_insert(NodeChange::Updated);
            if *change != NodeChange::Updated {
                *entry = NodeChange::Created;
            }
        }
    }
    let mut out = TxLog::default();
    for (path, change) in changes {
        let change = if after_by_path.contains_key(path) {
            change
        } else {
            NodeChange::Deleted
        };
        out.nodes.push((path.clone(), change));
    }
    let mut chunks: BTreeMap<&NodePath, BTreeSet<ChunkCoord>> = BTreeMap::new();
    for log in logs {
        for (path, coords) in &log.chunks {
            let is_array = after_by_path
                .get(path)
                .is_some_and(|n| matches!(n.kind, NodeKind::Array(_)));
            if is_array {
                let set = chunks.entry(path).or_default();
                for coord in coords.iter() {
                    set.insert(coord?);
                }
            }
        }
    }
    for (path, coords) in chunks {
        let mut list = CoordList::default();
        let mut previous: Option<&ChunkCoord> = None;
        for c in &coords {
            list.push(c, previous.map(Vec::as_slice));
            previous = Some(c);
        }
        if !list.is_empty() {
            out.chunks.push((path.clone(), list));
        }
    }
    Ok(out)
}
