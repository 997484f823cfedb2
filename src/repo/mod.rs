//! Repositories, sessions, commits and history.

mod array_edits;
mod change_set;
mod commit;
mod conflicts;
mod edit_runs;
mod fork;
mod fork_merge;
mod fork_rules;
mod fsck;
mod history;
mod identical;
mod loaded;
mod manifest_update;
mod node_merge;
mod packs;
mod refs;
mod repository;
mod session;
mod session_chunks;
mod settings;
mod shard_index;
mod spool;
mod stats;
mod version;

pub(crate) use change_set::PendingChunk;
pub use fork_merge::ForkMergeSummary;
pub use fsck::{FsckOptions, FsckProblem, FsckReport, ShardCounts};
pub use history::LogEntry;
pub(crate) use loaded::lock;
pub use refs::{BranchInfo, TagInfo};
pub use repository::{Repository, DEFAULT_BRANCH, REPOSITORY_FORMAT};
pub use session::{ChunkChanges, NodeInfo, Session, SessionStatus};
pub use settings::RepositorySettings;
pub use spool::ChangeStream;
pub use stats::{ArrayStats, RepositoryInfo};
pub use version::VersionSpec;
