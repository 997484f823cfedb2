//! The rules a worker's changes must meet beyond each change applying on its own
//! (spec/distributed.md §4.2, after the rebase rules of algorithms.md §8).
//!
//! Each node, clip and chunk change of a stream is first checked alone (`fork_merge.rs`).
//! These rules compare what the worker did to a node with what the coordinator did to it, or
//! to the nodes above or below it, since the fork (its own changes and the forks merged before,
//! told apart from the ticket's states, which the coordinator keeps for every fork it issues):
//!
//! - a change that drops an array's chunks (deleting it, re-creating it, changing its kind or
//!   rank, shrinking its chunk grid) never meets chunk changes of that array made on the other
//!   side since the fork, where they would be lost (for a shrink: outside the smaller grid);
//! - no node or chunk change lands below a node the other side deleted, replaced or created as
//!   an array since the fork, and no such change of the worker's meets changes below the node
//!   made on the coordinator's side.
//!
//! Both directions are checked, so whichever order workers are merged in, the same pairs are
//! refused. A worker whose change of a node the coordinator already holds (the same change
//! made on both sides, or merged before) agrees with it there, and nothing is checked.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::identical::same_edit;
use crate::error::{ConflictDetail, Error, Result};
use crate::format::manifest::ChunkCoord;
use crate::format::path::NodePath;
use crate::repo::read::loaded::LoadedSnapshot;
use crate::repo::write::change_set::{within_grid, ArrayEdits, ChangeSet, NodeEdit};
use crate::zarr::metadata::NodeMetadata;

/// What a refused merge can do next, ending every message of these rules.
const REDO: &str = "fork again from this session (the new ticket holds everything merged so \
                    far) and redo the fork's work there, or leave one of the two changes out";

/// Says who on the coordinator's side changed something since the fork.
const OURS: &str = "in this session since the fork (there, or by merging another fork)";

/// The coordinator's session as it stands: its base snapshot and its changes.
#[derive(Clone, Copy)]
pub(crate) struct Coordinator<'a> {
    pub(crate) base: &'a LoadedSnapshot,
    pub(crate) changes: &'a ChangeSet,
}

/// A node as one side leaves it: its edit (none: as in the base snapshot) and its clip.
#[derive(Clone, Copy)]
struct NodeState<'a> {
    edit: Option<&'a NodeEdit>,
    clip: Option<&'a ChunkCoord>,
}

impl NodeState<'_> {
    fn same(&self, other: &NodeState<'_>) -> bool {
        same_edit(self.edit, other.edit) && self.clip == other.clip
    }
}

/// What a change of a node loses of the chunk changes made to it on the other side.
enum Loss {
    /// Nothing: the node keeps its chunks.
    None,
    /// Every chunk: the node was deleted, re-created, or changed kind or rank (how).
    All(&'static str),
    /// The chunks outside this smaller chunk grid.
    OutsideGrid(Vec<u64>),
}

/// The worker's side of one merge, gathered while its stream is checked.
pub(crate) struct ForkRules {
    fork: String,
    /// The coordinator's changes when it issued the fork: the ticket's states.
    ticket: Arc<ChangeSet>,
    /// The worker's node states where its stream changes them (`None`: no edit).
    nodes: BTreeMap<NodePath, Option<NodeEdit>>,
    /// The worker's clips where its stream changes them.
    clips: BTreeMap<NodePath, Option<ChunkCoord>>,
    /// For arrays the worker put a node of: coordinates whose chunk state the coordinator
    /// already holds as the worker does (not lost when the worker's node change applies).
    present: BTreeMap<NodePath, BTreeSet<ChunkCoord>>,
}

impl ForkRules {
    /// Rules for the stream of fork `fork` (as named in messages), whose ticket held
    /// `ticket`.
    pub(crate) fn new(fork: &str, ticket: Arc<ChangeSet>) -> ForkRules {
        ForkRules {
            fork: fork.to_string(),
            ticket,
            nodes: BTreeMap::new(),
            clips: BTreeMap::new(),
            present: BTreeMap::new(),
        }
    }

    /// Records a node frame of the worker: its state of `path` is `after`.
    pub(crate) fn worker_node(&mut self, path: NodePath, after: Option<NodeEdit>) {
        self.nodes.insert(path, after);
    }

    /// Records a clip frame of the worker: its clip of `path` is `after`.
    pub(crate) fn worker_clip(&mut self, path: NodePath, after: Option<ChunkCoord>) {
        self.clips.insert(path, after);
    }

    /// Checks one chunk frame of array `path` (every node and clip frame was recorded
    /// before): `pending` are the coordinates whose change the coordinator does not hold
    /// yet, `present` the others. Fails when the coordinator deleted, replaced or shrank the
    /// array since the fork so that a pending change would land on another array or outside
    /// its grid, or replaced a node above it.
    pub(crate) fn check_chunks(
        &mut self,
        now: Coordinator<'_>,
        path: &NodePath,
        pending: &[ChunkCoord],
        present: Vec<ChunkCoord>,
    ) -> Result<()> {
        if self.nodes.contains_key(path) {
            self.present
                .entry(path.clone())
                .or_default()
                .extend(present);
        }
        let Some(first) = pending.first() else {
            return Ok(());
        };
        let (current, worker) = (current_state(now.changes, path), self.worker_state(path));
        if !current.same(&worker) {
            match loss(now.base, path, self.ticket_state(path), current)? {
                Loss::None => {}
                Loss::All(how) => {
                    return Err(self.conflict(
                        path,
                        format!("it was {how} {OURS}, but the fork changed its chunk {first:?}"),
                    ))
                }
                Loss::OutsideGrid(grid) => {
                    if let Some(outside) = pending.iter().find(|c| !within_grid(c, &grid)) {
                        return Err(self.conflict(
                            path,
                            format!(
                                "it was shrunk to a chunk grid of {grid:?} {OURS}, but the fork \
                                 changed its chunk {outside:?} outside it"
                            ),
                        ));
                    }
                }
            }
        }
        if let Some((above, how)) = self.replaced_above(now, path)? {
            return Err(self.conflict(
                path,
                format!(
                    "its ancestor `{above}` was {how} {OURS}, so the fork's chunk changes would \
                     land below it"
                ),
            ));
        }
        Ok(())
    }

    /// Checks the worker's node and clip changes, once the whole stream was read: a change
    /// that drops chunks the coordinator changed since the fork, lands below a node the
    /// coordinator replaced, or removes nodes the coordinator changed below it, fails.
    pub(crate) fn finish(&self, now: Coordinator<'_>) -> Result<()> {
        let paths: BTreeSet<&NodePath> = self.nodes.keys().chain(self.clips.keys()).collect();
        for path in paths {
            let (current, worker) = (current_state(now.changes, path), self.worker_state(path));
            if current.same(&worker) {
                continue;
            }
            let ticket = self.ticket_state(path);
            let (how, grid) = match loss(now.base, path, ticket, worker)? {
                Loss::None => (String::new(), None),
                Loss::All(how) => (how.to_string(), None),
                Loss::OutsideGrid(grid) => {
                    (format!("shrunk to a chunk grid of {grid:?}"), Some(grid))
                }
            };
            if !how.is_empty() {
                if let Some(lost) = self.lost_edit(now, path, grid.as_deref())? {
                    return Err(self.conflict(
                        path,
                        format!(
                            "it was {how} by the fork, but its chunk {lost:?} changed {OURS} and \
                             would be lost"
                        ),
                    ));
                }
            }
            if let Some((above, how)) = self.replaced_above(now, path)? {
                return Err(self.conflict(
                    path,
                    format!(
                        "its ancestor `{above}` was {how} {OURS}, so the fork's change would land \
                         below it"
                    ),
                ));
            }
            if let Some(how) = removes_below(now.base, path, ticket, worker)? {
                if let Some(below) = self.changed_below(now, path) {
                    return Err(self.conflict(
                        path,
                        format!("it was {how} by the fork, but `{below}` below it changed {OURS}"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn conflict(&self, path: &NodePath, reason: String) -> Error {
        Error::ForkConflict {
            fork: self.fork.clone(),
            detail: Box::new(ConflictDetail::Node {
                path: path.to_string(),
                reason: format!("{reason}: {REDO}"),
            }),
        }
    }

    fn ticket_state(&self, path: &NodePath) -> NodeState<'_> {
        current_state(&self.ticket, path)
    }

    fn worker_state(&self, path: &NodePath) -> NodeState<'_> {
        NodeState {
            edit: match self.nodes.get(path) {
                Some(after) => after.as_ref(),
                None => self.ticket.nodes.get(path),
            },
            clip: match self.clips.get(path) {
                Some(after) => after.as_ref(),
                None => self.ticket.clips.get(path),
            },
        }
    }

    /// The first coordinate (outside `grid` when given) whose chunk edit the coordinator
    /// changed since the fork and the worker does not hold as the coordinator does.
    fn lost_edit(
        &self,
        now: Coordinator<'_>,
        path: &NodePath,
        grid: Option<&[u64]>,
    ) -> Result<Option<ChunkCoord>> {
        let empty = ArrayEdits::default();
        let current = now.changes.chunks.get(path).unwrap_or(&empty);
        let ticket = self.ticket.chunks.get(path).unwrap_or(&empty);
        let present = self.present.get(path);
        current.first_difference(ticket, &|c: &[u64]| {
            grid.is_none_or(|g| !within_grid(c, g)) && !present.is_some_and(|p| p.contains(c))
        })
    }

    /// The nearest strict ancestor of `path` that the coordinator deleted, replaced or
    /// created as an array since the fork (unless the worker did the same), and how.
    fn replaced_above(
        &self,
        now: Coordinator<'_>,
        path: &NodePath,
    ) -> Result<Option<(NodePath, &'static str)>> {
        let mut above = path.parent();
        while let Some(q) = above {
            let current = current_state(now.changes, &q);
            if !same_edit(current.edit, self.worker_state(&q).edit) {
                if let Some(how) = removes_below(now.base, &q, self.ticket_state(&q), current)? {
                    return Ok(Some((q, how)));
                }
            }
            above = q.parent();
        }
        Ok(None)
    }

    /// A node strictly below `path` that the coordinator changed since the fork and the
    /// worker's stream does not mention.
    fn changed_below(&self, now: Coordinator<'_>, path: &NodePath) -> Option<NodePath> {
        let below: BTreeSet<&NodePath> = now
            .changes
            .nodes
            .keys()
            .chain(self.ticket.nodes.keys())
            .filter(|q| q.is_within(path) && *q != path)
            .collect();
        below
            .into_iter()
            .find(|q| {
                !self.nodes.contains_key(*q)
                    && !same_edit(now.changes.nodes.get(*q), self.ticket.nodes.get(*q))
            })
            .cloned()
    }
}

fn current_state<'a>(changes: &'a ChangeSet, path: &NodePath) -> NodeState<'a> {
    NodeState {
        edit: changes.nodes.get(path),
        clip: changes.clips.get(path),
    }
}

/// The node an edit leaves at `path` over the base snapshot, and whether it starts without
/// the base's chunks (`fresh`); `None` when there is none.
fn node(
    base: &LoadedSnapshot,
    path: &NodePath,
    edit: Option<&NodeEdit>,
) -> Result<Option<(Arc<NodeMetadata>, bool)>> {
    Ok(match edit {
        Some(NodeEdit::Put { metadata, fresh }) => Some((metadata.clone(), *fresh)),
        Some(NodeEdit::Deleted) => None,
        None => base.node_metadata(path)?.map(|m| (m, false)),
    })
}

/// What going from state `from` (the ticket's) to `to` at `path` loses of chunk changes made
/// to the node in between on the other side.
fn loss(base: &LoadedSnapshot, path: &NodePath, from: NodeState, to: NodeState) -> Result<Loss> {
    let Some((old, old_fresh)) = node(base, path, from.edit)? else {
        return Ok(Loss::None);
    };
    let Some((new, new_fresh)) = node(base, path, to.edit)? else {
        return Ok(Loss::All("deleted"));
    };
    if old.kind_name() != new.kind_name() {
        return Ok(Loss::All("replaced by a node of another kind"));
    }
    if new_fresh && !old_fresh {
        return Ok(Loss::All("deleted and created again (without its chunks)"));
    }
    let (Some(old), Some(new)) = (old.geometry(), new.geometry()) else {
        return Ok(Loss::None);
    };
    let (old_grid, new_grid) = (old.grid_shape(), new.grid_shape());
    if old_grid.len() != new_grid.len() {
        return Ok(Loss::All("given another number of dimensions"));
    }
    if new_grid.iter().zip(&old_grid).any(|(n, o)| n < o) {
        return Ok(Loss::OutsideGrid(new_grid));
    }
    Ok(Loss::None)
}

/// How going from state `from` (the ticket's) to `to` at `path` removes whatever lies below
/// the node: it deletes it, replaces it (by a node of another kind, or afresh), or makes it
/// an array (which holds no nodes). `None` when nodes below stay where they are.
fn removes_below(
    base: &LoadedSnapshot,
    path: &NodePath,
    from: NodeState,
    to: NodeState,
) -> Result<Option<&'static str>> {
    let old = node(base, path, from.edit)?;
    let new = node(base, path, to.edit)?;
    Ok(match (old, new) {
        (None, None) => None,
        (Some(_), None) => Some("deleted"),
        (None, Some((new, _))) => new.geometry().is_some().then_some("created as an array"),
        (Some((old, old_fresh)), Some((new, new_fresh))) => {
            if old.kind_name() != new.kind_name() {
                Some("replaced by a node of another kind")
            } else if new_fresh && !old_fresh {
                Some("deleted and created again")
            } else {
                None
            }
        }
    })
}
