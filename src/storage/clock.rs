//! The store's clock. Lifecycle decisions (expiry thresholds, GC grace periods) are measured
//! against the time the store stamps on objects, never against the host's clock, which may
//! be off by minutes on any one machine.

use bytes::Bytes;

use super::{layout, Storage};
use crate::error::{Error, Result};

/// The store's current time in microseconds since the Unix epoch: writes a small probe
/// object under `gc/clock/`, reads the modification time the store gave it from a listing,
/// and deletes the probe. Costs three requests.
pub(crate) async fn store_now_us(storage: &dyn Storage) -> Result<i64> {
    let nonce: u128 = rand::random();
    let dir = layout::gc_clock_dir();
    let key = format!("{dir}/{nonce:032x}");
    storage
        .put(&key, Bytes::from_static(b"clock probe"))
        .await?;
    let listed = storage.list(&dir).await;
    let deleted = storage.delete(&key).await;
    let found = listed?
        .into_iter()
        .find(|o| o.key == key)
        .map(|o| o.last_modified_us);
    deleted?;
    found.ok_or_else(|| Error::StoreClockUnreadable {
        key: key.clone(),
        reason: "a probe just written is missing from the listing of its directory (the \
                 store's listings lag its writes); retry later"
            .to_string(),
    })
}
