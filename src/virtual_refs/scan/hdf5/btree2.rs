//! Version 2 B-trees (header `BTHD`, internal nodes `BTIN`, leaves `BTLF`): every record of a
//! tree, in key order, as raw bytes for the caller to decode.
//!
//! Nodes do not store their own number of records: the header gives the root's, and each
//! internal node gives its children's, in fields whose widths follow from the node size and
//! the record size (the "number of records" field is as wide as the largest count a leaf can
//! hold; the "total records below" field, present only when the children are themselves
//! internal nodes, as wide as the largest count a child's whole subtree can hold). The tree
//! is walked one level at a time so that one fetch serves all the nodes of a level.

use std::collections::HashSet;

use super::bytes::{bad, gather, Cursor, FileBytes, Parsed, Sizes, UNDEFINED};
use super::checksum;

/// Levels a tree may have (a bound for hostile files; real trees have a handful).
const MAX_DEPTH: u16 = 32;
/// Signature, version and type before a node's records.
const NODE_PREFIX: u64 = 6;
/// Prefix and checksum of a node.
const NODE_OVERHEAD: u64 = NODE_PREFIX + 4;

/// The records of a version 2 B-tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Btree2 {
    /// The record type (5: link names, 8: attribute names, 10/11: chunks, 1: huge objects...).
    pub(crate) kind: u8,
    /// Bytes of one record.
    pub(crate) record_size: u16,
    /// Every record, in key order.
    pub(crate) records: Vec<Vec<u8>>,
}

/// The header fields a walk needs, and the widths derived from them.
struct Header {
    kind: u8,
    record_size: u64,
    depth: u16,
    root: u64,
    root_records: u64,
    total: u64,
    /// Per depth (0 = leaves): the most records a node holds, and the width of the field
    /// counting every record below a child pointer of a node one level up.
    max_records: Vec<u64>,
    cumulative_width: Vec<u8>,
    /// Width of the "number of records in child node" field.
    count_width: u8,
}

/// Bytes needed to hold `n` (at least 1): HDF5's `H5VM_limit_enc_size`.
fn encoded_width(n: u64) -> u8 {
    // floor(log2(n)) / 8 + 1, with log2(0) taken as 0.
    let log2 = 63u32.saturating_sub(n.leading_zeros());
    (log2 / 8 + 1) as u8
}

fn header(file: &FileBytes, sizes: Sizes, addr: u64) -> Parsed<Header> {
    let size = 22 + u64::from(sizes.offsets) + u64::from(sizes.lengths);
    let bytes = file.get(addr, size)?;
    let mut c = Cursor::new(bytes, addr, sizes);
    c.signature(b"BTHD", "version 2 B-tree header")?;
    let version = c.u8()?;
    if version != 0 {
        return bad(format!(
            "the version 2 B-tree header at byte {addr} has version {version} (0 expected)"
        ));
    }
    let kind = c.u8()?;
    let node_size = u64::from(c.u32()?);
    let record_size = u64::from(c.u16()?);
    let depth = c.u16()?;
    c.skip(2)?; // split and merge percents
    let root = c.address_field()?;
    let root_records = u64::from(c.u16()?);
    let total = c.length()?;
    checksum::verify(bytes, "version 2 B-tree header", addr)?;
    if record_size == 0 {
        return bad(format!(
            "the version 2 B-tree at byte {addr} has records of 0 bytes"
        ));
    }
    if depth > MAX_DEPTH {
        return bad(format!(
            "the version 2 B-tree at byte {addr} has depth {depth} (at most {MAX_DEPTH} read)"
        ));
    }
    let too_small = || {
        bad(format!(
            "the version 2 B-tree at byte {addr} has nodes of {node_size} bytes, too small for \
             its records of {record_size} bytes"
        ))
    };
    // Leaves: as many records as fit after the prefix and checksum.
    let Some(leaf_max) = node_size
        .checked_sub(NODE_OVERHEAD)
        .map(|room| room / record_size)
        .filter(|&n| n > 0)
    else {
        return too_small();
    };
    let count_width = encoded_width(leaf_max);
    let mut max_records = vec![leaf_max];
    let mut cumulative = vec![leaf_max];
    let mut cumulative_width = vec![0u8];
    let offsets = u64::from(sizes.offsets);
    for d in 1..=usize::from(depth) {
        let below = cumulative_width.get(d - 1).copied().unwrap_or(0);
        let pointer = offsets + u64::from(count_width) + u64::from(below);
        let Some(max) = node_size
            .checked_sub(NODE_OVERHEAD + pointer)
            .map(|room| room / (record_size + pointer))
            .filter(|&n| n > 0)
        else {
            return too_small();
        };
        let child_cumulative = cumulative.get(d - 1).copied().unwrap_or(0);
        let Some(cum) = (max + 1)
            .checked_mul(child_cumulative)
            .and_then(|n| n.checked_add(max))
        else {
            return bad(format!(
                "the version 2 B-tree at byte {addr} is too deep for its node size (depth \
                 {depth})"
            ));
        };
        max_records.push(max);
        cumulative.push(cum);
        cumulative_width.push(encoded_width(cum));
    }
    Ok(Header {
        kind,
        record_size,
        depth,
        root,
        root_records,
        total,
        max_records,
        cumulative_width,
        count_width,
    })
}

/// A node not read yet: where, how many records, at which depth (0 = leaf).
#[derive(Clone, Copy)]
struct Pending {
    addr: u64,
    records: u64,
    depth: u16,
}

/// A record, or a subtree still to read, in key order.
enum Item<'a> {
    Record(&'a [u8]),
    Node(Pending),
}

/// A node's records and children, interleaved in key order.
fn node<'a>(file: &'a FileBytes, sizes: Sizes, h: &Header, n: Pending) -> Parsed<Vec<Item<'a>>> {
    let addr = n.addr;
    let (signature, what) = if n.depth == 0 {
        (b"BTLF", "version 2 B-tree leaf")
    } else {
        (b"BTIN", "version 2 B-tree internal node")
    };
    let max = h
        .max_records
        .get(usize::from(n.depth))
        .copied()
        .unwrap_or(0);
    if n.records > max {
        return bad(format!(
            "the {what} at byte {addr} is said to hold {} records, more than its {max}",
            n.records
        ));
    }
    let below = if n.depth > 1 {
        h.cumulative_width
            .get(usize::from(n.depth) - 1)
            .copied()
            .unwrap_or(0)
    } else {
        0
    };
    let pointer = u64::from(sizes.offsets) + u64::from(h.count_width) + u64::from(below);
    // Bounded by the node size (checked above): no overflow.
    let pointers = if n.depth > 0 {
        (n.records + 1) * pointer
    } else {
        0
    };
    let len = NODE_OVERHEAD + n.records * h.record_size + pointers;
    let bytes = file.get(addr, len)?;
    let mut c = Cursor::new(bytes, addr, sizes);
    c.signature(signature, what)?;
    let version = c.u8()?;
    if version != 0 {
        return bad(format!(
            "the {what} at byte {addr} has version {version} (0 expected)"
        ));
    }
    let kind = c.u8()?;
    if kind != h.kind {
        return bad(format!(
            "the {what} at byte {addr} has records of type {kind}, its tree of type {}",
            h.kind
        ));
    }
    checksum::verify(bytes, what, addr)?;
    let mut records = Vec::new();
    for _ in 0..n.records {
        records.push(c.take(h.record_size as usize)?);
    }
    if n.depth == 0 {
        return Ok(records.into_iter().map(Item::Record).collect());
    }
    let mut out = Vec::with_capacity(records.len() * 2 + 1);
    let mut records = records.into_iter();
    for i in 0..=n.records {
        let child = c.address_field()?;
        let count = c.uint(usize::from(h.count_width))?;
        c.skip(usize::from(below))?;
        if child == UNDEFINED {
            return bad(format!(
                "the {what} at byte {addr} has an undefined child (pointer {i})"
            ));
        }
        out.push(Item::Node(Pending {
            addr: child,
            records: count,
            depth: n.depth - 1,
        }));
        if let Some(r) = records.next() {
            out.push(Item::Record(r));
        }
    }
    Ok(out)
}

/// Every record of the version 2 B-tree whose header is at `addr`, in key order.
///
/// One level of nodes is read per fetch round: a [`Fault::Missing`](super::bytes::Fault)
/// names every node of the deepest level reached. Checksums are verified; a node reached
/// twice (a cycle or a shared subtree), a count that does not fit its node, or a record
/// count other than the header's is refused.
pub(crate) fn records(file: &FileBytes, sizes: Sizes, addr: u64) -> Parsed<Btree2> {
    let h = header(file, sizes, addr)?;
    let done = |records: Vec<Vec<u8>>| Btree2 {
        kind: h.kind,
        record_size: h.record_size as u16,
        records,
    };
    if h.root == UNDEFINED {
        if h.total != 0 {
            return bad(format!(
                "the version 2 B-tree at byte {addr} has {} records but no root",
                h.total
            ));
        }
        return Ok(done(Vec::new()));
    }
    let mut seen = HashSet::from([addr]);
    let mut items = vec![Item::Node(Pending {
        addr: h.root,
        records: h.root_records,
        depth: h.depth,
    })];
    // Each round replaces the nodes of one level by their contents: depth + 1 rounds.
    for _ in 0..=h.depth {
        let pending: Vec<Pending> = items
            .iter()
            .filter_map(|i| match i {
                Item::Node(p) => Some(*p),
                Item::Record(_) => None,
            })
            .collect();
        for p in &pending {
            if !seen.insert(p.addr) {
                return bad(format!(
                    "the version 2 B-tree at byte {addr} reaches its node at byte {} twice \
                     (a cycle)",
                    p.addr
                ));
            }
        }
        let mut expanded = gather(pending.iter().map(|&p| node(file, sizes, &h, p)))?.into_iter();
        let mut next = Vec::new();
        for item in items {
            match item {
                Item::Record(r) => next.push(Item::Record(r)),
                Item::Node(_) => next.extend(expanded.next().unwrap_or_default()),
            }
        }
        if next.len() as u64 > h.total.saturating_mul(2).saturating_add(1) {
            return bad(format!(
                "the version 2 B-tree at byte {addr} holds more than its {} records",
                h.total
            ));
        }
        items = next;
    }
    let mut records = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Item::Record(r) => records.push(r.to_vec()),
            Item::Node(p) => {
                return bad(format!(
                    "the version 2 B-tree at byte {addr} has a node at byte {} below its \
                     leaves",
                    p.addr
                ))
            }
        }
    }
    if records.len() as u64 != h.total {
        return bad(format!(
            "the version 2 B-tree at byte {addr} holds {} records, its header says {}",
            records.len(),
            h.total
        ));
    }
    Ok(done(records))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtual_refs::scan::hdf5::bytes::Fault;
    use crate::virtual_refs::scan::hdf5::chunk_index::test_support::{
        by_rounds, find_all, find_one, fix_checksum, fixture, whole,
    };

    fn refused(bytes: &[u8], size: usize, at: u64) -> String {
        let (mut file, sizes) = whole(bytes);
        file.size = size as u64;
        match records(&file, sizes, at) {
            Err(Fault::Bad(reason)) => reason,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_tree_of_depth_two_gives_every_record_in_key_order() {
        // 601 attribute names: records of 17 bytes in nodes of 512, a tree of depth 2 (its
        // root's child pointers have 2-byte totals, its children's none).
        let bytes = fixture("dense_attrs.h5.gz");
        let (file, sizes) = whole(&bytes);
        let at = find_all(&bytes, b"BTHD")
            .into_iter()
            .find(|&a| bytes[a as usize + 5] == 8)
            .unwrap();
        assert_eq!(bytes[at as usize + 12], 2, "depth");
        let tree = records(&file, sizes, at).unwrap();
        assert_eq!((tree.kind, tree.record_size), (8, 17));
        assert_eq!(tree.records.len(), 601);
        // Keyed by the name hash (the last 4 bytes).
        let hashes: Vec<u32> = tree
            .records
            .iter()
            .map(|r| u32::from_le_bytes(r[13..17].try_into().unwrap()))
            .collect();
        assert!(hashes.windows(2).all(|w| w[0] <= w[1]));

        let (again, rounds) = by_rounds(&bytes, at as usize, |f| records(f, sizes, at));
        assert_eq!(again, tree);
        let counts: Vec<usize> = rounds.iter().map(Vec::len).collect();
        assert_eq!(counts[..2], [1, 1], "header, root");
        assert!(
            counts.len() == 4 && counts[2] > 1 && counts[3] > counts[2],
            "{counts:?}"
        );
    }

    #[test]
    fn hostile_trees_are_refused() {
        // Depth 1: a root of `n` records of 24 bytes and n + 1 pointers of 8 + 1 bytes.
        let bytes = fixture("bt_2d.h5");
        let at = find_one(&bytes, b"BTHD");
        let h = at as usize;
        let root = u64::from_le_bytes(bytes[h + 16..h + 24].try_into().unwrap());
        let n = usize::from(u16::from_le_bytes([bytes[h + 24], bytes[h + 25]]));
        let r = root as usize;
        let root_len = 6 + n * 24 + (n + 1) * 9 + 4;
        let leaf = u64::from_le_bytes(bytes[r + 6 + n * 24..r + 14 + n * 24].try_into().unwrap());
        let l = leaf as usize;

        // A child pointing back to the root.
        let mut looped = bytes.clone();
        looped[r + 6 + n * 24..r + 14 + n * 24].copy_from_slice(&root.to_le_bytes());
        fix_checksum(&mut looped, r, root_len);
        assert!(refused(&looped, bytes.len(), at).contains("twice"));
        // A flipped byte in a leaf.
        let mut flipped = bytes.clone();
        flipped[l + 10] ^= 0x01;
        assert!(refused(&flipped, bytes.len(), at).contains("checksum"));
        // A leaf cut by the end of the file.
        assert!(refused(&bytes, l + 40, at).contains("past the end"));
        // A child said to hold more records than a leaf can.
        let mut crowded = bytes.clone();
        crowded[r + 14 + n * 24] = 200;
        fix_checksum(&mut crowded, r, root_len);
        assert!(refused(&crowded, bytes.len(), at).contains("more than"));
        // A header whose total disagrees with the records found.
        let mut total = bytes.clone();
        total[h + 26] ^= 1;
        fix_checksum(&mut total, h, 22 + 8 + 8);
        assert!(refused(&total, bytes.len(), at).contains("header says"));
    }
}
