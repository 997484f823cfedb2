//! The bytes of an HDF5 file known so far, and the cursor that decodes them.
//!
//! The parser never waits for a read. It runs over the pieces fetched so far; a structure it
//! needs that is not there yet is a [`Fault::Missing`] naming the byte ranges, and sibling
//! structures keep being parsed so that one pass gathers every range of a level (all the
//! children of a B-tree node, every object header of a group). The driver fetches the
//! gathered ranges in one batch and runs the parser again: the number of round trips is the
//! depth of the file's metadata, not the number of its objects.

use std::collections::BTreeMap;
use std::ops::Range;

use bytes::Bytes;

/// Why a parse stopped.
#[derive(Debug)]
pub(crate) enum Fault {
    /// These byte ranges of the file are needed and were not fetched yet.
    Missing(Vec<Range<u64>>),
    /// The file is malformed, or uses something floe refuses: the reason.
    Bad(String),
}

impl Fault {
    /// One missing range.
    pub(crate) fn missing(range: Range<u64>) -> Fault {
        Fault::Missing(std::iter::once(range).collect())
    }
}

/// A parse result.
pub(crate) type Parsed<T> = Result<T, Fault>;

/// A [`Fault::Bad`] with `reason`.
pub(crate) fn bad<T>(reason: impl Into<String>) -> Parsed<T> {
    Err(Fault::Bad(reason.into()))
}

/// Every item's result: the values when all succeeded; else the first malformation, or all
/// the missing ranges of every item together (so that one fetch serves them all).
pub(crate) fn gather<T>(items: impl IntoIterator<Item = Parsed<T>>) -> Parsed<Vec<T>> {
    let mut values = Vec::new();
    let mut missing = Vec::new();
    for item in items {
        match item {
            Ok(v) => values.push(v),
            Err(Fault::Missing(ranges)) => missing.extend(ranges),
            Err(bad) => return Err(bad),
        }
    }
    if missing.is_empty() {
        Ok(values)
    } else {
        Err(Fault::Missing(missing))
    }
}

/// The undefined address: every bit set, whatever the size of offsets.
pub(crate) const UNDEFINED: u64 = u64::MAX;

/// The fetched pieces of one file, merged so that no two overlap or touch.
pub(crate) struct FileBytes {
    /// The file's size.
    pub(crate) size: u64,
    pieces: BTreeMap<u64, Bytes>,
    /// Bytes held (a budget for hostile files).
    held: u64,
}

impl FileBytes {
    /// No bytes yet of a file of `size` bytes.
    pub(crate) fn new(size: u64) -> Self {
        FileBytes {
            size,
            pieces: BTreeMap::new(),
            held: 0,
        }
    }

    /// Bytes held.
    pub(crate) fn held(&self) -> u64 {
        self.held
    }

    /// Adds `bytes`, read at `start`, merging it with the pieces it overlaps or touches.
    pub(crate) fn insert(&mut self, start: u64, bytes: Bytes) {
        let end = start + bytes.len() as u64;
        // Pieces that overlap or touch [start, end): those starting at or before `end` whose
        // end reaches `start`.
        let touching: Vec<(u64, Bytes)> = self
            .pieces
            .range(..=end)
            .rev()
            .take_while(|(&s, b)| s + b.len() as u64 >= start)
            .map(|(&s, b)| (s, b.clone()))
            .collect();
        if touching.is_empty() {
            self.held += bytes.len() as u64;
            self.pieces.insert(start, bytes);
            return;
        }
        let mut lo = start;
        let mut hi = end;
        for (s, b) in &touching {
            self.pieces.remove(s);
            self.held -= b.len() as u64;
            lo = lo.min(*s);
            hi = hi.max(s + b.len() as u64);
        }
        let mut merged = vec![0u8; (hi - lo) as usize];
        for (s, b) in touching.iter().chain(std::iter::once(&(start, bytes))) {
            let at = (s - lo) as usize;
            merged[at..at + b.len()].copy_from_slice(b);
        }
        self.held += merged.len() as u64;
        self.pieces.insert(lo, Bytes::from(merged));
    }

    /// `len` bytes at `addr`: the bytes, [`Fault::Missing`] when they were not fetched yet,
    /// [`Fault::Bad`] when they lie past the end of the file.
    pub(crate) fn get(&self, addr: u64, len: u64) -> Parsed<&[u8]> {
        let end = match addr.checked_add(len) {
            Some(end) if end <= self.size => end,
            _ => {
                return bad(format!(
                    "a structure at byte {addr} of {len} bytes lies past the end of the file \
                     ({} bytes)",
                    self.size
                ))
            }
        };
        if let Some((&start, piece)) = self.pieces.range(..=addr).next_back() {
            if start + piece.len() as u64 >= end {
                let from = (addr - start) as usize;
                return Ok(&piece[from..from + len as usize]);
            }
        }
        Err(Fault::missing(addr..end))
    }

    /// Up to `len` bytes at `addr`, fewer at the end of the file: for structures whose size
    /// is learnt from their own first bytes.
    pub(crate) fn get_up_to(&self, addr: u64, len: u64) -> Parsed<&[u8]> {
        let len = len.min(self.size.saturating_sub(addr));
        if len == 0 {
            return bad(format!(
                "a structure starts at byte {addr}, past the end of the file ({} bytes)",
                self.size
            ));
        }
        self.get(addr, len)
    }
}

/// The sizes of addresses and lengths of a file, from its superblock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sizes {
    /// Bytes of an address (2, 4 or 8).
    pub(crate) offsets: u8,
    /// Bytes of a length (2, 4 or 8).
    pub(crate) lengths: u8,
    /// The base address every address is relative to.
    pub(crate) base: u64,
}

/// A little-endian decoder over one structure's bytes, naming its position in errors.
#[derive(Clone)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// The file address of `buf[0]`.
    origin: u64,
    pub(crate) sizes: Sizes,
}

impl<'a> Cursor<'a> {
    /// A cursor over `buf`, which starts at file address `origin`.
    pub(crate) fn new(buf: &'a [u8], origin: u64, sizes: Sizes) -> Self {
        Cursor {
            buf,
            pos: 0,
            origin,
            sizes,
        }
    }

    /// The file address of the next byte.
    pub(crate) fn address(&self) -> u64 {
        self.origin + self.pos as u64
    }

    /// Position from the start of the buffer.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The whole buffer.
    pub(crate) fn buffer(&self) -> &'a [u8] {
        self.buf
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Parsed<&'a [u8]> {
        if n > self.remaining() {
            return bad(format!(
                "a structure at byte {} is truncated ({n} bytes needed, {} left)",
                self.address(),
                self.remaining()
            ));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Skips `n` bytes.
    pub(crate) fn skip(&mut self, n: usize) -> Parsed<()> {
        self.take(n).map(|_| ())
    }

    /// Moves to `pos` from the start of the buffer.
    pub(crate) fn seek(&mut self, pos: usize) -> Parsed<()> {
        if pos > self.buf.len() {
            return bad(format!(
                "a structure at byte {} points past its end",
                self.origin
            ));
        }
        self.pos = pos;
        Ok(())
    }

    pub(crate) fn u8(&mut self) -> Parsed<u8> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Parsed<u16> {
        Ok(self.uint(2)? as u16)
    }

    pub(crate) fn u32(&mut self) -> Parsed<u32> {
        Ok(self.uint(4)? as u32)
    }

    pub(crate) fn u64(&mut self) -> Parsed<u64> {
        self.uint(8)
    }

    /// An unsigned little-endian integer of `n` bytes (at most 8).
    pub(crate) fn uint(&mut self, n: usize) -> Parsed<u64> {
        if n > 8 {
            return bad(format!("an integer field of {n} bytes"));
        }
        Ok(self
            .take(n)?
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// An address: [`UNDEFINED`] when every bit is set, else relative to the base address.
    pub(crate) fn address_field(&mut self) -> Parsed<u64> {
        let n = usize::from(self.sizes.offsets);
        let raw = self.uint(n)?;
        if n == 8 && raw == u64::MAX || n < 8 && raw == (1u64 << (8 * n)) - 1 {
            return Ok(UNDEFINED);
        }
        raw.checked_add(self.sizes.base)
            .ok_or_else(|| Fault::Bad(format!("address {raw} overflows")))
    }

    /// A length field.
    pub(crate) fn length(&mut self) -> Parsed<u64> {
        self.uint(usize::from(self.sizes.lengths))
    }

    /// Expects `signature` next.
    pub(crate) fn signature(&mut self, signature: &[u8; 4], what: &str) -> Parsed<()> {
        let at = self.address();
        if self.take(4)? != signature {
            return bad(format!(
                "no {what} signature `{}` at byte {at}",
                String::from_utf8_lossy(signature)
            ));
        }
        Ok(())
    }
}

/// Reads a byte string up to its first NUL.
pub(crate) fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_merge_and_serve_ranges_across_them() {
        let mut file = FileBytes::new(100);
        file.insert(10, Bytes::from(vec![1u8; 10]));
        assert!(matches!(file.get(5, 10), Err(Fault::Missing(_))));
        file.insert(0, Bytes::from(vec![2u8; 10]));
        assert_eq!(file.get(5, 10).unwrap(), &[2, 2, 2, 2, 2, 1, 1, 1, 1, 1]);
        file.insert(30, Bytes::from(vec![3u8; 5]));
        file.insert(15, Bytes::from(vec![4u8; 20]));
        assert_eq!(file.get(0, 35).unwrap().len(), 35);
        assert_eq!(file.held(), 35);
        assert!(matches!(file.get(90, 20), Err(Fault::Bad(_))));
    }

    #[test]
    fn gathering_keeps_every_missing_range() {
        let items: Vec<Parsed<u8>> =
            vec![Ok(1), Err(Fault::missing(0..4)), Err(Fault::missing(8..9))];
        match gather(items) {
            Err(Fault::Missing(r)) => assert_eq!(r, vec![0..4, 8..9]),
            other => panic!("{other:?}"),
        }
    }
}
