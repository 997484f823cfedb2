//! The retained graph (spec/algorithms.md §14, steps 3-5): every snapshot a branch tip or a
//! tag reaches without crossing an expiry cut, built from the previous run's graph plus the
//! snapshots committed since, and the snapshots that left it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::stream::{self, StreamExt};

use crate::error::{Error, Result};
use crate::format::lifecycle::{ExpiryRecord, GcObject, GcRecord, GraphNode};
use crate::format::refs::BranchRecord;
use crate::id::SnapshotId;
use crate::repo::read::loaded::LoadedSnapshot;
use crate::repo::read::repository::Repository;
use crate::storage::layout;

/// Snapshots read at once while walking.
const IN_FLIGHT: usize = 64;

/// The refs a run starts from.
pub(super) struct Refs {
    /// Live branches: name, newest record seq, tip.
    pub(super) tips: Vec<(String, u64, SnapshotId)>,
    /// Newest record seq of every branch directory, deleted branches included.
    pub(super) heads: Vec<(String, u64)>,
    /// Live tags: name, snapshot.
    pub(super) tags: Vec<(String, SnapshotId)>,
}

/// The graph of one run.
pub(super) struct Graph {
    /// Retained snapshots.
    pub(super) retained: HashMap<SnapshotId, GraphNode>,
    /// Snapshots that are not retained but were (last run) or were named by a branch record
    /// written since: what this run may condemn. With their parents.
    pub(super) dropped: HashMap<SnapshotId, Option<SnapshotId>>,
    /// Snapshots read by this run, by id.
    pub(super) loaded: HashMap<SnapshotId, Arc<LoadedSnapshot>>,
    /// Snapshots found deleted by an earlier run while walking (treated as cut).
    pub(super) already_deleted: HashSet<SnapshotId>,
    /// Every snapshot any run has seen, retained or not, with its parent.
    pub(super) all: HashMap<SnapshotId, GraphNode>,
}

impl Graph {
    /// The nearest retained ancestors of the dropped snapshots along every lineage edge
    /// (parents, merge sources, rewritten commits), through every snapshot runs have seen
    /// (history dropped and deleted earlier included): where dropped lines of history hang
    /// from what is kept.
    pub(super) fn attachments(&self) -> HashSet<SnapshotId> {
        let mut out = HashSet::new();
        let mut visited: HashSet<SnapshotId> = HashSet::new();
        let mut stack: Vec<SnapshotId> = self
            .dropped
            .keys()
            .filter_map(|id| self.all.get(id))
            .flat_map(GraphNode::lineage)
            .collect();
        while let Some(id) = stack.pop() {
            if self.retained.contains_key(&id) {
                out.insert(id);
            } else if visited.insert(id) {
                if let Some(node) = self.all.get(&id) {
                    stack.extend(node.lineage());
                }
            }
        }
        out
    }
}

impl Repository {
    /// The branch heads and tags, read now.
    pub(super) async fn gc_refs(&self) -> Result<Refs> {
        let mut tips = Vec::new();
        let mut heads = Vec::new();
        for name in self.branch_dir_names().await? {
            if let Some(head) = self.branch_head_record(&name, None).await? {
                heads.push((name.clone(), head.seq));
                if let Some(tip) = head.snapshot {
                    tips.push((name, head.seq, tip));
                }
            }
        }
        let tags = self
            .list_tags()
            .await?
            .into_iter()
            .map(|t| (t.name, t.snapshot))
            .collect();
        Ok(Refs { tips, heads, tags })
    }

    /// Loads snapshots together; a missing one comes back as `None`.
    pub(super) async fn gc_load_many(
        &self,
        ids: &[SnapshotId],
    ) -> Result<Vec<(SnapshotId, Option<Arc<LoadedSnapshot>>)>> {
        let loads = ids.iter().map(|&id| async move {
            match self.load_snapshot(&id).await {
                Ok(loaded) => Ok((id, Some(loaded))),
                Err(Error::SnapshotNotFound { .. }) => Ok((id, None)),
                Err(e) => Err(e),
            }
        });
        stream::iter(loads.collect::<Vec<_>>())
            .buffer_unordered(IN_FLIGHT)
            .collect::<Vec<Result<_>>>()
            .await
            .into_iter()
            .collect()
    }

    /// Builds the retained graph from the refs, reusing `previous` (the last run's graph) so
    /// that only snapshots committed since are read, then the dropped set.
    pub(super) async fn gc_graph(
        &self,
        refs: &Refs,
        horizon: &ExpiryRecord,
        previous: Option<&GcRecord>,
    ) -> Result<Graph> {
        let was_retained: HashSet<SnapshotId> = previous
            .map(|p| p.retained.iter().map(|n| n.id).collect())
            .unwrap_or_default();
        let known: HashMap<SnapshotId, GraphNode> = previous
            .map(|p| {
                p.retained
                    .iter()
                    .chain(&p.others)
                    .map(|n| (n.id, n.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let mut graph = Graph {
            retained: HashMap::new(),
            dropped: HashMap::new(),
            loaded: HashMap::new(),
            already_deleted: HashSet::new(),
            all: HashMap::new(),
        };
        let mut pending: Vec<SnapshotId> = refs
            .tips
            .iter()
            .map(|(_, _, id)| *id)
            .chain(refs.tags.iter().map(|(_, id)| *id))
            .collect();
        while !pending.is_empty() {
            let mut unknown = Vec::new();
            let mut next = Vec::new();
            for id in pending.drain(..) {
                if graph.retained.contains_key(&id) || graph.already_deleted.contains(&id) {
                    continue;
                }
                match known.get(&id) {
                    Some(node) => {
                        graph.retained.insert(id, node.clone());
                        if let Some(parent) = node.parent.filter(|_| !horizon.is_cut(&id)) {
                            next.push(parent);
                        }
                    }
                    None => unknown.push(id),
                }
            }
            unknown.sort();
            unknown.dedup();
            for (id, loaded) in self.gc_load_many(&unknown).await? {
                let Some(loaded) = loaded else {
                    self.gc_missing_retained(id, &mut graph).await?;
                    continue;
                };
                let node = GraphNode::of(id, &loaded.snapshot);
                if let Some(parent) = node.parent.filter(|_| !horizon.is_cut(&id)) {
                    next.push(parent);
                }
                graph.retained.insert(id, node);
                graph.loaded.insert(id, loaded);
            }
            pending = next;
        }
        for id in &was_retained {
            if !graph.retained.contains_key(id) {
                graph
                    .dropped
                    .insert(*id, known.get(id).and_then(|n| n.parent));
            }
        }
        self.gc_dropped_since(refs, horizon, previous, &known, &mut graph)
            .await?;
        graph.all = known;
        for (id, loaded) in &graph.loaded {
            graph
                .all
                .entry(*id)
                .or_insert_with(|| GraphNode::of(*id, &loaded.snapshot));
        }
        // The root is always kept (spec: expiry keeps it; it holds no data).
        let roots: Vec<SnapshotId> = graph
            .dropped
            .iter()
            .filter(|(_, parent)| parent.is_none())
            .map(|(id, _)| *id)
            .collect();
        for id in roots {
            graph.dropped.remove(&id);
            graph.retained.insert(
                id,
                GraphNode {
                    id,
                    parent: None,
                    generation: 0,
                    sources: Vec::new(),
                },
            );
        }
        Ok(graph)
    }

    /// A retained snapshot is missing: fine when an earlier GC run deleted it (a ref was moved
    /// to it after it was condemned, which ref moves refuse, or it lies below a cut the walk
    /// reached another way); anything else is damage, and GC stops rather than decide on it.
    async fn gc_missing_retained(&self, id: SnapshotId, graph: &mut Graph) -> Result<()> {
        match self.gc_deletion_of(&GcObject::Snapshot(id)).await? {
            Some(_) => {
                graph.already_deleted.insert(id);
                Ok(())
            }
            None => Err(Error::corrupt(
                layout::snapshot_key(&id),
                "a branch or tag reaches this snapshot but it is missing; garbage collection \
                 stops (run `floe fsck`)",
            )),
        }
    }

    /// Adds to the dropped set the snapshots named by branch records written since the last
    /// run (commits later reset away, deleted branches) and the cut parents of retained
    /// snapshots that no run has seen, when they are not retained, with the ancestors and
    /// content sources only they reached.
    async fn gc_dropped_since(
        &self,
        refs: &Refs,
        horizon: &ExpiryRecord,
        previous: Option<&GcRecord>,
        known: &HashMap<SnapshotId, GraphNode>,
        graph: &mut Graph,
    ) -> Result<()> {
        let seen: HashMap<&str, u64> = previous
            .map(|p| p.branches.iter().map(|(n, s)| (n.as_str(), *s)).collect())
            .unwrap_or_default();
        let mut keys = Vec::new();
        for (name, head) in &refs.heads {
            let from = seen.get(name.as_str()).map_or(0, |s| s + 1);
            for seq in from..=*head {
                keys.push((name.clone(), seq));
            }
        }
        let reads: Vec<_> = keys
            .iter()
            .map(|(name, seq)| async move { self.read_branch_record(name, *seq).await })
            .collect();
        let records = stream::iter(reads)
            .buffer_unordered(IN_FLIGHT)
            .collect::<Vec<Result<Option<BranchRecord>>>>()
            .await;
        // Cut parents no run has seen: written below a cut by a squash or amend that carried
        // it (spec/algorithms.md §16). No ref ever reached them, yet they reference objects
        // this run may condemn: they are expired history like any other.
        let mut pending: Vec<SnapshotId> = graph
            .retained
            .values()
            .filter(|node| horizon.is_cut(&node.id))
            .filter_map(|node| node.parent)
            .collect();
        for record in records {
            if let Some(id) = record?.and_then(|r| r.snapshot) {
                pending.push(id);
            }
        }
        while !pending.is_empty() {
            pending.sort();
            pending.dedup();
            pending.retain(|id| {
                !graph.retained.contains_key(id)
                    && !graph.dropped.contains_key(id)
                    && !known.contains_key(id)
                    && !graph.already_deleted.contains(id)
            });
            let mut next = Vec::new();
            for (id, loaded) in self.gc_load_many(&pending).await? {
                // Gone already: an earlier run deleted it.
                let Some(loaded) = loaded else { continue };
                graph.dropped.insert(id, loaded.snapshot.parent);
                next.extend(loaded.snapshot.parent);
                next.extend(loaded.snapshot.content_sources());
                graph.loaded.insert(id, loaded);
            }
            pending = next;
        }
        Ok(())
    }
}
