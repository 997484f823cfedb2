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
mod storage;
mod zarr;

pub use error::{ConflictDetail, Error, Result};
pub use format::manifest::ChunkCoord;
pub use format::path::NodePath;
pub use id::{ChunkObjectId, ManifestId, SnapshotId, TxLogId};
pub use repo::{
    ArrayStats, BranchInfo, ChunkChanges, FsckOptions, FsckProblem, FsckReport, LogEntry, NodeInfo,
    Repository, RepositoryInfo, RepositorySettings, Session, SessionStatus, ShardCounts, TagInfo,
    VersionSpec, DEFAULT_BRANCH, REPOSITORY_FORMAT,
};
pub use storage::{
    create_storage, open_storage, DirListing, DynStorage, Fault, FaultCounts, FaultRule,
    FaultyStorage, ListedObject, ObjectStoreStorage, PutOutcome, Storage, StorageOp,
    StorageOptions,
};
pub use zarr::metadata::{ArrayGeometry, ChunkKeyEncoding, NodeMetadata};
pub use zarr::store::{ByteRange, ZarrStore};
pub use zarr::zarrs_adapter::{AsyncZarrsStore, SyncZarrsStore};

/// The README's examples, compiled as doc tests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
