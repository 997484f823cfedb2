//! Chunk edges along the append dimension: what an existing array's chunks cover, the partly
//! filled last chunk an append must cut, and the edges after the appended chunks, written as a
//! run-length encoded `rectilinear` chunk grid where a regular one cannot say them.

use serde_json::{json, Value};

use crate::zarr::chunk_grid::{ChunkEdges, ChunkGrid};

/// A last chunk along the append dimension that reaches past the existing elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PartialChunk {
    /// Its index along the dimension.
    pub(crate) index: u64,
    /// Its first element.
    pub(crate) start: u64,
    /// Its edge length as stored (its bytes decode to this many elements along the dimension).
    pub(crate) stored_length: u64,
    /// How many of those are elements of the array: the length it is cut to.
    pub(crate) filled: u64,
}

/// The chunks covering the existing elements along the append dimension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ExistingEdges {
    /// `(length, count)` runs covering exactly the existing elements: a partly filled last
    /// chunk appears at its filled length.
    pub(crate) runs: Vec<(u64, u64)>,
    /// The partly filled last chunk, if any.
    pub(crate) partial: Option<PartialChunk>,
}

impl ExistingEdges {
    /// Number of chunks.
    pub(crate) fn count(&self) -> u64 {
        self.runs.iter().map(|&(_, n)| n).sum()
    }
}

/// The chunks of `grid` covering `existing_len` elements along `dim`; chunks declared wholly
/// past the end are no part of it. Fails when the grid has no such dimension.
pub(crate) fn existing_edges(
    grid: &ChunkGrid,
    dim: usize,
    existing_len: u64,
) -> Result<ExistingEdges, String> {
    if dim >= grid.ndim() {
        return Err(format!("the array's chunk grid has no dimension {dim}"));
    }
    let mut runs: Vec<(u64, u64)> = Vec::new();
    let mut covered = 0u64;
    for (length, count) in grid.runs_of(dim, existing_len) {
        if covered >= existing_len || length == 0 {
            break;
        }
        let needed = (existing_len - covered).div_ceil(length).min(count);
        runs.push((length, needed));
        covered = covered.saturating_add(length.saturating_mul(needed));
    }
    if covered < existing_len {
        return Err(format!(
            "its chunks cover {covered} elements, fewer than its {existing_len}"
        ));
    }
    let mut partial = None;
    if covered > existing_len {
        let Some(last) = runs.last_mut() else {
            return Err("an empty grid covers elements".into());
        };
        let (length, count) = *last;
        let index: u64 = runs.iter().map(|&(_, n)| n).sum::<u64>() - 1;
        let start = covered - length;
        let filled = existing_len - start;
        if count == 1 {
            runs.pop();
        } else if let Some(last) = runs.last_mut() {
            last.1 -= 1;
        }
        runs.push((filled, 1));
        partial = Some(PartialChunk {
            index,
            start,
            stored_length: length,
            filled,
        });
    }
    Ok(ExistingEdges {
        runs: merged(runs),
        partial,
    })
}

/// The edges after appending `appended_len` elements in chunks of `new_chunk` after `existing`:
/// the existing runs, then `new_chunk` repeated `ceil(appended_len / new_chunk)` times (the
/// last may reach past the new end).
pub(crate) fn appended_runs(
    existing: &ExistingEdges,
    new_chunk: u64,
    appended_len: u64,
) -> Vec<(u64, u64)> {
    let added =
        (new_chunk > 0 && appended_len > 0).then(|| (new_chunk, appended_len.div_ceil(new_chunk)));
    merged(existing.runs.iter().copied().chain(added).collect())
}

/// The runs of `grid` along `dim` grown to cover `new_len` elements: the declared runs, then the
/// last edge length repeated as often as needed. `None` when `dim` of `grid` is regular (it
/// covers any length) or already covers `new_len`.
pub(crate) fn grown_runs(grid: &ChunkGrid, dim: usize, new_len: u64) -> Option<Vec<(u64, u64)>> {
    let ChunkGrid::Rectilinear { dimensions } = grid else {
        return None;
    };
    let ChunkEdges::Varying(runs) = dimensions.get(dim)? else {
        return None;
    };
    let mut out: Vec<(u64, u64)> = runs.runs().collect();
    let covered: u64 = out.iter().map(|&(l, n)| l.saturating_mul(n)).sum();
    let (last, _) = *out.last()?;
    if covered >= new_len || last == 0 {
        return None;
    }
    out.push((last, (new_len - covered).div_ceil(last)));
    Some(merged(out))
}

/// Merges adjacent runs of one length and drops empty runs.
fn merged(runs: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (length, count) in runs {
        match out.last_mut() {
            _ if count == 0 => {}
            Some((last, n)) if *last == length => *n += count,
            _ => out.push((length, count)),
        }
    }
    out
}

/// A `rectilinear` chunk grid: `edges` (run-length encoded: `[length, repeat]`, plain integers
/// for single chunks) along `dim`, every other dimension as `grid` has it (a plain integer for
/// a regular dimension; `[]` for a regular chunk size of 0, which only an empty dimension has
/// and the rectilinear extension cannot say as an integer).
pub(crate) fn rectilinear_grid(grid: &ChunkGrid, dim: usize, edges: &[(u64, u64)]) -> Value {
    let encoded = |runs: &mut dyn Iterator<Item = (u64, u64)>| -> Value {
        Value::Array(
            runs.map(|(length, count)| {
                if count == 1 {
                    json!(length)
                } else {
                    json!([length, count])
                }
            })
            .collect(),
        )
    };
    let chunk_shapes: Vec<Value> = (0..grid.ndim())
        .map(|i| {
            if i == dim {
                return encoded(&mut edges.iter().copied());
            }
            match grid {
                ChunkGrid::Regular { chunk_shape } if chunk_shape[i] == 0 => json!([]),
                ChunkGrid::Regular { chunk_shape } => json!(chunk_shape[i]),
                ChunkGrid::Rectilinear { dimensions } => match &dimensions[i] {
                    ChunkEdges::Regular(c) => json!(c),
                    ChunkEdges::Varying(runs) => encoded(&mut runs.runs()),
                },
            }
        })
        .collect();
    json!({
        "name": "rectilinear",
        "configuration": {"kind": "inline", "chunk_shapes": chunk_shapes}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rectilinear(chunk_shapes: Value, shape: &[u64]) -> ChunkGrid {
        let grid = json!({"name": "rectilinear",
            "configuration": {"kind": "inline", "chunk_shapes": chunk_shapes}});
        ChunkGrid::from_metadata(&grid, shape).unwrap()
    }

    fn regular(chunk_shape: &[u64]) -> ChunkGrid {
        ChunkGrid::Regular {
            chunk_shape: chunk_shape.to_vec(),
        }
    }

    fn append(grid: &ChunkGrid, dim: usize, len: u64, chunk: u64, added: u64) -> Vec<(u64, u64)> {
        appended_runs(&existing_edges(grid, dim, len).unwrap(), chunk, added)
    }

    #[test]
    fn edges_are_the_existing_ones_then_the_new_chunk_length() {
        // January in one chunk, then February (one chunk of 28).
        assert_eq!(
            append(&regular(&[31, 4]), 0, 31, 28, 28),
            vec![(31, 1), (28, 1)]
        );
        // Three regular chunks of 10, then 12 elements in chunks of 5 (the last overflows).
        assert_eq!(append(&regular(&[10]), 0, 30, 5, 12), vec![(10, 3), (5, 3)]);
        // An existing rectilinear grid is extended; equal neighbours merge into one run.
        let grid = rectilinear(json!([[[31, 1], 28], 4]), &[59, 4]);
        assert_eq!(append(&grid, 0, 59, 28, 56), vec![(31, 1), (28, 3)]);
        // Along the second dimension of a grid regular there, with nothing existing yet.
        let grid = rectilinear(json!([[31, 28], 4]), &[59, 0]);
        assert_eq!(append(&grid, 1, 0, 3, 7), vec![(3, 3)]);
        // Edges declared wholly past the existing end are no part of the grid.
        let grid = rectilinear(json!([[[10, 2], [7, 3]]]), &[20]);
        assert_eq!(append(&grid, 0, 20, 7, 7), vec![(10, 2), (7, 1)]);
    }

    #[test]
    fn a_partly_filled_last_chunk_is_cut_to_its_elements() {
        // netCDF's default: 12 time steps in one chunk of 512.
        let edges = existing_edges(&regular(&[512]), 0, 12).unwrap();
        assert_eq!(edges.runs, vec![(12, 1)]);
        assert_eq!(
            edges.partial,
            Some(PartialChunk {
                index: 0,
                start: 0,
                stored_length: 512,
                filled: 12
            })
        );
        assert_eq!(appended_runs(&edges, 512, 12), vec![(12, 1), (512, 1)]);
        // Three steps in chunks of 2: the second chunk holds one.
        let edges = existing_edges(&regular(&[2]), 0, 3).unwrap();
        assert_eq!(edges.runs, vec![(2, 1), (1, 1)]);
        assert_eq!(
            edges.partial.map(|p| (p.index, p.start, p.filled)),
            Some((1, 2, 1))
        );
        // After a cut: [12, 512] holding 24 elements; the next cut makes [12, 12].
        let grid = rectilinear(json!([[12, 512]]), &[24]);
        let edges = existing_edges(&grid, 0, 24).unwrap();
        assert_eq!(edges.runs, vec![(12, 2)]);
        assert_eq!(
            edges.partial.map(|p| (p.index, p.stored_length)),
            Some((1, 512))
        );
        assert!(existing_edges(&regular(&[2]), 3, 3).is_err());
    }

    #[test]
    fn loaded_arrays_grow_their_last_edge() {
        let grid = rectilinear(json!([[31, 28], 4]), &[59, 4]);
        assert_eq!(grown_runs(&grid, 0, 100), Some(vec![(31, 1), (28, 3)]));
        assert_eq!(grown_runs(&grid, 0, 59), None);
        assert_eq!(grown_runs(&regular(&[5]), 0, 100), None);
    }

    #[test]
    fn rectilinear_grids_are_written_run_length_encoded() {
        let grid = rectilinear(json!([[31, 28], [2, 2]]), &[59, 4]);
        assert_eq!(
            rectilinear_grid(&grid, 0, &[(31, 1), (28, 2), (31, 1)]),
            json!({"name": "rectilinear", "configuration": {"kind": "inline",
                "chunk_shapes": [[31, [28, 2], 31], [[2, 2]]]}})
        );
        assert_eq!(
            rectilinear_grid(&regular(&[31, 3]), 0, &[(31, 1), (28, 1)]),
            json!({"name": "rectilinear", "configuration": {"kind": "inline",
                "chunk_shapes": [[31, 28], 3]}})
        );
        // zarr-python's empty arrays have a chunk size of 0 along their empty dimensions: an
        // append along another one declares those as empty lists, a valid rectilinear grid.
        let empty = rectilinear_grid(&regular(&[4, 0]), 0, &[(4, 2)]);
        assert_eq!(
            empty["configuration"]["chunk_shapes"],
            json!([[[4, 2]], []])
        );
        assert!(ChunkGrid::from_metadata(&empty, &[8, 0]).is_ok());
        // Appending to an array empty along the append dimension (chunk size 0 there).
        assert_eq!(append(&regular(&[0, 3]), 0, 0, 5, 12), vec![(5, 3)]);
    }
}
