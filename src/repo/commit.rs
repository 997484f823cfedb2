//! Committing a session: build the new snapshot, then move the branch; rebase when another
//! writer got there first and the changes do not overlap.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::{Map, Value};

use super::change_set::{NodeEdit, PendingChunk, ResolvedChanges};
use super::history::child_history;
use super::loaded::{lock, LoadedSnapshot};
use super::manifest_update::update_array_manifest;
use super::refs::AdvanceOutcome;
use super::repository::Repository;
use super::session::Session;
use crate::error::{ConflictDetail, Error, Result};
use crate::format::manifest::ChunkCoord;
use crate::format::now_us;
use crate::format::path::NodePath;
use crate::format::snapshot::{ArrayManifest, NodeKind, NodeRecord, Snapshot, TxLogRef};
use crate::format::txlog::{NodeChange, TxLog};
use crate::id::SnapshotId;
use crate::zarr::metadata::NodeMetadata;

impl Session {
    /// Commits the session's changes to its branch and returns the new snapshot id.
    ///
    /// Objects are written first (chunks, touched manifest shards, the snapshot) and the branch
    /// moves last, with a create-if-absent of its next record, so a commit either lands whole
    /// or not at all. If another writer moved the branch meanwhile, the changes are re-applied
    /// on the new tip when they do not overlap (with jittered backoff); overlapping changes
    /// fail with [`Error::Conflict`] and leave the session's changes in place.
    pub async fn commit(
        &self,
        message: &str,
        metadata: Option<Map<String, Value>>,
    ) -> Result<SnapshotId> {
        let branch = self.inner.branch.clone().ok_or(Error::ReadOnlySession)?;
        let _gate = self.inner.write_gate.write().await;
        let changes = self.resolved_changes().await?;
        if changes.nodes.is_empty() && changes.chunks.values().all(|c| c.is_empty()) {
            return Err(Error::NothingToCommit);
        }
        let metadata_json = Value::Object(metadata.unwrap_or_default()).to_string();
        let repo = &self.inner.repo;
        let settings = repo.settings().clone();
        let (mut parent, mut parent_seq) = {
            let state = lock(&self.inner.state);
            (state.base.clone(), state.base_seq)
        };
        let original_base = parent.id;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let (id, snapshot) =
                build_snapshot(repo, &parent, &changes, message, &metadata_json).await?;
            let outcome = repo
                .try_advance_branch(&branch, parent_seq + 1, Some(id))
                .await
                .map_err(|e| Error::CommitOutcomeUnknown {
                    branch: branch.clone(),
                    snapshot: id.to_string(),
                    reason: e.to_string(),
                })?;
            match outcome {
                AdvanceOutcome::Landed => {
                    let mut state = lock(&self.inner.state);
                    state.base = Arc::new(LoadedSnapshot::new(id, snapshot));
                    state.base_seq = parent_seq + 1;
                    state.changes = Default::default();
                    state.packs = Default::default();
                    return Ok(id);
                }
                AdvanceOutcome::Lost => {
                    if attempt >= settings.max_commit_attempts {
                        return Err(Error::TooManyRebaseAttempts {
                            branch: branch.clone(),
                            attempts: attempt,
                        });
                    }
                    // Back off first, then rebase onto the tip as it is after the pause: a
                    // tip read before sleeping is likely stale by the next attempt when other
                    // writers keep committing.
                    let exp = settings
                        .commit_backoff_base
                        .saturating_mul(1 << attempt.min(10));
                    let cap = exp.min(settings.commit_backoff_max);
                    let jitter = rand::rng().random_range(0..=cap.as_micros().max(1) as u64);
                    tokio::time::sleep(Duration::from_micros(jitter)).await;
                    let (tip_seq, tip) = repo.branch_head(&branch).await?;
                    check_rebase(repo, &branch, original_base, parent.id, tip, &changes).await?;
                    parent = repo.load_snapshot(&tip).await?;
                    parent_seq = tip_seq;
                }
            }
        }
    }

    /// Writes pending packs and returns the change set with every chunk location resolved.
    async fn resolved_changes(&self) -> Result<ResolvedChanges> {
        lock(&self.inner.state).packs.seal_open();
        self.write_sealed_packs().await?;
        let mut state = lock(&self.inner.state);
        let mut resolved = ResolvedChanges {
            nodes: state.changes.nodes.clone(),
            chunks: BTreeMap::new(),
            clips: state.changes.clips.clone(),
        };
        let packs = &state.packs;
        let mut out_chunks = BTreeMap::new();
        for (path, edits) in &state.changes.chunks {
            let mut done = BTreeMap::new();
            for (coord, edit) in edits {
                let value = match edit {
                    None => None,
                    Some(PendingChunk::Ready(r)) => Some(r.clone()),
                    Some(PendingChunk::Packed {
                        pack,
                        offset,
                        length,
                    }) => match packs.locate(*pack, *offset, *length) {
                        Some(Err(object)) => Some(crate::format::manifest::ChunkRef::Native {
                            object,
                            offset: *offset,
                            length: *length,
                        }),
                        _ => {
                            return Err(Error::corrupt(
                                "<session pack>",
                                "a pack was not written before commit",
                            ))
                        }
                    },
                };
                done.insert(coord.clone(), value);
            }
            out_chunks.insert(path.clone(), done);
        }
        // Keep the session's own view consistent: packed chunks now have final locations.
        for (path, edits) in &out_chunks {
            let entry: &mut BTreeMap<ChunkCoord, Option<PendingChunk>> =
                state.changes.chunks.entry(path.clone()).or_default();
            for (coord, value) in edits {
                entry.insert(coord.clone(), value.clone().map(PendingChunk::Ready));
            }
        }
        resolved.chunks = out_chunks;
        Ok(resolved)
    }
}

/// Builds and writes the snapshot that applies `changes` on top of `parent`.
pub(crate) async fn build_snapshot(
    repo: &Repository,
    parent: &LoadedSnapshot,
    changes: &ResolvedChanges,
    message: &str,
    metadata_json: &str,
) -> Result<(SnapshotId, Snapshot)> {
    let mut nodes: BTreeMap<NodePath, NodeRecord> = parent
        .snapshot
        .nodes
        .iter()
        .map(|n| (n.path.clone(), n.clone()))
        .collect();
    let mut txlog = TxLog::default();
    let mut old_geometry = BTreeMap::new();
    let mut new_geometry = BTreeMap::new();
    for (path, edit) in &changes.nodes {
        match edit {
            NodeEdit::Deleted => {
                if nodes.remove(path).is_some() {
                    txlog.nodes.push((path.clone(), NodeChange::Deleted));
                }
            }
            NodeEdit::Put { metadata, fresh } => {
                let existing = nodes.get(path);
                let change = if existing.is_some() && !fresh {
                    NodeChange::Updated
                } else {
                    NodeChange::Created
                };
                let kind = match (metadata.geometry(), existing.map(|n| &n.kind)) {
                    (None, _) => NodeKind::Group,
                    (Some(_), Some(NodeKind::Array(m))) if !fresh => NodeKind::Array(m.clone()),
                    (Some(_), _) => NodeKind::Array(ArrayManifest::default()),
                };
                if let (Some(g), false) = (metadata.geometry(), *fresh) {
                    if let Some(old) = parent
                        .node_metadata(path)?
                        .and_then(|m| m.geometry().cloned())
                    {
                        old_geometry.insert(path.clone(), old);
                    }
                    new_geometry.insert(path.clone(), g.clone());
                }
                nodes.insert(
                    path.clone(),
                    NodeRecord {
                        path: path.clone(),
                        zarr_json: metadata.to_json(),
                        kind,
                    },
                );
                txlog.nodes.push((path.clone(), change));
            }
        }
    }
    let touched: BTreeSet<NodePath> = changes
        .chunks
        .iter()
        .filter(|(_, e)| !e.is_empty())
        .map(|(p, _)| p.clone())
        .chain(new_geometry.keys().cloned())
        .collect();
    let empty = BTreeMap::new();
    for path in touched {
        let Some(record) = nodes.get_mut(&path) else {
            continue;
        };
        let NodeKind::Array(manifest) = &mut record.kind else {
            continue;
        };
        let geometry = NodeMetadata::parse(&path, record.zarr_json.as_bytes())?
            .geometry()
            .cloned()
            .ok_or_else(|| {
                Error::invalid_metadata(path.as_str(), "array metadata lost its geometry")
            })?;
        let edits = changes.chunks.get(&path).unwrap_or(&empty);
        let clip = changes.clips.get(&path);
        update_array_manifest(
            repo,
            manifest,
            old_geometry.get(&path),
            &geometry,
            clip,
            edits,
        )
        .await?;
        if !edits.is_empty() {
            txlog
                .chunks
                .push((path.clone(), edits.keys().cloned().collect()));
        }
    }
    let (generation, skips, recent) = child_history(parent.id, &parent.snapshot);
    let txlog_size = rmp_serde::to_vec_named(&txlog)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    let txlog = if txlog_size <= repo.settings().txlog_inline_max_bytes {
        TxLogRef::Inline(txlog)
    } else {
        TxLogRef::Object(repo.write_txlog(&txlog).await?)
    };
    let snapshot = Snapshot {
        parent: Some(parent.id),
        generation,
        committed_at_us: now_us().max(parent.snapshot.committed_at_us + 1),
        message: message.to_string(),
        metadata_json: metadata_json.to_string(),
        nodes: nodes.into_values().collect(),
        txlog,
        skips,
        recent,
    };
    let id = repo.write_snapshot(&snapshot).await?;
    Ok((id, snapshot))
}

/// Decides whether changes made on `parent` can be re-applied on `tip`: fails with a conflict
/// naming the node or chunks when a commit between them touched the same data.
async fn check_rebase(
    repo: &Repository,
    branch: &str,
    original_base: SnapshotId,
    parent: SnapshotId,
    tip: SnapshotId,
    changes: &ResolvedChanges,
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
        let log = repo.load_txlog(&loaded.snapshot.txlog).await?;
        if let Some(detail) = find_conflict(&log, changes) {
            return Err(conflict(current, detail));
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
