//! Snapshots: the immutable record of one version of the whole repository.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::manifest::{ChunkCoord, ManifestColumns};
use super::path::NodePath;
use super::txlog::TxLog;
use crate::id::{ManifestId, SnapshotId, TxLogId};

/// How many log entries of its nearest ancestors each snapshot carries.
pub const RECENT_LOG_LEN: usize = 32;
/// Log entries whose message plus metadata exceed this many bytes are carried without them.
pub const RECENT_ENTRY_MAX_TEXT: usize = 512;
/// The base of the history pages: a snapshot whose generation is a multiple of `32^k` (k ≥ 1)
/// is a page of level k (history.md §1).
pub const HISTORY_PAGE_BASE: u64 = 32;

/// One version of the repository.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The previous snapshot on the branch (`None` for the repository's first snapshot).
    pub parent: Option<SnapshotId>,
    /// Number of ancestors (0 for the first snapshot).
    pub generation: u64,
    /// Commit time in microseconds since the Unix epoch; strictly increasing along ancestry.
    pub committed_at_us: i64,
    /// Commit message.
    pub message: String,
    /// Commit metadata: a JSON object, as JSON text.
    pub metadata_json: String,
    /// Every group and array, sorted by path.
    pub nodes: Vec<NodeRecord>,
    /// What this commit changed relative to its parent.
    pub txlog: TxLogRef,
    /// Ancestors at distances 1, 2, 4, 8, ... (for O(log n) as-of and ancestry lookups).
    pub skips: Vec<AncestorRef>,
    /// Log entries of the ancestors at distances 1..=RECENT_LOG_LEN, nearest first.
    pub recent: Vec<LogRecord>,
    /// The history pages of its block at every level (history.md §1): ancestors whose
    /// generation is a multiple of 32, so that whole-history queries fetch them together
    /// instead of one after another. Empty in snapshots written before pages existed (readers then
    /// fall back to walking `recent`, one snapshot after another).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pages: Vec<AncestorRef>,
    /// A merge commit's source: the snapshot merged into the parent's branch (spec/objects.md
    /// §3). It counts as an ancestor when the next merge looks for the nearest common
    /// ancestor, so that merge starts from here. Its history is kept only while a branch or
    /// tag reaches it: the merge commit carries everything it needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<SnapshotId>,
    /// The commit this one replaced when history was rewritten (a squash's last commit, an
    /// amended tip, a commit replayed onto a squash): its content is carried over. Not an
    /// ancestor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewritten_from: Option<SnapshotId>,
}

impl Snapshot {
    /// The snapshots besides the parent whose manifest shards and chunk objects this one may
    /// carry over unchanged ([`Snapshot::merged`], [`Snapshot::rewritten_from`]): garbage
    /// collection follows these edges as it follows parents (spec/algorithms.md §14).
    pub fn content_sources(&self) -> impl Iterator<Item = SnapshotId> + '_ {
        self.merged.iter().chain(&self.rewritten_from).copied()
    }

    /// Commit time as a UTC timestamp.
    pub fn committed_at(&self) -> DateTime<Utc> {
        micros_to_time(self.committed_at_us)
    }

    /// Looks up a node by path (nodes are sorted by path).
    pub fn node(&self, path: &NodePath) -> Option<&NodeRecord> {
        self.nodes
            .binary_search_by(|n| n.path.cmp(path))
            .ok()
            .map(|i| &self.nodes[i])
    }
}

/// Converts stored microseconds to a timestamp (out-of-range values clamp to the epoch).
pub fn micros_to_time(us: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(us).single().unwrap_or_default()
}

/// A pointer to an ancestor with what as-of and ancestry searches need.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AncestorRef {
    /// The ancestor.
    pub id: SnapshotId,
    /// Its generation.
    pub generation: u64,
    /// Its commit time (microseconds since the epoch).
    pub committed_at_us: i64,
}

/// One entry of the history log carried inside descendants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// The snapshot.
    pub id: SnapshotId,
    /// Its generation.
    pub generation: u64,
    /// Its commit time (microseconds since the epoch).
    pub committed_at_us: i64,
    /// Message and metadata JSON, unless they were too long to carry (then read the snapshot).
    pub text: Option<(String, String)>,
}

/// A group or an array.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Where the node lives.
    pub path: NodePath,
    /// The node's full Zarr v3 `zarr.json` document (including attributes), as JSON text.
    pub zarr_json: String,
    /// Group or array, with the array's manifest.
    pub kind: NodeKind,
}

/// What a node is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum NodeKind {
    /// A group.
    Group,
    /// An array and where its chunk references live.
    Array(ArrayManifest),
}

/// The chunk references of one array, split into shards over its chunk grid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ArrayManifest {
    /// Shard shape in chunks per dimension; fixed when the array's first chunk is written so
    /// that shard boundaries never move as the array grows.
    pub shard_shape: Vec<u64>,
    /// Non-empty shards sorted by shard coordinates.
    pub shards: Vec<ShardRef>,
}

/// One manifest shard: an optional base object plus an inline delta carried in the snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRef {
    /// Shard coordinates (chunk coordinates divided by the shard shape).
    pub coord: ChunkCoord,
    /// The compacted entries of the shard, if any.
    pub base: Option<ManifestId>,
    /// Per dimension, the smallest and largest chunk coordinate of the base's entries. A
    /// writer whose edits all fall outside this box knows, without reading the base, that
    /// they add chunks rather than replace any (an append never reads the base). `None` when
    /// there is no base, or when it is unknown (writers then read the base).
    #[serde(default)]
    pub base_box: Option<(ChunkCoord, ChunkCoord)>,
    /// Entries changed since the base was written (tombstones delete base entries).
    pub delta: Option<ManifestColumns>,
    /// Number of chunks the shard references.
    pub chunk_count: u64,
    /// Sum of the lengths of the chunks the shard references.
    pub chunk_bytes: u64,
    /// How many of the chunks are stored inline.
    pub inline_count: u64,
    /// How many of the chunks are virtual (byte ranges of files outside the repository).
    /// Absent when zero (so snapshots without virtual chunks encode as before).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub virtual_count: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Where a snapshot's transaction log lives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TxLogRef {
    /// Small logs are carried in the snapshot.
    Inline(TxLog),
    /// Large logs are separate objects.
    Object(TxLogId),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::envelope::{decode, encode, ObjectKind};
    use crate::format::manifest::ChunkRef;

    pub(crate) fn sample_snapshot() -> Snapshot {
        let delta = ManifestColumns::encode(&[(
            vec![0, 0],
            Some(ChunkRef::Inline(bytes::Bytes::from_static(b"xy"))),
        )])
        .unwrap();
        Snapshot {
            parent: Some(SnapshotId::of_bytes(b"p")),
            generation: 7,
            committed_at_us: 1_700_000_000_000_000,
            message: "append day 7".into(),
            metadata_json: r#"{"author":"cron"}"#.into(),
            nodes: vec![
                NodeRecord {
                    path: NodePath::root(),
                    zarr_json: r#"{"zarr_format":3,"node_type":"group"}"#.into(),
                    kind: NodeKind::Group,
                },
                NodeRecord {
                    path: NodePath::new("t2m").unwrap(),
                    zarr_json: "{}".into(),
                    kind: NodeKind::Array(ArrayManifest {
                        shard_shape: vec![4096, 1],
                        shards: vec![ShardRef {
                            coord: vec![0, 0],
                            base: Some(ManifestId::of_bytes(b"m")),
                            base_box: Some((vec![0, 0], vec![3, 0])),
                            delta: Some(delta),
                            chunk_count: 3,
                            chunk_bytes: 300,
                            inline_count: 1,
                            virtual_count: 0,
                        }],
                    }),
                },
            ],
            txlog: TxLogRef::Object(TxLogId::of_bytes(b"t")),
            skips: vec![AncestorRef {
                id: SnapshotId::of_bytes(b"p"),
                generation: 6,
                committed_at_us: 1,
            }],
            pages: vec![AncestorRef {
                id: SnapshotId::of_bytes(b"page"),
                generation: 32,
                committed_at_us: 0,
            }],
            recent: vec![LogRecord {
                id: SnapshotId::of_bytes(b"p"),
                generation: 6,
                committed_at_us: 1,
                text: Some(("m".into(), "{}".into())),
            }],
            merged: Some(SnapshotId::of_bytes(b"source")),
            rewritten_from: None,
        }
    }

    #[test]
    fn snapshot_round_trip() {
        let snap = sample_snapshot();
        let bytes = encode(ObjectKind::Snapshot, &snap).unwrap();
        let back: Snapshot = decode("s", &bytes, ObjectKind::Snapshot).unwrap();
        assert_eq!(back, snap);
        assert_eq!(
            back.node(&NodePath::new("t2m").unwrap()).unwrap().zarr_json,
            "{}"
        );
        assert!(back.node(&NodePath::new("nope").unwrap()).is_none());
        assert_eq!(back.committed_at().timestamp(), 1_700_000_000);
    }

    #[test]
    fn snapshot_rejects_corruption() {
        let bytes = encode(ObjectKind::Snapshot, &sample_snapshot()).unwrap();
        let mut bad = bytes.to_vec();
        let last = bad.len() - 3;
        bad.truncate(last);
        assert!(decode::<Snapshot>("s", &bad, ObjectKind::Snapshot).is_err());
        assert!(decode::<Snapshot>("s", &bytes, ObjectKind::Manifest).is_err());
    }
}
