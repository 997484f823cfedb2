//! Names and history: branches, tags and their hints, version names, and history queries over the index every snapshot carries.

pub(crate) mod expiry;
pub(crate) mod gather;
pub(crate) mod gc_guard;
pub(crate) mod index;
pub(crate) mod lifecycle_records;
pub(crate) mod merge_base;
pub(crate) mod queries;
pub(crate) mod reflog;
pub(crate) mod refs;
pub(crate) mod version;
