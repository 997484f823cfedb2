//! What a session remembers of forks: the fork a worker session started from, and the forks a
//! coordinator session issued (`fork.rs`).

use std::collections::BTreeMap;

use super::change_set::ChangeSet;

/// What a worker session started from.
#[derive(Debug)]
pub(crate) struct ForkOrigin {
    /// The ticket's fork id; the worker's changes carry it back.
    pub(crate) id: u128,
    /// The coordinator's changes at fork time.
    pub(crate) inherited: ChangeSet,
}

/// A fork a session issued.
#[derive(Clone, Debug)]
pub(crate) struct IssuedFork {
    /// The session's base snapshot when it issued the fork.
    pub(crate) base: crate::id::SnapshotId,
    /// The session's changes when it issued the fork: the ticket's states.
    pub(crate) ticket: std::sync::Arc<ChangeSet>,
}

/// The forks a session issued since its last commit or discard, by fork id.
pub(crate) type IssuedForks = BTreeMap<u128, IssuedFork>;
