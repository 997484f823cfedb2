//! A dataset's filter pipeline as Zarr v2 filters, and the re-encoding of chunks a reader of
//! those filters could not decode as stored (chunks whose filter mask skipped a filter).
//!
//! HDF5 applies filters in pipeline order when writing; Zarr v2 `filters` apply in list
//! order too, so the pipeline maps one to one: shuffle to `shuffle` (the element size),
//! deflate to `zlib`, zstd (32015) to `zstd`, blosc (32001) to `blosc`. Fletcher32 appends a
//! 4-byte checksum to each chunk: as the last filter (h5py's order), the references simply
//! leave those 4 bytes out; elsewhere in the pipeline (the netCDF library puts it first) it
//! becomes the `fletcher32` filter, which checks the checksum on every read. Other filters
//! (szip, n-bit, scale-offset, LZF, ...) are refused by name.

use std::io::{Read, Write};

use serde_json::{json, Value};

use super::layout::Filter;

/// Filter ids.
const DEFLATE: u16 = 1;
const SHUFFLE: u16 = 2;
const FLETCHER32: u16 = 3;
const SZIP: u16 = 4;
const NBIT: u16 = 5;
const SCALE_OFFSET: u16 = 6;
const LZF: u16 = 32000;
const BLOSC: u16 = 32001;
const ZSTD: u16 = 32015;

/// Bytes an intermediate stage of a chunk may hold beyond its decoded size (checksums of
/// filters that still have to be undone).
const SLACK: u64 = 1024;

/// Bytes a re-encoded chunk may inflate to (a bound for hostile files).
pub(crate) const MAX_CHUNK_BYTES: u64 = 256 << 20;

/// A dataset's pipeline as floe declares it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Pipeline {
    /// Zarr v2 `filters`.
    pub(crate) zarr: Vec<Value>,
    /// Chunks end with a Fletcher32 checksum the references leave out.
    pub(crate) checksum: bool,
    /// The filters floe decodes and encodes (all but Fletcher32), in pipeline order.
    steps: Vec<Step>,
    /// Each step's index in the file's pipeline (for filter masks).
    positions: Vec<usize>,
    /// The Fletcher32 filter's index in the file's pipeline.
    checksum_position: Option<usize>,
    /// No stored chunk reads through the declared filters: every chunk is decoded (its
    /// checksum checked) and re-encoded without the Fletcher32 filter.
    pub(crate) reencode_all: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    Shuffle(usize),
    Zlib(u32),
    Zstd(i32),
    Blosc,
    Fletcher32,
}

/// The pipeline of a dataset of `element_size`-byte elements. Fails with a reason naming a
/// filter floe cannot express.
pub(crate) fn pipeline(filters: &[Filter], element_size: u32) -> Result<Pipeline, String> {
    let mut p = Pipeline {
        zarr: Vec::new(),
        checksum: false,
        steps: Vec::new(),
        positions: Vec::new(),
        checksum_position: None,
        reencode_all: false,
    };
    for (i, f) in filters.iter().enumerate() {
        let value = |k: usize| f.values.get(k).copied();
        let step = match f.id {
            DEFLATE => Step::Zlib(value(0).unwrap_or(6).min(9)),
            SHUFFLE => Step::Shuffle(element_size as usize),
            FLETCHER32 if i + 1 == filters.len() => {
                p.checksum = true;
                p.checksum_position = Some(i);
                continue;
            }
            FLETCHER32 => Step::Fletcher32,
            ZSTD => Step::Zstd(value(0).map_or(3, |v| v as i32)),
            BLOSC => Step::Blosc,
            SZIP => return Err("the szip filter (no Zarr codec reads it)".into()),
            NBIT => return Err("the n-bit filter (no Zarr codec reads it)".into()),
            SCALE_OFFSET => return Err("the scale-offset filter (no Zarr codec reads it)".into()),
            LZF => return Err("the LZF filter (no Zarr codec that zarrs reads)".into()),
            other => {
                return Err(format!(
                "filter {other}{} (not supported: deflate, shuffle, fletcher32, zstd, blosc are)",
                if f.name.is_empty() {
                    String::new()
                } else {
                    format!(" `{}`", f.name)
                }
            ))
            }
        };
        p.zarr.push(match step {
            Step::Shuffle(size) => json!({"id": "shuffle", "elementsize": size}),
            Step::Zlib(level) => json!({"id": "zlib", "level": level}),
            Step::Zstd(level) => json!({"id": "zstd", "level": level}),
            Step::Blosc => blosc_json(f, element_size),
            Step::Fletcher32 => json!({"id": "fletcher32"}),
        });
        p.steps.push(step);
        p.positions.push(i);
    }
    // A checksum followed by a shuffle: the shuffled buffer is no longer a whole number of
    // elements, which HDF5 allows and numcodecs' `shuffle` refuses. Such chunks are copied
    // without the checksum instead.
    let fletcher = p.steps.iter().position(|s| *s == Step::Fletcher32);
    if let Some(at) = fletcher {
        if p.steps[at..].iter().any(|s| matches!(s, Step::Shuffle(_))) {
            p.reencode_all = true;
            p.zarr.remove(at);
        }
    }
    Ok(p)
}

fn blosc_json(f: &Filter, element_size: u32) -> Value {
    let value = |k: usize| f.values.get(k).copied();
    let cname = match value(6).unwrap_or(0) {
        1 => "lz4",
        2 => "lz4hc",
        3 => "snappy",
        4 => "zlib",
        5 => "zstd",
        _ => "blosclz",
    };
    json!({"id": "blosc", "cname": cname, "clevel": value(4).unwrap_or(5),
           "shuffle": value(5).unwrap_or(1), "typesize": element_size, "blocksize": 0})
}

impl Pipeline {
    /// Whether a chunk stored with `mask` reads through the declared filters as stored.
    pub(crate) fn reads_as_stored(&self, mask: u32) -> bool {
        mask == 0 && !self.reencode_all
    }

    /// The stored bytes of a chunk without its checksum.
    pub(crate) fn stored_length(&self, size: u64) -> Result<u64, String> {
        if self.checksum {
            size.checked_sub(4)
                .ok_or_else(|| "a checksummed chunk shorter than its checksum".to_string())
        } else {
            Ok(size)
        }
    }

    /// The raw bytes of a chunk stored with filter `mask` (bit set: filter skipped): the
    /// filters that were applied undone. `raw_size` bounds the decoded size.
    pub(crate) fn decode(
        &self,
        stored: &[u8],
        mask: u32,
        raw_size: u64,
    ) -> Result<Vec<u8>, String> {
        let applied = |pos: usize| mask & (1 << pos) == 0;
        let mut data = stored.to_vec();
        if let Some(pos) = self.checksum_position {
            if applied(pos) {
                let n = data
                    .len()
                    .checked_sub(4)
                    .ok_or("a chunk shorter than its checksum")?;
                data.truncate(n);
            }
        }
        for (step, &pos) in self.steps.iter().zip(&self.positions).rev() {
            if applied(pos) {
                data = decode(*step, &data, raw_size)?;
            }
        }
        if data.len() as u64 > raw_size {
            return Err(format!(
                "a chunk decodes to {} bytes, more than its {raw_size}",
                data.len()
            ));
        }
        Ok(data)
    }

    /// Re-encodes a chunk stored with filter `mask` so that the declared filters decode it:
    /// [`Pipeline::decode`], then every filter applied.
    pub(crate) fn reencode(
        &self,
        stored: &[u8],
        mask: u32,
        raw_size: u64,
    ) -> Result<Vec<u8>, String> {
        let mut data = self.decode(stored, mask, raw_size)?;
        for step in &self.steps {
            if self.reencode_all && *step == Step::Fletcher32 {
                continue;
            }
            data = encode(*step, &data)?;
        }
        Ok(data)
    }
}

fn decode(step: Step, data: &[u8], limit: u64) -> Result<Vec<u8>, String> {
    match step {
        Step::Shuffle(size) => Ok(unshuffle(data, size)),
        Step::Zlib(_) => {
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(data)
                .take(limit.min(MAX_CHUNK_BYTES) + SLACK)
                .read_to_end(&mut out)
                .map_err(|e| format!("a deflate stream does not decode: {e}"))?;
            Ok(out)
        }
        Step::Zstd(_) => {
            let mut out = Vec::new();
            zstd::stream::read::Decoder::new(data)
                .map_err(|e| format!("a zstd stream does not decode: {e}"))?
                .take(limit.min(MAX_CHUNK_BYTES) + SLACK)
                .read_to_end(&mut out)
                .map_err(|e| format!("a zstd stream does not decode: {e}"))?;
            Ok(out)
        }
        Step::Blosc => Err("a blosc chunk with a filter mask (not supported)".into()),
        Step::Fletcher32 => {
            let n = data
                .len()
                .checked_sub(4)
                .ok_or("a chunk shorter than its checksum")?;
            if fletcher32(&data[..n]).to_le_bytes() != data[n..] {
                return Err(
                    "a chunk's Fletcher32 checksum does not match: the file is damaged".into(),
                );
            }
            Ok(data[..n].to_vec())
        }
    }
}

fn encode(step: Step, data: &[u8]) -> Result<Vec<u8>, String> {
    match step {
        Step::Shuffle(size) => Ok(shuffle(data, size)),
        Step::Zlib(level) => {
            let mut e =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(level));
            e.write_all(data).map_err(|e| e.to_string())?;
            e.finish().map_err(|e| e.to_string())
        }
        Step::Zstd(level) => zstd::bulk::compress(data, level).map_err(|e| e.to_string()),
        Step::Blosc => Err("re-encoding a blosc chunk (not supported)".into()),
        Step::Fletcher32 => {
            let mut out = data.to_vec();
            out.extend_from_slice(&fletcher32(data).to_le_bytes());
            Ok(out)
        }
    }
}

/// The Fletcher-32 checksum HDF5 and numcodecs append: sums of big-endian 16-bit words
/// (a last odd byte as the high byte of a word), folded modulo 65535 every 360 words.
pub(crate) fn fletcher32(data: &[u8]) -> u32 {
    let fold = |x: u32| (x & 0xffff) + (x >> 16);
    let (mut sum1, mut sum2) = (0xffffu32, 0xffffu32);
    for block in data.chunks(720) {
        for word in block.chunks(2) {
            let hi = u32::from(word[0]) << 8;
            sum1 += hi | word.get(1).map_or(0, |&b| u32::from(b));
            sum2 += sum1;
        }
        sum1 = fold(sum1);
        sum2 = fold(sum2);
    }
    sum1 = fold(sum1);
    sum2 = fold(sum2);
    (sum2 << 16) | sum1
}

/// Byte shuffle: byte `j` of element `i` goes to `j * count + i`; a tail shorter than one
/// element stays as it is.
pub(crate) fn shuffle(data: &[u8], size: usize) -> Vec<u8> {
    if size <= 1 {
        return data.to_vec();
    }
    let count = data.len() / size;
    let mut out = data.to_vec();
    for i in 0..count {
        for j in 0..size {
            out[j * count + i] = data[i * size + j];
        }
    }
    out
}

/// The inverse of [`shuffle`].
pub(crate) fn unshuffle(data: &[u8], size: usize) -> Vec<u8> {
    if size <= 1 {
        return data.to_vec();
    }
    let count = data.len() / size;
    let mut out = data.to_vec();
    for i in 0..count {
        for j in 0..size {
            out[i * size + j] = data[j * count + i];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(id: u16, values: Vec<u32>) -> Filter {
        Filter {
            id,
            name: String::new(),
            optional: false,
            values,
        }
    }

    #[test]
    fn shuffle_round_trips_with_a_tail() {
        let data: Vec<u8> = (0..23).collect();
        assert_eq!(unshuffle(&shuffle(&data, 4), 4), data);
        assert_eq!(shuffle(&[1, 2, 3, 4], 2), vec![1, 3, 2, 4]);
    }

    #[test]
    fn an_unfiltered_chunk_is_encoded_like_the_others() {
        let p = pipeline(
            &[
                filter(SHUFFLE, vec![]),
                filter(DEFLATE, vec![4]),
                filter(FLETCHER32, vec![]),
            ],
            4,
        )
        .unwrap();
        assert!(p.checksum);
        assert_eq!(p.zarr.len(), 2);
        let raw: Vec<u8> = (0..64u8).collect();
        // Every filter skipped (an unfiltered partial edge chunk).
        let encoded = p.reencode(&raw, 0b111, 64).unwrap();
        let back = unshuffle(&decode(Step::Zlib(4), &encoded, 64).unwrap(), 4);
        assert_eq!(back, raw);
    }

    #[test]
    fn unknown_filters_are_named() {
        let err = pipeline(&[filter(4, vec![])], 4).unwrap_err();
        assert!(err.contains("szip"), "{err}");
    }

    #[test]
    fn a_checksum_before_a_shuffle_is_checked_then_dropped() {
        let p = pipeline(
            &[
                filter(FLETCHER32, vec![]),
                filter(SHUFFLE, vec![]),
                filter(DEFLATE, vec![4]),
            ],
            8,
        )
        .unwrap();
        assert!(p.reencode_all && !p.reads_as_stored(0));
        assert_eq!(p.zarr.len(), 2);
        let raw: Vec<u8> = (0..40u8).collect();
        let mut with_sum = raw.clone();
        with_sum.extend_from_slice(&fletcher32(&raw).to_le_bytes());
        let stored = encode(Step::Zlib(4), &shuffle(&with_sum, 8)).unwrap();
        let copied = p.reencode(&stored, 0, 40).unwrap();
        let back = unshuffle(&decode(Step::Zlib(4), &copied, 64).unwrap(), 8);
        assert_eq!(back, raw);
    }

    #[test]
    fn fletcher32_before_other_filters_is_a_codec_and_checks_the_checksum() {
        // Values numcodecs' Fletcher32 gives (it reads HDF5's checksums).
        assert_eq!(
            fletcher32(&[0, 1, 2, 3, 4, 5, 6]).to_le_bytes(),
            [0x09, 0x0c, 0x17, 0x14]
        );
        assert_eq!(
            fletcher32(&b"abcdefgh".repeat(100)).to_le_bytes(),
            [0x6c, 0xde, 0x58, 0x48]
        );
        let p = pipeline(&[filter(FLETCHER32, vec![]), filter(DEFLATE, vec![4])], 4).unwrap();
        assert!(!p.checksum);
        assert_eq!(p.zarr[0], json!({"id": "fletcher32"}));
        let raw: Vec<u8> = (0..40u8).collect();
        let stored = p.reencode(&raw, 0b11, 40).unwrap();
        assert_eq!(p.decode(&stored, 0, 40).unwrap(), raw);
        let mut damaged = decode(Step::Zlib(4), &stored, 64).unwrap();
        damaged[3] ^= 1;
        assert!(decode(Step::Fletcher32, &damaged, 64)
            .unwrap_err()
            .contains("checksum"));
    }
}
