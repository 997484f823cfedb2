//! Extensible array chunk indexes (header `EAHD`, index block `EAIB`, super blocks `EASB`,
//! data blocks `EADB`): datasets with exactly one unlimited dimension.
//!
//! Entry `i` is the chunk at row-major position `i` of the chunk grid with the unlimited
//! dimension moved first ("swizzled") and every other dimension as many chunks as its
//! MAXIMUM extent has. The first entries are in the index block; the rest in data blocks
//! grouped by super block `s` (`2^(s/2)` blocks of `2^((s+1)/2) * min` entries each); the
//! first super blocks' data blocks are listed by the index block itself, the others' by
//! super blocks. Data blocks larger than a page (`2^page bits` entries) are paged, their
//! super block holding one bit per page (most significant bit first, pages of all its data
//! blocks numbered in a row); a page never written holds no chunks.

use super::{check_size_width, strides, unravel, ChunkEntry, ChunkGeometry};
use crate::virtual_refs::scan::hdf5::bytes::{
    bad, gather, Cursor, Fault, FileBytes, Parsed, Sizes, UNDEFINED,
};
use crate::virtual_refs::scan::hdf5::checksum;

/// The header's parameters, and what the dataset's geometry adds to them.
struct Array {
    addr: u64,
    sizes: Sizes,
    client: u8,
    element_size: u64,
    size_width: usize,
    /// Bytes of a block offset.
    offset_size: u64,
    index_elements: u64,
    min_data_elements: u64,
    min_data_pointers: u64,
    page_elements: u64,
    super_blocks: u64,
    /// Entries to read: those set, capped by the chunks the current extent can have.
    limit: u64,
    index_block: u64,
    /// Strides of the swizzled grid, the unlimited dimension, and chunk bytes.
    down: Vec<u64>,
    unlimited: usize,
    chunk_bytes: u64,
}

/// A data block to read: address, entries, index of its first entry, the block offset it
/// records, and for a paged block of a super block the page bitmap and its first bit.
struct DataBlock<'a> {
    addr: u64,
    elements: u64,
    first: u64,
    /// HDF5 records `start of its super block + n * entries`, `n` counting the data blocks
    /// of the super block, or of the index block for those it lists (so not the offset of
    /// their first entry).
    offset: u64,
    pages: Option<(&'a [u8], u64)>,
}

impl Array {
    /// Super block `s`: its number of data blocks, their entries, and the index (after the
    /// index block's entries) of its first entry.
    fn super_block(&self, s: u64) -> Option<(u64, u64, u64)> {
        let blocks = 1u64.checked_shl(u32::try_from(s / 2).ok()?)?;
        let elements = 1u64
            .checked_shl(u32::try_from(s.div_ceil(2)).ok()?)?
            .checked_mul(self.min_data_elements)?;
        // Super blocks before `s` hold min * (2^s - 1) entries.
        let start = 1u64
            .checked_shl(u32::try_from(s).ok()?)
            .map(|p| (p - 1).checked_mul(self.min_data_elements))
            .unwrap_or(None)?;
        Some((blocks, elements, start))
    }

    /// The chunk of entry `i`.
    fn entry(&self, c: &mut Cursor, i: u64) -> Parsed<Option<ChunkEntry>> {
        let address = c.address_field()?;
        let (size, filter_mask) = if self.client == 1 {
            (c.uint(self.size_width)?, c.u32()?)
        } else {
            (self.chunk_bytes, 0)
        };
        if address == UNDEFINED || i >= self.limit {
            return Ok(None);
        }
        let mut scaled = unravel(i, &self.down);
        // Back from swizzled order: the first coordinate is the unlimited dimension's.
        if let Some(s) = scaled.get_mut(..=self.unlimited) {
            s.rotate_left(1);
        }
        Ok(Some(ChunkEntry {
            scaled,
            address,
            size,
            filter_mask,
        }))
    }

    /// The chunks of `count` entries at `bytes`, the first of index `first`.
    fn decode(&self, bytes: &[u8], origin: u64, first: u64) -> Parsed<Vec<ChunkEntry>> {
        let mut c = Cursor::new(bytes, origin, self.sizes);
        let mut out = Vec::new();
        let mut i = first;
        while c.remaining() > 0 && i < self.limit {
            out.extend(self.entry(&mut c, i)?);
            i += 1;
        }
        Ok(out)
    }

    /// Checks a block's prefix: signature, version, client, owner (and block offset).
    fn prefix(&self, c: &mut Cursor, sig: &[u8; 4], what: &str, offset: Option<u64>) -> Parsed<()> {
        let at = c.address();
        c.signature(sig, what)?;
        let version = c.u8()?;
        let client = c.u8()?;
        let owner = c.address_field()?;
        let found = match offset {
            Some(_) => Some(c.uint(self.offset_size as usize)?),
            None => None,
        };
        if version != 0 || client != self.client || owner != self.addr || found != offset {
            return bad(format!(
                "the {what} at byte {at} (version {version}, client {client}, offset {found:?}) \
                 does not belong to the extensible array at byte {} (offset {offset:?} expected)",
                self.addr
            ));
        }
        Ok(())
    }

    fn data_block(&self, file: &FileBytes, b: &DataBlock) -> Parsed<Vec<ChunkEntry>> {
        let o = u64::from(self.sizes.offsets);
        let prefix_len = 6 + o + self.offset_size + 4;
        let Some((bitmap, bit)) = b.pages else {
            if b.elements > self.page_elements {
                return bad(format!(
                    "the extensible array at byte {} has a paged data block at byte {} listed \
                     by its index block",
                    self.addr, b.addr
                ));
            }
            let len = prefix_len.saturating_add(b.elements.saturating_mul(self.element_size));
            let bytes = file.get(b.addr, len)?;
            let mut c = Cursor::new(bytes, b.addr, self.sizes);
            self.prefix(
                &mut c,
                b"EADB",
                "extensible array data block",
                Some(b.offset),
            )?;
            checksum::verify(bytes, "extensible array data block", b.addr)?;
            let body = bytes.get(c.pos()..bytes.len() - 4).unwrap_or_default();
            return self.decode(body, c.address(), b.first);
        };
        // Paged: only the pages written, each with its checksum (the prefix holds nothing).
        let page_size = self.page_elements * self.element_size + 4;
        let pages = b.elements / self.page_elements;
        let written = (0..pages).filter(|p| {
            let n = bit + p;
            bitmap
                .get((n / 8) as usize)
                .is_some_and(|byte| byte & (0x80 >> (n % 8)) != 0)
        });
        let read = gather(written.map(|p| {
            let at = b
                .addr
                .saturating_add(prefix_len)
                .saturating_add(p.saturating_mul(page_size));
            let first = b.first.saturating_add(p * self.page_elements);
            if first >= self.limit {
                return Ok(Vec::new());
            }
            let bytes = file.get(at, page_size)?;
            checksum::verify(bytes, "extensible array data block page", at)?;
            self.decode(bytes.get(..bytes.len() - 4).unwrap_or_default(), at, first)
        }))?;
        Ok(read.into_iter().flatten().collect())
    }

    /// Super block `s` at `addr`: its data blocks.
    fn super_block_at<'a>(
        &self,
        file: &'a FileBytes,
        addr: u64,
        s: u64,
    ) -> Parsed<Vec<DataBlock<'a>>> {
        let o = u64::from(self.sizes.offsets);
        let Some((blocks, elements, start)) = self.super_block(s) else {
            return bad(format!(
                "the extensible array at byte {} overflows",
                self.addr
            ));
        };
        let paged = elements > self.page_elements;
        let pages = if paged {
            elements / self.page_elements
        } else {
            0
        };
        let bitmap_len = if paged {
            blocks.saturating_mul(pages.div_ceil(8))
        } else {
            0
        };
        let len = (6 + o + self.offset_size + 4)
            .saturating_add(bitmap_len)
            .saturating_add(blocks.saturating_mul(o));
        let bytes = file.get(addr, len)?;
        let mut c = Cursor::new(bytes, addr, self.sizes);
        self.prefix(&mut c, b"EASB", "extensible array super block", Some(start))?;
        checksum::verify(bytes, "extensible array super block", addr)?;
        let bitmap = c.take(bitmap_len as usize)?;
        let mut out = Vec::new();
        for d in 0..blocks {
            let block = c.address_field()?;
            let first = d
                .checked_mul(elements)
                .and_then(|n| n.checked_add(start))
                .and_then(|n| n.checked_add(self.index_elements))
                .unwrap_or(u64::MAX);
            if block != UNDEFINED && first < self.limit {
                out.push(DataBlock {
                    addr: block,
                    elements,
                    first,
                    offset: first - self.index_elements,
                    pages: paged.then_some((bitmap, d.saturating_mul(pages))),
                });
            }
        }
        Ok(out)
    }
}

fn header(file: &FileBytes, sizes: Sizes, addr: u64, g: &ChunkGeometry) -> Parsed<Array> {
    let (o, l) = (u64::from(sizes.offsets), u64::from(sizes.lengths));
    let bytes = file.get(addr, 12 + 6 * l + o + 4)?;
    let mut c = Cursor::new(bytes, addr, sizes);
    c.signature(b"EAHD", "extensible array header")?;
    let version = c.u8()?;
    let client = c.u8()?;
    let element_size = u64::from(c.u8()?);
    let max_bits = u32::from(c.u8()?);
    let index_elements = u64::from(c.u8()?);
    let min_data_elements = u64::from(c.u8()?);
    let min_data_pointers = u64::from(c.u8()?);
    let page_bits = u32::from(c.u8()?);
    for _ in 0..4 {
        c.length()?; // super and data block counts and sizes
    }
    let set = c.length()?;
    c.length()?; // elements
    let index_block = c.address_field()?;
    checksum::verify(bytes, "extensible array header", addr)?;
    if version != 0 || client > 1 || (client == 1) != g.filtered {
        return bad(format!(
            "the extensible array header at byte {addr} has version {version} and client \
             {client} (0, and {} for this dataset, expected)",
            u8::from(g.filtered)
        ));
    }
    let size_width = match (client, element_size.checked_sub(o + 4)) {
        (0, _) if element_size == o => 0,
        (1, Some(w)) => check_size_width(w, g, sizes, "extensible array", addr)?,
        _ => {
            return bad(format!(
                "the extensible array header at byte {addr} has entries of {element_size} bytes"
            ))
        }
    };
    let min_log2 = min_data_elements.checked_ilog2().unwrap_or(u32::MAX);
    if !min_data_elements.is_power_of_two()
        || !min_data_pointers.is_power_of_two()
        || min_data_pointers < 2
        || max_bits > 64
        || min_log2 > max_bits
        || page_bits >= 32
    {
        return bad(format!(
            "the extensible array header at byte {addr} has inconsistent parameters (entries \
             of {element_size} bytes, {max_bits} index bits, {min_data_elements} entries and \
             {min_data_pointers} pointers at least, pages of 2^{page_bits} entries)"
        ));
    }
    // The swizzled grid: the unlimited dimension first, the others at their maximum.
    let max = g.max_chunks();
    let unlimited: Vec<usize> = (0..max.len()).filter(|&k| max[k] == u64::MAX).collect();
    let [unlimited] = unlimited[..] else {
        return bad(format!(
            "the extensible array at byte {addr} indexes a dataset with {} unlimited \
             dimensions (1 expected)",
            unlimited.len()
        ));
    };
    let mut extents = max.clone();
    if let Some(e) = extents.get_mut(..=unlimited) {
        e.rotate_right(1);
    }
    let current = g
        .dims
        .get(unlimited)
        .zip(g.chunk.get(unlimited))
        .map(|(&d, &c)| d.div_ceil(c));
    let down = strides(&extents);
    let (Some(down), Some(current)) = (down, current) else {
        return bad(format!(
            "the extensible array at byte {addr} indexes too many chunks"
        ));
    };
    let capacity = down
        .first()
        .and_then(|&d| d.checked_mul(current))
        .unwrap_or(u64::MAX);
    Ok(Array {
        addr,
        sizes,
        client,
        element_size,
        size_width,
        offset_size: u64::from(max_bits.div_ceil(8)),
        index_elements,
        min_data_elements,
        min_data_pointers,
        page_elements: 1u64 << page_bits,
        super_blocks: 1 + u64::from(max_bits - min_log2),
        limit: set.min(capacity),
        index_block,
        down,
        unlimited,
        chunk_bytes: g.chunk_bytes()?,
    })
}

/// Every chunk of the extensible array whose header is at `addr` (chunks never written, and
/// entries past the current extent of the unlimited dimension, left out), in index order.
/// Fetch rounds after the header's: the index block; its data blocks and the super blocks;
/// the super blocks' data blocks (of paged ones, the pages written only).
pub(crate) fn entries(
    file: &FileBytes,
    sizes: Sizes,
    addr: u64,
    geometry: &ChunkGeometry,
) -> Parsed<Vec<ChunkEntry>> {
    geometry.check("extensible array", addr)?;
    let a = header(file, sizes, addr, geometry)?;
    if a.index_block == UNDEFINED || a.limit == 0 {
        return Ok(Vec::new());
    }
    let o = u64::from(sizes.offsets);
    // Super blocks whose data blocks the index block lists, and how many data blocks.
    let own_supers = 2 * u64::from(a.min_data_pointers.ilog2());
    let own_blocks = 2 * (a.min_data_pointers - 1);
    let listed_supers = a.super_blocks.saturating_sub(own_supers);
    let at = a.index_block;
    let len = 6 + o + a.index_elements * a.element_size + (own_blocks + listed_supers) * o + 4;
    let bytes = file.get(at, len)?;
    let mut c = Cursor::new(bytes, at, sizes);
    a.prefix(&mut c, b"EAIB", "extensible array index block", None)?;
    checksum::verify(bytes, "extensible array index block", at)?;
    let mut out = Vec::new();
    for i in 0..a.index_elements {
        out.extend(a.entry(&mut c, i)?);
    }
    let mut data_blocks = Vec::new();
    let mut s = 0;
    let mut in_super = 0;
    for n in 0..own_blocks {
        let block = c.address_field()?;
        let Some((blocks, elements, start)) = a.super_block(s) else {
            return bad(format!("the extensible array at byte {addr} overflows"));
        };
        let first = a.index_elements + start + in_super * elements;
        if block != UNDEFINED && first < a.limit {
            data_blocks.push(DataBlock {
                addr: block,
                elements,
                first,
                offset: start + n * elements,
                pages: None,
            });
        }
        in_super += 1;
        if in_super == blocks {
            (s, in_super) = (s + 1, 0);
        }
    }
    let mut supers = Vec::new();
    for s in own_supers..own_supers + listed_supers {
        let block = c.address_field()?;
        let first = a
            .super_block(s)
            .and_then(|(_, _, start)| start.checked_add(a.index_elements));
        if block != UNDEFINED && first.is_some_and(|f| f < a.limit) {
            supers.push((block, s));
        }
    }
    // One round: the index block's data blocks and the super blocks.
    let direct = gather(data_blocks.iter().map(|b| a.data_block(file, b)));
    let listed = gather(supers.iter().map(|&(at, s)| a.super_block_at(file, at, s)));
    let (direct, listed) = match (direct, listed) {
        (Ok(d), Ok(l)) => (d, l),
        (Err(Fault::Missing(mut m)), Err(Fault::Missing(n))) => {
            m.extend(n);
            return Err(Fault::Missing(m));
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    out.extend(direct.into_iter().flatten());
    let blocks: Vec<DataBlock> = listed.into_iter().flatten().collect();
    let below = gather(blocks.iter().map(|b| a.data_block(file, b)))?;
    out.extend(below.into_iter().flatten());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtual_refs::scan::hdf5::chunk_index::test_support::{
        by_rounds, dataset, find_all, find_one, fix_checksum, fixture, whole,
    };

    fn sorted(mut entries: Vec<ChunkEntry>) -> Vec<ChunkEntry> {
        entries.sort_by(|a, b| a.scaled.cmp(&b.scaled));
        entries
    }

    #[test]
    fn chunk_tables_equal_h5py() {
        for name in [
            "ea_1d.h5",
            "ea_2d_unlim0.h5",
            "ea_2d_unlim1.h5",
            "ea_3d.h5",
            "ea_sparse.h5",
            "ea_filtered_addr4.h5",
            "ea_filtered_v4.h5",
            "ea_paged.h5",
        ] {
            let bytes = fixture(name);
            let (file, sizes) = whole(&bytes);
            let (geometry, expected) = dataset(name);
            let at = find_one(&bytes, b"EAHD");
            let got = entries(&file, sizes, at, &geometry).unwrap_or_else(|e| panic!("{e:?}"));
            assert!(!expected.is_empty(), "{name}");
            assert_eq!(sorted(got), expected, "{name}");
        }
    }

    #[test]
    fn one_round_a_level() {
        // 300 entries: the index block's 4, its 6 data blocks (240), super block 4's first
        // data block.
        let name = "ea_1d.h5";
        let bytes = fixture(name);
        let (_, sizes) = whole(&bytes);
        let (geometry, expected) = dataset(name);
        let at = find_one(&bytes, b"EAHD");
        let (got, rounds) = by_rounds(&bytes, at as usize, |f| entries(f, sizes, at, &geometry));
        assert_eq!(sorted(got), expected);
        // Header; index block; its data blocks with the super block; the super block's.
        assert_eq!(rounds.len(), 4, "{rounds:?}");
        assert_eq!(rounds[2].len(), 7, "{rounds:?}");
        assert_eq!(rounds[3].len(), 1, "{rounds:?}");
    }

    #[test]
    fn paged_data_blocks_read_the_written_pages_only() {
        // Entry 134200: super block 13 (64 data blocks of 2048 entries, 2 pages each), its
        // data block 1, page 1: bit 3 of the super block's bitmap.
        let name = "ea_paged.h5";
        let bytes = fixture(name);
        let (_, sizes) = whole(&bytes);
        let (geometry, expected) = dataset(name);
        let at = find_one(&bytes, b"EAHD");
        let (got, rounds) = by_rounds(&bytes, at as usize, |f| entries(f, sizes, at, &geometry));
        assert_eq!(sorted(got), expected);
        assert_eq!(expected.len(), 1);
        assert_eq!(rounds.len(), 4, "{rounds:?}");
        // The last round: one page of 1024 entries and its checksum.
        assert_eq!(rounds[3].len(), 1);
        assert_eq!(rounds[3][0].end - rounds[3][0].start, 1024 * 8 + 4);
        let sb = find_one(&bytes, b"EASB") as usize;
        assert_eq!(bytes[sb + 6 + 8 + 4], 0x10, "bit 3 of the bitmap");
    }

    #[test]
    fn hostile_arrays_are_refused() {
        let name = "ea_1d.h5";
        let bytes = fixture(name);
        let (geometry, _) = dataset(name);
        let at = find_one(&bytes, b"EAHD") as usize;
        let iblock = find_one(&bytes, b"EAIB") as usize;
        let sblock = find_one(&bytes, b"EASB") as usize;
        let run = |bytes: &[u8], size: usize, g: &ChunkGeometry| {
            let (mut file, sizes) = whole(bytes);
            file.size = size as u64;
            match entries(&file, sizes, at as u64, g) {
                Err(Fault::Bad(reason)) => reason,
                other => panic!("{other:?}"),
            }
        };
        assert!(run(&bytes, iblock + 10, &geometry).contains("past the end"));
        let mut flipped = bytes.clone();
        flipped[sblock + 20] ^= 0x40;
        assert!(run(&flipped, bytes.len(), &geometry).contains("checksum"));
        // The super block listed again where a data block should be (checksum made right).
        let blocks = find_all(&bytes, b"EADB");
        let mut looped = bytes.clone();
        let iblock_len = 6 + 8 + 4 * 8 + 6 * 8 + 25 * 8 + 4;
        let first_dblock = iblock + 6 + 8 + 4 * 8;
        assert_eq!(
            u64::from_le_bytes(looped[first_dblock..first_dblock + 8].try_into().unwrap()),
            blocks[0]
        );
        looped[first_dblock..first_dblock + 8].copy_from_slice(&(sblock as u64).to_le_bytes());
        fix_checksum(&mut looped, iblock, iblock_len);
        assert!(run(&looped, bytes.len(), &geometry).contains("signature"));
        // Two unlimited dimensions.
        let two = ChunkGeometry {
            dims: vec![300, 1],
            max_dims: vec![u64::MAX, u64::MAX],
            chunk: vec![1, 1],
            ..geometry.clone()
        };
        assert!(run(&bytes, bytes.len(), &two).contains("unlimited"));
    }
}
