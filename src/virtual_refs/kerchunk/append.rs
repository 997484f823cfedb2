//! Where an imported array goes when something already exists at its path: replaced, appended
//! along a dimension, or found unchanged (arrays without the append dimension, such as
//! coordinates, must equal the existing ones).

use serde_json::{Map, Value};

use super::invalid;
use super::sources::Sources;
use super::KerchunkRef;
use crate::error::{Error, Result};
use crate::format::manifest::ChunkCoord;
use crate::format::path::NodePath;
use crate::repo::Session;

/// What the import does with one array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Create the array (deleting first what `replace`s) and write every chunk.
    Create {
        /// Something exists at the path and is replaced.
        replace: bool,
    },
    /// Grow the existing array to `shape` and write the chunks shifted by `chunk_shift` along
    /// dimension `dim`.
    Append {
        /// Index of the append dimension.
        dim: usize,
        /// Chunks of the existing array along that dimension.
        chunk_shift: u64,
        /// The new shape.
        shape: Vec<u64>,
    },
    /// The array lacks the append dimension and equals the existing one: nothing is written.
    Unchanged,
}

/// The fields of two array documents that must agree for an append (besides the shape).
const MUST_AGREE: [&str; 6] = [
    "data_type",
    "fill_value",
    "codecs",
    "chunk_grid",
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

/// Decides the placement of the array `new` (a translated `zarr.json`) at `path`.
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
        return Ok(Placement::Unchanged);
    };
    for (i, (old, new)) in old_shape.iter().zip(&new_shape).enumerate() {
        if i != dim && old != new {
            return Err(refuse(format!(
                "its length along `{}` is {new}, the existing array's is {old}: only `{append_dim}` \
                 may differ",
                names.get(i).map(String::as_str).unwrap_or("?")
            )));
        }
    }
    let existing_len = old_shape[dim];
    let Some(chunk_len) = geometry.regular_chunk_shape().map(|c| c[dim]) else {
        return Err(refuse(format!(
            "it is stored with a rectilinear chunk grid, which an import cannot append along \
             `{append_dim}` to yet"
        )));
    };
    if existing_len % chunk_len != 0 {
        return append_after_partial_chunk(path, append_dim, existing_len, chunk_len);
    }
    let mut shape = old_shape.clone();
    shape[dim] = existing_len
        .checked_add(new_shape[dim])
        .ok_or_else(|| refuse("the appended length overflows".into()))?;
    Ok(Placement::Append {
        dim,
        chunk_shift: existing_len / chunk_len,
        shape,
    })
}

/// Appending after an existing length that is not a whole number of chunks: the new data's
/// first chunk would start inside the last existing chunk, which a regular chunk grid cannot
/// express. This is the one place a rectilinear chunk grid (chunks of unequal lengths along
/// the append dimension) would be introduced; until then it is refused.
fn append_after_partial_chunk(
    path: &NodePath,
    append_dim: &str,
    existing_len: u64,
    chunk_len: u64,
) -> Result<Placement> {
    Err(invalid(
        format!("array `{path}`"),
        format!(
            "its length along `{append_dim}` is {existing_len}, not a multiple of the chunk \
             length {chunk_len}: appending would need a rectilinear chunk grid (chunks of \
             unequal lengths), which this import does not create yet"
        ),
    ))
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
