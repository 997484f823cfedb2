//! Transaction logs: what one commit changed, for diff, status and conflict detection.

use serde::{Deserialize, Serialize};

use super::manifest::ChunkCoord;
use super::path::NodePath;
use super::varint;
use crate::error::{Error, Result};

/// What happened to a node in a commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeChange {
    /// The node was created.
    Created,
    /// The node's metadata changed (attributes, shape, ...).
    Updated,
    /// The node was deleted (with everything below it).
    Deleted,
}

/// The changes of one commit relative to its parent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxLog {
    /// Nodes created, updated or deleted, sorted by path.
    pub nodes: Vec<(NodePath, NodeChange)>,
    /// Per array (sorted by path): the chunks written or deleted, sorted.
    pub chunks: Vec<(NodePath, CoordList)>,
}

/// A sorted list of chunk coordinates stored column-wise: per coordinate, per dimension, the
/// zigzag varint of the difference to the previous coordinate (as a manifest's `coords`
/// column), about a byte per value for neighbouring chunks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordList {
    /// Rank of the coordinates.
    pub ndim: u32,
    /// Number of coordinates.
    pub count: u64,
    /// The differences, coordinate by coordinate.
    #[serde(with = "serde_bytes")]
    pub deltas: Vec<u8>,
}

impl CoordList {
    /// Appends a coordinate; the caller keeps them sorted and of one rank.
    pub fn push(&mut self, coord: &[u64], previous: Option<&[u64]>) {
        if self.count == 0 {
            self.ndim = coord.len() as u32;
        }
        for (d, &c) in coord.iter().enumerate() {
            let p = previous.and_then(|p| p.get(d)).copied().unwrap_or(0);
            varint::put_i64(&mut self.deltas, c.wrapping_sub(p) as i64);
        }
        self.count += 1;
    }

    /// A list of the given coordinates, which must be sorted and of one rank.
    #[cfg(test)]
    pub fn from_sorted<'a>(coords: impl IntoIterator<Item = &'a [u64]>) -> Self {
        let mut list = CoordList::default();
        let mut previous: Option<&[u64]> = None;
        for c in coords {
            list.push(c, previous);
            previous = Some(c);
        }
        list
    }

    /// True when the list is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The coordinates in order. Fails on a damaged list (truncated, or more values announced
    /// than bytes present).
    pub fn iter(&self) -> impl Iterator<Item = Result<ChunkCoord>> + '_ {
        let ndim = self.ndim as usize;
        // Every value takes at least one byte; rank 0 has a single (empty) coordinate.
        let plausible = self
            .count
            .checked_mul(ndim as u64)
            .is_some_and(|v| v <= self.deltas.len() as u64)
            && (ndim > 0 || self.count <= 1);
        let mut reader = varint::Reader::new(&self.deltas, "txlog coords");
        let mut current = vec![0u64; ndim];
        let mut remaining = if plausible { self.count } else { 0 };
        let mut failed = !plausible;
        std::iter::from_fn(move || {
            if failed {
                failed = false;
                return Some(Err(Error::corrupt(
                    "<transaction log>",
                    "a coordinate list announces more values than it holds",
                )));
            }
            if remaining == 0 {
                return None;
            }
            remaining -= 1;
            for c in current.iter_mut() {
                match reader.i64() {
                    Ok(d) => *c = c.wrapping_add(d as u64),
                    Err(e) => {
                        remaining = 0;
                        return Some(Err(e));
                    }
                }
            }
            Some(Ok(current.clone()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::envelope::{decode, encode, ObjectKind};

    #[test]
    fn txlog_round_trip() {
        let log = TxLog {
            nodes: vec![(NodePath::new("a").unwrap(), NodeChange::Updated)],
            chunks: vec![(
                NodePath::new("a").unwrap(),
                CoordList::from_sorted([&[0u64, 1][..], &[2, 3]]),
            )],
        };
        let bytes = encode(ObjectKind::TxLog, &log).unwrap();
        let back: TxLog = decode("t", &bytes, ObjectKind::TxLog).unwrap();
        assert_eq!(back, log);
        assert!(decode::<TxLog>("t", &bytes[..bytes.len() - 1], ObjectKind::TxLog).is_err());
        let coords: Vec<ChunkCoord> = back.chunks[0].1.iter().map(|c| c.unwrap()).collect();
        assert_eq!(coords, vec![vec![0, 1], vec![2, 3]]);
    }

    #[test]
    fn damaged_coordinate_lists_fail() {
        let mut list = CoordList::from_sorted([&[5u64][..], &[u64::MAX]]);
        list.count = 3;
        assert!(list.iter().any(|c| c.is_err()));
        list.count = 1_000_000;
        assert!(list.iter().next().unwrap().is_err());
        // Rank 0 with a huge count would otherwise yield empty coordinates for ever.
        let empty = CoordList {
            ndim: 0,
            count: u64::MAX,
            deltas: Vec::new(),
        };
        assert!(empty.iter().next().unwrap().is_err());
    }
}
