//! Rebase checks: whether a session's changes can be re-applied on a branch that moved, and
//! the conflict rules (spec/algorithms.md, "Conflicts").

use std::collections::{BTreeMap, BTreeSet};

use std::sync::Arc;

use super::identical::agreement;
use super::node_merge::{merge_node, other_key_changed, shrinks, SideFacts};
use crate::error::{ConflictDetail, Error, Result};
use crate::format::manifest::ChunkCoord;
use crate::format::path::NodePath;
use crate::format::txlog::{CoordList, NodeChange, TxLog};
use crate::id::SnapshotId;
use crate::repo::read::loaded::LoadedSnapshot;
use crate::repo::read::repository::Repository;
use crate::repo::write::change_set::{NodeEdit, ResolvedChanges};
use crate::zarr::metadata::NodeMetadata;

/// Documents a rebase must commit instead of the session's own puts, by path: each replaces
/// the session's put as an update of the tip's node (never `fresh`, so the tip's chunks of the
/// node are kept).
pub(crate) type MergedNodes = BTreeMap<NodePath, Arc<NodeMetadata>>;

/// What the commits between the parent and the tip did to a node the session changed too.
struct TheirTouch {
    /// The newest commit that touched the node (named in a conflict).
    snapshot: SnapshotId,
    /// Some commit wrote or deleted chunks of the node.
    wrote_chunks: bool,
    /// The node's document in each commit that updated it, newest first.
    versions: Vec<Arc<NodeMetadata>>,
}

/// How one commit's node changes compare with the session's node edits.
#[derive(Debug, Default)]
pub(crate) struct Agreements {
    /// Paths the session edits where this commit, or a newer one of the walk, left the node
    /// as the session leaves it (spec/algorithms.md §8, "agreed"). Their changes there are the
    /// session's own and never conflict.
    pub(crate) agreed: BTreeSet<NodePath>,
    /// Agreed paths whose chunks the session writes, agreed at a newer commit, with no newer
    /// commit creating or deleting the node: the chunks the session writes on are those this
    /// commit left, so its creation or deletion of the node conflicts, and its update is
    /// checked as a change of theirs (a shrink or a new fill value undone later still is one).
    pub(crate) kept: BTreeSet<NodePath>,
    /// Paths a newer commit of the walk created or deleted: whatever this commit wrote there
    /// is gone from the tip, so its chunk writes there overlap nothing.
    pub(crate) dropped: BTreeSet<NodePath>,
    /// Paths both changed to different states: what a conflict message adds about how.
    pub(crate) notes: BTreeMap<NodePath, String>,
}

impl Agreements {
    /// Compares the node changes of `log`, the transaction log of `their`, with the session's
    /// edits (made on `parent`); `settled` holds the paths agreed in newer commits of the
    /// walk, and `renewed` the paths they created or deleted.
    fn compare(
        log: &TxLog,
        their: &LoadedSnapshot,
        parent: &LoadedSnapshot,
        ours: &ResolvedChanges,
        settled: BTreeSet<NodePath>,
        renewed: &BTreeSet<NodePath>,
    ) -> Result<Agreements> {
        let writes = |p: &NodePath| ours.chunks.get(p).is_some_and(|e| !e.is_empty());
        let kept = settled
            .iter()
            .filter(|p| !renewed.contains(*p) && writes(p))
            .cloned()
            .collect();
        let mut out = Agreements {
            agreed: settled,
            kept,
            dropped: renewed.clone(),
            notes: BTreeMap::new(),
        };
        for (path, change) in &log.nodes {
            let Some(edit) = ours.nodes.get(path) else {
                continue;
            };
            if out.agreed.contains(path) {
                continue;
            }
            let theirs = their.node_metadata(path)?;
            let clipped = ours.clips.contains_key(path);
            let in_base = parent.snapshot.node(path).is_some();
            match agreement(edit, clipped, in_base, *change, theirs.as_deref()) {
                Ok(()) => {
                    out.agreed.insert(path.clone());
                }
                Err(note) if !note.is_empty() => {
                    out.notes.insert(path.clone(), note);
                }
                Err(_) => {}
            }
        }
        Ok(out)
    }
}

/// Decides whether changes made on `parent` can be re-applied on `tip`: fails with a conflict
/// naming the node, chunks or attribute keys when a commit between them touched the same data
/// in a way that does not merge. Returns the documents to commit instead of the session's
/// puts: the merged documents of the nodes both sides changed, and the session's own
/// document for the nodes a commit left exactly as the session does (spec/algorithms.md §8).
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
                reason: "the branch's history was rewritten (reset, squash or amend) and no \
                         longer contains this session's base: open a new session on the branch \
                         and make the changes again"
                    .into(),
            },
        ));
    }
    let base = repo.load_snapshot(&parent).await?;
    let mut touched: BTreeMap<NodePath, TheirTouch> = BTreeMap::new();
    // Paths agreed in the commits walked so far (newer than the current one), and paths
    // those commits created or deleted.
    let mut settled: BTreeSet<NodePath> = BTreeSet::new();
    let mut renewed: BTreeSet<NodePath> = BTreeSet::new();
    let mut current = tip;
    while current != parent {
        let loaded = repo.load_snapshot(&current).await?;
        // A commit of this very session whose outcome was unknown and that landed after all
        // carries our own changes: re-applying them on top is harmless, not a conflict.
        if !ours.contains(&current) {
            let log = repo.load_txlog(&loaded.snapshot.txlog).await?;
            let agreements = Agreements::compare(&log, &loaded, &base, changes, settled, &renewed)?;
            let shared =
                find_conflict(&log, changes, &agreements).map_err(|d| conflict(current, d))?;
            for (path, touch) in shared {
                let entry = touched.entry(path.clone()).or_insert(TheirTouch {
                    snapshot: current,
                    wrote_chunks: false,
                    versions: Vec::new(),
                });
                entry.wrote_chunks |= touch.chunks;
                // An intermediate version may have shrunk the array or changed what its
                // chunks mean even if the tip looks harmless.
                if touch.metadata {
                    if let Some(version) = loaded.node_metadata(&path)? {
                        entry.versions.push(version);
                    }
                }
            }
            settled = agreements.agreed;
            renewed.extend(
                log.nodes
                    .iter()
                    .filter(|(_, c)| *c != NodeChange::Updated)
                    .map(|(p, _)| p.clone()),
            );
        }
        current = loaded.snapshot.parent.ok_or_else(|| {
            Error::corrupt(
                format!("snapshots/{current}"),
                "history ends before the session base",
            )
        })?;
    }
    let tip_snapshot = repo.load_snapshot(&tip).await?;
    let put_of = |path: &NodePath| match changes.nodes.get(path) {
        Some(NodeEdit::Put { metadata, .. }) => Some(metadata.clone()),
        _ => None,
    };
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
        let put = put_of(&path);
        // A node agreed in an older commit is merged against the agreed version: only the
        // commits after it changed the node relative to what both sides hold.
        let base_doc = match (&put, settled.contains(&path)) {
            (Some(ours), true) => Some(ours.clone()),
            _ => base.node_metadata(&path)?,
        };
        let (Some(b), Some(t)) = (base_doc, tip_snapshot.node_metadata(&path)?) else {
            return Err(node_conflict("changed by both commits".into()));
        };
        let o = put.clone().unwrap_or_else(|| b.clone());
        let mut their_facts = SideFacts {
            wrote_chunks: touch.wrote_chunks,
            ..SideFacts::default()
        };
        for version in &touch.versions {
            if their_facts.other_key.is_none() {
                their_facts.other_key = other_key_changed(&b, version);
            }
            if let (Some(bg), Some(vg)) = (b.geometry(), version.geometry()) {
                their_facts.shrank |= shrinks(&bg.shape, &vg.shape);
            }
        }
        let our_facts = SideFacts {
            wrote_chunks: changes.chunks.get(&path).is_some_and(|e| !e.is_empty()),
            // Base chunks outside the session's clip are dropped when it lands: the other
            // side's chunks there would be lost.
            shrank: changes.clips.contains_key(&path),
            other_key: None,
        };
        let doc = merge_node(&path, &b, &t, &o, their_facts, our_facts).map_err(node_conflict)?;
        if put.is_some() {
            merged.insert(path, Arc::new(doc));
        }
    }
    // Agreed puts nobody changed since: committed as updates of the tip's node, whose chunks
    // (the other side's) stay, even where the session had re-created the node.
    for path in settled {
        if let (Some(ours), false) = (put_of(&path), merged.contains_key(&path)) {
            merged.insert(path, ours);
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
/// their documents decide (see [`check_rebase`]). The commit's node changes at paths in
/// `agreements.agreed` are the session's own: they neither conflict nor mark anything, and
/// only chunk writes that overlap the session's still conflict there.
pub(crate) fn find_conflict(
    theirs: &TxLog,
    ours: &ResolvedChanges,
    agreements: &Agreements,
) -> std::result::Result<BTreeMap<NodePath, SharedTouch>, ConflictDetail> {
    let agreed = |path: &NodePath| agreements.agreed.contains(path);
    let their_changes: Vec<(&NodePath, NodeChange)> = theirs
        .nodes
        .iter()
        .filter(|(p, _)| !agreed(p))
        .map(|(p, c)| (p, *c))
        .collect();
    let their_nodes: BTreeMap<&NodePath, NodeChange> = their_changes.iter().copied().collect();
    let mut shared: BTreeMap<NodePath, SharedTouch> = BTreeMap::new();
    // Their deletions and (re)creations of an ancestor: a created ancestor may now be an
    // array, which cannot hold nodes, and a deleted one took its subtree with it.
    let replaced_above = |path: &NodePath| {
        their_changes
            .iter()
            .find(|(p, c)| *c != NodeChange::Updated && path.is_within(p) && *p != path)
            .map(|(p, _)| (*p).clone())
    };
    let node_conflict = |path: &NodePath, reason: String| ConflictDetail::Node {
        path: path.to_string(),
        reason,
    };
    let updates = |edit: &NodeEdit| matches!(edit, NodeEdit::Put { fresh: false, .. });
    for (path, edit) in &ours.nodes {
        if agreed(path) {
            continue;
        }
        if let Some(change) = their_nodes.get(path) {
            if *change != NodeChange::Updated || !updates(edit) {
                let note = agreements
                    .notes
                    .get(path)
                    .map(|n| format!(" {n}"))
                    .unwrap_or_default();
                return Err(node_conflict(
                    path,
                    format!("changed by both commits (theirs: {change:?}){note}"),
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
            if let Some((below, _)) = their_changes
                .iter()
                .find(|(p, _)| p.is_within(path) && *p != path)
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
        if agreements.kept.contains(path) {
            // Agreed at a newer commit, but the node this commit left is the one whose
            // chunks the session writes on.
            if let Some((_, change)) = theirs.nodes.iter().find(|(p, _)| p == path) {
                if *change != NodeChange::Updated {
                    return Err(node_conflict(
                        path,
                        format!(
                            "it was {change:?} by the other commit while this session wrote \
                             chunks (a newer commit left the node as this session does, but \
                             not with the chunks this session wrote on)"
                        ),
                    ));
                }
                shared.entry(path.clone()).or_default().metadata = true;
            }
        }
        if !agreed(path) {
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
        }
        // Chunks this commit wrote where a newer commit created or deleted the node are gone.
        let their = their_chunks
            .get(path)
            .filter(|_| !agreements.dropped.contains(path));
        if let Some(their) = their {
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
        if coords.is_empty() || agreed(path) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::manifest::ChunkRef;
    use crate::repo::write::change_set::ArrayEdits;
    use crate::repo::write::pending_chunk::PendingChunk;
    use serde_json::json;

    fn p(path: &str) -> NodePath {
        NodePath::new(path).unwrap()
    }

    fn put(path: &str, doc: serde_json::Value) -> (NodePath, NodeEdit) {
        let metadata = NodeMetadata::from_value(&p(path), doc).unwrap();
        (
            p(path),
            NodeEdit::Put {
                metadata: Arc::new(metadata),
                fresh: false,
            },
        )
    }

    fn group(path: &str) -> (NodePath, NodeEdit) {
        put(path, json!({"zarr_format": 3, "node_type": "group"}))
    }

    /// The session: root group `/` and array `/a` created, chunk [1] of `/a` written.
    fn ours() -> ResolvedChanges {
        let array = json!({
            "zarr_format": 3, "node_type": "array", "shape": [4], "data_type": "uint8",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1]}},
            "chunk_key_encoding": {"name": "default"}, "fill_value": 0,
            "codecs": [{"name": "bytes"}]
        });
        let mut edits = ArrayEdits::default();
        edits.insert(
            vec![1],
            Some(PendingChunk::Ready(ChunkRef::Inline(vec![1].into()))),
        );
        ResolvedChanges {
            nodes: [group(""), put("a", array)].into_iter().collect(),
            chunks: [(p("a"), edits)].into_iter().collect(),
            clips: BTreeMap::new(),
        }
    }

    /// Another commit that created `/`, `/a` and `/b` and wrote `chunks` of `/a`.
    fn theirs(chunks: &[&[u64]]) -> TxLog {
        TxLog {
            nodes: vec![
                (p(""), NodeChange::Created),
                (p("a"), NodeChange::Created),
                (p("b"), NodeChange::Created),
            ],
            chunks: vec![(p("a"), CoordList::from_sorted(chunks.iter().copied()))],
        }
    }

    fn agreed(paths: &[&str]) -> Agreements {
        Agreements {
            agreed: paths.iter().map(|s| p(s)).collect(),
            ..Agreements::default()
        }
    }

    #[test]
    fn agreed_creations_merge_and_their_chunks_still_conflict() {
        let shared = find_conflict(&theirs(&[&[0], &[2]]), &ours(), &agreed(&["", "a"])).unwrap();
        assert!(shared.is_empty(), "{shared:?}");
        let overlap = find_conflict(&theirs(&[&[1]]), &ours(), &agreed(&["", "a"])).unwrap_err();
        assert_eq!(
            overlap,
            ConflictDetail::Chunks {
                path: "/a".into(),
                coords: vec![vec![1]],
            }
        );
    }

    #[test]
    fn creations_that_are_not_agreed_conflict_with_the_note() {
        let mut agreements = agreed(&[""]);
        agreements.notes.insert(
            p("a"),
            "to different metadata: `x` is 1 in this session".into(),
        );
        let err = find_conflict(&theirs(&[]), &ours(), &agreements).unwrap_err();
        assert_eq!(
            err,
            ConflictDetail::Node {
                path: "/a".into(),
                reason: "changed by both commits (theirs: Created) to different metadata: `x` \
                         is 1 in this session"
                    .into(),
            }
        );
        // Without agreement on the root, the root conflicts first.
        let err = find_conflict(&theirs(&[]), &ours(), &agreed(&["a"])).unwrap_err();
        assert!(
            matches!(&err, ConflictDetail::Node { path, .. } if path == "/"),
            "{err:?}"
        );
    }

    #[test]
    fn an_older_commit_below_an_agreement_still_meets_the_chunk_writes() {
        // `/a` agreed at a newer commit, nobody re-created it since: this older commit's
        // creation of it conflicts with the session's chunk writes.
        let mut agreements = agreed(&["", "a"]);
        agreements.kept.insert(p("a"));
        let err = find_conflict(&theirs(&[]), &ours(), &agreements).unwrap_err();
        assert!(
            matches!(&err, ConflictDetail::Node { path, reason }
                if path == "/a" && reason.starts_with("it was Created by the other commit")),
            "{err:?}"
        );
        // Re-created by a newer commit: this commit's chunk writes are gone, no overlap.
        let mut agreements = agreed(&["", "a"]);
        agreements.dropped.insert(p("a"));
        assert!(find_conflict(&theirs(&[&[1]]), &ours(), &agreements).is_ok());
    }

    #[test]
    fn an_agreed_ancestor_is_not_replaced() {
        // The session only adds `/c` below the root that the other commit created too.
        let changes = ResolvedChanges {
            nodes: [group(""), group("c")].into_iter().collect(),
            ..ResolvedChanges::default()
        };
        assert!(find_conflict(&theirs(&[]), &changes, &agreed(&[""])).is_ok());
        let err = find_conflict(&theirs(&[]), &changes, &agreed(&[])).unwrap_err();
        assert!(
            matches!(&err, ConflictDetail::Node { path, .. } if path == "/"),
            "{err:?}"
        );
        // Both deleted `/g` and `/g/x`: agreed, so the deletion below is no change below.
        let deletes = ResolvedChanges {
            nodes: [(p("g"), NodeEdit::Deleted), (p("g/x"), NodeEdit::Deleted)]
                .into_iter()
                .collect(),
            ..ResolvedChanges::default()
        };
        let log = TxLog {
            nodes: vec![
                (p("g"), NodeChange::Deleted),
                (p("g/x"), NodeChange::Deleted),
            ],
            chunks: Vec::new(),
        };
        assert!(find_conflict(&log, &deletes, &agreed(&["g", "g/x"])).is_ok());
        assert!(find_conflict(&log, &deletes, &agreed(&[])).is_err());
    }
}
