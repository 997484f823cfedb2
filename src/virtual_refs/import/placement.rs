//! What an import does with each array, decided from metadata alone before anything is
//! written: create it, append to the existing one along the append dimension (by reference or
//! by loaded values), or find it unchanged. Every refusal happens here or in the value
//! comparisons that follow, so a refused import changes nothing.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::attrs::{self, TimeChange};
use super::grid_edges::{
    appended_runs, existing_edges, grown_runs, rectilinear_grid, PartialChunk,
};
use super::roles::{element_size, Role};
use crate::error::{Error, Result};
use crate::format::path::NodePath;
use crate::repo::Session;
use crate::virtual_refs::dataset::{
    document_attributes as attributes, document_shape as shape, VirtualArray,
};
use crate::zarr::chunk_grid::ChunkGrid;
use crate::zarr::metadata::{check_grid_update, ArrayGeometry, NodeMetadata};

/// The decoded size a chunk of a loaded array aims at along its growing dimension: 1 MiB.
const LOADED_CHUNK_BYTES: u64 = 1 << 20;
/// Room to grow a loaded array whose append dimension is not known yet: its first dimension's
/// chunk holds this many times its current length (rounded up to a power of two).
const LOADED_GROWTH_FACTOR: u64 = 64;

/// What the import does with one array.
#[derive(Debug)]
pub(crate) enum Action {
    /// Create the array with `metadata` (after deleting the node that `replace`s).
    Create {
        /// A node exists at the path and is replaced.
        replace: bool,
        /// The array's metadata: the translated one, or the loaded layout.
        metadata: Arc<NodeMetadata>,
    },
    /// Append the source's chunks as references after the existing ones along `dim`.
    AppendVirtual {
        /// Index of the append dimension.
        dim: usize,
        /// The grown array's metadata.
        metadata: Arc<NodeMetadata>,
        /// Chunks of the existing array along `dim` (the first new chunk's index).
        chunk_shift: u64,
        /// The existing partly filled last chunk, cut and stored natively first, with the
        /// metadata that drops its slab before `metadata` gives it its new edge.
        partial: Option<(PartialChunk, Arc<NodeMetadata>)>,
        /// The existing array's metadata.
        existing: Arc<NodeMetadata>,
    },
    /// Write the source's decoded values after the existing elements along `dim`.
    AppendLoaded {
        /// Index of the append dimension.
        dim: usize,
        /// The existing length along `dim`: where the new values start.
        offset: u64,
        /// The grown array's metadata.
        metadata: Arc<NodeMetadata>,
        /// Re-encoding of CF time values, when the file encodes them otherwise.
        time: Option<TimeChange>,
    },
    /// The array lacks the append dimension: its values must equal the stored ones.
    Unchanged {
        /// Re-encoding of CF time values before comparing.
        time: Option<TimeChange>,
        /// The stored array's metadata.
        existing: Arc<NodeMetadata>,
    },
}

/// The decision for one array, with the attributes that differ harmlessly.
#[derive(Debug)]
pub(crate) struct ArrayPlan {
    /// Where the array goes.
    pub(crate) target: NodePath,
    /// Whether its values are loaded.
    pub(crate) role: Role,
    /// What happens to it.
    pub(crate) action: Action,
    /// Attributes of the stored array that differ from the file's and are kept.
    pub(crate) kept: Vec<(String, Value, Value)>,
}

/// The fields of two array documents that must agree for an append, for every array (loaded
/// arrays are encoded by floe, so their codecs, key encoding and chunking are free).
const MUST_AGREE: [&str; 3] = ["data_type", "fill_value", "dimension_names"];
/// The fields that must also agree when the appended chunks are references.
const MUST_AGREE_VIRTUAL: [&str; 2] = ["codecs", "chunk_key_encoding"];

/// The layout floe stores a loaded array in: the translated metadata with little-endian
/// `bytes` + `zstd` codecs and a regular grid that is whole along every dimension but the one
/// it grows along (`grows`, the append dimension when known, else the first), whose chunk
/// holds about 1 MiB (or 64 times the current length, when the append dimension is unknown).
pub(crate) fn loaded_document(translated: &Value, grows: Option<usize>, known: bool) -> Value {
    let mut document = translated.clone();
    let shape = shape(translated);
    let element = element_size(&translated["data_type"]).unwrap_or(1).max(1);
    let byte_string = translated["data_type"]
        .pointer("/configuration/length_bytes")
        .is_some();
    let bytes = if element == 1 || byte_string {
        json!({"name": "bytes"})
    } else {
        json!({"name": "bytes", "configuration": {"endian": "little"}})
    };
    document["codecs"] =
        json!([bytes, {"name": "zstd", "configuration": {"level": 3, "checksum": false}}]);
    let mut chunks: Vec<u64> = shape.iter().map(|&s| s.max(1)).collect();
    if let Some(dim) = grows.filter(|&d| d < shape.len()) {
        let row: u64 = shape
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != dim)
            .fold(element, |n, (_, &s)| n.saturating_mul(s.max(1)));
        let rows = (LOADED_CHUNK_BYTES / row).max(1);
        chunks[dim] = if known {
            rows
        } else {
            let room = shape[dim]
                .max(1)
                .next_power_of_two()
                .saturating_mul(LOADED_GROWTH_FACTOR);
            room.min(rows).max(shape[dim].max(1).min(rows))
        };
    }
    document["chunk_grid"] = json!({"name": "regular", "configuration": {"chunk_shape": chunks}});
    document
}

/// Decides what happens to `array` at `target` of `session`, whose role is `role`, for an import
/// appending along `append_dim` (or replacing, without one).
///
/// Fails with [`Error::KerchunkImport`] when the array cannot be appended or found unchanged:
/// a group at the path, other data type, fill value, dimensions, lengths along other
/// dimensions, decoding attributes (naming both values), or, for references, other codecs or
/// chunking along other dimensions.
pub(crate) fn plan(
    session: &Session,
    target: &NodePath,
    array: &VirtualArray,
    role: Role,
    append_dim: Option<&str>,
    parent: Option<(&NodePath, &VirtualArray)>,
) -> Result<ArrayPlan> {
    let loaded = matches!(role, Role::Load(_));
    let names = array.dimension_names();
    let dim = append_dim.and_then(|d| names.iter().position(|n| *n == d));
    let create = |replace: bool| -> Result<ArrayPlan> {
        let document = if loaded {
            // With a known append dimension, arrays without it never grow; without one, the
            // first dimension is the likeliest to.
            let grows = match append_dim {
                Some(_) => dim,
                None => (!array.shape().is_empty()).then_some(0),
            };
            loaded_document(&array.document, grows, append_dim.is_some())
        } else {
            array.document.clone()
        };
        Ok::<_, Error>(ArrayPlan {
            target: target.clone(),
            role: role.clone(),
            action: Action::Create {
                replace,
                metadata: Arc::new(NodeMetadata::from_value(target, document)?),
            },
            kept: Vec::new(),
        })
    };
    let Some(existing) = session.node(target)? else {
        return create(false);
    };
    if append_dim.is_none() {
        return create(true);
    }
    let refuse = |reason: String| Error::import_refused(format!("array `{target}`"), reason);
    let Some(geometry) = existing.metadata.geometry() else {
        return Err(refuse(
            "appending needs an array here, but a group exists".into(),
        ));
    };
    let stored = Value::Object(existing.metadata.document().clone());
    // Arrays compared by value (unchanged) or written by value (loaded) may be encoded
    // otherwise; references must follow references encoded alike.
    let fields = MUST_AGREE.iter().chain(if loaded || dim.is_none() {
        &[][..]
    } else {
        &MUST_AGREE_VIRTUAL[..]
    });
    for field in fields {
        if stored.get(field) != array.document.get(field) {
            // References can only follow chunks encoded the same way; floe encodes loaded
            // arrays itself.
            let hint = if *field == "codecs" {
                " (when an earlier import loaded this array, import it loaded again, without \
                 --virtual)"
            } else {
                ""
            };
            return Err(refuse(format!(
                "its `{field}` is {} in the imported file but {} in the stored array, so the \
                 new data cannot be appended{hint}; nothing was changed",
                array.document.get(field).unwrap_or(&Value::Null),
                stored.get(field).unwrap_or(&Value::Null)
            )));
        }
    }
    let (mut stored_attrs, mut imported_attrs) = (attributes(&stored), array.attributes());
    if let Some((parent_target, parent)) = parent {
        // Bounds inherit the time encoding of the variable they bound.
        let stored_parent = session
            .node(parent_target)?
            .map(|n| attributes(&Value::Object(n.metadata.document().clone())))
            .unwrap_or_default();
        inherit_time_encoding(&mut stored_attrs, &stored_parent);
        inherit_time_encoding(&mut imported_attrs, &parent.attributes());
    }
    let check = attrs::compare(target, &stored_attrs, &imported_attrs, loaded)?;
    let (old_shape, new_shape) = (shape(&stored), shape(&array.document));
    if old_shape.len() != new_shape.len() {
        return Err(refuse(format!(
            "it has {} dimensions in the imported file but {} in the stored array",
            new_shape.len(),
            old_shape.len()
        )));
    }
    let Some(dim) = dim else {
        if old_shape != new_shape {
            return Err(refuse(format!(
                "it lacks the append dimension, so it must equal the stored array, but its shape \
                 {new_shape:?} differs from {old_shape:?}"
            )));
        }
        return Ok(ArrayPlan {
            target: target.clone(),
            role,
            action: Action::Unchanged {
                time: check.time,
                existing: existing.metadata.clone(),
            },
            kept: check.differing,
        });
    };
    let append_dim = append_dim.unwrap_or_default();
    for (i, (old, new)) in old_shape.iter().zip(&new_shape).enumerate() {
        if i != dim && old != new {
            return Err(refuse(format!(
                "its length along `{}` is {new}, the stored array's is {old}: only `{append_dim}` \
                 may differ",
                names.get(i).copied().unwrap_or("?")
            )));
        }
    }
    let (existing_len, appended_len) = (old_shape[dim], new_shape[dim]);
    let mut grown_shape = old_shape.clone();
    grown_shape[dim] = existing_len
        .checked_add(appended_len)
        .ok_or_else(|| refuse("the appended length overflows".into()))?;
    let mut document = stored.clone();
    document["shape"] = json!(grown_shape);
    let action = if loaded {
        if let Some(runs) = grown_runs(&geometry.chunk_grid, dim, grown_shape[dim]) {
            document["chunk_grid"] = rectilinear_grid(&geometry.chunk_grid, dim, &runs);
        }
        let metadata = NodeMetadata::from_value(target, document)?;
        check_grid_update(target, geometry, &metadata)?;
        Action::AppendLoaded {
            dim,
            offset: existing_len,
            metadata: Arc::new(metadata),
            time: check.time,
        }
    } else {
        let new_grid = ChunkGrid::from_metadata(&array.document["chunk_grid"], &new_shape)
            .map_err(|e| refuse(format!("its chunk grid is invalid: {e}")))?;
        let ChunkGrid::Regular { chunk_shape } = &new_grid else {
            return Err(refuse("its chunk grid must be regular".into()));
        };
        for i in (0..old_shape.len()).filter(|&i| i != dim) {
            if let Some(chunk) =
                geometry
                    .chunk_grid
                    .first_difference(&new_grid, i, old_shape[i], new_shape[i])
            {
                return Err(refuse(format!(
                    "its chunk {chunk} along `{}` has another length than the stored array's: \
                     only chunks along `{append_dim}` may differ",
                    names.get(i).copied().unwrap_or("?")
                )));
            }
        }
        let edges = existing_edges(&geometry.chunk_grid, dim, existing_len)
            .map_err(|reason| refuse(format!("along `{append_dim}`: {reason}")))?;
        let new_chunk = chunk_shape[dim];
        let stays_regular = appended_len == 0
            || (edges.partial.is_none()
                && geometry.regular_chunk_shape().map(|c| c[dim]) == Some(new_chunk));
        if !stays_regular {
            let runs = appended_runs(&edges, new_chunk, appended_len);
            document["chunk_grid"] = rectilinear_grid(&geometry.chunk_grid, dim, &runs);
        }
        let metadata = NodeMetadata::from_value(target, document)?;
        let partial = match edges.partial.filter(|_| appended_len > 0) {
            // The slab is dropped first (the grid cannot change a chunk's extent), then
            // given its cut edge: both steps are checked here, before anything is written.
            Some(partial) => {
                let truncated =
                    truncated_document(existing.metadata.document(), geometry, dim, &partial)
                        .map_err(|reason| refuse(format!("along `{append_dim}`: {reason}")))?;
                let truncated = NodeMetadata::from_value(target, truncated)?;
                check_grid_update(target, geometry, &truncated)?;
                if let Some(cut) = truncated.geometry() {
                    check_grid_update(target, cut, &metadata)?;
                }
                Some((partial, Arc::new(truncated)))
            }
            None => {
                check_grid_update(target, geometry, &metadata)?;
                None
            }
        };
        Action::AppendVirtual {
            dim,
            metadata: Arc::new(metadata),
            chunk_shift: edges.count(),
            partial,
            existing: existing.metadata.clone(),
        }
    };
    Ok(ArrayPlan {
        target: target.clone(),
        role,
        action,
        kept: check.differing,
    })
}

/// The array document ending at the start of the partial chunk, whose grid has no chunk there
/// (so the next document may give that chunk another edge length).
fn truncated_document(
    document: &Map<String, Value>,
    geometry: &ArrayGeometry,
    dim: usize,
    partial: &PartialChunk,
) -> std::result::Result<Value, String> {
    let grid = &geometry.chunk_grid;
    let mut truncated = Value::Object(document.clone());
    truncated["shape"][dim] = json!(partial.start);
    if !grid.is_regular() {
        if partial.index == 0 {
            return Err(
                "its first chunk is partly filled in a rectilinear grid: it cannot be \
                        cut"
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

/// Copies `units` and `calendar` from `parent` into `attributes` where they are absent.
fn inherit_time_encoding(attributes: &mut Map<String, Value>, parent: &Map<String, Value>) {
    for name in ["units", "calendar"] {
        if let (false, Some(value)) = (attributes.contains_key(name), parent.get(name)) {
            attributes.insert(name.to_string(), value.clone());
        }
    }
}

/// The error for an append dimension no imported array has.
pub(crate) fn unknown_dimension(origin: &str, append_dim: &str) -> Error {
    Error::import_refused(
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

    #[test]
    fn loaded_arrays_get_zstd_and_room_to_grow() {
        let time = json!({"shape": [12], "data_type": "float64", "chunk_grid": {"name": "regular",
            "configuration": {"chunk_shape": [512]}}, "codecs": [{"name": "bytes",
            "configuration": {"endian": "big"}}]});
        let known = loaded_document(&time, Some(0), true);
        assert_eq!(
            known["chunk_grid"]["configuration"]["chunk_shape"],
            json!([131072])
        );
        assert_eq!(known["codecs"][0]["configuration"]["endian"], "little");
        assert_eq!(known["codecs"][1]["name"], "zstd");
        let unknown = loaded_document(&time, Some(0), false);
        assert_eq!(
            unknown["chunk_grid"]["configuration"]["chunk_shape"],
            json!([1024])
        );
        // Bounds: whole along `nv`, rows of 16 bytes.
        let bounds = json!({"shape": [12, 2], "data_type": "float64"});
        let doc = loaded_document(&bounds, Some(0), true);
        assert_eq!(
            doc["chunk_grid"]["configuration"]["chunk_shape"],
            json!([65536, 2])
        );
        // Not growing: whole.
        let lat = json!({"shape": [181], "data_type": "float32"});
        let doc = loaded_document(&lat, None, true);
        assert_eq!(
            doc["chunk_grid"]["configuration"]["chunk_shape"],
            json!([181])
        );
        let scalar = json!({"shape": [], "data_type": "int32"});
        let doc = loaded_document(&scalar, None, false);
        assert_eq!(doc["chunk_grid"]["configuration"]["chunk_shape"], json!([]));
        let chars = json!({"shape": [4, 6], "data_type": {"name": "null_terminated_bytes",
            "configuration": {"length_bytes": 1}}});
        let doc = loaded_document(&chars, None, false);
        assert_eq!(doc["codecs"][0], json!({"name": "bytes"}));
        let dates = json!({"shape": [3], "data_type": {"name": "numpy.datetime64",
            "configuration": {"unit": "s", "scale_factor": 1}}});
        let doc = loaded_document(&dates, None, false);
        assert_eq!(doc["codecs"][0]["configuration"]["endian"], "little");
    }
}
