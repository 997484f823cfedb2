//! Fractal heaps (header `FRHP`, direct blocks `FHDB`, indirect blocks `FHIB`): the objects
//! of dense link and attribute storage, found by heap id.
//!
//! The heap's managed space is laid out by a doubling table: row 0 and row 1 hold blocks of
//! the starting size, each further row blocks twice as large, `width` blocks a row; rows
//! whose blocks exceed the maximum direct block size are indirect blocks, themselves tables
//! of the same shape. [`FractalHeap::open`] reads the header and every indirect block (one
//! level per fetch round) and keeps where each direct block lies in the heap's offsets;
//! [`FractalHeap::object`] reads the direct block holding an object.
//!
//! Supported: managed objects, tiny objects (kept in the heap id, normal and extended form),
//! huge objects (their address in the heap id, or found through the heap's version 2
//! B-tree of type 1). Refused: heaps whose blocks go through I/O filters.

use std::cell::RefCell;
use std::collections::HashSet;

use super::btree2;
use super::bytes::{bad, gather, Cursor, FileBytes, Parsed, Sizes, UNDEFINED};
use super::checksum;

/// Indirect blocks one heap may have (a bound for hostile files).
const MAX_INDIRECT_BLOCKS: usize = 1 << 16;
/// Levels of indirect blocks (a bound for hostile files; 64-bit offsets need fewer).
const MAX_LEVELS: usize = 64;
/// B-tree record type of a heap's huge objects (not filtered).
const HUGE_OBJECTS: u8 = 1;

/// A direct block: its offset in the heap's managed space, address and size.
#[derive(Clone, Copy, Debug)]
struct DirectBlock {
    offset: u64,
    address: u64,
    size: u64,
}

/// An open fractal heap: its parameters and where its direct blocks are.
#[derive(Debug)]
pub(crate) struct FractalHeap {
    /// The header's address (blocks point back to it).
    addr: u64,
    sizes: Sizes,
    id_len: usize,
    checksummed: bool,
    /// Bytes of an offset into the managed space, and of a managed object's length.
    offset_size: usize,
    length_size: usize,
    /// The huge objects' B-tree, and whether huge ids hold the address directly.
    huge_tree: u64,
    huge_direct: bool,
    /// Direct blocks, by offset.
    blocks: Vec<DirectBlock>,
    /// Direct blocks whose checksum was verified (by address).
    verified: RefCell<HashSet<u64>>,
}

/// The doubling table's shape.
struct Table {
    width: u64,
    /// Bytes of the blocks of the first row.
    start: u64,
    /// log2 of start * width.
    first_row_bits: u32,
    /// Rows whose blocks are direct.
    direct_rows: u64,
}

impl Table {
    /// Where block `i` of a table lies from the table's start, and its size: rows 0 and 1
    /// have blocks of the starting size, each further row blocks twice as large.
    fn place(&self, i: u64) -> Option<(u64, u64)> {
        let (row, column) = (i / self.width, i % self.width);
        let (row_start, size) = match row.checked_sub(1) {
            None => (0, self.start),
            Some(r) => {
                let r = u32::try_from(r).ok()?;
                let start = 1u64.checked_shl(self.first_row_bits.checked_add(r)?)?;
                (start, self.start.checked_shl(r)?)
            }
        };
        Some((row_start.checked_add(size.checked_mul(column)?)?, size))
    }
}

/// An indirect block not read yet.
struct PendingIndirect {
    addr: u64,
    rows: u64,
    offset: u64,
}

/// A power of two's log2, or `None`.
fn log2_exact(n: u64) -> Option<u32> {
    n.is_power_of_two().then(|| n.trailing_zeros())
}

impl FractalHeap {
    /// The heap whose header is at `addr`, with every indirect block read.
    pub(crate) fn open(file: &FileBytes, sizes: Sizes, addr: u64) -> Parsed<FractalHeap> {
        let (o, l) = (u64::from(sizes.offsets), u64::from(sizes.lengths));
        let size = 26 + 12 * l + 3 * o;
        let bytes = file.get(addr, size)?;
        let mut c = Cursor::new(bytes, addr, sizes);
        c.signature(b"FRHP", "fractal heap header")?;
        let version = c.u8()?;
        if version != 0 {
            return bad(format!(
                "the fractal heap at byte {addr} has version {version} (0 expected)"
            ));
        }
        let id_len = usize::from(c.u16()?);
        let filters = c.u16()?;
        if filters != 0 {
            return bad(format!(
                "the fractal heap at byte {addr} has I/O filters on its blocks (filtered \
                 direct blocks), which floe does not read"
            ));
        }
        let flags = c.u8()?;
        let max_managed = u64::from(c.u32()?);
        c.length()?; // next huge object id
        let huge_tree = c.address_field()?;
        c.length()?; // free space in managed blocks
        c.address_field()?; // free space manager
        for _ in 0..8 {
            c.length()?; // managed space, allocated space, iterator, object counts and sizes
        }
        let width = u64::from(c.u16()?);
        let start = c.length()?;
        let max_direct = c.length()?;
        let max_heap_bits = u32::from(c.u16()?);
        c.u16()?; // starting rows of the root indirect block
        let root = c.address_field()?;
        let root_rows = u64::from(c.u16()?);
        checksum::verify(bytes, "fractal heap header", addr)?;

        let malformed = |what: &str| {
            bad(format!(
                "the fractal heap at byte {addr} has {what} (width {width}, starting block \
                 {start}, maximum direct block {max_direct}, {max_heap_bits} offset bits)"
            ))
        };
        let (Some(width_bits), Some(start_bits), Some(direct_bits)) =
            (log2_exact(width), log2_exact(start), log2_exact(max_direct))
        else {
            return malformed("a doubling table whose sizes are not powers of two");
        };
        let first_row_bits = start_bits + width_bits;
        if direct_bits < start_bits || max_heap_bits > 64 || max_heap_bits < first_row_bits {
            return malformed("an inconsistent doubling table");
        }
        let table = Table {
            width,
            start,
            first_row_bits,
            direct_rows: u64::from(direct_bits - start_bits) + 2,
        };
        let root_rows_max = u64::from(max_heap_bits - first_row_bits) + 1;
        if root_rows > root_rows_max {
            return malformed(&format!("{root_rows} rows in its root indirect block"));
        }
        if id_len == 0 {
            return malformed("heap ids of 0 bytes");
        }
        let offset_size = max_heap_bits.div_ceil(8) as usize;
        let length_size =
            (direct_bits.div_ceil(8) as usize).min(usize::from(encoded_width(max_managed)));
        let mut heap = FractalHeap {
            addr,
            sizes,
            id_len,
            checksummed: flags & 2 != 0,
            offset_size,
            length_size,
            huge_tree,
            huge_direct: o + l < id_len as u64,
            blocks: Vec::new(),
            verified: RefCell::new(HashSet::new()),
        };
        if root == UNDEFINED {
            return Ok(heap);
        }
        if root_rows == 0 {
            heap.blocks.push(DirectBlock {
                offset: 0,
                address: root,
                size: start,
            });
            return Ok(heap);
        }
        heap.blocks = heap.indirect_tree(file, &table, root, root_rows)?;
        heap.blocks.sort_by_key(|b| b.offset);
        Ok(heap)
    }

    /// Every direct block under the root indirect block, one level of indirect blocks a
    /// round.
    fn indirect_tree(
        &self,
        file: &FileBytes,
        table: &Table,
        root: u64,
        rows: u64,
    ) -> Parsed<Vec<DirectBlock>> {
        let mut seen = HashSet::from([self.addr]);
        let mut level = vec![PendingIndirect {
            addr: root,
            rows,
            offset: 0,
        }];
        let mut blocks = Vec::new();
        for _ in 0..MAX_LEVELS {
            if level.is_empty() {
                return Ok(blocks);
            }
            for p in &level {
                if !seen.insert(p.addr) || seen.len() > MAX_INDIRECT_BLOCKS {
                    return bad(format!(
                        "the fractal heap at byte {} reaches its indirect block at byte {} \
                         twice (a cycle), or has too many",
                        self.addr, p.addr
                    ));
                }
            }
            let read = gather(level.iter().map(|p| self.indirect(file, table, p)))?;
            level = Vec::new();
            for (direct, indirect) in read {
                blocks.extend(direct);
                level.extend(indirect);
            }
        }
        bad(format!(
            "the fractal heap at byte {} has indirect blocks nested over {MAX_LEVELS} deep",
            self.addr
        ))
    }

    /// One indirect block: its direct children and its indirect children.
    fn indirect(
        &self,
        file: &FileBytes,
        table: &Table,
        p: &PendingIndirect,
    ) -> Parsed<(Vec<DirectBlock>, Vec<PendingIndirect>)> {
        let at = p.addr;
        let o = u64::from(self.sizes.offsets);
        let direct_count = p.rows.min(table.direct_rows) * table.width;
        let indirect_count = p.rows.saturating_sub(table.direct_rows) * table.width;
        // rows <= 64 and width < 2^16: no overflow.
        let size = 5 + o + self.offset_size as u64 + (direct_count + indirect_count) * o + 4;
        let bytes = file.get(at, size)?;
        let mut c = Cursor::new(bytes, at, self.sizes);
        c.signature(b"FHIB", "fractal heap indirect block")?;
        let version = c.u8()?;
        if version != 0 {
            return bad(format!(
                "the fractal heap indirect block at byte {at} has version {version}"
            ));
        }
        let heap = c.address_field()?;
        let offset = c.uint(self.offset_size)?;
        if heap != self.addr || offset != p.offset {
            return bad(format!(
                "the fractal heap indirect block at byte {at} belongs to the heap at byte \
                 {heap} at offset {offset} (the heap at byte {} at offset {} expected)",
                self.addr, p.offset
            ));
        }
        checksum::verify(bytes, "fractal heap indirect block", at)?;
        let place = |i: u64| -> Parsed<(u64, u64)> {
            match table.place(i) {
                Some((o, size)) if o.checked_add(p.offset).is_some() => Ok((o + p.offset, size)),
                _ => bad(format!(
                    "the fractal heap indirect block at byte {at} has blocks past 64-bit \
                     offsets"
                )),
            }
        };
        let mut direct = Vec::new();
        for i in 0..direct_count {
            let address = c.address_field()?;
            if address != UNDEFINED {
                let (offset, size) = place(i)?;
                direct.push(DirectBlock {
                    offset,
                    address,
                    size,
                });
            }
        }
        let mut indirect = Vec::new();
        for i in direct_count..direct_count + indirect_count {
            let address = c.address_field()?;
            if address != UNDEFINED {
                let (offset, size) = place(i)?;
                // A child indirect block of blocks `size` bytes wide has rows enough for it.
                let rows = u64::from(63 - size.leading_zeros())
                    .saturating_sub(u64::from(table.first_row_bits))
                    + 1;
                indirect.push(PendingIndirect {
                    addr: address,
                    rows,
                    offset,
                });
            }
        }
        Ok((direct, indirect))
    }

    /// The object whose heap id is `heap_id` (managed, tiny or huge).
    pub(crate) fn object(&self, file: &FileBytes, heap_id: &[u8]) -> Parsed<Vec<u8>> {
        let Some(&flags) = heap_id.first() else {
            return bad(format!(
                "an empty heap id for the fractal heap at byte {}",
                self.addr
            ));
        };
        if flags >> 6 != 0 {
            return bad(format!(
                "a heap id of version {} for the fractal heap at byte {} (0 expected)",
                flags >> 6,
                self.addr
            ));
        }
        match (flags >> 4) & 3 {
            0 => self.managed(file, heap_id),
            1 => self.huge(file, heap_id),
            2 => self.tiny(heap_id),
            kind => bad(format!(
                "a heap id of unknown type {kind} for the fractal heap at byte {}",
                self.addr
            )),
        }
    }

    fn managed(&self, file: &FileBytes, heap_id: &[u8]) -> Parsed<Vec<u8>> {
        let mut c = Cursor::new(heap_id, 0, self.sizes);
        c.skip(1)?;
        let offset = c.uint(self.offset_size)?;
        let length = c.uint(self.length_size)?;
        let heap = self.addr;
        let i = self.blocks.partition_point(|b| b.offset <= offset);
        let Some(block) = i.checked_sub(1).and_then(|i| self.blocks.get(i)) else {
            return bad(format!(
                "an object at offset {offset} of the fractal heap at byte {heap} lies in no \
                 direct block"
            ));
        };
        let within = offset - block.offset;
        let prefix = 5
            + u64::from(self.sizes.offsets)
            + self.offset_size as u64
            + if self.checksummed { 4 } else { 0 };
        if within < prefix || within.saturating_add(length) > block.size || length == 0 {
            return bad(format!(
                "an object of {length} bytes at offset {offset} of the fractal heap at byte \
                 {heap} does not fit its direct block at byte {} ({} bytes)",
                block.address, block.size
            ));
        }
        let bytes = file.get(block.address, block.size)?;
        self.check_direct(bytes, block)?;
        Ok(bytes
            .get(within as usize..(within + length) as usize)
            .unwrap_or_default()
            .to_vec())
    }

    /// A direct block's prefix, and its checksum when the heap has them (once per block).
    fn check_direct(&self, bytes: &[u8], block: &DirectBlock) -> Parsed<()> {
        let at = block.address;
        let mut c = Cursor::new(bytes, at, self.sizes);
        c.signature(b"FHDB", "fractal heap direct block")?;
        let version = c.u8()?;
        let heap = c.address_field()?;
        let offset = c.uint(self.offset_size)?;
        if version != 0 || heap != self.addr || offset != block.offset {
            return bad(format!(
                "the fractal heap direct block at byte {at} (version {version}) belongs to the \
                 heap at byte {heap} at offset {offset} (the heap at byte {} at offset {} \
                 expected)",
                self.addr, block.offset
            ));
        }
        if !self.checksummed || self.verified.borrow().contains(&at) {
            return Ok(());
        }
        // The checksum covers the whole block with its own field zeroed.
        let field = c.pos();
        let stored = c.u32()?;
        let mut copy = bytes.to_vec();
        if let Some(f) = copy.get_mut(field..field + 4) {
            f.fill(0);
        }
        let computed = checksum::lookup3(&copy);
        if stored != computed {
            return bad(format!(
                "the checksum of the fractal heap direct block at byte {at} does not match \
                 (stored {stored:#010x}, computed {computed:#010x}): the file is damaged"
            ));
        }
        self.verified.borrow_mut().insert(at);
        Ok(())
    }

    fn tiny(&self, heap_id: &[u8]) -> Parsed<Vec<u8>> {
        // Ids longer than 18 bytes spend a second byte on the length (12 bits in all).
        let extended = self.id_len > 18;
        let (length, skip) = match (heap_id.first(), heap_id.get(1)) {
            (Some(&b0), Some(&b1)) if extended => {
                ((usize::from(b0 & 0x0f) << 8 | usize::from(b1)) + 1, 2)
            }
            (Some(&b0), _) if !extended => (usize::from(b0 & 0x0f) + 1, 1),
            _ => (usize::MAX, 0usize),
        };
        match heap_id.get(skip..skip.saturating_add(length)) {
            Some(object) if skip + length <= self.id_len => Ok(object.to_vec()),
            _ => bad(format!(
                "a tiny object of the fractal heap at byte {} is longer than its heap id",
                self.addr
            )),
        }
    }

    fn huge(&self, file: &FileBytes, heap_id: &[u8]) -> Parsed<Vec<u8>> {
        let mut c = Cursor::new(heap_id, 0, self.sizes);
        c.skip(1)?;
        let (address, length) = if self.huge_direct {
            (c.address_field()?, c.length()?)
        } else {
            self.huge_record(file, c.uint((self.id_len - 1).min(8))?)?
        };
        if address == UNDEFINED {
            return bad(format!(
                "a huge object of the fractal heap at byte {} has no address",
                self.addr
            ));
        }
        Ok(file.get(address, length)?.to_vec())
    }

    /// The address and length of huge object `key`, from the heap's B-tree of them
    /// (records: address, length, id).
    fn huge_record(&self, file: &FileBytes, key: u64) -> Parsed<(u64, u64)> {
        let tree = match self.huge_tree {
            UNDEFINED => None,
            at => Some(btree2::records(file, self.sizes, at)?),
        };
        let Some(tree) = tree.filter(|t| t.kind == HUGE_OBJECTS) else {
            return bad(format!(
                "the fractal heap at byte {} has huge objects but no B-tree of them (of type \
                 {HUGE_OBJECTS})",
                self.addr
            ));
        };
        for r in &tree.records {
            let mut c = Cursor::new(r, self.huge_tree, self.sizes);
            let (address, length, id) = (c.address_field()?, c.length()?, c.length()?);
            if id == key {
                return Ok((address, length));
            }
        }
        bad(format!(
            "the fractal heap at byte {} has no huge object {key}",
            self.addr
        ))
    }
}

/// Bytes needed to hold `n` (at least 1): HDF5's `H5VM_limit_enc_size`.
fn encoded_width(n: u64) -> u8 {
    (63u32.saturating_sub(n.leading_zeros()) / 8 + 1) as u8
}

#[cfg(test)]
mod tests;
