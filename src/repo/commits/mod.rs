//! Publishing changes: commits, rebases and their conflict rules, manifest updates, fork
//! merges, branch merges and history rewrites (squash, amend).

pub(crate) mod amend;
pub(crate) mod commit;
pub(crate) mod conflicts;
pub(crate) mod fork_merge;
pub(crate) mod fork_rules;
pub(crate) mod identical;
pub(crate) mod manifest_update;
pub(crate) mod merge;
pub(crate) mod merge_tree;
pub(crate) mod node_merge;
pub(crate) mod rewrite;
pub(crate) mod squash;
