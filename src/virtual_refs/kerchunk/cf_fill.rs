//! The CF `_FillValue` of a translated array, in the form xarray reads from a Zarr v3 array.
//!
//! xarray masks a Zarr v2 array's `fill_value` as missing data, but for Zarr v3 it masks only
//! what the `_FillValue` attribute says, encoded its own way: a float as the base64 text of
//! its little-endian `f64` bytes, an integer as a JSON integer, a complex number as two such
//! base64 texts. Without that attribute, `-9999` reads as a number where the source file reads
//! NaN.
//!
//! Whether a Zarr v2 `fill_value` is a CF `_FillValue` depends on who wrote it. kerchunk writes
//! `null` for every netCDF-4 variable without a `_FillValue` attribute and the attribute's
//! value otherwise, except for scalar variables, which get the HDF5 fill value (netCDF's
//! default fill when no `_FillValue` was set). For files that are not netCDF (h5py), it writes
//! the HDF5 fill value of every dataset (0 unless set), which `xarray.open_dataset` never
//! masks. [`FillMeaning::of_reference_set`] tells the two apart.

use serde_json::{json, Map, Value};

use super::v2_types::{fits_integer, DataType, Kind};
use crate::zarr::base64;

/// What the `fill_value`s of one reference set mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FillMeaning {
    /// A non-null `fill_value` is the variable's CF `_FillValue` (netCDF files, whose
    /// variables without one have `null`).
    CfFillValue,
    /// `fill_value`s are storage defaults only (plain HDF5 files): no `_FillValue` is implied.
    StorageOnly,
}

impl FillMeaning {
    /// The meaning for a reference set whose arrays are `arrays` (`.zarray` documents with
    /// their `.zattrs`), judged from its numeric arrays with dimensions and without CF time
    /// units (kerchunk nulls the fill value of every array whose `units` say `since`):
    /// - some has a `null` fill value: netCDF (kerchunk gives `null` only to netCDF variables
    ///   without `_FillValue`), so fill values are CF fill values;
    /// - otherwise, every one has a zero fill value: plain HDF5 (h5py's default fill value is
    ///   0, which kerchunk copies to every dataset), so fill values are storage defaults;
    /// - otherwise fill values were set on purpose (xarray writes NaN even on float
    ///   coordinates): CF fill values.
    pub(crate) fn of_reference_set<'a>(
        arrays: impl IntoIterator<Item = (&'a Value, Option<&'a Map<String, Value>>)>,
    ) -> Self {
        let (mut null_fill, mut zero_fill, mut other_fill) = (false, false, false);
        for (zarray, zattrs) in arrays {
            let dimensioned = zarray["shape"].as_array().is_some_and(|s| !s.is_empty());
            let numeric = zarray["dtype"]
                .as_str()
                .is_some_and(|d| d.len() > 1 && matches!(&d[1..2], "i" | "u" | "f" | "c"));
            let time_like = zattrs
                .and_then(|a| a.get("units"))
                .and_then(Value::as_str)
                .is_some_and(|u| u.contains("since"));
            if !dimensioned || !numeric || time_like {
                continue;
            }
            match zarray.get("fill_value") {
                None | Some(Value::Null) => null_fill = true,
                Some(Value::Number(n)) if n.as_f64() == Some(0.0) => zero_fill = true,
                Some(_) => other_fill = true,
            }
        }
        if zero_fill && !null_fill && !other_fill {
            FillMeaning::StorageOnly
        } else {
            FillMeaning::CfFillValue
        }
    }
}

/// The `_FillValue` attribute (xarray's Zarr v3 encoding) for an array of data type `dtype`
/// with `ndim` dimensions, Zarr v2 fill value `v2_fill` and source attribute `attribute` (the
/// `_FillValue` the reference set kept, if any). `None` when the array has no CF fill value.
/// Fails when an explicit `_FillValue` does not fit the data type.
pub(crate) fn fill_value_attribute(
    dtype: &DataType,
    ndim: usize,
    v2_fill: &Value,
    attribute: Option<&Value>,
    meaning: FillMeaning,
) -> Result<Option<Value>, String> {
    if let Some(explicit) = attribute {
        return encode(dtype, explicit).map(Some).ok_or_else(|| {
            format!(
                "`_FillValue` {explicit} does not fit data type {}",
                dtype.v3
            )
        });
    }
    if meaning == FillMeaning::StorageOnly || v2_fill.is_null() {
        return Ok(None);
    }
    if ndim == 0 && is_netcdf_default_fill(dtype, v2_fill) {
        return Ok(None);
    }
    Ok(encode(dtype, v2_fill))
}

/// `value` in xarray's Zarr v3 `_FillValue` encoding for `dtype`; `None` for data types xarray
/// cannot decode a `_FillValue` of (byte strings, booleans, dates) or a value that does not fit.
fn encode(dtype: &DataType, value: &Value) -> Option<Value> {
    let float = |v: &Value| -> Option<f64> {
        match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => match s.as_str() {
                "NaN" | "nan" => Some(f64::NAN),
                "Infinity" | "inf" => Some(f64::INFINITY),
                "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
                // Already xarray's encoding: 8 bytes of base64.
                other => base64::decode(other)
                    .ok()
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(f64::from_le_bytes),
            },
            _ => None,
        }
    };
    let encoded = |f: f64| json!(base64::encode(&f.to_le_bytes()));
    match dtype.kind {
        Kind::Int | Kind::UInt => match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(value.clone()),
            Value::Number(n) => n
                .as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| json!(f as i64)),
            _ => None,
        }
        .filter(|v| fits_integer(dtype, v)),
        Kind::Float => float(value).map(encoded),
        Kind::Complex => match value {
            Value::Array(parts) if parts.len() == 2 => Some(json!([
                encoded(float(&parts[0])?),
                encoded(float(&parts[1])?)
            ])),
            other => Some(json!([encoded(float(other)?), encoded(0.0)])),
        },
        Kind::Bool | Kind::Bytes | Kind::DateTime | Kind::String => None,
    }
}

/// True when `fill` is netCDF's default fill value for `dtype` (`NC_FILL_*`), which netCDF-C
/// stores as the HDF5 fill value of variables without `_FillValue`.
fn is_netcdf_default_fill(dtype: &DataType, fill: &Value) -> bool {
    const NC_FILL_DOUBLE: f64 = 9.969_209_968_386_869e36;
    match dtype.kind {
        Kind::Int => {
            let default = match dtype.size {
                1 => -127,
                2 => -32767,
                4 => -2_147_483_647,
                _ => -9_223_372_036_854_775_806,
            };
            fill.as_i64() == Some(default)
        }
        Kind::UInt => {
            let default = match dtype.size {
                1 => 255,
                2 => 65535,
                4 => 4_294_967_295,
                _ => 18_446_744_073_709_551_614,
            };
            fill.as_u64() == Some(default)
        }
        Kind::Float => fill.as_f64().is_some_and(|f| {
            if dtype.size == 4 {
                f as f32 == NC_FILL_DOUBLE as f32
            } else {
                f == NC_FILL_DOUBLE
            }
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtual_refs::kerchunk::v2_types::data_type;

    fn dt(text: &str) -> DataType {
        data_type(&json!(text)).unwrap()
    }

    #[test]
    fn netcdf_reference_sets_are_told_from_plain_hdf5_ones() {
        let none: Option<&Map<String, Value>> = None;
        let netcdf = [
            json!({"shape": [3], "dtype": "<f8", "fill_value": null}),
            json!({"shape": [3, 4], "dtype": "<f4", "fill_value": -9999.0}),
        ];
        assert_eq!(
            FillMeaning::of_reference_set(netcdf.iter().map(|z| (z, none))),
            FillMeaning::CfFillValue
        );
        // xarray's files: NaN on floats (coordinates too), 0 set on a flag variable.
        let xarray = [
            json!({"shape": [3], "dtype": "<f4", "fill_value": "NaN"}),
            json!({"shape": [3, 4], "dtype": "|u1", "fill_value": 0}),
        ];
        assert_eq!(
            FillMeaning::of_reference_set(xarray.iter().map(|z| (z, none))),
            FillMeaning::CfFillValue
        );
        // Only explicit fill values, as in a netCDF file whose only other variable is time.
        let explicit = [json!({"shape": [3, 4], "dtype": "<i2", "fill_value": -32767})];
        assert_eq!(
            FillMeaning::of_reference_set(explicit.iter().map(|z| (z, none))),
            FillMeaning::CfFillValue
        );
        // h5py: every dataset carries its HDF5 fill value (0 unless set); scalars, strings
        // and CF times (kerchunk nulls the fill of anything with `since` in its units) say
        // nothing.
        let time_attrs = json!({"units": "days since 2000-01-01"});
        let time = json!({"shape": [4], "dtype": "<f8", "fill_value": null});
        let plain = [
            json!({"shape": [3], "dtype": "<f8", "fill_value": 0.0}),
            json!({"shape": [], "dtype": "<i4", "fill_value": null}),
            json!({"shape": [2], "dtype": "|S4", "fill_value": null}),
        ];
        let arrays = plain
            .iter()
            .map(|z| (z, none))
            .chain(std::iter::once((&time, time_attrs.as_object())));
        assert_eq!(
            FillMeaning::of_reference_set(arrays),
            FillMeaning::StorageOnly
        );
    }

    #[test]
    fn fill_values_take_xarrays_v3_encoding() {
        let cf = FillMeaning::CfFillValue;
        let attr = |t: &str, ndim: usize, fill: Value| {
            fill_value_attribute(&dt(t), ndim, &fill, None, cf).unwrap()
        };
        // -9999.0 as xarray writes it: base64 of the little-endian f64.
        assert_eq!(attr("<f4", 3, json!(-9999.0)), Some(json!("AAAAAICHw8A=")));
        assert_eq!(attr("<f8", 1, json!("NaN")), Some(json!("AAAAAAAA+H8=")));
        assert_eq!(attr(">i2", 3, json!(-32767)), Some(json!(-32767)));
        assert_eq!(attr("<u1", 1, json!(255.0)), Some(json!(255)));
        assert_eq!(
            attr("<c8", 1, json!(["NaN", 0.0])),
            Some(json!(["AAAAAAAA+H8=", "AAAAAAAAAAA="]))
        );
        assert_eq!(attr("<f8", 1, Value::Null), None);
        // Byte strings and booleans have no `_FillValue` xarray can decode.
        assert_eq!(attr("|S1", 2, json!("IA==")), None);
        assert_eq!(attr("|b1", 1, json!(true)), None);
        // A netCDF scalar without `_FillValue` carries netCDF's default fill: not a CF fill.
        assert_eq!(attr("<i4", 0, json!(-2147483647)), None);
        assert_eq!(attr("<f4", 0, json!(9.969209968386869e36)), None);
        assert_eq!(attr("<i4", 0, json!(-1)), Some(json!(-1)));
        assert_eq!(attr("<i4", 1, json!(-2147483647)), Some(json!(-2147483647)));
        // Plain HDF5: nothing implied, but an explicit attribute always counts.
        let plain = FillMeaning::StorageOnly;
        assert_eq!(
            fill_value_attribute(&dt("<f4"), 1, &json!(0.0), None, plain).unwrap(),
            None
        );
        assert_eq!(
            fill_value_attribute(&dt("<f4"), 1, &json!(0.0), Some(&json!(-1.0)), plain).unwrap(),
            Some(json!(base64::encode(&(-1.0f64).to_le_bytes())))
        );
        // An explicit value already in xarray's encoding is kept.
        assert_eq!(
            fill_value_attribute(
                &dt("<f8"),
                1,
                &json!(null),
                Some(&json!("AAAAAICHw8A=")),
                cf
            )
            .unwrap(),
            Some(json!("AAAAAICHw8A="))
        );
        assert!(fill_value_attribute(&dt("<i2"), 1, &json!(null), Some(&json!("x")), cf).is_err());
        assert!(fill_value_attribute(&dt("|u1"), 1, &json!(null), Some(&json!(300)), cf).is_err());
        assert!(fill_value_attribute(&dt("<u8"), 1, &json!(null), Some(&json!(-1)), cf).is_err());
    }
}
