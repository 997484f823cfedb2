//! Chunks an import encodes itself: the codec of an array (through zarrs, one chunk at a
//! time, each with its own shape), and the chunks a region of loaded values covers, encoded
//! before anything is written (chunks the region covers in part are read and overlaid then,
//! so a read that fails refuses the import instead of leaving it half written).

use bytes::Bytes;
use zarrs::array::{ArrayBytes, CodecOptions};

use super::values::{check_decodable, Decoded, MAX_DECODED_CHUNK_BYTES};
use crate::error::{Error, Result};
use crate::format::manifest::ChunkCoord;
use crate::format::path::NodePath;
use crate::repo::Session;
use crate::zarr::metadata::NodeMetadata;
use crate::zarr::region::{copy_region, for_each_index, intersect, Block};

/// A zarrs array that decodes and encodes the chunks of the array `document` (its codec
/// chain, data type and fill value; a rectilinear grid is replaced by the regular grid of its
/// largest edges, since each chunk is handled with its own shape).
pub(crate) struct ChunkCodec {
    zarrs: zarrs::array::Array<dyn zarrs::storage::ReadableWritableListableStorageTraits>,
    element: usize,
}

impl ChunkCodec {
    /// The codec of the array `metadata`. Fails with the reason when zarrs cannot open it or
    /// its data type has no fixed size.
    pub(crate) fn new(metadata: &NodeMetadata) -> std::result::Result<Self, String> {
        let geometry = metadata.geometry().ok_or("not an array")?;
        check_decodable(metadata.document(), false)?;
        let mut document = metadata.document().clone();
        document.insert(
            "chunk_grid".into(),
            serde_json::json!({"name": "regular",
                "configuration": {"chunk_shape": geometry.max_chunk_shape()}}),
        );
        let zarrs = crate::zarr::zarrs_compat::detached_zarrs(&document)?;
        let element = zarrs
            .data_type()
            .fixed_size()
            .ok_or("its data type has no fixed size")?;
        Ok(ChunkCodec { zarrs, element })
    }

    /// Size in bytes of one element.
    pub(crate) fn element_size(&self) -> usize {
        self.element
    }

    /// The decoded bytes of a chunk of `shape` (`None`: an absent chunk, all fill value).
    pub(crate) fn decode(
        &self,
        encoded: Option<&[u8]>,
        shape: &[u64],
    ) -> std::result::Result<Vec<u8>, String> {
        let elements = shape
            .iter()
            .try_fold(self.element as u64, |n, &d| n.checked_mul(d))
            .filter(|&n| n <= MAX_DECODED_CHUNK_BYTES)
            .ok_or_else(|| format!("a chunk of {shape:?} elements is too large to decode"))?
            / self.element as u64;
        let Some(encoded) = encoded else {
            return Ok(self
                .zarrs
                .fill_value()
                .as_ne_bytes()
                .repeat(elements as usize));
        };
        let shape = non_zero(shape)?;
        use zarrs::array::ArrayToBytesCodecTraits;
        let decoded = self
            .zarrs
            .codecs()
            .decode(
                std::borrow::Cow::Borrowed(encoded),
                &shape,
                self.zarrs.data_type(),
                self.zarrs.fill_value(),
                &CodecOptions::default(),
            )
            .map_err(|e| format!("cannot decode with the array's codecs: {e}"))?
            .into_fixed()
            .map_err(|e| format!("decoded to variable-length data: {e}"))?;
        Ok(decoded.into_owned())
    }

    /// `decoded` bytes of a chunk of `shape`, encoded with the array's codecs.
    pub(crate) fn encode(
        &self,
        decoded: Vec<u8>,
        shape: &[u64],
    ) -> std::result::Result<bytes::Bytes, String> {
        let shape = non_zero(shape)?;
        use zarrs::array::ArrayToBytesCodecTraits;
        let encoded = self
            .zarrs
            .codecs()
            .encode(
                ArrayBytes::new_flen(decoded),
                &shape,
                self.zarrs.data_type(),
                self.zarrs.fill_value(),
                &CodecOptions::default(),
            )
            .map_err(|e| format!("cannot encode with the array's codecs: {e}"))?;
        Ok(bytes::Bytes::from(encoded.into_owned()))
    }
}

fn non_zero(shape: &[u64]) -> std::result::Result<Vec<std::num::NonZeroU64>, String> {
    shape
        .iter()
        .map(|&s| std::num::NonZeroU64::new(s).ok_or_else(|| "an empty chunk shape".to_string()))
        .collect()
}

/// The encoded chunks of the array `metadata` (at `path` of `session`) that writing `values`
/// at `origin` touches, at their coordinates. Where the region covers a chunk's elements only
/// in part, the chunk as `session` holds it now is read (when `read_existing`; virtual chunks
/// need the handle's authorization) and the values overlaid; elsewhere the chunk starts as
/// the fill value.
///
/// Fails with the session's read errors, [`Error::CorruptObject`] for a stored chunk that
/// does not decode, and [`Error::KerchunkImport`] when the region does not fit the array or
/// the codecs fail.
pub(crate) async fn encode_region(
    session: &Session,
    path: &NodePath,
    metadata: &NodeMetadata,
    origin: &[u64],
    values: &Decoded,
    read_existing: bool,
) -> Result<Vec<(ChunkCoord, Bytes)>> {
    let what = format!("array `{path}`");
    let refuse = |reason: String| Error::import_refused(what.clone(), reason);
    let geometry = metadata
        .geometry()
        .ok_or_else(|| refuse("not an array".into()))?;
    let codec = ChunkCodec::new(metadata).map_err(refuse)?;
    let ndim = geometry.shape.len();
    if origin.len() != ndim || values.shape.len() != ndim {
        return Err(refuse(
            "the values do not have the array's dimensions".into(),
        ));
    }
    if values.shape.contains(&0) {
        return Ok(Vec::new());
    }
    let region: Vec<std::ops::Range<u64>> = origin
        .iter()
        .zip(&values.shape)
        .map(|(&o, &n)| o..o.saturating_add(n))
        .collect();
    let mut chunk_ranges = Vec::with_capacity(ndim);
    for (dim, r) in region.iter().enumerate() {
        let first = geometry.chunk_of(dim, r.start);
        let last = geometry.chunk_of(dim, r.end - 1);
        let (Some(first), Some(last)) = (first, last) else {
            return Err(refuse(format!(
                "the values at {origin:?} reach past its shape"
            )));
        };
        chunk_ranges.push(first..last + 1);
    }
    let mut coords = Vec::new();
    for_each_index(&chunk_ranges, |c| coords.push(c.to_vec()));
    let element = codec.element_size();
    let mut out = Vec::with_capacity(coords.len());
    for coord in coords {
        let (mut start, mut shape) = (Vec::with_capacity(ndim), Vec::with_capacity(ndim));
        for (dim, &c) in coord.iter().enumerate() {
            let (Some(s), Some(l)) = (geometry.chunk_start(dim, c), geometry.chunk_length(dim, c))
            else {
                return Err(refuse(format!("chunk {coord:?} is outside its grid")));
            };
            start.push(s);
            shape.push(l);
        }
        let chunk_box: Vec<std::ops::Range<u64>> = start
            .iter()
            .zip(&shape)
            .map(|(&s, &l)| s..s.saturating_add(l))
            .collect();
        // The chunk's elements inside the array: all of them covered needs no read.
        let inside: Vec<std::ops::Range<u64>> = chunk_box
            .iter()
            .zip(&geometry.shape)
            .map(|(b, &n)| b.start..b.end.min(n))
            .collect();
        let covered = inside
            .iter()
            .zip(&region)
            .all(|(i, r)| r.start <= i.start && i.end <= r.end);
        let existing = if read_existing && !covered {
            session.get_chunk(path, &coord).await?
        } else {
            None
        };
        let corrupt = |reason: String| Error::corrupt(format!("{path} chunk {coord:?}"), reason);
        let mut bytes = codec.decode(existing.as_deref(), &shape).map_err(corrupt)?;
        if let Some(common) = intersect(&region, &chunk_box) {
            copy_region(
                &Block {
                    bytes: &values.bytes[..],
                    origin,
                    shape: &values.shape,
                },
                &mut Block {
                    bytes: &mut bytes[..],
                    origin: &start,
                    shape: &shape,
                },
                &common,
                element,
            );
        }
        out.push((coord, codec.encode(bytes, &shape).map_err(refuse)?));
    }
    Ok(out)
}
