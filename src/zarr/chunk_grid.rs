//! Chunk grids: the `regular` grid of the Zarr v3 core specification and the `rectilinear`
//! grid of the Zarr extensions (`chunk-grids/rectilinear` in zarr-developers/zarr-extensions),
//! which gives every dimension either one edge length (regular along it) or a list of edge
//! lengths, with `[length, repeat]` run-length pairs allowed among plain integers.
//!
//! Rules floe applies to a rectilinear grid (`configuration: {"kind": "inline",
//! "chunk_shapes": [...]}`):
//! - `kind` must be `"inline"`; `chunk_shapes` has one entry per dimension.
//! - Every edge length and every repeat count is a positive integer.
//! - Along every dimension the edge lengths sum to at least the array's length (the
//!   extension's rule: the sum "MUST equal or exceed" the length, overflow by several chunks
//!   permitted). Element `e` lies in chunk `k` when `C[k-1] <= e < C[k]`, `C` being the
//!   cumulative sums of the edge lengths (`C[-1] = 0`).
//! - floe's grid holds the chunks that contain at least one element of the array: chunks
//!   declared wholly past the array's end are no part of it (their keys are refused like any
//!   key outside the grid), exactly as a regular grid has `ceil(length / chunk)` chunks.
//!
//! Rules floe applies to a regular grid (`configuration: {"chunk_shape": [...]}`): one
//! non-negative integer per dimension, positive except along a dimension of length 0, where
//! 0 is allowed and declares no chunk. This is zarr-python 3.1's rule: it writes
//! `chunk_shape: [0]` for an array of shape `[0]` (and `[0, 3]` for `[0, 3]`) and counts
//! `ceil(length / chunk)` chunks with `ceil(0 / c) = 0` for every `c`, so a chunk length of 0
//! works only where the length is 0 (anything else divides by zero there). An array with a
//! chunk length of 0 therefore cannot grow along that dimension: a `zarr.json` giving it a
//! positive length there is refused unless it also gives a positive chunk length.
//!
//! A rectilinear grid never has an edge length or repeat count of 0 (the extension's schema
//! requires at least 1): an empty dimension is declared by an empty list, `[]`.
//!
//! Run-length pairs are never expanded: a dimension is kept as runs of equal edge lengths
//! (adjacent equal lengths merged) with their first chunk index and first element, cut at the
//! last chunk holding an element of the array, so a hostile `[1, 1000000000000]` costs one
//! run, and lookups are binary searches over the runs.

use serde_json::Value;

/// A run of chunks of equal edge length along one dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    /// Edge length of each chunk of the run (positive).
    length: u64,
    /// Number of chunks in the run (positive).
    count: u64,
    /// Index of the run's first chunk along the dimension.
    first_chunk: u64,
    /// First element of the run's first chunk.
    start: u64,
}

/// Variable chunk edge lengths along one dimension, run-length encoded, covering exactly the
/// chunks that hold at least one element of the array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdgeRuns {
    runs: Vec<Run>,
}

impl EdgeRuns {
    /// Builds the runs from `(length, repeat)` pairs (every value positive) for a dimension of
    /// `extent` elements, keeping only the chunks that start before `extent`.
    ///
    /// Errors with the reason when the lengths sum to less than `extent`.
    fn covering(pairs: impl IntoIterator<Item = (u64, u64)>, extent: u64) -> Result<Self, String> {
        let mut runs: Vec<Run> = Vec::new();
        let mut covered = 0u64;
        let mut chunks = 0u64;
        for (length, repeat) in pairs {
            if covered >= extent {
                break;
            }
            let needed = (extent - covered).div_ceil(length);
            let count = repeat.min(needed);
            match runs.last_mut() {
                Some(last) if last.length == length => last.count += count,
                _ => runs.push(Run {
                    length,
                    count,
                    first_chunk: chunks,
                    start: covered,
                }),
            }
            chunks += count;
            covered = covered.saturating_add(count.saturating_mul(length));
        }
        if covered < extent {
            return Err(format!(
                "the chunk edge lengths sum to {covered}, less than the array's length {extent}"
            ));
        }
        Ok(EdgeRuns { runs })
    }

    /// Number of chunks (all of them hold at least one element of the array).
    pub fn chunk_count(&self) -> u64 {
        self.runs.last().map_or(0, |r| r.first_chunk + r.count)
    }

    fn run_of_chunk(&self, index: u64) -> Option<&Run> {
        let i = self.runs.partition_point(|r| r.first_chunk <= index);
        let run = self.runs.get(i.checked_sub(1)?)?;
        (index - run.first_chunk < run.count).then_some(run)
    }

    /// First element of chunk `index`, `None` past the last chunk.
    pub fn chunk_start(&self, index: u64) -> Option<u64> {
        let run = self.run_of_chunk(index)?;
        Some(run.start + (index - run.first_chunk) * run.length)
    }

    /// Edge length of chunk `index`, `None` past the last chunk.
    pub fn chunk_length(&self, index: u64) -> Option<u64> {
        self.run_of_chunk(index).map(|r| r.length)
    }

    /// The chunk holding element `element`, `None` past the end of the last chunk.
    pub fn chunk_of(&self, element: u64) -> Option<u64> {
        let i = self.runs.partition_point(|r| r.start <= element);
        let run = self.runs.get(i.checked_sub(1)?)?;
        let offset = (element - run.start) / run.length;
        (offset < run.count).then_some(run.first_chunk + offset)
    }

    /// The largest edge length (0 when there is no chunk).
    pub fn max_length(&self) -> u64 {
        self.runs.iter().map(|r| r.length).max().unwrap_or(0)
    }

    /// The runs as `(length, count)` pairs, in order.
    pub fn runs(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.runs.iter().map(|r| (r.length, r.count))
    }
}

/// The chunk edges along one dimension of a rectilinear grid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkEdges {
    /// One edge length for every chunk (regular along this dimension).
    Regular(u64),
    /// Variable edge lengths.
    Varying(EdgeRuns),
}

/// The chunk grid of an array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkGrid {
    /// The `regular` grid: every chunk has the same shape; edge chunks extend past the end.
    Regular {
        /// Chunk shape in elements: positive, or 0 along a dimension of length 0 (which then
        /// has no chunk; every lookup along it answers `None`).
        chunk_shape: Vec<u64>,
    },
    /// The `rectilinear` grid: per dimension, one edge length or a list of them.
    Rectilinear {
        /// The edges of each dimension.
        dimensions: Vec<ChunkEdges>,
    },
}

/// One dimension of a grid, borrowed.
enum Edges<'a> {
    Regular(u64),
    Varying(&'a EdgeRuns),
}

impl ChunkGrid {
    /// Parses and validates the `chunk_grid` member of an array's `zarr.json` for an array of
    /// `shape`; the error is the reason (see the module docs for the rules).
    pub fn from_metadata(grid: &Value, shape: &[u64]) -> Result<Self, String> {
        let configuration = grid.get("configuration");
        match grid.get("name").and_then(Value::as_str) {
            Some("regular") => {
                let chunk_shape = configuration
                    .and_then(|c| c.get("chunk_shape"))
                    .and_then(Value::as_array)
                    .ok_or("`chunk_grid.configuration.chunk_shape` must be a list of integers")?
                    .iter()
                    .map(|v| {
                        v.as_u64().ok_or_else(|| {
                            format!("chunk sizes must be non-negative integers, found `{v}`")
                        })
                    })
                    .collect::<Result<Vec<u64>, String>>()?;
                if chunk_shape.len() != shape.len() {
                    return Err(format!(
                        "chunk shape has {} dimensions but the array has {}",
                        chunk_shape.len(),
                        shape.len()
                    ));
                }
                check_zero_chunks(&chunk_shape, shape)?;
                Ok(ChunkGrid::Regular { chunk_shape })
            }
            Some("rectilinear") => {
                let configuration = configuration
                    .and_then(Value::as_object)
                    .ok_or("the rectilinear chunk grid needs a `configuration` object")?;
                match configuration.get("kind").and_then(Value::as_str) {
                    Some("inline") => {}
                    _ => {
                        return Err("the rectilinear chunk grid's `kind` must be \"inline\"".into())
                    }
                }
                let chunk_shapes = configuration
                    .get("chunk_shapes")
                    .and_then(Value::as_array)
                    .ok_or("the rectilinear chunk grid's `chunk_shapes` must be a list")?;
                if chunk_shapes.len() != shape.len() {
                    return Err(format!(
                        "`chunk_shapes` has {} dimensions but the array has {}",
                        chunk_shapes.len(),
                        shape.len()
                    ));
                }
                let dimensions = chunk_shapes
                    .iter()
                    .zip(shape)
                    .enumerate()
                    .map(|(dim, (edges, &extent))| {
                        dimension_edges(edges, extent).map_err(|e| format!("dimension {dim}: {e}"))
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                Ok(ChunkGrid::Rectilinear { dimensions })
            }
            _ => Err("the chunk grid must be `regular` or `rectilinear`".into()),
        }
    }

    /// True for the `regular` grid.
    pub fn is_regular(&self) -> bool {
        matches!(self, ChunkGrid::Regular { .. })
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        match self {
            ChunkGrid::Regular { chunk_shape } => chunk_shape.len(),
            ChunkGrid::Rectilinear { dimensions } => dimensions.len(),
        }
    }

    fn edges(&self, dim: usize) -> Option<Edges<'_>> {
        match self {
            ChunkGrid::Regular { chunk_shape } => chunk_shape.get(dim).map(|&c| Edges::Regular(c)),
            ChunkGrid::Rectilinear { dimensions } => dimensions.get(dim).map(|d| match d {
                ChunkEdges::Regular(c) => Edges::Regular(*c),
                ChunkEdges::Varying(runs) => Edges::Varying(runs),
            }),
        }
    }

    /// Number of chunks along `dim` for a length of `extent` elements (0 for a dimension the
    /// grid does not have).
    pub fn chunk_count(&self, dim: usize, extent: u64) -> u64 {
        match self.edges(dim) {
            Some(Edges::Regular(c)) => regular_count(extent, c),
            Some(Edges::Varying(runs)) => runs.chunk_count(),
            None => 0,
        }
    }

    /// First element of chunk `index` along `dim`, `None` when the dimension has no such chunk
    /// (for regular dimensions: when the start overflows `u64`, or the chunk length is 0).
    pub fn chunk_start(&self, dim: usize, index: u64) -> Option<u64> {
        match self.edges(dim)? {
            Edges::Regular(0) => None,
            Edges::Regular(c) => index.checked_mul(c),
            Edges::Varying(runs) => runs.chunk_start(index),
        }
    }

    /// Edge length of chunk `index` along `dim` (the decoded chunk's extent, which may reach
    /// past the array's end), `None` when the dimension has no such chunk (for regular
    /// dimensions: when its start overflows `u64`, or the chunk length is 0).
    pub fn chunk_length(&self, dim: usize, index: u64) -> Option<u64> {
        match self.edges(dim)? {
            Edges::Regular(0) => None,
            Edges::Regular(c) => index.checked_mul(c).map(|_| c),
            Edges::Varying(runs) => runs.chunk_length(index),
        }
    }

    /// The chunk along `dim` holding element `element`, `None` when no chunk holds it (always
    /// for a regular dimension whose chunk length is 0).
    pub fn chunk_of(&self, dim: usize, element: u64) -> Option<u64> {
        match self.edges(dim)? {
            Edges::Regular(c) => element.checked_div(c),
            Edges::Varying(runs) => runs.chunk_of(element),
        }
    }

    /// The edge lengths along `dim` for a length of `extent` elements, as `(length, count)`
    /// runs covering every chunk of the dimension (empty for a dimension the grid lacks).
    pub(crate) fn runs_of(&self, dim: usize, extent: u64) -> Vec<(u64, u64)> {
        match self.edges(dim) {
            Some(Edges::Regular(c)) => vec![(c, regular_count(extent, c))],
            Some(Edges::Varying(runs)) => runs.runs().collect(),
            None => Vec::new(),
        }
    }

    /// The first chunk index along `dim` at which this grid (for a length of `extent`) and
    /// `other` (for `other_extent`) give different edge lengths, among the chunks both have;
    /// `None` when those chunks all cover the same elements. Walks the runs, never the chunks.
    pub fn first_difference(
        &self,
        other: &ChunkGrid,
        dim: usize,
        extent: u64,
        other_extent: u64,
    ) -> Option<u64> {
        let (a, b) = (self.runs_of(dim, extent), other.runs_of(dim, other_extent));
        let shared = self
            .chunk_count(dim, extent)
            .min(other.chunk_count(dim, other_extent));
        let (mut ia, mut ib) = (a.iter(), b.iter());
        let (mut ra, mut rb) = (ia.next().copied(), ib.next().copied());
        let mut chunk = 0u64;
        while chunk < shared {
            let ((la, ca), (lb, cb)) = (ra?, rb?);
            if la != lb {
                return Some(chunk);
            }
            let step = ca.min(cb).min(shared - chunk);
            chunk += step;
            ra = if ca == step {
                ia.next().copied()
            } else {
                Some((la, ca - step))
            };
            rb = if cb == step {
                ib.next().copied()
            } else {
                Some((lb, cb - step))
            };
        }
        None
    }

    /// The largest chunk edge length along `dim` (a regular dimension's chunk size; 0 for a
    /// dimension without chunks or that the grid does not have).
    pub fn max_chunk_length(&self, dim: usize) -> u64 {
        match self.edges(dim) {
            Some(Edges::Regular(c)) => c,
            Some(Edges::Varying(runs)) => runs.max_length(),
            None => 0,
        }
    }
}

/// `ceil(extent / chunk)`, and 0 for a chunk length of 0 (parsing allows it only for an
/// extent of 0, where zarr-python counts `ceil(0 / 0) = 0` chunks; for other extents, which
/// only a hand-built grid can pair with it, the dimension has no chunk either).
fn regular_count(extent: u64, chunk: u64) -> u64 {
    if chunk == 0 {
        0
    } else {
        extent.div_ceil(chunk)
    }
}

/// Refuses a chunk length of 0 along a dimension whose length is not 0 (see the module docs:
/// such a grid has no chunk to hold the elements; zarr-python divides by zero on it).
fn check_zero_chunks(chunk_shape: &[u64], shape: &[u64]) -> Result<(), String> {
    match chunk_shape
        .iter()
        .zip(shape)
        .position(|(&chunk, &extent)| chunk == 0 && extent > 0)
    {
        None => Ok(()),
        Some(dim) => Err(format!(
            "the chunk size along dimension {dim} is 0, which only a dimension of length 0 may \
             have, but the array's length along it is {}: a chunk size of 0 declares no chunk, \
             so an array cannot grow along that dimension without a positive chunk size",
            shape[dim]
        )),
    }
}

fn positive(value: &Value, what: &str) -> Result<u64, String> {
    value
        .as_u64()
        .filter(|&v| v > 0)
        .ok_or_else(|| format!("{what} must be positive integers, found `{value}`"))
}

/// The edges of one rectilinear dimension of `extent` elements: an integer, or a list of
/// integers and `[length, repeat]` pairs.
fn dimension_edges(edges: &Value, extent: u64) -> Result<ChunkEdges, String> {
    if let Value::Array(items) = edges {
        let pairs = items
            .iter()
            .map(|item| match item {
                Value::Array(pair) if pair.len() == 2 => Ok((
                    positive(&pair[0], "edge lengths")?,
                    positive(&pair[1], "repeat counts")?,
                )),
                Value::Array(_) => Err(format!(
                    "a run-length pair must be `[length, repeat]`, found `{item}`"
                )),
                other => Ok((positive(other, "edge lengths")?, 1)),
            })
            .collect::<Result<Vec<_>, String>>()?;
        EdgeRuns::covering(pairs, extent).map(ChunkEdges::Varying)
    } else {
        positive(edges, "edge lengths").map(ChunkEdges::Regular)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rectilinear(chunk_shapes: Value, shape: &[u64]) -> Result<ChunkGrid, String> {
        ChunkGrid::from_metadata(
            &json!({"name": "rectilinear",
                    "configuration": {"kind": "inline", "chunk_shapes": chunk_shapes}}),
            shape,
        )
    }

    #[test]
    fn lookups_over_runs() {
        let grid = rectilinear(json!([[2, [3, 2], [1, 3], 5], 4]), &[14, 10]).unwrap();
        // Dimension 0: edges 2, 3, 3, 1, 1, 1, 5 -> starts 0, 2, 5, 8, 9, 10, 11.
        let starts: Vec<_> = (0..8).map(|i| grid.chunk_start(0, i)).collect();
        assert_eq!(
            starts,
            [0, 2, 5, 8, 9, 10, 11]
                .map(Some)
                .into_iter()
                .chain([None])
                .collect::<Vec<_>>()
        );
        assert_eq!(grid.chunk_count(0, 14), 7);
        assert_eq!(grid.chunk_length(0, 6), Some(5));
        let owners: Vec<_> = (0..17).map(|e| grid.chunk_of(0, e)).collect();
        let mut expected = vec![0, 0, 1, 1, 1, 2, 2, 2, 3, 4, 5, 6, 6, 6, 6, 6]
            .into_iter()
            .map(Some)
            .collect::<Vec<_>>();
        expected.push(None);
        assert_eq!(owners, expected);
        assert_eq!(grid.max_chunk_length(0), 5);
        // Dimension 1 is regular.
        assert_eq!(grid.chunk_count(1, 10), 3);
        assert_eq!(grid.chunk_of(1, 9), Some(2));
        assert_eq!(grid.chunk_start(1, 2), Some(8));
    }

    #[test]
    fn overflow_chunks_are_cut_and_repeats_never_expanded() {
        // The spec's example dimension `[4, 4, 4]` over 6 elements: two chunks hold elements.
        let grid = rectilinear(json!([[4, 4, 4]]), &[6]).unwrap();
        assert_eq!(grid.chunk_count(0, 6), 2);
        assert_eq!(grid.chunk_length(0, 1), Some(4));
        let huge = rectilinear(json!([[[1, u64::MAX], [u64::MAX, u64::MAX]]]), &[10]).unwrap();
        assert_eq!(huge.chunk_count(0, 10), 10);
        let ChunkGrid::Rectilinear { dimensions } = &huge else {
            panic!("not rectilinear")
        };
        let ChunkEdges::Varying(runs) = &dimensions[0] else {
            panic!("not varying")
        };
        assert_eq!(runs.runs().collect::<Vec<_>>(), vec![(1, 10)]);
        let big = rectilinear(json!([[[u64::MAX, 3]]]), &[u64::MAX]).unwrap();
        assert_eq!(big.chunk_count(0, u64::MAX), 1);
        assert_eq!(big.chunk_of(0, u64::MAX - 1), Some(0));
    }

    #[test]
    fn differences_between_grids() {
        let old = rectilinear(json!([[[31, 2], 28]]), &[90]).unwrap();
        let appended = rectilinear(json!([[31, 31, 28, [30, 5]]]), &[120]).unwrap();
        assert_eq!(old.first_difference(&appended, 0, 90, 120), None);
        let moved = rectilinear(json!([[31, 31, 29, 30]]), &[120]).unwrap();
        assert_eq!(old.first_difference(&moved, 0, 90, 120), Some(2));
        let regular = ChunkGrid::Regular {
            chunk_shape: vec![31],
        };
        // A regular grid of 31 agrees with the first two chunks, then differs.
        assert_eq!(regular.first_difference(&old, 0, 62, 90), None);
        assert_eq!(regular.first_difference(&old, 0, 93, 90), Some(2));
        // Hostile counts are compared run by run.
        let huge = rectilinear(json!([[[1, u64::MAX]]]), &[u64::MAX]).unwrap();
        let huger = rectilinear(json!([[[1, u64::MAX], 2]]), &[u64::MAX]).unwrap();
        assert_eq!(huge.first_difference(&huger, 0, u64::MAX, u64::MAX), None);
    }

    fn regular(chunk_shape: Value, shape: &[u64]) -> Result<ChunkGrid, String> {
        ChunkGrid::from_metadata(
            &json!({"name": "regular", "configuration": {"chunk_shape": chunk_shape}}),
            shape,
        )
    }

    #[test]
    fn zero_chunk_lengths_only_along_empty_dimensions() {
        // zarr-python's empty arrays: shape [0] with chunks [0], shape [0, 3] with [0, 3].
        let empty = regular(json!([0]), &[0]).unwrap();
        assert_eq!(empty.chunk_count(0, 0), 0);
        assert_eq!(empty.chunk_of(0, 0), None);
        assert_eq!(empty.chunk_start(0, 0), None);
        assert_eq!(empty.chunk_length(0, 0), None);
        assert_eq!(empty.max_chunk_length(0), 0);
        let rows = regular(json!([0, 3]), &[0, 3]).unwrap();
        assert_eq!((rows.chunk_count(0, 0), rows.chunk_count(1, 3)), (0, 1));
        assert_eq!(rows.chunk_start(1, 0), Some(0));
        // Another grid of the same empty dimension shares no chunk with it, so nothing moves.
        let positive = regular(json!([5, 3]), &[0, 3]).unwrap();
        assert_eq!(rows.first_difference(&positive, 0, 0, 10), None);
        assert_eq!(positive.first_difference(&rows, 0, 10, 0), None);
        // A positive length needs a positive chunk size: zarr-python divides by zero there.
        for (chunks, shape, dim) in [
            (json!([0]), vec![5], 0),
            (json!([0, 0]), vec![0, 3], 1),
            (json!([1, 0]), vec![0, 3], 1),
        ] {
            let err = regular(chunks.clone(), &shape).unwrap_err();
            assert!(
                err.contains(&format!("along dimension {dim} is 0")),
                "{chunks}: {err}"
            );
        }
        for bad in [json!([-1]), json!([1.5]), json!(["1"])] {
            let err = regular(bad.clone(), &[0]).unwrap_err();
            assert!(err.contains("non-negative integers"), "{bad}: {err}");
        }
        // The rectilinear extension requires every edge length to be at least 1, even along
        // an empty dimension (an empty list declares it).
        assert!(rectilinear(json!([0]), &[0])
            .unwrap_err()
            .contains("positive"));
        assert!(rectilinear(json!([[0]]), &[0])
            .unwrap_err()
            .contains("positive"));
    }

    #[test]
    fn refusals() {
        for (shapes, shape, needle) in [
            (json!([[1, 2]]), vec![4], "sum to 3"),
            (json!([[0, 4]]), vec![4], "positive"),
            (json!([[[2, 0], 4]]), vec![4], "repeat counts"),
            (json!([[[2, 1, 1]]]), vec![2], "`[length, repeat]`"),
            (json!([0]), vec![4], "positive"),
            (json!([[-1]]), vec![1], "positive"),
            (json!([[1.5]]), vec![1], "positive"),
            (json!(["4"]), vec![4], "positive"),
            (json!([4]), vec![4, 4], "dimensions"),
        ] {
            let err = rectilinear(shapes.clone(), &shape).unwrap_err();
            assert!(err.contains(needle), "{shapes}: {err}");
        }
        let no_kind = json!({"name": "rectilinear", "configuration": {"chunk_shapes": [1]}});
        assert!(ChunkGrid::from_metadata(&no_kind, &[1])
            .unwrap_err()
            .contains("inline"));
        let other = json!({"name": "rectangular", "configuration": {"chunk_shape": [1]}});
        assert!(ChunkGrid::from_metadata(&other, &[1]).is_err());
        // An empty list covers an empty dimension.
        assert_eq!(rectilinear(json!([[]]), &[0]).unwrap().chunk_count(0, 0), 0);
    }
}
