//! Repositories, sessions, commits and history.
//!
//! Sub-modules, each depending only on those listed before it: `read` (the handle and what
//! it reads), `history` (refs, versions, history queries), `write` (sessions and their
//! changes), `commits` (publishing them), `ops` (fsck, statistics).

mod commits;
mod history;
mod ops;
mod read;
mod write;

pub use commits::fork_merge::ForkMergeSummary;
pub use commits::merge::{MergeOptions, MergeReport};
pub use commits::merge_tree::{MergeCounts, MergeStrategy};
pub use commits::squash::{SquashOptions, SquashReport};
pub use history::queries::LogEntry;
pub use history::reflog::{BranchMove, ReflogEntry};
pub use history::refs::{BranchInfo, TagInfo};
pub use history::version::VersionSpec;
pub use ops::diff::{
    ChunkCoords, ChunkDiff, DiffOptions, MetadataDiff, NodeChange, NodeDiff, NodeType, VersionDiff,
};
pub use ops::expire::{BranchExpiry, ExpireBefore, ExpireOptions, ExpireReport};
pub use ops::fsck::{FsckOptions, FsckProblem, FsckReport, ShardCounts};
pub use ops::gc::{GcOptions, GcReport, SparsePack};
pub use ops::stats::{ArrayStats, RepositoryInfo};
pub(crate) use read::loaded::lock;
pub use read::repository::{Repository, DEFAULT_BRANCH, REPOSITORY_FORMAT};
pub use read::settings::RepositorySettings;
pub(crate) use write::pending_chunk::PendingChunk;
pub use write::session::{ChunkChanges, NodeInfo, Session, SessionStatus};
pub use write::spool::ChangeStream;
