//! A walked HDF5 file as kerchunk references (Zarr v2 keys): groups with their attributes,
//! variables with their dimensions, and each chunk as a byte range of the file, or as inline
//! bytes where no byte range reads right:
//!
//! - compact data (stored inside the object header);
//! - a chunk whose filter mask skipped filters (an unfiltered partial edge chunk, say):
//!   re-encoded with the dataset's whole pipeline;
//! - variable-length strings (kept in the global heap): encoded as `vlen-utf8`.
//!
//! Chunks never written are absent (they read as the fill value). A netCDF-4 variable's Zarr
//! fill value is its `_FillValue` attribute (or `null`, as kerchunk writes it); a plain HDF5
//! dataset's is its HDF5 fill value.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::attribute::{self, fixed_text};
use super::bytes::{bad, gather, Cursor, FileBytes, Parsed, Sizes};
use super::datatype::Datatype;
use super::filters::{pipeline, MAX_CHUNK_BYTES};
use super::heaps::{global_object, HeapRef};
use super::netcdf4::{Variables, HIDDEN};
use super::objects::{Dataset, Tree};
use super::storage::Stored;
use crate::virtual_refs::kerchunk::{KerchunkRef, KerchunkRefs};
use crate::virtual_refs::scan::netcdf3::refs::split_rows;

/// Bytes of chunks one file may have materialised inline (a bound for hostile files).
const MAX_INLINE_BYTES: u64 = 1 << 30;

fn inline_json(value: Value) -> KerchunkRef {
    KerchunkRef::Inline(Bytes::from(value.to_string()))
}

fn prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    }
}

/// Attributes as JSON, without the hidden ones.
fn attributes_json(
    file: &FileBytes,
    sizes: Sizes,
    attributes: &[attribute::Attribute],
) -> Parsed<Map<String, Value>> {
    let shown: Vec<_> = attributes
        .iter()
        .filter(|a| !HIDDEN.contains(&a.name.as_str()))
        .collect();
    let values = gather(shown.iter().map(|a| {
        attribute::value(file, sizes, a).map_err(|e| match e {
            super::bytes::Fault::Bad(r) => {
                super::bytes::Fault::Bad(format!("attribute `{}`: {r}", a.name))
            }
            other => other,
        })
    }))?;
    Ok(shown
        .iter()
        .zip(values)
        .map(|(a, v)| (a.name.clone(), v))
        .collect())
}

/// The references of the file at `url` whose objects are `tree`, stored as `stored`, with
/// variables `variables`.
pub(crate) fn to_refs(
    file: &FileBytes,
    sizes: Sizes,
    url: &str,
    tree: &Tree,
    stored: &[Stored],
    variables: &Variables,
) -> Parsed<KerchunkRefs> {
    let url: Arc<str> = Arc::from(url);
    // Collected first and sorted once: building the map in bulk is several times faster than
    // inserting tens of thousands of chunk keys one by one.
    let mut refs: Vec<(String, KerchunkRef)> = Vec::new();
    let group_attrs = gather(
        tree.groups
            .iter()
            .map(|g| attributes_json(file, sizes, &g.attributes)),
    )?;
    for (g, attrs) in tree.groups.iter().zip(group_attrs) {
        let p = prefix(&g.path);
        refs.push((
            format!("{p}.zgroup"),
            inline_json(json!({"zarr_format": 2})),
        ));
        refs.push((format!("{p}.zattrs"), inline_json(Value::Object(attrs))));
    }
    let mut inline_budget = MAX_INLINE_BYTES;
    let made = gather(variables.dims.iter().map(|(i, dims)| {
        let d = &tree.datasets[*i];
        variable(file, sizes, &url, d, &stored[*i], dims).map_err(|e| match e {
            super::bytes::Fault::Bad(r) if !r.starts_with("dataset `") => {
                super::bytes::Fault::Bad(format!("dataset `{}`: {r}", d.path))
            }
            other => other,
        })
    }))?;
    for entries in made {
        for (key, r) in entries {
            if let KerchunkRef::Inline(b) = &r {
                inline_budget = inline_budget.checked_sub(b.len() as u64).ok_or_else(|| {
                    super::bytes::Fault::Bad(format!(
                        "more than {MAX_INLINE_BYTES} bytes would be copied inline"
                    ))
                })?;
            }
            refs.push((key, r));
        }
    }
    refs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(KerchunkRefs {
        origin: url.to_string(),
        refs: BTreeMap::from_iter(refs),
    })
}

/// The Zarr v2 fill value of `d`: its `_FillValue` attribute (the first value), or `null`
/// (text has none). The HDF5 fill value is not used: xarray masks only what `_FillValue`
/// names, and the HDF5 fill value shows only where chunks were never written.
fn fill_json(d: &Dataset, attrs: &Map<String, Value>) -> Value {
    if matches!(
        d.datatype,
        Datatype::FixedString { .. } | Datatype::VarString
    ) {
        return Value::Null;
    }
    match attrs.get("_FillValue") {
        Some(Value::Array(v)) => v.first().cloned().unwrap_or(Value::Null),
        Some(v) => v.clone(),
        None => Value::Null,
    }
}

type Entries = Vec<(String, KerchunkRef)>;

#[allow(clippy::too_many_arguments)]
fn variable(
    file: &FileBytes,
    sizes: Sizes,
    url: &Arc<str>,
    d: &Dataset,
    stored: &Stored,
    dims: &[String],
) -> Parsed<Entries> {
    let p = prefix(&d.path);
    let mut attrs = attributes_json(file, sizes, &d.attributes)?;
    if matches!(d.datatype, Datatype::FixedString { .. }) {
        attrs.remove("_FillValue");
    }
    let fill = fill_json(d, &attrs);
    attrs.insert("_ARRAY_DIMENSIONS".into(), json!(dims));
    let vlen = matches!(d.datatype, Datatype::VarString);
    let dtype = if vlen {
        "|O".to_string()
    } else {
        d.datatype.zarr_v2().ok_or_else(|| {
            super::bytes::Fault::Bad(format!(
                "its type {} has no Zarr form",
                d.datatype.describe()
            ))
        })?
    };
    let pipe = pipeline(&d.filters, d.datatype.size()).map_err(super::bytes::Fault::Bad)?;
    let shape = if d.space.null {
        vec![]
    } else {
        d.space.dims.clone()
    };
    let element = u64::from(d.datatype.size());
    let mut out: Entries = Vec::new();
    let chunk_key = |scaled: &[u64]| {
        let mut key = p.clone();
        if scaled.is_empty() {
            key.push('0');
        }
        for (i, s) in scaled.iter().enumerate() {
            if i > 0 {
                key.push('.');
            }
            let _ = write!(key, "{s}");
        }
        key
    };
    let (chunks, filters) = match stored {
        Stored::Chunked { chunk, .. } => (chunk.clone(), pipe.zarr.clone()),
        _ => (
            shape.iter().map(|&n| n.max(1)).collect::<Vec<_>>(),
            Vec::new(),
        ),
    };
    let mut chunks = chunks;
    let mut filters = filters;
    if vlen {
        filters = vec![json!({"id": "vlen-utf8"})];
    }
    match stored {
        Stored::Unwritten => {}
        Stored::Compact(bytes) => {
            let data = if vlen {
                vlen_utf8(file, sizes, bytes)?
            } else {
                bytes.clone()
            };
            out.push((
                chunk_key(&vec![0; shape.len()]),
                KerchunkRef::Inline(Bytes::from(data)),
            ));
        }
        Stored::Contiguous { address, size } if vlen => {
            let raw = file.get(*address, *size)?;
            let data = vlen_utf8(file, sizes, raw)?;
            out.push((
                chunk_key(&vec![0; shape.len()]),
                KerchunkRef::Inline(Bytes::from(data)),
            ));
        }
        Stored::Contiguous { address, .. } => {
            let total = shape
                .iter()
                .try_fold(element, |n, &s| n.checked_mul(s))
                .unwrap_or(0);
            let rows = split_rows(&shape, total);
            let row_bytes = match shape.first() {
                Some(&n) if n > 0 => total / n,
                _ => total,
            };
            let (count, length) = match (shape.first(), rows) {
                (Some(&n), Some(rows)) => {
                    chunks[0] = rows;
                    (n / rows, rows * row_bytes)
                }
                _ => (1, total),
            };
            for i in 0..count {
                let mut scaled = vec![0u64; shape.len()];
                if let Some(first) = scaled.first_mut() {
                    *first = i;
                }
                if length > 0 {
                    out.push((
                        chunk_key(&scaled),
                        KerchunkRef::Range {
                            url: url.clone(),
                            offset: address + i * length,
                            length,
                        },
                    ));
                }
            }
        }
        Stored::Chunked {
            chunk,
            entries,
            dont_filter_partial,
        } => {
            // With `H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS`, a chunk reaching past the dataset's
            // extent is stored with no filter applied, whatever its index records.
            let mask_of = |e: &super::chunk_index::ChunkEntry| {
                let partial = e
                    .scaled
                    .iter()
                    .zip(chunk)
                    .zip(&d.space.dims)
                    .any(|((&s, &c), &n)| s.saturating_add(1).saturating_mul(c) > n);
                if *dont_filter_partial && partial {
                    u32::MAX
                } else {
                    e.filter_mask
                }
            };
            let raw_size = chunk
                .iter()
                .try_fold(element, |n, &c| n.checked_mul(c))
                .unwrap_or(0);
            if raw_size > MAX_CHUNK_BYTES {
                return bad(format!("its chunks of {raw_size} bytes are too large"));
            }
            let made = gather(entries.iter().map(|e| -> Parsed<(String, KerchunkRef)> {
                let key = chunk_key(&e.scaled);
                if vlen {
                    let stored_bytes = file.get(e.address, e.size)?;
                    let raw = pipe
                        .decode(stored_bytes, mask_of(e), raw_size * 4)
                        .map_err(super::bytes::Fault::Bad)?;
                    return Ok((
                        key,
                        KerchunkRef::Inline(Bytes::from(vlen_utf8(file, sizes, &raw)?)),
                    ));
                }
                if pipe.reads_as_stored(mask_of(e)) {
                    let length = pipe
                        .stored_length(e.size)
                        .map_err(super::bytes::Fault::Bad)?;
                    return Ok((
                        key,
                        KerchunkRef::Range {
                            url: url.clone(),
                            offset: e.address,
                            length,
                        },
                    ));
                }
                let stored_bytes = file.get(e.address, e.size)?;
                let data = pipe
                    .reencode(stored_bytes, mask_of(e), raw_size)
                    .map_err(super::bytes::Fault::Bad)?;
                Ok((key, KerchunkRef::Inline(Bytes::from(data))))
            }))?;
            out.extend(made);
        }
    }
    out.push((
        format!("{p}.zarray"),
        inline_json(json!({
            "zarr_format": 2,
            "shape": shape,
            "chunks": chunks,
            "dtype": dtype,
            "compressor": null,
            "filters": if filters.is_empty() { Value::Null } else { Value::Array(filters) },
            "fill_value": fill,
            "order": "C",
        })),
    ));
    out.push((format!("{p}.zattrs"), inline_json(Value::Object(attrs))));
    Ok(out)
}

/// Variable-length string elements (16-byte global heap references) as a `vlen-utf8`
/// chunk: the element count, then each string's length and bytes (little-endian `u32`s).
fn vlen_utf8(file: &FileBytes, sizes: Sizes, raw: &[u8]) -> Parsed<Vec<u8>> {
    let refs: Vec<HeapRef> = raw
        .chunks_exact(16)
        .map(|e| HeapRef::decode(&mut Cursor::new(e, 0, sizes)))
        .collect::<Parsed<_>>()?;
    let texts = gather(refs.iter().map(|&r| global_object(file, sizes, r)))?;
    let mut out = Vec::with_capacity(4 + texts.iter().map(|t| t.len() + 4).sum::<usize>());
    out.extend_from_slice(&(texts.len() as u32).to_le_bytes());
    for t in texts {
        let text = fixed_text(&t, super::datatype::Padding::NullTerminated);
        out.extend_from_slice(&(text.len() as u32).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    }
    Ok(out)
}
