//! Where an imported array goes when something already exists at its path: replaced, appended
//! along a dimension, or found unchanged (arrays without the append dimension, such as
//! coordinates, must equal the existing ones).

use serde_json::{json, Map, Value};

use super::invalid;
use super::sources::Sources;
use super::KerchunkRef;
use crate::error::{Error, Result};
use crate::format::manifest::ChunkCoord;
use crate::format::path::NodePath;
use crate::repo::Session;
use crate::zarr::chunk_grid::{ChunkEdges, ChunkGrid};

/// What the import does with one array.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Placement {
    /// Create the array (deleting first what `replace`s) and write every chunk.
    Create {
        /// Something exists at the path and is replaced.
        replace: bool,
    },
    /// Set the existing array's metadata to `document` (grown along dimension `dim`, its
    /// chunk grid extended when the new chunks have another length along it) and write the
    /// chunks shifted by `chunk_shift` along `dim`.
    Append {
        /// Index of the append dimension.
        dim: usize,
        /// Chunks of the existing array along that dimension.
        chunk_shift: u64,
        /// The array's new `zarr.json`: the existing one with the new shape and chunk grid.
        document: Value,
    },
    /// The array lacks the append dimension and equals the existing one: nothing is written.
    Unchanged,
}

/// The fields of two array documents that must agree for an append (besides the shape, and
/// the chunk grid, which must agree along every dimension but the append dimension).
const MUST_AGREE: [&str; 5] = [
    "data_type",
    "fill_value",
    "codecs",
    "chunk_key_encoding",
    "dimension_names",
];

fn dimension_names(document: &Value) -> Vec<String> {
    document
        .get("dimension_names")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .map(|n| n.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn shape(document: &Map<String, Value>) -> Vec<u64> {
    document
        .get("shape")
        .and_then(Value::as_array)
        .map(|s| s.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

fn first_difference(existing: &Map<String, Value>, new: &Value) -> Option<&'static str> {
    MUST_AGREE
        .into_iter()
        .find(|field| existing.get(*field) != new.get(*field))
}

/// Decides the placement of the array `new` (a translated `zarr.json`, with a regular chunk
/// grid) at `path`.
///
/// Appending along a dimension keeps the existing chunks where they are: when the new chunk
/// length along it equals the existing regular grid's and the existing length is a whole
/// number of chunks, the grid stays regular; otherwise it becomes (or stays) rectilinear
/// along that dimension, see [`appended_edges`].
pub(crate) fn plan(
    session: &Session,
    path: &NodePath,
    new: &Value,
    append_dim: Option<&str>,
) -> Result<Placement> {
    let Some(existing) = session.node(path)? else {
        return Ok(Placement::Create { replace: false });
    };
    let Some(append_dim) = append_dim else {
        return Ok(Placement::Create { replace: true });
    };
    let refuse = |reason: String| invalid(format!("array `{path}`"), reason);
    let Some(geometry) = existing.metadata.geometry() else {
        return Err(refuse(format!(
            "appending along `{append_dim}` needs an array here, but a group exists"
        )));
    };
    let document = existing.metadata.document();
    if let Some(field) = first_difference(document, new) {
        return Err(refuse(format!(
            "its `{field}` differs from the existing array's, so the new data cannot be appended \
             to it"
        )));
    }
    let (old_shape, new_shape) = (shape(document), shape(new.as_object().unwrap_or(document)));
    let names = dimension_names(new);
    let Some(dim) = names.iter().position(|n| n == append_dim) else {
        if old_shape != new_shape {
            return Err(refuse(format!(
                "it has no dimension `{append_dim}`, so it must equal the existing array, but \
                 its shape {new_shape:?} differs from {old_shape:?}"
            )));
        }
        if document.get("chunk_grid") != new.get("chunk_grid") {
            return Err(refuse(format!(
                "it has no dimension `{append_dim}`, so it must equal the existing array, but \
                 its `chunk_grid` differs"
            )));
        }
        return Ok(Placement::Unchanged);
    };
    let dim_name = |i: usize| names.get(i).map(String::as_str).unwrap_or("?");
    for (i, (old, new)) in old_shape.iter().zip(&new_shape).enumerate() {
        if i != dim && old != new {
            return Err(refuse(format!(
                "its length along `{}` is {new}, the existing array's is {old}: only `{append_dim}` \
                 may differ",
                dim_name(i)
            )));
        }
    }
    let new_grid = new
        .get("chunk_grid")
        .map(|g| ChunkGrid::from_metadata(g, &new_shape))
        .transpose()
        .map_err(|e| refuse(format!("its chunk grid is invalid: {e}")))?;
    let Some(ChunkGrid::Regular { chunk_shape }) = new_grid else {
        return Err(refuse("its chunk grid must be regular".into()));
    };
    let new_grid = ChunkGrid::Regular {
        chunk_shape: chunk_shape.clone(),
    };
    for i in (0..old_shape.len()).filter(|&i| i != dim) {
        if let Some(chunk) =
            geometry
                .chunk_grid
                .first_difference(&new_grid, i, old_shape[i], new_shape[i])
        {
            return Err(refuse(format!(
                "its chunk {chunk} along `{}` has another length than the existing array's: \
                 only chunks along `{append_dim}` may differ",
                dim_name(i)
            )));
        }
    }
    let (existing_len, appended_len, new_chunk) =
        (old_shape[dim], new_shape[dim], chunk_shape[dim]);
    let mut shape = old_shape.clone();
    shape[dim] = existing_len
        .checked_add(appended_len)
        .ok_or_else(|| refuse("the appended length overflows".into()))?;
    let stays_regular = appended_len == 0
        || (geometry.regular_chunk_shape().map(|c| c[dim]) == Some(new_chunk)
            && existing_len % new_chunk == 0);
    let mut updated = document.clone();
    updated.insert("shape".into(), Value::from(shape));
    if !stays_regular {
        let edges = appended_edges(
            &geometry.chunk_grid,
            dim,
            existing_len,
            new_chunk,
            appended_len,
        )
        .map_err(|reason| {
            refuse(format!(
                "appending along `{append_dim}` after its {existing_len} elements: {reason}"
            ))
        })?;
        updated.insert(
            "chunk_grid".into(),
            rectilinear_grid(&geometry.chunk_grid, dim, &edges),
        );
    }
    Ok(Placement::Append {
        dim,
        chunk_shift: geometry.grid_shape()[dim],
        document: Value::Object(updated),
    })
}

/// The chunk edge lengths along dimension `dim` after appending `appended_len` elements in
/// chunks of `new_chunk` to an array of `existing_len` elements along it, chunked by `grid`:
/// the existing edges, which must tile `existing_len` exactly, then `new_chunk` repeated
/// `ceil(appended_len / new_chunk)` times (the last may reach past the new end). Returned as
/// `(length, repeat)` runs, adjacent equal lengths merged, every repeat positive.
///
/// Errors with the reason when the existing last chunk reaches past `existing_len`: its
/// stored bytes are encoded at its full length, so it cannot be shortened to let the new data
/// start right after the existing elements.
pub(crate) fn appended_edges(
    grid: &ChunkGrid,
    dim: usize,
    existing_len: u64,
    new_chunk: u64,
    appended_len: u64,
) -> std::result::Result<Vec<(u64, u64)>, String> {
    let existing: Vec<(u64, u64)> = match grid {
        ChunkGrid::Regular { chunk_shape } => regular_runs(chunk_shape.get(dim), existing_len)?,
        ChunkGrid::Rectilinear { dimensions } => match dimensions.get(dim) {
            Some(ChunkEdges::Regular(c)) => regular_runs(Some(c), existing_len)?,
            Some(ChunkEdges::Varying(runs)) => runs.runs().collect(),
            None => return Err(format!("the array has no dimension {dim}")),
        },
    };
    let covered = existing
        .iter()
        .fold(0u64, |sum, &(l, n)| sum.saturating_add(l.saturating_mul(n)));
    if covered != existing_len {
        let (last, _) = existing.last().copied().unwrap_or_default();
        return Err(format!(
            "its last chunk (of {last} elements) ends at {covered}, past the end: its stored \
             bytes are encoded at that full length, so it cannot be shortened to let the new \
             chunks start right after the existing elements"
        ));
    }
    let mut runs: Vec<(u64, u64)> = Vec::new();
    let added = (new_chunk > 0)
        .then(|| (new_chunk, appended_len.div_ceil(new_chunk)))
        .into_iter();
    for (length, count) in existing.into_iter().chain(added) {
        match runs.last_mut() {
            _ if count == 0 => {}
            Some((last, n)) if *last == length => *n += count,
            _ => runs.push((length, count)),
        }
    }
    Ok(runs)
}

/// The runs of a regular dimension of chunk `chunk` holding `extent` elements; the error
/// when `extent` is not a whole number of chunks.
fn regular_runs(chunk: Option<&u64>, extent: u64) -> std::result::Result<Vec<(u64, u64)>, String> {
    let chunk = chunk.copied().unwrap_or(0);
    if chunk == 0 {
        return Err("the array's chunk grid has no such dimension".into());
    }
    if extent % chunk != 0 {
        return Err(format!(
            "that is not a multiple of the chunk length {chunk}, so its last chunk (of {chunk} \
             elements) ends at {}, past the end: its stored bytes are encoded at that full \
             length, so it cannot be shortened to let the new chunks start right after the \
             existing elements (a rectilinear chunk grid cannot express that either)",
            extent.div_ceil(chunk) * chunk
        ));
    }
    Ok(if extent == 0 {
        Vec::new()
    } else {
        vec![(chunk, extent / chunk)]
    })
}

/// A `rectilinear` chunk grid: `edges` (run-length encoded: `[length, repeat]`, plain integers
/// for single chunks) along `dim`, every other dimension as `grid` has it (a plain integer for
/// a regular dimension).
fn rectilinear_grid(grid: &ChunkGrid, dim: usize, edges: &[(u64, u64)]) -> Value {
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

/// Checks that the chunks of an array found [`Placement::Unchanged`] equal the existing ones:
/// same chunk coordinates, same encoded bytes. The existing chunks are read through the
/// session (so virtual ones need this handle's authorization), the new ones from their files.
pub(crate) async fn check_unchanged(
    session: &Session,
    path: &NodePath,
    new: &[(ChunkCoord, &KerchunkRef)],
    sources: &Sources,
) -> Result<()> {
    let differs = |reason: String| {
        invalid(
            format!("array `{path}`"),
            format!(
                "it lacks the append dimension, so it must equal the existing array, but {reason}"
            ),
        )
    };
    let existing = session.list_chunks(path).await?;
    let new_coords: Vec<&ChunkCoord> = new.iter().map(|(c, _)| c).collect();
    if existing.iter().collect::<Vec<_>>() != new_coords {
        return Err(differs(format!(
            "it has {} chunks where the existing array has {}",
            new.len(),
            existing.len()
        )));
    }
    for (coord, reference) in new {
        let ours = session.get_chunk(path, coord).await?;
        let theirs = match reference {
            KerchunkRef::Inline(bytes) => bytes.clone(),
            KerchunkRef::File { url } => {
                let size = sources.get(url)?.size;
                sources.read(url, 0, size).await?
            }
            KerchunkRef::Range {
                url,
                offset,
                length,
            } => sources.read(url, *offset, *length).await?,
        };
        if ours.as_ref() != Some(&theirs) {
            return Err(differs(format!("chunk {coord:?} holds other bytes")));
        }
    }
    Ok(())
}

/// The error for an append dimension no imported array has.
pub(crate) fn unknown_dimension(origin: &str, append_dim: &str) -> Error {
    invalid(
        origin,
        format!(
            "no array has the append dimension `{append_dim}` (dimension names come from the \
             `_ARRAY_DIMENSIONS` attribute)"
        ),
    )
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

    #[test]
    fn edges_are_the_existing_ones_then_the_new_chunk_length() {
        // January in one chunk, then February (one chunk of 28).
        assert_eq!(
            appended_edges(&regular(&[31, 4]), 0, 31, 28, 28),
            Ok(vec![(31, 1), (28, 1)])
        );
        // Three regular chunks of 10, then 12 elements in chunks of 5 (the last overflows).
        assert_eq!(
            appended_edges(&regular(&[10]), 0, 30, 5, 12),
            Ok(vec![(10, 3), (5, 3)])
        );
        // An existing rectilinear grid is extended; equal neighbours merge into one run.
        let grid = rectilinear(json!([[[31, 1], 28], 4]), &[59, 4]);
        assert_eq!(
            appended_edges(&grid, 0, 59, 28, 56),
            Ok(vec![(31, 1), (28, 3)])
        );
        // Along the second dimension of a grid regular there, with nothing existing yet.
        let grid = rectilinear(json!([[31, 28], 4]), &[59, 0]);
        assert_eq!(appended_edges(&grid, 1, 0, 3, 7), Ok(vec![(3, 3)]));
        // Edges declared wholly past the existing end are no part of the grid.
        let grid = rectilinear(json!([[[10, 2], [7, 3]]]), &[20]);
        assert_eq!(
            appended_edges(&grid, 0, 20, 7, 7),
            Ok(vec![(10, 2), (7, 1)])
        );
    }

    #[test]
    fn an_overflowing_last_chunk_is_refused_with_the_reason() {
        let err = appended_edges(&regular(&[2]), 0, 3, 2, 2).unwrap_err();
        assert!(
            err.contains("not a multiple of the chunk length 2") && err.contains("ends at 4"),
            "{err}"
        );
        let grid = rectilinear(json!([[31, 28, 31]]), &[85]);
        let err = appended_edges(&grid, 0, 85, 30, 30).unwrap_err();
        assert!(
            err.contains("last chunk (of 31 elements) ends at 90")
                && err.contains("cannot be shortened"),
            "{err}"
        );
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
    }
}
