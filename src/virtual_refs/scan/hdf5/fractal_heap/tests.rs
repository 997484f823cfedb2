//! Tests of the fractal heap decoder against h5py's files.

use super::*;
use crate::virtual_refs::scan::hdf5::bytes::Fault;
use crate::virtual_refs::scan::hdf5::chunk_index::test_support::{
    attribute_name, by_rounds, dense_names, find_all, find_one, fix_checksum, fixture, link_name,
    whole,
};

/// Bytes of a heap header with 8-byte offsets and lengths.
const HEADER: usize = 146;

/// The heap and the name index (records of type `kind`) of a fixture.
fn parts(bytes: &[u8], kind: u8) -> (u64, Vec<Vec<u8>>) {
    let (file, sizes) = whole(bytes);
    let heap = find_one(bytes, b"FRHP");
    let index = find_all(bytes, b"BTHD")
        .into_iter()
        .find(|&a| bytes[a as usize + 5] == kind)
        .unwrap();
    (heap, btree2::records(&file, sizes, index).unwrap().records)
}

#[test]
fn dense_links_hold_the_names_h5py_lists_in_one_round_a_level() {
    let bytes = fixture("dense_links.h5");
    let (_, sizes) = whole(&bytes);
    let (at, records) = parts(&bytes, 5);
    let (objects, rounds) = by_rounds(&bytes, at as usize, |f| {
        let heap = FractalHeap::open(f, sizes, at)?;
        assert!(heap.blocks.len() > 1, "a root indirect block");
        gather(records.iter().map(|r| heap.object(f, &r[4..])))
    });
    let mut got: Vec<String> = objects.iter().map(|m| link_name(m)).collect();
    got.sort();
    assert_eq!(got, dense_names("dense_links.h5", "links"));
    // The header, the root indirect block, every direct block at once.
    let counts: Vec<usize> = rounds.iter().map(Vec::len).collect();
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(counts[2] > 1, "{counts:?}");
}

#[test]
fn dense_attributes_hold_the_names_h5py_lists_huge_ones_too() {
    for fixture_name in ["dense_attrs.h5.gz", "dense_big.h5.gz"] {
        let bytes = fixture(fixture_name);
        let (file, sizes) = whole(&bytes);
        let (at, records) = parts(&bytes, 8);
        let heap = FractalHeap::open(&file, sizes, at).unwrap();
        let mut got = Vec::new();
        for r in &records {
            let message = heap.object(&file, &r[..8]).unwrap();
            let name = attribute_name(&message);
            if name == "huge" {
                assert_eq!(r[0] >> 4, 1, "a huge object's id");
                assert!(message.len() > 6000);
            }
            got.push(name);
        }
        got.sort();
        assert_eq!(
            got,
            dense_names(fixture_name, "attributes"),
            "{fixture_name}"
        );
    }
    // Over 512 KiB: the root indirect block has indirect children.
    let bytes = fixture("dense_big.h5.gz");
    assert!(find_all(&bytes, b"FHIB").len() > 1);
}

#[test]
fn tiny_objects_normal_and_extended() {
    let mut bytes = fixture("dense_links.h5");
    let at = find_one(&bytes, b"FRHP");
    let (file, sizes) = whole(&bytes);
    let heap = FractalHeap::open(&file, sizes, at).unwrap();
    // Ids of 7 bytes: the length in the low 4 bits of the first byte.
    assert_eq!(heap.object(&file, b"\x23abcdXX").unwrap(), b"abcd");
    assert!(
        heap.object(&file, b"\x27abcdef").is_err(),
        "8 bytes in a 7-byte id"
    );
    // Ids of 300 bytes: 12 bits of length over two bytes.
    let a = at as usize;
    bytes[a + 5..a + 7].copy_from_slice(&300u16.to_le_bytes());
    fix_checksum(&mut bytes, a, HEADER);
    let (file, sizes) = whole(&bytes);
    let heap = FractalHeap::open(&file, sizes, at).unwrap();
    let mut id = vec![0x21, 0x03];
    id.extend((0..298).map(|i| i as u8));
    assert_eq!(heap.object(&file, &id).unwrap(), id[2..262]);
    assert!(
        heap.object(&file, &[0x22, 0x00, 1, 2]).is_err(),
        "past the id"
    );
}

#[test]
fn hostile_heaps_are_refused() {
    let refused = |r: Parsed<FractalHeap>| match r {
        Err(Fault::Bad(reason)) => reason,
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("accepted"),
    };
    // Filters on its blocks.
    let bytes = fixture("dense_links.h5");
    let at = find_one(&bytes, b"FRHP");
    let a = at as usize;
    let mut filtered = bytes.clone();
    filtered[a + 7] = 16;
    fix_checksum(&mut filtered, a, HEADER);
    let (file, sizes) = whole(&filtered);
    assert!(refused(FractalHeap::open(&file, sizes, at)).contains("I/O filters"));
    // A flipped byte in a direct block: the object comes with an error.
    let (at_links, records) = parts(&bytes, 5);
    let block = find_all(&bytes, b"FHDB")[0] as usize;
    let mut flipped = bytes.clone();
    flipped[block + 40] ^= 0x10;
    let (file, sizes) = whole(&flipped);
    let heap = FractalHeap::open(&file, sizes, at_links).unwrap();
    let errors: Vec<Fault> = records
        .iter()
        .filter_map(|r| heap.object(&file, &r[4..]).err())
        .collect();
    assert!(matches!(&errors[..], [Fault::Bad(e), ..] if e.contains("checksum")));
    // A truncated header.
    let (mut file, sizes) = whole(&bytes);
    file.size = at + 100;
    assert!(refused(FractalHeap::open(&file, sizes, at)).contains("past the end"));

    // The root indirect block listing itself as its first indirect child.
    let bytes = fixture("dense_big.h5.gz");
    let a = find_one(&bytes, b"FRHP") as usize;
    let root = u64::from_le_bytes(bytes[a + 132..a + 140].try_into().unwrap());
    let field = |at: usize, n: usize| {
        let mut v = [0u8; 8];
        v[..n].copy_from_slice(&bytes[a + at..a + at + n]);
        u64::from_le_bytes(v) as usize
    };
    // Width 4, blocks of 1 KiB to 64 KiB: 8 rows of direct blocks; 40-bit offsets.
    let (width, start, max_direct, bits) =
        (field(110, 2), field(112, 8), field(120, 8), field(128, 2));
    assert_eq!((width, start, max_direct, bits), (4, 1024, 65536, 40));
    let rows = field(140, 2);
    assert!(rows > 8, "indirect rows");
    let r = root as usize;
    let first_indirect = r + 5 + 8 + 5 + 8 * 4 * 8;
    let mut looped = bytes.clone();
    looped[first_indirect..first_indirect + 8].copy_from_slice(&root.to_le_bytes());
    fix_checksum(&mut looped, r, 5 + 8 + 5 + rows * 4 * 8 + 4);
    let (file, sizes) = whole(&looped);
    let reason = refused(FractalHeap::open(&file, sizes, a as u64));
    assert!(reason.contains("twice"), "{reason}");
}
