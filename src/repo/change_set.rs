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
    Packed { pack: usize, offset: u64, length: u64 },
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
    }
}

/// Resolved chunk edits of one array, ready to be committed.
pub(crate) type ResolvedEdits = BTreeMap<ChunkCoord, Option<ChunkRef>>;

/// A change set whose chunks are all stored: what a commit applies.
#[derive(Clone, Debug, Default)]
pub(crate) struct ResolvedChanges {
    pub(crate) nodes: BTreeMap<NodePath, NodeEdit>,
    pub(crate) chunks: BTreeMap<NodePath, ResolvedEdits>,
}
