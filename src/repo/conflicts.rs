//! Rebase checks: whether a session's changes can be re-applied on a branch that moved, and
//! the conflict rules (spec/algorithms.md, "Conflicts").

use std::collections::BTreeMap;

use super::change_set::{NodeEdit, ResolvedChanges};
use super::repository::Repository;
use crate::error::{ConflictDetail, Error, Result};
use crate::format::manifest::ChunkCoord;
use crate::format::path::NodePath;
use crate::format::txlog::{NodeChange, TxLog};
use crate::id::SnapshotId;

/// Decides whether changes made on `parent` can be re-applied on `tip`: fails with a conflict
/// naming the node or chunks when a commit between them touched the same data.
pub(crate) async fn check_rebase(
    repo: &Repository,
    branch: &str,
    original_base: SnapshotId,
    parent: SnapshotId,
    tip: SnapshotId,
    changes: &ResolvedChanges,
    ours: &[SnapshotId],
) -> Result<()> {
    let conflict = |their: SnapshotId, detail: ConflictDetail| Error::Conflict {
        branch: branch.to_string(),
        our_base: original_base.to_string(),
        their_snapshot: their.to_string(),
        detail: Box::new(detail),
    };
    if !repo.is_ancestor(parent, tip).await? {
        return Err(conflict(
            tip,
            ConflictDetail::Node {
                path: "/".into(),
                reason:
                    "the branch was reset to a snapshot that does not contain this session's base"
                        .into(),
            },
        ));
    }
    let mut current = tip;
    while current != parent {
        let loaded = repo.load_snapshot(&current).await?;
        // A commit of this very session whose outcome was unknown and that landed after all
        // carries our own changes: re-applying them on top is harmless, not a conflict.
        if !ours.contains(&current) {
            let log = repo.load_txlog(&loaded.snapshot.txlog).await?;
            if let Some(detail) = find_conflict(&log, changes) {
                return Err(conflict(current, detail));
            }
        }
        current = loaded.snapshot.parent.ok_or_else(|| {
            Error::corrupt(
                format!("snapshots/{current}"),
                "history ends before the session base",
            )
        })?;
    }
    Ok(())
}

/// The first overlap between a committed transaction log and a session's changes.
pub(crate) fn find_conflict(theirs: &TxLog, ours: &ResolvedChanges) -> Option<ConflictDetail> {
    let their_nodes: BTreeMap<&NodePath, NodeChange> =
        theirs.nodes.iter().map(|(p, c)| (p, *c)).collect();
    // Their deletions and (re)creations of an ancestor: a created ancestor may now be an
    // array, which cannot hold nodes, and a deleted one took its subtree with it.
    let replaced_above = |path: &NodePath| {
        theirs
            .nodes
            .iter()
            .find(|(p, c)| *c != NodeChange::Updated && path.is_within(p) && p != path)
            .map(|(p, _)| p.clone())
    };
    let node_conflict = |path: &NodePath, reason: String| ConflictDetail::Node {
        path: path.to_string(),
        reason,
    };
    for (path, edit) in &ours.nodes {
        if let Some(change) = their_nodes.get(path) {
            return Some(node_conflict(
                path,
                format!("changed by both commits (theirs: {change:?})"),
            ));
        }
        if let Some(p) = replaced_above(path) {
            return Some(node_conflict(
                path,
                format!("its ancestor {p} was deleted or replaced"),
            ));
        }
        // Deleting a node, or replacing it by one of another kind, removes everything below
        // it: nodes the other commit created or changed there would be orphaned.
        let removes_subtree = matches!(edit, NodeEdit::Deleted | NodeEdit::Put { fresh: true, .. })
            || matches!(edit, NodeEdit::Put { metadata, .. } if metadata.geometry().is_some());
        if removes_subtree {
            if let Some((below, _)) = theirs
                .nodes
                .iter()
                .find(|(p, _)| p.is_within(path) && p != path)
            {
                return Some(node_conflict(
                    path,
                    format!("the other commit changed {below} below it"),
                ));
            }
        }
    }
    let their_chunks: BTreeMap<&NodePath, &Vec<ChunkCoord>> =
        theirs.chunks.iter().map(|(p, c)| (p, c)).collect();
    for (path, edits) in &ours.chunks {
        if edits.is_empty() {
            continue;
        }
        if let Some(change) = their_nodes.get(path) {
            return Some(node_conflict(
                path,
                format!("its metadata changed concurrently ({change:?}) while this session wrote chunks"),
            ));
        }
        if let Some(p) = replaced_above(path) {
            return Some(node_conflict(
                path,
                format!("its ancestor {p} was deleted or replaced"),
            ));
        }
        if let Some(their) = their_chunks.get(path) {
            let overlap: Vec<ChunkCoord> = their
                .iter()
                .filter(|c| edits.contains_key(*c))
                .cloned()
                .collect();
            if !overlap.is_empty() {
                return Some(ConflictDetail::Chunks {
                    path: path.to_string(),
                    coords: overlap,
                });
            }
        }
    }
    for (path, coords) in &theirs.chunks {
        if !coords.is_empty() && ours.nodes.contains_key(path) {
            return Some(node_conflict(
                path,
                "this session changed its metadata while another commit wrote chunks".into(),
            ));
        }
    }
    None
}
