//! Fixed array chunk indexes (header `FAHD`, data block `FADB`): datasets without an
//! unlimited dimension, one entry per chunk of the grid of the MAXIMUM dimensions, row-major
//! (so with maximum dimensions larger than the current ones, the numbering has gaps).
//!
//! A data block of more than `2^page bits` entries is paged: its prefix holds a bitmap of
//! the pages written (most significant bit first), each page follows with its own checksum;
//! a page never written holds no chunks.

use super::{check_size_width, strides, unravel, ChunkEntry, ChunkGeometry};
use crate::virtual_refs::scan::hdf5::bytes::{
    bad, gather, Cursor, Fault, FileBytes, Parsed, Sizes, UNDEFINED,
};
use crate::virtual_refs::scan::hdf5::checksum;

/// The header fields the entries need.
struct Header {
    filtered: bool,
    entry_size: u64,
    /// Bytes of a filtered entry's stored size.
    size_width: usize,
    page_bits: u32,
    count: u64,
    data_block: u64,
}

fn header(file: &FileBytes, sizes: Sizes, addr: u64, g: &ChunkGeometry) -> Parsed<Header> {
    let o = u64::from(sizes.offsets);
    let bytes = file.get(addr, 12 + u64::from(sizes.lengths) + o)?;
    let mut c = Cursor::new(bytes, addr, sizes);
    c.signature(b"FAHD", "fixed array header")?;
    let version = c.u8()?;
    let client = c.u8()?;
    let entry_size = u64::from(c.u8()?);
    let page_bits = u32::from(c.u8()?);
    let count = c.length()?;
    let data_block = c.address_field()?;
    checksum::verify(bytes, "fixed array header", addr)?;
    if version != 0 || client > 1 {
        return bad(format!(
            "the fixed array header at byte {addr} has version {version} and client {client} \
             (0 and 0 or 1 expected)"
        ));
    }
    let filtered = client == 1;
    if filtered != g.filtered {
        return bad(format!(
            "the fixed array at byte {addr} has {} entries for a dataset {}",
            if filtered { "filtered" } else { "unfiltered" },
            if g.filtered {
                "with filters"
            } else {
                "without filters"
            }
        ));
    }
    let size_width = match (filtered, entry_size.checked_sub(o + 4)) {
        (false, _) if entry_size == o => 0,
        (true, Some(w)) => check_size_width(w, g, sizes, "fixed array", addr)?,
        _ => usize::MAX,
    };
    if size_width == usize::MAX || page_bits >= 32 {
        return bad(format!(
            "the fixed array at byte {addr} has entries of {entry_size} bytes and pages of \
             2^{page_bits} entries"
        ));
    }
    Ok(Header {
        filtered,
        entry_size,
        size_width,
        page_bits,
        count,
        data_block,
    })
}

/// Every chunk of the fixed array whose header is at `addr` (chunks never written left out),
/// in index order. Two fetch rounds at most after the header's: the data block with all its
/// pages together, then (only if something was missing) the written pages.
pub(crate) fn entries(
    file: &FileBytes,
    sizes: Sizes,
    addr: u64,
    geometry: &ChunkGeometry,
) -> Parsed<Vec<ChunkEntry>> {
    geometry.check("fixed array", addr)?;
    let grid = geometry.max_chunks();
    if grid.contains(&u64::MAX) {
        return bad(format!(
            "the fixed array at byte {addr} indexes a dataset with an unlimited dimension"
        ));
    }
    let total = grid.iter().try_fold(1u64, |n, &g| n.checked_mul(g));
    let down = strides(&grid);
    let h = header(file, sizes, addr, geometry)?;
    let (Some(total), Some(down)) = (total, down) else {
        return bad(format!(
            "the fixed array at byte {addr} indexes too many chunks"
        ));
    };
    if h.count != total {
        return bad(format!(
            "the fixed array at byte {addr} has {} entries for a grid of {total} chunks",
            h.count
        ));
    }
    if h.data_block == UNDEFINED || total == 0 {
        return Ok(Vec::new());
    }
    let chunk_bytes = geometry.chunk_bytes()?;
    let at = h.data_block;
    let o = u64::from(sizes.offsets);
    let page_len = 1u64 << h.page_bits;
    let paged = h.count > page_len;
    let pages = if paged { h.count.div_ceil(page_len) } else { 0 };
    let bitmap_len = pages.div_ceil(8);
    let body = if paged {
        bitmap_len
    } else {
        h.count.saturating_mul(h.entry_size)
    };
    let prefix_len = (6 + o + 4).saturating_add(body);
    let page_size = page_len * h.entry_size + 4;
    // The last page may be short.
    let whole = prefix_len
        .saturating_add(h.count.saturating_mul(h.entry_size))
        .saturating_add(pages.saturating_mul(4));
    let prefix = match file.get(at, prefix_len) {
        // Not fetched: ask for the pages too (almost always written), one round for all.
        Err(Fault::Missing(_)) if paged => {
            let end = at
                .saturating_add(whole)
                .min(file.size)
                .max(at.saturating_add(prefix_len));
            return Err(Fault::missing(at..end));
        }
        other => other?,
    };
    let mut c = Cursor::new(prefix, at, sizes);
    c.signature(b"FADB", "fixed array data block")?;
    let version = c.u8()?;
    let client = c.u8()?;
    let owner = c.address_field()?;
    if version != 0 || client != u8::from(h.filtered) || owner != addr {
        return bad(format!(
            "the fixed array data block at byte {at} (version {version}, client {client}) \
             belongs to the header at byte {owner}, not {addr}"
        ));
    }
    checksum::verify(prefix, "fixed array data block", at)?;
    let decode = |elements: &[u8], first: u64, origin: u64| -> Parsed<Vec<ChunkEntry>> {
        let mut c = Cursor::new(elements, origin, sizes);
        let mut out = Vec::new();
        let mut i = first;
        while c.remaining() > 0 {
            let address = c.address_field()?;
            let (size, filter_mask) = if h.filtered {
                (c.uint(h.size_width)?, c.u32()?)
            } else {
                (chunk_bytes, 0)
            };
            if address != UNDEFINED {
                out.push(ChunkEntry {
                    scaled: unravel(i, &down),
                    address,
                    size,
                    filter_mask,
                });
            }
            i += 1;
        }
        Ok(out)
    };
    if !paged {
        let elements = prefix
            .get(6 + o as usize..prefix.len() - 4)
            .unwrap_or_default();
        return decode(elements, 0, at + 6 + o);
    }
    let bitmap = prefix.get(6 + o as usize..).unwrap_or_default();
    let written = |p: u64| {
        bitmap
            .get((p / 8) as usize)
            .is_some_and(|b| b & (0x80 >> (p % 8)) != 0)
    };
    let read_page = |p: u64| -> Parsed<Vec<ChunkEntry>> {
        let first = p * page_len;
        let n = page_len.min(h.count - first);
        let page_at = at
            .saturating_add(prefix_len)
            .saturating_add(p.saturating_mul(page_size));
        let bytes = file.get(page_at, n * h.entry_size + 4)?;
        checksum::verify(bytes, "fixed array data block page", page_at)?;
        decode(
            bytes.get(..bytes.len() - 4).unwrap_or_default(),
            first,
            page_at,
        )
    };
    let pages = gather((0..pages).filter(|&p| written(p)).map(read_page))?;
    Ok(pages.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtual_refs::scan::hdf5::chunk_index::test_support::{
        by_rounds, dataset, find_one, fix_checksum, fixture, whole,
    };

    fn sorted(mut entries: Vec<ChunkEntry>) -> Vec<ChunkEntry> {
        entries.sort_by(|a, b| a.scaled.cmp(&b.scaled));
        entries
    }

    /// The fixture's chunks as read here, and as h5py reports them.
    fn both(name: &str) -> (Vec<ChunkEntry>, Vec<ChunkEntry>) {
        let bytes = fixture(name);
        let (file, sizes) = whole(&bytes);
        let (geometry, expected) = dataset(name);
        let at = find_one(&bytes, b"FAHD");
        let got = entries(&file, sizes, at, &geometry).unwrap_or_else(|e| panic!("{e:?}"));
        (sorted(got), expected)
    }

    #[test]
    fn chunk_tables_equal_h5py() {
        for name in [
            "fa_plain.h5",
            "fa_sparse_max.h5",
            "fa_filtered.h5",
            "fa_filtered_len4.h5",
            "fa_filtered_v4.h5",
            "fa_filtered_255_v4.h5",
            "fa_filtered_256_v4.h5",
            "fa_filtered_64k_v4.h5",
            "fa_paged.h5",
            "fa_paged_filtered.h5",
        ] {
            let (got, expected) = both(name);
            assert!(!expected.is_empty(), "{name}");
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn maximum_dimensions_number_the_grid_and_masks_are_kept() {
        // 10 x 12 of 16 x 20 at most, chunks 4 x 5: a 4 x 4 grid whose last row and column
        // are beyond the current extent.
        let (got, _) = both("fa_sparse_max.h5");
        let scaled: Vec<Vec<u64>> = got.iter().map(|e| e.scaled.clone()).collect();
        assert!(
            scaled.contains(&vec![1, 2]) && scaled.contains(&vec![2, 1]),
            "{scaled:?}"
        );
        let (got, _) = both("fa_filtered.h5");
        assert_eq!(got.iter().filter(|e| e.filter_mask == 1).count(), 2);
    }

    #[test]
    fn a_paged_block_comes_in_one_round_and_unwritten_pages_are_skipped() {
        let name = "fa_paged.h5";
        let bytes = fixture(name);
        let (_, sizes) = whole(&bytes);
        let (geometry, expected) = dataset(name);
        let at = find_one(&bytes, b"FAHD");
        let (got, rounds) = by_rounds(&bytes, at as usize, |f| entries(f, sizes, at, &geometry));
        assert_eq!(sorted(got), expected);
        // The header, then the data block with all its pages.
        assert_eq!(rounds.len(), 2, "{rounds:?}");
        assert_eq!(rounds[1].len(), 1);
        // Chunks 5 and 7 on page 0, 2090 on page 2: page 1 (1024..2048) was never written.
        let pages: Vec<u64> = expected.iter().map(|e| e.scaled[0] / 1024).collect();
        assert_eq!(pages, [0, 0, 2]);

        // With the prefix held but no page: both written pages are asked for at once.
        let block = rounds[1][0].start as usize;
        let prefix = 6 + 8 + 1 + 4; // 3 pages: a 1-byte bitmap
        let (got, rounds) = by_rounds(&bytes, block + prefix, |f| entries(f, sizes, at, &geometry));
        assert_eq!(sorted(got), expected);
        assert_eq!(rounds.len(), 1);
        assert_eq!(rounds[0].len(), 2, "{rounds:?}");
    }

    #[test]
    fn hostile_arrays_are_refused() {
        let name = "fa_filtered.h5";
        let bytes = fixture(name);
        let (geometry, _) = dataset(name);
        let at = find_one(&bytes, b"FAHD") as usize;
        let block = find_one(&bytes, b"FADB") as usize;
        let run = |bytes: &[u8], size: usize| {
            let (mut file, sizes) = whole(bytes);
            file.size = size as u64;
            match entries(&file, sizes, at as u64, &geometry) {
                Err(Fault::Bad(reason)) => reason,
                other => panic!("{other:?}"),
            }
        };
        // Truncated: the data block runs past the end of the file.
        assert!(run(&bytes, block + 20).contains("past the end"));
        // A flipped byte in the data block.
        let mut flipped = bytes.clone();
        flipped[block + 30] ^= 1;
        assert!(run(&flipped, bytes.len()).contains("checksum"));
        // The data block pointing back at the header (checksum made right).
        let mut looped = bytes.clone();
        let header_len = 12 + 8 + 8;
        looped[at + 16..at + 24].copy_from_slice(&(at as u64).to_le_bytes());
        fix_checksum(&mut looped, at, header_len);
        assert!(run(&looped, bytes.len()).contains("signature"));
        // More entries than the grid has.
        let mut more = bytes.clone();
        more[at + 8] = more[at + 8].wrapping_add(1);
        fix_checksum(&mut more, at, header_len);
        assert!(run(&more, bytes.len()).contains("grid"));
        // A dataset said unfiltered.
        let plain = ChunkGeometry {
            filtered: false,
            ..geometry.clone()
        };
        let (file, sizes) = whole(&bytes);
        assert!(entries(&file, sizes, at as u64, &plain).is_err());
    }
}
