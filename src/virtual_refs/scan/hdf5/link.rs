//! Link messages (a group's members in the newer format) and the link and attribute info
//! messages that point to dense storage.

use super::bytes::{bad, Cursor, Parsed, UNDEFINED};

/// Where a link leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// An object in this file.
    Hard(u64),
    /// A path in this file.
    Soft(String),
    /// An object in another file.
    External,
}

/// One link of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) name: String,
    pub(crate) target: Target,
    /// Its creation order, when the group tracks it.
    pub(crate) creation_order: Option<u64>,
}

/// Decodes a link message.
pub(crate) fn link(c: &mut Cursor<'_>) -> Parsed<Link> {
    let version = c.u8()?;
    if version != 1 {
        return bad(format!("link message version {version} is not known"));
    }
    let flags = c.u8()?;
    let kind = if flags & 0x08 != 0 { c.u8()? } else { 0 };
    let creation_order = if flags & 0x04 != 0 {
        Some(c.u64()?)
    } else {
        None
    };
    if flags & 0x10 != 0 {
        c.skip(1)?; // character set
    }
    let name_len = c.uint(1 << (flags & 0x03))? as usize;
    let name = String::from_utf8_lossy(c.take(name_len)?).into_owned();
    let target = match kind {
        0 => Target::Hard(c.address_field()?),
        1 => {
            let len = usize::from(c.u16()?);
            Target::Soft(String::from_utf8_lossy(c.take(len)?).into_owned())
        }
        64 => Target::External,
        other => return bad(format!("link `{name}` has unknown link type {other}")),
    };
    Ok(Link {
        name,
        target,
        creation_order,
    })
}

/// Dense storage of links or attributes: a fractal heap and a version 2 B-tree indexing it by
/// name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DenseStorage {
    pub(crate) heap: u64,
    pub(crate) name_index: u64,
}

/// Decodes a link info message: the dense storage, if the group's links are dense.
pub(crate) fn link_info(c: &mut Cursor<'_>) -> Parsed<Option<DenseStorage>> {
    let version = c.u8()?;
    if version != 0 {
        return bad(format!("link info message version {version} is not known"));
    }
    let flags = c.u8()?;
    if flags & 0x01 != 0 {
        c.skip(8)?; // maximum creation index
    }
    dense(c)
}

/// Decodes an attribute info message: the dense storage, if the attributes are dense.
pub(crate) fn attribute_info(c: &mut Cursor<'_>) -> Parsed<Option<DenseStorage>> {
    let version = c.u8()?;
    if version != 0 {
        return bad(format!(
            "attribute info message version {version} is not known"
        ));
    }
    let flags = c.u8()?;
    if flags & 0x01 != 0 {
        c.skip(2)?; // maximum creation index
    }
    dense(c)
}

fn dense(c: &mut Cursor<'_>) -> Parsed<Option<DenseStorage>> {
    let heap = c.address_field()?;
    let name_index = c.address_field()?;
    Ok((heap != UNDEFINED && name_index != UNDEFINED).then_some(DenseStorage { heap, name_index }))
}
