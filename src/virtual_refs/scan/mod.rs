//! Native scanners of source files: the byte ranges of a file's variables found by floe
//! itself, without a Python tool, as the kerchunk references every virtual import takes.
//!
//! - [`reader`]: the file's first bytes through its object store, in growing pieces;
//! - [`netcdf3`]: netCDF-3 classic, 64-bit offset and CDF-5 files;
//! - [`hdf5`]: HDF5 files, netCDF-4 files among them;
//! - [`order`]: the order of many files along an append dimension.
//!
//! The format is recognised by the file's magic bytes.

mod glob;
mod hdf5;
mod netcdf3;
mod order;
mod reader;

use std::sync::atomic::{AtomicUsize, Ordering};

use futures::{StreamExt, TryStreamExt};

use crate::error::{Error, Result};
use crate::storage::StorageOptions;
use crate::virtual_refs::kerchunk::KerchunkRefs;
pub use glob::expand_sources;
use reader::SourceReader;

/// What a source file was found to be, and what its scan cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanSummary {
    /// The file's format, e.g. `netCDF-3 64-bit offset`.
    pub format: String,
    /// Requests sent to read it (the HEAD request included).
    pub requests: u64,
    /// Round trips: requests one after another, a batch of concurrent requests counted once
    /// (the HEAD request included).
    pub round_trips: u64,
    /// Bytes of the file read.
    pub bytes_read: u64,
}

/// Scans the source file at `location` (an absolute path, or a `file://`, `s3://`, `gs://`,
/// `az://`, `http(s)://` URL, read with the importer's `options`) and returns its variables
/// as kerchunk references (byte ranges of the file), ready for
/// [`crate::import_kerchunk`], with what the scan cost.
///
/// Only metadata is read: a netCDF-3 file's first 64 KiB (more when the header is longer);
/// an HDF5 file's first 64 KiB, then one batch of concurrent ranged reads per level of its
/// metadata, plus the chunks that must be copied inline (compact data, chunks stored with
/// filters skipped, variable-length strings). Fails with [`Error::KerchunkImport`] for a
/// file that is neither, whose metadata is malformed, or that uses what floe refuses
/// (named), with
/// [`Error::VirtualLocationRefused`], [`Error::VirtualSourceMissing`] or [`Error::Storage`]
/// when the file cannot be read.
pub async fn scan_source(
    location: &str,
    options: &StorageOptions,
) -> Result<(KerchunkRefs, ScanSummary)> {
    let (_, refs, summary) = scan_one(location, options).await?;
    Ok((refs, summary))
}

/// Scans a whole file held in memory, `bytes`, named `url` in the references: what
/// [`scan_source`] finds in the same file, with its format, and no reads. For fuzzing,
/// tests, and files already in hand.
///
/// Fails with [`Error::KerchunkImport`] as [`scan_source`] does.
pub fn scan_bytes(url: &str, bytes: &[u8]) -> Result<(KerchunkRefs, String)> {
    let refused = |reason: String| Error::import_refused(url.to_string(), reason);
    if let Some(variant) = netcdf3::header::Variant::of_magic(bytes) {
        return match netcdf3::header::parse(bytes).map_err(refused)? {
            netcdf3::header::Parse::Done(header) => Ok((
                netcdf3::refs::to_refs(&header, url, bytes.len() as u64).map_err(refused)?,
                variant.to_string(),
            )),
            netcdf3::header::Parse::NeedMore(_) => Err(refused(format!(
                "the header goes on past the end of the file ({} bytes)",
                bytes.len()
            ))),
        };
    }
    if hdf5::signature_at(bytes).is_some() {
        let scanned = hdf5::scan_in_memory(url, bytes).map_err(refused)?;
        return Ok((scanned.refs, scanned.format));
    }
    Err(refused(
        "neither netCDF nor HDF5 (no `CDF` or HDF5 signature at its start)".into(),
    ))
}

/// Scans many files, `concurrency` at once (at least 1), as [`scan_source`] does, and returns
/// them in the order to import them: the order given, or with `append_dim`, the order of
/// their append coordinate (the 1-D variable named like the dimension, CF times compared as
/// instants), reading its first and last value in each file (two more small reads per file;
/// a compressed coordinate's first and last chunks).
///
/// Fails as [`scan_source`] for the first file that fails, and with [`Error::KerchunkImport`]
/// for a file without that coordinate, whose values decrease, or whose values overlap
/// another file's (naming both).
pub async fn scan_sources(
    locations: &[String],
    options: &StorageOptions,
    concurrency: usize,
    append_dim: Option<&str>,
) -> Result<Vec<(KerchunkRefs, ScanSummary)>> {
    scan_sources_with_progress(locations, options, concurrency, append_dim, &|_| {}).await
}

/// Progress of [`scan_sources_with_progress`]: files scanned so far, of `total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanProgress {
    /// Files scanned.
    pub scanned: usize,
    /// Files given.
    pub total: usize,
}

/// [`scan_sources`], calling `progress` as each file's scan finishes.
pub async fn scan_sources_with_progress(
    locations: &[String],
    options: &StorageOptions,
    concurrency: usize,
    append_dim: Option<&str>,
    progress: &(dyn Fn(ScanProgress) + Send + Sync),
) -> Result<Vec<(KerchunkRefs, ScanSummary)>> {
    let total = locations.len();
    let done = AtomicUsize::new(0);
    let done = &done;
    // The futures are collected first: a lazy `map` inside the stream would make this
    // future's `Send` bound depend on a closure's lifetime (callers spawning it then fail).
    let scans: Vec<_> = locations
        .iter()
        .map(|l| async move {
            let scanned = scan_one(l, options).await?;
            let count = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress(ScanProgress {
                scanned: count,
                total,
            });
            Ok::<_, Error>(scanned)
        })
        .collect();
    let scanned: Vec<(SourceReader, KerchunkRefs, ScanSummary)> = futures::stream::iter(scans)
        .buffered(concurrency.max(1))
        .try_collect()
        .await?;
    let scanned = match append_dim {
        Some(dim) if scanned.len() > 1 => {
            order::order_by_coordinate(scanned, dim, concurrency).await?
        }
        _ => scanned,
    };
    Ok(scanned
        .into_iter()
        .map(|(reader, refs, mut summary)| {
            summary.requests = reader.requests();
            summary.round_trips = reader.round_trips();
            summary.bytes_read = reader.bytes_read();
            (refs, summary)
        })
        .collect())
}

/// One file scanned, with its reader (still open, for further reads).
async fn scan_one(
    location: &str,
    options: &StorageOptions,
) -> Result<(SourceReader, KerchunkRefs, ScanSummary)> {
    let mut reader = SourceReader::open(location, options).await?;
    // The first read serves the signature and most headers at once.
    let magic = reader.first_bytes(reader::FIRST_READ).await?;
    let (refs, format) = match netcdf3::header::Variant::of_magic(&magic) {
        Some(variant) => (netcdf3::scan(&mut reader).await?, variant.to_string()),
        None if hdf5::signature_at(&magic).is_some() => {
            let scanned = hdf5::scan(&mut reader, magic).await?;
            (scanned.refs, scanned.format)
        }
        None => {
            return Err(Error::import_refused(
                reader.location.clone(),
                "neither netCDF nor HDF5 (no `CDF` or HDF5 signature at its start)",
            ))
        }
    };
    let summary = ScanSummary {
        format,
        requests: reader.requests(),
        round_trips: reader.round_trips(),
        bytes_read: reader.bytes_read(),
    };
    Ok((reader, refs, summary))
}
