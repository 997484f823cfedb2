//! Cutting the partly filled last chunk of an existing array along the append dimension, so the
//! appended chunks can start right after its elements.
//!
//! A source file stores its last chunk at full length (12 time steps in a chunk of 512, the
//! rest fill). The chunks of that slab are read (through the session, so virtual ones need the
//! handle's authorization), decoded with the array's codecs, cut to their filled length and
//! encoded again; they become native chunks of an edge that length in a `rectilinear` grid.
//! Nothing else is copied.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::grid_edges::{rectilinear_grid, PartialChunk};
use super::values::ChunkCodec;
use crate::error::{Error, Result};
use crate::format::manifest::ChunkCoord;
use crate::format::path::NodePath;
use crate::repo::Session;
use crate::zarr::chunk_grid::ChunkGrid;
use crate::zarr::metadata::NodeMetadata;

/// The cut chunks of an array's partly filled slab, encoded, ready to store.
pub(crate) struct CutChunks {
    /// The chunks at their coordinates (unchanged by the cut).
    pub(crate) chunks: Vec<(ChunkCoord, Bytes)>,
    /// The document that drops the slab: the array ending where the partial chunk starts.
    pub(crate) truncated: Value,
}

/// Keeps the first `keep` of `length` positions along `dim` of C-order `bytes` of `shape`.
fn cut(bytes: &[u8], shape: &[u64], dim: usize, keep: u64, element: usize) -> Vec<u8> {
    let outer: u64 = shape[..dim].iter().product();
    let inner: u64 = shape[dim + 1..].iter().product::<u64>() * element as u64;
    let (length, keep) = (shape[dim], keep.min(shape[dim]));
    let mut out = Vec::with_capacity((outer * keep * inner) as usize);
    for o in 0..outer {
        let start = (o * length * inner) as usize;
        out.extend_from_slice(&bytes[start..start + (keep * inner) as usize]);
    }
    out
}

/// Reads, cuts and re-encodes the stored chunks of slab `partial` along `dim` of the array at
/// `path` (metadata `existing`). Chunks the array lacks stay absent.
///
/// Fails with the session's read errors (a virtual chunk this handle may not read, a source
/// that changed), or [`Error::KerchunkImport`] when a chunk does not decode.
pub(crate) async fn cut_partial_chunks(
    session: &Session,
    path: &NodePath,
    existing: &NodeMetadata,
    dim: usize,
    partial: PartialChunk,
) -> Result<CutChunks> {
    let what = format!("array `{path}`");
    let geometry = existing
        .geometry()
        .ok_or_else(|| Error::import_refused(what.clone(), "not an array"))?;
    let codec = ChunkCodec::new(existing)
        .map_err(|e| Error::import_refused(what.clone(), format!("it cannot be cut: {e}")))?;
    let mut chunks = Vec::new();
    for coord in session.list_chunks(path).await? {
        if coord.get(dim) != Some(&partial.index) {
            continue;
        }
        let Some(encoded) = session.get_chunk(path, &coord).await? else {
            continue;
        };
        let shape = geometry.chunk_shape_at(&coord).ok_or_else(|| {
            Error::import_refused(what.clone(), format!("chunk {coord:?} is outside its grid"))
        })?;
        let corrupt = |reason: String| Error::corrupt(format!("{path} chunk {coord:?}"), reason);
        let decoded = codec.decode(Some(&encoded), &shape).map_err(corrupt)?;
        let mut cut_shape = shape.clone();
        cut_shape[dim] = partial.filled;
        let kept = cut(&decoded, &shape, dim, partial.filled, codec.element_size());
        chunks.push((
            coord.clone(),
            codec.encode(kept, &cut_shape).map_err(corrupt)?,
        ));
    }
    Ok(CutChunks {
        chunks,
        truncated: truncated_document(existing.document(), &geometry.chunk_grid, dim, partial)
            .map_err(|e| Error::import_refused(what, e))?,
    })
}

/// The array document ending at the start of the partial chunk, whose grid has no chunk there
/// (so the next document may give that chunk another edge length).
fn truncated_document(
    document: &Map<String, Value>,
    grid: &ChunkGrid,
    dim: usize,
    partial: PartialChunk,
) -> std::result::Result<Value, String> {
    let mut truncated = Value::Object(document.clone());
    truncated["shape"][dim] = json!(partial.start);
    if !grid.is_regular() {
        if partial.index == 0 {
            return Err(
                "its first chunk along the append dimension is partly filled in a \
                        rectilinear grid: it cannot be cut"
                    .into(),
            );
        }
        let mut runs = Vec::new();
        let mut left = partial.index;
        for (length, count) in grid.runs_of(dim, partial.start) {
            if left == 0 {
                break;
            }
            runs.push((length, count.min(left)));
            left -= count.min(left);
        }
        truncated["chunk_grid"] = rectilinear_grid(grid, dim, &runs);
    }
    Ok(truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_keep_the_leading_positions_of_every_row() {
        // 2 x 3 x 2 of single bytes, cut along the middle dimension to 2.
        let bytes: Vec<u8> = (0..12).collect();
        assert_eq!(
            cut(&bytes, &[2, 3, 2], 1, 2, 1),
            vec![0, 1, 2, 3, 6, 7, 8, 9]
        );
        assert_eq!(cut(&bytes, &[4, 3], 0, 1, 1), vec![0, 1, 2]);
        assert_eq!(cut(&bytes, &[12], 0, 5, 1), vec![0, 1, 2, 3, 4]);
        let pairs: Vec<u8> = (0..8).collect();
        assert_eq!(cut(&pairs, &[4], 0, 2, 2), vec![0, 1, 2, 3]);
    }

    #[test]
    fn truncated_grids_stop_before_the_partial_chunk() {
        let shape = [24u64];
        let grid_doc = json!({"name": "rectilinear", "configuration": {"kind": "inline",
            "chunk_shapes": [[12, 512]]}});
        let grid = ChunkGrid::from_metadata(&grid_doc, &shape).unwrap();
        let document = json!({"shape": [24], "chunk_grid": grid_doc});
        let partial = PartialChunk {
            index: 1,
            start: 12,
            stored_length: 512,
            filled: 12,
        };
        let t = truncated_document(document.as_object().unwrap(), &grid, 0, partial).unwrap();
        assert_eq!(t["shape"], json!([12]));
        assert_eq!(
            t["chunk_grid"]["configuration"]["chunk_shapes"],
            json!([[12]])
        );
        let regular = ChunkGrid::Regular {
            chunk_shape: vec![512],
        };
        let document = json!({"shape": [12], "chunk_grid": {"name": "regular"}});
        let first = PartialChunk {
            index: 0,
            start: 0,
            stored_length: 512,
            filled: 12,
        };
        let t = truncated_document(document.as_object().unwrap(), &regular, 0, first).unwrap();
        assert_eq!(t["shape"], json!([0]));
        assert!(truncated_document(document.as_object().unwrap(), &grid, 0, first).is_err());
    }
}
