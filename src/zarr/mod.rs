//! The Zarr v3 view of a session: keys, metadata, the key-value store and the zarrs adapters.

pub(crate) mod base64;
pub mod chunk_grid;
pub mod consolidated;
pub(crate) mod group_documents;
pub mod keys;
pub mod listing;
pub mod metadata;
pub mod rechunk;
pub(crate) mod region;
pub mod resolve;
pub mod store;
pub mod zarrs_adapter;
pub(crate) mod zarrs_compat;
