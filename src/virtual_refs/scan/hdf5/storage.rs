//! Where a dataset's bytes are: its chunks from whichever index it uses, its one contiguous
//! range, or its compact data.

use super::bytes::{bad, gather, FileBytes, Parsed, Sizes, UNDEFINED};
use super::chunk_index::{btree2_chunks, extensible_array, fixed_array, ChunkEntry, ChunkGeometry};
use super::layout::{ChunkIndex, Layout};
use super::objects::Dataset;

/// A dataset's stored bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Stored {
    /// Nothing written yet: every element reads as the fill value.
    Unwritten,
    /// Bytes inside the object header.
    Compact(Vec<u8>),
    /// One range of the file.
    Contiguous { address: u64, size: u64 },
    /// Chunks of shape `chunk`.
    Chunked {
        chunk: Vec<u64>,
        entries: Vec<ChunkEntry>,
        /// Partial edge chunks are stored unfiltered.
        dont_filter_partial: bool,
    },
}

/// The number of chunks along each dimension, `None` on overflow or a zero chunk extent.
pub(crate) fn grid(dims: &[u64], chunk: &[u64]) -> Option<Vec<u64>> {
    dims.iter()
        .zip(chunk)
        .map(|(&d, &c)| (c > 0).then(|| d.div_ceil(c)))
        .collect()
}

/// The stored bytes of every dataset, indexes of all datasets walked together.
pub(crate) fn stored_all(
    file: &FileBytes,
    sizes: Sizes,
    datasets: &[Dataset],
) -> Parsed<Vec<Stored>> {
    gather(datasets.iter().map(|d| {
        stored(file, sizes, d).map_err(|e| match e {
            super::bytes::Fault::Bad(reason) => {
                super::bytes::Fault::Bad(format!("dataset `{}`: {reason}", d.path))
            }
            other => other,
        })
    }))
}

fn stored(file: &FileBytes, sizes: Sizes, d: &Dataset) -> Parsed<Stored> {
    let element = u64::from(d.datatype.size());
    let elements = d
        .space
        .elements()
        .ok_or_else(|| super::bytes::Fault::Bad("its dataspace overflows".into()))?;
    match &d.layout {
        Layout::Compact(bytes) => Ok(Stored::Compact(bytes.clone())),
        Layout::Contiguous { address, .. } if *address == UNDEFINED => Ok(Stored::Unwritten),
        Layout::Contiguous { address, size } => {
            let needed = elements.checked_mul(element);
            if needed.is_none_or(|n| n > *size) {
                return bad(format!(
                    "its contiguous storage of {size} bytes is smaller than its {elements} \
                     elements of {element} bytes"
                ));
            }
            check_range(file, *address, *size)?;
            Ok(Stored::Contiguous {
                address: *address,
                size: *size,
            })
        }
        Layout::Chunked {
            chunk,
            index,
            address,
            dont_filter_partial,
        } => {
            if chunk.len() != d.space.dims.len() {
                return bad(format!(
                    "its chunks have {} dimensions and its dataspace {}",
                    chunk.len(),
                    d.space.dims.len()
                ));
            }
            let Some(grid) = grid(&d.space.dims, chunk) else {
                return bad("a chunk extent of zero");
            };
            if *address == UNDEFINED {
                return Ok(Stored::Unwritten);
            }
            let geometry = ChunkGeometry {
                dims: d.space.dims.clone(),
                max_dims: d.space.max_dims.clone(),
                chunk: chunk.clone(),
                element_size: d.datatype.size(),
                filtered: !d.filters.is_empty(),
            };
            let chunk_bytes = chunk
                .iter()
                .try_fold(element, |n, &c| n.checked_mul(c))
                .ok_or_else(|| super::bytes::Fault::Bad("its chunks are too large".into()))?;
            let entries = match index {
                ChunkIndex::BtreeV1 => super::btree1::chunks(file, sizes, *address, chunk)?,
                ChunkIndex::Single { filtered } => {
                    let (size, filter_mask) = filtered.unwrap_or((chunk_bytes, 0));
                    vec![ChunkEntry {
                        scaled: vec![0; chunk.len()],
                        address: *address,
                        size,
                        filter_mask,
                    }]
                }
                ChunkIndex::Implicit => implicit(file, &grid, *address, chunk_bytes)?,
                ChunkIndex::FixedArray => fixed_array::entries(file, sizes, *address, &geometry)?,
                ChunkIndex::ExtensibleArray => {
                    extensible_array::entries(file, sizes, *address, &geometry)?
                }
                ChunkIndex::BtreeV2 => btree2_chunks::entries(file, sizes, *address, &geometry)?,
            };
            for e in &entries {
                if e.scaled.len() != grid.len() || e.scaled.iter().zip(&grid).any(|(s, g)| s >= g) {
                    return bad(format!(
                        "a chunk at byte {} lies outside the dataset (grid position {:?})",
                        e.address, e.scaled
                    ));
                }
                check_range(file, e.address, e.size)?;
            }
            Ok(Stored::Chunked {
                chunk: chunk.clone(),
                entries,
                dont_filter_partial: *dont_filter_partial,
            })
        }
    }
}

/// Every chunk of an implicit index: chunk `i` (row-major) at `address + i * chunk_bytes`.
/// The whole grid must lie inside the file (checked before anything is listed).
fn implicit(
    file: &FileBytes,
    grid: &[u64],
    address: u64,
    chunk_bytes: u64,
) -> Parsed<Vec<ChunkEntry>> {
    let count = grid
        .iter()
        .try_fold(1u64, |n, &g| n.checked_mul(g))
        .ok_or_else(|| super::bytes::Fault::Bad("too many chunks".into()))?;
    match count.checked_mul(chunk_bytes) {
        _ if chunk_bytes == 0 => return bad("its chunks hold no bytes"),
        Some(total) => check_range(file, address, total)?,
        None => return bad("its chunks would overflow the file"),
    }
    let mut out = Vec::with_capacity(count as usize);
    for i in 0..count {
        let mut rest = i;
        let mut scaled = vec![0u64; grid.len()];
        for (s, &g) in scaled.iter_mut().zip(grid).rev() {
            *s = rest % g;
            rest /= g;
        }
        let at = i
            .checked_mul(chunk_bytes)
            .and_then(|o| o.checked_add(address))
            .ok_or_else(|| super::bytes::Fault::Bad("a chunk address overflows".into()))?;
        out.push(ChunkEntry {
            scaled,
            address: at,
            size: chunk_bytes,
            filter_mask: 0,
        });
    }
    Ok(out)
}

/// A byte range must lie inside the file.
fn check_range(file: &FileBytes, address: u64, size: u64) -> Parsed<()> {
    match address.checked_add(size) {
        Some(end) if end <= file.size => Ok(()),
        _ => bad(format!(
            "data at byte {address} of {size} bytes lies past the end of the file ({} bytes)",
            file.size
        )),
    }
}
