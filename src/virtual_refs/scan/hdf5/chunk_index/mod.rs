//! Chunk indexes: where each stored chunk of a dataset is.

use super::bytes::{bad, Fault, Parsed, Sizes};

/// One stored chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ChunkEntry {
    /// Chunk grid coordinates (chunk index along each dimension, not element offsets).
    pub(crate) scaled: Vec<u64>,
    pub(crate) address: u64,
    /// Stored bytes.
    pub(crate) size: u64,
    /// Bit i set: filter i of the pipeline was NOT applied to this chunk.
    pub(crate) filter_mask: u32,
}

/// What an index needs to know of its dataset.
#[derive(Clone, Debug)]
pub(crate) struct ChunkGeometry {
    /// Current dataspace dimensions.
    pub(crate) dims: Vec<u64>,
    /// Maximum dimensions (u64::MAX = unlimited).
    pub(crate) max_dims: Vec<u64>,
    /// Chunk dimensions (without the element-size entry of the layout message).
    pub(crate) chunk: Vec<u64>,
    /// Bytes of one element.
    pub(crate) element_size: u32,
    /// Whether the dataset has a filter pipeline (filtered index element forms).
    pub(crate) filtered: bool,
}

pub(crate) mod btree2_chunks;
pub(crate) mod extensible_array;
pub(crate) mod fixed_array;

impl ChunkGeometry {
    /// The maximum dimensions, or the current ones when the dataspace gives none.
    fn max_or_current(&self) -> &[u64] {
        if self.max_dims.is_empty() {
            &self.dims
        } else {
            &self.max_dims
        }
    }

    /// Checks that dimensions, maximum dimensions and chunk dimensions agree in rank and
    /// that no chunk extent is zero.
    fn check(&self, what: &str, addr: u64) -> Parsed<()> {
        let rank = self.dims.len();
        if self.chunk.len() != rank || self.max_or_current().len() != rank || rank == 0 {
            return bad(format!(
                "the {what} at byte {addr} indexes a dataset of rank {rank} with chunks of rank \
                 {} and maximum dimensions of rank {}",
                self.chunk.len(),
                self.max_dims.len()
            ));
        }
        if self.chunk.contains(&0) {
            return bad(format!("the {what} at byte {addr} has chunks of extent 0"));
        }
        Ok(())
    }

    /// Bytes of one whole chunk: the size of every unfiltered chunk.
    fn chunk_bytes(&self) -> Parsed<u64> {
        self.chunk
            .iter()
            .try_fold(u64::from(self.element_size), |n, &c| n.checked_mul(c))
            .ok_or_else(|| Fault::Bad("its chunks are too large".into()))
    }

    /// Chunks along each dimension of the maximum extent (`u64::MAX` where unlimited).
    fn max_chunks(&self) -> Vec<u64> {
        self.max_or_current()
            .iter()
            .zip(&self.chunk)
            .map(|(&m, &c)| if m == u64::MAX { m } else { m.div_ceil(c) })
            .collect()
    }
}

/// Checks the width of the stored-size field of a filtered index entry. HDF5 gives it the
/// file's size of lengths with layout messages of version 5 (HDF5 2.0); with version 4,
/// `1 + (floor(log2(chunk bytes)) + 8) / 8` bytes (at most 8): one more byte than the size of
/// a whole chunk needs, in case a filter enlarges it.
fn check_size_width(
    width: u64,
    geometry: &ChunkGeometry,
    sizes: Sizes,
    what: &str,
    addr: u64,
) -> Parsed<usize> {
    let bytes = geometry.chunk_bytes()?;
    let log2 = u64::from(63u32.saturating_sub(bytes.leading_zeros()));
    let by_chunk = (1 + (log2 + 8) / 8).min(8);
    if width == by_chunk || width == u64::from(sizes.lengths) {
        Ok(width as usize)
    } else {
        bad(format!(
            "the {what} at byte {addr} gives chunk sizes {width} bytes, neither the {by_chunk} \
             bytes its chunks of {bytes} bytes take nor the file's {} bytes of lengths",
            sizes.lengths
        ))
    }
}

/// The coordinates of element `i` of a row-major grid whose strides are `down` (the first
/// coordinate is not bounded by any extent).
fn unravel(mut i: u64, down: &[u64]) -> Vec<u64> {
    down.iter()
        .map(|&d| {
            let c = i.checked_div(d).unwrap_or(0);
            i = i.checked_rem(d).unwrap_or(0);
            c
        })
        .collect()
}

/// Row-major strides of a grid of `extents` (the first extent is not used), `None` on
/// overflow.
fn strides(extents: &[u64]) -> Option<Vec<u64>> {
    let mut down = vec![1u64; extents.len()];
    for k in (0..extents.len().saturating_sub(1)).rev() {
        let next = down.get(k + 1).copied()?;
        let extent = extents.get(k + 1).copied()?;
        *down.get_mut(k)? = next.checked_mul(extent)?;
    }
    Some(down)
}

/// Shared helpers of the chunk index, v2 B-tree and fractal heap tests: the fixtures of
/// `testdata/` (made by `testdata/make.py`) and h5py's chunk tables of them.
#[cfg(test)]
pub(crate) mod test_support {
    use std::io::Read;

    use bytes::Bytes;
    use serde_json::Value;

    use super::{ChunkEntry, ChunkGeometry};
    use crate::virtual_refs::scan::hdf5::bytes::{Fault, FileBytes, Parsed, Sizes};

    /// The fixtures, compiled in.
    macro_rules! fixtures {
        ($($name:literal),* $(,)?) => {
            &[$(($name, include_bytes!(concat!("../testdata/", $name)).as_slice())),*]
        };
    }
    const FIXTURES: &[(&str, &[u8])] = fixtures![
        "bt_2d.h5",
        "bt_3d.h5",
        "bt_deep.h5.gz",
        "bt_deep.h5.json.gz",
        "bt_filtered.h5",
        "bt_filtered_v4.h5",
        "chunks.json",
        "dense.json",
        "dense_attrs.h5.gz",
        "dense_big.h5.gz",
        "dense_links.h5",
        "ea_1d.h5",
        "ea_2d_unlim0.h5",
        "ea_2d_unlim1.h5",
        "ea_3d.h5",
        "ea_filtered_addr4.h5",
        "ea_filtered_v4.h5",
        "ea_paged.h5",
        "ea_sparse.h5",
        "fa_filtered.h5",
        "fa_filtered_255_v4.h5",
        "fa_filtered_256_v4.h5",
        "fa_filtered_64k_v4.h5",
        "fa_filtered_len4.h5",
        "fa_filtered_v4.h5",
        "fa_paged.h5",
        "fa_paged_filtered.h5",
        "fa_plain.h5",
        "fa_sparse_max.h5",
    ];

    /// A fixture's bytes (inflated when its name ends with `.gz`).
    pub(crate) fn fixture(name: &str) -> Vec<u8> {
        let Some((_, raw)) = FIXTURES.iter().find(|(n, _)| *n == name) else {
            panic!("no fixture {name}");
        };
        if name.ends_with(".gz") {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(*raw)
                .read_to_end(&mut out)
                .unwrap();
            out
        } else {
            raw.to_vec()
        }
    }

    /// The whole file, and its sizes of offsets and lengths (superblock version 2 or 3).
    pub(crate) fn whole(bytes: &[u8]) -> (FileBytes, Sizes) {
        assert_eq!(&bytes[..8], b"\x89HDF\r\n\x1a\n");
        assert!(bytes[8] >= 2, "superblock version {}", bytes[8]);
        let sizes = Sizes {
            offsets: bytes[9],
            lengths: bytes[10],
            base: 0,
        };
        let mut file = FileBytes::new(bytes.len() as u64);
        file.insert(0, Bytes::copy_from_slice(bytes));
        (file, sizes)
    }

    /// Every address where `signature` occurs.
    pub(crate) fn find_all(bytes: &[u8], signature: &[u8; 4]) -> Vec<u64> {
        bytes
            .windows(4)
            .enumerate()
            .filter(|(_, w)| w == signature)
            .map(|(i, _)| i as u64)
            .collect()
    }

    /// The one place `signature` occurs.
    pub(crate) fn find_one(bytes: &[u8], signature: &[u8; 4]) -> u64 {
        let all = find_all(bytes, signature);
        assert_eq!(all.len(), 1, "{}", String::from_utf8_lossy(signature));
        all[0]
    }

    /// The expectations of `name`: from `chunks.json`, or `name.json.gz` for big tables.
    fn expected(name: &str) -> Value {
        if let Some(stem) = name.strip_suffix(".gz") {
            serde_json::from_slice(&fixture(&format!("{stem}.json.gz"))).unwrap()
        } else {
            let all: Value = serde_json::from_slice(&fixture("chunks.json")).unwrap();
            all[name].clone()
        }
    }

    fn numbers(v: &Value) -> Vec<u64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap_or(u64::MAX)) // null: unlimited
            .collect()
    }

    /// The geometry of fixture `name`'s dataset and h5py's chunk table of it, sorted.
    pub(crate) fn dataset(name: &str) -> (ChunkGeometry, Vec<ChunkEntry>) {
        let e = expected(name);
        let geometry = ChunkGeometry {
            dims: numbers(&e["dims"]),
            max_dims: numbers(&e["max_dims"]),
            chunk: numbers(&e["chunk"]),
            element_size: e["element_size"].as_u64().unwrap() as u32,
            filtered: e["filtered"].as_bool().unwrap(),
        };
        let entries = e["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| ChunkEntry {
                scaled: numbers(&c[0]),
                address: c[1].as_u64().unwrap(),
                size: c[2].as_u64().unwrap(),
                filter_mask: c[3].as_u64().unwrap() as u32,
            })
            .collect();
        (geometry, entries)
    }

    /// Runs `parse` over a file holding only its first `head` bytes, fetching what each run
    /// reports missing, until it succeeds: its result and every run's missing ranges.
    pub(crate) fn by_rounds<T>(
        bytes: &[u8],
        head: usize,
        parse: impl Fn(&FileBytes) -> Parsed<T>,
    ) -> (T, Vec<Vec<std::ops::Range<u64>>>) {
        let mut file = FileBytes::new(bytes.len() as u64);
        file.insert(0, Bytes::copy_from_slice(&bytes[..head]));
        let mut rounds = Vec::new();
        for _ in 0..16 {
            match parse(&file) {
                Ok(v) => return (v, rounds),
                Err(Fault::Missing(ranges)) => {
                    for r in &ranges {
                        let (s, e) = (r.start as usize, r.end as usize);
                        file.insert(r.start, Bytes::copy_from_slice(&bytes[s..e]));
                    }
                    rounds.push(ranges);
                }
                Err(Fault::Bad(reason)) => panic!("{reason}"),
            }
        }
        panic!("no end to the fetch rounds");
    }

    /// The names h5py lists for fixture `name` (`links` or `attributes`).
    pub(crate) fn dense_names(name: &str, kind: &str) -> Vec<String> {
        let all: serde_json::Value = serde_json::from_slice(&fixture("dense.json")).unwrap();
        let list = all[name][kind].as_array().unwrap();
        list.iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect()
    }

    /// The name of a link message.
    pub(crate) fn link_name(m: &[u8]) -> String {
        assert_eq!(m[0], 1, "link message version");
        let flags = m[1];
        let mut at = 2 + usize::from(flags & 8 != 0) + 8 * usize::from(flags & 4 != 0);
        at += usize::from(flags & 16 != 0);
        let width = 1usize << (flags & 3);
        let mut len = [0u8; 8];
        len[..width].copy_from_slice(&m[at..at + width]);
        let len = u64::from_le_bytes(len) as usize;
        String::from_utf8(m[at + width..at + width + len].to_vec()).unwrap()
    }

    /// The name of an attribute message (version 3).
    pub(crate) fn attribute_name(m: &[u8]) -> String {
        assert_eq!(m[0], 3, "attribute message version");
        let len = usize::from(u16::from_le_bytes([m[2], m[3]]));
        String::from_utf8(m[9..9 + len - 1].to_vec()).unwrap()
    }

    /// `bytes` with the 4-byte checksum closing `bytes[at..at + len]` made right again.
    pub(crate) fn fix_checksum(bytes: &mut [u8], at: usize, len: usize) {
        let sum = crate::virtual_refs::scan::hdf5::checksum::lookup3(&bytes[at..at + len - 4]);
        bytes[at + len - 4..at + len].copy_from_slice(&sum.to_le_bytes());
    }
}
