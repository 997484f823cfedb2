//! Decoded values of whole arrays, read from source files or from the session, written into a
//! region of an array of the session, and compared; CF time values re-encoded in place.
//!
//! Values are held as native-endian element bytes in C order, decoded and encoded by zarrs
//! with the array's own codec chain. Whole arrays are decoded only up to
//! [`MAX_DECODED_ARRAY_BYTES`] and chunks up to [`MAX_DECODED_CHUNK_BYTES`] (a chunk declared
//! larger than that, even if absent, is refused rather than allocated).

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, Value};
use zarrs::array::{ArrayBytes, CodecOptions};
use zarrs::storage::store::MemoryStore;
use zarrs::storage::WritableStorageTraits;

use super::cf_time::TimeConversion;
use super::sources::Sources;
use crate::error::{Error, Result};
use crate::format::path::NodePath;
use crate::repo::Session;
use crate::virtual_refs::dataset::{SourceChunk, VirtualArray};
use crate::zarr::base64;
use crate::zarr::zarrs_adapter::AsyncZarrsStore;
use crate::zarr::zarrs_compat::open_zarrs;

/// The largest array an import decodes whole (to load it, or compare it): 2 GiB.
pub(crate) const MAX_DECODED_ARRAY_BYTES: u64 = 2 << 30;
/// The largest chunk an import decodes (to compare, cut or load it): 512 MiB.
pub(crate) const MAX_DECODED_CHUNK_BYTES: u64 = 512 << 20;

/// Checks that the array `document` can be decoded whole (`whole`) or chunk by chunk within
/// the limits; the reason otherwise.
pub(crate) fn check_decodable(
    document: &Map<String, Value>,
    whole: bool,
) -> std::result::Result<(), String> {
    let metadata = crate::zarr::metadata::NodeMetadata::from_value(
        &NodePath::root(),
        Value::Object(document.clone()),
    )
    .map_err(|e| e.to_string())?;
    let geometry = metadata.geometry().ok_or("not an array")?;
    let element = super::roles::element_size(&document["data_type"])
        .ok_or("its data type has no fixed size, so its values cannot be decoded here")?;
    let bytes = |shape: &[u64]| shape.iter().try_fold(element, |n, &d| n.checked_mul(d));
    match bytes(&geometry.max_chunk_shape()) {
        Some(n) if n <= MAX_DECODED_CHUNK_BYTES => {}
        _ => {
            return Err(format!(
                "its chunks of {:?} elements would decode to more than {MAX_DECODED_CHUNK_BYTES} \
                 bytes",
                geometry.max_chunk_shape()
            ))
        }
    }
    if whole {
        match bytes(&geometry.shape) {
            Some(n) if n <= MAX_DECODED_ARRAY_BYTES => {}
            _ => {
                return Err(format!(
                    "its {:?} elements would decode to more than {MAX_DECODED_ARRAY_BYTES} \
                     bytes, too many to load or compare in one import",
                    geometry.shape
                ))
            }
        }
    }
    Ok(())
}

/// How many source chunks are fetched at once.
const CONCURRENT_FETCHES: usize = 16;

/// The decoded values of an array (or a region of one).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Decoded {
    /// The shape of the values.
    pub(crate) shape: Vec<u64>,
    /// Native-endian element bytes in C order.
    pub(crate) bytes: Vec<u8>,
}

fn object(document: &Value) -> Result<&Map<String, Value>> {
    document
        .as_object()
        .ok_or_else(|| Error::invalid_metadata("", "an array document must be a JSON object"))
}

/// The encoded bytes of `chunk`, from the file it lies in or inline.
pub(crate) async fn fetch_chunk(chunk: &SourceChunk, sources: &Sources) -> Result<bytes::Bytes> {
    match chunk {
        SourceChunk::Inline(bytes) => Ok(bytes.clone()),
        SourceChunk::File { url } => {
            let size = sources.get(url)?.size;
            sources.read(url, 0, size).await
        }
        SourceChunk::Range {
            url,
            offset,
            length,
        } => sources.read(url, *offset, *length).await,
    }
}

/// Every value of `array`, read from its source files and decoded with its codecs; chunks the
/// source lacks read as the fill value.
pub(crate) async fn read_source(
    what: &str,
    array: &VirtualArray,
    sources: &Sources,
) -> Result<Decoded> {
    let document = object(&array.document)?;
    check_decodable(document, true).map_err(|e| Error::import_refused(what, e))?;
    let store = Arc::new(MemoryStore::new());
    let zarrs =
        open_zarrs(store.clone(), "/", document).map_err(|e| Error::import_refused(what, e))?;
    // Futures built first, so the caller's future stays provably `Send`.
    let fetches: Vec<_> = array
        .chunks
        .iter()
        .map(|(coord, chunk)| async move {
            Ok::<_, Error>((coord.clone(), fetch_chunk(chunk, sources).await?))
        })
        .collect();
    let fetched: Vec<(Vec<u64>, bytes::Bytes)> = futures::stream::iter(fetches)
        .buffer_unordered(CONCURRENT_FETCHES)
        .try_collect()
        .await?;
    for (coord, bytes) in fetched {
        store.set(&zarrs.chunk_key(&coord), bytes).map_err(|e| {
            Error::import_refused(what, format!("cannot hold chunk {coord:?}: {e}"))
        })?;
    }
    let values: ArrayBytes<'static> = zarrs
        .retrieve_array_subset(&zarrs.subset_all())
        .map_err(|e| Error::import_refused(what, format!("cannot decode its chunks: {e}")))?;
    let bytes = values.into_fixed().map_err(|e| {
        Error::import_refused(
            what,
            format!("variable-length values cannot be loaded: {e}"),
        )
    })?;
    Ok(Decoded {
        shape: zarrs.shape().to_vec(),
        bytes: bytes.into_owned(),
    })
}

/// Every value of the array at `path` of `session`, whose metadata is `document`.
pub(crate) async fn read_stored(
    session: &Session,
    path: &NodePath,
    document: &Map<String, Value>,
) -> Result<Decoded> {
    let storage = Arc::new(AsyncZarrsStore::new(session.zarr()));
    let what = format!("array `{path}`");
    check_decodable(document, true).map_err(|e| Error::import_refused(&what, e))?;
    let zarrs = open_zarrs(storage, path.as_str(), document)
        .map_err(|e| Error::import_refused(&what, e))?;
    let values: ArrayBytes<'static> = zarrs
        .async_retrieve_array_subset_opt(&zarrs.subset_all(), &CodecOptions::default())
        .await
        .map_err(|e| Error::import_refused(&what, format!("cannot read its values: {e}")))?;
    let bytes = values.into_fixed().map_err(|e| {
        Error::import_refused(&what, format!("variable-length values cannot be read: {e}"))
    })?;
    Ok(Decoded {
        shape: zarrs.shape().to_vec(),
        bytes: bytes.into_owned(),
    })
}

/// The largest rounding of a re-encoded time value (in stored units) a float type may make.
const MAX_TIME_ROUNDING: f64 = 1e-3;

/// The values an array's CF attributes mark as missing (`_FillValue` in xarray's Zarr v3
/// encoding, `missing_value` as a number or a list), as `f64`.
pub(crate) fn missing_values(attributes: &Map<String, Value>) -> Vec<f64> {
    let mut out = Vec::new();
    match attributes.get("_FillValue") {
        Some(Value::Number(n)) => out.extend(n.as_f64()),
        Some(Value::String(text)) => out.extend(
            base64::decode(text)
                .ok()
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(f64::from_le_bytes),
        ),
        _ => {}
    }
    match attributes.get("missing_value") {
        Some(Value::Number(n)) => out.extend(n.as_f64()),
        Some(Value::Array(values)) => out.extend(values.iter().filter_map(Value::as_f64)),
        _ => {}
    }
    out
}

/// Re-encodes the time values of `values` (data type `data_type`) with `conversion`, leaving
/// NaN and the values in `missing` as they are. Returns how many values changed encoding.
/// Fails for data types that cannot hold times, or a value the stored encoding cannot hold.
pub(crate) fn convert_times(
    values: &mut Decoded,
    data_type: &Value,
    conversion: &TimeConversion,
    missing: &[f64],
) -> std::result::Result<u64, String> {
    let is_missing = |v: f64| v.is_nan() || missing.contains(&v);
    let mut converted = 0u64;
    macro_rules! floats {
        ($t:ty) => {{
            for chunk in values.bytes.chunks_exact_mut(std::mem::size_of::<$t>()) {
                let v = <$t>::from_ne_bytes(chunk.try_into().map_err(|_| "bad element")?);
                if is_missing(v as f64) {
                    continue;
                }
                let Some(c) = conversion.convert(v as f64)? else {
                    continue;
                };
                let held = c as $t;
                // The stored type must hold the re-encoded instant (float32 minutes since 1900
                // round to 4 minutes).
                if (held as f64 - c).abs() > MAX_TIME_ROUNDING {
                    return Err(format!(
                        "{v} becomes {c} in the stored encoding, which its data type holds only \
                         as {held}: times would lose precision (store them as float64 or \
                         integers)"
                    ));
                }
                chunk.copy_from_slice(&held.to_ne_bytes());
                converted += 1;
            }
        }};
    }
    macro_rules! ints {
        ($t:ty) => {{
            for chunk in values.bytes.chunks_exact_mut(std::mem::size_of::<$t>()) {
                let v = <$t>::from_ne_bytes(chunk.try_into().map_err(|_| "bad element")?);
                if is_missing(v as f64) {
                    continue;
                }
                let wide = i64::try_from(v).map_err(|_| format!("{v} is out of range"))?;
                let Some(c) = conversion.convert_integer(wide)? else {
                    continue;
                };
                let narrow = <$t>::try_from(c).map_err(|_| {
                    format!("{v} converts to {c}, which the stored type cannot hold")
                })?;
                chunk.copy_from_slice(&narrow.to_ne_bytes());
                converted += 1;
            }
        }};
    }
    match data_type.as_str() {
        Some("float32") => floats!(f32),
        Some("float64") => floats!(f64),
        Some("int8") => ints!(i8),
        Some("int16") => ints!(i16),
        Some("int32") => ints!(i32),
        Some("int64") => ints!(i64),
        Some("uint8") => ints!(u8),
        Some("uint16") => ints!(u16),
        Some("uint32") => ints!(u32),
        Some("uint64") => ints!(u64),
        _ => return Err(format!("values of data type {data_type} cannot be times")),
    }
    Ok(converted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtual_refs::import::cf_time::TimeEncoding;
    use serde_json::json;

    #[test]
    fn times_convert_in_place_and_missing_values_stay() {
        let from = TimeEncoding::parse("hours since 2026-01-02", None)
            .unwrap()
            .unwrap();
        let to = TimeEncoding::parse("hours since 2026-01-01", None)
            .unwrap()
            .unwrap();
        let conversion = TimeConversion::between(from, to).unwrap();
        let mut values = Decoded {
            shape: vec![3],
            bytes: [0.0f64, -9999.0, 1.5]
                .iter()
                .flat_map(|v| v.to_ne_bytes())
                .collect(),
        };
        let fill = json!({"_FillValue": base64::encode(&(-9999.0f64).to_le_bytes())});
        let missing = missing_values(fill.as_object().unwrap());
        let n = convert_times(&mut values, &json!("float64"), &conversion, &missing).unwrap();
        assert_eq!(n, 2);
        let read: Vec<f64> = values
            .bytes
            .chunks_exact(8)
            .map(|c| f64::from_ne_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(read, vec![24.0, -9999.0, 25.5]);
        let mut small = Decoded {
            shape: vec![1],
            bytes: 120i8.to_ne_bytes().to_vec(),
        };
        let err = convert_times(&mut small, &json!("int8"), &conversion, &[]).unwrap_err();
        assert!(err.contains("cannot hold"), "{err}");
        assert!(convert_times(&mut small, &json!("bool"), &conversion, &[]).is_err());
        // float32 minutes since 1900 cannot hold a minute of 2026.
        let minutes_1900 = TimeEncoding::parse("minutes since 1900-01-01", None)
            .unwrap()
            .unwrap();
        let minutes_2026 = TimeEncoding::parse("minutes since 2026-01-01", None)
            .unwrap()
            .unwrap();
        let far = TimeConversion::between(minutes_2026, minutes_1900).unwrap();
        let mut f32_times = Decoded {
            shape: vec![1],
            bytes: 1.0f32.to_ne_bytes().to_vec(),
        };
        let err = convert_times(&mut f32_times, &json!("float32"), &far, &[]).unwrap_err();
        assert!(err.contains("lose precision"), "{err}");
        let mut f64_times = Decoded {
            shape: vec![1],
            bytes: 1.0f64.to_ne_bytes().to_vec(),
        };
        assert_eq!(
            convert_times(&mut f64_times, &json!("float64"), &far, &[]),
            Ok(1)
        );
        let listed = json!({"missing_value": [1, 2.5]});
        assert_eq!(missing_values(listed.as_object().unwrap()), vec![1.0, 2.5]);
    }
}
