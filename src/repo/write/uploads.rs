//! Write-behind of a session's chunk objects: a large chunk is hashed on the caller's thread,
//! recorded at once, and stored by a background task, so a writer that stores chunks one
//! after another (a zarrs thread, a Python loop) keeps many uploads in flight instead of
//! waiting for each.
//!
//! Contract: until [`Uploads::flush`] returns `Ok`, an object may not be stored yet; its bytes
//! stay here, so reads in the session are served from memory and a failed upload is retried
//! by the flush. Commits and forks flush before anything can refer to the objects from outside
//! the session. At most [`Uploads::new`]'s `in_flight` uploads run at once: a writer that gets
//! ahead waits for one to finish (memory stays bounded by `in_flight` chunks plus the objects
//! whose upload failed), for at most `upload_hedge_after`, past which stalled uploads no
//! longer hold it back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::future::join_all;
use futures::{StreamExt, TryStreamExt};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::error::Result;
use crate::id::ChunkObjectId;
use crate::repo::read::loaded::lock;
use crate::repo::read::repository::Repository;
use crate::storage::layout;

/// The uploads of one session.
#[derive(Debug)]
pub(crate) struct Uploads {
    permits: Arc<Semaphore>,
    state: Arc<Mutex<UploadState>>,
}

#[derive(Debug, Default)]
struct UploadState {
    /// Objects not known to be stored: their complete bytes.
    pending: HashMap<ChunkObjectId, Bytes>,
    /// Background uploads started since the last flush.
    tasks: Vec<JoinHandle<()>>,
}

impl Uploads {
    /// Uploads for a session, at most `in_flight` at once.
    pub(crate) fn new(in_flight: usize) -> Self {
        Uploads {
            permits: Arc::new(Semaphore::new(in_flight.max(1))),
            state: Arc::default(),
        }
    }

    /// Stores `object` (its id already computed) in the background when a tokio runtime is
    /// at hand, or now otherwise. Waits while `in_flight` uploads are running.
    pub(crate) async fn start(
        &self,
        repo: &Repository,
        id: ChunkObjectId,
        object: Bytes,
    ) -> Result<()> {
        let key = layout::chunk_object_key(&id);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return repo.put_immutable(&key, object).await;
        };
        // Waits for a free slot, but not past `upload_hedge_after`: uploads that stall hold
        // their slots, and a writer (or a commit handing over its last pack) must not wait for
        // them forever; it then goes over the limit. The semaphore is never closed.
        let hedge_after = repo.settings().upload_hedge_after;
        let permit =
            match tokio::time::timeout(hedge_after, self.permits.clone().acquire_owned()).await {
                Ok(Ok(permit)) => Some(permit),
                Ok(Err(_)) | Err(_) => None,
            };
        let mut state = lock(&self.state);
        if state.pending.contains_key(&id) {
            // The same bytes are already on their way.
            return Ok(());
        }
        state.pending.insert(id, object.clone());
        state.tasks.retain(|task| !task.is_finished());
        let repo = repo.clone();
        let shared = self.state.clone();
        state.tasks.push(runtime.spawn(async move {
            let stored = repo.put_immutable(&key, object).await;
            drop(permit);
            if stored.is_ok() {
                lock(&shared).pending.remove(&id);
            }
            // A failure leaves the bytes pending: the flush retries and reports it.
        }));
        Ok(())
    }

    /// Forgets every upload (a discard dropped the edits that named them): running ones go on
    /// but are no longer waited for, and failed ones are not retried.
    pub(crate) fn forget_all(&self) {
        let mut state = lock(&self.state);
        state.pending.clear();
        state.tasks.clear();
    }

    /// The bytes of `id` when its upload has not been confirmed yet.
    pub(crate) fn pending_bytes(&self, id: &ChunkObjectId) -> Option<Bytes> {
        lock(&self.state).pending.get(id).cloned()
    }

    /// Waits for every upload started so far (for at most `hedge_after`; uploads still
    /// running then are sent again, the first to finish winning) and stores again, now, every
    /// object whose upload failed. `Ok` means every object this session recorded is stored.
    pub(crate) async fn flush(&self, repo: &Repository) -> Result<()> {
        let tasks = std::mem::take(&mut lock(&self.state).tasks);
        if !tasks.is_empty() {
            let hedge_after = repo.settings().upload_hedge_after;
            // On timeout the tasks are detached, not aborted: a late success still counts.
            // A panicked or cancelled task left its object pending: stored again below.
            let _ = tokio::time::timeout(hedge_after, join_all(tasks)).await;
        }
        let retry: Vec<(ChunkObjectId, Bytes)> = lock(&self.state)
            .pending
            .iter()
            .map(|(id, bytes)| (*id, bytes.clone()))
            .collect();
        let stores = retry.into_iter().map(|(id, bytes)| async move {
            repo.put_immutable(&layout::chunk_object_key(&id), bytes)
                .await?;
            lock(&self.state).pending.remove(&id);
            Ok::<(), crate::error::Error>(())
        });
        futures::stream::iter(stores)
            .buffer_unordered(repo.settings().io_concurrency.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }
}
