//! The in-memory lookup index of one manifest shard.
//!
//! A shard holds up to a few tens of thousands of chunk references and is searched once per
//! chunk read, so its layout is flat: the coordinates of all entries in one row-major
//! `Vec<u64>` (entry `i` is `coords[i * ndim..(i + 1) * ndim]`, sorted), a parallel vector of
//! fixed-size references, a dictionary of the chunk objects they point into and one buffer
//! holding every inline chunk. An entry costs `8 * ndim + 24` bytes. A lookup is a binary
//! search over contiguous memory, or, when the entries fill their bounding box (a shard
//! written in full, the common case), a row-major offset computation checked by one compare.

use std::cmp::Ordering;
use std::collections::HashMap;

use bytes::Bytes;

use crate::error::{Error, Result};
use std::sync::Arc;

use crate::format::manifest::{
    ChunkRef, ManifestColumns, ManifestEntry, StoredRef, VirtualChunkRef, VirtualSource,
};
use crate::id::ChunkObjectId;

/// The live chunk references of one shard, sorted by coordinates.
///
/// Every entry has the same rank `ndim`; entries of another rank given to the constructors
/// are ignored (only a damaged manifest can hold them, and no lookup of the shard's rank could
/// match them).
#[derive(Debug, Default)]
pub(crate) struct ShardIndex {
    ndim: usize,
    /// Row-major coordinates, `refs.len() * ndim` values.
    coords: Vec<u64>,
    refs: Vec<CompactRef>,
    /// The chunk objects that native references point into, by slot.
    objects: Vec<ChunkObjectId>,
    /// The files that virtual references point into, by slot.
    sources: Vec<Arc<VirtualSource>>,
    /// Every inline chunk, concatenated (possibly with unreferenced bytes in between).
    inline: Bytes,
    /// Set when the entries fill their bounding box exactly.
    dense: Option<DenseBox>,
}

/// The bounding box of entries that fill it: entry `i` is the `i`-th cell of the box in
/// row-major order.
#[derive(Debug, PartialEq, Eq)]
struct DenseBox {
    lo: Vec<u64>,
    extent: Vec<u64>,
}

/// A chunk reference without its coordinates, 24 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CompactRef {
    /// Bytes `start..start + len` of the index's inline buffer.
    Inline { start: usize, len: usize },
    /// A byte range of the object in slot `slot` of the index's dictionary.
    Native { slot: u32, offset: u64, length: u64 },
    /// A byte range of the file in slot `slot` of the index's source dictionary.
    Virtual { slot: u32, offset: u64, length: u64 },
}

impl ShardIndex {
    /// Builds an index from sorted entries (tombstones, which bases never hold, are skipped).
    pub(crate) fn from_base(entries: Vec<ManifestEntry>) -> Result<Self> {
        Self::overlay(None, &entries)
    }

    /// Decodes a manifest shard straight into an index (tombstones are skipped), without
    /// materialising the entries one by one. The object dictionary and the inline buffer of
    /// `columns` are taken over as they are.
    pub(crate) fn from_columns(columns: ManifestColumns) -> Result<Self> {
        let ndim = columns.ndim as usize;
        if u32::try_from(columns.objects.len()).is_err()
            || u32::try_from(columns.sources.len()).is_err()
        {
            return Err(too_many_objects());
        }
        // Every coordinate value takes at least one byte of the coordinate column.
        let values = columns.kinds.len().saturating_mul(ndim);
        let mut coords = Vec::with_capacity(values.min(columns.coords.len()));
        let mut refs = Vec::with_capacity(columns.kinds.len());
        columns.for_each_entry(|coord, stored| {
            let compact = match stored {
                StoredRef::Deleted => return Ok(()),
                StoredRef::Inline(range) => CompactRef::Inline {
                    start: range.start,
                    len: range.len(),
                },
                StoredRef::Native {
                    slot,
                    offset,
                    length,
                } => CompactRef::Native {
                    slot: slot as u32,
                    offset,
                    length,
                },
                StoredRef::Virtual {
                    slot,
                    offset,
                    length,
                } => CompactRef::Virtual {
                    slot: slot as u32,
                    offset,
                    length,
                },
            };
            coords.extend_from_slice(coord);
            refs.push(compact);
            Ok(())
        })?;
        Ok(ShardIndex {
            ndim,
            coords,
            refs,
            objects: columns.objects,
            sources: columns.sources.into_iter().map(Arc::new).collect(),
            inline: Bytes::from(columns.inline_data),
            dense: None,
        }
        .find_dense_box())
    }

    /// The entries of `base` with `delta` (sorted by coordinates) applied: delta entries
    /// replace or, when `None`, delete the base entry at the same coordinates.
    pub(crate) fn overlay(base: Option<&ShardIndex>, delta: &[ManifestEntry]) -> Result<Self> {
        let empty = ShardIndex::default();
        let base = base.unwrap_or(&empty);
        let ndim = match delta.first() {
            Some((c, _)) if base.is_empty() => c.len(),
            _ => base.ndim,
        };
        let delta_inline: usize = delta
            .iter()
            .map(|(_, r)| match r {
                Some(ChunkRef::Inline(b)) => b.len(),
                _ => 0,
            })
            .sum();
        let mut out = Builder {
            index: ShardIndex {
                ndim,
                coords: Vec::with_capacity((base.len() + delta.len()) * ndim),
                refs: Vec::with_capacity(base.len() + delta.len()),
                objects: base.objects.clone(),
                sources: base.sources.clone(),
                inline: Bytes::new(),
                dense: None,
            },
            slots: HashMap::new(),
            source_slots: HashMap::new(),
            last: None,
            inline: Vec::new(),
        };
        // Base references keep their inline ranges and object slots: the new buffer and
        // dictionary start with the base's.
        if delta_inline == 0 {
            out.index.inline = base.inline.clone();
        } else {
            out.inline.reserve(base.inline.len() + delta_inline);
            out.inline.extend_from_slice(&base.inline);
        }
        let delta = delta.iter().filter(|(c, _)| c.len() == ndim);
        let mut delta = delta.peekable();
        let mut i = 0;
        while i < base.len() || delta.peek().is_some() {
            let order = match delta.peek() {
                None => Ordering::Less,
                Some((c, _)) if i < base.len() => base.coord(i).cmp(c),
                Some(_) => Ordering::Greater,
            };
            if order == Ordering::Less {
                out.index.coords.extend_from_slice(base.coord(i));
                out.index.refs.push(base.refs[i]);
                i += 1;
                continue;
            }
            if order == Ordering::Equal {
                i += 1;
            }
            if let Some((c, Some(r))) = delta.next() {
                out.push(c, r)?;
            }
        }
        Ok(out.finish())
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.refs.len()
    }

    /// True when the shard holds no chunk.
    pub(crate) fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }

    /// The rank of every entry's coordinates.
    pub(crate) fn ndim(&self) -> usize {
        self.ndim
    }

    /// The reference stored at `coord`.
    pub(crate) fn get(&self, coord: &[u64]) -> Option<ChunkRef> {
        self.position(coord).map(|i| self.chunk_ref(i))
    }

    /// True when a reference is stored at `coord`.
    pub(crate) fn contains(&self, coord: &[u64]) -> bool {
        self.position(coord).is_some()
    }

    /// The coordinates of every entry, in order.
    pub(crate) fn coords(&self) -> impl ExactSizeIterator<Item = &[u64]> + '_ {
        (0..self.len()).map(|i| self.coord(i))
    }

    /// Every entry, in order.
    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = (&[u64], ChunkRef)> + '_ {
        (0..self.len()).map(|i| (self.coord(i), self.chunk_ref(i)))
    }

    /// Heap and inline bytes held by the index, for cache weighting.
    pub(crate) fn approx_bytes(&self) -> u64 {
        (std::mem::size_of::<Self>()
            + self.coords.capacity() * std::mem::size_of::<u64>()
            + self.refs.capacity() * std::mem::size_of::<CompactRef>()
            + self.objects.capacity() * std::mem::size_of::<ChunkObjectId>()
            + self
                .sources
                .iter()
                .map(|s| std::mem::size_of::<VirtualSource>() + s.location.len() + 16)
                .sum::<usize>()
            + self.inline.len()
            + self.dense.as_ref().map_or(0, |d| {
                (d.lo.capacity() + d.extent.capacity()) * std::mem::size_of::<u64>()
            })) as u64
    }

    fn coord(&self, i: usize) -> &[u64] {
        &self.coords[i * self.ndim..(i + 1) * self.ndim]
    }

    fn chunk_ref(&self, i: usize) -> ChunkRef {
        match self.refs[i] {
            CompactRef::Inline { start, len } => {
                ChunkRef::Inline(self.inline.slice(start..start + len))
            }
            CompactRef::Native {
                slot,
                offset,
                length,
            } => ChunkRef::Native {
                object: self.objects[slot as usize],
                offset,
                length,
            },
            CompactRef::Virtual {
                slot,
                offset,
                length,
            } => ChunkRef::Virtual(VirtualChunkRef {
                source: self.sources[slot as usize].clone(),
                offset,
                length,
            }),
        }
    }

    /// The index of the entry at `coord`.
    fn position(&self, coord: &[u64]) -> Option<usize> {
        if coord.len() != self.ndim {
            return None;
        }
        if let Some(dense) = &self.dense {
            // Checked against the stored coordinates, so that a box computed from damaged
            // (unsorted) entries cannot give a wrong answer.
            return dense.offset(coord).filter(|&i| self.coord(i) == coord);
        }
        if self.ndim == 1 {
            return self.coords.binary_search(&coord[0]).ok();
        }
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.coord(mid).cmp(coord) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// Records the bounding box of the entries when they fill it.
    fn find_dense_box(mut self) -> Self {
        let Some(first) = self.coords().next() else {
            return self;
        };
        let mut lo = first.to_vec();
        let mut hi = first.to_vec();
        for c in self.coords() {
            for ((l, h), v) in lo.iter_mut().zip(hi.iter_mut()).zip(c) {
                *l = (*l).min(*v);
                *h = (*h).max(*v);
            }
        }
        let extent: Option<Vec<u64>> = lo
            .iter()
            .zip(&hi)
            .map(|(l, h)| (h - l).checked_add(1))
            .collect();
        let volume = extent
            .as_ref()
            .and_then(|e| e.iter().try_fold(1u64, |v, x| v.checked_mul(*x)));
        if let (Some(extent), Some(volume)) = (extent, volume) {
            if volume == self.len() as u64 {
                self.dense = Some(DenseBox { lo, extent });
            }
        }
        self
    }
}

impl DenseBox {
    /// The row-major offset of `coord` in the box, `None` outside it.
    fn offset(&self, coord: &[u64]) -> Option<usize> {
        let mut offset: u64 = 0;
        for ((c, lo), extent) in coord.iter().zip(&self.lo).zip(&self.extent) {
            let within = c.checked_sub(*lo).filter(|d| d < extent)?;
            offset = offset * extent + within;
        }
        usize::try_from(offset).ok()
    }
}

/// An index under construction by [`ShardIndex::overlay`].
struct Builder {
    index: ShardIndex,
    /// Slot of each object added to the dictionary by [`Builder::push`]. Objects are not
    /// matched against the base's dictionary (that would hash all of it for a few delta
    /// entries): a delta is small, so this costs at most a few duplicate slots.
    slots: HashMap<ChunkObjectId, u32>,
    /// Slot of each virtual source added by [`Builder::push`] (same policy as `slots`).
    source_slots: HashMap<Arc<VirtualSource>, u32>,
    /// The object of the last native reference pushed and its slot (neighbours usually
    /// share a pack).
    last: Option<(ChunkObjectId, u32)>,
    /// The inline buffer when new inline chunks are added (else `index.inline` is final).
    inline: Vec<u8>,
}

impl Builder {
    fn push(&mut self, coord: &[u64], chunk: &ChunkRef) -> Result<()> {
        let compact = match chunk {
            ChunkRef::Inline(data) => {
                let start = self.inline.len();
                self.inline.extend_from_slice(data);
                CompactRef::Inline {
                    start,
                    len: data.len(),
                }
            }
            ChunkRef::Native {
                object,
                offset,
                length,
            } => CompactRef::Native {
                slot: self.slot(object)?,
                offset: *offset,
                length: *length,
            },
            ChunkRef::Virtual(v) => CompactRef::Virtual {
                slot: self.source_slot(&v.source)?,
                offset: v.offset,
                length: v.length,
            },
        };
        self.index.coords.extend_from_slice(coord);
        self.index.refs.push(compact);
        Ok(())
    }

    fn slot(&mut self, object: &ChunkObjectId) -> Result<u32> {
        if let Some((last, slot)) = self.last {
            if last == *object {
                return Ok(slot);
            }
        }
        let slot = self.find_or_add(object)?;
        self.last = Some((*object, slot));
        Ok(slot)
    }

    fn find_or_add(&mut self, object: &ChunkObjectId) -> Result<u32> {
        let objects = &mut self.index.objects;
        if let Some(slot) = self.slots.get(object) {
            return Ok(*slot);
        }
        let slot = u32::try_from(objects.len()).map_err(|_| too_many_objects())?;
        objects.push(*object);
        self.slots.insert(*object, slot);
        Ok(slot)
    }

    fn source_slot(&mut self, source: &Arc<VirtualSource>) -> Result<u32> {
        if let Some(slot) = self.source_slots.get(source) {
            return Ok(*slot);
        }
        let sources = &mut self.index.sources;
        let slot = u32::try_from(sources.len()).map_err(|_| too_many_objects())?;
        sources.push(source.clone());
        self.source_slots.insert(source.clone(), slot);
        Ok(slot)
    }

    fn finish(mut self) -> ShardIndex {
        if !self.inline.is_empty() {
            self.index.inline = Bytes::from(self.inline);
        }
        self.index.find_dense_box()
    }
}

fn too_many_objects() -> Error {
    Error::corrupt(
        "<manifest>",
        "a shard references more than 2^32 chunk objects",
    )
}

#[cfg(test)]
mod tests;
