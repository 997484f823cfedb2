//! floe: a versioned, transactional store for Zarr v3 arrays on any object store.
//!
//! See the README for a tour and `spec/` for the on-disk format.

#![warn(missing_docs)]
#![deny(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod error;
mod format;
mod id;
mod repo;
#[cfg(feature = "server")]
pub mod server;
mod storage;
mod virtual_refs;
mod zarr;

pub use error::{ConflictDetail, Error, Result};
pub use format::lifecycle::{ExpiryCut, GcEntry, GcObject, GcReason};
pub use format::manifest::{ChunkCoord, SourceChecksum, VirtualChunkRef, VirtualSource};
pub use format::path::NodePath;
pub use id::{ChunkObjectId, ManifestId, SnapshotId, TxLogId};
pub use repo::{
    ArrayStats, BranchExpiry, BranchInfo, BranchMove, ChangeStream, ChunkChanges, ChunkCoords,
    ChunkDiff, DiffOptions, ExpireBefore, ExpireOptions, ExpireReport, ForkMergeSummary,
    FsckOptions, FsckProblem, FsckReport, GcOptions, GcReport, LogEntry, MergeCounts, MergeOptions,
    MergeReport, MergeStrategy, MetadataDiff, NodeChange, NodeDiff, NodeInfo, NodeType,
    ReflogEntry, Repository, RepositoryInfo, RepositorySettings, Session, SessionStatus,
    ShardCounts, SparsePack, SquashOptions, SquashReport, TagInfo, VersionDiff, VersionSpec,
    DEFAULT_BRANCH, REPOSITORY_FORMAT,
};
pub use storage::with_inline_io;
pub use storage::{
    create_storage, open_storage, DirListing, DynStorage, Fault, FaultCounts, FaultRule,
    FaultyStorage, ListedObject, Meter, MeterReading, MeteredCall, MeteredStorage,
    ObjectStoreStorage, PutOutcome, Storage, StorageOp, StorageOptions,
};
pub use storage::{
    with_cache, CacheCounters, CacheStats, CachedStorage, LocalCache, DEFAULT_CACHE_BUDGET,
};
pub use virtual_refs::{
    expand_sources, scan_bytes, scan_source, scan_sources, scan_sources_with_progress, ScanProgress,
};
pub use virtual_refs::{
    import_kerchunk, import_kerchunk_with_progress, ConvertedTimes, ImportOptions, ImportProgress,
    ImportSummary, ImportedContainer, KeptAttribute, KerchunkRef, KerchunkRefs, LoadReason,
    LoadedArray, ScanSummary, SourceChunk, VirtualAccess, VirtualContainer, VirtualReadStats,
    DEFAULT_LOAD_LIMIT,
};
pub use zarr::chunk_grid::{ChunkEdges, ChunkGrid, EdgeRuns};
pub use zarr::metadata::{ArrayGeometry, ChunkKeyEncoding, NodeMetadata};
pub use zarr::rechunk::{
    default_regular_chunk_shape, ChunkShapeRequest, DecodedChunkCache, DecodedChunkCacheStats,
    RechunkedStore, MAX_VIEW_CHUNK_BYTES,
};
pub use zarr::store::{ByteRange, ZarrStore};
pub use zarr::zarrs_adapter::{AsyncZarrsStore, SyncZarrsStore};

/// The README's examples, compiled as doc tests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
