//! Reading the start of a source file through its object store: the header bytes a scanner
//! needs, fetched in growing pieces until the header is complete.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};

use super::super::clients::build_client;
use super::super::import::sources::{derived_prefix, object_path};
use super::super::location::check_source;
use crate::error::{Error, Result};
use crate::storage::StorageOptions;

/// The first read of a file: most netCDF-3 headers fit.
pub(crate) const FIRST_READ: u64 = 64 << 10;
/// Ranges of one file fetched at once.
const RANGES_AT_ONCE: usize = 32;
/// Largest header read (a bound on memory for hostile or broken files).
pub(crate) const MAX_HEADER_BYTES: u64 = 64 << 20;

/// One source file, opened for ranged reads.
pub(crate) struct SourceReader {
    /// The normalised location (what references name).
    pub(crate) location: String,
    /// The file's size when opened.
    pub(crate) size: u64,
    store: Arc<dyn ObjectStore>,
    path: StorePath,
    /// The bytes read so far from the start of the file.
    start: BytesMut,
    /// Requests sent.
    requests: AtomicU64,
    /// Round trips: requests, counting a concurrent batch once.
    round_trips: AtomicU64,
    /// Bytes read by [`SourceReader::read`].
    ranged_bytes: AtomicU64,
}

impl SourceReader {
    /// Opens `location` (an absolute path or URL of a supported scheme) with `options` (the
    /// importer's own credentials and settings), reading its size with one HEAD request.
    ///
    /// Fails with [`Error::VirtualLocationRefused`] for a refused location,
    /// [`Error::VirtualSourceMissing`] when there is no such file, [`Error::Storage`] when the
    /// store fails.
    pub(crate) async fn open(location: &str, options: &StorageOptions) -> Result<Self> {
        let checked = check_source(location)?;
        let store = build_client(&derived_prefix(&checked), options)?;
        let path = object_path(&checked)?;
        let meta = store.head(&path).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => Error::VirtualSourceMissing {
                location: checked.text.clone(),
            },
            source => Error::Storage {
                key: checked.text.clone(),
                source,
            },
        })?;
        Ok(SourceReader {
            location: checked.text,
            size: meta.size,
            store,
            path,
            start: BytesMut::new(),
            requests: AtomicU64::new(1),
            round_trips: AtomicU64::new(1),
            ranged_bytes: AtomicU64::new(0),
        })
    }

    /// `length` bytes at `offset` (one request). Fails with [`Error::VirtualSourceChanged`]
    /// when the file is shorter than that now.
    pub(crate) async fn read(&self, offset: u64, length: u64) -> Result<Bytes> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        self.read_in_batch(offset, length).await
    }

    /// [`SourceReader::read`] as part of a batch whose round trip is counted once.
    async fn read_in_batch(&self, offset: u64, length: u64) -> Result<Bytes> {
        let end = offset
            .checked_add(length)
            .filter(|&end| end <= self.size)
            .ok_or_else(|| Error::VirtualSourceChanged {
                location: self.location.clone(),
            })?;
        let bytes = self.get_range(offset..end).await?;
        self.ranged_bytes.fetch_add(length, Ordering::Relaxed);
        if bytes.len() as u64 != length {
            return Err(Error::VirtualSourceChanged {
                location: self.location.clone(),
            });
        }
        Ok(bytes)
    }

    /// The bytes of each of `ranges` (each inside the file), fetched concurrently: one
    /// request per range. Fails with [`Error::VirtualSourceChanged`] when the file is shorter
    /// than a range now.
    pub(crate) async fn read_ranges(
        &self,
        ranges: &[std::ops::Range<u64>],
    ) -> Result<Vec<(std::ops::Range<u64>, Bytes)>> {
        use futures::{StreamExt, TryStreamExt};
        if !ranges.is_empty() {
            self.round_trips.fetch_add(1, Ordering::Relaxed);
        }
        futures::stream::iter(ranges.iter().cloned())
            .map(|r| async move {
                let bytes = self.read_in_batch(r.start, r.end - r.start).await?;
                Ok::<_, Error>((r, bytes))
            })
            .buffer_unordered(RANGES_AT_ONCE)
            .try_collect()
            .await
    }

    /// One ranged request, counted.
    async fn get_range(&self, range: std::ops::Range<u64>) -> Result<Bytes> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.store
            .get_range(&self.path, range)
            .await
            .map_err(|source| Error::Storage {
                key: self.location.clone(),
                source,
            })
    }

    /// Bytes read from the file so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.start.len() as u64 + self.ranged_bytes.load(Ordering::Relaxed)
    }

    /// Requests sent so far (the HEAD request included).
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Round trips so far: requests, a concurrent batch counted once (the HEAD included).
    pub(crate) fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// The file's first `len` bytes (fewer when the file is shorter), reading only what was
    /// not read yet. Fails with [`Error::KerchunkImport`] above [`MAX_HEADER_BYTES`].
    pub(crate) async fn first_bytes(&mut self, len: u64) -> Result<Bytes> {
        if len > MAX_HEADER_BYTES {
            return Err(Error::import_refused(
                self.location.clone(),
                format!("its header would need {len} bytes, above the limit of {MAX_HEADER_BYTES}"),
            ));
        }
        let want = len.min(self.size);
        let have = self.start.len() as u64;
        if want > have {
            self.round_trips.fetch_add(1, Ordering::Relaxed);
            let bytes = self.get_range(have..want).await?;
            if (bytes.len() as u64) != want - have {
                return Err(Error::VirtualSourceChanged {
                    location: self.location.clone(),
                });
            }
            self.start.extend_from_slice(&bytes);
        }
        Ok(Bytes::copy_from_slice(&self.start[..want as usize]))
    }
}
