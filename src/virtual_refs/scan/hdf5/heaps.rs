//! Local heaps (the names of a symbol-table group), symbol table nodes, and global heap
//! collections (variable-length data: strings, `DIMENSION_LIST` references).

use super::bytes::{bad, c_string, Cursor, FileBytes, Parsed, Sizes};

/// Bytes one global heap collection may have (a bound for hostile files).
const MAX_COLLECTION: u64 = 64 << 20;

/// A local heap's data segment: where names of a symbol-table group are.
pub(crate) struct LocalHeap<'a> {
    data: &'a [u8],
}

impl<'a> LocalHeap<'a> {
    /// Reads the local heap at `addr`.
    pub(crate) fn read(file: &'a FileBytes, sizes: Sizes, addr: u64) -> Parsed<Self> {
        let head_len = 8 + 2 * u64::from(sizes.lengths) + u64::from(sizes.offsets);
        let head = file.get(addr, head_len)?;
        let mut c = Cursor::new(head, addr, sizes);
        c.signature(b"HEAP", "local heap")?;
        c.skip(4)?; // version, reserved
        let size = c.length()?;
        c.length()?; // free list
        let data_at = c.address_field()?;
        if size > MAX_COLLECTION {
            return bad(format!("a local heap of {size} bytes at byte {addr}"));
        }
        Ok(LocalHeap {
            data: file.get(data_at, size)?,
        })
    }

    /// The NUL-terminated string at `offset`.
    pub(crate) fn name(&self, offset: u64) -> Parsed<String> {
        match usize::try_from(offset)
            .ok()
            .and_then(|o| self.data.get(o..))
        {
            Some(rest) if rest.contains(&0) => Ok(c_string(rest)),
            _ => bad(format!(
                "a name at offset {offset} of a local heap of {} bytes",
                self.data.len()
            )),
        }
    }
}

/// The entries (link name offset, object header address) of the symbol table node at `addr`.
pub(crate) fn symbol_node(file: &FileBytes, sizes: Sizes, addr: u64) -> Parsed<Vec<(u64, u64)>> {
    let head = file.get(addr, 8)?;
    let mut c = Cursor::new(head, addr, sizes);
    c.signature(b"SNOD", "symbol table node")?;
    c.skip(2)?;
    let count = u64::from(c.u16()?);
    let entry = 2 * u64::from(sizes.offsets) + 24;
    let body = file.get(addr + 8, count * entry)?;
    let mut c = Cursor::new(body, addr + 8, sizes);
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let name = c.uint(usize::from(sizes.offsets))?;
        let header = c.address_field()?;
        c.skip(24)?; // cache type, reserved, scratch pad
        out.push((name, header));
    }
    Ok(out)
}

/// A variable-length element: its length and where its bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeapRef {
    /// Elements (bytes of a string).
    pub(crate) length: u32,
    /// The global heap collection.
    pub(crate) collection: u64,
    /// The object's index in the collection.
    pub(crate) index: u32,
}

impl HeapRef {
    /// Decodes one stored element (length, collection address, index).
    pub(crate) fn decode(c: &mut Cursor<'_>) -> Parsed<Self> {
        Ok(HeapRef {
            length: c.u32()?,
            collection: c.address_field()?,
            index: c.u32()?,
        })
    }
}

/// The bytes of the global heap object `r` names (empty for a zero length).
pub(crate) fn global_object(file: &FileBytes, sizes: Sizes, r: HeapRef) -> Parsed<Vec<u8>> {
    if r.length == 0 || r.index == 0 {
        return Ok(Vec::new());
    }
    let head = file.get(r.collection, 8 + u64::from(sizes.lengths))?;
    let mut c = Cursor::new(head, r.collection, sizes);
    c.signature(b"GCOL", "global heap collection")?;
    c.skip(4)?;
    let size = c.length()?;
    if size > MAX_COLLECTION {
        return bad(format!(
            "a global heap collection of {size} bytes at byte {}",
            r.collection
        ));
    }
    let whole = file.get(r.collection, size)?;
    let mut c = Cursor::new(whole, r.collection, sizes);
    c.seek(8 + usize::from(sizes.lengths))?;
    while c.remaining() >= 8 + usize::from(sizes.lengths) {
        let index = c.u16()?;
        c.skip(6)?;
        let object_size = c.length()?;
        if index == 0 {
            break; // free space: the rest of the collection
        }
        let padded = object_size
            .checked_next_multiple_of(8)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| super::bytes::Fault::Bad("a heap object is too large".into()))?;
        let start = c.pos();
        c.skip(padded.min(c.remaining()))?;
        if u32::from(index) == r.index {
            let data = &whole[start..];
            let n = (object_size as usize).min(data.len());
            return Ok(data[..n].to_vec());
        }
    }
    bad(format!(
        "no object {} in the global heap collection at byte {}",
        r.index, r.collection
    ))
}
