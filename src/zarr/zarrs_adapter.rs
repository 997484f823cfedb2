//! [`ZarrStore`] behind the storage traits of the `zarrs` crate (`zarrs_storage`), so zarrs
//! reads and writes floe sessions directly.
//!
//! - [`AsyncZarrsStore`]: the async traits, for zarrs' `async_*` API.
//! - [`SyncZarrsStore`]: the blocking traits. zarrs calls them from its own (rayon) threads as
//!   well as from the caller's thread, so every call blocks on a tokio runtime: a borrowed
//!   [`tokio::runtime::Handle`] or a runtime the adapter owns.
//!
//! Partial reads are supported; partial writes are emulated by reading and rewriting the whole
//! value (floe writes chunks whole), so `supports_set_partial` is false. floe errors become
//! [`StorageError::Other`] carrying the floe message; unsatisfiable byte ranges become
//! [`StorageError::InvalidByteRangeError`].

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::runtime::{Handle, RuntimeFlavor};
use zarrs_storage::byte_range::{
    ByteRange as ZarrsByteRange, ByteRangeIterator, InvalidByteRangeError,
};
use zarrs_storage::{
    async_store_set_partial_many, store_set_partial_many, AsyncListableStorageTraits,
    AsyncMaybeBytesIterator, AsyncReadableStorageTraits, AsyncWritableStorageTraits,
    ListableStorageTraits, MaybeBytes, MaybeBytesIterator, OffsetBytesIterator,
    ReadableStorageTraits, StorageError, StoreKey, StoreKeys, StoreKeysPrefixes, StorePrefix,
    WritableStorageTraits,
};

use crate::error::{Error, Result};

use super::store::{ByteRange, ZarrStore};

fn storage_error(error: Error) -> StorageError {
    StorageError::Other(error.to_string())
}

fn to_floe_range(range: ZarrsByteRange) -> ByteRange {
    match range {
        ZarrsByteRange::FromStart(start, None) => ByteRange::FromOffset(start),
        ZarrsByteRange::FromStart(start, Some(length)) => ByteRange::Bounded {
            start,
            end: start.saturating_add(length),
        },
        ZarrsByteRange::Suffix(length) => ByteRange::Suffix(length),
    }
}

/// Reads every range in one go (ranges of a stored object are coalesced by the backend);
/// `None` when the key is absent. zarrs ranges must lie inside the value.
async fn read_ranges(
    store: &ZarrStore,
    key: &str,
    ranges: Vec<ZarrsByteRange>,
) -> Result<Option<Vec<Result<Bytes, StorageError>>>, StorageError> {
    if ranges.is_empty() {
        let exists = store.exists(key).await.map_err(storage_error)?;
        return Ok(exists.then(Vec::new));
    }
    let wanted: Vec<ByteRange> = ranges.iter().map(|r| to_floe_range(*r)).collect();
    let parts = match store.get_ranges(key, &wanted).await {
        Ok(Some(parts)) => parts,
        Ok(None) => return Ok(None),
        Err(Error::InvalidByteRange { start, size, .. }) => {
            let range = ranges
                .iter()
                .copied()
                .find(|r| to_floe_range(*r).resolve(size).is_none())
                .unwrap_or(ZarrsByteRange::FromStart(start, None));
            return Err(InvalidByteRangeError::new(range, size).into());
        }
        Err(other) => return Err(storage_error(other)),
    };
    Ok(Some(
        ranges
            .into_iter()
            .zip(parts)
            .map(|(range, bytes)| strict(range, bytes))
            .collect(),
    ))
}

/// zarrs ranges are strict: a bounded or suffix range longer than the value is an error.
fn strict(range: ZarrsByteRange, bytes: Bytes) -> Result<Bytes, StorageError> {
    let got = bytes.len() as u64;
    let short = match range {
        ZarrsByteRange::FromStart(start, Some(length)) => (got < length).then(|| start + got),
        ZarrsByteRange::FromStart(_, None) => None,
        ZarrsByteRange::Suffix(length) => (got < length).then_some(got),
    };
    match short {
        Some(size) => Err(InvalidByteRangeError::new(range, size).into()),
        None => Ok(bytes),
    }
}

/// The value of `key` as zarrs reads it: array `zarr.json` documents with zarr-python's
/// byte-string data types become raw bits, and chunk sizes of 0 become 1 (see
/// [`super::zarrs_compat`]).
async fn get_for_zarrs(store: &ZarrStore, key: &StoreKey) -> Result<MaybeBytes, StorageError> {
    let value = store.get(key.as_str()).await.map_err(storage_error)?;
    let is_metadata = key.as_str().rsplit('/').next() == Some(super::resolve::METADATA_FILE);
    match value {
        Some(bytes) if is_metadata && super::zarrs_compat::may_differ_for_zarrs(&bytes) => {
            let document: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(&bytes).map_err(|e| StorageError::Other(e.to_string()))?;
            let converted = super::zarrs_compat::zarrs_document(&document);
            Ok(Some(Bytes::from(
                serde_json::Value::Object(converted).to_string(),
            )))
        }
        other => Ok(other),
    }
}

fn store_keys(keys: Vec<String>) -> Result<StoreKeys, StorageError> {
    keys.into_iter()
        .map(|k| StoreKey::new(k).map_err(StorageError::from))
        .collect()
}

async fn dir(store: &ZarrStore, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
    let (keys, prefixes) = store
        .list_dir(prefix.as_str())
        .await
        .map_err(storage_error)?;
    let prefixes = prefixes
        .into_iter()
        .map(|p| StorePrefix::new(p).map_err(StorageError::from))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(StoreKeysPrefixes::new(store_keys(keys)?, prefixes))
}

// ---- async ----------------------------------------------------------------------------------

/// A [`ZarrStore`] implementing zarrs' async storage traits
/// (`AsyncReadableStorageTraits`, `AsyncWritableStorageTraits`, `AsyncListableStorageTraits`).
#[derive(Clone, Debug)]
pub struct AsyncZarrsStore {
    store: ZarrStore,
}

impl AsyncZarrsStore {
    /// Wraps `store`.
    pub fn new(store: ZarrStore) -> Self {
        AsyncZarrsStore { store }
    }

    /// The wrapped store.
    pub fn store(&self) -> &ZarrStore {
        &self.store
    }
}

#[async_trait]
impl AsyncReadableStorageTraits for AsyncZarrsStore {
    async fn get(&self, key: &StoreKey) -> Result<MaybeBytes, StorageError> {
        get_for_zarrs(&self.store, key).await
    }

    async fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<AsyncMaybeBytesIterator<'a>, StorageError> {
        let ranges: Vec<ZarrsByteRange> = byte_ranges.collect();
        let results = read_ranges(&self.store, key.as_str(), ranges).await?;
        Ok(results.map(|r| {
            let stream: futures::stream::BoxStream<'a, Result<Bytes, StorageError>> =
                Box::pin(futures::stream::iter(r));
            stream
        }))
    }

    async fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.store.size(key.as_str()).await.map_err(storage_error)
    }

    fn supports_get_partial(&self) -> bool {
        true
    }
}

#[async_trait]
impl AsyncWritableStorageTraits for AsyncZarrsStore {
    async fn set(&self, key: &StoreKey, value: Bytes) -> Result<(), StorageError> {
        self.store
            .set(key.as_str(), value)
            .await
            .map_err(storage_error)
    }

    async fn set_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        offset_values: OffsetBytesIterator<'a>,
    ) -> Result<(), StorageError> {
        async_store_set_partial_many(self, key, offset_values).await
    }

    async fn erase(&self, key: &StoreKey) -> Result<(), StorageError> {
        self.store.delete(key.as_str()).await.map_err(storage_error)
    }

    async fn erase_prefix(&self, prefix: &StorePrefix) -> Result<(), StorageError> {
        self.store
            .delete_prefix(prefix.as_str())
            .await
            .map_err(storage_error)
    }

    fn supports_set_partial(&self) -> bool {
        false
    }
}

#[async_trait]
impl AsyncListableStorageTraits for AsyncZarrsStore {
    async fn list(&self) -> Result<StoreKeys, StorageError> {
        store_keys(self.store.list().await.map_err(storage_error)?)
    }

    async fn list_prefix(&self, prefix: &StorePrefix) -> Result<StoreKeys, StorageError> {
        store_keys(
            self.store
                .list_prefix(prefix.as_str())
                .await
                .map_err(storage_error)?,
        )
    }

    async fn list_dir(&self, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
        dir(&self.store, prefix).await
    }

    async fn size_prefix(&self, prefix: &StorePrefix) -> Result<u64, StorageError> {
        self.store
            .size_prefix(prefix.as_str())
            .await
            .map_err(storage_error)
    }
}

// ---- sync -----------------------------------------------------------------------------------

/// A runtime the adapter owns; shut down in the background when the last clone is dropped, so
/// dropping it inside async code does not panic.
#[derive(Debug)]
struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

#[derive(Clone, Debug)]
enum Executor {
    Borrowed(Handle),
    Owned {
        handle: Handle,
        _runtime: Arc<OwnedRuntime>,
    },
}

/// A [`ZarrStore`] implementing zarrs' blocking storage traits (`ReadableStorageTraits`,
/// `WritableStorageTraits`, `ListableStorageTraits`).
///
/// Each call blocks the calling thread until the async operation finishes on a tokio runtime:
/// - from a thread outside any runtime (plain or rayon threads): blocks on the runtime;
/// - from a multi-thread runtime's worker: uses [`tokio::task::block_in_place`];
/// - from inside a current-thread runtime: runs on a helper thread when the adapter owns its
///   runtime, and fails with a [`StorageError`] for a borrowed handle (blocking there would
///   stall that runtime's driver).
///
/// A borrowed handle should belong to a multi-thread runtime, or to a current-thread runtime
/// that another thread keeps driving.
#[derive(Clone, Debug)]
pub struct SyncZarrsStore {
    store: ZarrStore,
    executor: Executor,
}

impl SyncZarrsStore {
    /// Wraps `store`, running its operations on the runtime of `handle`.
    pub fn new(store: ZarrStore, handle: Handle) -> Self {
        SyncZarrsStore {
            store,
            executor: Executor::Borrowed(handle),
        }
    }

    /// Wraps `store` with a small multi-thread runtime of its own (shared by clones).
    ///
    /// Errors with [`Error::Io`] when the runtime cannot be started.
    pub fn with_own_runtime(store: ZarrStore) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("floe-zarrs")
            .enable_all()
            .build()
            .map_err(|source| Error::Io {
                path: "<floe-zarrs tokio runtime>".into(),
                source,
            })?;
        let handle = runtime.handle().clone();
        Ok(SyncZarrsStore {
            store,
            executor: Executor::Owned {
                handle,
                _runtime: Arc::new(OwnedRuntime(Some(runtime))),
            },
        })
    }

    /// The wrapped store.
    pub fn store(&self) -> &ZarrStore {
        &self.store
    }

    fn block_on<F>(&self, future: F) -> Result<F::Output, StorageError>
    where
        F: Future + Send,
        F::Output: Send,
    {
        let (handle, owned) = match &self.executor {
            Executor::Borrowed(handle) => (handle, false),
            Executor::Owned { handle, .. } => (handle, true),
        };
        // Every path below blocks the calling thread until the future is done, so the
        // future's file reads may block it too.
        let future = crate::storage::with_inline_io(future);
        let Ok(current) = Handle::try_current() else {
            return Ok(handle.block_on(future));
        };
        match current.runtime_flavor() {
            RuntimeFlavor::MultiThread => Ok(tokio::task::block_in_place(|| handle.block_on(future))),
            _ if owned => std::thread::scope(|scope| {
                match scope.spawn(|| handle.block_on(future)).join() {
                    Ok(output) => Ok(output),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }),
            _ => Err(StorageError::Other(
                "SyncZarrsStore cannot block inside a current-thread tokio runtime with a borrowed handle; \
                 build it with SyncZarrsStore::with_own_runtime, or use a multi-thread runtime (or call it from a plain thread)"
                    .into(),
            )),
        }
    }

    fn run<T, F>(&self, future: F) -> Result<T, StorageError>
    where
        F: Future<Output = Result<T>> + Send,
        T: Send,
    {
        self.block_on(future)?.map_err(storage_error)
    }
}

impl ReadableStorageTraits for SyncZarrsStore {
    fn get(&self, key: &StoreKey) -> Result<MaybeBytes, StorageError> {
        self.block_on(get_for_zarrs(&self.store, key))?
    }

    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        let ranges: Vec<ZarrsByteRange> = byte_ranges.collect();
        let results = self.block_on(read_ranges(&self.store, key.as_str(), ranges))??;
        Ok(results.map(|r| {
            let iter: Box<dyn Iterator<Item = Result<Bytes, StorageError>> + 'a> =
                Box::new(r.into_iter());
            iter
        }))
    }

    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.run(self.store.size(key.as_str()))
    }

    fn supports_get_partial(&self) -> bool {
        true
    }
}

impl WritableStorageTraits for SyncZarrsStore {
    fn set(&self, key: &StoreKey, value: Bytes) -> Result<(), StorageError> {
        self.run(self.store.set(key.as_str(), value))
    }

    fn set_partial_many(
        &self,
        key: &StoreKey,
        offset_values: OffsetBytesIterator,
    ) -> Result<(), StorageError> {
        store_set_partial_many(self, key, offset_values)
    }

    fn erase(&self, key: &StoreKey) -> Result<(), StorageError> {
        self.run(self.store.delete(key.as_str()))
    }

    fn erase_prefix(&self, prefix: &StorePrefix) -> Result<(), StorageError> {
        self.run(self.store.delete_prefix(prefix.as_str()))
    }

    fn supports_set_partial(&self) -> bool {
        false
    }
}

impl ListableStorageTraits for SyncZarrsStore {
    fn list(&self) -> Result<StoreKeys, StorageError> {
        store_keys(self.run(self.store.list())?)
    }

    fn list_prefix(&self, prefix: &StorePrefix) -> Result<StoreKeys, StorageError> {
        store_keys(self.run(self.store.list_prefix(prefix.as_str()))?)
    }

    fn list_dir(&self, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
        self.block_on(dir(&self.store, prefix))?
    }

    fn size_prefix(&self, prefix: &StorePrefix) -> Result<u64, StorageError> {
        self.run(self.store.size_prefix(prefix.as_str()))
    }
}
