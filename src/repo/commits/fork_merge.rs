//! Merging a worker's changes into the coordinator session (step 4 of `fork.rs`).
//!
//! Every change arrives as a (before, after) pair, `before` being the state in the ticket. A
//! change applies when the coordinator's state still equals `before`, is already applied when
//! it equals `after`, and conflicts otherwise (another worker, or the coordinator itself,
//! changed the same node, clip or chunk since the fork). Beyond each change alone, the rules
//! of `fork_rules.rs` compare the worker's node changes with what the coordinator did since
//! the fork (a deleted, re-created or shrunk array against chunk changes of it, nodes below a
//! deleted or replaced one), so that no chunk or node is lost and the merge order does not
//! matter. The stream is read twice: a first pass checks every change, the chunk objects it
//! refers to and the chunk coordinates against the merged metadata; only then does a second
//! pass apply anything, so a refused merge leaves the coordinator untouched. Each pass holds
//! one frame in memory at a time (and the worker's node and clip states).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};

use super::fork_rules::{Coordinator, ForkRules};
use super::identical::{describe_difference, same_document, same_edit};
use crate::error::{ConflictDetail, Error, Result};
use crate::format::changes::{Frame, FrameReader, WireChunk};
use crate::format::path::NodePath;
use crate::id::ChunkObjectId;
use crate::repo::read::loaded::lock;
use crate::repo::write::change_set::{ChangeSet, NodeEdit};
use crate::repo::write::fork::{
    check_version, fork_name, missing_header, node_edit, wire_chunk, FrameOrder,
};
use crate::repo::write::pending_chunk::PendingChunk;
use crate::repo::write::session::Session;
use crate::repo::write::spool::ChangeStream;
use crate::storage::layout;
use crate::zarr::metadata::NodeMetadata;

/// What [`Session::merge_fork`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForkMergeSummary {
    /// Node changes applied.
    pub nodes: u64,
    /// Chunk writes and deletions applied.
    pub chunks: u64,
    /// Changes the coordinator already had.
    pub already_present: u64,
    /// True when nothing needed applying: every change was already present (the same
    /// changes merged before, or empty changes).
    pub already_merged: bool,
}

impl Session {
    /// Merges a worker's changes (from [`Session::finish_fork`] on a fork of this session)
    /// into this session's uncommitted changes. All or nothing: a conflict
    /// ([`Error::ForkConflict`]: a change of something this session changed since the fork,
    /// directly or by merging another fork, that does not merge; spec/distributed.md §4.2,
    /// whose rules make the outcome independent of the order in which forks are merged), a
    /// chunk object missing from the repository, a chunk outside its array, or a stream that
    /// is not a fork of this session on its current base ([`Error::Fork`]) leaves the session
    /// unchanged. Merging the same changes twice is a
    /// no-op. Commit afterwards with [`Session::commit`].
    pub async fn merge_fork(&self, changes: &ChangeStream) -> Result<ForkMergeSummary> {
        let branch = self.inner.branch.clone().ok_or(Error::ReadOnlySession)?;
        if changes.is_ticket() {
            return Err(Error::Fork {
                reason:
                    "this is a fork ticket; merge the changes a worker returns from `finish_fork`"
                        .into(),
            });
        }
        let _gate = self.inner.write_gate.write().await;
        self.check_writable()?;
        let mut frames = changes.frames()?;
        let (fork_id, ticket) = self.check_header(&mut frames, &branch)?;
        let fork = fork_name(fork_id);
        let objects = self.check_changes(frames, &fork, ticket)?;
        self.check_objects(objects, &fork).await?;
        let mut frames = changes.frames()?;
        frames.next_frame()?;
        let mut summary = self.apply_changes(frames)?;
        summary.already_merged = summary.nodes == 0 && summary.chunks == 0;
        Ok(summary)
    }

    fn check_header<R: std::io::Read>(
        &self,
        frames: &mut FrameReader<R>,
        branch: &str,
    ) -> Result<(u128, Arc<ChangeSet>)> {
        let Some(Frame::Header {
            version,
            fork_id,
            branch: their_branch,
            base,
            ..
        }) = frames.next_frame()?
        else {
            return Err(missing_header());
        };
        check_version(version)?;
        let refuse = |reason: String| Err(Error::Fork { reason });
        let state = lock(&self.inner.state);
        let Some(issued) = state.issued_forks.get(&fork_id) else {
            return refuse(format!(
                "fork {} was not taken from this session",
                fork_name(fork_id)
            ));
        };
        if their_branch != branch {
            return refuse(format!(
                "the fork writes to branch `{their_branch}`, this session to `{branch}`"
            ));
        }
        if issued.base != base || state.base.id != base {
            return refuse(format!(
                "the fork is based on snapshot {base} but this session has moved to {} since \
                 (it committed or discarded): fork again and redo the work",
                state.base.id
            ));
        }
        Ok((fork_id, issued.ticket.clone()))
    }

    /// First pass: every change applies or is already present, and the worker's changes
    /// meet the rules of `fork_rules.rs` against what this session changed since `ticket`;
    /// returns the chunk objects referenced, with the end offset each must reach.
    fn check_changes<R: std::io::Read>(
        &self,
        mut frames: FrameReader<R>,
        fork: &str,
        ticket: Arc<ChangeSet>,
    ) -> Result<BTreeMap<ChunkObjectId, u64>> {
        let mut rules = ForkRules::new(fork, ticket);
        let conflict = |detail: ConflictDetail| Error::ForkConflict {
            fork: fork.to_string(),
            detail: Box::new(detail),
        };
        let mut order = FrameOrder::default();
        // Node states after the merge, for the chunk checks.
        let mut merged_nodes: BTreeMap<NodePath, Option<Arc<NodeMetadata>>> = BTreeMap::new();
        let mut objects: BTreeMap<ChunkObjectId, u64> = BTreeMap::new();
        while let Some(frame) = frames.next_frame()? {
            order.check(&frame)?;
            let state = lock(&self.inner.state);
            match frame {
                Frame::Node {
                    path,
                    before,
                    after,
                } => {
                    // Compared by state, not by text: the same document with its keys in
                    // another order is the same change.
                    let current = state.changes.nodes.get(&path);
                    let after = node_edit(&path, &after)?;
                    if !same_edit(current, node_edit(&path, &before)?.as_ref())
                        && !same_edit(current, after.as_ref())
                    {
                        return Err(conflict(ConflictDetail::Node {
                            path: path.to_string(),
                            reason: node_clash(current, after.as_ref()),
                        }));
                    }
                    let metadata = match &after {
                        Some(NodeEdit::Put { metadata, .. }) => Some(metadata.clone()),
                        Some(NodeEdit::Deleted) => None,
                        None => state.base.node_metadata(&path)?,
                    };
                    merged_nodes.insert(path.clone(), metadata);
                    rules.worker_node(path, after);
                }
                Frame::Clip {
                    path,
                    before,
                    after,
                } => {
                    let current = state.changes.clips.get(&path);
                    if current != before.as_ref() && current != after.as_ref() {
                        return Err(conflict(ConflictDetail::Node {
                            path: path.to_string(),
                            reason: "the fork and this session both shrank the array".into(),
                        }));
                    }
                    rules.worker_clip(path, after);
                }
                Frame::Chunks { path, changes } => {
                    let metadata = match merged_nodes.get(&path) {
                        Some(m) => m.clone(),
                        None => match state.changes.nodes.get(&path) {
                            Some(NodeEdit::Put { metadata, .. }) => Some(metadata.clone()),
                            Some(NodeEdit::Deleted) => None,
                            None => state.base.node_metadata(&path)?,
                        },
                    };
                    let geometry = metadata.as_ref().and_then(|m| m.geometry());
                    let edits = state.changes.chunks.get(&path);
                    // The coordinator's state of every chunk the frame changes. A chunk it
                    // wrote after the fork is still packed: it equals no state of the fork's,
                    // so a change of it is a clash.
                    let mut currents = Vec::with_capacity(changes.len());
                    let (mut pending, mut present) = (Vec::new(), Vec::new());
                    for change in &changes {
                        let current = match edits {
                            Some(e) => e.get(&change.coord)?,
                            None => None,
                        };
                        let current = wire_chunk(current.as_ref()).ok();
                        if current.as_ref() == Some(&change.after) {
                            present.push(change.coord.clone());
                        } else {
                            pending.push(change.coord.clone());
                        }
                        currents.push(current);
                    }
                    let now = Coordinator {
                        base: &state.base,
                        changes: &state.changes,
                    };
                    rules.check_chunks(now, &path, &pending, present)?;
                    let mut clashes = Vec::new();
                    for (change, current) in changes.into_iter().zip(currents) {
                        if change.after != WireChunk::Unchanged {
                            match geometry {
                                Some(g) if g.contains_chunk(&change.coord) => {}
                                _ => {
                                    return Err(Error::Fork {
                                        reason: format!(
                                            "the fork changes chunk {:?} of `{path}`, which is not a chunk of an array after the merge",
                                            change.coord
                                        ),
                                    })
                                }
                            }
                        }
                        if current.as_ref() != Some(&change.before)
                            && current.as_ref() != Some(&change.after)
                        {
                            clashes.push(change.coord);
                            continue;
                        }
                        if let WireChunk::Native {
                            object,
                            offset,
                            length,
                        } = change.after
                        {
                            let end = offset.saturating_add(length);
                            let slot = objects.entry(object).or_default();
                            *slot = (*slot).max(end);
                        }
                    }
                    if !clashes.is_empty() {
                        return Err(conflict(ConflictDetail::Chunks {
                            path: path.to_string(),
                            coords: clashes,
                        }));
                    }
                }
                Frame::Header { .. } | Frame::End { .. } => {
                    unreachable!("rejected by the order check")
                }
            }
        }
        let state = lock(&self.inner.state);
        rules.finish(Coordinator {
            base: &state.base,
            changes: &state.changes,
        })?;
        Ok(objects)
    }

    /// Every chunk object the fork refers to exists and is long enough.
    async fn check_objects(&self, objects: BTreeMap<ChunkObjectId, u64>, fork: &str) -> Result<()> {
        let storage = self.inner.repo.storage().clone();
        let concurrency = self.inner.repo.settings().io_concurrency.max(1);
        futures::stream::iter(objects)
            .map(|(object, end)| {
                let storage = storage.clone();
                async move {
                    let key = layout::chunk_object_key(&object);
                    match storage.head(&key).await? {
                        Some(size) if size >= end => Ok(()),
                        Some(size) => Err(Error::Fork {
                            reason: format!(
                                "chunk object {key} referenced by fork {fork} has {size} bytes, but its chunks reach byte {end}"
                            ),
                        }),
                        None => Err(Error::Fork {
                            reason: format!(
                                "chunk object {key} referenced by fork {fork} is not in the repository (did the worker write to another repository?)"
                            ),
                        }),
                    }
                }
            })
            .buffer_unordered(concurrency)
            .try_collect::<Vec<()>>()
            .await
            .map(|_| ())
    }

    /// Second pass: applies every change (all were checked).
    fn apply_changes<R: std::io::Read>(
        &self,
        mut frames: FrameReader<R>,
    ) -> Result<ForkMergeSummary> {
        let mut summary = ForkMergeSummary::default();
        let settings = self.inner.repo.settings();
        // Applied to a copy (cheap: frozen runs are shared) that replaces the session's
        // changes only once the whole stream was applied, so a failure part-way (a stream
        // file changed between the passes, a spill error) leaves the session as it was. The
        // caller holds the write gate: nothing else changes the session meanwhile.
        let mut copy = lock(&self.inner.state).changes.clone();
        while let Some(frame) = frames.next_frame()? {
            let changes = &mut copy;
            match frame {
                Frame::Node { path, after, .. } => {
                    let after = node_edit(&path, &after)?;
                    if same_edit(changes.nodes.get(&path), after.as_ref()) {
                        summary.already_present += 1;
                        continue;
                    }
                    match after {
                        Some(edit) => changes.nodes.insert(path, edit),
                        None => changes.nodes.remove(&path),
                    };
                    summary.nodes += 1;
                }
                Frame::Clip { path, after, .. } => match after {
                    Some(clip) => {
                        changes.clips.insert(path, clip);
                    }
                    None => {
                        changes.clips.remove(&path);
                    }
                },
                Frame::Chunks {
                    path,
                    changes: list,
                } => {
                    let edits = changes.chunks.entry(path.clone()).or_default();
                    for change in list {
                        let current = edits.get(&change.coord)?;
                        if wire_chunk(current.as_ref()).ok().as_ref() == Some(&change.after) {
                            summary.already_present += 1;
                            continue;
                        }
                        match change.after.to_edit() {
                            Some(edit) => {
                                edits.insert(change.coord, edit.map(PendingChunk::Ready));
                            }
                            None => edits.remove(&change.coord)?,
                        }
                        summary.chunks += 1;
                    }
                    let state = lock(&self.inner.state);
                    changes.maintain(
                        &path,
                        &state.packs,
                        settings.spool_memory_bytes,
                        settings.spool_dir.as_deref(),
                    )?;
                }
                Frame::Header { .. } | Frame::End { .. } => {}
            }
        }
        lock(&self.inner.state).changes = copy;
        Ok(summary)
    }
}

/// Why a worker's change of a node clashes with the coordinator's (`current`): both changed
/// it, and when both put a document, how the two differ.
fn node_clash(current: Option<&NodeEdit>, theirs: Option<&NodeEdit>) -> String {
    let both = "the fork and this session both changed its metadata";
    match (current, theirs) {
        (Some(NodeEdit::Put { metadata: ours, .. }), Some(NodeEdit::Put { metadata, .. }))
            if !same_document(ours, metadata) =>
        {
            format!(
                "{both}: {}",
                describe_difference(ours, metadata, "this session", "the fork")
            )
        }
        (Some(NodeEdit::Put { .. }), Some(NodeEdit::Put { .. })) => format!(
            "{both} to the same document, but only one of them re-created the node (dropping \
             its chunks)"
        ),
        _ => both.into(),
    }
}
