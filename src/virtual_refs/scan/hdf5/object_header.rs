//! Object headers (versions 1 and 2) and their continuation blocks: the messages that
//! describe one group, dataset or committed datatype.

use std::collections::HashSet;

use super::bytes::{bad, Cursor, FileBytes, Parsed, Sizes, UNDEFINED};
use super::checksum;

/// Message types floe reads (types up to [`kind::FILE_SPACE_INFO`] are known; the others
/// are skipped unless marked as ones a reader must understand).
pub(crate) mod kind {
    pub(crate) const NIL: u16 = 0x00;
    pub(crate) const DATASPACE: u16 = 0x01;
    pub(crate) const LINK_INFO: u16 = 0x02;
    pub(crate) const DATATYPE: u16 = 0x03;
    pub(crate) const LINK: u16 = 0x06;
    pub(crate) const EXTERNAL_FILES: u16 = 0x07;
    pub(crate) const LAYOUT: u16 = 0x08;
    pub(crate) const GROUP_INFO: u16 = 0x0A;
    pub(crate) const FILTER_PIPELINE: u16 = 0x0B;
    pub(crate) const ATTRIBUTE: u16 = 0x0C;
    pub(crate) const CONTINUATION: u16 = 0x10;
    pub(crate) const SYMBOL_TABLE: u16 = 0x11;
    pub(crate) const ATTRIBUTE_INFO: u16 = 0x15;
    pub(crate) const FILE_SPACE_INFO: u16 = 0x17;
}

/// Message flag: the message is stored elsewhere (a shared message).
pub(crate) const FLAG_SHARED: u8 = 0x02;
/// Message flag: a reader that does not understand the message must fail.
const FLAG_MUST_UNDERSTAND: u8 = 0x80;

/// Bytes of messages one object header may hold (a budget for hostile files).
const MAX_HEADER_BYTES: usize = 16 << 20;
/// Continuation blocks one object header may have.
const MAX_CONTINUATIONS: usize = 4096;

/// One header message.
#[derive(Clone, Debug)]
pub(crate) struct Message {
    pub(crate) kind: u16,
    pub(crate) flags: u8,
    pub(crate) data: Vec<u8>,
}

/// A decoded object header: its messages in order.
#[derive(Clone, Debug)]
pub(crate) struct ObjectHeader {
    /// Its address.
    pub(crate) address: u64,
    pub(crate) messages: Vec<Message>,
}

impl ObjectHeader {
    /// The messages of one type.
    pub(crate) fn all(&self, kind: u16) -> impl Iterator<Item = &Message> {
        self.messages.iter().filter(move |m| m.kind == kind)
    }

    /// The first message of one type.
    pub(crate) fn first(&self, kind: u16) -> Option<&Message> {
        self.all(kind).next()
    }
}

/// Reads the object header at `addr` with all its continuation blocks.
///
/// Fails for a header or block past the end of the file, a checksum that does not match, a
/// continuation cycle, more than [`MAX_HEADER_BYTES`] of messages, or an unknown message
/// marked as one a reader must understand.
pub(crate) fn read(file: &FileBytes, sizes: Sizes, addr: u64) -> Parsed<ObjectHeader> {
    if addr == UNDEFINED {
        return bad("an object header address is undefined");
    }
    let prefix = file.get_up_to(addr, 40)?;
    let mut messages = Vec::new();
    let mut continuations = Vec::new();
    if prefix.starts_with(b"OHDR") {
        read_v2(file, sizes, addr, &mut messages, &mut continuations)?;
    } else if prefix.first() == Some(&1) {
        read_v1(file, sizes, addr, &mut messages, &mut continuations)?;
    } else {
        return bad(format!(
            "no object header at byte {addr} (version byte {:?})",
            prefix.first()
        ));
    }
    let v2 = prefix.starts_with(b"OHDR");
    let mut seen: HashSet<u64> = HashSet::from([addr]);
    let mut held: usize = messages.iter().map(|m: &Message| m.data.len()).sum();
    let mut next = 0;
    while next < continuations.len() {
        if next >= MAX_CONTINUATIONS {
            return bad(format!(
                "the object header at byte {addr} has more than {MAX_CONTINUATIONS} blocks"
            ));
        }
        // Every pending block is needed: ask for all of them at once.
        let pending: Vec<(u64, u64)> = continuations[next..].to_vec();
        for &(at, _) in &pending {
            if !seen.insert(at) {
                return bad(format!(
                    "the object header at byte {addr} continues into a block it already read \
                     (byte {at}): a cycle"
                ));
            }
        }
        let missing: Vec<_> = pending
            .iter()
            .filter_map(|&(at, len)| match file.get(at, len) {
                Err(super::bytes::Fault::Missing(r)) => Some(r),
                _ => None,
            })
            .flatten()
            .collect();
        if !missing.is_empty() {
            return Err(super::bytes::Fault::Missing(missing));
        }
        next = continuations.len();
        for (at, len) in pending {
            let block = file.get(at, len)?;
            let before = messages.len();
            if v2 {
                checksum::verify(block, "object header continuation block", at)?;
                let mut c = Cursor::new(&block[..block.len() - 4], at, sizes);
                c.signature(b"OCHK", "object header continuation")?;
                let creation_order = messages_v2_flags(file, addr)?;
                messages_v2(&mut c, creation_order, &mut messages)?;
            } else {
                let mut c = Cursor::new(block, at, sizes);
                messages_v1(&mut c, &mut messages)?;
            }
            for m in &messages[before..] {
                held += m.data.len();
            }
            if held > MAX_HEADER_BYTES {
                return bad(format!(
                    "the object header at byte {addr} holds more than {MAX_HEADER_BYTES} bytes"
                ));
            }
            collect_continuations(&messages[before..], sizes, &mut continuations)?;
        }
    }
    for m in &messages {
        if m.flags & FLAG_MUST_UNDERSTAND != 0 && !known(m.kind) {
            return bad(format!(
                "the object header at byte {addr} has a message of type {:#06x} that readers \
                 must understand and floe does not know",
                m.kind
            ));
        }
    }
    messages.retain(|m| m.kind != kind::CONTINUATION && m.kind != kind::NIL);
    Ok(ObjectHeader {
        address: addr,
        messages,
    })
}

fn known(kind: u16) -> bool {
    kind <= kind::FILE_SPACE_INFO
}

fn read_v1(
    file: &FileBytes,
    sizes: Sizes,
    addr: u64,
    messages: &mut Vec<Message>,
    continuations: &mut Vec<(u64, u64)>,
) -> Parsed<()> {
    let head = file.get(addr, 16)?;
    let mut c = Cursor::new(head, addr, sizes);
    c.skip(4)?; // version, reserved, message count
    c.skip(4)?; // reference count
    let size = u64::from(c.u32()?);
    let block = file.get(addr + 16, size)?;
    let mut c = Cursor::new(block, addr + 16, sizes);
    messages_v1(&mut c, messages)?;
    collect_continuations(messages, sizes, continuations)
}

fn messages_v1(c: &mut Cursor<'_>, messages: &mut Vec<Message>) -> Parsed<()> {
    while c.remaining() >= 8 {
        let kind = c.u16()?;
        let size = usize::from(c.u16()?);
        let flags = c.u8()?;
        c.skip(3)?;
        let data = c.take(size)?.to_vec();
        messages.push(Message { kind, flags, data });
    }
    Ok(())
}

/// Whether the version 2 header at `addr` stores creation orders in its messages.
fn messages_v2_flags(file: &FileBytes, addr: u64) -> Parsed<bool> {
    let head = file.get(addr, 6)?;
    Ok(head[5] & 0x04 != 0)
}

fn read_v2(
    file: &FileBytes,
    sizes: Sizes,
    addr: u64,
    messages: &mut Vec<Message>,
    continuations: &mut Vec<(u64, u64)>,
) -> Parsed<()> {
    let head = file.get_up_to(addr, 6 + 16 + 4 + 8)?;
    let mut c = Cursor::new(head, addr, sizes);
    c.signature(b"OHDR", "object header")?;
    let version = c.u8()?;
    if version != 2 {
        return bad(format!(
            "object header version {version} at byte {addr} (2 expected)"
        ));
    }
    let flags = c.u8()?;
    if flags & 0x20 != 0 {
        c.skip(16)?; // access, modification, change, birth times
    }
    if flags & 0x10 != 0 {
        c.skip(4)?; // attribute phase change values
    }
    let size = c.uint(1 << (flags & 0x03))?;
    let start = c.pos() as u64;
    let total = start
        .checked_add(size)
        .and_then(|n| n.checked_add(4))
        .filter(|&n| n <= MAX_HEADER_BYTES as u64)
        .ok_or_else(|| {
            super::bytes::Fault::Bad(format!("object header at byte {addr} is too large"))
        })?;
    let whole = file.get(addr, total)?;
    checksum::verify(whole, "object header", addr)?;
    let mut c = Cursor::new(&whole[..whole.len() - 4], addr, sizes);
    c.seek(start as usize)?;
    messages_v2(&mut c, flags & 0x04 != 0, messages)?;
    collect_continuations(messages, sizes, continuations)
}

fn messages_v2(
    c: &mut Cursor<'_>,
    creation_order: bool,
    messages: &mut Vec<Message>,
) -> Parsed<()> {
    let header = if creation_order { 6 } else { 4 };
    while c.remaining() >= header {
        let kind = u16::from(c.u8()?);
        let size = usize::from(c.u16()?);
        let flags = c.u8()?;
        if creation_order {
            c.skip(2)?;
        }
        let data = c.take(size)?.to_vec();
        messages.push(Message { kind, flags, data });
    }
    Ok(())
}

fn collect_continuations(
    messages: &[Message],
    sizes: Sizes,
    continuations: &mut Vec<(u64, u64)>,
) -> Parsed<()> {
    for m in messages.iter().filter(|m| m.kind == kind::CONTINUATION) {
        let mut c = Cursor::new(&m.data, 0, sizes);
        let at = c.address_field()?;
        let len = c.length()?;
        if at == UNDEFINED || len == 0 {
            return bad("an object header continuation points nowhere");
        }
        continuations.push((at, len));
    }
    Ok(())
}
