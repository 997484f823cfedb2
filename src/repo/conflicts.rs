//! Rebase checks: whether a session's changes can be re-applied on a branch that moved, and
//! the conflict rules (spec/algorithms.md, "Conflicts").

use std::collections::BTreeMap;

use std::sync::Arc;

use super::change_set::{NodeEdit, ResolvedChanges};
use super::node_merge::{merge_node, other_key_changed, shrinks, SideFacts};
use super::repository::Repository;
use crate::error::{ConflictDetail, Error, Result};
use crate::format::manifest::ChunkCoord;
use crate::format::path::NodePath;
use crate::format::txlog::{CoordList, NodeChange, TxLog};
use crate::id::SnapshotId;
use crate::zarr::metadata::NodeMetadata;

/// Merged node documents a rebase must commit instead of the session's own, by path.
pub(crate) type MergedNodes = BTreeMap<NodePath, Arc<NodeMetadata>>;

/// What the commits between the parent and the tip did to a node the session changed too.
struct TheirTouch {
    /// The newest commit that touched the node (named in a conflict).
    snapshot: SnapshotId,
    facts: SideFacts,
}

/// Decides whether changes made on `parent` can be re-applied on `tip`: fails with a conflict
/// naming the node, chunks or attribute keys when a commit between them touched the same data
/// in a way that does not merge. Returns the merged documents of the nodes that both sides
/// changed and that the session puts (spec/algorithms.md §8).
pub(crate) async fn check_rebase(
    repo: &Repository,
    branch: &str,
    original_base: SnapshotId,
    parent: SnapshotId,
    tip: SnapshotId,
    changes: &ResolvedChanges,
    ours: &[SnapshotId],
) -> Result<MergedNodes> {
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
    let base = repo.load_snapshot(&parent).await?;
    let mut touched: BTreeMap<NodePath, TheirTouch> = BTreeMap::new();
    let mut current = tip;
    while current != parent {
        let loaded = repo.load_snapshot(&current).await?;
        // A commit of this very session whose outcome was unknown and that landed after all
        // carries our own changes: re-applying them on top is harmless, not a conflict.
        if !ours.contains(&current) {
            let log = repo.load_txlog(&loaded.snapshot.txlog).await?;
            let shared = find_conflict(&log, changes).map_err(|d| conflict(current, d))?;
            for (path, touch) in shared {
                let entry = touched.entry(path.clone()).or_insert(TheirTouch {
                    snapshot: current,
                    facts: SideFacts::default(),
                });
                entry.facts.wrote_chunks |= touch.chunks;
                if !touch.metadata {
                    continue;
                }
                // An intermediate version may have shrunk the array or changed what its
                // chunks mean even if the tip looks harmless.
                if let (Some(b), Some(c)) =
                    (base.node_metadata(&path)?, loaded.node_metadata(&path)?)
                {
                    entry.facts.other_changed |= other_key_changed(&b, &c);
                    if let (Some(bg), Some(cg)) = (b.geometry(), c.geometry()) {
                        entry.facts.shrank |= shrinks(&bg.shape, &cg.shape);
                    }
                }
            }
        }
        current = loaded.snapshot.parent.ok_or_else(|| {
            Error::corrupt(
                format!("snapshots/{current}"),
                "history ends before the session base",
            )
        })?;
    }
    let tip_snapshot = repo.load_snapshot(&tip).await?;
    let mut merged = MergedNodes::new();
    for (path, touch) in touched {
        let node_conflict = |reason: String| {
            conflict(
                touch.snapshot,
                ConflictDetail::Node {
                    path: path.to_string(),
                    reason,
                },
            )
        };
        let (Some(b), Some(t)) = (
            base.node_metadata(&path)?,
            tip_snapshot.node_metadata(&path)?,
        ) else {
            return Err(node_conflict("changed by both commits".into()));
        };
        let put = match changes.nodes.get(&path) {
            Some(NodeEdit::Put { metadata, .. }) => Some(metadata.clone()),
            _ => None,
        };
        let o = put.clone().unwrap_or_else(|| b.clone());
        let our_facts = SideFacts {
            wrote_chunks: changes.chunks.get(&path).is_some_and(|e| !e.is_empty()),
            // Base chunks outside the session's clip are dropped when it lands: the other
            // side's chunks there would be lost.
            shrank: changes.clips.contains_key(&path),
            other_changed: false,
        };
        let doc = merge_node(&path, &b, &t, &o, touch.facts, our_facts).map_err(node_conflict)?;
        if put.is_some() {
            merged.insert(path, Arc::new(doc));
        }
    }
    Ok(merged)
}

/// How a commit touched a node that the session changed too, when that may merge.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SharedTouch {
    /// The commit updated the node's metadata.
    pub(crate) metadata: bool,
    /// The commit wrote or deleted chunks of the node.
    pub(crate) chunks: bool,
}

/// The first overlap between a committed transaction log and a session's changes that cannot
/// merge. Nodes both sides changed in a way that may merge (the commit updated the node, or
/// wrote its chunks, while the session updated it or wrote its chunks) are returned instead:
/// their documents decide (see [`check_rebase`]).
pub(crate) fn find_conflict(
    theirs: &TxLog,
    ours: &ResolvedChanges,
) -> std::result::Result<BTreeMap<NodePath, SharedTouch>, ConflictDetail> {
    let their_nodes: BTreeMap<&NodePath, NodeChange> =
        theirs.nodes.iter().map(|(p, c)| (p, *c)).collect();
    let mut shared: BTreeMap<NodePath, SharedTouch> = BTreeMap::new();
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
    let updates = |edit: &NodeEdit| matches!(edit, NodeEdit::Put { fresh: false, .. });
    for (path, edit) in &ours.nodes {
        if let Some(change) = their_nodes.get(path) {
            if *change != NodeChange::Updated || !updates(edit) {
                return Err(node_conflict(
                    path,
                    format!("changed by both commits (theirs: {change:?})"),
                ));
            }
            shared.entry(path.clone()).or_default().metadata = true;
        }
        if let Some(p) = replaced_above(path) {
            return Err(node_conflict(
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
                return Err(node_conflict(
                    path,
                    format!("the other commit changed {below} below it"),
                ));
            }
        }
    }
    let their_chunks: BTreeMap<&NodePath, &CoordList> =
        theirs.chunks.iter().map(|(p, c)| (p, c)).collect();
    for (path, edits) in &ours.chunks {
        if edits.is_empty() {
            continue;
        }
        if let Some(change) = their_nodes.get(path) {
            if *change != NodeChange::Updated {
                return Err(node_conflict(
                    path,
                    format!(
                        "it was {change:?} by the other commit while this session wrote chunks"
                    ),
                ));
            }
            shared.entry(path.clone()).or_default().metadata = true;
        }
        if let Some(p) = replaced_above(path) {
            return Err(node_conflict(
                path,
                format!("its ancestor {p} was deleted or replaced"),
            ));
        }
        if let Some(their) = their_chunks.get(path) {
            let mut overlap: Vec<ChunkCoord> = Vec::new();
            for c in their.iter() {
                let checked = c.and_then(|c| edits.contains(&c).map(|hit| (c, hit)));
                match checked {
                    Ok((c, true)) => overlap.push(c),
                    Ok((_, false)) => {}
                    Err(e) => {
                        return Err(ConflictDetail::Node {
                            path: path.to_string(),
                            reason: format!(
                                "conflicts cannot be ruled out: a list of chunk edits could not be read ({e})"
                            ),
                        })
                    }
                }
            }
            if !overlap.is_empty() {
                return Err(ConflictDetail::Chunks {
                    path: path.to_string(),
                    coords: overlap,
                });
            }
            if let Some(touch) = shared.get_mut(path) {
                touch.chunks |= !their.is_empty();
            }
        }
    }
    for (path, coords) in &theirs.chunks {
        if coords.is_empty() {
            continue;
        }
        match ours.nodes.get(path) {
            None => {}
            Some(edit) if updates(edit) => shared.entry(path.clone()).or_default().chunks = true,
            Some(_) => {
                return Err(node_conflict(
                    path,
                    "this session deleted or replaced it while another commit wrote chunks".into(),
                ))
            }
        }
    }
    Ok(shared)
}
