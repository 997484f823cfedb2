//! The regular-grid view of arrays stored with a rectilinear chunk grid, for the many Zarr v3
//! clients (zarr-python 3.1 among them) that only read regular grids.
//!
//! The default chunk shape of that view is, per dimension, the largest stored chunk edge
//! length ([`default_regular_chunk_shape`]): monthly chunks of daily data (31, 28, 31, 30,
//! ...) are served in regular chunks of 31 days, so every requested chunk overlaps at most two
//! stored chunks along each dimension and is never larger than a box holding any stored chunk.

use crate::error::{Error, Result};
use crate::zarr::metadata::ArrayGeometry;
use crate::zarr::store::ZarrStore;

use super::assemble::ViewArray;
use super::{ChunkShapeRequest, DecodedChunkCache, RechunkedStore};

/// The chunk shape the regular-grid view serves an array stored with a rectilinear grid in:
/// per dimension the largest chunk edge length (at least 1). `None` for a regular grid, which
/// needs no view.
pub fn default_regular_chunk_shape(geometry: &ArrayGeometry) -> Option<Vec<u64>> {
    if geometry.chunk_grid.is_regular() {
        return None;
    }
    Some(
        geometry
            .max_chunk_shape()
            .into_iter()
            .map(|c| c.max(1))
            .collect(),
    )
}

impl RechunkedStore {
    /// The view plain Zarr v3 clients get by default: the arrays of `request` (if any) in
    /// their requested chunk shapes, and every other array stored with a rectilinear chunk
    /// grid through a regular grid of [`default_regular_chunk_shape`]. Regular arrays not
    /// named by `request`, and rectilinear arrays a view cannot serve (variable-length data
    /// types, chunks above [`super::MAX_VIEW_CHUNK_BYTES`]), are served as stored.
    ///
    /// `Ok(None)` when there is nothing to change (no request and no rectilinear array that a
    /// view can serve): serve `store` itself. [`RechunkedStore::request`] of the result names
    /// every array the view changes.
    ///
    /// Errors as [`RechunkedStore::new`] for `request` (and when `store` is writable).
    pub fn with_regular_grids(
        store: ZarrStore,
        request: Option<&ChunkShapeRequest>,
        cache: DecodedChunkCache,
    ) -> Result<Option<Self>> {
        let mut effective = request.cloned().unwrap_or_else(ChunkShapeRequest::empty);
        for node in store.session().list_nodes()? {
            let Some(shape) = node
                .metadata
                .geometry()
                .and_then(default_regular_chunk_shape)
            else {
                continue;
            };
            if effective.chunk_shape(&node.path).is_some() {
                continue;
            }
            let skip = |reason: String| Error::InvalidRechunk {
                request: node.path.to_string(),
                reason,
            };
            if ViewArray::new(&store, &node, &shape, &skip).is_ok() {
                effective = effective.with_default(node.path.clone(), shape);
            }
        }
        if effective.is_empty() {
            return Ok(None);
        }
        RechunkedStore::new(store, &effective, cache).map(Some)
    }
}
