//! The one public error type of floe.
//!
//! Every variant says what went wrong in terms a caller can act on; none wraps an opaque string.

use std::path::PathBuf;

/// Result alias used throughout floe.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in floe.
///
/// Variants are grouped by what the caller should do about them: fix the input, pick another
/// name, retry, or inspect a damaged repository.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs)] // fields are named for what they hold; the variant docs say the rest
pub enum Error {
    // ---- repository location and layout -------------------------------------------------
    /// The repository URL or path could not be understood.
    #[error("invalid repository location `{location}`: {reason}")]
    InvalidLocation { location: String, reason: String },
    /// No floe repository exists at the location (no `floe.json`).
    #[error("no floe repository at `{location}` (create one with `floe init`)")]
    RepositoryNotFound { location: String },
    /// `init` was asked to create a repository where one already exists.
    #[error("a floe repository already exists at `{location}`")]
    RepositoryExists { location: String },
    /// The repository was written by a newer, incompatible floe.
    #[error("repository format version {found} is not supported (this floe reads up to {supported}); upgrade floe")]
    UnsupportedFormatVersion { found: u32, supported: u32 },

    // ---- storage -----------------------------------------------------------------------
    /// An object that must exist is missing from storage.
    #[error("object `{key}` is missing from storage (the repository may be damaged; check it with `floe -r <repo> fsck`)")]
    ObjectMissing { key: String },
    /// The storage backend failed; the operation may be retried.
    #[error("storage error on `{key}`: {source}")]
    Storage {
        key: String,
        #[source]
        source: object_store::Error,
    },
    /// A local I/O error outside the object store (spill files, temporary files).
    #[error("I/O error on `{path}`: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    // ---- format ------------------------------------------------------------------------
    /// An object's bytes are not a valid floe object (bad magic, truncated, bad payload).
    #[error("object `{key}` is corrupt: {reason}")]
    CorruptObject { key: String, reason: String },
    /// A new object would exceed the format's payload limit (readers refuse larger ones).
    #[error("a {what} object would hold {size} bytes, over the {limit}-byte limit: split the change into several commits")]
    ObjectTooLarge { what: String, size: u64, limit: u64 },
    /// An object's bytes do not hash to the digest in its key.
    #[error(
        "object `{key}` failed its integrity check: expected digest {expected}, found {found}"
    )]
    DigestMismatch {
        key: String,
        expected: String,
        found: String,
    },

    // ---- names, ids and versions ------------------------------------------------------------
    /// A branch or tag name breaks the naming rules.
    #[error("invalid {kind} name `{name}`: {reason}")]
    InvalidRefName {
        kind: &'static str,
        name: String,
        reason: &'static str,
    },
    /// The branch does not exist (or was deleted).
    #[error("branch `{name}` does not exist (list branches with `floe branch list`)")]
    BranchNotFound { name: String },
    /// A branch with this name already exists.
    #[error("branch `{name}` already exists")]
    BranchExists { name: String },
    /// The default branch cannot be deleted.
    #[error("branch `{name}` points at {found}, not at {expected} as expected: it moved since you looked; look at it again (`floe log {name}`) and retry")]
    BranchMoved {
        name: String,
        expected: String,
        found: String,
    },

    #[error("branch `{name}` is the default branch and cannot be deleted (reset it instead)")]
    ProtectedBranch { name: String },
    /// The tag does not exist.
    #[error("tag `{name}` does not exist (list tags with `floe tag list`)")]
    TagNotFound { name: String },
    /// The tag name is taken (tag names are never reused, even after deletion).
    #[error("tag `{name}` already exists or was deleted; tag names are never reused")]
    TagExists { name: String },
    /// The tag was deleted.
    #[error("tag `{name}` was deleted")]
    TagDeleted { name: String },
    /// No snapshot matches the id or id prefix.
    #[error("no snapshot matches `{id}`")]
    SnapshotNotFound { id: String },
    /// A snapshot id prefix matches more than one snapshot.
    #[error("snapshot id prefix `{prefix}` is ambiguous ({count} matches); give more characters")]
    AmbiguousSnapshotPrefix { prefix: String, count: usize },
    /// A version specification could not be parsed.
    #[error("invalid version `{spec}`: {reason} (use a branch, a tag, a snapshot id or `branch@<RFC 3339 time>`)")]
    InvalidVersion { spec: String, reason: String },
    /// Nothing on the branch is as old as the requested time.
    #[error("branch `{branch}` has no commit at or before {time}")]
    NoCommitAsOf { branch: String, time: String },

    // ---- lifecycle (expiry and garbage collection) -------------------------------------------
    /// The history asked for lies before an expiry horizon: it was expired and may already
    /// be deleted. Newer history is unaffected.
    #[error("the history of {version} before {horizon} was expired (cut at snapshot {cut_at}); ask for a version at or after the horizon")]
    HistoryExpired {
        version: String,
        horizon: String,
        cut_at: String,
    },
    /// A snapshot was expired or unreferenced and garbage collection deleted it.
    #[error("snapshot {id} no longer exists: garbage collection run {run} deleted it ({reason})")]
    SnapshotExpired {
        id: String,
        run: u64,
        reason: String,
    },
    /// A branch or tag may not name this snapshot: garbage collection condemned it (no
    /// branch or tag reached it) and may delete it at any moment.
    #[error("snapshot {id} was condemned by garbage collection run {run} (no branch or tag reached it) and may be deleted at any moment; a branch or tag cannot point at it")]
    SnapshotCondemned { id: String, run: u64 },
    /// Objects this session wrote were condemned or deleted by garbage collection because the
    /// session stayed open longer than the grace period; nothing was committed.
    #[error("the session wrote {count} chunk object(s) (e.g. `{example}`) that garbage collection condemned because the session stayed open longer than its grace period; nothing was committed: write the data again in a new session, or run GC with a longer grace")]
    SessionObjectsCollected { count: usize, example: String },
    /// The store's clock could not be read (its listings do not show a just-written object).
    #[error("cannot read the store's clock at `{key}`: {reason}")]
    StoreClockUnreadable { key: String, reason: String },
    /// An expiry or GC option is invalid.
    #[error("invalid {option}: {reason}")]
    InvalidLifecycleOption { option: String, reason: String },
    /// A merge, squash or amend that cannot be done as asked (a range that is not on the
    /// branch, the first snapshot amended, versions that share no stored history).
    #[error("cannot {operation}: {reason}")]
    InvalidHistoryEdit { operation: String, reason: String },

    // ---- sessions and the Zarr view ---------------------------------------------------------
    /// A write was attempted through a read-only session.
    #[error("this session is read-only (open a writable session on a branch to change data)")]
    ReadOnlySession,
    /// A node path is not valid.
    #[error("invalid node path `{path}`: {reason}")]
    InvalidPath { path: String, reason: String },
    /// A Zarr key is not valid for this store.
    #[error("invalid Zarr key `{key}`: {reason}")]
    InvalidKey { key: String, reason: String },
    /// No group or array exists at the path.
    #[error("no group or array at `{path}`")]
    NodeNotFound { path: String },
    /// The node exists but is not of the expected kind.
    #[error("`{path}` is a {found}, not a {expected}")]
    WrongNodeKind {
        path: String,
        expected: &'static str,
        found: &'static str,
    },
    /// A node cannot be created because its parent is missing or not a group.
    #[error("cannot create `{path}`: {reason}")]
    InvalidHierarchy { path: String, reason: String },
    /// Zarr metadata (`zarr.json`) is invalid or unsupported.
    #[error("invalid Zarr metadata for `{path}`: {reason}")]
    InvalidMetadata { path: String, reason: String },
    /// Chunk coordinates are outside the array's chunk grid or have the wrong rank.
    #[error("chunk {coords:?} is outside array `{path}` (chunk grid {grid:?})")]
    ChunkOutOfBounds {
        path: String,
        coords: Vec<u64>,
        grid: Vec<u64>,
    },
    /// The session's last commit has an unknown outcome; it must be settled before more
    /// changes are made.
    #[error("the last commit of this session (snapshot {snapshot}) has an unknown outcome: call commit() again to settle it (or discard()) before making more changes")]
    UnsettledCommit { snapshot: String },
    /// A read kept racing commits or discards of the same session and gave up.
    #[error("reading {what} raced with commits or discards of the same session; retry the read")]
    SessionChangedDuringRead { what: String },
    /// A byte range request cannot be satisfied.
    #[error("byte range {start}..{end} is outside `{key}` ({size} bytes)")]
    InvalidByteRange {
        key: String,
        start: u64,
        end: u64,
        size: u64,
    },

    // ---- serving ----------------------------------------------------------------------------
    /// The HTTP server cannot listen on the address (in use, not local, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// Serving on a non-loopback address without an access token was not explicitly allowed.
    #[error("refusing to serve on non-loopback address {addr} without an access token: give --auth-token (or FLOE_SERVE_TOKEN), or --allow-unauthenticated to expose the repository to anyone who can reach it")]
    UnauthenticatedBind { addr: String },

    /// A rechunked view was requested with a chunk shape request that cannot be served (bad
    /// syntax, unknown array, a group, wrong number of dimensions, a data type the view
    /// cannot assemble).
    #[error("invalid rechunk request `{request}`: {reason} (expected `array=size,size,...` with one positive integer chunk size per dimension, e.g. `temperature=256,256,30,group/pressure=256,256,30`)")]
    InvalidRechunk { request: String, reason: String },

    // ---- commits --------------------------------------------------------------------------
    /// The session has no changes to commit.
    #[error("nothing to commit: the session has no changes")]
    NothingToCommit,
    /// Concurrent commits changed the same data; the commit was not applied.
    #[error("commit conflicts with {their_snapshot} on branch `{branch}` (session based on {our_base}): {detail}")]
    Conflict {
        branch: String,
        our_base: String,
        their_snapshot: String,
        detail: Box<ConflictDetail>,
    },
    /// The branch kept moving and rebase attempts ran out.
    #[error("moving branch `{branch}` gave up after {attempts} attempts: other writers kept moving it; retry later or raise the attempt limit")]
    TooManyRebaseAttempts { branch: String, attempts: u32 },
    /// The commit's objects were written but whether the ref moved is unknown. Nothing was deleted.
    #[error("the outcome of the commit of snapshot {snapshot} to `{branch}` is unknown ({reason}); nothing was deleted: check with `floe log -r <repo> {branch}` whether it landed")]
    CommitOutcomeUnknown {
        branch: String,
        snapshot: String,
        reason: String,
    },

    // ---- virtual chunks ---------------------------------------------------------------------
    /// A virtual chunk's source file is outside every container this handle may read.
    #[error("reading virtual chunks from `{location}` is not authorized: {hint}")]
    VirtualSourceNotAuthorized { location: String, hint: String },
    /// A virtual chunk's location is refused whatever the authorization: not an absolute URL
    /// of a supported scheme, a `..` segment, percent-encoded traversal, or a symbolic link
    /// leading out of its container.
    #[error("virtual chunk location `{location}` is refused: {reason}")]
    VirtualLocationRefused { location: String, reason: String },
    /// A virtual chunk's source changed since the reference was made (its ETag or
    /// modification time no longer matches, or it became too short): its bytes are not
    /// returned.
    #[error("virtual chunk source `{location}` changed since it was referenced (its ETag or modification time no longer matches, or it became too short); its bytes are not returned: re-import the references of this file")]
    VirtualSourceChanged { location: String },
    /// A virtual chunk's source file no longer exists.
    #[error("virtual chunk source `{location}` does not exist (moved or deleted since it was referenced); restore it or re-import the references")]
    VirtualSourceMissing { location: String },
    /// Kerchunk references cannot be imported: malformed references, Zarr v2 metadata that has
    /// no Zarr v3 equivalent (an unsupported codec or data type), or an append whose arrays
    /// do not fit the existing ones. `what` names the reference file, variable or key.
    #[error("cannot import kerchunk references ({what}): {reason}")]
    KerchunkImport { what: String, reason: String },

    // ---- distributed writes ---------------------------------------------------------------
    /// A forked (worker) session tried to commit; only the coordinator commits.
    #[error("this session is a fork of a coordinator session and cannot commit: send `Session::finish_fork`'s changes back to the coordinator, which merges them with `Session::merge_fork` and commits once")]
    CommitFromFork,
    /// A fork ticket or a worker's changes cannot be used here (wrong kind of stream, another
    /// session's fork, a base that moved since the fork, a missing chunk object...).
    #[error("distributed write refused: {reason}")]
    Fork { reason: String },
    /// A worker's changes overlap changes the coordinator already has; nothing was merged.
    #[error(
        "the changes of fork {fork} conflict with this session's: {detail}; nothing was merged"
    )]
    ForkConflict {
        fork: String,
        detail: Box<ConflictDetail>,
    },
    /// Reading or writing a change stream's local spool file (or the caller's reader/writer) failed.
    #[error("change stream I/O failed: {reason}; check the spool directory (RepositorySettings::spool_dir) has space and is writable")]
    Spool { reason: String },
}

/// What exactly two commits disagree about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum ConflictDetail {
    /// Both sides wrote or deleted the same chunks.
    Chunks { path: String, coords: Vec<Vec<u64>> },
    /// Both sides changed the metadata of the same node, or one deleted it.
    Node { path: String, reason: String },
}

impl std::fmt::Display for ConflictDetail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConflictDetail::Chunks { path, coords } => {
                let shown: Vec<String> = coords.iter().take(8).map(|c| format!("{c:?}")).collect();
                let more = coords.len().saturating_sub(8);
                write!(f, "both wrote chunks of `{path}` at {}", shown.join(", "))?;
                if more > 0 {
                    write!(f, " and {more} more")?;
                }
                Ok(())
            }
            ConflictDetail::Node { path, reason } => write!(f, "node `{path}`: {reason}"),
        }
    }
}

impl Error {
    pub(crate) fn corrupt(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::CorruptObject {
            key: key.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid_path(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidPath {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// An import refused: `what` names the reference file, variable or key.
    pub(crate) fn import_refused(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::KerchunkImport {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid_key(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidKey {
            key: key.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid_metadata(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidMetadata {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// True when retrying the same operation later may succeed (transient storage failures,
    /// a branch that kept moving). A conflict is not retryable: the same changes conflict again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Storage { .. }
                | Error::TooManyRebaseAttempts { .. }
                | Error::SessionChangedDuringRead { .. }
        )
    }
}
