//! The order in which scanned files are appended: by the values of their append coordinate
//! (the 1-D variable named like the append dimension), which must increase from file to file
//! without overlapping. CF times in other units or from another reference date are compared
//! as instants.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, Value};

use super::reader::SourceReader;
use crate::error::{Error, Result};
use crate::virtual_refs::import::cf_time::{TimeConversion, TimeEncoding};
use crate::virtual_refs::kerchunk::{KerchunkRef, KerchunkRefs};

/// The first and last value of a file's append coordinate, in the first file's encoding.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Span {
    pub(crate) first: f64,
    pub(crate) last: f64,
}

fn inline_json(refs: &KerchunkRefs, key: &str) -> Option<Value> {
    match refs.refs.get(key)? {
        KerchunkRef::Inline(bytes) => serde_json::from_slice(bytes).ok(),
        _ => None,
    }
}

/// One value of `dtype` (a Zarr v2 numeric data type, either byte order) from `bytes`.
fn decode(dtype: &str, bytes: &[u8]) -> Option<f64> {
    let little = dtype.starts_with('<');
    let uint = |n: usize| -> Option<u64> {
        let b = bytes.get(..n)?;
        let fold = |acc: u64, x: &u8| (acc << 8) | u64::from(*x);
        Some(if little {
            b.iter().rev().fold(0, fold)
        } else {
            b.iter().fold(0, fold)
        })
    };
    Some(match dtype.get(1..)? {
        "f8" => f64::from_bits(uint(8)?),
        "f4" => f64::from(f32::from_bits(uint(4)? as u32)),
        "i1" => f64::from(*bytes.first()? as i8),
        "u1" => f64::from(*bytes.first()?),
        "i2" => f64::from(uint(2)? as u16 as i16),
        "u2" => f64::from(uint(2)? as u16),
        "i4" => f64::from(uint(4)? as u32 as i32),
        "u4" => uint(4)? as f64,
        "i8" => uint(8)? as i64 as f64,
        "u8" => uint(8)? as f64,
        _ => return None,
    })
}

/// Chunks larger than this are not read to order files.
const MAX_CHUNK_READ: u64 = 64 << 20;

/// Element `at` of `width` bytes of a decoded chunk.
fn element(raw: &[u8], at: u64, width: usize) -> std::result::Result<Bytes, String> {
    let start = usize::try_from(at)
        .unwrap_or(usize::MAX)
        .saturating_mul(width);
    raw.get(start..start.saturating_add(width))
        .map(Bytes::copy_from_slice)
        .ok_or_else(|| "a chunk of the append coordinate is shorter than its shape".to_string())
}

/// A chunk's bytes with its Zarr v2 `filters` (shuffle, zlib, zstd) undone, last first.
fn decode_filters(filters: &[Value], stored: &[u8]) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read;
    let mut data = stored.to_vec();
    for f in filters.iter().rev() {
        let limit = MAX_CHUNK_READ + 1;
        data = match f["id"].as_str() {
            Some("shuffle") => {
                let size = f["elementsize"].as_u64().unwrap_or(4) as usize;
                super::hdf5::filters::unshuffle(&data, size)
            }
            Some("zlib") => {
                let mut out = Vec::new();
                flate2::read::ZlibDecoder::new(&data[..])
                    .take(limit)
                    .read_to_end(&mut out)
                    .map_err(|e| format!("the append coordinate's chunk does not inflate: {e}"))?;
                out
            }
            Some("zstd") => {
                let mut out = Vec::new();
                zstd::stream::read::Decoder::new(&data[..])
                    .and_then(|d| d.take(limit).read_to_end(&mut out))
                    .map_err(|e| format!("the append coordinate's chunk does not decode: {e}"))?;
                out
            }
            other => {
                return Err(format!(
                    "the append coordinate is stored with filter {other:?}, which floe does not \
                     decode to order files"
                ))
            }
        };
    }
    Ok(data)
}

fn number(attributes: &Map<String, Value>, name: &str) -> Option<f64> {
    attributes.get(name).and_then(Value::as_f64)
}

/// The append coordinate `dim` of one scanned file: its first and last (unpacked) values and
/// its time encoding, reading its first and last chunks through `reader`.
async fn coordinate_span(
    reader: &SourceReader,
    refs: &KerchunkRefs,
    dim: &str,
) -> Result<(f64, f64, Option<TimeEncoding>)> {
    let refused = |reason: String| Error::import_refused(reader.location.clone(), reason);
    let zarray = inline_json(refs, &format!("{dim}/.zarray")).ok_or_else(|| {
        refused(format!(
            "no coordinate variable `{dim}` (a 1-D variable named like the append dimension) \
             to order the files by"
        ))
    })?;
    let attributes = inline_json(refs, &format!("{dim}/.zattrs"))
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    let dtype = zarray["dtype"].as_str().unwrap_or_default();
    let shape: Vec<u64> = zarray["shape"]
        .as_array()
        .map(|s| s.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let chunk = zarray["chunks"][0].as_u64().unwrap_or(0);
    let [length] = shape[..] else {
        return Err(refused(format!("the coordinate `{dim}` is not 1-D")));
    };
    if length == 0 || chunk == 0 {
        return Err(refused(format!("the file has no values along `{dim}`")));
    }
    let last_chunk = (length - 1) / chunk;
    let width = match dtype.get(1..) {
        Some("f8" | "i8" | "u8") => 8,
        Some("f4" | "i4" | "u4") => 4,
        Some("i2" | "u2") => 2,
        _ => 1,
    };
    let filters: Vec<Value> = zarray["filters"].as_array().cloned().unwrap_or_default();
    // One value: element `at` of chunk `index`.
    let read = |index: u64, at: u64| {
        let key = format!("{dim}/{index}");
        let filters = &filters;
        async move {
            let bytes: Bytes = match refs.refs.get(&key) {
                // Unfiltered: only the value's bytes are read.
                Some(KerchunkRef::Range { offset, length, .. }) if filters.is_empty() => {
                    let start = at * width as u64;
                    if start + width as u64 > *length {
                        return Err(refused(format!("`{key}` is shorter than its chunk")));
                    }
                    reader.read(offset + start, width as u64).await?
                }
                Some(KerchunkRef::Range { offset, length, .. }) if *length <= MAX_CHUNK_READ => {
                    let stored = reader.read(*offset, *length).await?;
                    let raw = decode_filters(filters, &stored).map_err(&refused)?;
                    element(&raw, at, width).map_err(&refused)?
                }
                Some(KerchunkRef::Inline(stored)) if !dtype.is_empty() => {
                    let raw = decode_filters(filters, stored).map_err(&refused)?;
                    element(&raw, at, width).map_err(&refused)?
                }
                _ => {
                    return Err(refused(format!(
                        "`{key}` cannot be read to order the files"
                    )))
                }
            };
            decode(dtype, &bytes).ok_or_else(|| {
                refused(format!(
                    "the coordinate `{dim}` has data type {dtype}, which cannot order files"
                ))
            })
        }
    };
    let (first, last) = futures::try_join!(read(0, 0), read(last_chunk, (length - 1) % chunk))?;
    let scale = number(&attributes, "scale_factor").unwrap_or(1.0);
    let offset = number(&attributes, "add_offset").unwrap_or(0.0);
    let encoding = match attributes.get("units").and_then(Value::as_str) {
        Some(units) => {
            TimeEncoding::parse(units, attributes.get("calendar").and_then(Value::as_str))
                .transpose()
                .map_err(refused)?
        }
        None => None,
    };
    Ok((first * scale + offset, last * scale + offset, encoding))
}

/// Orders `scanned` (each file's reader and references) by their append coordinate `dim` and
/// checks that the files follow each other: within a file the last value is not before the
/// first, and each file starts after the one before it ends. Fails with
/// [`Error::KerchunkImport`] naming both files and values when two overlap, or a file that
/// has no such coordinate.
pub(crate) async fn order_by_coordinate<T>(
    scanned: Vec<(SourceReader, KerchunkRefs, T)>,
    dim: &str,
    concurrency: usize,
) -> Result<Vec<(SourceReader, KerchunkRefs, T)>> {
    // Every file's span read `concurrency` at a time (collected first, see `scan_sources`).
    let reads: Vec<_> = scanned
        .iter()
        .map(|(reader, refs, _)| coordinate_span(reader, refs, dim))
        .collect();
    let raw: Vec<(f64, f64, Option<TimeEncoding>)> = futures::stream::iter(reads)
        .buffered(concurrency.max(1))
        .try_collect()
        .await?;
    let mut spans = Vec::with_capacity(scanned.len());
    let mut reference: Option<TimeEncoding> = None;
    for (index, ((reader, _, _), (first, last, encoding))) in scanned.iter().zip(raw).enumerate() {
        let (mut first, mut last) = (first, last);
        if index == 0 {
            reference = encoding;
        } else if let (Some(from), Some(to)) = (encoding, reference) {
            if let Some(conversion) = TimeConversion::between(from, to) {
                let convert = |v: f64| {
                    conversion
                        .convert(v)
                        .map_err(|e| Error::import_refused(reader.location.clone(), e))
                        .map(|c| c.unwrap_or(v))
                };
                first = convert(first)?;
                last = convert(last)?;
            }
        }
        if first.is_nan() || last.is_nan() || last < first {
            return Err(Error::import_refused(
                reader.location.clone(),
                format!("its `{dim}` values do not increase ({first} .. {last})"),
            ));
        }
        spans.push(Span { first, last });
    }
    let mut order: Vec<usize> = (0..scanned.len()).collect();
    order.sort_by(|&a, &b| spans[a].first.total_cmp(&spans[b].first));
    for pair in order.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if spans[b].first <= spans[a].last {
            return Err(Error::import_refused(
                scanned[b].0.location.clone(),
                format!(
                    "its `{dim}` values ({} .. {}) overlap those of {} ({} .. {}); appended \
                     files must follow each other",
                    spans[b].first,
                    spans[b].last,
                    scanned[a].0.location,
                    spans[a].first,
                    spans[a].last
                ),
            ));
        }
    }
    let mut slots: Vec<Option<(SourceReader, KerchunkRefs, T)>> =
        scanned.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn big_endian_values_decode() {
        assert_eq!(decode(">f8", &1.5f64.to_be_bytes()), Some(1.5));
        assert_eq!(decode(">i2", &(-3i16).to_be_bytes()), Some(-3.0));
        assert_eq!(decode("|i1", &[0xff]), Some(-1.0));
        assert_eq!(decode(">u4", &u32::MAX.to_be_bytes()), Some(4294967295.0));
        assert_eq!(decode(">f4", &[0, 0]), None);
        assert_eq!(decode("|S1", b"a"), None);
    }

    #[test]
    fn little_endian_values_decode() {
        assert_eq!(decode("<f8", &1.5f64.to_le_bytes()), Some(1.5));
        assert_eq!(decode("<i4", &(-7i32).to_le_bytes()), Some(-7.0));
        assert_eq!(decode("<u8", &9u64.to_le_bytes()), Some(9.0));
    }

    #[test]
    fn filtered_chunks_decode_before_their_values_are_read() {
        use std::io::Write;
        let values: Vec<u8> = [1.0f64, 2.0, 3.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let shuffled = super::super::hdf5::filters::shuffle(&values, 8);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(4));
        z.write_all(&shuffled).unwrap();
        let stored = z.finish().unwrap();
        let filters = vec![
            serde_json::json!({"id": "shuffle", "elementsize": 8}),
            serde_json::json!({"id": "zlib", "level": 4}),
        ];
        let raw = super::decode_filters(&filters, &stored).unwrap();
        assert_eq!(raw, values);
        let last = super::element(&raw, 2, 8).unwrap();
        assert_eq!(decode("<f8", &last), Some(3.0));
        assert!(super::element(&raw, 3, 8).is_err());
        let err =
            super::decode_filters(&[serde_json::json!({"id": "blosc"})], &stored).unwrap_err();
        assert!(err.contains("blosc"), "{err}");
    }
}
