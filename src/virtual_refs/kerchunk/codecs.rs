//! Zarr v2 `order`, `filters` and `compressor` (numcodecs configurations) as a Zarr v3 codec
//! chain, with codec names that both zarrs 0.23 and zarr-python 3 (through numcodecs' `zarr3`
//! module) read:
//!
//! | numcodecs id        | Zarr v3 codec                                  |
//! |---------------------|------------------------------------------------|
//! | `order: "F"`        | `transpose` (reversed axes), before `bytes`    |
//! | `fixedscaleoffset`  | `numcodecs.fixedscaleoffset`, before `bytes`   |
//! | `shuffle`           | `numcodecs.shuffle`                            |
//! | `zlib`              | `numcodecs.zlib`                               |
//! | `gzip`              | `gzip`                                         |
//! | `zstd`              | `zstd`                                         |
//! | `blosc`             | `blosc` (typesize from the data type)          |
//!
//! Any other id (`delta`, `lz4`, `bz2`, `quantize`...) is refused, naming it.

use serde_json::{json, Value};

use super::v2_types::{data_type, DataType, Endian, Kind};

/// The v3 codec list for a `.zarray` whose data type is `dtype`.
pub(crate) fn codecs_v3(
    zarray: &Value,
    dtype: &DataType,
    ndim: usize,
    fortran: bool,
) -> Result<Vec<Value>, String> {
    let mut before_bytes = Vec::new();
    let mut after_bytes = Vec::new();
    if fortran && ndim > 1 {
        let order: Vec<usize> = (0..ndim).rev().collect();
        before_bytes.push(json!({"name": "transpose", "configuration": {"order": order}}));
    }
    // The data type the `bytes` codec serialises: changed by `fixedscaleoffset`'s `astype`.
    let mut encoded = dtype.clone();
    let filters = match zarray.get("filters") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(filters)) => filters.clone(),
        Some(other) => return Err(format!("`filters` must be a list or null, not {other}")),
    };
    let compressor = match zarray.get("compressor") {
        None | Some(Value::Null) => None,
        Some(c) => Some(c.clone()),
    };
    // The codec turning the array into bytes: `bytes`, or `vlen-utf8` for strings.
    let mut array_to_bytes: Option<Value> = None;
    for codec in filters.iter().chain(compressor.iter()) {
        let id = codec
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("codec {codec} has no `id`"))?;
        if id == "vlen-utf8" {
            if dtype.kind != Kind::String || array_to_bytes.is_some() || !after_bytes.is_empty() {
                return Err(
                    "`vlen-utf8` must be the first filter of an object (`|O`) array".into(),
                );
            }
            array_to_bytes = Some(json!({"name": "vlen-utf8"}));
            continue;
        }
        if dtype.kind == Kind::String && array_to_bytes.is_none() {
            return Err(format!(
                "object (`|O`) arrays are supported as `vlen-utf8` strings only, not `{id}`"
            ));
        }
        if id == "fixedscaleoffset" {
            if !after_bytes.is_empty() {
                return Err(
                    "`fixedscaleoffset` after a byte codec has no Zarr v3 equivalent".into(),
                );
            }
            let (v3, astype) = fixed_scale_offset(codec, dtype)?;
            before_bytes.push(v3);
            encoded = astype;
            continue;
        }
        after_bytes.push(bytes_codec(id, codec, &encoded)?);
    }
    if dtype.kind == Kind::String && array_to_bytes.is_none() {
        return Err("object (`|O`) arrays need the `vlen-utf8` filter".into());
    }
    let bytes = array_to_bytes.unwrap_or_else(|| match encoded.endian {
        Endian::Little => json!({"name": "bytes", "configuration": {"endian": "little"}}),
        Endian::Big => json!({"name": "bytes", "configuration": {"endian": "big"}}),
        Endian::NotApplicable => json!({"name": "bytes"}),
    });
    before_bytes.push(bytes);
    before_bytes.extend(after_bytes);
    Ok(before_bytes)
}

fn int_field(codec: &Value, field: &str, default: i64) -> Result<i64, String> {
    match codec.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_i64()
            .ok_or_else(|| format!("`{field}` of codec {codec} must be an integer")),
    }
}

/// numcodecs' `Shuffle(elementsize=4)` default: a `shuffle` filter without `elementsize`
/// shuffles 4-byte elements whatever the data type, so the default is not the type's size.
const NUMCODECS_SHUFFLE_ELEMENTSIZE: i64 = 4;

/// A bytes-to-bytes codec.
fn bytes_codec(id: &str, codec: &Value, dtype: &DataType) -> Result<Value, String> {
    match id {
        "shuffle" => Ok(json!({"name": "numcodecs.shuffle", "configuration": {
            "elementsize": int_field(codec, "elementsize", NUMCODECS_SHUFFLE_ELEMENTSIZE)?}})),
        "fletcher32" => Ok(json!({"name": "numcodecs.fletcher32", "configuration": {}})),
        "zlib" => Ok(json!({"name": "numcodecs.zlib", "configuration": {
            "level": int_field(codec, "level", 1)?}})),
        "gzip" => Ok(json!({"name": "gzip", "configuration": {
            "level": int_field(codec, "level", 1)?}})),
        "zstd" => Ok(json!({"name": "zstd", "configuration": {
            "level": int_field(codec, "level", 0)?,
            "checksum": codec.get("checksum").and_then(Value::as_bool).unwrap_or(false)}})),
        "blosc" => {
            let shuffle = match int_field(codec, "shuffle", 1)? {
                0 => "noshuffle",
                1 => "shuffle",
                2 => "bitshuffle",
                // numcodecs' AUTOSHUFFLE: bit shuffle for single bytes, byte shuffle otherwise.
                -1 if dtype.size == 1 => "bitshuffle",
                -1 => "shuffle",
                other => return Err(format!("unknown blosc shuffle mode {other}")),
            };
            let cname = codec.get("cname").and_then(Value::as_str).unwrap_or("lz4");
            Ok(json!({"name": "blosc", "configuration": {
                "cname": cname,
                "clevel": int_field(codec, "clevel", 5)?,
                "shuffle": shuffle,
                "typesize": dtype.size,
                "blocksize": int_field(codec, "blocksize", 0)?}}))
        }
        other => Err(format!(
            "codec `{other}` is not supported (no Zarr v3 codec that zarrs and zarr-python both \
             read; supported: shuffle, zlib, gzip, zstd, blosc, fletcher32, fixedscaleoffset)"
        )),
    }
}

/// `fixedscaleoffset`: the v3 codec and the data type it encodes to.
fn fixed_scale_offset(codec: &Value, dtype: &DataType) -> Result<(Value, DataType), String> {
    let number = |field: &str| {
        codec
            .get(field)
            .filter(|v| v.is_number())
            .cloned()
            .ok_or_else(|| format!("`fixedscaleoffset` needs a numeric `{field}`"))
    };
    let dtype_text = codec
        .get("dtype")
        .and_then(Value::as_str)
        .ok_or("`fixedscaleoffset` needs `dtype`")?;
    if data_type(&json!(dtype_text))?.v3 != dtype.v3 {
        return Err(format!(
            "`fixedscaleoffset` dtype `{dtype_text}` differs from the array's data type"
        ));
    }
    let astype_text = codec
        .get("astype")
        .and_then(Value::as_str)
        .unwrap_or(dtype_text);
    let astype = data_type(&json!(astype_text))?;
    let v3 = json!({"name": "numcodecs.fixedscaleoffset", "configuration": {
        "offset": number("offset")?, "scale": number("scale")?,
        "dtype": dtype_text, "astype": astype_text}});
    Ok((v3, astype))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codecs(zarray: Value) -> Result<Vec<Value>, String> {
        let dtype = data_type(&zarray["dtype"]).unwrap();
        let ndim = zarray["shape"].as_array().unwrap().len();
        let fortran = zarray["order"] == "F";
        codecs_v3(&zarray, &dtype, ndim, fortran)
    }

    #[test]
    fn hdf5_shuffle_and_zlib_become_numcodecs_codecs() {
        let got = codecs(json!({"shape": [4, 4], "dtype": "<f4", "order": "C",
            "filters": [{"id": "shuffle", "elementsize": 4}, {"id": "zlib", "level": 4}],
            "compressor": null}))
        .unwrap();
        assert_eq!(
            got,
            vec![
                json!({"name": "bytes", "configuration": {"endian": "little"}}),
                json!({"name": "numcodecs.shuffle", "configuration": {"elementsize": 4}}),
                json!({"name": "numcodecs.zlib", "configuration": {"level": 4}}),
            ]
        );
    }

    #[test]
    fn a_shuffle_without_elementsize_uses_the_numcodecs_default_of_4() {
        for (dtype, filter) in [
            ("<f8", json!({"id": "shuffle"})),
            ("<i2", json!({"id": "shuffle", "elementsize": null})),
        ] {
            let got = codecs(json!({"shape": [4], "dtype": dtype, "order": "C",
                "filters": [filter], "compressor": null}))
            .unwrap();
            assert_eq!(
                got[1],
                json!({"name": "numcodecs.shuffle", "configuration": {"elementsize": 4}}),
                "{dtype}"
            );
        }
    }

    #[test]
    fn order_compressors_and_single_bytes() {
        let got = codecs(json!({"shape": [2, 3, 4], "dtype": ">i2", "order": "F",
            "filters": null, "compressor": {"id": "zstd", "level": 3}}))
        .unwrap();
        assert_eq!(
            got[0],
            json!({"name": "transpose", "configuration": {"order": [2, 1, 0]}})
        );
        assert_eq!(
            got[1],
            json!({"name": "bytes", "configuration": {"endian": "big"}})
        );
        assert_eq!(
            got[2],
            json!({"name": "zstd", "configuration": {"level": 3, "checksum": false}})
        );
        // Fortran order of a 1-d array needs no transpose; single bytes have no endianness.
        let got = codecs(json!({"shape": [5], "dtype": "|u1", "order": "F",
            "compressor": {"id": "gzip", "level": 5}}))
        .unwrap();
        assert_eq!(
            got,
            vec![
                json!({"name": "bytes"}),
                json!({"name": "gzip", "configuration": {"level": 5}})
            ]
        );
        let got = codecs(json!({"shape": [5], "dtype": "<f8",
            "compressor": {"id": "blosc", "cname": "zstd", "clevel": 5, "shuffle": -1, "blocksize": 0}}))
        .unwrap();
        assert_eq!(
            got[1],
            json!({"name": "blosc", "configuration": {"cname": "zstd", "clevel": 5,
            "shuffle": "shuffle", "typesize": 8, "blocksize": 0}})
        );
    }

    #[test]
    fn fixed_scale_offset_goes_before_bytes_and_changes_the_encoded_type() {
        let got = codecs(json!({"shape": [5], "dtype": "<f8", "filters": [
            {"id": "fixedscaleoffset", "offset": 1000, "scale": 10, "dtype": "<f8", "astype": ">i2"}],
            "compressor": {"id": "zlib", "level": 1}}))
        .unwrap();
        assert_eq!(got[0]["name"], "numcodecs.fixedscaleoffset");
        assert_eq!(got[0]["configuration"]["astype"], ">i2");
        assert_eq!(
            got[1],
            json!({"name": "bytes", "configuration": {"endian": "big"}})
        );
        assert_eq!(got[2]["name"], "numcodecs.zlib");
        let late = codecs(
            json!({"shape": [5], "dtype": "<f8", "filters": [{"id": "zlib"},
            {"id": "fixedscaleoffset", "offset": 0, "scale": 1, "dtype": "<f8"}]}),
        );
        assert!(late.unwrap_err().contains("after a byte codec"));
    }

    /// zarrs (with the features floe enables) builds every chain the translation emits and
    /// round-trips values through it.
    #[test]
    fn zarrs_reads_every_translated_chain() {
        use std::sync::Arc;
        use zarrs::array::{Array, ArrayMetadata};
        use zarrs::storage::store::MemoryStore;
        let chains = [
            json!({"filters": [{"id": "shuffle", "elementsize": 8}, {"id": "zlib", "level": 4}]}),
            json!({"compressor": {"id": "gzip", "level": 5}, "order": "F"}),
            json!({"compressor": {"id": "zstd", "level": 3}}),
            json!({"compressor": {"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1, "blocksize": 0}}),
            json!({"compressor": {"id": "blosc", "cname": "zstd", "clevel": 3, "shuffle": 2, "blocksize": 0}}),
            json!({"filters": [{"id": "fixedscaleoffset", "offset": 2, "scale": 10, "dtype": "<f8", "astype": ">i4"}]}),
        ];
        let values: Vec<f64> = (0..24).map(|i| f64::from(i) * 1.5).collect();
        for chain in chains {
            let mut zarray = json!({"zarr_format": 2, "shape": [4, 6], "chunks": [2, 3],
                "dtype": "<f8", "fill_value": "NaN", "order": "C", "filters": null,
                "compressor": null});
            for (k, v) in chain.as_object().unwrap() {
                zarray[k] = v.clone();
            }
            let doc = super::super::zarr_v2::array_v3(
                &zarray,
                None,
                super::super::cf_fill::FillMeaning::CfFillValue,
            )
            .unwrap();
            let metadata: ArrayMetadata = serde_json::from_value(doc.clone()).unwrap();
            let array = Array::new_with_metadata(Arc::new(MemoryStore::new()), "/", metadata)
                .unwrap_or_else(|e| panic!("{doc}: {e}"));
            let all = array.subset_all();
            array.store_array_subset(&all, values.clone()).unwrap();
            let back: Vec<f64> = array.retrieve_array_subset(&all).unwrap();
            assert_eq!(back, values, "{doc}");
        }
    }

    #[test]
    fn unsupported_codecs_are_named() {
        for id in ["delta", "lz4", "bz2", "quantize"] {
            let err =
                codecs(json!({"shape": [5], "dtype": "<f8", "filters": [{"id": id}]})).unwrap_err();
            assert!(err.contains(&format!("`{id}`")), "{err}");
        }
        assert!(codecs(json!({"shape": [5], "dtype": "<f8", "compressor": {"level": 1}})).is_err());
    }

    #[test]
    fn object_arrays_are_vlen_utf8_strings_only() {
        let strings = json!({"shape": [3], "dtype": "|O", "filters": [{"id": "vlen-utf8"}],
            "compressor": {"id": "zstd", "level": 3}});
        let chain = codecs(strings).unwrap();
        assert_eq!(chain[0], json!({"name": "vlen-utf8"}));
        assert_eq!(chain[1]["name"], "zstd");
        assert_eq!(chain.len(), 2);
        for bad in [
            json!({"shape": [3], "dtype": "|O", "filters": null}),
            json!({"shape": [3], "dtype": "|O", "filters": [{"id": "pickle"}]}),
            json!({"shape": [3], "dtype": "<f8", "filters": [{"id": "vlen-utf8"}]}),
        ] {
            assert!(codecs(bad.clone()).is_err(), "{bad}");
        }
    }
}
