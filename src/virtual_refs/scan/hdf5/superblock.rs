//! The superblock: the sizes of addresses and lengths, and where the root group is.
//!
//! Versions 0 and 1 name the root group by a symbol table entry (whose scratch pad may hold
//! the group's B-tree and local heap); versions 2 and 3 by its object header address, and
//! carry a checksum.

use super::bytes::{bad, Cursor, FileBytes, Parsed, Sizes};
use super::checksum;

/// The HDF5 signature.
pub(crate) const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// What the superblock says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Superblock {
    /// Its version (0 to 3).
    pub(crate) version: u8,
    /// Sizes of addresses and lengths, and the base address.
    pub(crate) sizes: Sizes,
    /// The root group's object header.
    pub(crate) root: u64,
}

/// Reads the superblock at `at` (0, or 512, 1024, ... after a user block).
pub(crate) fn read(file: &FileBytes, at: u64) -> Parsed<Superblock> {
    // Version 0 with 8-byte fields is the longest: 8 + 16 + 4 * 8 + 40 bytes.
    let head = file.get_up_to(at, 128)?;
    if !head.starts_with(SIGNATURE) {
        return bad("no HDF5 signature at the start of the file");
    }
    let probe = Sizes {
        offsets: 8,
        lengths: 8,
        base: 0,
    };
    let mut c = Cursor::new(head, at, probe);
    c.skip(8)?;
    let version = c.u8()?;
    let sizes_at = match version {
        0 | 1 => 13,
        2 | 3 => 9,
        other => return bad(format!("superblock version {other} is not known")),
    };
    let mut sizes = Sizes {
        offsets: *head.get(sizes_at).unwrap_or(&0),
        lengths: *head.get(sizes_at + 1).unwrap_or(&0),
        base: 0,
    };
    for (what, n) in [("addresses", sizes.offsets), ("lengths", sizes.lengths)] {
        if !matches!(n, 2 | 4 | 8) {
            return bad(format!(
                "the superblock gives {n}-byte {what} (2, 4 or 8 expected)"
            ));
        }
    }
    let o = usize::from(sizes.offsets);
    if version <= 1 {
        // Versions, sizes, reserved byte, leaf and internal K, consistency flags.
        let mut c = Cursor::new(head, at, sizes);
        c.seek(8 + 8 + 4 + 4)?;
        if version == 1 {
            c.skip(4)?; // indexed storage K, reserved
        }
        let base = c.address_field()?;
        c.skip(3 * o)?; // free space, end of file, driver information
        c.skip(o)?; // root entry: link name offset
        sizes.base = base;
        let mut c2 = Cursor::new(head, at, sizes);
        c2.seek(c.pos())?;
        let root = c2.address_field()?;
        Ok(Superblock {
            version,
            sizes,
            root,
        })
    } else {
        let total = 8 + 4 + 4 * o + 4;
        let whole = file.get(at, total as u64)?;
        checksum::verify(whole, "superblock", at)?;
        let mut c = Cursor::new(whole, at, sizes);
        c.seek(12)?;
        let base = c.address_field()?;
        c.skip(2 * o)?; // superblock extension, end of file
        sizes.base = base;
        let mut c2 = Cursor::new(whole, at, sizes);
        c2.seek(c.pos())?;
        let root = c2.address_field()?;
        Ok(Superblock {
            version,
            sizes,
            root,
        })
    }
}
