//! The uncommitted changes of a writable session.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::format::manifest::{ChunkCoord, ChunkRef};
use crate::format::path::NodePath;
use crate::zarr::metadata::NodeMetadata;

/// A change to one node.
#[derive(Clone, Debug)]
pub(crate) enum NodeEdit {
    /// The node now has this metadata. `fresh` nodes start without chunks even if a node of the
    /// same path existed in the base snapshot (created, or replaced by a node of another kind).
    Put {
        metadata: Arc<NodeMetadata>,
        fresh: bool,
    },
    /// The node was deleted.
    Deleted,
}

/// Where a written chunk's bytes are while the session is open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PendingChunk {
    /// Stored (inline, or in an object already written).
    Ready(ChunkRef),
    /// Inside pack number `pack` of this session, not necessarily written yet.
    Packed {
        pack: usize,
        offset: u64,
        length: u64,
    },
}

impl PendingChunk {
    pub(crate) fn len(&self) -> u64 {
        match self {
            PendingChunk::Ready(r) => r.len(),
            PendingChunk::Packed { length, .. } => *length,
        }
    }
}

/// Chunk edits of one array: `None` deletes the chunk.
pub(crate) type ChunkEdits = BTreeMap<ChunkCoord, Option<PendingChunk>>;

/// Every uncommitted change of a session.
#[derive(Clone, Debug, Default)]
pub(crate) struct ChangeSet {
    pub(crate) nodes: BTreeMap<NodePath, NodeEdit>,
    pub(crate) chunks: BTreeMap<NodePath, ChunkEdits>,
    /// Arrays whose chunk grid shrank in this session: per dimension, the smallest extent the
    /// grid had. Base chunks outside it are gone even if the array grew again afterwards.
    pub(crate) clips: BTreeMap<NodePath, ChunkCoord>,
}

impl ChangeSet {
    pub(crate) fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.chunks.values().all(|c| c.is_empty())
    }

    /// Drops every change at or below `path` (before it is deleted or replaced).
    pub(crate) fn forget_below(&mut self, path: &NodePath, include_self: bool) {
        let keep = |p: &NodePath| !(p.is_within(path) && (include_self || p != path));
        self.nodes.retain(|p, _| keep(p));
        self.chunks.retain(|p, _| keep(p));
        self.clips.retain(|p, _| keep(p));
    }

    /// Records that array `path` now has chunk grid `grid` (after `old`): when it shrank, the
    /// session's own chunk edits outside it are dropped and base chunks outside it are clipped.
    pub(crate) fn record_grid_change(&mut self, path: &NodePath, old: &[u64], grid: &[u64]) {
        if old.len() != grid.len() || old.iter().zip(grid).all(|(o, n)| n >= o) {
            return;
        }
        if let Some(edits) = self.chunks.get_mut(path) {
            edits.retain(|c, _| within_grid(c, grid));
        }
        let clip = self
            .clips
            .entry(path.clone())
            .or_insert_with(|| grid.to_vec());
        for (c, n) in clip.iter_mut().zip(grid) {
            *c = (*c).min(*n);
        }
    }

    /// Drops every change of the node at `path` itself.
    pub(crate) fn forget_node(&mut self, path: &NodePath) {
        self.nodes.remove(path);
        self.chunks.remove(path);
        self.clips.remove(path);
    }
}

/// True when `coord` lies inside a chunk grid of the same rank.
pub(crate) fn within_grid(coord: &[u64], grid: &[u64]) -> bool {
    coord.len() == grid.len() && coord.iter().zip(grid).all(|(c, g)| c < g)
}

/// Resolved chunk edits of one array, ready to be committed.
pub(crate) type ResolvedEdits = BTreeMap<ChunkCoord, Option<ChunkRef>>;

/// A change set whose chunks are all stored: what a commit applies.
#[derive(Clone, Debug, Default)]
pub(crate) struct ResolvedChanges {
    pub(crate) nodes: BTreeMap<NodePath, NodeEdit>,
    pub(crate) chunks: BTreeMap<NodePath, ResolvedEdits>,
    /// See [`ChangeSet::clips`].
    pub(crate) clips: BTreeMap<NodePath, ChunkCoord>,
}
