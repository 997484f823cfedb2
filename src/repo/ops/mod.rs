//! Whole-repository operations: fsck, statistics, diff, expiry and garbage collection.

pub(crate) mod diff;
pub(crate) mod expire;
pub(crate) mod fsck;
pub(crate) mod gc;
pub(crate) mod lifecycle_json;
pub(crate) mod stats;
