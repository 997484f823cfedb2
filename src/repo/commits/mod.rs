//! Publishing a session: commits, rebases and their conflict rules, manifest updates, fork merges.

pub(crate) mod commit;
pub(crate) mod conflicts;
pub(crate) mod fork_merge;
pub(crate) mod fork_rules;
pub(crate) mod identical;
pub(crate) mod manifest_update;
pub(crate) mod node_merge;
