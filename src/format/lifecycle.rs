//! Records of the repository's lifecycle: the expiry horizon (which history edges were cut)
//! and garbage-collection runs (what was condemned, what was deleted, and the retained graph
//! the next run starts from). Layouts in spec/objects.md §10 and §11.

use serde::{Deserialize, Serialize};

use crate::id::{ChunkObjectId, ManifestId, SnapshotId, TxLogId};

/// One history edge that expiry cut: `child` stays, its parent and everything only reachable
/// through it are expired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiryCut {
    /// The oldest retained snapshot of this line of history.
    pub child: SnapshotId,
    /// Its generation.
    pub child_generation: u64,
    /// Its commit time.
    pub child_committed_at_us: i64,
    /// Its parent, the newest expired snapshot.
    pub parent: SnapshotId,
    /// What the cut was made for: `branch <name>` or `tag <name>`.
    pub reason: String,
    /// The expiry threshold used: history committed before it was expired.
    pub older_than_us: i64,
    /// When the expiry ran (the store's clock).
    pub expired_at_us: i64,
}

/// The expiry horizon: every cut made so far. Key `config/expiry/<seq>`; the newest record
/// holds the whole list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiryRecord {
    /// The record's position; equals the `<seq>` of its key.
    pub seq: u64,
    /// When the record was written (the store's clock).
    pub written_at_us: i64,
    /// The cuts, sorted by child id, unique by child.
    pub cuts: Vec<ExpiryCut>,
}

impl ExpiryRecord {
    /// True when the edge from `child` to its parent was cut.
    pub fn is_cut(&self, child: &SnapshotId) -> bool {
        self.cut_of(child).is_some()
    }

    /// The cut made at `child`, if any.
    pub fn cut_of(&self, child: &SnapshotId) -> Option<&ExpiryCut> {
        self.cuts
            .binary_search_by(|c| c.child.cmp(child))
            .ok()
            .map(|i| &self.cuts[i])
    }
}

/// An object GC may delete. Variants are declared in deletion order (snapshots first, then
/// what they reference, chunk objects last), so sorting entries sorts them for deletion and
/// every snapshot that still exists stays complete at every moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum GcObject {
    /// `snapshots/<id>`.
    Snapshot(SnapshotId),
    /// `txlogs/<id>`.
    TxLog(TxLogId),
    /// `manifests/<id>`.
    Manifest(ManifestId),
    /// `chunks/<id>`.
    Chunks(ChunkObjectId),
}

/// Why an object was condemned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum GcReason {
    /// Only expired history referenced it.
    Expired,
    /// Only snapshots no branch or tag reaches referenced it (reset or deleted branches,
    /// deleted tags).
    Unreferenced,
    /// No snapshot references it at all (found by a full run: crashed commits, aborted
    /// uploads, commits that lost their race).
    Orphan,
}

/// One condemned object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcEntry {
    /// The object.
    pub object: GcObject,
    /// Why.
    pub reason: GcReason,
    /// When it was first condemned (the store's clock).
    pub condemned_at_us: i64,
    /// Its size in bytes when known (0 when not).
    pub size: u64,
}

/// One retained snapshot as the graph of a GC run remembers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphNode {
    /// The snapshot.
    pub id: SnapshotId,
    /// Its parent.
    pub parent: Option<SnapshotId>,
    /// Its generation.
    pub generation: u64,
    /// The snapshots besides the parent whose shards it may carry over (a merge's source, the
    /// commit a rewrite replaced: [`crate::format::snapshot::Snapshot::content_sources`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SnapshotId>,
}

impl GraphNode {
    /// The node of a snapshot as GC remembers it.
    pub fn of(id: SnapshotId, snapshot: &crate::format::snapshot::Snapshot) -> GraphNode {
        GraphNode {
            id,
            parent: snapshot.parent,
            generation: snapshot.generation,
            sources: snapshot.content_sources().collect(),
        }
    }

    /// Every snapshot whose shards this one may carry over: its parent and its sources.
    pub fn lineage(&self) -> impl Iterator<Item = SnapshotId> + '_ {
        self.parent.iter().chain(&self.sources).copied()
    }
}

/// One garbage-collection run. Key `gc/<seq>`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcRecord {
    /// The record's position; equals the `<seq>` of its key.
    pub seq: u64,
    /// When the run started (the store's clock).
    pub started_at_us: i64,
    /// The grace period of the run, in microseconds.
    pub grace_us: i64,
    /// True for a run that also listed storage.
    pub full: bool,
    /// Per branch, the newest record the run read.
    pub branches: Vec<(String, u64)>,
    /// Every retained snapshot when the run started, sorted by id.
    pub retained: Vec<GraphNode>,
    /// Every other snapshot GC runs have seen (dropped, condemned or deleted since), sorted
    /// by id: the parents of history that is gone, to find the nearest retained ancestor of
    /// what is dropped later.
    #[serde(default)]
    pub others: Vec<GraphNode>,
    /// Objects condemned and not yet deleted, sorted by object.
    pub condemned: Vec<GcEntry>,
    /// Objects this run deletes (written before the first delete), sorted by object.
    pub deleting: Vec<GcEntry>,
}
