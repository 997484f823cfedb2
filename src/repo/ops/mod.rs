//! Whole-repository operations: fsck and statistics.

pub(crate) mod diff;
pub(crate) mod fsck;
pub(crate) mod stats;
