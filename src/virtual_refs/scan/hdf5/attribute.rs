//! Attribute messages, and attribute values as JSON (the form Zarr attributes take).
//!
//! Text (fixed or variable length) becomes a string (a list of strings for several), one
//! number a number, several a list; non-finite floats become `"NaN"`, `"Infinity"`,
//! `"-Infinity"`. Types JSON cannot hold (compound, opaque, references) are refused by name
//! by the caller.

use serde_json::{json, Value};

use super::bytes::{bad, Cursor, FileBytes, Parsed, Sizes};
use super::datatype::{self, Dataspace, Datatype, Order, Padding};
use super::heaps::{global_object, HeapRef};

/// Elements one attribute may have (a bound for hostile files).
const MAX_ELEMENTS: u64 = 1 << 24;

/// One attribute as stored.
#[derive(Clone, Debug)]
pub(crate) struct Attribute {
    pub(crate) name: String,
    pub(crate) datatype: Datatype,
    pub(crate) space: Dataspace,
    /// Its raw elements.
    pub(crate) data: Vec<u8>,
    /// Its datatype is a committed datatype at this address (shared message).
    pub(crate) shared_type: Option<u64>,
}

/// Decodes an attribute message.
pub(crate) fn attribute(c: &mut Cursor<'_>, sizes: Sizes) -> Parsed<Attribute> {
    let version = c.u8()?;
    let flags = c.u8()?;
    let name_len = usize::from(c.u16()?);
    let type_len = usize::from(c.u16()?);
    let space_len = usize::from(c.u16()?);
    if version == 3 {
        c.skip(1)?; // name character set
    } else if version != 1 && version != 2 {
        return bad(format!("attribute message version {version} is not known"));
    }
    let pad = |n: usize| if version == 1 { n.div_ceil(8) * 8 } else { n };
    let name = super::bytes::c_string(c.take(pad(name_len))?);
    let type_bytes = c.take(pad(type_len))?;
    let space_bytes = c.take(pad(space_len))?;
    let (datatype, shared_type) = if flags & 0x01 != 0 {
        let mut t = Cursor::new(type_bytes, 0, sizes);
        (Datatype::Other("shared", 0), Some(shared_address(&mut t)?))
    } else {
        (
            datatype::datatype(&mut Cursor::new(type_bytes, 0, sizes))?,
            None,
        )
    };
    let space = datatype::dataspace(&mut Cursor::new(space_bytes, 0, sizes), sizes)?;
    let data = c.take(c.remaining())?.to_vec();
    Ok(Attribute {
        name,
        datatype,
        space,
        data,
        shared_type,
    })
}

/// The object header address of a shared message stored in another object header.
pub(crate) fn shared_address(c: &mut Cursor<'_>) -> Parsed<u64> {
    let version = c.u8()?;
    let kind = c.u8()?;
    match (version, kind) {
        (1, _) => {
            c.skip(6)?;
            c.address_field()
        }
        (2, _) | (3, 2) => c.address_field(),
        (3, _) => bad("a message shared through the shared message heap (not supported)"),
        (v, _) => bad(format!("shared message version {v} is not known")),
    }
}

/// The value of `attr` as JSON, reading variable-length strings from the global heap.
pub(crate) fn value(file: &FileBytes, sizes: Sizes, attr: &Attribute) -> Parsed<Value> {
    let count = attr
        .space
        .elements()
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| {
            super::bytes::Fault::Bad(format!("attribute `{}` is too large", attr.name))
        })?;
    let size = attr.datatype.size() as usize;
    let needed = count as usize * size;
    if attr.data.len() < needed {
        return bad(format!(
            "attribute `{}` holds {} bytes where its type and shape need {needed}",
            attr.name,
            attr.data.len()
        ));
    }
    let elements = attr.data[..needed].chunks_exact(size.max(1));
    let list = |mut items: Vec<Value>| {
        if items.len() == 1 && !attr.space.dims.iter().any(|_| false) {
            items.remove(0)
        } else {
            Value::Array(items)
        }
    };
    Ok(match &attr.datatype {
        Datatype::Integer { signed, order, .. } => {
            list(elements.map(|e| integer_json(e, *signed, *order)).collect())
        }
        Datatype::Enum { base, .. } => match base.as_ref() {
            Datatype::Integer { signed, order, .. } => {
                list(elements.map(|e| integer_json(e, *signed, *order)).collect())
            }
            _ => {
                return bad(format!(
                    "attribute `{}` is an enumeration of non-integers",
                    attr.name
                ))
            }
        },
        Datatype::Float { size, order } => list(
            elements
                .map(|e| float_json(float_value(e, *size, *order)))
                .collect(),
        ),
        Datatype::FixedString { padding, .. } => {
            let texts: Vec<Value> = elements.map(|e| json!(fixed_text(e, *padding))).collect();
            list(texts)
        }
        Datatype::VarString => {
            let mut texts = Vec::with_capacity(count as usize);
            let mut misses = Vec::new();
            for e in elements {
                let r = HeapRef::decode(&mut Cursor::new(e, 0, sizes))?;
                match global_object(file, sizes, r) {
                    Ok(bytes) => texts.push(json!(String::from_utf8_lossy(
                        &bytes[..bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len())]
                    ))),
                    Err(super::bytes::Fault::Missing(r)) => misses.extend(r),
                    Err(other) => return Err(other),
                }
            }
            if !misses.is_empty() {
                return Err(super::bytes::Fault::Missing(misses));
            }
            list(texts)
        }
        other => {
            return bad(format!(
                "attribute `{}` has type {}, which has no JSON form",
                attr.name,
                other.describe()
            ))
        }
    })
}

/// Text of a fixed-length string element.
pub(crate) fn fixed_text(raw: &[u8], padding: Padding) -> String {
    let end = match padding {
        Padding::SpacePadded => raw.iter().rposition(|&b| b != b' ').map_or(0, |p| p + 1),
        _ => raw.iter().position(|&b| b == 0).unwrap_or(raw.len()),
    };
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

fn integer_json(raw: &[u8], signed: bool, order: Order) -> Value {
    let v = datatype::int_value(raw, signed, order);
    if signed || v >= 0 {
        json!(v)
    } else {
        json!(v as u64)
    }
}

/// A float element as `f64`.
pub(crate) fn float_value(raw: &[u8], size: u32, order: Order) -> f64 {
    let v = datatype::int_value(raw, false, order) as u64;
    match size {
        2 => half_to_f64(v as u16),
        4 => f64::from(f32::from_bits(v as u32)),
        _ => f64::from_bits(v),
    }
}

fn half_to_f64(h: u16) -> f64 {
    let sign = if h >> 15 == 1 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f64::from(h & 0x3ff);
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 if frac == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        e => sign * (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

/// A float as JSON (non-finite values as the strings Zarr uses).
pub(crate) fn float_json(f: f64) -> Value {
    if f.is_nan() {
        json!("NaN")
    } else if f.is_infinite() {
        json!(if f > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(f)
    }
}
