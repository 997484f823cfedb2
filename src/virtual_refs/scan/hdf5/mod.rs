//! HDF5 files (netCDF-4 among them), decoded by floe's own metadata-only parser.
//!
//! The parser ([`parse`]) runs over the bytes fetched so far and reports every range it
//! still needs at once ([`bytes`]); [`scan`] fetches them in one batch of concurrent,
//! coalesced requests and runs it again. A file costs one round trip per level of its
//! metadata (superblock, root group, each group level, each chunk index level), whatever its
//! number of objects or chunks.
//!
//! - [`superblock`], [`object_header`], [`datatype`], [`layout`], [`attribute`], [`link`]:
//!   the structures and messages of the format;
//! - [`objects`]: the group hierarchy; [`heaps`], [`btree1`], [`btree2`], [`fractal_heap`],
//!   [`dense`]: the structures groups and attributes are kept in;
//! - [`storage`] with [`chunk_index`]: where each dataset's bytes are;
//! - [`netcdf4`]: the netCDF-4 conventions (dimensions, hidden attributes);
//! - [`filters`] and [`refs`]: the references, with what cannot be a byte range made inline.

pub(crate) mod attribute;
pub(crate) mod btree1;
pub(crate) mod btree2;
pub(crate) mod bytes;
pub(crate) mod checksum;
pub(crate) mod chunk_index;
pub(crate) mod datatype;
pub(crate) mod dense;
pub(crate) mod filters;
pub(crate) mod fractal_heap;
pub(crate) mod heaps;
pub(crate) mod layout;
pub(crate) mod link;
pub(crate) mod netcdf4;
pub(crate) mod object_header;
pub(crate) mod objects;
pub(crate) mod refs;
pub(crate) mod storage;
pub(crate) mod superblock;

use std::ops::Range;

use self::bytes::{Fault, FileBytes, Parsed};
use super::reader::SourceReader;
use crate::error::{Error, Result};
use crate::virtual_refs::kerchunk::KerchunkRefs;

/// Fetch rounds one file may take (a bound for hostile files; real files take a handful).
const MAX_ROUNDS: usize = 64;
/// Bytes of one file held in memory while scanning: metadata and the chunks made inline.
const MAX_HELD_BYTES: u64 = (1 << 30) + (64 << 20);
/// Each fetch reads at least this much (metadata is mostly small and close together).
const MIN_FETCH: u64 = 16 << 10;
/// Ranges closer than this are fetched as one.
const MERGE_GAP: u64 = 32 << 10;

/// What a scan found: the references and the file's format.
pub(crate) struct Scanned {
    pub(crate) refs: KerchunkRefs,
    pub(crate) format: String,
}

/// Where the HDF5 signature is in `first` (a file's first bytes): at byte 0, or after a user
/// block at 512, 1024, 2048... bytes.
pub(crate) fn signature_at(first: &[u8]) -> Option<u64> {
    std::iter::once(0)
        .chain((9..63).map(|k| 1u64 << k))
        .take_while(|&at| at < first.len() as u64)
        .find(|&at| first[at as usize..].starts_with(superblock::SIGNATURE))
}

/// Everything a parse needs, all from the bytes fetched so far.
fn parse(file: &FileBytes, url: &str, at: u64) -> Parsed<Scanned> {
    let sb = superblock::read(file, at).map_err(|e| match e {
        Fault::Bad(reason) => Fault::Bad(format!("its HDF5 superblock: {reason}")),
        missing => missing,
    })?;
    let sizes = sb.sizes;
    let tree = objects::walk(file, sizes, sb.root)?;
    let stored = storage::stored_all(file, sizes, &tree.datasets);
    let variables = netcdf4::variables(file, sizes, &tree);
    let (stored, variables) = match (stored, variables) {
        (Ok(s), Ok(v)) => (s, v),
        (Err(Fault::Missing(mut a)), Err(Fault::Missing(b))) => {
            a.extend(b);
            return Err(Fault::Missing(a));
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let refs = refs::to_refs(file, sizes, url, &tree, &stored, &variables)?;
    let format = if variables.is_netcdf {
        format!("netCDF-4 (HDF5 superblock version {})", sb.version)
    } else {
        format!("HDF5 (superblock version {})", sb.version)
    };
    Ok(Scanned { refs, format })
}

/// The ranges to fetch for `missing`: each widened to [`MIN_FETCH`], clipped to the file,
/// sorted, and merged where closer than [`MERGE_GAP`].
fn plan(mut missing: Vec<Range<u64>>, size: u64) -> Vec<Range<u64>> {
    for r in &mut missing {
        r.end = r.end.max(r.start.saturating_add(MIN_FETCH)).min(size);
    }
    missing.sort_by_key(|r| r.start);
    let mut out: Vec<Range<u64>> = Vec::new();
    for r in missing {
        match out.last_mut() {
            Some(last) if r.start <= last.end.saturating_add(MERGE_GAP) => {
                last.end = last.end.max(r.end);
            }
            _ => out.push(r),
        }
    }
    out
}

/// Scans the HDF5 file `reader` has open (its first bytes already read).
pub(crate) async fn scan(reader: &mut SourceReader, first: ::bytes::Bytes) -> Result<Scanned> {
    let at = signature_at(&first).unwrap_or(0);
    let mut file = FileBytes::new(reader.size);
    file.insert(0, first);
    let refused = |reason: String| Error::import_refused(reader.location.clone(), reason);
    for _ in 0..MAX_ROUNDS {
        match parse(&file, &reader.location, at) {
            Ok(scanned) => return Ok(scanned),
            Err(Fault::Bad(reason)) => return Err(refused(reason)),
            Err(Fault::Missing(missing)) => {
                let ranges = plan(missing, reader.size);
                let wanted: u64 = ranges.iter().map(|r| r.end - r.start).sum();
                if file.held().saturating_add(wanted) > MAX_HELD_BYTES {
                    return Err(refused(format!(
                        "its metadata and inline data would take more than {MAX_HELD_BYTES} bytes"
                    )));
                }
                for (range, bytes) in reader.read_ranges(&ranges).await? {
                    file.insert(range.start, bytes);
                }
            }
        }
    }
    Err(refused(format!(
        "its metadata needs more than {MAX_ROUNDS} rounds of reads (nested too deeply)"
    )))
}

/// Scans a whole file held in memory (no reads): the references, or why not.
pub(crate) fn scan_in_memory(url: &str, bytes: &[u8]) -> std::result::Result<Scanned, String> {
    let at = signature_at(bytes).unwrap_or(0);
    let mut file = FileBytes::new(bytes.len() as u64);
    file.insert(0, ::bytes::Bytes::copy_from_slice(bytes));
    match parse(&file, url, at) {
        Ok(scanned) => Ok(scanned),
        Err(Fault::Bad(reason)) => Err(reason),
        // Every byte is there: a miss would be a range past the end, refused before.
        Err(Fault::Missing(ranges)) => Err(format!("needs bytes it cannot have: {ranges:?}")),
    }
}
