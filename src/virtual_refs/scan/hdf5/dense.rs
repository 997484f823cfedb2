//! Dense storage of a group's links or an object's attributes: messages kept in a fractal
//! heap, found through a version 2 B-tree indexed by name.

use super::attribute::{self, Attribute};
use super::btree2;
use super::bytes::{bad, gather, Cursor, Fault, FileBytes, Parsed, Sizes};
use super::fractal_heap::FractalHeap;
use super::link::{self, DenseStorage, Link};

/// B-tree record type of a link name index.
const LINK_NAMES: u8 = 5;
/// B-tree record type of an attribute name index.
const ATTRIBUTE_NAMES: u8 = 8;

/// The heap and the B-tree's records, both read (their missing ranges reported together).
fn open(
    file: &FileBytes,
    sizes: Sizes,
    storage: DenseStorage,
    kind: u8,
) -> Parsed<(FractalHeap, Vec<Vec<u8>>)> {
    let heap = FractalHeap::open(file, sizes, storage.heap);
    let tree = btree2::records(file, sizes, storage.name_index);
    let (heap, tree) = match (heap, tree) {
        (Ok(h), Ok(t)) => (h, t),
        (Err(Fault::Missing(mut a)), Err(Fault::Missing(b))) => {
            a.extend(b);
            return Err(Fault::Missing(a));
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    if tree.kind != kind {
        return bad(format!(
            "a name index at byte {} has records of type {} ({kind} expected)",
            storage.name_index, tree.kind
        ));
    }
    Ok((heap, tree.records))
}

/// The links of a group whose links are dense.
pub(crate) fn links(file: &FileBytes, sizes: Sizes, storage: DenseStorage) -> Parsed<Vec<Link>> {
    let (heap, records) = open(file, sizes, storage, LINK_NAMES)?;
    gather(records.iter().map(|r| {
        // Name hash (4 bytes), then the heap id.
        let id = r.get(4..).unwrap_or_default();
        let message = heap.object(file, id)?;
        link::link(&mut Cursor::new(&message, 0, sizes))
    }))
}

/// The attributes of an object whose attributes are dense.
pub(crate) fn attributes(
    file: &FileBytes,
    sizes: Sizes,
    storage: DenseStorage,
) -> Parsed<Vec<Attribute>> {
    let (heap, records) = open(file, sizes, storage, ATTRIBUTE_NAMES)?;
    gather(records.iter().map(|r| {
        // The heap id (8 bytes), then flags, creation order and name hash.
        let id = r.get(..8).unwrap_or_default();
        let message = heap.object(file, id)?;
        attribute::attribute(&mut Cursor::new(&message, 0, sizes), sizes)
    }))
}
