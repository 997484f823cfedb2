//! The repository handle and what it reads: opening, settings, the snapshot and manifest caches, loaded snapshots and shard indexes.

pub(crate) mod loaded;
pub(crate) mod repository;
pub(crate) mod settings;
pub(crate) mod shard_counts;
pub(crate) mod shard_index;
