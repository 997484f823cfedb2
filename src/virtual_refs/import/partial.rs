//! Cutting the partly filled last chunk of an existing array along the append dimension, so the
//! appended chunks can start right after its elements.
//!
//! A source file stores its last chunk at full length (12 time steps in a chunk of 512, the
//! rest fill). The chunks of that slab are read (through the session, so virtual ones need the
//! handle's authorization), decoded with the array's codecs, cut to their filled length and
//! encoded again; they become native chunks of an edge that length in a `rectilinear` grid.
//! Nothing else is copied.

use bytes::Bytes;

use super::chunks::ChunkCodec;
use super::grid_edges::PartialChunk;
use crate::error::{Error, Result};
use crate::format::manifest::ChunkCoord;
use crate::format::path::NodePath;
use crate::repo::Session;
use crate::zarr::metadata::NodeMetadata;

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

/// Slabs with at most this many chunks are looked up chunk by chunk; larger ones are found in
/// the array's chunk listing.
const POINT_LOOKUP_LIMIT: u64 = 4096;

/// The coordinates of the stored chunks of slab `index` along `dim` of the array at `path`
/// whose grid has `grid_shape` chunks per dimension.
async fn slab_chunks(
    session: &Session,
    path: &NodePath,
    grid_shape: &[u64],
    dim: usize,
    index: u64,
) -> Result<Vec<ChunkCoord>> {
    let slab: u64 = grid_shape
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != dim)
        .fold(1u64, |n, (_, &c)| n.saturating_mul(c));
    if slab > POINT_LOOKUP_LIMIT {
        let mut all = session.list_chunks(path).await?;
        all.retain(|c| c.get(dim) == Some(&index));
        return Ok(all);
    }
    let mut out = Vec::new();
    let mut coord: Vec<u64> = vec![0; grid_shape.len()];
    coord[dim] = index;
    'slab: loop {
        if session.chunk_size(path, &coord).await?.is_some() {
            out.push(coord.clone());
        }
        for i in (0..coord.len()).rev().filter(|&i| i != dim) {
            coord[i] += 1;
            if coord[i] < grid_shape[i] {
                continue 'slab;
            }
            coord[i] = 0;
        }
        return Ok(out);
    }
}

/// Reads, cuts and re-encodes the stored chunks of slab `partial` along `dim` of the array at
/// `path` (metadata `existing`): the chunks to store once the grid gives that slab its cut
/// edge. Chunks the array lacks stay absent.
///
/// Fails with the session's read errors (a virtual chunk this handle may not read, a source
/// that changed), [`Error::CorruptObject`] when a stored chunk does not decode, and
/// [`Error::KerchunkImport`] when the array's codecs cannot be used.
pub(crate) async fn cut_partial_chunks(
    session: &Session,
    path: &NodePath,
    existing: &NodeMetadata,
    dim: usize,
    partial: PartialChunk,
) -> Result<Vec<(ChunkCoord, Bytes)>> {
    let what = format!("array `{path}`");
    let geometry = existing
        .geometry()
        .ok_or_else(|| Error::import_refused(what.clone(), "not an array"))?;
    let codec = ChunkCodec::new(existing)
        .map_err(|e| Error::import_refused(what.clone(), format!("it cannot be cut: {e}")))?;
    let mut chunks = Vec::new();
    let grid_shape = geometry.grid_shape();
    for coord in slab_chunks(session, path, &grid_shape, dim, partial.index).await? {
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
    Ok(chunks)
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
}
