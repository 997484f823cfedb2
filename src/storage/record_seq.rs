//! Finding the newest record of a gap-free sequence (branch records, container declarations)
//! in few round trips (spec/algorithms.md §3).
//!
//! Records `0 ..= m` exist and none after them: record `n + 1` is written only by a writer that
//! saw record `n`, and records are never deleted, so existence is monotone in the sequence
//! number. From a lower bound that is probably close (a hint, or a record this handle saw
//! before), the records after it are fetched together; when they all exist, existence probes
//! sent together bracket the newest one and narrow the bracket sixteen-fold per round trip.

use bytes::Bytes;
use futures::future::{join_all, try_join_all};

use super::{get_optional, Storage};
use crate::error::{Error, Result};

/// Records fetched together from a lower bound: the bound and the 8 after it. floe rewrites a
/// branch hint at every 8th record (`repo/history/refs.rs`), so a current hint is at most 7 records behind and
/// the window ends in a missing record.
pub(crate) const WINDOW: u64 = 9;

/// Existence probes sent together while narrowing a bracket.
const PROBES: u64 = 15;

/// The first probes past an overflowing window: `lo + 2^k` for these `k`, sent together.
const GALLOP_EXPONENTS: std::ops::RangeInclusive<u32> = 4..=24;

/// The newest record: its sequence number and bytes.
#[derive(Debug)]
pub(crate) struct NewestRecord {
    pub(crate) seq: u64,
    pub(crate) bytes: Bytes,
}

/// What fetching records `start ..` together found.
#[derive(Debug)]
pub(crate) enum Window {
    /// Record `start` does not exist.
    StartMissing,
    /// The newest record lies inside the window.
    Newest(NewestRecord),
    /// Every record of the window exists; the last is record `last`.
    Full { last: u64 },
}

/// A sequence of records stored at `key(0)`, `key(1)`, …
pub(crate) struct RecordSeq<'a> {
    storage: &'a dyn Storage,
    key: &'a (dyn Fn(u64) -> String + Send + Sync),
}

impl<'a> RecordSeq<'a> {
    pub(crate) fn new(
        storage: &'a dyn Storage,
        key: &'a (dyn Fn(u64) -> String + Send + Sync),
    ) -> Self {
        RecordSeq { storage, key }
    }

    fn beyond(&self, lo: u64, step: u64) -> Result<u64> {
        lo.checked_add(step).ok_or_else(|| {
            Error::corrupt(
                (self.key)(lo),
                "the sequence claims 2^64 records: the storage answers existence checks wrongly",
            )
        })
    }

    /// Fetches records `start .. start + count` together (one round trip).
    async fn fetch(&self, start: u64, count: u64) -> Result<Vec<Option<Bytes>>> {
        let end = self.beyond(start, count)?;
        let keys: Vec<String> = (start..end).map(|seq| (self.key)(seq)).collect();
        try_join_all(keys.iter().map(|key| get_optional(self.storage, key))).await
    }

    /// Fetches the [`WINDOW`] records from `start` together.
    pub(crate) async fn window(&self, start: u64) -> Result<Window> {
        self.window_of(start, WINDOW).await
    }

    async fn window_of(&self, start: u64, count: u64) -> Result<Window> {
        let fetched = self.fetch(start, count).await?;
        let present = fetched.iter().take_while(|r| r.is_some()).count() as u64;
        if present == 0 {
            return Ok(Window::StartMissing);
        }
        if present == count {
            return Ok(Window::Full {
                last: start + count - 1,
            });
        }
        let bytes = fetched
            .into_iter()
            .nth(present as usize - 1)
            .flatten()
            .ok_or_else(|| Error::corrupt((self.key)(start), "a fetched record vanished"))?;
        Ok(Window::Newest(NewestRecord {
            seq: start + present - 1,
            bytes,
        }))
    }

    async fn exist(&self, seqs: &[u64]) -> Result<Vec<bool>> {
        let found = join_all(seqs.iter().map(|&seq| {
            let key = (self.key)(seq);
            async move { self.storage.head(&key).await }
        }))
        .await;
        found
            .into_iter()
            .map(|r| r.map(|size| size.is_some()))
            .collect()
    }

    /// The newest record, knowing that record `lo` exists and those up to it: gallops with
    /// probes sent together, then narrows the bracket, then fetches its last few records.
    pub(crate) async fn newest_from(&self, mut lo: u64) -> Result<NewestRecord> {
        let mut hi: Option<u64> = None;
        loop {
            if let Some(h) = hi {
                if h - lo < WINDOW {
                    // Records `lo ..= h`: the last was missing a moment ago.
                    match self.window_of(lo, h - lo + 1).await? {
                        Window::Newest(found) => return Ok(found),
                        // Records were added meanwhile (or the store is inconsistent): go on
                        // from the last one seen.
                        Window::Full { last } => {
                            lo = last;
                            hi = None;
                            continue;
                        }
                        Window::StartMissing => {
                            return Err(Error::corrupt(
                                (self.key)(lo),
                                "a record seen a moment ago is missing",
                            ))
                        }
                    }
                }
            }
            let probes: Vec<u64> = match hi {
                None => GALLOP_EXPONENTS
                    .map(|k| self.beyond(lo, 1u64 << k))
                    .collect::<Result<_>>()?,
                Some(h) => {
                    let width = h - lo;
                    let mut probes: Vec<u64> = (1..=PROBES)
                        .map(|i| {
                            lo + width / (PROBES + 1) * i + width % (PROBES + 1) * i / (PROBES + 1)
                        })
                        .filter(|&p| p > lo && p < h)
                        .collect();
                    probes.dedup();
                    probes
                }
            };
            let exists = self.exist(&probes).await?;
            // Monotone existence: the bracket is (last existing probe, first missing probe).
            let first_missing = exists.iter().position(|e| !e);
            let last_existing = match first_missing {
                Some(i) => probes[..i].last().copied(),
                None => probes.last().copied(),
            };
            if let Some(found) = last_existing {
                lo = found;
            }
            if let Some(i) = first_missing {
                hi = Some(probes[i]);
            } else if let Some(h) = hi {
                hi = Some(h);
            }
        }
    }

    /// The newest record starting from `guess`, a record number that probably exists (a hint;
    /// 0 when there is none). `None` when the sequence is empty.
    pub(crate) async fn newest(&self, guess: u64) -> Result<Option<NewestRecord>> {
        if guess.checked_add(WINDOW).is_none() {
            // No sequence is that long: a damaged guess.
            return Box::pin(self.newest(0)).await;
        }
        match self.window(guess).await? {
            Window::Newest(found) => Ok(Some(found)),
            Window::Full { last } => Ok(Some(self.newest_from(last).await?)),
            Window::StartMissing if guess == 0 => Ok(None),
            // The guess was wrong (a hint ahead of the records): start from the beginning.
            Window::StartMissing => Box::pin(self.newest(0)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::storage::{open_storage, DynStorage, MeteredStorage};

    fn key(seq: u64) -> String {
        format!("seq/{seq:020}")
    }

    async fn storage_with(records: u64) -> (DynStorage, Arc<crate::storage::Meter>) {
        let inner = open_storage("memory://", &vec![]).unwrap();
        for seq in 0..records {
            inner
                .put(&key(seq), Bytes::from(seq.to_string()))
                .await
                .unwrap();
        }
        let metered = MeteredStorage::new(inner);
        let meter = metered.meter();
        (Arc::new(metered), meter)
    }

    #[tokio::test]
    async fn finds_the_newest_record_from_any_guess() {
        for records in [0u64, 1, 2, 8, 9, 10, 17, 100, 1000, 70_000] {
            let (storage, _) = storage_with(records).await;
            let seq = RecordSeq::new(storage.as_ref(), &key);
            for guess in [0, 1, records / 2, records.saturating_sub(1), records + 5] {
                let found = seq.newest(guess).await.unwrap();
                match found {
                    None => assert_eq!(records, 0),
                    Some(found) => {
                        assert_eq!(found.seq, records - 1, "{records} records, guess {guess}");
                        assert_eq!(found.bytes, Bytes::from((records - 1).to_string()));
                    }
                }
            }
        }
    }

    #[tokio::test]
    async fn a_close_guess_costs_one_round_trip_and_a_far_one_a_few() {
        let (storage, meter) = storage_with(1000).await;
        let seq = RecordSeq::new(storage.as_ref(), &key);
        meter.reset();
        seq.newest(993).await.unwrap();
        let close = meter.take();
        assert_eq!(close.requests(), WINDOW as usize, "{close}");
        seq.newest(0).await.unwrap();
        let far = meter.take();
        // The window, the gallop, the narrowing (1000 / 16 / 16 < 9) and the last window.
        assert!(far.requests() < 70, "{far}");
    }
}
