//! The Zarr v3 view of a session: keys, metadata, and the key-value store.

pub mod keys;
pub mod metadata;
