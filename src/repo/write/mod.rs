//! The write side of a session: change sets, array edits and their frozen runs, packs, background uploads, the spool and forks.

pub(crate) mod array_edits;
pub(crate) mod change_set;
pub(crate) mod edit_runs;
pub(crate) mod fork;
pub(crate) mod fork_state;
pub(crate) mod packs;
pub(crate) mod pending_chunk;
pub(crate) mod session;
pub(crate) mod session_chunks;
pub(crate) mod spool;
pub(crate) mod uploads;
