//! The three-way merge of two versions' node trees from their nearest common ancestor
//! (spec/algorithms.md §15, steps 3-6): by node, then by manifest shard, then by chunk.
//!
//! A node or shard only one side changed is taken from that side as it is, so unchanged and
//! one-sided shards are reused by id and never read. Only shards both sides changed are read
//! (all three versions of them), merged chunk by chunk, and written again. Node documents both
//! sides changed merge by the rebase rules ([`merge_node`]): shapes grow to the larger,
//! attributes merge key by key, anything else merges only with an attribute-only change.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::manifest_update::update_shard;
use super::node_merge::{merge_node, SideFacts};
use crate::error::{ConflictDetail, Error, Result};
use crate::format::manifest::{ChunkCoord, ChunkRef, ManifestEntry};
use crate::format::path::NodePath;
use crate::format::snapshot::{ArrayManifest, NodeKind, NodeRecord, ShardRef};
use crate::format::txlog::{CoordList, NodeChange, TxLog};
use crate::repo::read::loaded::LoadedSnapshot;
use crate::repo::read::repository::Repository;
use crate::zarr::metadata::NodeMetadata;

/// What to do with a chunk both sides changed to different references.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MergeStrategy {
    /// Refuse the merge, naming the node and the chunks.
    #[default]
    Fail,
    /// Keep the target branch's chunk.
    Ours,
    /// Take the merge source's chunk.
    Theirs,
}

/// How much of a merge was taken, merged or resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeCounts {
    /// Nodes only the source changed, taken from it whole.
    pub nodes_from_source: u64,
    /// Nodes both sides changed, merged.
    pub nodes_merged: u64,
    /// Manifest shards only the source changed, reused by id.
    pub shards_reused: u64,
    /// Manifest shards both sides changed, merged chunk by chunk and written again.
    pub shards_merged: u64,
    /// Chunks both sides changed differently, resolved by the strategy.
    pub chunks_resolved: u64,
}

/// The merged tree and what it changes relative to the target.
pub(crate) struct MergedTree {
    /// Every node, sorted by path.
    pub(crate) nodes: Vec<NodeRecord>,
    /// The changes relative to the target's tip.
    pub(crate) txlog: TxLog,
    /// What was taken and merged.
    pub(crate) counts: MergeCounts,
}

/// The three versions of a merge: the nearest common ancestor, the target branch's tip and
/// the source.
pub(crate) struct ThreeWay<'a> {
    pub(crate) repo: &'a Repository,
    pub(crate) base: &'a LoadedSnapshot,
    pub(crate) target: &'a LoadedSnapshot,
    pub(crate) source: &'a LoadedSnapshot,
    pub(crate) strategy: MergeStrategy,
    /// The target branch, named in conflicts.
    pub(crate) branch: &'a str,
}

impl ThreeWay<'_> {
    fn conflict(&self, detail: ConflictDetail) -> Error {
        Error::Conflict {
            branch: self.branch.to_string(),
            our_base: self.base.id.to_string(),
            their_snapshot: self.source.id.to_string(),
            detail: Box::new(detail),
        }
    }

    fn node_conflict(&self, path: &NodePath, reason: impl Into<String>) -> Error {
        self.conflict(ConflictDetail::Node {
            path: path.to_string(),
            reason: reason.into(),
        })
    }

    /// Merges the trees; fails with [`Error::Conflict`] naming the first node (and, for
    /// chunks, every coordinate of that array) both sides changed in ways that do not merge.
    pub(crate) async fn merge(&self) -> Result<MergedTree> {
        let mut counts = MergeCounts::default();
        let paths: BTreeSet<&NodePath> = [self.base, self.target, self.source]
            .iter()
            .flat_map(|side| side.snapshot.nodes.iter().map(|n| &n.path))
            .collect();
        let mut nodes = Vec::new();
        for path in paths {
            let o = self.base.snapshot.node(path);
            let t = self.target.snapshot.node(path);
            let s = self.source.snapshot.node(path);
            let chosen = if s == o || s == t {
                t.cloned()
            } else if t == o {
                counts.nodes_from_source += 1;
                s.cloned()
            } else {
                counts.nodes_merged += 1;
                Some(self.merge_node_record(path, o, t, s, &mut counts).await?)
            };
            nodes.extend(chosen);
        }
        self.check_hierarchy(&nodes)?;
        let txlog = self.txlog_against_target(&nodes).await?;
        Ok(MergedTree {
            nodes,
            txlog,
            counts,
        })
    }

    /// A node both sides changed.
    async fn merge_node_record(
        &self,
        path: &NodePath,
        o: Option<&NodeRecord>,
        t: Option<&NodeRecord>,
        s: Option<&NodeRecord>,
        counts: &mut MergeCounts,
    ) -> Result<NodeRecord> {
        let (Some(o), Some(t), Some(s)) = (o, t, s) else {
            let reason = match (o, t) {
                (None, _) => "created on both sides with different content",
                (Some(_), None) => "deleted on the target branch and changed by the merge source",
                (Some(_), Some(_)) => {
                    "deleted by the merge source and changed on the target branch"
                }
            };
            return Err(self.node_conflict(path, reason));
        };
        let metadata = |side: &LoadedSnapshot| -> Result<Arc<NodeMetadata>> {
            side.node_metadata(path)?.ok_or_else(|| {
                Error::corrupt(format!("snapshots/{}", side.id), "a listed node vanished")
            })
        };
        let (om, tm, sm) = (
            metadata(self.base)?,
            metadata(self.target)?,
            metadata(self.source)?,
        );
        let facts = |wrote_chunks: bool| SideFacts {
            wrote_chunks,
            ..SideFacts::default()
        };
        let (kind, t_wrote, s_wrote) = match (&o.kind, &t.kind, &s.kind) {
            (NodeKind::Group, NodeKind::Group, NodeKind::Group) => (NodeKind::Group, false, false),
            (NodeKind::Array(om_), NodeKind::Array(tm_), NodeKind::Array(sm_)) => {
                let (t_wrote, s_wrote) = (tm_ != om_, sm_ != om_);
                let manifest = match (t_wrote, s_wrote) {
                    (_, false) => tm_.clone(),
                    (false, true) => sm_.clone(),
                    (true, true) => ArrayManifest::default(), // merged below
                };
                (NodeKind::Array(manifest), t_wrote, s_wrote)
            }
            _ => {
                return Err(self.node_conflict(
                    path,
                    "one side replaced it by a node of another kind (group or array)",
                ))
            }
        };
        // merge_node speaks of a rebase: "theirs" are the target's commits, "ours" the source.
        let doc = merge_node(path, &om, &tm, &sm, facts(t_wrote), facts(s_wrote))
            .map_err(|reason| self.node_conflict(path, merge_wording(&reason)))?;
        let kind = match (kind, &o.kind, &t.kind, &s.kind) {
            (
                NodeKind::Array(_),
                NodeKind::Array(om_),
                NodeKind::Array(tm_),
                NodeKind::Array(sm_),
            ) if t_wrote && s_wrote => {
                let grid = doc.geometry().map(|g| g.grid_shape()).ok_or_else(|| {
                    Error::invalid_metadata(path.as_str(), "array lost its shape")
                })?;
                NodeKind::Array(
                    self.merge_manifests(path, [om_, tm_, sm_], &grid, counts)
                        .await?,
                )
            }
            (kind, ..) => kind,
        };
        Ok(NodeRecord {
            path: path.clone(),
            zarr_json: doc.to_json(),
            kind,
        })
    }

    /// The manifests of an array both sides wrote chunks of: shard by shard, then chunk by
    /// chunk where both changed a shard.
    async fn merge_manifests(
        &self,
        path: &NodePath,
        [o, t, s]: [&ArrayManifest; 3],
        grid: &[u64],
        counts: &mut MergeCounts,
    ) -> Result<ArrayManifest> {
        let layouts: BTreeSet<&Vec<u64>> = [o, t, s]
            .iter()
            .filter(|m| !m.shards.is_empty())
            .map(|m| &m.shard_shape)
            .collect();
        if layouts.len() > 1 {
            return Err(self.node_conflict(
                path,
                "the array was re-created on one side with another manifest layout; its chunks \
                 cannot be paired",
            ));
        }
        let shard_shape = layouts
            .into_iter()
            .next()
            .cloned()
            .unwrap_or_else(|| t.shard_shape.clone());
        let mut slots: BTreeMap<&ChunkCoord, [Option<&ShardRef>; 3]> = BTreeMap::new();
        for (side, manifest) in [o, t, s].iter().enumerate() {
            for shard in &manifest.shards {
                slots.entry(&shard.coord).or_default()[side] = Some(shard);
            }
        }
        let mut shards = Vec::new();
        let mut conflicts: Vec<ChunkCoord> = Vec::new();
        for (coord, [os, ts, ss]) in slots {
            let merged = if ss == os || ss == ts {
                ts.cloned()
            } else if ts == os {
                counts.shards_reused += 1;
                ss.cloned()
            } else {
                counts.shards_merged += 1;
                let (edits, clashes) = self.merge_shard_entries([os, ts, ss], counts).await?;
                conflicts.extend(clashes);
                update_shard(self.repo, coord.clone(), ts.cloned(), edits, grid).await?
            };
            shards.extend(merged);
        }
        if !conflicts.is_empty() {
            conflicts.sort();
            return Err(self.conflict(ConflictDetail::Chunks {
                path: path.to_string(),
                coords: conflicts,
            }));
        }
        Ok(ArrayManifest {
            shard_shape,
            shards,
        })
    }

    /// The edits that bring the source's changes of one shard into the target's, and the
    /// chunks both changed differently that the strategy does not resolve.
    async fn merge_shard_entries(
        &self,
        [o, t, s]: [Option<&ShardRef>; 3],
        counts: &mut MergeCounts,
    ) -> Result<(Vec<ManifestEntry>, Vec<ChunkCoord>)> {
        let (oi, ti, si) = futures::try_join!(
            self.repo.shard_or_empty(self.base, o),
            self.repo.shard_or_empty(self.target, t),
            self.repo.shard_or_empty(self.source, s),
        )?;
        let changed_by_source: BTreeSet<&[u64]> = oi
            .coords()
            .chain(si.coords())
            .filter(|c| oi.get(c) != si.get(c))
            .collect();
        let mut edits = Vec::new();
        let mut clashes = Vec::new();
        for c in changed_by_source {
            let (before, target, source): (Option<ChunkRef>, _, _) =
                (oi.get(c), ti.get(c), si.get(c));
            if target == before {
                edits.push((c.to_vec(), source));
            } else if target != source {
                match self.strategy {
                    MergeStrategy::Fail => clashes.push(c.to_vec()),
                    MergeStrategy::Ours => counts.chunks_resolved += 1,
                    MergeStrategy::Theirs => {
                        counts.chunks_resolved += 1;
                        edits.push((c.to_vec(), source));
                    }
                }
            }
        }
        Ok((edits, clashes))
    }

    /// Every node sits below a group: a node one side added below a group the other side
    /// deleted (or replaced by an array) is a conflict, not an orphan.
    fn check_hierarchy(&self, nodes: &[NodeRecord]) -> Result<()> {
        let groups: BTreeSet<&NodePath> = nodes
            .iter()
            .filter(|n| matches!(n.kind, NodeKind::Group))
            .map(|n| &n.path)
            .collect();
        for node in nodes {
            if let Some(parent) = node.path.parent() {
                if !groups.contains(&parent) {
                    return Err(self.node_conflict(
                        &node.path,
                        format!(
                            "one side added or changed it while the other deleted `{parent}` or \
                             made it an array"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// What the merged tree changes relative to the target's tip: node changes, and per
    /// array the chunks whose references differ (shards equal by id are not read).
    async fn txlog_against_target(&self, nodes: &[NodeRecord]) -> Result<TxLog> {
        let mut log = TxLog::default();
        let merged: BTreeMap<&NodePath, &NodeRecord> = nodes.iter().map(|n| (&n.path, n)).collect();
        let before: BTreeMap<&NodePath, &NodeRecord> = self
            .target
            .snapshot
            .nodes
            .iter()
            .map(|n| (&n.path, n))
            .collect();
        let paths: BTreeSet<&NodePath> = merged.keys().chain(before.keys()).copied().collect();
        for path in paths {
            let (b, a) = (before.get(path), merged.get(path));
            let change = match (b, a) {
                (None, Some(_)) => Some(NodeChange::Created),
                (Some(_), None) => Some(NodeChange::Deleted),
                (Some(b), Some(a)) if kind_name(&b.kind) != kind_name(&a.kind) => {
                    Some(NodeChange::Created)
                }
                (Some(b), Some(a)) if b.zarr_json != a.zarr_json => Some(NodeChange::Updated),
                _ => None,
            };
            if let Some(change) = change {
                log.nodes.push(((*path).clone(), change));
            }
            let Some(NodeRecord {
                kind: NodeKind::Array(after),
                ..
            }) = a
            else {
                continue;
            };
            let empty = ArrayManifest::default();
            let prior = match b {
                Some(NodeRecord {
                    kind: NodeKind::Array(m),
                    ..
                }) => m,
                _ => &empty,
            };
            if prior == after {
                continue;
            }
            let coords = self.changed_chunks(prior, after).await?;
            if !coords.is_empty() {
                log.chunks.push(((*path).clone(), coords));
            }
        }
        Ok(log)
    }

    /// The chunks whose references differ between two manifests of one array.
    async fn changed_chunks(
        &self,
        prior: &ArrayManifest,
        after: &ArrayManifest,
    ) -> Result<CoordList> {
        let mut slots: BTreeMap<&ChunkCoord, [Option<&ShardRef>; 2]> = BTreeMap::new();
        for shard in &prior.shards {
            slots.entry(&shard.coord).or_default()[0] = Some(shard);
        }
        for shard in &after.shards {
            slots.entry(&shard.coord).or_default()[1] = Some(shard);
        }
        let same_layout = prior.shards.is_empty()
            || after.shards.is_empty()
            || prior.shard_shape == after.shard_shape;
        let mut old_refs: BTreeMap<ChunkCoord, ChunkRef> = BTreeMap::new();
        let mut new_refs: BTreeMap<ChunkCoord, ChunkRef> = BTreeMap::new();
        for [b, a] in slots.into_values() {
            if same_layout && b == a {
                continue;
            }
            let (bi, ai) = futures::try_join!(
                self.repo.shard_or_empty(self.target, b),
                self.repo.shard_or_empty(self.target, a),
            )?;
            old_refs.extend(bi.iter().map(|(c, r)| (c.to_vec(), r)));
            new_refs.extend(ai.iter().map(|(c, r)| (c.to_vec(), r)));
        }
        let changed: BTreeSet<&ChunkCoord> = old_refs
            .keys()
            .chain(new_refs.keys())
            .filter(|c| old_refs.get(*c) != new_refs.get(*c))
            .collect();
        let mut list = CoordList::default();
        let mut previous: Option<&ChunkCoord> = None;
        for c in changed {
            list.push(c, previous.map(Vec::as_slice));
            previous = Some(c);
        }
        Ok(list)
    }
}

fn kind_name(kind: &NodeKind) -> &'static str {
    match kind {
        NodeKind::Group => "group",
        NodeKind::Array(_) => "array",
    }
}

/// The rebase rules' reasons, reworded for a merge: the target branch's changes are "the
/// other commit", the source's are "this session".
fn merge_wording(reason: &str) -> String {
    reason
        .replace("this session", "the merge source")
        .replace("the other commit", "the target branch")
        .replace("both commits", "both sides")
}
