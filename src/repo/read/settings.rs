//! Tunable limits of a repository handle.

use std::time::Duration;

use rand::Rng;

/// Settings of a [`Repository`](crate::Repository) handle. They change how new objects are
/// laid out and how commits retry, never how existing objects are read.
#[derive(Clone, Debug)]
pub struct RepositorySettings {
    /// Chunks of at most this many bytes are stored inline in the manifest.
    pub inline_threshold: usize,
    /// Chunks of at least this many bytes are written as objects of their own; smaller ones are
    /// packed together.
    pub single_object_threshold: usize,
    /// A pack is written once it holds this many bytes (and at commit).
    pub pack_target_bytes: usize,
    /// Target number of chunk references per manifest shard.
    pub shard_target_refs: u64,
    /// A shard's inline delta is compacted into a new base when it has more entries than this.
    pub delta_max_entries: usize,
    /// ... or when its encoded columns are larger than this many bytes.
    pub delta_max_bytes: usize,
    /// Transaction logs up to this many encoded bytes are carried in the snapshot.
    pub txlog_inline_max_bytes: usize,
    /// How many times a commit is attempted before giving up on a moving branch.
    pub max_commit_attempts: u32,
    /// Base delay of the jittered exponential backoff between commit attempts.
    pub commit_backoff_base: Duration,
    /// Cap of the backoff delay.
    pub commit_backoff_max: Duration,
    /// Maximum concurrent storage requests issued by one operation; also the most chunk
    /// uploads a session keeps running in the background.
    pub io_concurrency: usize,
    /// A background chunk upload still running this long when a commit or fork needs it is
    /// sent again, and the first to finish wins (a stalled request cannot wedge a commit).
    pub upload_hedge_after: Duration,
    /// Number of decoded snapshots kept in memory.
    pub snapshot_cache_entries: usize,
    /// Bytes of decoded manifest shards kept in memory.
    pub manifest_cache_bytes: u64,
    /// Change streams (fork tickets, workers' changes) larger than this many bytes are spooled
    /// to a temporary file instead of being held in memory.
    pub spool_memory_bytes: u64,
    /// Directory of spooled change streams; the system temporary directory when `None`.
    pub spool_dir: Option<std::path::PathBuf>,
}

impl Default for RepositorySettings {
    fn default() -> Self {
        RepositorySettings {
            inline_threshold: 512,
            single_object_threshold: 1 << 20,
            pack_target_bytes: 32 << 20,
            shard_target_refs: 16 * 1024,
            delta_max_entries: 1024,
            delta_max_bytes: 4 * 1024,
            txlog_inline_max_bytes: 8 * 1024,
            max_commit_attempts: 25,
            commit_backoff_base: Duration::from_millis(5),
            commit_backoff_max: Duration::from_millis(500),
            io_concurrency: 16,
            upload_hedge_after: Duration::from_secs(10),
            snapshot_cache_entries: 256,
            manifest_cache_bytes: 256 << 20,
            spool_memory_bytes: 64 << 20,
            spool_dir: None,
        }
    }
}

impl RepositorySettings {
    /// The jittered exponential backoff before retry number `attempt` (1-based) of a commit or
    /// a ref move: a uniformly random delay up to `commit_backoff_base * 2^attempt`, capped at
    /// `commit_backoff_max`.
    pub(crate) fn commit_backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .commit_backoff_base
            .saturating_mul(1 << attempt.min(10));
        let cap = exp.min(self.commit_backoff_max);
        Duration::from_micros(rand::rng().random_range(0..=cap.as_micros().max(1) as u64))
    }
}
