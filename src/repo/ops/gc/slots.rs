//! What the dropped snapshots reference that no retained snapshot does (spec/algorithms.md
//! §14, steps 6-8), and what snapshots that entered the retained graph reference (step 9).
//!
//! A manifest base or chunk object is written for one shard slot (an array path and shard
//! coordinates) and only that slot's later versions carry it on, along lineage edges: a
//! commit copies its parent's shard references and replaces those it changes; a merge commit
//! also takes shards from its source, and a rewritten commit (squash, amend, replay) from the
//! commit it replaced. So an object a dropped snapshot references is still reachable only if
//! a retained snapshot on the same lineage still carries it in the same slot, and the first
//! retained snapshot on that lineage is either one with a lineage edge to a snapshot that is
//! not retained (the frontier) or a nearest retained lineage ancestor of the dropped ones (an
//! attachment), found through every snapshot GC has seen, deleted ones included. Only those
//! snapshots' shards of the slots in question are read; shards equal by id are never read at
//! all.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::stream::{self, StreamExt};

use super::graph::Graph;
use crate::error::{Error, Result};
use crate::format::envelope::{self, ObjectKind};
use crate::format::lifecycle::{GcObject, GcReason};
use crate::format::manifest::ManifestColumns;
use crate::format::path::NodePath;
use crate::format::snapshot::{NodeKind, ShardRef, Snapshot, TxLogRef};
use crate::id::{ChunkObjectId, ManifestId, SnapshotId, TxLogId};
use crate::repo::read::loaded::LoadedSnapshot;
use crate::repo::read::repository::Repository;
use crate::storage::layout;

/// Manifests read at once.
const IN_FLIGHT: usize = 32;

/// Chunk objects a manifest base references, read once per run.
#[derive(Default)]
pub(super) struct BaseCache {
    objects: HashMap<ManifestId, Arc<Vec<ChunkObjectId>>>,
    pub(super) reads: u64,
}

/// The shards of one array in one snapshot: its shard shape and shards by coordinates.
struct ArrayShards<'s> {
    shard_shape: &'s [u64],
    shards: HashMap<&'s [u64], &'s ShardRef>,
}

fn arrays_of(snapshot: &Snapshot) -> HashMap<&NodePath, ArrayShards<'_>> {
    snapshot
        .nodes
        .iter()
        .filter_map(|node| match &node.kind {
            NodeKind::Array(manifest) => Some((
                &node.path,
                ArrayShards {
                    shard_shape: &manifest.shard_shape,
                    shards: manifest
                        .shards
                        .iter()
                        .map(|s| (s.coord.as_slice(), s))
                        .collect(),
                },
            )),
            NodeKind::Group => None,
        })
        .collect()
}

/// The objects `snapshot` names directly: its transaction log object, its manifest bases
/// and their chunk objects (those `cache` holds) and its delta chunk objects.
pub(super) fn objects_named<'a>(
    snapshot: &'a Snapshot,
    cache: &'a BaseCache,
) -> impl Iterator<Item = GcObject> + 'a {
    let txlog = match &snapshot.txlog {
        TxLogRef::Object(id) => Some(GcObject::TxLog(*id)),
        _ => None,
    };
    let shards = snapshot.nodes.iter().flat_map(|node| match &node.kind {
        NodeKind::Array(manifest) => manifest.shards.as_slice(),
        NodeKind::Group => &[],
    });
    let referenced = shards.flat_map(move |shard| {
        let base_objects = shard
            .base
            .and_then(|b| cache.objects.get(&b))
            .into_iter()
            .flat_map(|objects| objects.iter().map(|o| GcObject::Chunks(*o)));
        shard
            .base
            .map(GcObject::Manifest)
            .into_iter()
            .chain(base_objects)
            .chain(delta_objects(shard).map(GcObject::Chunks))
    });
    txlog.into_iter().chain(referenced)
}

fn delta_objects(shard: &ShardRef) -> impl Iterator<Item = ChunkObjectId> + '_ {
    shard.delta.iter().flat_map(|d| d.objects.iter().copied())
}

/// What the candidates of one run are, with why.
#[derive(Default)]
pub(super) struct Candidates {
    pub(super) objects: HashMap<GcObject, GcReason>,
}

impl Repository {
    /// The chunk objects of manifest bases, reading those not read yet (together).
    pub(super) async fn gc_base_objects(
        &self,
        cache: &mut BaseCache,
        ids: impl IntoIterator<Item = ManifestId>,
    ) -> Result<()> {
        let mut wanted: Vec<ManifestId> = ids
            .into_iter()
            .filter(|id| !cache.objects.contains_key(id))
            .collect();
        wanted.sort();
        wanted.dedup();
        let reads = wanted.iter().map(|id| async move {
            let key = layout::manifest_key(id);
            let bytes = self.get_verified(&key, id.as_bytes()).await?;
            let columns: ManifestColumns = envelope::decode(&key, &bytes, ObjectKind::Manifest)?;
            Ok::<_, Error>((*id, columns.objects))
        });
        let found: Vec<Result<_>> = stream::iter(reads.collect::<Vec<_>>())
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        for result in found {
            let (id, objects) = result?;
            cache.reads += 1;
            cache.objects.insert(id, Arc::new(objects));
        }
        Ok(())
    }

    /// The snapshots `ids` names: those this run read already, the others fetched together
    /// (a missing one, deleted by an earlier run that stopped before its record said so, is
    /// left out).
    async fn gc_snapshots(
        &self,
        graph: &Graph,
        ids: impl IntoIterator<Item = SnapshotId>,
    ) -> Result<Vec<Arc<LoadedSnapshot>>> {
        let mut out = Vec::new();
        let mut missing = Vec::new();
        for id in ids {
            match graph.loaded.get(&id) {
                Some(loaded) => out.push(loaded.clone()),
                None => missing.push(id),
            }
        }
        out.extend(
            self.gc_load_many(&missing)
                .await?
                .into_iter()
                .filter_map(|(_, loaded)| loaded),
        );
        Ok(out)
    }

    /// Objects only dropped snapshots reference (spec/algorithms.md §14, steps 6-8).
    pub(super) async fn gc_candidates(
        &self,
        graph: &Graph,
        cut_parents: &HashSet<SnapshotId>,
        cache: &mut BaseCache,
    ) -> Result<Candidates> {
        let mut out = Candidates::default();
        if graph.dropped.is_empty() {
            return Ok(out);
        }
        // Dropped snapshots below a cut are expired; the others were left by ref moves.
        let mut expired: HashSet<SnapshotId> = HashSet::new();
        let mut walk: Vec<SnapshotId> = cut_parents
            .iter()
            .filter(|p| graph.dropped.contains_key(p))
            .copied()
            .collect();
        while let Some(id) = walk.pop() {
            if expired.insert(id) {
                if let Some(Some(parent)) = graph.dropped.get(&id) {
                    if graph.dropped.contains_key(parent) {
                        walk.push(*parent);
                    }
                }
            }
        }
        let reason_of = |id: &SnapshotId| {
            if expired.contains(id) {
                GcReason::Expired
            } else {
                GcReason::Unreferenced
            }
        };
        // The retained snapshots that may still carry what the dropped ones reference.
        let mut related: Vec<SnapshotId> = graph
            .retained
            .values()
            .filter(|n| n.lineage().any(|p| !graph.retained.contains_key(&p)))
            .map(|n| n.id)
            .collect();
        related.extend(graph.attachments());
        related.sort();
        related.dedup();
        let dropped_ids: Vec<SnapshotId> = graph.dropped.keys().copied().collect();
        let dropped = self.gc_snapshots(graph, dropped_ids).await?;
        let kept = self.gc_snapshots(graph, related).await?;
        let kept_arrays: Vec<_> = kept.iter().map(|k| arrays_of(&k.snapshot)).collect();
        // A rewritten commit (a replay after a squash) shares its transaction log object with
        // the commit it replaced: such a log stays.
        let live_txlogs: HashSet<TxLogId> = kept
            .iter()
            .filter_map(|k| match &k.snapshot.txlog {
                TxLogRef::Object(id) => Some(*id),
                TxLogRef::Inline(_) => None,
            })
            .collect();
        let live_bases: HashSet<ManifestId> = kept_arrays
            .iter()
            .flat_map(|arrays| arrays.values())
            .flat_map(|a| a.shards.values().filter_map(|s| s.base))
            .collect();
        // Per slot (path, shard shape, coordinates): the dead bases and the delta objects.
        type Slot = (NodePath, Vec<u64>, Vec<u64>);
        let mut slot_bases: HashMap<Slot, (HashSet<ManifestId>, GcReason)> = HashMap::new();
        let mut slot_objects: HashMap<Slot, (HashSet<ChunkObjectId>, GcReason)> = HashMap::new();
        for d in &dropped {
            let reason = reason_of(&d.id);
            out.objects.insert(GcObject::Snapshot(d.id), reason);
            if let TxLogRef::Object(txlog) = &d.snapshot.txlog {
                if !live_txlogs.contains(txlog) {
                    out.objects.insert(GcObject::TxLog(*txlog), reason);
                }
            }
            for (path, array) in arrays_of(&d.snapshot) {
                for (coord, shard) in &array.shards {
                    let slot = (path.clone(), array.shard_shape.to_vec(), coord.to_vec());
                    if let Some(base) = shard.base.filter(|b| !live_bases.contains(b)) {
                        let entry = slot_bases
                            .entry(slot.clone())
                            .or_insert((HashSet::new(), reason));
                        entry.0.insert(base);
                        entry.1 = stronger(entry.1, reason);
                    }
                    let entry = slot_objects.entry(slot).or_insert((HashSet::new(), reason));
                    entry.0.extend(delta_objects(shard));
                    entry.1 = stronger(entry.1, reason);
                }
            }
        }
        self.gc_base_objects(
            cache,
            slot_bases.values().flat_map(|(b, _)| b.iter().copied()),
        )
        .await?;
        for (slot, (bases, reason)) in &slot_bases {
            for base in bases {
                out.objects.insert(GcObject::Manifest(*base), *reason);
                let entry = slot_objects
                    .entry(slot.clone())
                    .or_insert((HashSet::new(), *reason));
                if let Some(objects) = cache.objects.get(base) {
                    entry.0.extend(objects.iter().copied());
                }
            }
        }
        slot_objects.retain(|_, (objects, _)| !objects.is_empty());
        // The retained shards of the same slots (all of a path's shards where the retained
        // array has another shard shape), and their bases' objects.
        let mut related_shards: HashMap<&Slot, Vec<&ShardRef>> = HashMap::new();
        for slot in slot_objects.keys() {
            let (path, shape, coord) = slot;
            let shards = related_shards.entry(slot).or_default();
            for arrays in &kept_arrays {
                let Some(array) = arrays.get(path) else {
                    continue;
                };
                if array.shard_shape == shape.as_slice() {
                    shards.extend(array.shards.get(coord.as_slice()).copied());
                } else {
                    shards.extend(array.shards.values().copied());
                }
            }
        }
        self.gc_base_objects(
            cache,
            related_shards.values().flatten().filter_map(|s| s.base),
        )
        .await?;
        for (slot, (objects, reason)) in &slot_objects {
            let mut live: HashSet<ChunkObjectId> = HashSet::new();
            for shard in related_shards.get(slot).into_iter().flatten() {
                live.extend(delta_objects(shard));
                if let Some(base) = shard.base.and_then(|b| cache.objects.get(&b)) {
                    live.extend(base.iter().copied());
                }
            }
            for object in objects.difference(&live) {
                let entry = out
                    .objects
                    .entry(GcObject::Chunks(*object))
                    .or_insert(*reason);
                *entry = stronger(*entry, *reason);
            }
        }
        Ok(out)
    }

    /// Everything the snapshots that entered the retained graph since the last run reference
    /// in the slots they changed (all their slots when their parent was not retained then):
    /// a condemned object found here is reachable again and spared (§14, step 9).
    pub(super) async fn gc_entered_references(
        &self,
        graph: &Graph,
        previously_retained: &HashSet<SnapshotId>,
        cache: &mut BaseCache,
    ) -> Result<HashSet<GcObject>> {
        let entered: Vec<SnapshotId> = graph
            .retained
            .keys()
            .filter(|id| !previously_retained.contains(id))
            .copied()
            .collect();
        let entered = self.gc_snapshots(graph, entered).await?;
        // Their parents that were retained last run, fetched together.
        let parents: HashMap<SnapshotId, Arc<LoadedSnapshot>> = self
            .gc_snapshots(
                graph,
                entered
                    .iter()
                    .filter_map(|e| e.snapshot.parent)
                    .filter(|p| previously_retained.contains(p)),
            )
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        let mut out = HashSet::new();
        let mut bases = Vec::new();
        let mut changed_shards: Vec<ShardRef> = Vec::new();
        for e in &entered {
            out.insert(GcObject::Snapshot(e.id));
            if let TxLogRef::Object(txlog) = &e.snapshot.txlog {
                out.insert(GcObject::TxLog(*txlog));
            }
            let parent = e.snapshot.parent.and_then(|p| parents.get(&p));
            let parent_arrays = parent.as_ref().map(|p| arrays_of(&p.snapshot));
            for (path, array) in arrays_of(&e.snapshot) {
                let before = parent_arrays.as_ref().and_then(|a| a.get(path));
                for (coord, shard) in &array.shards {
                    let unchanged = before.is_some_and(|b| {
                        b.shard_shape == array.shard_shape
                            && b.shards
                                .get(coord)
                                .is_some_and(|s| s.base == shard.base && s.delta == shard.delta)
                    });
                    if !unchanged {
                        changed_shards.push((*shard).clone());
                    }
                }
            }
        }
        for shard in &changed_shards {
            if let Some(base) = shard.base {
                out.insert(GcObject::Manifest(base));
                bases.push(base);
            }
            out.extend(delta_objects(shard).map(GcObject::Chunks));
        }
        self.gc_base_objects(cache, bases.iter().copied()).await?;
        for base in bases {
            if let Some(objects) = cache.objects.get(&base) {
                out.extend(objects.iter().map(|o| GcObject::Chunks(*o)));
            }
        }
        Ok(out)
    }
}

/// Of two reasons for one object, the one to report: expired history wins.
fn stronger(a: GcReason, b: GcReason) -> GcReason {
    match (a, b) {
        (GcReason::Expired, _) | (_, GcReason::Expired) => GcReason::Expired,
        (GcReason::Unreferenced, _) | (_, GcReason::Unreferenced) => GcReason::Unreferenced,
        _ => GcReason::Orphan,
    }
}
