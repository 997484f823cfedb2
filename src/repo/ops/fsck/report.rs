//! What `fsck` is asked to do and what it found.

use std::fmt;

pub use crate::repo::read::shard_counts::ShardCounts;

use crate::format::manifest::ChunkCoord;
use crate::format::path::NodePath;

/// Options of [`Repository::fsck`](crate::Repository::fsck).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsckOptions {
    /// Read every chunk object whole, check its header and recompute its digest (the default).
    /// When false, chunk objects are only sized (one `head` each) so that every chunk
    /// reference's byte range can still be checked; their bytes are not read.
    pub verify_chunk_digests: bool,
}

impl Default for FsckOptions {
    fn default() -> Self {
        FsckOptions {
            verify_chunk_digests: true,
        }
    }
}

/// One thing wrong with a repository. Every problem names the storage key of the object at
/// fault (a snapshot, manifest, transaction log, chunk object or ref record).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FsckProblem {
    /// A referenced object does not exist. `referenced_by` names the first referrer found: a
    /// branch, a tag or the key of an object.
    Missing {
        /// The missing object.
        key: String,
        /// Who references it.
        referenced_by: String,
    },
    /// The object's bytes do not hash to the digest its key names.
    DigestMismatch {
        /// The damaged object.
        key: String,
        /// The blake3 digest of the bytes actually stored (64 hex characters).
        found: String,
    },
    /// The object hashes correctly (or is a ref record, which has no digest) but is not a
    /// valid object of its kind: bad envelope, undecodable payload, broken column, unsorted
    /// or inconsistent structure.
    Corrupt {
        /// The object.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A snapshot's history fields (generation, commit time, skips, recent log) disagree with
    /// its parent or with history.md §1.
    InconsistentHistory {
        /// The snapshot.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A node record of a snapshot is invalid: unparsable or invalid `zarr.json`, a kind that
    /// disagrees with the document, or a node inside an array.
    InvalidNode {
        /// The snapshot.
        key: String,
        /// The node.
        path: NodePath,
        /// What is wrong.
        reason: String,
    },
    /// A manifest entry (of a base object or an inline delta) lies outside the shard that
    /// holds it.
    EntryOutsideShard {
        /// The manifest base, or the snapshot carrying the delta.
        key: String,
        /// The array.
        path: NodePath,
        /// The shard's coordinates.
        shard: ChunkCoord,
        /// The entry's chunk coordinates.
        coord: ChunkCoord,
    },
    /// A shard's content holds chunks outside the array's current chunk grid.
    ChunksOutsideGrid {
        /// The snapshot.
        key: String,
        /// The array.
        path: NodePath,
        /// The shard's coordinates.
        shard: ChunkCoord,
        /// The array's chunk grid.
        grid: Vec<u64>,
    },
    /// A shard's recorded statistics differ from what its base and delta hold.
    StatsMismatch {
        /// The snapshot.
        key: String,
        /// The array.
        path: NodePath,
        /// The shard's coordinates.
        shard: ChunkCoord,
        /// What the snapshot records.
        recorded: ShardCounts,
        /// What the base overlaid by the delta holds.
        actual: ShardCounts,
    },
    /// A native chunk reference's byte range does not lie inside its chunk object's payload
    /// (from the end of the 24-byte header to the end of the object).
    ChunkRefOutOfRange {
        /// The chunk object.
        key: String,
        /// The manifest base, or the snapshot carrying the delta, that holds the reference.
        referenced_by: String,
        /// The chunk's coordinates.
        coord: ChunkCoord,
        /// Offset of the referenced range.
        offset: u64,
        /// Length of the referenced range.
        length: u64,
        /// Size of the chunk object.
        object_size: u64,
    },
}

impl FsckProblem {
    /// The storage key of the object at fault.
    pub fn key(&self) -> &str {
        match self {
            FsckProblem::Missing { key, .. }
            | FsckProblem::DigestMismatch { key, .. }
            | FsckProblem::Corrupt { key, .. }
            | FsckProblem::InconsistentHistory { key, .. }
            | FsckProblem::InvalidNode { key, .. }
            | FsckProblem::EntryOutsideShard { key, .. }
            | FsckProblem::ChunksOutsideGrid { key, .. }
            | FsckProblem::StatsMismatch { key, .. }
            | FsckProblem::ChunkRefOutOfRange { key, .. } => key,
        }
    }

    /// A stable snake_case name of the problem's kind (for scripts), e.g. `missing`.
    pub fn kind(&self) -> &'static str {
        match self {
            FsckProblem::Missing { .. } => "missing",
            FsckProblem::DigestMismatch { .. } => "digest_mismatch",
            FsckProblem::Corrupt { .. } => "corrupt",
            FsckProblem::InconsistentHistory { .. } => "inconsistent_history",
            FsckProblem::InvalidNode { .. } => "invalid_node",
            FsckProblem::EntryOutsideShard { .. } => "entry_outside_shard",
            FsckProblem::ChunksOutsideGrid { .. } => "chunks_outside_grid",
            FsckProblem::StatsMismatch { .. } => "stats_mismatch",
            FsckProblem::ChunkRefOutOfRange { .. } => "chunk_ref_out_of_range",
        }
    }
}

impl fmt::Display for FsckProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsckProblem::Missing { key, referenced_by } => {
                write!(f, "{key}: missing (referenced by {referenced_by})")
            }
            FsckProblem::DigestMismatch { key, found } => {
                write!(f, "{key}: digest mismatch (the stored bytes hash to {found})")
            }
            FsckProblem::Corrupt { key, reason } => write!(f, "{key}: corrupt: {reason}"),
            FsckProblem::InconsistentHistory { key, reason } => {
                write!(f, "{key}: inconsistent history: {reason}")
            }
            FsckProblem::InvalidNode { key, path, reason } => {
                write!(f, "{key}: invalid node {path}: {reason}")
            }
            FsckProblem::EntryOutsideShard { key, path, shard, coord } => write!(
                f,
                "{key}: chunk {coord:?} of {path} is stored in shard {shard:?}, which does not cover it"
            ),
            FsckProblem::ChunksOutsideGrid { key, path, shard, grid } => write!(
                f,
                "{key}: shard {shard:?} of {path} holds chunks outside the chunk grid {grid:?}"
            ),
            FsckProblem::StatsMismatch {
                key,
                path,
                shard,
                recorded,
                actual,
            } => write!(
                f,
                "{key}: shard {shard:?} of {path} records {recorded} but holds {actual}"
            ),
            FsckProblem::ChunkRefOutOfRange {
                key,
                referenced_by,
                coord,
                offset,
                length,
                object_size,
            } => write!(
                f,
                "{key}: chunk {coord:?} in {referenced_by} references bytes {offset}+{length}, \
                 outside the payload of the {object_size}-byte object"
            ),
        }
    }
}

/// What [`Repository::fsck`](crate::Repository::fsck) checked and found.
///
/// Counts are of distinct objects that were found and read, each counted once however many
/// snapshots reference it; missing objects are not counted (they appear in `problems`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FsckReport {
    /// Live branches whose tips were walked.
    pub branches: u64,
    /// Live tags whose snapshots were walked.
    pub tags: u64,
    /// Snapshots read and checked.
    pub snapshots: u64,
    /// Manifest base objects read and checked.
    pub manifests: u64,
    /// Transaction log objects read and checked (inline logs are part of their snapshot).
    pub txlogs: u64,
    /// Chunk objects found (and read whole when chunk digests are verified).
    pub chunk_objects: u64,
    /// Chunk references checked (tombstones excluded): the entries of each distinct manifest
    /// base plus those of each distinct inline delta (a shard carried over unchanged by later
    /// snapshots is counted once).
    pub chunk_refs: u64,
    /// Snapshots the history of others names that garbage collection deleted (expired or
    /// unreferenced history; not problems).
    pub expired_snapshots: u64,
    /// Bytes whose digest was recomputed: every snapshot, manifest and transaction log object
    /// read, plus every chunk object when chunk digests are verified.
    pub bytes_verified: u64,
    /// Everything wrong, sorted by key. Empty for a sound repository.
    pub problems: Vec<FsckProblem>,
}

impl FsckReport {
    /// True when no problem was found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}
