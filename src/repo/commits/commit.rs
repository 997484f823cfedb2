//! Committing a session: build the new snapshot, then move the branch; rebase when another
//! writer got there first and the changes do not overlap.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::conflicts::check_rebase;
use super::identical::same_document;
use super::manifest_update::update_array_manifest;
use crate::error::{Error, Result};
use crate::format::manifest::ChunkCoord;
use crate::format::manifest::ChunkRef;
use crate::format::now_us;
use crate::format::path::NodePath;
use crate::format::snapshot::{ArrayManifest, NodeKind, NodeRecord, Snapshot};
use crate::format::txlog::{CoordList, NodeChange, TxLog};
use crate::id::ChunkObjectId;
use crate::id::SnapshotId;
use crate::repo::history::gc_guard::UPLOAD_AGE_NEEDING_CHECK;
use crate::repo::history::index::child_history;
use crate::repo::history::refs::AdvanceOutcome;
use crate::repo::read::loaded::{lock, LoadedSnapshot};
use crate::repo::read::repository::Repository;
use crate::repo::write::change_set::{NodeEdit, ResolvedChanges};
use crate::repo::write::session::{Session, UnknownOutcome};
use crate::repo::PendingChunk;
use crate::zarr::metadata::NodeMetadata;

impl Session {
    /// Commits the session's changes to its branch and returns the new snapshot id.
    ///
    /// When the branch record's write fails in a way that leaves the outcome unknown, the
    /// error is [`Error::CommitOutcomeUnknown`] and nothing is deleted. The session then
    /// refuses further changes ([`Error::UnsettledCommit`]) until `commit` is called again:
    /// that call first checks whether the attempt landed (and returns its id if so) and
    /// otherwise commits the same changes again, so a retry never duplicates a commit nor
    /// conflicts with itself. [`Session::discard`] drops the changes instead.
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
        if lock(&self.inner.state).fork.is_some() {
            return Err(Error::CommitFromFork);
        }
        if let Some(landed) = self.settle_unknown_outcome(&branch).await? {
            return Ok(landed);
        }
        let mut changes = self.resolved_changes().await?;
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
            // The chunk objects still being stored and the snapshot's objects are written
            // together; the branch moves only once both are stored.
            let (built, stored) = tokio::join!(
                build_snapshot(repo, &parent, &changes, message, &metadata_json),
                self.inner.uploads.flush(repo)
            );
            stored?;
            let (id, snapshot) = built?;
            // A long session's uploads may have been condemned as orphans by a full GC run:
            // publish only if they were not (spec/algorithms.md §14.1).
            let age = lock(&self.inner.state).changes_since.elapsed();
            if age >= UPLOAD_AGE_NEEDING_CHECK {
                repo.refuse_collected_uploads(&uploaded_objects(&changes)?)
                    .await?;
            }
            let outcome = match repo
                .try_advance_branch(
                    &branch,
                    parent_seq + 1,
                    Some(id),
                    Some((snapshot.generation, &snapshot.pages)),
                )
                .await
            {
                Ok(outcome) => outcome,
                Err(e) => {
                    // The record may or may not have landed. Remember the attempt: the next
                    // commit settles it first, so it never conflicts with itself.
                    lock(&self.inner.state)
                        .unknown_outcomes
                        .push(UnknownOutcome {
                            seq: parent_seq + 1,
                            snapshot: Arc::new(LoadedSnapshot::new(id, snapshot)),
                        });
                    return Err(Error::CommitOutcomeUnknown {
                        branch: branch.clone(),
                        snapshot: id.to_string(),
                        reason: e.to_string(),
                    });
                }
            };
            match outcome {
                AdvanceOutcome::Landed => {
                    self.moved_onto(id, snapshot, parent_seq + 1);
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
                    tokio::time::sleep(settings.commit_backoff(attempt)).await;
                    let (tip_seq, tip) = repo.branch_head(&branch).await?;
                    let ours: Vec<SnapshotId> = {
                        let state = lock(&self.inner.state);
                        let unsettled = state.unknown_outcomes.iter().map(|u| u.snapshot.id);
                        unsettled
                            .chain(state.abandoned_outcomes.iter().copied())
                            .collect()
                    };
                    let merged = check_rebase(
                        repo,
                        &branch,
                        original_base,
                        parent.id,
                        tip,
                        &changes,
                        &ours,
                    )
                    .await?;
                    // Nodes both sides changed compatibly (appends, attribute keys, the same
                    // change) are committed with their merged documents, as updates of the
                    // tip's nodes; the session's own changes stay as they are until the
                    // commit lands.
                    for (path, document) in merged {
                        if let Some(NodeEdit::Put { metadata, fresh }) =
                            changes.nodes.get_mut(&path)
                        {
                            *metadata = document;
                            *fresh = false;
                        }
                    }
                    parent = repo.load_snapshot(&tip).await?;
                    parent_seq = tip_seq;
                }
            }
        }
    }

    /// After the session's changes landed as snapshot `id` (record `seq` of its branch):
    /// the session continues from there with no changes.
    pub(crate) fn moved_onto(&self, id: SnapshotId, snapshot: Snapshot, seq: u64) {
        let loaded = Arc::new(LoadedSnapshot::new(id, snapshot));
        self.inner.repo.cache_snapshot(loaded.clone());
        let mut state = lock(&self.inner.state);
        state.base = loaded;
        state.base_seq = seq;
        state.changes = Default::default();
        state.packs = Default::default();
        state.unknown_outcomes.clear();
        state.issued_forks.clear();
        state.changes_since = std::time::Instant::now();
    }

    /// Settles commits of this session whose outcome was unknown. Writes are refused while an
    /// outcome is unknown, so the session's changes are exactly those of its last attempt: if
    /// an attempt landed, the session moves onto it and returns its id (the caller is retrying
    /// that very commit); otherwise the changes are committed as usual.
    async fn settle_unknown_outcome(&self, branch: &str) -> Result<Option<SnapshotId>> {
        let attempts = std::mem::take(&mut lock(&self.inner.state).unknown_outcomes);
        // Attempts whose record slot is still empty: their write may yet land.
        let mut still_open = Vec::new();
        for attempt in attempts.iter().rev() {
            let record = match self
                .inner
                .repo
                .read_branch_record(branch, attempt.seq)
                .await
            {
                Ok(record) => record,
                Err(e) => {
                    lock(&self.inner.state).unknown_outcomes = attempts;
                    return Err(e);
                }
            };
            match record {
                None => {
                    still_open.push(attempt.clone_shallow());
                    continue;
                }
                // Another record took the slot: records are never replaced, so this attempt
                // can never land. Forgetting it keeps the list (read on every commit) short.
                Some(r) if r.snapshot != Some(attempt.snapshot.id) => continue,
                Some(_) => {}
            }
            self.inner.repo.cache_snapshot(attempt.snapshot.clone());
            let mut state = lock(&self.inner.state);
            state.base = attempt.snapshot.clone();
            state.base_seq = attempt.seq;
            state.changes = Default::default();
            state.packs = Default::default();
            // Attempts aimed at later records could still land; earlier ones cannot.
            state.unknown_outcomes = attempts
                .iter()
                .filter(|a| a.seq > attempt.seq)
                .map(UnknownOutcome::clone_shallow)
                .collect();
            return Ok(Some(attempt.snapshot.id));
        }
        // None landed at its slot; those whose slot is empty may still land later (rebase
        // recognises them then).
        still_open.reverse();
        lock(&self.inner.state).unknown_outcomes = still_open;
        Ok(None)
    }

    /// Hands pending packs to the uploads and returns the change set with every chunk location
    /// resolved (the commit waits for the uploads). Cheap: the arrays' frozen edit runs are
    /// shared, not copied.
    pub(crate) async fn resolved_changes(&self) -> Result<ResolvedChanges> {
        self.settle_packs().await?;
        let state = lock(&self.inner.state);
        Ok(ResolvedChanges {
            nodes: state.changes.nodes.clone(),
            chunks: state.changes.chunks.clone(),
            clips: state.changes.clips.clone(),
        })
    }

    /// Hands every pack of the session (sealing the open one) to the background uploads and
    /// rewrites packed chunk edits to their final locations (callers wait for the uploads,
    /// [`crate::repo::write::uploads::Uploads::flush`], before anything refers to them from outside), so every chunk edit is [`PendingChunk::Ready`] or a
    /// deletion. Callers hold the write gate exclusively.
    pub(crate) async fn settle_packs(&self) -> Result<()> {
        {
            let mut state = lock(&self.inner.state);
            state.packs.reclaim_abandoned();
            state.packs.seal_open();
        }
        self.write_sealed_packs().await?;
        let mut state = lock(&self.inner.state);
        let state = &mut *state;
        for edits in state.changes.chunks.values_mut() {
            edits.settle(&state.packs)?;
        }
        Ok(())
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
    let (snapshot, _) = assemble_snapshot(repo, parent, changes, message, metadata_json).await?;
    let id = repo.write_snapshot(&snapshot).await?;
    Ok((id, snapshot))
}

/// The snapshot that applies `changes` on top of `parent`, and its transaction log, not
/// written yet (the manifest shards and a large transaction log are).
pub(crate) async fn assemble_snapshot(
    repo: &Repository,
    parent: &LoadedSnapshot,
    changes: &ResolvedChanges,
    message: &str,
    metadata_json: &str,
) -> Result<(Snapshot, TxLog)> {
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
                if unchanged_by(parent, path, metadata, *fresh, changes)? {
                    continue;
                }
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
    let empty = crate::repo::write::change_set::ArrayEdits::default();
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
            // Edits outside the new grid were dropped (the array shrank after them): they
            // changed nothing, and listing them would only make other writers conflict.
            let mut coords = CoordList::default();
            let mut previous: Option<ChunkCoord> = None;
            for edit in edits.iter() {
                let (c, _) = edit?;
                if !geometry.contains_chunk(&c) {
                    continue;
                }
                coords.push(&c, previous.as_deref());
                previous = Some(c);
            }
            if !coords.is_empty() {
                txlog.chunks.push((path.clone(), coords));
            }
        }
    }
    let history = child_history(parent.id, &parent.snapshot);
    let log = txlog.clone();
    let txlog = repo.txlog_ref(txlog).await?;
    let snapshot = Snapshot {
        parent: Some(parent.id),
        generation: history.generation,
        committed_at_us: now_us().max(parent.snapshot.committed_at_us + 1),
        message: message.to_string(),
        metadata_json: metadata_json.to_string(),
        nodes: nodes.into_values().collect(),
        txlog,
        skips: history.skips,
        recent: history.recent,
        pages: history.pages,
        merged: None,
        rewritten_from: None,
    };
    Ok((snapshot, log))
}

/// True when putting `metadata` at `path` changes nothing on `parent`: the node is there with
/// the same document ([`same_document`]) and the put neither starts it afresh nor comes with
/// a clip. Such a put is left out of the snapshot and the transaction log, so that later
/// writers do not see a change where there is none (a rebased identical change, say).
fn unchanged_by(
    parent: &LoadedSnapshot,
    path: &NodePath,
    metadata: &NodeMetadata,
    fresh: bool,
    changes: &ResolvedChanges,
) -> Result<bool> {
    if fresh || changes.clips.contains_key(path) {
        return Ok(false);
    }
    Ok(parent
        .node_metadata(path)?
        .is_some_and(|current| same_document(&current, metadata)))
}

/// The chunk objects the changes name (the session's and its forks' uploads).
pub(crate) fn uploaded_objects(changes: &ResolvedChanges) -> Result<Vec<ChunkObjectId>> {
    let mut out = std::collections::BTreeSet::new();
    for edits in changes.chunks.values() {
        for edit in edits.iter() {
            if let (_, Some(PendingChunk::Ready(ChunkRef::Native { object, .. }))) = edit? {
                out.insert(object);
            }
        }
    }
    Ok(out.into_iter().collect())
}
