//! Rechunked views: a read-only [`ZarrStore`] in which some arrays are served in another
//! chunk shape than they are stored in, assembled on the fly. Nothing is stored twice.
//!
//! - [`ChunkShapeRequest`] parses the zarr-proxy grammar (`temperature=256,256,30,...`).
//! - [`RechunkedStore`] serves the same keys as the wrapped store, except for the requested
//!   arrays: their `zarr.json` (and their entry in the consolidated `zarr.json` of every group
//!   above them) reports a regular chunk grid of the requested shape, and their chunk keys
//!   address the new grid.
//! - A requested chunk is assembled by decoding only the stored chunks it overlaps (codecs
//!   through zarrs), copying the overlapping parts, filling the rest with the fill value and
//!   encoding the result with the array's codecs for the new chunk shape. Edge chunks are
//!   full-size, padded with the fill value, so any Zarr v3 client decodes them.
//! - A requested chunk is absent when no stored chunk under it exists (it reads as the fill
//!   value). Listings show the requested chunks that overlap at least one stored chunk.
//! - Arrays stored with the sharding codec are served with the sharding codec replaced by its
//!   inner codec chain (array-to-array codecs before it and bytes-to-bytes codecs after it are
//!   kept): a shard shape would not match the requested chunk shape.
//! - Decoded stored chunks are kept in a [`DecodedChunkCache`], which can be shared by the
//!   views of one or several snapshots.
//!
//! Only fixed-size data types (bool, integers, floats, complex, fixed-size raw bits and
//! strings) can be rechunked; asking for an array with a variable-length data type fails with
//! [`Error::InvalidRechunk`].

mod assemble;
mod consolidated;
mod decoded_cache;
mod geometry;
mod listing;
mod regular_grid;
mod request;

use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::path::NodePath;
use crate::id::SnapshotId;

use super::group_documents::GroupDocuments;
use super::keys::parse_chunk_key_suffix;
use super::store::{ByteRange, ZarrStore};

use assemble::ViewArray;
pub use assemble::MAX_VIEW_CHUNK_BYTES;
pub use decoded_cache::{DecodedChunkCache, DecodedChunkCacheStats};
pub use regular_grid::default_regular_chunk_shape;
pub use request::ChunkShapeRequest;

/// A read-only [`ZarrStore`] with some arrays served in a requested chunk shape.
///
/// Offers the read API of [`ZarrStore`] (`get`, `get_range`, `size`, `exists`, `list`,
/// `list_prefix`, `list_dir`). Keys of arrays the request does not name, and of groups, are
/// answered by the wrapped store unchanged. Cheap to clone; clones share the decoded chunk
/// cache.
#[derive(Clone, Debug)]
pub struct RechunkedStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: ZarrStore,
    request: ChunkShapeRequest,
    arrays: Vec<ViewArray>,
    /// The consolidated documents of the groups above requested arrays, with the arrays' view
    /// metadata (when the wrapped store consolidates).
    documents: GroupDocuments,
    cache: DecodedChunkCache,
    snapshot: SnapshotId,
}

/// What a key of the view addresses.
enum ViewKey<'a> {
    /// Not part of any requested array: the wrapped store answers.
    Passthrough,
    /// The consolidated `zarr.json` of a group above a requested array, which shows the view
    /// metadata of the requested arrays below it.
    Group(NodePath),
    /// The `zarr.json` of a requested array.
    Metadata(&'a ViewArray),
    /// A chunk of a requested array in the requested grid.
    Chunk(&'a ViewArray, Vec<u64>),
    /// Inside a requested array's key space but not a chunk of the requested grid.
    Nothing,
}

impl RechunkedStore {
    /// The view of `store` with the arrays of `request` in their requested chunk shapes,
    /// decoding stored chunks through `cache`.
    ///
    /// Errors with [`Error::InvalidRechunk`] when `store` is writable (views serve a fixed
    /// version), when a requested array does not exist, is a group, has another number of
    /// dimensions than chunk sizes given, has a variable-length data type or codecs zarrs
    /// cannot open, or when a requested chunk would exceed [`MAX_VIEW_CHUNK_BYTES`].
    pub fn new(
        store: ZarrStore,
        request: &ChunkShapeRequest,
        cache: DecodedChunkCache,
    ) -> Result<Self> {
        let text = request.to_string();
        let fail = |reason: String| Error::InvalidRechunk {
            request: text.clone(),
            reason,
        };
        if store.is_writable() {
            return Err(fail(
                "rechunked views serve a fixed version: open a read-only session (a branch, tag, snapshot or time) first".into(),
            ));
        }
        let session = store.session().clone();
        let mut arrays = Vec::new();
        for (path, chunk_shape) in request.arrays() {
            let Some(node) = session.node(path)? else {
                return Err(fail(format!(
                    "no array `{}` in this version",
                    path.as_str()
                )));
            };
            arrays.push(ViewArray::new(&store, &node, chunk_shape, &fail)?);
        }
        Ok(RechunkedStore {
            inner: Arc::new(Inner {
                snapshot: session.snapshot_id(),
                store,
                request: request.clone(),
                arrays,
                documents: GroupDocuments::default(),
                cache,
            }),
        })
    }

    /// The wrapped store.
    pub fn store(&self) -> &ZarrStore {
        &self.inner.store
    }

    /// The request this view serves.
    pub fn request(&self) -> &ChunkShapeRequest {
        &self.inner.request
    }

    /// The decoded chunk cache of this view.
    pub fn cache(&self) -> &DecodedChunkCache {
        &self.inner.cache
    }

    fn classify(&self, key: &str) -> ViewKey<'_> {
        if let Some(group) = self.consolidating_group(key) {
            return ViewKey::Group(group);
        }
        if key == super::resolve::METADATA_FILE {
            // A root array in the view: its document is the view's, like any array's.
            if let Some(array) = self.inner.arrays.iter().find(|a| a.path.is_root()) {
                return ViewKey::Metadata(array);
            }
            return ViewKey::Passthrough;
        }
        for array in &self.inner.arrays {
            let prefix = array.path.key_prefix();
            let Some(suffix) = key.strip_prefix(&prefix) else {
                continue;
            };
            if suffix == super::resolve::METADATA_FILE {
                return ViewKey::Metadata(array);
            }
            let geometry = array.view_geometry();
            return match parse_chunk_key_suffix(geometry.key_encoding, geometry.shape.len(), suffix)
            {
                Some(coords) if geometry.contains_chunk(&coords) => ViewKey::Chunk(array, coords),
                _ => ViewKey::Nothing,
            };
        }
        ViewKey::Passthrough
    }

    async fn assemble(&self, array: &ViewArray, coords: &[u64]) -> Result<Option<Bytes>> {
        array
            .assemble(
                &self.inner.store,
                &self.inner.cache,
                self.inner.snapshot,
                coords,
            )
            .await
    }

    /// The value of `key` in the view, `None` when absent (see [`ZarrStore::get`]).
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        match self.classify(key) {
            ViewKey::Passthrough => self.inner.store.get(key).await,
            ViewKey::Group(path) => self.group_document(&path),
            ViewKey::Metadata(array) => Ok(Some(array.document.clone())),
            ViewKey::Chunk(array, coords) => self.assemble(array, &coords).await,
            ViewKey::Nothing => Ok(None),
        }
    }

    /// A byte range of the value of `key`, `None` when absent (see [`ZarrStore::get_range`]).
    /// A requested chunk is assembled whole, then sliced.
    ///
    /// Errors with [`Error::InvalidByteRange`] when the range starts past the end of the value.
    pub async fn get_range(&self, key: &str, range: ByteRange) -> Result<Option<Bytes>> {
        if matches!(self.classify(key), ViewKey::Passthrough) {
            return self.inner.store.get_range(key, range).await;
        }
        let Some(bytes) = self.get(key).await? else {
            return Ok(None);
        };
        let size = bytes.len() as u64;
        match range.resolve(size) {
            Some(r) => Ok(Some(bytes.slice(r.start as usize..r.end as usize))),
            None => {
                let (start, end) = match range {
                    ByteRange::Bounded { start, end } => (start, end),
                    ByteRange::FromOffset(start) => (start, start),
                    ByteRange::Suffix(n) => (size.saturating_sub(n), size),
                };
                Err(Error::InvalidByteRange {
                    key: key.to_string(),
                    start,
                    end,
                    size,
                })
            }
        }
    }

    /// The size in bytes of the value of `key`, `None` when absent. For a requested chunk
    /// this assembles and encodes it.
    pub async fn size(&self, key: &str) -> Result<Option<u64>> {
        match self.classify(key) {
            ViewKey::Passthrough => self.inner.store.size(key).await,
            _ => Ok(self.get(key).await?.map(|b| b.len() as u64)),
        }
    }

    /// True when `key` has a value. For a requested chunk this checks whether a stored chunk
    /// under it exists, without decoding anything.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        match self.classify(key) {
            // A group's document exists in the view when the group exists.
            ViewKey::Passthrough | ViewKey::Group(_) => self.inner.store.exists(key).await,
            ViewKey::Metadata(_) => Ok(true),
            ViewKey::Chunk(array, coords) => array.chunk_exists(&self.inner.store, &coords).await,
            ViewKey::Nothing => Ok(false),
        }
    }
}
