//! On-disk value types and the one encode/decode envelope.
//!
//! Nothing here touches storage: these are plain values with their byte layouts. `spec/`
//! documents the same layouts normatively.

pub(crate) mod branch_hint;
pub mod changes;
pub mod envelope;
pub mod lifecycle;
pub mod manifest;
pub mod path;
pub mod refs;
pub mod snapshot;
pub mod txlog;
pub(crate) mod varint;

/// Current time in microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
