//! Using a [`LocalCache`] from async code: its index and files are blocking I/O, so the work
//! runs on tokio's blocking pool (or inline where the caller allows blocking), and a cache
//! failure is logged and treated as a miss, never as a failed read.

use std::sync::Arc;

use bytes::Bytes;

use super::LocalCache;
use crate::error::{Error, Result};

/// The async operations of a shared [`LocalCache`].
pub(crate) trait SharedCache {
    /// Runs `work` on the cache off the async threads. A failure is logged and becomes `None`.
    async fn run<T: Send + 'static>(
        &self,
        what: &'static str,
        work: impl FnOnce(&LocalCache) -> Result<T> + Send + 'static,
    ) -> Option<T>;

    /// Looks entries up in order: the first found is returned with its position. Counts a
    /// miss when none is found.
    async fn lookup_any(&self, names: Vec<String>) -> Option<(usize, Bytes)>;

    /// Stores entries (failures are logged).
    async fn insert_all(&self, entries: Vec<(String, Bytes)>);
}

impl SharedCache for Arc<LocalCache> {
    async fn run<T: Send + 'static>(
        &self,
        what: &'static str,
        work: impl FnOnce(&LocalCache) -> Result<T> + Send + 'static,
    ) -> Option<T> {
        let cache = self.clone();
        let outcome = if crate::storage::inline_io_allowed() {
            work(&cache)
        } else {
            match tokio::task::spawn_blocking(move || work(&cache)).await {
                Ok(outcome) => outcome,
                Err(e) => {
                    tracing::warn!(error = %e, what, "cache task failed");
                    return None;
                }
            }
        };
        outcome
            .inspect_err(
                |e| tracing::warn!(error = %e, what, "local cache failed; going to storage"),
            )
            .ok()
    }

    async fn lookup_any(&self, names: Vec<String>) -> Option<(usize, Bytes)> {
        self.run("lookup", move |cache| {
            for (at, name) in names.iter().enumerate() {
                if let Some(bytes) = cache.lookup(name).map_err(|e| db_error(cache, e))? {
                    return Ok(Some((at, Bytes::from(bytes))));
                }
            }
            cache.count_miss();
            Ok(None)
        })
        .await
        .flatten()
    }

    async fn insert_all(&self, entries: Vec<(String, Bytes)>) {
        self.run("insert", move |cache| {
            for (name, bytes) in &entries {
                cache.insert(name, bytes)?;
            }
            Ok(())
        })
        .await;
    }
}

/// An index failure as the error a caller sees.
pub(crate) fn db_error(cache: &LocalCache, error: redb::Error) -> Error {
    Error::Io {
        path: cache.dir().to_path_buf(),
        source: std::io::Error::other(format!("cache index: {error}")),
    }
}
