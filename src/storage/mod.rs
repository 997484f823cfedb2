//! The storage contract floe needs, and its implementation over `object_store`.
//!
//! floe asks very little of storage so that every object store qualifies: whole and ranged
//! reads, plain writes, create-if-absent writes, listing by prefix and deletes. There is no
//! conditional update and no rename. All keys are `/`-separated, relative to the repository
//! root, and formed in exactly one place: [`layout`].

mod backend;
mod cache;
mod cached;
pub(crate) mod clock;
mod faulty;
pub mod layout;
mod metered;
pub(crate) mod record_seq;

use std::fmt::Debug;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{Error, Result};

pub use backend::{create_storage, open_storage, ObjectStoreStorage, StorageOptions};
pub(crate) use cache::SharedCache;
pub use cache::{CacheCounters, CacheStats, LocalCache, DEFAULT_CACHE_BUDGET};
pub use cached::{with_cache, CachedStorage};
pub use faulty::{Fault, FaultCounts, FaultRule, FaultyStorage, StorageOp};
pub use metered::{Meter, MeterReading, MeteredCall, MeteredStorage};

/// What [`Storage::put_if_absent`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// The object did not exist and now holds the given bytes.
    Created,
    /// An object already existed under the key; nothing was written.
    AlreadyExists,
}

/// One object found by a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedObject {
    /// Key relative to the repository root.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// When the object was last written, by the store's clock (microseconds since the
    /// Unix epoch).
    pub last_modified_us: i64,
}

/// One level of a listing: sub-prefixes (without trailing `/`) and objects directly inside.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirListing {
    /// Child prefixes, e.g. `refs/branch.main` when listing `refs`.
    pub prefixes: Vec<String>,
    /// Objects directly under the prefix.
    pub objects: Vec<ListedObject>,
}

/// The storage contract.
///
/// Requirements every implementation must meet:
///
/// - **Read-after-write**: once `put` or `put_if_absent` returns, every reader sees the object.
/// - **Atomic writes**: a reader sees either no object or the whole object, never a prefix.
/// - **Atomic create-if-absent**: of any number of concurrent `put_if_absent` calls on one key,
///   exactly one returns [`PutOutcome::Created`]; the rest return
///   [`PutOutcome::AlreadyExists`] and change nothing.
/// - Listings may be stale or unordered; floe never relies on listing order or on a listing to
///   find a just-written object.
///
/// floe itself writes each key at most once, except advisory hint objects that may be
/// overwritten with `put` and are never trusted without verification.
#[async_trait]
pub trait Storage: Send + Sync + Debug {
    /// Reads a whole object. Fails with [`Error::ObjectMissing`] when it does not exist.
    async fn get(&self, key: &str) -> Result<Bytes>;
    /// Reads `range` of an object. Fails with [`Error::ObjectMissing`] when it does not exist.
    /// A range that ends past the object's end may come back shorter than asked (backends
    /// differ: some cut it, some fail): callers that know the length they need check it.
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes>;
    /// Reads several ranges of one object, coalescing nearby ranges into fewer requests.
    async fn get_ranges(&self, key: &str, ranges: &[Range<u64>]) -> Result<Vec<Bytes>>;
    /// Size of an object, or `None` when it does not exist.
    async fn head(&self, key: &str) -> Result<Option<u64>>;
    /// Writes an object, replacing any existing one.
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()>;
    /// Writes an object only if no object exists under `key` (atomic, see the trait docs).
    async fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<PutOutcome>;
    /// Every object whose key starts with the directory `prefix` (`""` lists everything).
    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>>;
    /// One level under the directory `prefix`.
    async fn list_dir(&self, prefix: &str) -> Result<DirListing>;
    /// Deletes an object; deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<()>;
    /// Human-readable location of the repository (for messages).
    fn location(&self) -> &str;
}

tokio::task_local! {
    static INLINE_IO: bool;
}

/// Runs `future` with blocking file reads done on the thread that polls it rather than on
/// tokio's blocking pool. Only for futures driven by a thread that may block anyway (one
/// inside `Runtime::block_on` or `Handle::block_on`, never a runtime worker): it saves a
/// thread hand-off per read of a local file. Other backends are unaffected.
pub async fn with_inline_io<F: std::future::Future>(future: F) -> F::Output {
    INLINE_IO.scope(true, future).await
}

/// True inside [`with_inline_io`].
pub(crate) fn inline_io_allowed() -> bool {
    INLINE_IO.try_with(|allowed| *allowed).unwrap_or(false)
}

/// Shared handle to a storage implementation.
pub type DynStorage = Arc<dyn Storage>;

/// Reads an object, mapping "missing" to `None`.
pub async fn get_optional(storage: &dyn Storage, key: &str) -> Result<Option<Bytes>> {
    match storage.get(key).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(Error::ObjectMissing { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
