//! Array documents as the zarrs crate (0.23) opens them, and zarrs arrays floe opens to encode
//! and decode chunks itself.
//!
//! zarr-python 3 names fixed-size byte strings `null_terminated_bytes` and `raw_bytes` (numpy
//! `S` and `V`), which is what floe stores so that xarray reads character arrays; zarrs knows
//! neither, but its raw-bits type `r<bits>` has the same size and encoding, so floe hands zarrs
//! that instead, with the base64 fill value as bytes.
//!
//! zarr-python 3 also writes a regular chunk size of 0 along an empty dimension (`shape: [0]`,
//! `chunk_shape: [0]`), which zarrs' regular grid refuses (its chunk sizes are non-zero). Such
//! a dimension has no chunk whatever its chunk size (floe allows 0 only where the length is 0,
//! see [`super::chunk_grid`]), so floe hands zarrs a chunk size of 1 there: the array zarrs
//! opens has exactly the same elements (none) and chunks (none).

use std::sync::Arc;

use serde_json::{json, Map, Value};
use zarrs::array::{Array, ArrayMetadata, ArrayMetadataV3};
use zarrs::storage::ReadableWritableListableStorageTraits;

use super::base64;

/// The data types zarrs reads as raw bits of the same size.
const BYTE_STRING_TYPES: [&str; 2] = ["null_terminated_bytes", "raw_bytes"];

/// How a chunk size of 0 can appear in compact JSON (as floe renders documents).
const ZERO_ENTRIES: [&str; 4] = ["[0]", "[0,", ",0,", ",0]"];

/// `document` as zarrs reads it: byte-string data types as raw bits (fill value as bytes), a
/// regular chunk size of 0 as 1; everything else unchanged.
pub(crate) fn zarrs_document(document: &Map<String, Value>) -> Map<String, Value> {
    let mut out = document.clone();
    byte_strings_as_raw_bits(&mut out);
    zero_chunk_sizes_as_one(&mut out);
    out
}

/// Replaces zarr-python's byte-string data types by zarrs' raw bits of the same size.
fn byte_strings_as_raw_bits(document: &mut Map<String, Value>) {
    let data_type = document.get("data_type");
    let Some(length) = data_type
        .and_then(|t| t.get("name"))
        .and_then(Value::as_str)
        .filter(|name| BYTE_STRING_TYPES.contains(name))
        .and_then(|_| data_type?.pointer("/configuration/length_bytes")?.as_u64())
    else {
        return;
    };
    let mut fill = match document.get("fill_value") {
        Some(Value::String(text)) => base64::decode(text).unwrap_or_default(),
        _ => Vec::new(),
    };
    fill.resize(length as usize, 0);
    document.insert("data_type".into(), json!(format!("r{}", length * 8)));
    document.insert("fill_value".into(), json!(fill));
}

/// Replaces a regular chunk size of 0 along a dimension of length 0 by 1 (elsewhere a size of
/// 0 is invalid, and is left for zarrs to refuse).
fn zero_chunk_sizes_as_one(document: &mut Map<String, Value>) {
    let empty: Vec<bool> = match document.get("shape").and_then(Value::as_array) {
        Some(shape) => shape.iter().map(|l| l.as_u64() == Some(0)).collect(),
        None => return,
    };
    let Some(grid) = document.get_mut("chunk_grid") else {
        return;
    };
    if grid.get("name").and_then(Value::as_str) != Some("regular") {
        return;
    }
    if let Some(Value::Array(sizes)) = grid.pointer_mut("/configuration/chunk_shape") {
        for (size, _) in sizes
            .iter_mut()
            .zip(&empty)
            .filter(|(size, &empty)| empty && size.as_u64() == Some(0))
        {
            *size = json!(1);
        }
    }
}

/// True when `bytes` (a `zarr.json` as floe renders it, compact) may need
/// [`zarrs_document`]: it may name a byte-string data type zarrs lacks, or hold a chunk size
/// of 0. A cheap test before parsing; false positives only cost the parse.
pub(crate) fn may_differ_for_zarrs(bytes: &[u8]) -> bool {
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    BYTE_STRING_TYPES.iter().any(|name| contains(name)) || ZERO_ENTRIES.iter().any(|z| contains(z))
}

/// A zarrs array for the array `document` at `path` of `storage`. Fails with the reason when
/// zarrs cannot read the document (unknown codec, data type or grid).
pub(crate) fn open_zarrs<S: ?Sized>(
    storage: Arc<S>,
    path: &str,
    document: &Map<String, Value>,
) -> Result<Array<S>, String> {
    let metadata: ArrayMetadataV3 = serde_json::from_value(Value::Object(zarrs_document(document)))
        .map_err(|e| format!("zarrs cannot read the array metadata: {e}"))?;
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    Array::new_with_metadata(storage, &path, ArrayMetadata::V3(metadata))
        .map_err(|e| format!("zarrs cannot open the array: {e}"))
}

/// A zarrs array of `document` over an empty in-memory store: its codec chain, data type and
/// fill value encode and decode chunks held elsewhere.
pub(crate) fn detached_zarrs(
    document: &Map<String, Value>,
) -> Result<Array<dyn ReadableWritableListableStorageTraits>, String> {
    let storage: Arc<dyn ReadableWritableListableStorageTraits> =
        Arc::new(zarrs::storage::store::MemoryStore::new());
    open_zarrs(storage, "/", document)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_strings_become_raw_bits_for_zarrs() {
        let doc = json!({"zarr_format": 3, "node_type": "array", "shape": [4, 6],
            "data_type": {"name": "null_terminated_bytes", "configuration": {"length_bytes": 3}},
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [4, 6]}},
            "chunk_key_encoding": {"name": "default"}, "fill_value": "IA==",
            "codecs": [{"name": "bytes"}]});
        let converted = zarrs_document(doc.as_object().unwrap());
        assert_eq!(converted["data_type"], "r24");
        assert_eq!(converted["fill_value"], json!([32, 0, 0]));
        let array = detached_zarrs(doc.as_object().unwrap()).unwrap();
        assert_eq!(array.data_type().fixed_size(), Some(3));
        let plain = json!({"data_type": "float32", "fill_value": "NaN"});
        assert_eq!(
            Value::Object(zarrs_document(plain.as_object().unwrap())),
            plain
        );
    }

    #[test]
    fn zero_chunk_sizes_become_one_for_zarrs() {
        let doc = json!({"zarr_format": 3, "node_type": "array", "shape": [0, 3],
            "data_type": "int32",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [0, 3]}},
            "chunk_key_encoding": {"name": "default"}, "fill_value": 0,
            "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}]});
        let bytes = doc.to_string();
        assert!(may_differ_for_zarrs(bytes.as_bytes()));
        let converted = zarrs_document(doc.as_object().unwrap());
        assert_eq!(
            converted["chunk_grid"]["configuration"]["chunk_shape"],
            json!([1, 3])
        );
        assert_eq!(converted["shape"], json!([0, 3]));
        // zarrs refuses the document as zarr-python writes it, and opens the converted one.
        assert!(open_unconverted(&doc).is_err());
        let array = detached_zarrs(doc.as_object().unwrap()).unwrap();
        assert_eq!(array.shape(), &[0, 3]);
        // A size of 0 along a non-empty dimension is invalid: zarrs gets it as it is.
        let invalid = json!({"shape": [4, 0], "chunk_grid": {"name": "regular",
            "configuration": {"chunk_shape": [0, 0]}}});
        assert_eq!(
            zarrs_document(invalid.as_object().unwrap())["chunk_grid"]["configuration"],
            json!({"chunk_shape": [0, 1]})
        );
        let positive = json!({"shape": [10], "chunk_grid": {"name": "regular",
            "configuration": {"chunk_shape": [10]}}});
        assert!(!may_differ_for_zarrs(positive.to_string().as_bytes()));
        assert_eq!(
            Value::Object(zarrs_document(positive.as_object().unwrap())),
            positive
        );
    }

    /// Opens `document` with zarrs as is, without [`zarrs_document`].
    fn open_unconverted(document: &Value) -> Result<(), String> {
        let metadata: ArrayMetadataV3 =
            serde_json::from_value(document.clone()).map_err(|e| e.to_string())?;
        let storage: Arc<dyn ReadableWritableListableStorageTraits> =
            Arc::new(zarrs::storage::store::MemoryStore::new());
        Array::new_with_metadata(storage, "/", ArrayMetadata::V3(metadata))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
