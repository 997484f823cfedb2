//! Version 2 B-tree chunk indexes: datasets with more than one unlimited dimension. Records
//! of type 10 (no filters: address, then each chunk grid coordinate in 8 bytes) or 11
//! (filters: address, stored size, filter mask, coordinates), in grid order.

use super::{check_size_width, ChunkEntry, ChunkGeometry};
use crate::virtual_refs::scan::hdf5::btree2;
use crate::virtual_refs::scan::hdf5::bytes::{bad, Cursor, FileBytes, Parsed, Sizes, UNDEFINED};

/// Record type of unfiltered chunks.
const UNFILTERED: u8 = 10;
/// Record type of filtered chunks.
const FILTERED: u8 = 11;

/// Every chunk of the version 2 B-tree whose header is at `addr`, in grid order. Fetch
/// rounds: the header, then one per level of the tree.
pub(crate) fn entries(
    file: &FileBytes,
    sizes: Sizes,
    addr: u64,
    geometry: &ChunkGeometry,
) -> Parsed<Vec<ChunkEntry>> {
    geometry.check("chunk B-tree", addr)?;
    let tree = btree2::records(file, sizes, addr)?;
    let expected = if geometry.filtered {
        FILTERED
    } else {
        UNFILTERED
    };
    if tree.kind != expected {
        return bad(format!(
            "the chunk B-tree at byte {addr} has records of type {} ({expected} expected for \
             a dataset {} filters)",
            tree.kind,
            if geometry.filtered { "with" } else { "without" }
        ));
    }
    let rank = geometry.dims.len() as u64;
    let fixed = u64::from(sizes.offsets) + 8 * rank;
    let record = u64::from(tree.record_size);
    let wrong_size = || {
        bad(format!(
            "the chunk B-tree at byte {addr} has records of {record} bytes, not those of \
             chunks of {rank} dimensions"
        ))
    };
    let size_width = match (geometry.filtered, record.checked_sub(fixed + 4)) {
        (false, _) if record == fixed => 0,
        (true, Some(w)) => check_size_width(w, geometry, sizes, "chunk B-tree", addr)?,
        _ => return wrong_size(),
    };
    let chunk_bytes = geometry.chunk_bytes()?;
    let mut out = Vec::with_capacity(tree.records.len());
    for r in &tree.records {
        let mut c = Cursor::new(r, addr, sizes);
        let address = c.address_field()?;
        let (size, filter_mask) = if geometry.filtered {
            (c.uint(size_width)?, c.u32()?)
        } else {
            (chunk_bytes, 0)
        };
        let scaled = (0..rank).map(|_| c.u64()).collect::<Parsed<Vec<u64>>>()?;
        if address != UNDEFINED {
            out.push(ChunkEntry {
                scaled,
                address,
                size,
                filter_mask,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtual_refs::scan::hdf5::bytes::Fault;
    use crate::virtual_refs::scan::hdf5::chunk_index::test_support::{
        by_rounds, dataset, find_one, fixture, whole,
    };

    #[test]
    fn chunk_tables_equal_h5py() {
        for name in [
            "bt_2d.h5",
            "bt_3d.h5",
            "bt_filtered.h5",
            "bt_filtered_v4.h5",
            "bt_deep.h5.gz",
        ] {
            let bytes = fixture(name);
            let (file, sizes) = whole(&bytes);
            let (geometry, expected) = dataset(name);
            let at = find_one(&bytes, b"BTHD");
            let got = entries(&file, sizes, at, &geometry).unwrap_or_else(|e| panic!("{e:?}"));
            assert!(!expected.is_empty(), "{name}");
            // Records come in grid order already.
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn a_deep_tree_comes_one_level_a_round() {
        let name = "bt_deep.h5.gz";
        let bytes = fixture(name);
        let (_, sizes) = whole(&bytes);
        let (geometry, expected) = dataset(name);
        let at = find_one(&bytes, b"BTHD");
        let (got, rounds) = by_rounds(&bytes, at as usize, |f| entries(f, sizes, at, &geometry));
        assert_eq!(got, expected);
        // Header, root, its children (all at once), the leaves (all at once).
        let counts: Vec<usize> = rounds.iter().map(Vec::len).collect();
        assert_eq!(counts.len(), 4, "{counts:?}");
        assert_eq!(counts[..2], [1, 1]);
        assert!(counts[2] > 1 && counts[3] > counts[2], "{counts:?}");
    }

    #[test]
    fn a_dataset_of_another_rank_or_filtering_is_refused() {
        // Layout version 4: chunks of 30 bytes, 2-byte size fields.
        let bytes = fixture("bt_filtered_v4.h5");
        let (file, sizes) = whole(&bytes);
        let (geometry, _) = dataset("bt_filtered_v4.h5");
        let at = find_one(&bytes, b"BTHD");
        for g in [
            ChunkGeometry {
                filtered: false,
                ..geometry.clone()
            },
            ChunkGeometry {
                dims: vec![10, 12, 1],
                max_dims: vec![u64::MAX; 3],
                chunk: vec![3, 5, 1],
                ..geometry.clone()
            },
            // Chunks of 4 KiB would have 3-byte size fields (and lengths are 8 bytes).
            ChunkGeometry {
                element_size: 4096 / 15,
                ..geometry.clone()
            },
        ] {
            match entries(&file, sizes, at, &g) {
                Err(Fault::Bad(reason)) => assert!(reason.contains("chunk B-tree"), "{reason}"),
                other => panic!("{other:?}"),
            }
        }
    }
}
