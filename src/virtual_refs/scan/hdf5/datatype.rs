//! Datatype and dataspace messages: what one element is, and the shape of a dataset or
//! attribute.

use super::bytes::{bad, Cursor, Parsed, Sizes};

/// Byte order of a numeric type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    Little,
    Big,
}

/// String padding of a fixed-length string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Padding {
    NullTerminated,
    NullPadded,
    SpacePadded,
}

/// An element type floe can express (or must materialise).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Datatype {
    /// An integer of `size` bytes.
    Integer {
        size: u32,
        signed: bool,
        order: Order,
    },
    /// An IEEE float of `size` bytes (2, 4 or 8).
    Float { size: u32, order: Order },
    /// A fixed-length string of `size` bytes.
    FixedString { size: u32, padding: Padding },
    /// A variable-length string (stored in the global heap).
    VarString,
    /// An enumeration over an integer base type: names and values.
    Enum {
        base: Box<Datatype>,
        members: Vec<(String, i64)>,
    },
    /// An object reference (`DIMENSION_LIST`'s elements, inside a variable-length sequence).
    ObjectReference { size: u32 },
    /// A variable-length sequence of `base` (`DIMENSION_LIST`).
    Sequence(Box<Datatype>),
    /// Anything else: its class name, for refusals.
    Other(&'static str, u32),
}

impl Datatype {
    /// Bytes of one element as stored in a dataset or attribute.
    pub(crate) fn size(&self) -> u32 {
        match self {
            Datatype::Integer { size, .. }
            | Datatype::Float { size, .. }
            | Datatype::FixedString { size, .. }
            | Datatype::ObjectReference { size }
            | Datatype::Other(_, size) => *size,
            Datatype::Enum { base, .. } => base.size(),
            // Length (4), global heap collection address and object index.
            Datatype::VarString | Datatype::Sequence(_) => 16,
        }
    }

    /// The Zarr v2 (numpy) type string, for types Zarr expresses as stored.
    pub(crate) fn zarr_v2(&self) -> Option<String> {
        let order = |o: &Order| if *o == Order::Little { '<' } else { '>' };
        Some(match self {
            Datatype::Integer {
                size: 1, signed, ..
            } => {
                format!("|{}1", if *signed { 'i' } else { 'u' })
            }
            Datatype::Integer {
                size: s @ (2 | 4 | 8),
                signed,
                order: o,
            } => format!("{}{}{s}", order(o), if *signed { 'i' } else { 'u' }),
            Datatype::Float {
                size: s @ (2 | 4 | 8),
                order: o,
            } => format!("{}f{s}", order(o)),
            Datatype::FixedString { size, .. } => format!("|S{size}"),
            Datatype::Enum { base, .. } => return base.zarr_v2(),
            _ => return None,
        })
    }

    /// A short description for messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Datatype::Other(class, size) => format!("{class} ({size} bytes)"),
            Datatype::VarString => "variable-length string".into(),
            Datatype::Sequence(_) => "variable-length sequence".into(),
            Datatype::ObjectReference { .. } => "object reference".into(),
            other => other.zarr_v2().unwrap_or_else(|| format!("{other:?}")),
        }
    }
}

fn order_of(bits: u32) -> Order {
    if bits & 1 == 0 {
        Order::Little
    } else {
        Order::Big
    }
}

/// Decodes a datatype message.
pub(crate) fn datatype(c: &mut Cursor<'_>) -> Parsed<Datatype> {
    datatype_at_depth(c, 0)
}

fn datatype_at_depth(c: &mut Cursor<'_>, depth: u32) -> Parsed<Datatype> {
    if depth > 8 {
        return bad("a datatype nests more than 8 levels deep");
    }
    let class_version = c.u8()?;
    let class = class_version & 0x0f;
    let bits = c.take(3)?;
    let bits = u32::from(bits[0]) | u32::from(bits[1]) << 8 | u32::from(bits[2]) << 16;
    let size = c.u32()?;
    Ok(match class {
        0 => {
            c.skip(4)?; // bit offset, precision
            match size {
                1 | 2 | 4 | 8 => Datatype::Integer {
                    size,
                    signed: bits & 0x08 != 0,
                    order: order_of(bits),
                },
                _ => Datatype::Other("integer of unusual size", size),
            }
        }
        1 => {
            c.skip(12)?; // offset, precision, exponent and mantissa layout, bias
            if bits & 0x40 != 0 {
                return Ok(Datatype::Other("VAX-order float", size));
            }
            match size {
                2 | 4 | 8 => Datatype::Float {
                    size,
                    order: order_of(bits),
                },
                _ => Datatype::Other("float of unusual size", size),
            }
        }
        2 => Datatype::Other("time", size),
        3 => Datatype::FixedString {
            size,
            padding: match bits & 0x0f {
                0 => Padding::NullTerminated,
                1 => Padding::NullPadded,
                _ => Padding::SpacePadded,
            },
        },
        4 => Datatype::Other("bitfield", size),
        5 => Datatype::Other("opaque", size),
        6 => Datatype::Other("compound", size),
        7 => {
            if bits & 0x0f == 0 {
                Datatype::ObjectReference { size }
            } else {
                Datatype::Other("region reference", size)
            }
        }
        8 => {
            let version = class_version >> 4;
            let base = datatype_at_depth(c, depth + 1)?;
            let count = (bits & 0xffff) as usize;
            let mut names = Vec::with_capacity(count.min(4096));
            for _ in 0..count {
                names.push(name(c, version < 3)?);
            }
            let mut members = Vec::with_capacity(names.len());
            for n in names {
                let raw = c.take(base.size() as usize)?;
                let value = match &base {
                    Datatype::Integer { signed, order, .. } => int_value(raw, *signed, *order),
                    _ => return bad("an enumeration over a non-integer type"),
                };
                members.push((n, value));
            }
            Datatype::Enum {
                base: Box::new(base),
                members,
            }
        }
        9 => {
            let base = datatype_at_depth(c, depth + 1)?;
            if bits & 0x0f == 1 {
                Datatype::VarString
            } else {
                Datatype::Sequence(Box::new(base))
            }
        }
        10 => Datatype::Other("array", size),
        11 => Datatype::Other("complex", size),
        other => return bad(format!("unknown datatype class {other}")),
    })
}

/// A NUL-terminated name, padded to a multiple of 8 bytes when `padded`.
fn name(c: &mut Cursor<'_>, padded: bool) -> Parsed<String> {
    let start = c.pos();
    let rest = &c.buffer()[start..];
    let Some(len) = rest.iter().position(|&b| b == 0) else {
        return bad("an enumeration member name is not terminated");
    };
    let text = String::from_utf8_lossy(&rest[..len]).into_owned();
    let used = if padded {
        (len + 1).div_ceil(8) * 8
    } else {
        len + 1
    };
    c.skip(used)?;
    Ok(text)
}

/// An integer of `raw.len()` bytes.
pub(crate) fn int_value(raw: &[u8], signed: bool, order: Order) -> i64 {
    let mut v: u64 = 0;
    let bytes: Vec<u8> = match order {
        Order::Little => raw.iter().rev().copied().collect(),
        Order::Big => raw.to_vec(),
    };
    for b in &bytes {
        v = (v << 8) | u64::from(*b);
    }
    let bits = 8 * raw.len() as u32;
    if signed && bits < 64 && v >> (bits - 1) & 1 == 1 {
        (v | (!0u64 << bits)) as i64
    } else {
        v as i64
    }
}

/// A dataspace: its current and maximum dimensions (`None` for a null dataspace).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Dataspace {
    /// Current dimensions (empty for a scalar).
    pub(crate) dims: Vec<u64>,
    /// Maximum dimensions, `u64::MAX` for unlimited.
    pub(crate) max_dims: Vec<u64>,
    /// A null dataspace (no elements at all).
    pub(crate) null: bool,
}

impl Dataspace {
    /// Elements, `None` on overflow.
    pub(crate) fn elements(&self) -> Option<u64> {
        if self.null {
            return Some(0);
        }
        self.dims.iter().try_fold(1u64, |n, &d| n.checked_mul(d))
    }
}

/// Decodes a dataspace message.
pub(crate) fn dataspace(c: &mut Cursor<'_>, sizes: Sizes) -> Parsed<Dataspace> {
    let version = c.u8()?;
    let rank = usize::from(c.u8()?);
    let flags = c.u8()?;
    if rank > 32 {
        return bad(format!("a dataspace of rank {rank} (at most 32)"));
    }
    let null = match version {
        1 => {
            c.skip(5)?;
            false
        }
        2 => c.u8()? == 2,
        other => return bad(format!("dataspace message version {other} is not known")),
    };
    let _ = sizes;
    let mut dims = Vec::with_capacity(rank);
    for _ in 0..rank {
        dims.push(c.length()?);
    }
    let mut max_dims = dims.clone();
    if flags & 1 != 0 {
        for m in max_dims.iter_mut() {
            let v = c.length()?;
            let all_ones = match c.sizes.lengths {
                8 => u64::MAX,
                n => (1u64 << (8 * u32::from(n))) - 1,
            };
            *m = if v == all_ones { u64::MAX } else { v };
        }
    }
    Ok(Dataspace {
        dims,
        max_dims,
        null,
    })
}
