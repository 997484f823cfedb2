//! The uncommitted changes of a writable session.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::format::manifest::ChunkCoord;

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

pub(crate) use super::array_edits::ArrayEdits;
use super::edit_runs::SpillFile;
use super::packs::Packs;

/// Every uncommitted change of a session.
#[derive(Clone, Debug, Default)]
pub(crate) struct ChangeSet {
    pub(crate) nodes: BTreeMap<NodePath, NodeEdit>,
    pub(crate) chunks: BTreeMap<NodePath, ArrayEdits>,
    /// Arrays whose chunk grid shrank in this session: per dimension, the smallest extent the
    /// grid had. Base chunks outside it are gone even if the array grew again afterwards.
    pub(crate) clips: BTreeMap<NodePath, ChunkCoord>,
    /// Where frozen chunk edits go once they outgrow their memory budget.
    pub(crate) spill_file: Option<Arc<SpillFile>>,
}

impl ChangeSet {
    /// Keeps the edits of array `path` compact after a change: freezes its newest edits into
    /// a run when there are many, and moves frozen runs of every array to a spill file in
    /// `spool_dir` when together they hold more than `memory_limit` bytes.
    pub(crate) fn maintain(
        &mut self,
        path: &NodePath,
        packs: &Packs,
        memory_limit: u64,
        spool_dir: Option<&std::path::Path>,
    ) -> crate::error::Result<()> {
        let Some(edits) = self.chunks.get_mut(path) else {
            return Ok(());
        };
        if !edits.maybe_freeze(packs)? {
            return Ok(());
        }
        self.spill_if_over(memory_limit, spool_dir)
    }

    /// Freezes the settled chunk edits of every array into runs, so that a clone of the
    /// change set shares them instead of copying them (a fork keeps its ticket's changes this
    /// way), spilling runs as [`ChangeSet::maintain`] does.
    pub(crate) fn freeze_all(
        &mut self,
        packs: &Packs,
        memory_limit: u64,
        spool_dir: Option<&std::path::Path>,
    ) -> crate::error::Result<()> {
        let mut frozen = false;
        for edits in self.chunks.values_mut() {
            frozen |= edits.freeze(packs)?;
        }
        if frozen {
            self.spill_if_over(memory_limit, spool_dir)?;
        }
        Ok(())
    }

    /// Moves frozen runs of every array to the spill file once together they hold more than
    /// `memory_limit` bytes.
    fn spill_if_over(
        &mut self,
        memory_limit: u64,
        spool_dir: Option<&std::path::Path>,
    ) -> crate::error::Result<()> {
        let held: u64 = self.chunks.values().map(ArrayEdits::run_memory_bytes).sum();
        if held <= memory_limit {
            return Ok(());
        }
        let file = match &self.spill_file {
            Some(file) => file.clone(),
            None => {
                let file = SpillFile::create(spool_dir)?;
                self.spill_file = Some(file.clone());
                file
            }
        };
        for edits in self.chunks.values_mut() {
            edits.spill(&file)?;
        }
        Ok(())
    }

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
    pub(crate) fn record_grid_change(
        &mut self,
        path: &NodePath,
        old: &[u64],
        grid: &[u64],
    ) -> crate::error::Result<()> {
        if old.len() != grid.len() || old.iter().zip(grid).all(|(o, n)| n >= o) {
            return Ok(());
        }
        if let Some(edits) = self.chunks.get_mut(path) {
            edits.retain(&|c: &[u64]| within_grid(c, grid))?;
        }
        let clip = self
            .clips
            .entry(path.clone())
            .or_insert_with(|| grid.to_vec());
        for (c, n) in clip.iter_mut().zip(grid) {
            *c = (*c).min(*n);
        }
        Ok(())
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

/// A change set whose chunks are all stored: what a commit applies.
#[derive(Clone, Debug, Default)]
pub(crate) struct ResolvedChanges {
    pub(crate) nodes: BTreeMap<NodePath, NodeEdit>,
    /// Settled edits only: every chunk is stored (or deleted).
    pub(crate) chunks: BTreeMap<NodePath, ArrayEdits>,
    /// See [`ChangeSet::clips`].
    pub(crate) clips: BTreeMap<NodePath, ChunkCoord>,
}
