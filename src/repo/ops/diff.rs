//! What changed between any two versions (algorithms.md §12): nodes added, deleted, replaced
//! or updated (shape, attributes by key, codecs, other metadata), and per array the chunks
//! added, changed and removed with their bytes.
//!
//! The two versions need not be related: the diff compares their snapshots, not their
//! histories. Manifest shards that are equal in both (same base object, same delta) are
//! skipped without being read, so neighbouring commits of a huge array cost a few reads; a
//! node added or deleted whole is counted from its shard statistics, without reading its
//! shards, unless coordinates are asked for.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::format::manifest::{ChunkCoord, ChunkRef};
use crate::format::path::NodePath;
use crate::format::snapshot::{ArrayManifest, NodeKind, NodeRecord, ShardRef};
use crate::id::SnapshotId;
use crate::repo::read::loaded::LoadedSnapshot;
use crate::repo::read::repository::Repository;
use crate::repo::read::shard_index::ShardIndex;

/// Shards read at once while comparing an array.
const SHARDS_IN_FLIGHT: usize = 16;

/// What to compare.
#[derive(Clone, Debug, Default)]
pub struct DiffOptions {
    /// Only nodes at or below this path (the whole tree when `None`).
    pub path: Option<NodePath>,
    /// List the coordinates of the chunks added, changed and removed, not only their counts.
    /// Then shards of nodes added or deleted whole are read too.
    pub chunk_coords: bool,
}

/// The difference between two versions, node by node in path order.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionDiff {
    /// The older side.
    pub from: SnapshotId,
    /// The newer side.
    pub to: SnapshotId,
    /// Every node that differs.
    pub nodes: Vec<NodeDiff>,
    /// Manifest shards compared entry by entry.
    pub shards_read: u64,
    /// Manifest shards equal on both sides, skipped without being read.
    pub shards_skipped: u64,
}

/// Whether a node is a group or an array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeType {
    /// A group.
    Group,
    /// An array.
    Array,
}

/// How one node differs.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeDiff {
    /// The node.
    pub path: NodePath,
    /// What happened to it.
    pub change: NodeChange,
    /// Its chunk changes (arrays only; for an array replaced by a group, every chunk removed).
    pub chunks: Option<ChunkDiff>,
}

/// What happened to a node.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeChange {
    /// Only in the newer version.
    Added(NodeType),
    /// Only in the older version.
    Deleted(NodeType),
    /// A group became an array or the other way round.
    Replaced {
        /// What it was.
        from: NodeType,
        /// What it is.
        to: NodeType,
    },
    /// The same kind of node on both sides; its metadata or chunks differ.
    Updated(MetadataDiff),
}

/// How the metadata (`zarr.json`) of a node present on both sides differs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetadataDiff {
    /// The array's shape before and after, when it changed.
    pub shape: Option<(Vec<u64>, Vec<u64>)>,
    /// Attribute keys only in the newer version.
    pub attributes_added: Vec<String>,
    /// Attribute keys only in the older version.
    pub attributes_removed: Vec<String>,
    /// Attribute keys whose values differ.
    pub attributes_changed: Vec<String>,
    /// The codec pipeline differs.
    pub codecs_changed: bool,
    /// Other top-level fields of `zarr.json` that differ (data type, fill value, chunk grid,
    /// dimension names, ...), by name.
    pub other_fields_changed: Vec<String>,
}

impl MetadataDiff {
    /// True when the metadata is the same on both sides.
    pub fn is_empty(&self) -> bool {
        self.shape.is_none()
            && self.attributes_added.is_empty()
            && self.attributes_removed.is_empty()
            && self.attributes_changed.is_empty()
            && !self.codecs_changed
            && self.other_fields_changed.is_empty()
    }
}

/// The chunk changes of one array.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChunkDiff {
    /// Chunks only in the newer version.
    pub added: u64,
    /// Chunks on both sides whose stored references differ (new bytes, or the same bytes
    /// stored elsewhere).
    pub changed: u64,
    /// Chunks only in the older version.
    pub removed: u64,
    /// Bytes of the chunks added, and of the new side of those changed.
    pub bytes_added: u64,
    /// Bytes of the chunks removed, and of the old side of those changed.
    pub bytes_removed: u64,
    /// Coordinates, when asked for ([`DiffOptions::chunk_coords`]), sorted.
    pub coords: Option<ChunkCoords>,
}

/// The coordinates of the chunks added, changed and removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChunkCoords {
    /// Chunks only in the newer version.
    pub added: Vec<ChunkCoord>,
    /// Chunks whose references differ.
    pub changed: Vec<ChunkCoord>,
    /// Chunks only in the older version.
    pub removed: Vec<ChunkCoord>,
}

impl ChunkDiff {
    /// True when no chunk differs.
    pub fn is_empty(&self) -> bool {
        self.added == 0 && self.changed == 0 && self.removed == 0
    }
}

fn node_type(node: &NodeRecord) -> NodeType {
    match node.kind {
        NodeKind::Group => NodeType::Group,
        NodeKind::Array(_) => NodeType::Array,
    }
}

fn manifest_of(node: Option<&NodeRecord>) -> Option<&ArrayManifest> {
    match node.map(|n| &n.kind) {
        Some(NodeKind::Array(manifest)) => Some(manifest),
        _ => None,
    }
}

impl Repository {
    /// What changed from version `from` to version `to` (any two snapshots, related or not).
    pub async fn diff(
        &self,
        from: SnapshotId,
        to: SnapshotId,
        options: &DiffOptions,
    ) -> Result<VersionDiff> {
        let (old, new) = futures::try_join!(self.load_snapshot(&from), self.load_snapshot(&to))?;
        let within = |path: &NodePath| options.path.as_ref().is_none_or(|p| path.is_within(p));
        let mut paths: BTreeSet<&NodePath> = BTreeSet::new();
        for node in old.snapshot.nodes.iter().chain(&new.snapshot.nodes) {
            if within(&node.path) {
                paths.insert(&node.path);
            }
        }
        let mut out = VersionDiff {
            from,
            to,
            nodes: Vec::new(),
            shards_read: 0,
            shards_skipped: 0,
        };
        for path in paths {
            let before = old.snapshot.node(path);
            let after = new.snapshot.node(path);
            let change = match (before, after) {
                (None, Some(a)) => NodeChange::Added(node_type(a)),
                (Some(b), None) => NodeChange::Deleted(node_type(b)),
                (Some(b), Some(a)) if node_type(b) != node_type(a) => NodeChange::Replaced {
                    from: node_type(b),
                    to: node_type(a),
                },
                (Some(b), Some(a)) => NodeChange::Updated(metadata_diff(&old, &new, b, a)?),
                (None, None) => continue,
            };
            let chunks = self
                .chunk_diff(
                    &old,
                    &new,
                    manifest_of(before),
                    manifest_of(after),
                    options,
                    &mut out,
                )
                .await?;
            let unchanged = matches!(&change, NodeChange::Updated(m) if m.is_empty())
                && chunks.as_ref().is_none_or(ChunkDiff::is_empty);
            if !unchanged {
                out.nodes.push(NodeDiff {
                    path: path.clone(),
                    change,
                    chunks,
                });
            }
        }
        Ok(out)
    }

    /// The chunk changes of one node between two manifests (`None` where it is no array).
    async fn chunk_diff(
        &self,
        old: &LoadedSnapshot,
        new: &LoadedSnapshot,
        before: Option<&ArrayManifest>,
        after: Option<&ArrayManifest>,
        options: &DiffOptions,
        totals: &mut VersionDiff,
    ) -> Result<Option<ChunkDiff>> {
        if before.is_none() && after.is_none() {
            return Ok(None);
        }
        let mut diff = ChunkDiff::default();
        let mut coords = ChunkCoords::default();
        let empty = ArrayManifest::default();
        let (before, after) = (before.unwrap_or(&empty), after.unwrap_or(&empty));
        // A change of shard shape (an array deleted and created again) makes shards
        // incomparable by coordinates: then every shard is read. A side without shards (a
        // node added or deleted whole, or an array without chunks) pairs with anything.
        let same_layout = before.shards.is_empty()
            || after.shards.is_empty()
            || before.shard_shape == after.shard_shape;
        let mut pairs: BTreeMap<&ChunkCoord, (Option<&ShardRef>, Option<&ShardRef>)> =
            BTreeMap::new();
        for shard in &before.shards {
            pairs.entry(&shard.coord).or_default().0 = Some(shard);
        }
        for shard in &after.shards {
            pairs.entry(&shard.coord).or_default().1 = Some(shard);
        }
        let mut to_read = Vec::new();
        for (b, a) in pairs.into_values() {
            match (b, a) {
                (Some(b), Some(a)) if same_layout && b == a => totals.shards_skipped += 1,
                // Whole shards added or removed: their statistics say enough.
                (None, Some(a)) if same_layout && !options.chunk_coords => {
                    diff.added += a.chunk_count;
                    diff.bytes_added += a.chunk_bytes;
                }
                (Some(b), None) if same_layout && !options.chunk_coords => {
                    diff.removed += b.chunk_count;
                    diff.bytes_removed += b.chunk_bytes;
                }
                (b, a) => to_read.push((b.cloned(), a.cloned())),
            }
        }
        let read: Vec<(Arc<ShardIndex>, Arc<ShardIndex>)> =
            futures::stream::iter(to_read.into_iter().map(|(b, a)| async move {
                futures::try_join!(
                    self.shard_or_empty(old, b.as_ref()),
                    self.shard_or_empty(new, a.as_ref())
                )
            }))
            .buffered(SHARDS_IN_FLIGHT)
            .try_collect()
            .await?;
        totals.shards_read += read.len() as u64;
        // With differing shard shapes, a chunk may sit in different shards on each side:
        // compare the union of all read shards instead.
        let mut old_refs: BTreeMap<ChunkCoord, ChunkRef> = BTreeMap::new();
        let mut new_refs: BTreeMap<ChunkCoord, ChunkRef> = BTreeMap::new();
        for (b, a) in &read {
            for (coord, r) in b.iter() {
                old_refs.insert(coord.to_vec(), r);
            }
            for (coord, r) in a.iter() {
                new_refs.insert(coord.to_vec(), r);
            }
        }
        for (coord, r) in &new_refs {
            match old_refs.get(coord) {
                None => {
                    diff.added += 1;
                    diff.bytes_added += r.len();
                    coords.added.push(coord.clone());
                }
                Some(o) if o != r => {
                    diff.changed += 1;
                    diff.bytes_added += r.len();
                    diff.bytes_removed += o.len();
                    coords.changed.push(coord.clone());
                }
                Some(_) => {}
            }
        }
        for (coord, r) in &old_refs {
            if !new_refs.contains_key(coord) {
                diff.removed += 1;
                diff.bytes_removed += r.len();
                coords.removed.push(coord.clone());
            }
        }
        if options.chunk_coords {
            diff.coords = Some(coords);
        }
        Ok(Some(diff))
    }
}

impl Repository {
    /// The merged index of a shard of `side`, or an empty one where there is none.
    pub(crate) async fn shard_or_empty(
        &self,
        side: &LoadedSnapshot,
        shard: Option<&ShardRef>,
    ) -> Result<Arc<ShardIndex>> {
        match shard {
            Some(shard) => side.shard_index(self, shard).await,
            None => Ok(Arc::default()),
        }
    }
}

/// How the `zarr.json` documents of a node differ.
fn metadata_diff(
    old: &LoadedSnapshot,
    new: &LoadedSnapshot,
    before: &NodeRecord,
    after: &NodeRecord,
) -> Result<MetadataDiff> {
    let mut diff = MetadataDiff::default();
    if before.zarr_json == after.zarr_json {
        return Ok(diff);
    }
    let parse = |side: &LoadedSnapshot, node: &NodeRecord| -> Result<Map<String, Value>> {
        match serde_json::from_str(&node.zarr_json) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(Error::corrupt(
                format!("snapshots/{}", side.id),
                format!("the metadata of `{}` is not a JSON object", node.path),
            )),
        }
    };
    let (b, a) = (parse(old, before)?, parse(new, after)?);
    let attrs = |m: &Map<String, Value>| match m.get("attributes") {
        Some(Value::Object(attrs)) => attrs.clone(),
        _ => Map::new(),
    };
    let (ba, aa) = (attrs(&b), attrs(&a));
    for (key, value) in &aa {
        match ba.get(key) {
            None => diff.attributes_added.push(key.clone()),
            Some(old_value) if old_value != value => diff.attributes_changed.push(key.clone()),
            Some(_) => {}
        }
    }
    diff.attributes_removed = ba
        .keys()
        .filter(|k| !aa.contains_key(*k))
        .cloned()
        .collect();
    let shape = |m: &Map<String, Value>| -> Option<Vec<u64>> {
        m.get("shape")?
            .as_array()?
            .iter()
            .map(Value::as_u64)
            .collect()
    };
    let (bs, as_) = (shape(&b), shape(&a));
    if bs != as_ {
        diff.shape = Some((bs.unwrap_or_default(), as_.unwrap_or_default()));
    }
    diff.codecs_changed = b.get("codecs") != a.get("codecs");
    let fields: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    diff.other_fields_changed = fields
        .into_iter()
        .filter(|k| !matches!(k.as_str(), "attributes" | "shape" | "codecs"))
        .filter(|k| b.get(*k) != a.get(*k))
        .cloned()
        .collect();
    Ok(diff)
}
