//! Array documents as the zarrs crate (0.23) opens them, and zarrs arrays floe opens to encode
//! and decode chunks itself.
//!
//! zarr-python 3 names fixed-size byte strings `null_terminated_bytes` and `raw_bytes` (numpy
//! `S` and `V`), which is what floe stores so that xarray reads character arrays; zarrs knows
//! neither, but its raw-bits type `r<bits>` has the same size and encoding, so floe hands zarrs
//! that instead, with the base64 fill value as bytes.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use zarrs::array::{Array, ArrayMetadata, ArrayMetadataV3};
use zarrs::storage::ReadableWritableListableStorageTraits;

use super::base64;

/// The data types zarrs reads as raw bits of the same size.
const BYTE_STRING_TYPES: [&str; 2] = ["null_terminated_bytes", "raw_bytes"];

/// `document` as zarrs reads it: byte-string data types as raw bits (fill value as bytes);
/// everything else unchanged.
pub(crate) fn zarrs_document(document: &Map<String, Value>) -> Map<String, Value> {
    let data_type = document.get("data_type");
    let Some(length) = data_type
        .and_then(|t| t.get("name"))
        .and_then(Value::as_str)
        .filter(|name| BYTE_STRING_TYPES.contains(name))
        .and_then(|_| data_type?.pointer("/configuration/length_bytes")?.as_u64())
    else {
        return document.clone();
    };
    let mut out = document.clone();
    out.insert("data_type".into(), json!(format!("r{}", length * 8)));
    let mut fill = match document.get("fill_value") {
        Some(Value::String(text)) => base64::decode(text).unwrap_or_default(),
        _ => Vec::new(),
    };
    fill.resize(length as usize, 0);
    out.insert("fill_value".into(), json!(fill));
    out
}

/// True when `bytes` (a `zarr.json`) may name a byte-string data type zarrs lacks: a cheap
/// test before parsing.
pub(crate) fn has_byte_strings(bytes: &[u8]) -> bool {
    BYTE_STRING_TYPES
        .iter()
        .any(|name| bytes.windows(name.len()).any(|w| w == name.as_bytes()))
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
}
