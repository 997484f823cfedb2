//! Reading and appending the lifecycle record sequences: the expiry horizon
//! (`config/expiry/<seq>`) and GC runs (`gc/<seq>`). Both are gap-free sequences like branch
//! records (spec/algorithms.md §3) with an advisory hint holding a recent seq as decimal text.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::envelope::{self, ObjectKind};
use crate::storage::record_seq::RecordSeq;
use crate::storage::{get_optional, PutOutcome, Storage};

/// One lifecycle sequence: where its records and its hint live.
pub(crate) struct LifecycleSeq {
    pub(crate) record_key: fn(u64) -> String,
    pub(crate) hint_key: fn() -> String,
}

/// What appending a record did.
pub(crate) enum Appended {
    /// The record is record `seq` now.
    Landed,
    /// Another writer took the slot first: read the newest record again and retry.
    Lost,
}

impl LifecycleSeq {
    /// The newest record and its seq, `None` when the sequence is empty. Fetches the hint and
    /// record 0 together; an empty sequence (the common case) costs those two requests.
    pub(crate) async fn newest<T: DeserializeOwned>(
        &self,
        storage: &dyn Storage,
    ) -> Result<Option<(u64, T)>> {
        let hint_key = (self.hint_key)();
        let first_key = (self.record_key)(0);
        let (hint, first) =
            futures::join!(get_optional(storage, &hint_key), storage.head(&first_key));
        if first?.is_none() {
            return Ok(None);
        }
        let guess = hint
            .ok()
            .flatten()
            .and_then(|b| std::str::from_utf8(&b).ok()?.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let key_of = |seq: u64| (self.record_key)(seq);
        let records = RecordSeq::new(storage, &key_of);
        let Some(newest) = records.newest(guess).await? else {
            return Ok(None);
        };
        let key = (self.record_key)(newest.seq);
        let value = envelope::decode(&key, &newest.bytes, ObjectKind::Lifecycle)?;
        Ok(Some((newest.seq, value)))
    }

    /// Reads record `seq`, `None` when it does not exist.
    pub(crate) async fn read<T: DeserializeOwned>(
        &self,
        storage: &dyn Storage,
        seq: u64,
    ) -> Result<Option<T>> {
        let key = (self.record_key)(seq);
        match get_optional(storage, &key).await? {
            None => Ok(None),
            Some(bytes) => envelope::decode(&key, &bytes, ObjectKind::Lifecycle).map(Some),
        }
    }

    /// Writes record `seq` only if absent, then points the hint at it. A lost answer is
    /// resolved by reading the record back.
    pub(crate) async fn append<T: Serialize>(
        &self,
        storage: &dyn Storage,
        seq: u64,
        value: &T,
    ) -> Result<Appended> {
        let key = (self.record_key)(seq);
        let bytes = envelope::encode(ObjectKind::Lifecycle, value)?;
        let landed = match storage.put_if_absent(&key, bytes.clone()).await {
            Ok(PutOutcome::Created) => true,
            Ok(PutOutcome::AlreadyExists) => false,
            Err(e) => match get_optional(storage, &key).await? {
                Some(found) => found == bytes,
                None => return Err(e),
            },
        };
        if !landed {
            return Ok(Appended::Lost);
        }
        // Advisory: a stale or missing hint costs probes, never correctness.
        let _ = storage
            .put(&(self.hint_key)(), Bytes::from(seq.to_string()))
            .await;
        Ok(Appended::Landed)
    }
}

/// The expiry horizon's sequence.
pub(crate) const EXPIRY: LifecycleSeq = LifecycleSeq {
    record_key: crate::storage::layout::expiry_record_key,
    hint_key: crate::storage::layout::expiry_hint_key,
};

/// The GC runs' sequence.
pub(crate) const GC_RUNS: LifecycleSeq = LifecycleSeq {
    record_key: crate::storage::layout::gc_record_key,
    hint_key: crate::storage::layout::gc_hint_key,
};

/// Checks that a decoded record claims the seq of its key.
pub(crate) fn check_seq(seq: u64, claimed: u64, key: String) -> Result<()> {
    if seq == claimed {
        Ok(())
    } else {
        Err(Error::corrupt(
            key,
            format!("record claims sequence {claimed}"),
        ))
    }
}
