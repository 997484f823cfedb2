//! A storage decorator that records every request, and a repository handle built on it.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use floe::{
    DirListing, DynStorage, ListedObject, PutOutcome, Repository, RepositorySettings, Storage,
};

#[derive(Debug, Default)]
pub struct Requests {
    pub gets: Vec<String>,
    pub heads: Vec<String>,
    pub puts: Vec<String>,
    pub lists: usize,
}

/// Wraps a storage and records every request.
#[derive(Debug)]
pub struct Counting {
    pub inner: DynStorage,
    pub seen: Mutex<Requests>,
}

impl Counting {
    pub fn wrap(inner: DynStorage) -> Arc<Counting> {
        Arc::new(Counting {
            inner,
            seen: Mutex::new(Requests::default()),
        })
    }

    pub fn take(&self) -> Requests {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

impl Requests {
    pub fn gets_under(&self, dir: &str) -> usize {
        self.gets.iter().filter(|k| k.starts_with(dir)).count()
    }
}

#[async_trait]
impl Storage for Counting {
    async fn get(&self, key: &str) -> floe::Result<Bytes> {
        self.seen.lock().unwrap().gets.push(key.to_string());
        self.inner.get(key).await
    }
    async fn get_range(&self, key: &str, range: Range<u64>) -> floe::Result<Bytes> {
        self.seen.lock().unwrap().gets.push(key.to_string());
        self.inner.get_range(key, range).await
    }
    async fn get_ranges(&self, key: &str, ranges: &[Range<u64>]) -> floe::Result<Vec<Bytes>> {
        self.seen.lock().unwrap().gets.push(key.to_string());
        self.inner.get_ranges(key, ranges).await
    }
    async fn head(&self, key: &str) -> floe::Result<Option<u64>> {
        self.seen.lock().unwrap().heads.push(key.to_string());
        self.inner.head(key).await
    }
    async fn put(&self, key: &str, bytes: Bytes) -> floe::Result<()> {
        self.seen.lock().unwrap().puts.push(key.to_string());
        self.inner.put(key, bytes).await
    }
    async fn put_if_absent(&self, key: &str, bytes: Bytes) -> floe::Result<PutOutcome> {
        self.seen.lock().unwrap().puts.push(key.to_string());
        self.inner.put_if_absent(key, bytes).await
    }
    async fn list(&self, prefix: &str) -> floe::Result<Vec<ListedObject>> {
        self.seen.lock().unwrap().lists += 1;
        self.inner.list(prefix).await
    }
    async fn list_dir(&self, prefix: &str) -> floe::Result<DirListing> {
        self.seen.lock().unwrap().lists += 1;
        self.inner.list_dir(prefix).await
    }
    async fn delete(&self, key: &str) -> floe::Result<()> {
        self.inner.delete(key).await
    }
    fn location(&self) -> &str {
        self.inner.location()
    }
}

/// A fresh handle (cold caches) on `storage` that counts its requests.
pub async fn counted(
    storage: &DynStorage,
    settings: RepositorySettings,
) -> (Repository, Arc<Counting>) {
    let counting = Counting::wrap(storage.clone());
    let dyn_storage: DynStorage = counting.clone();
    let repo = Repository::open(dyn_storage, settings).await.unwrap();
    counting.take();
    (repo, counting)
}
