//! Distributed writes: a writable session (the coordinator) forks into worker sessions that
//! may run in other processes or on other machines. Each worker writes its chunks straight to
//! the repository and sends back its change set; the coordinator merges them and commits once.
//!
//! 1. `coordinator.fork()` returns a ticket: the branch, the base snapshot and the
//!    coordinator's uncommitted changes (packs written first, so every chunk has its final
//!    location).
//! 2. `repository.open_fork(&ticket)` gives the worker a session that sees exactly what the
//!    coordinator saw. It takes any change but cannot commit.
//! 3. `worker.finish_fork()` writes the worker's packs and returns what it changed relative to
//!    the ticket, each change as a (before, after) pair.
//! 4. `coordinator.merge_fork(&changes)` applies them (see `repo/commits/fork_merge.rs`), then
//!    `coordinator.commit(..)` publishes everything in one commit.
//!
//! Tickets and changes are [`ChangeStream`]s, spooled to a local file past
//! [`RepositorySettings::spool_memory_bytes`](crate::RepositorySettings).

use std::collections::BTreeSet;

use super::change_set::{ArrayEdits, ChangeSet, NodeEdit};
use super::fork_state::{ForkOrigin, IssuedFork};
use super::pending_chunk::settled;
use super::pending_chunk::PendingChunk;
use super::session::Session;
use super::spool::ChangeStream;
use crate::error::{Error, Result};
use crate::format::changes::{
    ChunkChange, Frame, FrameWriter, StreamKind, WireChunk, WireNode, CHANGE_STREAM_VERSION,
    CHUNKS_PER_FRAME,
};
use crate::format::manifest::ChunkCoord;
use crate::format::path::NodePath;
use crate::repo::read::loaded::lock;
use crate::repo::read::repository::Repository;
use crate::zarr::metadata::NodeMetadata;

/// A fork id as shown in messages.
pub(crate) fn fork_name(id: u128) -> String {
    format!("{id:032x}")
}

impl Session {
    /// Forks this writable session for a worker: returns a ticket to send to it (see
    /// [`Repository::open_fork`]). Any number of forks may be taken; each worker's changes
    /// come back through [`Session::merge_fork`], and only this session commits.
    ///
    /// Pending packs are written first, so the ticket refers only to stored chunks. Forks are
    /// valid until this session commits or discards its changes (its base moves on); until
    /// then the session keeps each fork's ticket changes for the merge rules (their chunk
    /// edits frozen first, so the copy shares them rather than duplicating them).
    pub async fn fork(&self) -> Result<ChangeStream> {
        let branch = self.inner.branch.clone().ok_or(Error::ReadOnlySession)?;
        let _gate = self.inner.write_gate.write().await;
        self.check_writable()?;
        self.settle_packs().await?;
        self.inner.uploads.flush(&self.inner.repo).await?;
        let id: u128 = rand::random();
        let settings = self.inner.repo.settings();
        let mut state = lock(&self.inner.state);
        let base = state.base.id;
        // The merge compares the worker's changes with what this session changed since the
        // fork, so it keeps the ticket's changes (frozen first: the copy shares their runs).
        let state_ref = &mut *state;
        state_ref.changes.freeze_all(
            &state_ref.packs,
            settings.spool_memory_bytes,
            settings.spool_dir.as_deref(),
        )?;
        let ticket = std::sync::Arc::new(state.changes.clone());
        state.issued_forks.insert(id, IssuedFork { base, ticket });
        let header = Frame::Header {
            version: CHANGE_STREAM_VERSION,
            kind: StreamKind::Ticket,
            fork_id: id,
            branch,
            base,
            base_seq: state.base_seq,
        };
        let empty = ChangeSet::default();
        ChangeStream::build(
            StreamKind::Ticket,
            settings.spool_memory_bytes,
            settings.spool_dir.as_deref(),
            |out| write_diff(out, &header, &empty, &state.changes),
        )
    }

    /// The changes this worker session made since its ticket, for the coordinator's
    /// [`Session::merge_fork`]. Pending packs are written first. The session keeps its
    /// changes: calling this again returns them again (plus any made since).
    pub async fn finish_fork(&self) -> Result<ChangeStream> {
        let branch = self.inner.branch.clone().ok_or(Error::ReadOnlySession)?;
        let _gate = self.inner.write_gate.write().await;
        self.check_writable()?;
        self.settle_packs().await?;
        self.inner.uploads.flush(&self.inner.repo).await?;
        let settings = self.inner.repo.settings();
        let state = lock(&self.inner.state);
        let Some(origin) = &state.fork else {
            return Err(Error::Fork {
                reason: "this session is not a fork: commit it instead".into(),
            });
        };
        let header = Frame::Header {
            version: CHANGE_STREAM_VERSION,
            kind: StreamKind::WorkerChanges,
            fork_id: origin.id,
            branch,
            base: state.base.id,
            base_seq: state.base_seq,
        };
        ChangeStream::build(
            StreamKind::WorkerChanges,
            settings.spool_memory_bytes,
            settings.spool_dir.as_deref(),
            |out| write_diff(out, &header, &origin.inherited, &state.changes),
        )
    }

    /// True for worker sessions opened with [`Repository::open_fork`].
    pub fn is_fork(&self) -> bool {
        lock(&self.inner.state).fork.is_some()
    }
}

impl Repository {
    /// Opens a worker session from a fork ticket (see [`Session::fork`]). The session sees the
    /// coordinator's base snapshot and uncommitted changes, takes any change, and hands its
    /// own back with [`Session::finish_fork`]; [`Session::commit`] is refused.
    pub async fn open_fork(&self, ticket: &ChangeStream) -> Result<Session> {
        if !ticket.is_ticket() {
            return Err(Error::Fork {
                reason: "the stream holds a worker's changes, not a fork ticket".into(),
            });
        }
        let mut frames = ticket.frames()?;
        let (id, branch, base, base_seq) = match frames.next_frame()? {
            Some(Frame::Header {
                version,
                fork_id,
                branch,
                base,
                base_seq,
                ..
            }) => {
                check_version(version)?;
                (fork_id, branch, base, base_seq)
            }
            _ => return Err(missing_header()),
        };
        let session = self.session_at(base, Some(branch), base_seq).await?;
        let mut changes = ChangeSet::default();
        let mut order = FrameOrder::default();
        while let Some(frame) = frames.next_frame()? {
            order.check(&frame)?;
            match frame {
                Frame::Node { path, after, .. } => {
                    if let Some(edit) = node_edit(&path, &after)? {
                        changes.nodes.insert(path, edit);
                    }
                }
                Frame::Clip { path, after, .. } => {
                    if let Some(clip) = after {
                        changes.clips.insert(path, clip);
                    }
                }
                Frame::Chunks {
                    path,
                    changes: list,
                } => {
                    let edits = changes.chunks.entry(path.clone()).or_default();
                    for change in list {
                        if let Some(edit) = change.after.to_edit() {
                            edits.insert(change.coord, edit.map(PendingChunk::Ready));
                        }
                    }
                    let settings = self.settings();
                    changes.maintain(
                        &path,
                        &super::packs::Packs::default(),
                        settings.spool_memory_bytes,
                        settings.spool_dir.as_deref(),
                    )?;
                }
                Frame::Header { .. } | Frame::End { .. } => return Err(misplaced()),
            }
        }
        {
            let mut state = lock(&session.inner.state);
            state.fork = Some(ForkOrigin {
                id,
                inherited: changes.clone(),
            });
            state.changes = changes;
        }
        Ok(session)
    }
}

/// Writes the header, then every difference between `before` and `after`: nodes, clips,
/// then chunks array by array in coordinate order.
fn write_diff<W: std::io::Write>(
    out: &mut FrameWriter<W>,
    header: &Frame,
    before: &ChangeSet,
    after: &ChangeSet,
) -> Result<()> {
    out.write(header)?;
    let paths: BTreeSet<&NodePath> = before.nodes.keys().chain(after.nodes.keys()).collect();
    for path in paths {
        let b = wire_node(before.nodes.get(path));
        let a = wire_node(after.nodes.get(path));
        if a != b {
            out.write(&Frame::Node {
                path: path.clone(),
                before: b,
                after: a,
            })?;
        }
    }
    let paths: BTreeSet<&NodePath> = before.clips.keys().chain(after.clips.keys()).collect();
    for path in paths {
        let (b, a) = (before.clips.get(path), after.clips.get(path));
        if a != b {
            out.write(&Frame::Clip {
                path: path.clone(),
                before: b.cloned(),
                after: a.cloned(),
            })?;
        }
    }
    let empty = ArrayEdits::default();
    let paths: BTreeSet<&NodePath> = before.chunks.keys().chain(after.chunks.keys()).collect();
    for path in paths {
        let b = before.chunks.get(path).unwrap_or(&empty);
        let a = after.chunks.get(path).unwrap_or(&empty);
        let mut batch = Vec::new();
        for (coord, eb, ea) in diff_edits(b, a) {
            let (eb, ea) = (eb?, ea?);
            if eb == ea {
                continue;
            }
            batch.push(ChunkChange {
                coord,
                before: wire_chunk(eb.as_ref())?,
                after: wire_chunk(ea.as_ref())?,
            });
            if batch.len() == CHUNKS_PER_FRAME {
                out.write(&Frame::Chunks {
                    path: path.clone(),
                    changes: std::mem::take(&mut batch),
                })?;
            }
        }
        if !batch.is_empty() {
            out.write(&Frame::Chunks {
                path: path.clone(),
                changes: batch,
            })?;
        }
    }
    Ok(())
}

/// Both sides' edits at every coordinate either side has, in order.
#[allow(clippy::type_complexity)]
fn diff_edits<'a>(
    before: &'a ArrayEdits,
    after: &'a ArrayEdits,
) -> impl Iterator<
    Item = (
        ChunkCoord,
        Result<Option<Option<PendingChunk>>>,
        Result<Option<Option<PendingChunk>>>,
    ),
> + 'a {
    let mut b = before.iter().peekable();
    let mut a = after.iter().peekable();
    std::iter::from_fn(move || {
        let order = match (b.peek(), a.peek()) {
            (None, None) => return None,
            (Some(Err(_)), _) => {
                let e = b.next()?.err()?;
                return Some((Vec::new(), Err(e), Ok(None)));
            }
            (_, Some(Err(_))) => {
                let e = a.next()?.err()?;
                return Some((Vec::new(), Ok(None), Err(e)));
            }
            (Some(Ok((cb, _))), Some(Ok((ca, _)))) => cb.cmp(ca),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
        };
        let (coord, eb, ea) = match order {
            std::cmp::Ordering::Less => {
                let (c, e) = b.next()?.ok()?;
                (c, Some(e), None)
            }
            std::cmp::Ordering::Greater => {
                let (c, e) = a.next()?.ok()?;
                (c, None, Some(e))
            }
            std::cmp::Ordering::Equal => {
                let (c, e1) = b.next()?.ok()?;
                let (_, e2) = a.next()?.ok()?;
                (c, Some(e1), Some(e2))
            }
        };
        Some((coord, Ok(eb), Ok(ea)))
    })
}

/// The wire state of a node edit (`None`: no edit).
pub(crate) fn wire_node(edit: Option<&NodeEdit>) -> WireNode {
    match edit {
        None => WireNode::Unchanged,
        Some(NodeEdit::Deleted) => WireNode::Deleted,
        Some(NodeEdit::Put { metadata, fresh }) => WireNode::Put {
            zarr_json: metadata.to_json(),
            fresh: *fresh,
        },
    }
}

/// The wire state of a settled chunk edit (`None`: no edit).
pub(crate) fn wire_chunk(edit: Option<&Option<PendingChunk>>) -> Result<WireChunk> {
    Ok(match edit {
        None => WireChunk::Unchanged,
        Some(e) => WireChunk::from_edit(settled(e.as_ref())?.as_ref()),
    })
}

/// The node edit a wire state stands for, validating its metadata.
pub(crate) fn node_edit(path: &NodePath, state: &WireNode) -> Result<Option<NodeEdit>> {
    Ok(match state {
        WireNode::Unchanged => None,
        WireNode::Deleted => Some(NodeEdit::Deleted),
        WireNode::Put { zarr_json, fresh } => Some(NodeEdit::Put {
            metadata: std::sync::Arc::new(NodeMetadata::parse(path, zarr_json.as_bytes())?),
            fresh: *fresh,
        }),
    })
}

pub(crate) fn check_version(version: u16) -> Result<()> {
    if version != CHANGE_STREAM_VERSION {
        return Err(Error::Fork {
            reason: format!(
                "the stream has version {version}; this floe reads version {CHANGE_STREAM_VERSION}"
            ),
        });
    }
    Ok(())
}

pub(crate) fn missing_header() -> Error {
    Error::corrupt("<change stream>", "the stream does not start with a header")
}

pub(crate) fn misplaced() -> Error {
    Error::corrupt("<change stream>", "a header or end frame inside the stream")
}

/// Enforces the frame order writers produce: nodes, then clips, then chunks.
#[derive(Default)]
pub(crate) struct FrameOrder {
    stage: u8,
}

impl FrameOrder {
    pub(crate) fn check(&mut self, frame: &Frame) -> Result<()> {
        let stage = match frame {
            Frame::Node { .. } => 1,
            Frame::Clip { .. } => 2,
            Frame::Chunks { .. } => 3,
            Frame::Header { .. } | Frame::End { .. } => return Err(misplaced()),
        };
        if stage < self.stage {
            return Err(Error::corrupt(
                "<change stream>",
                "frames out of order (nodes, clips, then chunks)",
            ));
        }
        self.stage = stage;
        Ok(())
    }
}
