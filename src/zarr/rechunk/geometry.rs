//! Overlap arithmetic between a requested (view) chunk grid and the stored chunk grid.
//!
//! All arithmetic is in `u64` element coordinates; nothing here materialises an array. The
//! stored grid is reached only through [`StoredGrid::chunks_overlapping`] and
//! [`StoredGrid::chunk_extent`] (the stored chunk boundaries along one dimension), so a
//! rectilinear stored grid can be added as another variant without touching the rest.

use std::ops::Range;

use crate::zarr::chunk_grid::ChunkGrid;
pub(crate) use crate::zarr::region::{copy_region, for_each_index, intersect, Block, Region};

/// The chunk grid an array is stored with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StoredGrid {
    /// Every chunk has the same shape; edge chunks are stored full-size.
    Regular {
        /// Chunk shape in elements: positive, or 0 along a dimension of length 0, which has
        /// no chunk (see [`ChunkGrid`]).
        chunk_shape: Vec<u64>,
    },
    /// Variable edge lengths along some dimensions (the `rectilinear` grid); every chunk is
    /// stored with its declared edge lengths, the last one possibly reaching past the end.
    Rectilinear {
        /// The array's grid (lookups are binary searches over run boundaries).
        grid: ChunkGrid,
    },
}

impl StoredGrid {
    /// The indices of the stored chunks along `dim` that hold any element of `elements`
    /// (a non-empty range); empty along a dimension without chunks.
    pub(crate) fn chunks_overlapping(&self, dim: usize, elements: &Range<u64>) -> Range<u64> {
        match self {
            StoredGrid::Regular { chunk_shape } => match chunk_shape[dim] {
                // A chunk size of 0 declares no chunk (the dimension is empty).
                0 => 0..0,
                size => elements.start / size..elements.end.div_ceil(size),
            },
            StoredGrid::Rectilinear { grid } => {
                let last = elements.end.saturating_sub(1).max(elements.start);
                match (grid.chunk_of(dim, elements.start), grid.chunk_of(dim, last)) {
                    (Some(first), Some(last)) => first..last + 1,
                    // Outside the stored grid: no stored chunk holds these elements.
                    _ => 0..0,
                }
            }
        }
    }

    /// The element range covered by stored chunk `index` along `dim`, as decoded (full-size,
    /// possibly extending past the array's end).
    pub(crate) fn chunk_extent(&self, dim: usize, index: u64) -> Range<u64> {
        match self {
            StoredGrid::Regular { chunk_shape } => {
                let size = chunk_shape[dim];
                let start = index.saturating_mul(size);
                start..start.saturating_add(size)
            }
            StoredGrid::Rectilinear { grid } => {
                match (grid.chunk_start(dim, index), grid.chunk_length(dim, index)) {
                    (Some(start), Some(length)) => start..start.saturating_add(length),
                    // Not a chunk of the grid: an empty extent overlaps nothing.
                    _ => 0..0,
                }
            }
        }
    }

    /// The decoded shape of the stored chunk at `coords`.
    pub(crate) fn chunk_shape(&self, coords: &[u64]) -> Vec<u64> {
        coords
            .iter()
            .enumerate()
            .map(|(dim, &c)| {
                let r = self.chunk_extent(dim, c);
                r.end - r.start
            })
            .collect()
    }
}

/// The elements of view chunk `coords` (chunk shape `chunk_shape`) that lie inside an array of
/// `shape`; `None` when the chunk lies outside the array or holds no element.
pub(crate) fn view_chunk_region(
    shape: &[u64],
    chunk_shape: &[u64],
    coords: &[u64],
) -> Option<Region> {
    if coords.len() != shape.len() || chunk_shape.len() != shape.len() {
        return None;
    }
    let mut region = Vec::with_capacity(shape.len());
    for ((&c, &size), &extent) in coords.iter().zip(chunk_shape).zip(shape) {
        let start = c.checked_mul(size)?;
        if start >= extent {
            return None;
        }
        region.push(start..start.saturating_add(size).min(extent));
    }
    Some(region)
}

/// Per dimension, the stored chunk indices overlapping `region`.
pub(crate) fn stored_chunks_overlapping(
    grid: &StoredGrid,
    region: &[Range<u64>],
) -> Vec<Range<u64>> {
    region
        .iter()
        .enumerate()
        .map(|(dim, r)| grid.chunks_overlapping(dim, r))
        .collect()
}

/// Per dimension, the view chunk indices (chunk shape `view_chunk_shape`) overlapping the
/// elements of stored chunk `coords` that lie inside an array of `shape`; `None` when the
/// stored chunk holds no element of the array.
pub(crate) fn view_chunks_overlapping_stored(
    grid: &StoredGrid,
    shape: &[u64],
    view_chunk_shape: &[u64],
    coords: &[u64],
) -> Option<Vec<Range<u64>>> {
    let mut out = Vec::with_capacity(coords.len());
    for (dim, &c) in coords.iter().enumerate() {
        let extent = grid.chunk_extent(dim, c);
        let end = extent.end.min(shape[dim]);
        if extent.start >= end {
            return None;
        }
        let size = view_chunk_shape[dim];
        out.push(extent.start / size..end.div_ceil(size));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_overlaps() {
        let grid = StoredGrid::Regular {
            chunk_shape: vec![4, 10],
        };
        assert_eq!(grid.chunks_overlapping(0, &(3..9)), 0..3);
        assert_eq!(grid.chunks_overlapping(1, &(10..20)), 1..2);
        assert_eq!(grid.chunk_extent(0, 2), 8..12);
        assert_eq!(grid.chunk_shape(&[5, 0]), vec![4, 10]);
        // Array (10, 25), view chunks (3, 7): the last chunks are clipped to the array.
        assert_eq!(
            view_chunk_region(&[10, 25], &[3, 7], &[3, 3]),
            Some(vec![9..10, 21..25])
        );
        assert_eq!(view_chunk_region(&[10, 25], &[3, 7], &[4, 0]), None);
        assert_eq!(view_chunk_region(&[10, 25], &[3, 7], &[0]), None);
        // Stored chunk (2, 2) covers rows 8..10 (clipped), cols 20..25 (clipped).
        assert_eq!(
            view_chunks_overlapping_stored(&grid, &[10, 25], &[3, 7], &[2, 2]),
            Some(vec![2..4, 2..4])
        );
        assert_eq!(
            view_chunks_overlapping_stored(&grid, &[10, 25], &[3, 7], &[3, 0]),
            None
        );
        // zarr-python's empty array (0, 25) in chunks (0, 10): no stored chunk, no view chunk.
        let empty = StoredGrid::Regular {
            chunk_shape: vec![0, 10],
        };
        assert_eq!(empty.chunks_overlapping(0, &(0..3)), 0..0);
        assert_eq!(empty.chunk_extent(0, 0), 0..0);
        assert_eq!(view_chunk_region(&[0, 25], &[3, 7], &[0, 0]), None);
        assert_eq!(
            view_chunks_overlapping_stored(&empty, &[0, 25], &[3, 7], &[0, 0]),
            None
        );
    }

    #[test]
    fn rectilinear_overlaps() {
        let grid = ChunkGrid::from_metadata(
            &serde_json::json!({"name": "rectilinear", "configuration": {
                "kind": "inline", "chunk_shapes": [[31, 28, [31, 2]], 4]}}),
            &[110, 10],
        )
        .unwrap();
        let grid = StoredGrid::Rectilinear { grid };
        // Starts 0, 31, 59, 90 (the last chunk reaches past the end, to 121).
        assert_eq!(grid.chunks_overlapping(0, &(30..32)), 0..2);
        assert_eq!(grid.chunks_overlapping(0, &(59..110)), 2..4);
        assert_eq!(grid.chunks_overlapping(1, &(3..9)), 0..3);
        assert_eq!(grid.chunk_extent(0, 1), 31..59);
        assert_eq!(grid.chunk_extent(0, 3), 90..121);
        assert_eq!(grid.chunk_extent(0, 4), 0..0);
        assert_eq!(grid.chunk_shape(&[3, 2]), vec![31, 4]);
        // View chunks of 31 rows: stored chunk 1 (rows 31..59) lies in view chunk 1; stored
        // chunk 2 (59..90) spans view chunks 1 and 2.
        assert_eq!(
            view_chunks_overlapping_stored(&grid, &[110, 10], &[31, 4], &[2, 0]),
            Some(vec![1..3, 0..1])
        );
    }
}
