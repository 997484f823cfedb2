//! [`MeteredStorage`]: a decorator that counts the requests made to a storage and the round
//! trips ("waves") they cost, for tests that pin the cost of an operation and for the latency
//! workload.
//!
//! On object storage every request costs tens of milliseconds, so what an operation costs is
//! mostly how many requests it waits for one after another. A request's wave is one more than
//! the highest wave among the requests that had completed when it started: requests sent
//! together share a wave, a request sent after an answer arrived starts the next one. The
//! operation's cost is the highest wave reached. The count is exact when every request takes
//! long enough that the requests of one batch all start before the first answers (wrap a
//! storage with [`Fault::Latency`](super::Fault::Latency) inside this decorator for that);
//! without latency, a fast store can answer a batch's first request before the next starts,
//! and a batch then counts as more than one wave.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;

use super::{DirListing, DynStorage, ListedObject, PutOutcome, Storage, StorageOp};
use crate::error::Result;

/// One request seen by a [`Meter`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeteredCall {
    /// The kind of request.
    pub op: StorageOp,
    /// Its key (for listings, the listed prefix).
    pub key: String,
    /// The wave it started in (1 for requests sent before any answer arrived).
    pub wave: u64,
}

/// Requests and waves since the meter was created or last reset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MeterReading {
    /// Every request, in the order they started.
    pub calls: Vec<MeteredCall>,
    /// The highest wave reached: round trips waited one after another.
    pub waves: u64,
}

impl MeterReading {
    /// How many requests were made.
    pub fn requests(&self) -> usize {
        self.calls.len()
    }

    /// How many requests of kind `op` were made.
    pub fn count(&self, op: StorageOp) -> usize {
        self.calls.iter().filter(|c| c.op == op).count()
    }

    /// Requests per kind.
    pub fn by_op(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for call in &self.calls {
            *counts.entry(format!("{:?}", call.op)).or_insert(0) += 1;
        }
        counts
    }
}

impl fmt::Display for MeterReading {
    /// One line per wave: its number and the requests that started in it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} requests in {} waves", self.requests(), self.waves)?;
        for wave in 1..=self.waves {
            let calls: Vec<String> = self
                .calls
                .iter()
                .filter(|c| c.wave == wave)
                .map(|c| format!("{:?} {}", c.op, c.key))
                .collect();
            writeln!(f, "  wave {wave}: {}", calls.join(", "))?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct MeterState {
    calls: Vec<MeteredCall>,
    /// The highest wave among the requests that have completed.
    completed: u64,
}

/// The counts of a [`MeteredStorage`], shared with whoever reads them.
#[derive(Default)]
pub struct Meter {
    state: Mutex<MeterState>,
}

impl fmt::Debug for Meter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("Meter")
            .field("requests", &state.calls.len())
            .field("completed_wave", &state.completed)
            .finish()
    }
}

impl Meter {
    fn state(&self) -> MutexGuard<'_, MeterState> {
        // The counts stay meaningful after a panic elsewhere: keep going with them.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The requests and waves since creation or the last [`Meter::reset`].
    pub fn reading(&self) -> MeterReading {
        let state = self.state();
        MeterReading {
            waves: state.calls.iter().map(|c| c.wave).max().unwrap_or(0),
            calls: state.calls.clone(),
        }
    }

    /// Forgets every request: the next one starts wave 1. Requests still in flight count
    /// toward nothing when they complete.
    pub fn reset(&self) {
        *self.state() = MeterState::default();
    }

    /// The reading so far, then a reset.
    pub fn take(&self) -> MeterReading {
        let reading = self.reading();
        self.reset();
        reading
    }

    fn start(self: &Arc<Self>, op: StorageOp, key: &str) -> InFlight {
        let mut state = self.state();
        let wave = state.completed + 1;
        state.calls.push(MeteredCall {
            op,
            key: key.to_string(),
            wave,
        });
        InFlight {
            meter: self.clone(),
            wave,
            generation: state.calls.len(),
        }
    }
}

/// A request in flight; its wave counts as completed when it is dropped (answered, failed or
/// cancelled).
struct InFlight {
    meter: Arc<Meter>,
    wave: u64,
    /// The number of calls recorded when it started: a reset since then leaves fewer.
    generation: usize,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.meter.state();
        if state.calls.len() >= self.generation {
            state.completed = state.completed.max(self.wave);
        }
    }
}

/// A [`Storage`] decorator that records every request and the wave it started in (see the
/// module documentation). It changes nothing about the requests.
pub struct MeteredStorage {
    inner: DynStorage,
    meter: Arc<Meter>,
}

impl fmt::Debug for MeteredStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeteredStorage")
            .field("inner", &self.inner)
            .field("meter", &self.meter)
            .finish()
    }
}

impl MeteredStorage {
    /// Wraps `inner`, counting from now.
    pub fn new(inner: DynStorage) -> Self {
        MeteredStorage {
            inner,
            meter: Arc::default(),
        }
    }

    /// The counts, shared: read them while the storage is in use.
    pub fn meter(&self) -> Arc<Meter> {
        self.meter.clone()
    }

    async fn run<T, F>(&self, op: StorageOp, key: &str, call: F) -> Result<T>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        let in_flight = self.meter.start(op, key);
        let result = call.await;
        drop(in_flight);
        result
    }
}

#[async_trait]
impl Storage for MeteredStorage {
    async fn get(&self, key: &str) -> Result<Bytes> {
        self.run(StorageOp::Get, key, self.inner.get(key)).await
    }
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        self.run(StorageOp::GetRange, key, self.inner.get_range(key, range))
            .await
    }
    async fn get_ranges(&self, key: &str, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.run(
            StorageOp::GetRanges,
            key,
            self.inner.get_ranges(key, ranges),
        )
        .await
    }
    async fn head(&self, key: &str) -> Result<Option<u64>> {
        self.run(StorageOp::Head, key, self.inner.head(key)).await
    }
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.run(StorageOp::Put, key, self.inner.put(key, bytes))
            .await
    }
    async fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<PutOutcome> {
        self.run(
            StorageOp::PutIfAbsent,
            key,
            self.inner.put_if_absent(key, bytes),
        )
        .await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>> {
        self.run(StorageOp::List, prefix, self.inner.list(prefix))
            .await
    }
    async fn list_dir(&self, prefix: &str) -> Result<DirListing> {
        self.run(StorageOp::ListDir, prefix, self.inner.list_dir(prefix))
            .await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.run(StorageOp::Delete, key, self.inner.delete(key))
            .await
    }
    fn location(&self) -> &str {
        self.inner.location()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{open_storage, Fault, FaultRule, FaultyStorage};
    use super::*;

    fn slow_memory() -> MeteredStorage {
        let faulty = FaultyStorage::new(open_storage("memory://", &vec![]).unwrap(), 1);
        faulty.add_rule(FaultRule::new(Fault::Latency(Duration::from_millis(5))));
        MeteredStorage::new(Arc::new(faulty))
    }

    #[tokio::test]
    async fn requests_sent_together_share_a_wave_and_answers_start_the_next() {
        let storage = slow_memory();
        let meter = storage.meter();
        storage.put("a", Bytes::from_static(b"1")).await.unwrap();
        let (b, c) = tokio::join!(storage.get("a"), storage.head("missing"));
        assert_eq!(b.unwrap(), Bytes::from_static(b"1"));
        assert_eq!(c.unwrap(), None);
        storage.delete("a").await.unwrap();
        let reading = meter.take();
        assert_eq!(reading.waves, 3, "{reading}");
        assert_eq!(reading.requests(), 4);
        assert_eq!(
            reading.calls.iter().map(|c| c.wave).collect::<Vec<_>>(),
            [1, 2, 2, 3]
        );
        assert_eq!(reading.count(StorageOp::Head), 1);
        assert_eq!(meter.reading(), MeterReading::default());
    }

    #[tokio::test]
    async fn failed_and_cancelled_requests_complete_their_wave() {
        let storage = slow_memory();
        let meter = storage.meter();
        assert!(storage.get("missing").await.is_err());
        // Cancelled before its answer: the next request still starts a new wave.
        let cancelled = tokio::time::timeout(Duration::from_millis(1), storage.get("x")).await;
        assert!(cancelled.is_err());
        storage.head("x").await.unwrap();
        let reading = meter.reading();
        assert_eq!(
            reading.calls.iter().map(|c| c.wave).collect::<Vec<_>>(),
            [1, 2, 3],
            "{reading}"
        );
    }
}
