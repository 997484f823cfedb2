//! One array seen through a rechunked view: its view metadata, and the assembly of a requested
//! chunk from the stored chunks it overlaps (decode with zarrs, copy, fill, encode with zarrs).

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::num::NonZeroU64;
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde_json::{json, Map, Value};
use zarrs::array::{Array, ArrayBytes, ArrayToBytesCodecTraits, CodecOptions};

use crate::error::{Error, Result};
use crate::format::path::NodePath;
use crate::id::SnapshotId;
use crate::repo::NodeInfo;
use crate::zarr::chunk_grid::ChunkGrid;
use crate::zarr::keys::chunk_key;
use crate::zarr::metadata::{ArrayGeometry, NodeMetadata};
use crate::zarr::store::ZarrStore;
use crate::zarr::zarrs_adapter::AsyncZarrsStore;

use super::decoded_cache::DecodedChunkCache;
use super::geometry::{
    copy_region, for_each_index, intersect, stored_chunks_overlapping, view_chunk_region,
    view_chunks_overlapping_stored, Block, StoredGrid,
};

/// The largest requested chunk a view assembles, in decoded bytes.
pub const MAX_VIEW_CHUNK_BYTES: u64 = 512 << 20;

/// How many stored chunks of one requested chunk are read and decoded concurrently.
const CONCURRENT_LOADS: usize = 8;

/// The name of the sharding codec, which views replace by its inner codecs.
const SHARDING_CODEC: &str = "sharding_indexed";

/// A requested array of a view.
pub(crate) struct ViewArray {
    pub(crate) path: NodePath,
    stored_geometry: ArrayGeometry,
    /// The metadata as the view serves it (geometry with the requested chunk shape).
    pub(crate) view: Arc<NodeMetadata>,
    /// The rendered view `zarr.json`.
    pub(crate) document: Bytes,
    view_geometry: ArrayGeometry,
    grid: StoredGrid,
    /// The stored array opened with zarrs (its codec chain decodes stored chunks).
    stored: Array<AsyncZarrsStore>,
    /// The view array opened with zarrs (its codec chain encodes requested chunks).
    encoder: Array<AsyncZarrsStore>,
    element_size: usize,
    /// The requested chunk shape.
    chunk_shape: Vec<u64>,
    view_chunk_shape: Vec<NonZeroU64>,
}

impl std::fmt::Debug for ViewArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewArray")
            .field("path", &self.path)
            .field("stored_chunk_grid", &self.stored_geometry.chunk_grid)
            .field("view_chunk_shape", &self.chunk_shape)
            .finish()
    }
}

fn non_zero(shape: &[u64]) -> Option<Vec<NonZeroU64>> {
    shape.iter().map(|&s| NonZeroU64::new(s)).collect()
}

/// The codec list with every sharding codec replaced by its inner codecs (a shard shape would
/// not match the requested chunk shape).
fn without_sharding(codecs: &[Value]) -> Vec<Value> {
    let mut out = Vec::with_capacity(codecs.len());
    for codec in codecs {
        let inner = (codec.get("name").and_then(Value::as_str) == Some(SHARDING_CODEC))
            .then(|| {
                codec
                    .pointer("/configuration/codecs")
                    .and_then(Value::as_array)
            })
            .flatten();
        match inner {
            Some(inner) => out.extend(without_sharding(inner)),
            None => out.push(codec.clone()),
        }
    }
    out
}

/// The view `zarr.json` of an array document: the regular grid of `chunk_shape`, and the
/// sharding codec replaced by its inner chain.
fn view_document(document: &Map<String, Value>, chunk_shape: &[u64]) -> Map<String, Value> {
    let mut view = document.clone();
    view.insert(
        "chunk_grid".into(),
        json!({"name": "regular", "configuration": {"chunk_shape": chunk_shape}}),
    );
    if let Some(codecs) = document.get("codecs").and_then(Value::as_array) {
        view.insert("codecs".into(), Value::Array(without_sharding(codecs)));
    }
    view
}

/// The document zarrs opens to decode stored chunks: the stored one, except that a
/// rectilinear grid is replaced by the regular grid of its largest chunk edges. Only the codec
/// chain, data type and fill value are used (each stored chunk is decoded with its own shape),
/// and zarrs would expand a rectilinear grid's run-length pairs in memory.
fn decoder_document(metadata: &NodeMetadata) -> Map<String, Value> {
    let document = metadata.document();
    match metadata.geometry() {
        Some(g) if !g.chunk_grid.is_regular() => {
            let mut decoder = document.clone();
            decoder.insert(
                "chunk_grid".into(),
                json!({"name": "regular", "configuration": {"chunk_shape": g.max_chunk_shape()}}),
            );
            decoder
        }
        _ => document.clone(),
    }
}

fn open_zarrs(
    storage: &Arc<AsyncZarrsStore>,
    path: &NodePath,
    document: &Map<String, Value>,
) -> std::result::Result<Array<AsyncZarrsStore>, String> {
    crate::zarr::zarrs_compat::open_zarrs(storage.clone(), path.as_str(), document)
}

impl ViewArray {
    /// The view of array `node` of `store` with chunks of `chunk_shape`; `fail` turns a reason
    /// into the caller's error.
    pub(crate) fn new(
        store: &ZarrStore,
        node: &NodeInfo,
        chunk_shape: &[u64],
        fail: &dyn Fn(String) -> Error,
    ) -> Result<Self> {
        let path = node.path.clone();
        let name = path.as_str();
        let Some(stored_geometry) = node.metadata.geometry().cloned() else {
            return Err(fail(format!(
                "`{name}` is a group; only arrays can be rechunked"
            )));
        };
        if chunk_shape.len() != stored_geometry.shape.len() {
            return Err(fail(format!(
                "array `{name}` has {} dimensions but {} chunk sizes were given",
                stored_geometry.shape.len(),
                chunk_shape.len()
            )));
        }
        let view_chunk_shape = non_zero(chunk_shape)
            .ok_or_else(|| fail(format!("chunk sizes of `{name}` must be positive")))?;
        let document = view_document(node.metadata.document(), chunk_shape);
        let view = NodeMetadata::from_value(&path, Value::Object(document.clone()))
            .map_err(|e| fail(format!("the view metadata of `{name}` is invalid: {e}")))?;
        let storage = Arc::new(AsyncZarrsStore::new(store.clone()));
        let stored = open_zarrs(&storage, &path, &decoder_document(&node.metadata))
            .map_err(|reason| fail(format!("array `{name}`: {reason}")))?;
        let encoder = open_zarrs(&storage, &path, &document)
            .map_err(|reason| fail(format!("array `{name}` (view): {reason}")))?;
        let data_type = stored.data_type();
        let view_geometry = view
            .geometry()
            .cloned()
            .ok_or_else(|| fail(format!("the view metadata of `{name}` is not an array")))?;
        let element_size = match data_type.fixed_size() {
            Some(size) if !data_type.is_optional() => size,
            _ => {
                return Err(fail(format!(
                    "array `{name}` has a variable-length or optional data type; rechunked views support fixed-size data types only"
                )))
            }
        };
        let chunk_bytes = chunk_shape
            .iter()
            .try_fold(element_size as u64, |n, &s| n.checked_mul(s))
            .filter(|&n| n <= MAX_VIEW_CHUNK_BYTES);
        if chunk_bytes.is_none() {
            return Err(fail(format!(
                "a chunk of `{name}` in shape {chunk_shape:?} would exceed {MAX_VIEW_CHUNK_BYTES} decoded bytes; request smaller chunks"
            )));
        }
        Ok(ViewArray {
            path,
            grid: match &stored_geometry.chunk_grid {
                ChunkGrid::Regular { chunk_shape } => StoredGrid::Regular {
                    chunk_shape: chunk_shape.clone(),
                },
                grid @ ChunkGrid::Rectilinear { .. } => {
                    StoredGrid::Rectilinear { grid: grid.clone() }
                }
            },
            stored_geometry,
            view_geometry,
            document: Bytes::from(view.to_json()),
            view: Arc::new(view),
            stored,
            encoder,
            element_size,
            chunk_shape: chunk_shape.to_vec(),
            view_chunk_shape,
        })
    }

    /// The geometry the view serves (requested chunk shape).
    pub(crate) fn view_geometry(&self) -> &ArrayGeometry {
        &self.view_geometry
    }

    /// Per dimension, the stored chunks overlapping requested chunk `coords`; `None` when the
    /// requested chunk lies outside the array.
    fn stored_ranges(&self, coords: &[u64]) -> Option<Vec<std::ops::Range<u64>>> {
        let view = self.view_geometry();
        let region = view_chunk_region(&view.shape, &self.chunk_shape, coords)?;
        Some(stored_chunks_overlapping(&self.grid, &region))
    }

    /// True when at least one stored chunk under requested chunk `coords` exists.
    pub(crate) async fn chunk_exists(&self, store: &ZarrStore, coords: &[u64]) -> Result<bool> {
        let Some(ranges) = self.stored_ranges(coords) else {
            return Ok(false);
        };
        let mut candidates = Vec::new();
        for_each_index(&ranges, |c| candidates.push(c.to_vec()));
        for stored in candidates {
            if store
                .session()
                .chunk_size(&self.path, &stored)
                .await?
                .is_some()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The coordinates of every requested chunk that overlaps at least one stored chunk.
    pub(crate) async fn chunk_coords(&self, store: &ZarrStore) -> Result<BTreeSet<Vec<u64>>> {
        let view = self.view_geometry();
        let mut out = BTreeSet::new();
        for stored in store.session().list_chunks(&self.path).await? {
            if let Some(ranges) =
                view_chunks_overlapping_stored(&self.grid, &view.shape, &self.chunk_shape, &stored)
            {
                for_each_index(&ranges, |c| {
                    out.insert(c.to_vec());
                });
            }
        }
        Ok(out)
    }

    /// The decoded bytes of stored chunk `coords`, `None` when it is absent.
    async fn load_stored(&self, store: &ZarrStore, coords: &[u64]) -> Result<Option<Bytes>> {
        let key = chunk_key(&self.path, &self.stored_geometry, coords);
        let Some(encoded) = store.get(&key).await? else {
            return Ok(None);
        };
        let shape = self.grid.chunk_shape(coords);
        let corrupt = |reason: String| Error::corrupt(key.clone(), reason);
        // A stored chunk may be declared far larger than the array (a rectilinear edge past
        // the end): never decode more than a view chunk may hold.
        let expected = shape
            .iter()
            .try_fold(self.element_size as u64, |n, d| n.checked_mul(*d))
            .filter(|&bytes| bytes <= super::MAX_VIEW_CHUNK_BYTES)
            .ok_or_else(|| Error::InvalidRechunk {
                request: self.path.to_string(),
                reason: format!(
                    "stored chunk {coords:?} of `{}` would decode to more than {} bytes",
                    self.path,
                    super::MAX_VIEW_CHUNK_BYTES
                ),
            })?;
        let shape_nz = non_zero(&shape).ok_or_else(|| corrupt("empty chunk shape".into()))?;
        let decoded = self
            .stored
            .codecs()
            .decode(
                Cow::Borrowed(&encoded[..]),
                &shape_nz,
                self.stored.data_type(),
                self.stored.fill_value(),
                &CodecOptions::default(),
            )
            .map_err(|e| corrupt(format!("cannot decode with the array's codecs: {e}")))?
            .into_fixed()
            .map_err(|e| corrupt(format!("decoded to variable-length data: {e}")))?;
        if decoded.len() as u64 != expected {
            return Err(corrupt(format!(
                "decoded to {} bytes, expected {expected}",
                decoded.len()
            )));
        }
        Ok(Some(Bytes::from(decoded.into_owned())))
    }

    /// The encoded requested chunk `coords`: the stored chunks it overlaps decoded (through
    /// `cache`), their overlapping parts copied, the rest filled with the fill value, encoded
    /// with the view's codecs. `None` when no stored chunk under it exists or it lies outside
    /// the array.
    pub(crate) async fn assemble(
        &self,
        store: &ZarrStore,
        cache: &DecodedChunkCache,
        snapshot: SnapshotId,
        coords: &[u64],
    ) -> Result<Option<Bytes>> {
        let view = self.view_geometry();
        let Some(region) = view_chunk_region(&view.shape, &self.chunk_shape, coords) else {
            return Ok(None);
        };
        let ranges = stored_chunks_overlapping(&self.grid, &region);
        let mut stored_coords = Vec::new();
        for_each_index(&ranges, |c| stored_coords.push(c.to_vec()));

        let origin: Vec<u64> = coords
            .iter()
            .zip(&self.chunk_shape)
            .map(|(&c, &s)| c * s)
            .collect();
        let elements: u64 = self.chunk_shape.iter().product();
        let mut out = self
            .stored
            .fill_value()
            .as_ne_bytes()
            .repeat(elements as usize);
        let mut found = false;
        let mut loads = futures::stream::iter(stored_coords)
            .map(|stored| async move {
                let load = self.load_stored(store, &stored);
                let bytes = cache
                    .get_or_load(snapshot, &self.path, &stored, load)
                    .await?;
                Ok::<_, Error>((stored, bytes))
            })
            .buffer_unordered(CONCURRENT_LOADS);
        while let Some((stored, bytes)) = loads.try_next().await? {
            let Some(bytes) = bytes else { continue };
            found = true;
            let extent: Vec<_> = (0..stored.len())
                .map(|dim| self.grid.chunk_extent(dim, stored[dim]))
                .collect();
            let Some(common) = intersect(&region, &extent) else {
                continue;
            };
            let src_origin: Vec<u64> = extent.iter().map(|r| r.start).collect();
            let src_shape = self.grid.chunk_shape(&stored);
            copy_region(
                &Block {
                    bytes: &bytes[..],
                    origin: &src_origin,
                    shape: &src_shape,
                },
                &mut Block {
                    bytes: &mut out[..],
                    origin: &origin,
                    shape: &self.chunk_shape,
                },
                &common,
                self.element_size,
            );
        }
        if !found {
            return Ok(None);
        }
        let encoded = self
            .encoder
            .codecs()
            .encode(
                ArrayBytes::new_flen(out),
                &self.view_chunk_shape,
                self.encoder.data_type(),
                self.encoder.fill_value(),
                &CodecOptions::default(),
            )
            .map_err(|e| Error::InvalidRechunk {
                request: self.path.as_str().to_string(),
                reason: format!("encoding chunk {coords:?} with the array's codecs failed: {e}"),
            })?;
        Ok(Some(Bytes::from(encoded.into_owned())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharding_is_replaced_by_its_inner_chain() {
        let codecs = vec![
            json!({"name": "transpose", "configuration": {"order": [1, 0]}}),
            json!({"name": "sharding_indexed", "configuration": {
                "chunk_shape": [2, 2],
                "codecs": [{"name": "bytes"}, {"name": "zstd", "configuration": {"level": 1}}],
                "index_codecs": [{"name": "bytes"}, {"name": "crc32c"}]}}),
            json!({"name": "crc32c"}),
        ];
        let names: Vec<String> = without_sharding(&codecs)
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, vec!["transpose", "bytes", "zstd", "crc32c"]);
    }
}
