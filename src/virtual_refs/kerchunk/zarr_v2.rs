//! Zarr v2 array metadata (`.zarray` with its `.zattrs`) as a Zarr v3 `zarr.json`: shape,
//! chunk grid, chunk key encoding, dimension names and CF attributes; data types and fill
//! values are in [`super::v2_types`], the codecs in [`super::codecs`].

use serde_json::{json, Map, Value};

use super::cf_fill::{fill_value_attribute, FillMeaning};
use super::codecs::codecs_v3;
use super::v2_types::{data_type, fill_value};

/// The Zarr v3 `zarr.json` of an array from its `.zarray` and optional `.zattrs`.
///
/// `_ARRAY_DIMENSIONS` (xarray's Zarr v2 dimension names) becomes `dimension_names` and is
/// dropped from the attributes when it names every dimension. The CF `_FillValue` (an explicit
/// attribute, or the `fill_value` where `fills` says it is one) becomes a `_FillValue`
/// attribute in xarray's Zarr v3 encoding (see [`super::cf_fill`]), so xarray masks missing
/// values as it does on the source file.
pub(crate) fn array_v3(
    zarray: &Value,
    zattrs: Option<&Map<String, Value>>,
    fills: FillMeaning,
) -> Result<Value, String> {
    let field = |name: &str| {
        zarray
            .get(name)
            .ok_or_else(|| format!("`.zarray` has no `{name}`"))
    };
    if let Some(format) = zarray.get("zarr_format") {
        if format.as_u64() != Some(2) {
            return Err(format!("`.zarray` has zarr_format {format}, expected 2"));
        }
    }
    let shape = field("shape")?.clone();
    let chunks = field("chunks")?.clone();
    let ndim = shape
        .as_array()
        .map(Vec::len)
        .ok_or("`shape` must be a list")?;
    if chunks.as_array().map(Vec::len) != Some(ndim) {
        return Err("`chunks` must be a list as long as `shape`".into());
    }
    let lengths = |list: &Value, positive: bool| {
        list.as_array()
            .into_iter()
            .flatten()
            .all(|v| v.as_u64().is_some_and(|n| !positive || n > 0))
    };
    if !lengths(&shape, false) {
        return Err(format!("`shape` {shape} must hold non-negative integers"));
    }
    if ndim > 0 && !lengths(&chunks, true) {
        return Err(format!("`chunks` {chunks} must hold positive integers"));
    }
    let dtype = data_type(field("dtype")?)?;
    let fill = fill_value(&dtype, zarray.get("fill_value").unwrap_or(&Value::Null))?;
    let order = zarray.get("order").and_then(Value::as_str).unwrap_or("C");
    let fortran = match order {
        "C" => false,
        "F" => true,
        other => {
            return Err(format!(
                "unknown `order` {other:?} (expected \"C\" or \"F\")"
            ))
        }
    };
    let codecs = codecs_v3(zarray, &dtype, ndim, fortran)?;
    let separator = match zarray.get("dimension_separator") {
        None | Some(Value::Null) => ".",
        Some(Value::String(s)) if s == "." || s == "/" => s.as_str(),
        Some(other) => return Err(format!("unknown `dimension_separator` {other}")),
    };
    // A 0-d array still has one chunk; its v2 key is `0`.
    let (shape, chunks) = if ndim == 0 {
        (json!([]), json!([]))
    } else {
        (shape, chunks)
    };
    let mut document = json!({
        "zarr_format": 3,
        "node_type": "array",
        "shape": shape,
        "data_type": dtype.v3,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunks}},
        "chunk_key_encoding": {"name": "v2", "configuration": {"separator": separator}},
        "fill_value": fill,
        "codecs": codecs,
    });
    let mut attributes = zattrs.cloned().unwrap_or_default();
    if let Some(Value::Array(names)) = attributes.get("_ARRAY_DIMENSIONS") {
        if names.len() == ndim && names.iter().all(Value::is_string) {
            // kerchunk names a dimension a netCDF group defines by its HDF5 path
            // (`hourly/time`); netCDF and xarray name it `time`.
            let names: Vec<Value> = names
                .iter()
                .filter_map(Value::as_str)
                .map(|n| Value::from(n.rsplit('/').next().unwrap_or(n)))
                .collect();
            if names.iter().any(|n| n.as_str().is_none_or(str::is_empty)) {
                return Err(format!(
                    "`_ARRAY_DIMENSIONS` {} names a dimension with an empty name",
                    attributes["_ARRAY_DIMENSIONS"]
                ));
            }
            document["dimension_names"] = Value::Array(names);
            attributes.remove("_ARRAY_DIMENSIONS");
        }
    }
    let v2_fill = zarray.get("fill_value").unwrap_or(&Value::Null);
    match fill_value_attribute(&dtype, ndim, v2_fill, attributes.get("_FillValue"), fills)? {
        Some(encoded) => attributes.insert("_FillValue".into(), encoded),
        None => attributes.remove("_FillValue"),
    };
    if !attributes.is_empty() {
        document["attributes"] = Value::Object(attributes);
    }
    Ok(document)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_translate_with_attributes_and_key_encoding() {
        let zarray = json!({"zarr_format": 2, "shape": [4, 6], "chunks": [2, 3], "dtype": ">i2",
            "fill_value": null, "order": "C", "filters": null, "compressor": null,
            "dimension_separator": "/"});
        let attrs = json!({"_ARRAY_DIMENSIONS": ["time", "x"], "units": "K"});
        let doc = array_v3(&zarray, attrs.as_object(), FillMeaning::CfFillValue).unwrap();
        assert_eq!(doc["data_type"], "int16");
        assert_eq!(doc["fill_value"], 0);
        assert_eq!(
            doc["chunk_grid"]["configuration"]["chunk_shape"],
            json!([2, 3])
        );
        assert_eq!(
            doc["chunk_key_encoding"],
            json!({"name": "v2", "configuration": {"separator": "/"}})
        );
        assert_eq!(doc["dimension_names"], json!(["time", "x"]));
        assert_eq!(doc["attributes"]["units"], "K");
        // Said once, by `dimension_names`; no `_FillValue` for a `null` fill value.
        assert!(doc["attributes"].get("_ARRAY_DIMENSIONS").is_none());
        assert!(doc["attributes"].get("_FillValue").is_none());
        assert_eq!(
            doc["codecs"],
            json!([{"name": "bytes", "configuration": {"endian": "big"}}])
        );
        let path = crate::format::path::NodePath::new("a").unwrap();
        crate::zarr::metadata::NodeMetadata::from_value(&path, doc).unwrap();

        let mut no_sep = zarray.clone();
        no_sep
            .as_object_mut()
            .unwrap()
            .remove("dimension_separator");
        // Dimensions of a netCDF group, named by kerchunk with their HDF5 path.
        let grouped = json!({"_ARRAY_DIMENSIONS": ["hourly/time", "x"]});
        let doc = array_v3(&zarray, grouped.as_object(), FillMeaning::CfFillValue).unwrap();
        assert_eq!(doc["dimension_names"], json!(["time", "x"]));
        let doc = array_v3(&no_sep, None, FillMeaning::CfFillValue).unwrap();
        assert_eq!(doc["chunk_key_encoding"]["configuration"]["separator"], ".");
        assert!(doc.get("dimension_names").is_none());
        // Wrong-length dimension names are kept as an attribute only.
        let doc = array_v3(
            &zarray,
            json!({"_ARRAY_DIMENSIONS": ["t"]}).as_object(),
            FillMeaning::CfFillValue,
        )
        .unwrap();
        assert!(doc.get("dimension_names").is_none());

        for (field, value) in [
            ("order", json!("K")),
            ("dimension_separator", json!("-")),
            ("chunks", json!([2])),
            ("zarr_format", json!(3)),
            ("shape", json!([4, -5])),
            ("chunks", json!([0, 3])),
            ("chunks", json!([2, 1.5])),
        ] {
            let mut bad = zarray.clone();
            bad[field] = value;
            assert!(
                array_v3(&bad, None, FillMeaning::CfFillValue).is_err(),
                "{field}"
            );
        }
    }
}
