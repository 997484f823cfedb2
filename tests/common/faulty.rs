//! A storage decorator for tests that injects the faults the tests arm: a write that hangs
//! until its future is dropped, and a create that lands but whose answer (and the next read
//! of the same key) is lost.

use std::ops::Range;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use floe::{DirListing, DynStorage, Error, ListedObject, PutOutcome, Storage};

/// Wraps a storage; every fault is armed for one request whose key starts with a prefix.
#[derive(Debug)]
pub struct Faulty {
    inner: DynStorage,
    hang_next_put: Mutex<Option<String>>,
    lose_next_create: Mutex<Option<String>>,
    fail_next_get: Mutex<Option<String>>,
}

/// A transient storage failure, as a flaky network gives.
pub fn transient(key: &str) -> Error {
    Error::Storage {
        key: key.to_string(),
        source: object_store::Error::Generic {
            store: "test",
            source: "connection reset".into(),
        },
    }
}

/// Takes the armed prefix if `key` matches it.
fn fire(slot: &Mutex<Option<String>>, key: &str) -> bool {
    let mut armed = slot.lock().unwrap();
    if armed.as_deref().is_some_and(|p| key.starts_with(p)) {
        *armed = None;
        true
    } else {
        false
    }
}

impl Faulty {
    /// Wraps `inner` with no fault armed.
    pub fn new(inner: DynStorage) -> Self {
        Faulty {
            inner,
            hang_next_put: Mutex::new(None),
            lose_next_create: Mutex::new(None),
            fail_next_get: Mutex::new(None),
        }
    }

    /// The next plain put of a key under `prefix` never completes.
    pub fn hang_next_put(&self, prefix: &str) {
        *self.hang_next_put.lock().unwrap() = Some(prefix.to_string());
    }

    /// The next create-if-absent under `prefix` lands but answers with an error, and the next
    /// read of that key fails too: its outcome cannot be known.
    pub fn lose_next_create(&self, prefix: &str) {
        *self.lose_next_create.lock().unwrap() = Some(prefix.to_string());
    }
}

#[async_trait]
impl Storage for Faulty {
    async fn get(&self, key: &str) -> floe::Result<Bytes> {
        if fire(&self.fail_next_get, key) {
            return Err(transient(key));
        }
        self.inner.get(key).await
    }
    async fn get_range(&self, key: &str, range: Range<u64>) -> floe::Result<Bytes> {
        self.inner.get_range(key, range).await
    }
    async fn get_ranges(&self, key: &str, ranges: &[Range<u64>]) -> floe::Result<Vec<Bytes>> {
        self.inner.get_ranges(key, ranges).await
    }
    async fn head(&self, key: &str) -> floe::Result<Option<u64>> {
        self.inner.head(key).await
    }
    async fn put(&self, key: &str, bytes: Bytes) -> floe::Result<()> {
        if fire(&self.hang_next_put, key) {
            std::future::pending::<()>().await;
        }
        self.inner.put(key, bytes).await
    }
    async fn put_if_absent(&self, key: &str, bytes: Bytes) -> floe::Result<PutOutcome> {
        let outcome = self.inner.put_if_absent(key, bytes).await?;
        if fire(&self.lose_next_create, key) {
            *self.fail_next_get.lock().unwrap() = Some(key.to_string());
            return Err(transient(key));
        }
        Ok(outcome)
    }
    async fn list(&self, prefix: &str) -> floe::Result<Vec<ListedObject>> {
        self.inner.list(prefix).await
    }
    async fn list_dir(&self, prefix: &str) -> floe::Result<DirListing> {
        self.inner.list_dir(prefix).await
    }
    async fn delete(&self, key: &str) -> floe::Result<()> {
        self.inner.delete(key).await
    }
    fn location(&self) -> &str {
        self.inner.location()
    }
}
