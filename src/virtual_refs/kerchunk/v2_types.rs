//! Zarr v2 (numpy) data types and fill values as their Zarr v3 equivalents.

use serde_json::{json, Value};

/// Byte order of a Zarr v2 data type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endian {
    /// `<`.
    Little,
    /// `>`.
    Big,
    /// `|`: single bytes, no order.
    NotApplicable,
}

/// A Zarr v2 (numpy) data type and its Zarr v3 equivalent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DataType {
    /// The Zarr v3 `data_type` value.
    pub(crate) v3: Value,
    /// Byte order of the encoded elements.
    pub(crate) endian: Endian,
    /// Size of one element in bytes.
    pub(crate) size: usize,
    /// What kind of values the fill value holds.
    pub(crate) kind: Kind,
}

/// The kind of values of a data type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    Int,
    UInt,
    Float,
    Complex,
    Bytes,
    DateTime,
    /// Variable-length UTF-8 strings.
    String,
}

/// Largest element, in bytes, of a raw-bytes data type (`|S<n>`, `|V<n>`): larger ones are
/// refused rather than building a fill value of `n` JSON numbers.
pub(crate) const MAX_BYTES_ELEMENT_SIZE: usize = 1024 * 1024;

/// Parses a numpy type string such as `<f4`, `>i2`, `|u1`, `|b1`, `<c8`, `|S10`, `<M8[ns]`.
pub(crate) fn data_type(dtype: &Value) -> Result<DataType, String> {
    let text = dtype.as_str().ok_or_else(|| {
        format!(
            "data type {dtype} is not supported (structured data types have no Zarr v3 equivalent)"
        )
    })?;
    let unsupported = || format!("data type `{text}` is not supported");
    let mut chars = text.chars();
    let endian = match chars.next() {
        Some('<') => Endian::Little,
        Some('>') => Endian::Big,
        Some('|') => Endian::NotApplicable,
        Some('=') => {
            return Err(format!(
                "data type `{text}`: native byte order `=` is ambiguous; give `<` or `>`"
            ))
        }
        _ => return Err(unsupported()),
    };
    let kind_char = chars.next().ok_or_else(unsupported)?;
    if kind_char == 'O' && chars.as_str().is_empty() {
        // Python objects: variable-length strings when the filters say `vlen-utf8` (checked
        // with the codecs), as kerchunk embeds netCDF-4 string variables.
        return Ok(DataType {
            v3: json!("string"),
            endian: Endian::NotApplicable,
            size: 0,
            kind: Kind::String,
        });
    }
    let rest: String = chars.collect();
    if matches!(kind_char, 'M' | 'm') {
        let unit = rest
            .strip_prefix('8')
            .and_then(|r| r.strip_prefix('['))
            .and_then(|r| r.strip_suffix(']'))
            .ok_or_else(unsupported)?;
        let digits: String = unit.chars().take_while(char::is_ascii_digit).collect();
        let unit_name = &unit[digits.len()..];
        if ![
            "Y", "M", "W", "D", "h", "m", "s", "ms", "us", "μs", "ns", "ps", "fs", "as",
        ]
        .contains(&unit_name)
        {
            return Err(unsupported());
        }
        let scale: u64 = if digits.is_empty() {
            1
        } else {
            digits.parse().map_err(|_| unsupported())?
        };
        let name = if kind_char == 'M' {
            "numpy.datetime64"
        } else {
            "numpy.timedelta64"
        };
        let unit_name = if unit_name == "μs" { "us" } else { unit_name };
        return Ok(DataType {
            v3: json!({"name": name, "configuration": {"unit": unit_name, "scale_factor": scale}}),
            endian,
            size: 8,
            kind: Kind::DateTime,
        });
    }
    let size: usize = rest.parse().map_err(|_| unsupported())?;
    if matches!(kind_char, 'S' | 'V') && size > MAX_BYTES_ELEMENT_SIZE {
        return Err(format!(
            "data type `{text}`: elements of {size} bytes exceed the limit of \
             {MAX_BYTES_ELEMENT_SIZE} bytes"
        ));
    }
    let named = |name: String| Value::String(name);
    // Byte strings get the names zarr-python 3 gives them (numpy `S` and `V` types), so
    // xarray reads `S1` character arrays as characters; floe hands zarrs raw bits of the
    // same size (see `crate::zarr::zarrs_compat`).
    let bytes_type = |name: &str| json!({"name": name, "configuration": {"length_bytes": size}});
    let (v3, kind) = match (kind_char, size) {
        ('b', 1) => (named("bool".into()), Kind::Bool),
        ('i', 1 | 2 | 4 | 8) => (named(format!("int{}", size * 8)), Kind::Int),
        ('u', 1 | 2 | 4 | 8) => (named(format!("uint{}", size * 8)), Kind::UInt),
        ('f', 2 | 4 | 8) => (named(format!("float{}", size * 8)), Kind::Float),
        ('c', 8 | 16) => (named(format!("complex{}", size * 8)), Kind::Complex),
        ('S', n) if n > 0 => (bytes_type("null_terminated_bytes"), Kind::Bytes),
        ('V', n) if n > 0 => (bytes_type("raw_bytes"), Kind::Bytes),
        _ => return Err(unsupported()),
    };
    let endian = if size == 1 || kind == Kind::Bytes {
        Endian::NotApplicable
    } else {
        endian
    };
    Ok(DataType {
        v3,
        endian,
        size,
        kind,
    })
}

/// True when the integer `value` is in the range of the integer data type `dtype`.
pub(crate) fn fits_integer(dtype: &DataType, value: &Value) -> bool {
    let bits = (dtype.size * 8) as u32;
    match dtype.kind {
        Kind::UInt => value
            .as_u64()
            .is_some_and(|v| bits >= 64 || v < (1u64 << bits)),
        _ => value.as_i64().is_some_and(|v| {
            bits >= 64 || (-(1i64 << (bits - 1))..(1i64 << (bits - 1))).contains(&v)
        }),
    }
}

/// The Zarr v3 fill value for a Zarr v2 one: `null` becomes the type's zero; `"NaN"`,
/// `"Infinity"` and `"-Infinity"` stay as such for floats (and the parts of complex numbers);
/// byte strings are base64 text, as zarr-python writes them (`""` for all zero bytes).
pub(crate) fn fill_value(dtype: &DataType, fill: &Value) -> Result<Value, String> {
    let bad = || format!("fill value {fill} does not fit data type {}", dtype.v3);
    let float = |v: &Value| -> Result<Value, String> {
        match v {
            Value::Null => Ok(json!(0.0)),
            Value::Number(_) => Ok(v.clone()),
            Value::String(s) if matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity") => {
                Ok(v.clone())
            }
            _ => Err(bad()),
        }
    };
    match dtype.kind {
        Kind::Bool => match fill {
            Value::Null => Ok(json!(false)),
            Value::Bool(_) => Ok(fill.clone()),
            Value::Number(n) if n.as_u64() == Some(0) || n.as_u64() == Some(1) => {
                Ok(json!(n.as_u64() == Some(1)))
            }
            _ => Err(bad()),
        },
        Kind::Int | Kind::UInt | Kind::DateTime => {
            let value = match fill {
                Value::Null => json!(0),
                // numpy's NaT is the smallest int64.
                Value::String(s) if dtype.kind == Kind::DateTime && s == "NaT" => {
                    json!(i64::MIN)
                }
                Value::Number(n) if n.is_i64() || n.is_u64() => fill.clone(),
                Value::Number(n) => match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => json!(f as i64),
                    _ => return Err(bad()),
                },
                _ => return Err(bad()),
            };
            if fits_integer(dtype, &value) {
                Ok(value)
            } else {
                Err(bad())
            }
        }
        Kind::Float => float(fill),
        Kind::Complex => match fill {
            Value::Array(parts) if parts.len() == 2 => {
                Ok(json!([float(&parts[0])?, float(&parts[1])?]))
            }
            Value::Null | Value::Number(_) | Value::String(_) => Ok(json!([float(fill)?, 0.0])),
            _ => Err(bad()),
        },
        Kind::String => match fill {
            Value::Null => Ok(json!("")),
            Value::String(_) => Ok(fill.clone()),
            _ => Err(bad()),
        },
        Kind::Bytes => match fill {
            Value::Null | Value::Number(_) => {
                if matches!(fill, Value::Number(n) if n.as_u64() != Some(0)) {
                    return Err(bad());
                }
                Ok(json!(""))
            }
            Value::String(s) => {
                let bytes =
                    crate::zarr::base64::decode(s).map_err(|e| format!("fill value: {e}"))?;
                if bytes.len() > dtype.size {
                    return Err(bad());
                }
                Ok(json!(crate::zarr::base64::encode(&bytes)))
            }
            _ => Err(bad()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(text: &str) -> DataType {
        data_type(&json!(text)).unwrap()
    }

    #[test]
    fn every_numpy_type_form_maps() {
        for (v2, v3, endian, size) in [
            ("<f4", "float32", Endian::Little, 4),
            (">f8", "float64", Endian::Big, 8),
            ("<f2", "float16", Endian::Little, 2),
            (">i2", "int16", Endian::Big, 2),
            ("<i8", "int64", Endian::Little, 8),
            ("|i1", "int8", Endian::NotApplicable, 1),
            ("|u1", "uint8", Endian::NotApplicable, 1),
            ("<u1", "uint8", Endian::NotApplicable, 1),
            ("<u4", "uint32", Endian::Little, 4),
            (">u8", "uint64", Endian::Big, 8),
            ("|b1", "bool", Endian::NotApplicable, 1),
            ("<c8", "complex64", Endian::Little, 8),
            (">c16", "complex128", Endian::Big, 16),
        ] {
            let t = dt(v2);
            assert_eq!(
                (t.v3.as_str(), t.endian, t.size),
                (Some(v3), endian, size),
                "{v2}"
            );
        }
        // Byte strings take zarr-python's names, so xarray reads `S1` characters.
        assert_eq!(
            dt("|S10").v3,
            json!({"name": "null_terminated_bytes", "configuration": {"length_bytes": 10}})
        );
        assert_eq!(
            dt("|V2").v3,
            json!({"name": "raw_bytes", "configuration": {"length_bytes": 2}})
        );
        assert_eq!(
            (dt("|S10").size, dt("|S10").endian),
            (10, Endian::NotApplicable)
        );
        let time = dt("<M8[ns]");
        assert_eq!(
            time.v3,
            json!({"name": "numpy.datetime64", "configuration": {"unit": "ns", "scale_factor": 1}})
        );
        assert_eq!(
            dt(">m8[10s]").v3["configuration"],
            json!({"unit": "s", "scale_factor": 10})
        );
        assert_eq!(dt("|O").v3, json!("string"));
        for bad in ["<U10", "|O4", "<f16", "<i3", "=f4", "f4", "<M8[parsec]"] {
            assert!(data_type(&json!(bad)).is_err(), "{bad}");
        }
        assert!(data_type(&json!([["a", "<f4"]]))
            .unwrap_err()
            .contains("structured"));
    }

    #[test]
    fn huge_byte_elements_are_refused_without_overflow() {
        let largest = format!("|S{MAX_BYTES_ELEMENT_SIZE}");
        let t = dt(&largest);
        assert_eq!(
            t.v3["configuration"]["length_bytes"],
            json!(MAX_BYTES_ELEMENT_SIZE)
        );
        assert_eq!(fill_value(&t, &Value::Null).unwrap(), json!(""));
        for hostile in [
            format!("|S{}", MAX_BYTES_ELEMENT_SIZE + 1),
            format!("|V{}", usize::MAX),
            format!("|S{}", usize::MAX / 8 + 1),
        ] {
            let err = data_type(&json!(hostile)).unwrap_err();
            assert!(err.contains(&hostile), "{err}");
            assert!(
                err.contains(&format!("limit of {MAX_BYTES_ELEMENT_SIZE} bytes")),
                "{err}"
            );
        }
    }

    #[test]
    fn fill_values_translate() {
        let f = dt("<f4");
        assert_eq!(fill_value(&f, &json!(null)).unwrap(), json!(0.0));
        assert_eq!(fill_value(&f, &json!("NaN")).unwrap(), json!("NaN"));
        assert_eq!(
            fill_value(&f, &json!("-Infinity")).unwrap(),
            json!("-Infinity")
        );
        assert_eq!(fill_value(&f, &json!(-999.0)).unwrap(), json!(-999.0));
        assert!(fill_value(&f, &json!("nan")).is_err());
        let i = dt(">i2");
        assert_eq!(fill_value(&i, &json!(null)).unwrap(), json!(0));
        assert_eq!(fill_value(&i, &json!(-5)).unwrap(), json!(-5));
        assert_eq!(fill_value(&i, &json!(3.0)).unwrap(), json!(3));
        assert!(fill_value(&i, &json!(3.5)).is_err());
        assert!(fill_value(&i, &json!(70000)).is_err());
        assert!(fill_value(&i, &json!(-32768)).is_ok());
        assert!(fill_value(&dt("|u1"), &json!(256)).is_err());
        assert!(fill_value(&dt("|u1"), &json!(-1)).is_err());
        assert!(fill_value(&dt("<u8"), &json!(u64::MAX)).is_ok());
        assert!(fill_value(&i, &json!("NaN")).is_err());
        let b = dt("|b1");
        assert_eq!(fill_value(&b, &json!(null)).unwrap(), json!(false));
        assert_eq!(fill_value(&b, &json!(true)).unwrap(), json!(true));
        assert_eq!(fill_value(&b, &json!(1)).unwrap(), json!(true));
        let c = dt("<c8");
        assert_eq!(fill_value(&c, &json!(null)).unwrap(), json!([0.0, 0.0]));
        assert_eq!(
            fill_value(&c, &json!(["NaN", 1.5])).unwrap(),
            json!(["NaN", 1.5])
        );
        assert_eq!(fill_value(&c, &json!(2.0)).unwrap(), json!([2.0, 0.0]));
        let s = dt("|S3");
        assert_eq!(fill_value(&s, &json!(null)).unwrap(), json!(""));
        assert_eq!(fill_value(&s, &json!("YQ==")).unwrap(), json!("YQ=="));
        assert!(fill_value(&s, &json!("YWJjZA==")).is_err());
        let t = dt("<M8[s]");
        assert_eq!(fill_value(&t, &json!("NaT")).unwrap(), json!(i64::MIN));
    }
}
