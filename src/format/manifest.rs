//! Chunk references and the columnar manifest shard layout.
//!
//! A manifest shard lists the chunk references of one region of one array's chunk grid, sorted
//! by chunk coordinates. On disk it is a [`ManifestColumns`] value: one column per field, varint
//! and delta encoded, so sequential coordinates and contiguous byte ranges cost a byte or two
//! per entry before compression.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::varint::{self, Reader};
use crate::error::{Error, Result};
use crate::id::ChunkObjectId;

/// Coordinates of a chunk in an array's chunk grid.
pub type ChunkCoord = Vec<u64>;

/// Where a chunk's bytes live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkRef {
    /// Small chunks are stored in the manifest itself.
    Inline(Bytes),
    /// A byte range of a chunk object in the repository.
    Native {
        /// The chunk object (single chunk or pack).
        object: ChunkObjectId,
        /// Byte offset of the chunk inside the object (past the object header).
        offset: u64,
        /// Length of the chunk in bytes.
        length: u64,
    },
    /// A byte range of a file outside the repository.
    Virtual(VirtualChunkRef),
}

impl ChunkRef {
    /// Size of the chunk's encoded bytes.
    pub fn len(&self) -> u64 {
        match self {
            ChunkRef::Inline(b) => b.len() as u64,
            ChunkRef::Native { length, .. } => *length,
            ChunkRef::Virtual(v) => v.length,
        }
    }
}

/// How a virtual chunk's source file is recognised as unchanged since the reference was made.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SourceChecksum {
    /// The source's entity tag, as its store reports it.
    ETag(String),
    /// The source's last-modification time, in whole seconds since the Unix epoch: the source
    /// must not have been modified after it.
    LastModified(i64),
}

/// A file holding virtual chunks: its URL, and optionally what it looked like when referenced.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VirtualSource {
    /// Absolute URL of the file (`file://`, `s3://`, `gs://`, `az://`, `http(s)://`).
    pub location: String,
    /// When set, reads fail rather than return bytes of a source that changed.
    pub checksum: Option<SourceChecksum>,
}

/// A chunk stored as a byte range of a file outside the repository. References to the same
/// file share one [`VirtualSource`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualChunkRef {
    /// The file.
    pub source: std::sync::Arc<VirtualSource>,
    /// Byte offset of the chunk in the file.
    pub offset: u64,
    /// Length of the chunk in bytes.
    pub length: u64,
}

/// One entry of a manifest or a manifest delta: `None` marks a deleted chunk (deltas only).
pub type ManifestEntry = (ChunkCoord, Option<ChunkRef>);

const KIND_TOMBSTONE: u8 = 0;
const KIND_INLINE: u8 = 1;
const KIND_NATIVE: u8 = 2;
const KIND_VIRTUAL: u8 = 3;

/// The columnar encoding of a sorted list of manifest entries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestColumns {
    /// Rank of the chunk coordinates.
    pub ndim: u32,
    /// Number of entries.
    pub count: u64,
    /// Per entry, per dimension: zigzag varint of the difference to the previous entry.
    #[serde(with = "serde_bytes")]
    pub coords: Vec<u8>,
    /// Per entry: 0 = deleted, 1 = inline, 2 = native, 3 = virtual.
    #[serde(with = "serde_bytes")]
    pub kinds: Vec<u8>,
    /// Dictionary of chunk objects referenced by native entries.
    pub objects: Vec<ChunkObjectId>,
    /// Per native entry: varint index into `objects`.
    #[serde(with = "serde_bytes")]
    pub object_index: Vec<u8>,
    /// Per native entry: zigzag varint of `offset - end of the previous native entry`; per
    /// virtual entry: the same relative to the previous virtual entry.
    #[serde(with = "serde_bytes")]
    pub offsets: Vec<u8>,
    /// Per inline, native or virtual entry: varint length.
    #[serde(with = "serde_bytes")]
    pub lengths: Vec<u8>,
    /// Inline chunk bytes, concatenated in entry order.
    #[serde(with = "serde_bytes")]
    pub inline_data: Vec<u8>,
    /// Dictionary of the files virtual entries point into (absent when there are none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<VirtualSource>,
    /// Per virtual entry: varint index into `sources`.
    #[serde(default, with = "serde_bytes", skip_serializing_if = "Vec::is_empty")]
    pub source_index: Vec<u8>,
}

impl ManifestColumns {
    /// Encodes entries, which must be sorted by coordinates without duplicates and share one
    /// rank.
    pub fn encode(entries: &[ManifestEntry]) -> Result<Self> {
        let ndim = entries.first().map_or(0, |(c, _)| c.len());
        let mut cols = ManifestColumns {
            ndim: ndim as u32,
            count: entries.len() as u64,
            ..Default::default()
        };
        let mut object_slots = std::collections::HashMap::new();
        let mut sources = SourceSlots::default();
        let mut prev_coord = vec![0u64; ndim];
        let mut prev_end: u64 = 0;
        let mut prev_virtual_end: u64 = 0;
        for (i, (coord, chunk)) in entries.iter().enumerate() {
            if coord.len() != ndim {
                return Err(Error::corrupt("<manifest>", "entries of mixed rank"));
            }
            if i > 0 && entries[i - 1].0 >= *coord {
                return Err(Error::corrupt(
                    "<manifest>",
                    "entries are not sorted and unique",
                ));
            }
            for (d, &c) in coord.iter().enumerate() {
                varint::put_i64(&mut cols.coords, c.wrapping_sub(prev_coord[d]) as i64);
                prev_coord[d] = c;
            }
            match chunk {
                None => cols.kinds.push(KIND_TOMBSTONE),
                Some(ChunkRef::Inline(data)) => {
                    cols.kinds.push(KIND_INLINE);
                    varint::put_u64(&mut cols.lengths, data.len() as u64);
                    cols.inline_data.extend_from_slice(data);
                }
                Some(ChunkRef::Native {
                    object,
                    offset,
                    length,
                }) => {
                    cols.kinds.push(KIND_NATIVE);
                    let next = cols.objects.len();
                    let slot = *object_slots.entry(*object).or_insert(next);
                    if slot == next {
                        cols.objects.push(*object);
                    }
                    varint::put_u64(&mut cols.object_index, slot as u64);
                    varint::put_i64(&mut cols.offsets, offset.wrapping_sub(prev_end) as i64);
                    varint::put_u64(&mut cols.lengths, *length);
                    prev_end = offset.wrapping_add(*length);
                }
                Some(ChunkRef::Virtual(v)) => {
                    cols.kinds.push(KIND_VIRTUAL);
                    let slot = sources.slot(&v.source, &mut cols.sources);
                    varint::put_u64(&mut cols.source_index, slot as u64);
                    varint::put_i64(
                        &mut cols.offsets,
                        v.offset.wrapping_sub(prev_virtual_end) as i64,
                    );
                    varint::put_u64(&mut cols.lengths, v.length);
                    prev_virtual_end = v.offset.wrapping_add(v.length);
                }
            }
        }
        Ok(cols)
    }

    /// Decodes back into sorted entries, validating every column.
    pub fn decode(&self) -> Result<Vec<ManifestEntry>> {
        let mut out = Vec::with_capacity(self.kinds.len());
        let sources: Vec<std::sync::Arc<VirtualSource>> = self
            .sources
            .iter()
            .cloned()
            .map(std::sync::Arc::new)
            .collect();
        self.for_each_entry(|coord, stored| {
            let chunk = match stored {
                StoredRef::Deleted => None,
                StoredRef::Inline(range) => Some(ChunkRef::Inline(Bytes::copy_from_slice(
                    &self.inline_data[range],
                ))),
                StoredRef::Native {
                    slot,
                    offset,
                    length,
                } => Some(ChunkRef::Native {
                    object: self.objects[slot],
                    offset,
                    length,
                }),
                StoredRef::Virtual {
                    slot,
                    offset,
                    length,
                } => Some(ChunkRef::Virtual(VirtualChunkRef {
                    source: sources[slot].clone(),
                    offset,
                    length,
                })),
            };
            out.push((coord.to_vec(), chunk));
            Ok(())
        })?;
        Ok(out)
    }

    /// Validates every column and calls `visit` with each entry in order, without copying
    /// anything: the coordinates are only valid during the call, and a [`StoredRef`] points
    /// into `inline_data` and `objects` (its ranges and slots are checked to be in bounds).
    pub(crate) fn for_each_entry(
        &self,
        mut visit: impl FnMut(&[u64], StoredRef) -> Result<()>,
    ) -> Result<()> {
        let count = usize::try_from(self.count)
            .map_err(|_| Error::corrupt("<manifest>", "entry count overflows"))?;
        if self.kinds.len() != count {
            return Err(Error::corrupt(
                "<manifest>",
                "kind column length differs from the entry count",
            ));
        }
        let ndim = self.ndim as usize;
        // Every coordinate value takes at least one byte: this bounds the allocations below.
        if count
            .checked_mul(ndim)
            .is_none_or(|v| v > self.coords.len())
        {
            return Err(Error::corrupt(
                "<manifest>",
                "coordinate column is truncated",
            ));
        }
        let mut coords = Reader::new(&self.coords, "coords");
        let mut object_index = Reader::new(&self.object_index, "object_index");
        let mut offsets = Reader::new(&self.offsets, "offsets");
        let mut lengths = Reader::new(&self.lengths, "lengths");
        let mut source_index = Reader::new(&self.source_index, "source_index");
        let mut inline_pos = 0usize;
        let mut coord = vec![0u64; ndim];
        let mut prev_end: u64 = 0;
        let mut prev_virtual_end: u64 = 0;
        for &kind in &self.kinds {
            for c in coord.iter_mut() {
                *c = c.wrapping_add(coords.i64()? as u64);
            }
            let stored = match kind {
                KIND_TOMBSTONE => StoredRef::Deleted,
                KIND_INLINE => {
                    let len = lengths.u64()? as usize;
                    let end = inline_pos
                        .checked_add(len)
                        .filter(|&e| e <= self.inline_data.len())
                        .ok_or_else(|| Error::corrupt("<manifest>", "inline data is truncated"))?;
                    let range = inline_pos..end;
                    inline_pos = end;
                    StoredRef::Inline(range)
                }
                KIND_NATIVE => {
                    let slot = object_index.u64()? as usize;
                    if slot >= self.objects.len() {
                        return Err(Error::corrupt("<manifest>", "object index out of range"));
                    }
                    let offset = prev_end.wrapping_add(offsets.i64()? as u64);
                    let length = lengths.u64()?;
                    prev_end = offset.wrapping_add(length);
                    StoredRef::Native {
                        slot,
                        offset,
                        length,
                    }
                }
                KIND_VIRTUAL => {
                    let slot = source_index.u64()? as usize;
                    if slot >= self.sources.len() {
                        return Err(Error::corrupt("<manifest>", "source index out of range"));
                    }
                    let offset = prev_virtual_end.wrapping_add(offsets.i64()? as u64);
                    let length = lengths.u64()?;
                    prev_virtual_end = offset.wrapping_add(length);
                    StoredRef::Virtual {
                        slot,
                        offset,
                        length,
                    }
                }
                other => {
                    return Err(Error::corrupt(
                        "<manifest>",
                        format!("unknown chunk kind {other}"),
                    ))
                }
            };
            visit(&coord, stored)?;
        }
        Ok(())
    }
}

/// Assigns dictionary slots to virtual sources while encoding; consecutive references
/// usually share a source, which is recognised without hashing.
#[derive(Default)]
struct SourceSlots {
    slots: std::collections::HashMap<VirtualSource, usize>,
    last: Option<(std::sync::Arc<VirtualSource>, usize)>,
}

impl SourceSlots {
    fn slot(
        &mut self,
        source: &std::sync::Arc<VirtualSource>,
        dict: &mut Vec<VirtualSource>,
    ) -> usize {
        if let Some((last, slot)) = &self.last {
            if std::sync::Arc::ptr_eq(last, source) || **last == **source {
                return *slot;
            }
        }
        let next = dict.len();
        let slot = *self.slots.entry((**source).clone()).or_insert(next);
        if slot == next {
            dict.push((**source).clone());
        }
        self.last = Some((source.clone(), slot));
        slot
    }
}

/// One entry's reference as [`ManifestColumns::for_each_entry`] finds it in the columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StoredRef {
    /// A tombstone (deltas only).
    Deleted,
    /// An inline chunk: this range of `inline_data`.
    Inline(std::ops::Range<usize>),
    /// A native chunk in the object `objects[slot]`.
    Native {
        /// Index into `objects`.
        slot: usize,
        /// Byte offset of the chunk inside the object.
        offset: u64,
        /// Length of the chunk in bytes.
        length: u64,
    },
    /// A virtual chunk in the file `sources[slot]`.
    Virtual {
        /// Index into `sources`.
        slot: usize,
        /// Byte offset of the chunk inside the file.
        offset: u64,
        /// Length of the chunk in bytes.
        length: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn native(i: u64) -> ChunkRef {
        ChunkRef::Native {
            object: ChunkObjectId::of_bytes(&[(i % 3) as u8]),
            offset: 24 + i * 100,
            length: 100,
        }
    }

    #[test]
    fn round_trip_all_kinds() {
        let entries: Vec<ManifestEntry> = vec![
            (
                vec![0, 0],
                Some(ChunkRef::Inline(Bytes::from_static(b"abc"))),
            ),
            (vec![0, 1], Some(native(1))),
            (vec![0, 7], None),
            (vec![1, 0], Some(native(2))),
            (vec![u64::MAX, 3], Some(ChunkRef::Inline(Bytes::new()))),
        ];
        let cols = ManifestColumns::encode(&entries).unwrap();
        assert_eq!(cols.objects.len(), 2);
        assert_eq!(cols.decode().unwrap(), entries);
        let enc = rmp_serde::to_vec_named(&cols).unwrap();
        let back: ManifestColumns = rmp_serde::from_slice(&enc).unwrap();
        assert_eq!(back.decode().unwrap(), entries);
    }

    #[test]
    fn sequential_refs_are_compact() {
        let object = ChunkObjectId::of_bytes(b"pack");
        let entries: Vec<ManifestEntry> = (0..10_000u64)
            .map(|i| {
                let r = ChunkRef::Native {
                    object,
                    offset: 24 + 64 * i,
                    length: 64,
                };
                (vec![i], Some(r))
            })
            .collect();
        let cols = ManifestColumns::encode(&entries).unwrap();
        let size = cols.coords.len()
            + cols.kinds.len()
            + cols.offsets.len()
            + cols.lengths.len()
            + cols.object_index.len();
        assert!(size <= 5 * 10_000, "{size} bytes for 10k sequential refs");
        assert_eq!(cols.decode().unwrap(), entries);
    }

    fn virtual_ref(file: &str, offset: u64) -> ChunkRef {
        ChunkRef::Virtual(VirtualChunkRef {
            source: std::sync::Arc::new(VirtualSource {
                location: format!("file:///data/{file}.nc"),
                checksum: Some(SourceChecksum::ETag(format!("\"{file}\""))),
            }),
            offset,
            length: 64,
        })
    }

    #[test]
    fn virtual_refs_round_trip_with_a_source_dictionary() {
        let entries: Vec<ManifestEntry> = vec![
            (vec![0], Some(virtual_ref("a", 100))),
            (vec![1], Some(native(1))),
            (vec![2], Some(virtual_ref("a", 164))),
            (vec![3], Some(virtual_ref("b", 0))),
            (vec![4], None),
            (vec![5], Some(virtual_ref("a", 10))),
        ];
        let cols = ManifestColumns::encode(&entries).unwrap();
        assert_eq!(cols.sources.len(), 2, "one dictionary entry per file");
        let enc = rmp_serde::to_vec_named(&cols).unwrap();
        let back: ManifestColumns = rmp_serde::from_slice(&enc).unwrap();
        assert_eq!(back.decode().unwrap(), entries);
        let mut bad = cols.clone();
        bad.sources.pop();
        assert!(bad.decode().is_err(), "source index out of range");
        let mut bad = cols;
        bad.source_index.clear();
        assert!(bad.decode().is_err(), "source index column truncated");
    }

    #[test]
    fn manifests_without_virtual_columns_still_decode() {
        // A record written before virtual references existed has no `sources` fields.
        #[derive(Serialize)]
        struct Old {
            ndim: u32,
            count: u64,
            #[serde(with = "serde_bytes")]
            coords: Vec<u8>,
            #[serde(with = "serde_bytes")]
            kinds: Vec<u8>,
            objects: Vec<ChunkObjectId>,
            #[serde(with = "serde_bytes")]
            object_index: Vec<u8>,
            #[serde(with = "serde_bytes")]
            offsets: Vec<u8>,
            #[serde(with = "serde_bytes")]
            lengths: Vec<u8>,
            #[serde(with = "serde_bytes")]
            inline_data: Vec<u8>,
        }
        let entries: Vec<ManifestEntry> = vec![(vec![3], Some(native(3)))];
        let c = ManifestColumns::encode(&entries).unwrap();
        let old = Old {
            ndim: c.ndim,
            count: c.count,
            coords: c.coords.clone(),
            kinds: c.kinds.clone(),
            objects: c.objects.clone(),
            object_index: c.object_index.clone(),
            offsets: c.offsets.clone(),
            lengths: c.lengths.clone(),
            inline_data: c.inline_data.clone(),
        };
        let bytes = rmp_serde::to_vec_named(&old).unwrap();
        assert_eq!(bytes, rmp_serde::to_vec_named(&c).unwrap(), "same bytes");
        let back: ManifestColumns = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back.decode().unwrap(), entries);
    }

    #[test]
    fn in_order_virtual_refs_cost_a_few_bytes_each() {
        let entries: Vec<ManifestEntry> = (0..100_000u64)
            .map(|i| (vec![i], Some(virtual_ref("big", 64 * i))))
            .collect();
        let cols = ManifestColumns::encode(&entries).unwrap();
        let raw = rmp_serde::to_vec_named(&cols).unwrap().len();
        assert!(raw <= 5 * 100_000 + 1000, "{raw} bytes before compression");
        assert_eq!(cols.decode().unwrap(), entries);
    }

    #[test]
    fn rejects_unsorted_and_corrupt_columns() {
        let entries: Vec<ManifestEntry> = vec![(vec![2], None), (vec![1], None)];
        assert!(ManifestColumns::encode(&entries).is_err());
        let good = ManifestColumns::encode(&[(vec![1], Some(native(1)))]).unwrap();
        let mut bad = good.clone();
        bad.objects.clear();
        assert!(bad.decode().is_err());
        let mut bad = good.clone();
        bad.kinds = vec![9];
        assert!(bad.decode().is_err());
        let mut bad = good.clone();
        bad.count = 2;
        assert!(bad.decode().is_err());
        let mut bad = good.clone();
        bad.ndim = u32::MAX;
        assert!(bad.decode().is_err());
        let mut bad = good;
        bad.lengths.clear();
        assert!(bad.decode().is_err());
    }
}
