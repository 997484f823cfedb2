//! A decoded netCDF-3 header as kerchunk references (Zarr v2 keys), the form every virtual
//! import takes: groups and arrays with their attributes, and each chunk as a byte range of
//! the file.
//!
//! - A variable without the record dimension is stored contiguously, big-endian and
//!   unfiltered: one chunk, or, above [`SPLIT_BYTES`], chunks of whole rows along its first
//!   dimension (each still one byte range) when a row count dividing that dimension gives
//!   chunks of at least [`MIN_SPLIT_BYTES`].
//! - A record variable has one chunk per record: record `i` starts at `begin + i * recsize`,
//!   where `recsize` is the sum of the record variables' padded slab sizes, or the one record
//!   variable's unpadded slab size when there is only one (the format's padding exception).
//! - Attributes keep their values (text without NUL bytes, one number as a number, several as
//!   a list, non-finite floats as `"NaN"`, `"Infinity"`, `"-Infinity"`); a variable's
//!   `_FillValue` is also its Zarr fill value, and a variable without one has none (xarray
//!   masks nothing there, as it reads the file).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::header::{AttrValues, Attribute, Header, NcType, Variable};
use crate::virtual_refs::kerchunk::{KerchunkRef, KerchunkRefs};

/// Contiguous variables larger than this are split into chunks of whole rows.
pub(crate) const SPLIT_BYTES: u64 = 16 << 20;
/// Split chunks are at least this large (else the variable stays one chunk).
pub(crate) const MIN_SPLIT_BYTES: u64 = 1 << 20;

/// The references of the file at `url` (an absolute path or URL) of `file_size` bytes whose
/// header is `header`. Fails with a reason when the header's layout is impossible (data
/// overlapping the header or past the end of the file, sizes that overflow), before any
/// chunk list is made.
pub(crate) fn to_refs(header: &Header, url: &str, file_size: u64) -> Result<KerchunkRefs, String> {
    let url: Arc<str> = Arc::from(url);
    let mut refs = BTreeMap::new();
    let inline = |value: Value| KerchunkRef::Inline(Bytes::from(value.to_string()));
    refs.insert(".zgroup".to_string(), inline(json!({"zarr_format": 2})));
    refs.insert(
        ".zattrs".to_string(),
        inline(Value::Object(attributes_json(&header.attributes))),
    );
    let record_dim = header.dimensions.iter().position(|d| d.length == 0);
    let is_record =
        |v: &Variable| record_dim.is_some() && v.dimensions.first() == record_dim.as_ref();
    let record_vars: Vec<&Variable> = header.variables.iter().filter(|v| is_record(v)).collect();
    let mut recsize: u64 = 0;
    for v in &record_vars {
        let slab = slab_bytes(header, v, 1)?;
        let padded = if record_vars.len() == 1 {
            slab
        } else {
            slab.checked_add(3).ok_or("a record is too large")? & !3
        };
        recsize = recsize.checked_add(padded).ok_or("a record is too large")?;
    }
    let numrecs = match header.numrecs {
        Some(n) => n,
        // A streamed file: as many whole records as the file holds.
        None => match record_vars.iter().map(|v| v.begin).min() {
            Some(first) if recsize > 0 => file_size.saturating_sub(first) / recsize,
            _ => 0,
        },
    };
    for v in &header.variables {
        if v.begin < header.size {
            return Err(format!(
                "variable `{}` begins at byte {}, inside the header ({} bytes)",
                v.name, v.begin, header.size
            ));
        }
        let record = is_record(v);
        let shape: Vec<u64> = v
            .dimensions
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                if i == 0 && record {
                    numrecs
                } else {
                    header.dimensions[d].length
                }
            })
            .collect();
        let names: Vec<&str> = v
            .dimensions
            .iter()
            .map(|&d| header.dimensions[d].name.as_str())
            .collect();
        // Every byte a variable claims must lie in the file, checked before a chunk list is
        // made: a small hostile header must not make billions of references.
        let end = if record {
            match numrecs.checked_sub(1) {
                None => Some(v.begin),
                Some(last) => last
                    .checked_mul(recsize)
                    .and_then(|o| o.checked_add(v.begin))
                    .and_then(|o| o.checked_add(slab_bytes(header, v, 1).ok()?)),
            }
        } else {
            slab_bytes(header, v, 0)
                .ok()
                .and_then(|size| size.checked_add(v.begin))
        };
        if end.is_none_or(|end| end > file_size) {
            return Err(format!(
                "variable `{}` claims data past the end of the file ({file_size} bytes){}",
                v.name,
                if record {
                    format!(" for {numrecs} records")
                } else {
                    String::new()
                }
            ));
        }
        let (chunks, ranges) = if record {
            let slab = slab_bytes(header, v, 1)?;
            let mut chunk_shape = shape.clone();
            chunk_shape[0] = 1;
            let ranges: Vec<(u64, u64, u64)> = (0..numrecs)
                .map(|i| {
                    let offset = i
                        .checked_mul(recsize)
                        .and_then(|o| o.checked_add(v.begin))
                        .ok_or("a record offset overflows")?;
                    Ok((i, offset, slab))
                })
                .collect::<Result<_, String>>()?;
            (chunk_shape, ranges)
        } else {
            let total = slab_bytes(header, v, 0)?;
            let rows = split_rows(&shape, total);
            let mut chunk_shape = shape.clone();
            let row_bytes = match shape.first() {
                Some(&n) if n > 0 => total / n,
                _ => total,
            };
            let count = match (shape.first(), rows) {
                (Some(&n), Some(rows)) => {
                    chunk_shape[0] = rows;
                    n / rows
                }
                _ => 1,
            };
            let length = rows.map_or(total, |rows| rows * row_bytes);
            let ranges = (0..count)
                .map(|i| (i, v.begin + i * length, length))
                .filter(|&(_, _, length)| length > 0)
                .collect();
            (chunk_shape, ranges)
        };
        let mut attributes = attributes_json(&v.attributes);
        let fill = fill_value(v, &mut attributes);
        attributes.insert("_ARRAY_DIMENSIONS".into(), json!(names));
        refs.insert(
            format!("{}/.zarray", v.name),
            inline(json!({
                "zarr_format": 2,
                "shape": shape,
                "chunks": chunks,
                "dtype": v.nc_type.zarr_v2_dtype(),
                "compressor": null,
                "filters": null,
                "fill_value": fill,
                "order": "C",
            })),
        );
        refs.insert(
            format!("{}/.zattrs", v.name),
            inline(Value::Object(attributes)),
        );
        // `<name>/<first>.0.0...`: built in one string per chunk (an hourly year of a few
        // variables has tens of thousands).
        let zeros = ".0".repeat(shape.len().saturating_sub(1));
        for (first, offset, length) in ranges {
            let mut key = String::with_capacity(v.name.len() + 21 + zeros.len());
            key.push_str(&v.name);
            key.push('/');
            let _ = write!(key, "{first}");
            key.push_str(&zeros);
            refs.insert(
                key,
                KerchunkRef::Range {
                    url: url.clone(),
                    offset,
                    length,
                },
            );
        }
    }
    Ok(KerchunkRefs {
        origin: url.to_string(),
        refs,
    })
}

/// Bytes of a variable's values without its first `skip` dimensions (1 for one record of a
/// record variable, 0 for a whole variable).
fn slab_bytes(header: &Header, v: &Variable, skip: usize) -> Result<u64, String> {
    v.dimensions
        .iter()
        .skip(skip)
        .map(|&d| header.dimensions[d].length)
        .try_fold(v.nc_type.size(), u64::checked_mul)
        .ok_or_else(|| format!("variable `{}` is too large", v.name))
}

/// Rows per chunk for a contiguous variable of `total` bytes and `shape`: `None` for one
/// chunk.
pub(crate) fn split_rows(shape: &[u64], total: u64) -> Option<u64> {
    let rows = *shape.first()?;
    if total <= SPLIT_BYTES || rows < 2 {
        return None;
    }
    let row_bytes = total / rows;
    let most = (SPLIT_BYTES / row_bytes.max(1)).max(1);
    let best = (1..=most.min(rows)).rev().find(|k| rows % k == 0)?;
    (best * row_bytes >= MIN_SPLIT_BYTES && best < rows).then_some(best)
}

/// The Zarr v2 fill value of `v`: its `_FillValue` (the first value), kept in `attributes`
/// too, or `null`. A text variable's `_FillValue` is dropped (xarray does not mask text).
fn fill_value(v: &Variable, attributes: &mut Map<String, Value>) -> Value {
    if v.nc_type == NcType::Char {
        attributes.remove("_FillValue");
        return Value::Null;
    }
    match attributes.get("_FillValue") {
        Some(Value::Array(values)) => values.first().cloned().unwrap_or(Value::Null),
        Some(value) => value.clone(),
        None => Value::Null,
    }
}

fn attributes_json(attributes: &[Attribute]) -> Map<String, Value> {
    attributes
        .iter()
        .map(|a| (a.name.clone(), attribute_json(&a.values)))
        .collect()
}

fn float_json(f: f64) -> Value {
    if f.is_nan() {
        json!("NaN")
    } else if f.is_infinite() {
        json!(if f > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(f)
    }
}

fn attribute_json(values: &AttrValues) -> Value {
    let list = |mut items: Vec<Value>| {
        if items.len() == 1 {
            items.remove(0)
        } else {
            Value::Array(items)
        }
    };
    match values {
        AttrValues::Text(bytes) => {
            let text: Vec<u8> = bytes.iter().copied().filter(|&b| b != 0).collect();
            Value::String(String::from_utf8_lossy(&text).into_owned())
        }
        AttrValues::Ints(ints) => list(
            ints.iter()
                .map(|&i| match (i64::try_from(i), u64::try_from(i)) {
                    (Ok(i), _) => json!(i),
                    (_, Ok(u)) => json!(u),
                    _ => Value::Null,
                })
                .collect(),
        ),
        AttrValues::Floats(f) => list(f.iter().map(|&f| float_json(f64::from(f))).collect()),
        AttrValues::Doubles(f) => list(f.iter().map(|&f| float_json(f)).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_variables_split_only_into_equal_row_blocks() {
        // 1000 rows of 64 KiB: 250 rows per 16 MiB chunk (250 divides 1000).
        assert_eq!(split_rows(&[1000, 16384], 1000 * 65536), Some(250));
        // A prime row count cannot be split evenly into chunks of at least 1 MiB.
        assert_eq!(split_rows(&[1009, 16384], 1009 * 65536), None);
        assert_eq!(split_rows(&[10, 10], 400), None);
    }

    #[test]
    fn attribute_values_keep_their_form() {
        assert_eq!(
            attribute_json(&AttrValues::Text(b"K\0".to_vec())),
            json!("K")
        );
        assert_eq!(attribute_json(&AttrValues::Ints(vec![3])), json!(3));
        assert_eq!(attribute_json(&AttrValues::Ints(vec![1, 2])), json!([1, 2]));
        assert_eq!(
            attribute_json(&AttrValues::Floats(vec![0.1, f32::NAN])),
            json!([f64::from(0.1f32), "NaN"])
        );
        assert_eq!(
            attribute_json(&AttrValues::Ints(vec![i128::from(u64::MAX)])),
            json!(u64::MAX)
        );
    }
}
