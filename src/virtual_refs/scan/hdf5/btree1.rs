//! Version 1 B-trees: the children of a group (node type 0) and the chunks of a dataset
//! (node type 1), walked one level at a time so that one fetch serves a whole level.

use std::collections::HashSet;

use super::bytes::{bad, gather, Cursor, FileBytes, Parsed, Sizes, UNDEFINED};
use super::chunk_index::ChunkEntry;

/// Levels a tree may have (a bound for hostile files).
const MAX_DEPTH: u8 = 32;
/// Entries one walk may return (a bound for hostile files).
const MAX_ENTRIES: usize = 1 << 26;

/// One leaf entry: its key (the bytes before the child) and the child's address.
struct Leaf<'a> {
    key: &'a [u8],
    child: u64,
}

/// A node's children with the key before each, and its level.
fn node<'a>(
    file: &'a FileBytes,
    sizes: Sizes,
    addr: u64,
    node_type: u8,
    key_size: usize,
) -> Parsed<(u8, Vec<Leaf<'a>>)> {
    let o = usize::from(sizes.offsets);
    let head_len = 8 + 2 * o;
    let head = file.get(addr, head_len as u64)?;
    let mut c = Cursor::new(head, addr, sizes);
    c.signature(b"TREE", "version 1 B-tree node")?;
    let kind = c.u8()?;
    if kind != node_type {
        return bad(format!(
            "the B-tree node at byte {addr} has type {kind} ({node_type} expected)"
        ));
    }
    let level = c.u8()?;
    let used = usize::from(c.u16()?);
    let body_len = used * (key_size + o) + key_size;
    let whole = file.get(addr, (head_len + body_len) as u64)?;
    let mut c = Cursor::new(whole, addr, sizes);
    c.seek(head_len)?;
    let mut out = Vec::with_capacity(used);
    for _ in 0..used {
        let key = c.take(key_size)?;
        let child = c.address_field()?;
        out.push(Leaf { key, child });
    }
    Ok((level, out))
}

/// Every leaf entry (key, child address) of the tree at `root`, in key order.
fn leaves(
    file: &FileBytes,
    sizes: Sizes,
    root: u64,
    node_type: u8,
    key_size: usize,
) -> Parsed<Vec<(&[u8], u64)>> {
    let mut seen = HashSet::from([root]);
    let mut level_nodes = vec![root];
    let mut expected_level: Option<u8> = None;
    for _ in 0..=MAX_DEPTH {
        let nodes = gather(
            level_nodes
                .iter()
                .map(|&a| node(file, sizes, a, node_type, key_size)),
        )?;
        let mut next = Vec::new();
        let mut out = Vec::new();
        let this_level = nodes.first().map(|(level, _)| *level);
        if expected_level.is_none() {
            expected_level = this_level;
        }
        for (level, children) in nodes {
            if let Some(expected) = expected_level {
                if level != expected {
                    return bad(format!(
                        "a version 1 B-tree has nodes of level {level} where {expected} was \
                         expected"
                    ));
                }
            }
            for leaf in children {
                if level == 0 {
                    out.push((leaf.key, leaf.child));
                    if out.len() > MAX_ENTRIES {
                        return bad("a version 1 B-tree has too many entries");
                    }
                } else {
                    if leaf.child == UNDEFINED || !seen.insert(leaf.child) {
                        return bad(format!(
                            "a version 1 B-tree node at byte {} is reached twice: a cycle",
                            leaf.child
                        ));
                    }
                    next.push(leaf.child);
                }
            }
        }
        expected_level = this_level.and_then(|l| l.checked_sub(1));
        if next.is_empty() {
            return Ok(out);
        }
        if !out.is_empty() {
            return bad("a version 1 B-tree mixes leaves and inner nodes on one level");
        }
        level_nodes = next;
    }
    bad(format!("a version 1 B-tree deeper than {MAX_DEPTH} levels"))
}

/// The symbol table nodes of a group's B-tree at `root`.
pub(crate) fn group_nodes(file: &FileBytes, sizes: Sizes, root: u64) -> Parsed<Vec<u64>> {
    Ok(leaves(file, sizes, root, 0, usize::from(sizes.lengths))?
        .into_iter()
        .map(|(_, child)| child)
        .collect())
}

/// The chunks of a dataset of `rank` dimensions and chunk shape `chunk` indexed by the tree
/// at `root`.
pub(crate) fn chunks(
    file: &FileBytes,
    sizes: Sizes,
    root: u64,
    chunk: &[u64],
) -> Parsed<Vec<ChunkEntry>> {
    let rank = chunk.len();
    let key_size = 8 + 8 * (rank + 1);
    let mut out = Vec::new();
    for (key, address) in leaves(file, sizes, root, 1, key_size)? {
        let mut c = Cursor::new(key, 0, sizes);
        let size = u64::from(c.u32()?);
        let filter_mask = c.u32()?;
        let mut scaled = Vec::with_capacity(rank);
        for &extent in chunk {
            let offset = c.u64()?;
            if extent == 0 || offset % extent != 0 {
                return bad(format!(
                    "a chunk at byte {address} starts at element {offset}, not on a chunk \
                     boundary of {extent}"
                ));
            }
            scaled.push(offset / extent);
        }
        out.push(ChunkEntry {
            scaled,
            address,
            size,
            filter_mask,
        });
    }
    Ok(out)
}
