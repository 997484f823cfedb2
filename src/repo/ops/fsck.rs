//! `fsck`: prove that every object reachable from a live branch or tag is present and intact.
//!
//! The roots are the tips of the live branches and the snapshots of the live tags. A deleted
//! branch's history is not a root (it is garbage-collectable once no live ref reaches it), and
//! neither is a branch's reflog: only where refs point now. From the roots, fsck walks the full
//! ancestry of every snapshot (following `parent`, `skips` and `recent`, each snapshot once,
//! iteratively) and checks every snapshot, manifest base, transaction log and chunk object it
//! reaches, each object once however many snapshots share it. Problems are collected, never
//! fatal; only a storage failure other than "missing" aborts. spec/algorithms.md §10 lists the
//! checks as numbered steps.
//!
//! Reads go straight to storage (never through the repository's caches) so that what is
//! checked is what is stored, and at most `io_concurrency` storage requests run at once.

mod chunks;
mod report;
mod shards;
#[cfg(test)]
mod tests;
mod walk;

pub use report::{FsckOptions, FsckProblem, FsckReport, ShardCounts};

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use tokio::sync::{OnceCell, Semaphore, SemaphorePermit};

use crate::error::{Error, Result};
use crate::format::envelope::{self, ObjectKind};
use crate::format::manifest::ChunkCoord;
use crate::format::path::NodePath;
use crate::format::refs::validate_ref_name;
use crate::format::snapshot::{NodeKind, Snapshot, TxLogRef};
use crate::format::txlog::TxLog;
use crate::id::{ChunkObjectId, ManifestId, SnapshotId, TxLogId};
use crate::repo::history::refs::BranchHead;
use crate::repo::read::loaded::{lock, ShardIndex};
use crate::repo::read::repository::{hex, Repository};
use crate::storage::{layout, Storage};
use crate::zarr::metadata::NodeMetadata;
use walk::{history_findings, visit_of, Visit};

impl Repository {
    /// Checks that every object reachable from the live branches and tags is present and
    /// intact, and reports what it checked and every problem found.
    ///
    /// The roots are the tips of the live branches and the snapshots of the live tags; the
    /// full ancestry of each is checked. The history of a deleted branch and older positions
    /// of a branch are not roots (what only they reach is garbage). With
    /// `verify_chunk_digests` false, chunk objects are sized but not read.
    ///
    /// Problems (missing or damaged objects, inconsistent history, wrong shard statistics,
    /// chunk references outside their object, ...) never stop the check; the report lists
    /// them all, sorted by key. The call fails only when storage fails for another reason
    /// than a missing object (unreachable store, permission denied), with that error.
    /// Nothing is written. Reads bypass this handle's caches.
    pub async fn fsck(&self, options: FsckOptions) -> Result<FsckReport> {
        let mut checker = Checker::new(self);
        checker.collected = self.gc_deleted_snapshots().await?;
        let roots = checker.roots().await?;
        checker.walk(roots).await?;
        if options.verify_chunk_digests {
            checker.verify_chunk_objects().await?;
        }
        Ok(checker.finish())
    }
}

/// Which counter an object read adds to.
#[derive(Clone, Copy)]
enum Counted {
    Snapshot,
    Manifest,
    TxLog,
}

/// The outcome of reading a digest-addressed object.
enum Fetched {
    Missing,
    Mismatch { found: String, len: u64 },
    Intact(Bytes),
}

/// One object-level fact computed once and shared by everyone who needs it.
type Cells<K, V> = Mutex<HashMap<K, Arc<OnceCell<V>>>>;

/// What a chunk object's first `head` found.
#[derive(Clone)]
struct ObjectInfo {
    size: Option<u64>,
    referrer: String,
}

/// What a verified manifest base holds, in summary.
#[derive(Clone)]
struct BaseSummary {
    counts: ShardCounts,
    extent: Option<Vec<u64>>,
}

#[derive(Default)]
struct State {
    report: FsckReport,
    txlogs: HashSet<TxLogId>,
    base_regions: HashSet<(ManifestId, ChunkCoord, Vec<u64>)>,
    grid_reports: HashSet<([u8; 32], Vec<u64>)>,
}

#[derive(Clone)]
struct BaseWeighter;

impl quick_cache::Weighter<ManifestId, Arc<ShardIndex>> for BaseWeighter {
    fn weight(&self, _key: &ManifestId, value: &Arc<ShardIndex>) -> u64 {
        value.approx_bytes().max(1)
    }
}

/// The state of one fsck run. Shared by the concurrent per-snapshot checks; the mutexes are
/// never held across an await.
struct Checker<'a> {
    repo: &'a Repository,
    storage: &'a dyn Storage,
    concurrency: usize,
    io: Semaphore,
    state: Mutex<State>,
    manifests: Cells<ManifestId, Option<BaseSummary>>,
    objects: Cells<ChunkObjectId, ObjectInfo>,
    shards: Cells<[u8; 32], Option<Vec<u64>>>,
    bases: quick_cache::sync::Cache<ManifestId, Arc<ShardIndex>, BaseWeighter>,
    /// Snapshots garbage collection deleted: expired history, not damage, when another
    /// snapshot's history names them.
    collected: HashSet<SnapshotId>,
}

/// Looks up (or creates) the shared cell of `key`.
fn cell<K: Hash + Eq + Clone, V>(cells: &Cells<K, V>, key: &K) -> Arc<OnceCell<V>> {
    lock(cells).entry(key.clone()).or_default().clone()
}

impl<'a> Checker<'a> {
    fn new(repo: &'a Repository) -> Self {
        let settings = repo.settings();
        let concurrency = settings.io_concurrency.max(1);
        Checker {
            repo,
            storage: repo.storage().as_ref(),
            concurrency,
            io: Semaphore::new(concurrency),
            state: Mutex::default(),
            manifests: Mutex::default(),
            objects: Mutex::default(),
            shards: Mutex::default(),
            bases: quick_cache::sync::Cache::with_weighter(
                1024,
                settings.manifest_cache_bytes.max(1),
                BaseWeighter,
            ),
            collected: HashSet::new(),
        }
    }

    fn finish(self) -> FsckReport {
        let mut report = self
            .state
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .report;
        report
            .problems
            .sort_by_cached_key(|p| (p.key().to_string(), p.to_string()));
        report.problems.dedup();
        report
    }

    // ---- bookkeeping ------------------------------------------------------------------

    fn problem(&self, problem: FsckProblem) {
        lock(&self.state).report.problems.push(problem);
    }

    fn count(&self, update: impl FnOnce(&mut FsckReport)) {
        update(&mut lock(&self.state).report);
    }

    /// A storage request slot; at most `io_concurrency` are out at once.
    async fn permit(&self) -> Option<SemaphorePermit<'_>> {
        // The semaphore is never closed, so acquiring cannot fail.
        self.io.acquire().await.ok()
    }

    /// Records `error` as a problem of `key` when it describes a damaged or missing object;
    /// returns any other error (storage failures abort the check).
    fn absorb(&self, error: Error, key: &str, referrer: &str) -> Result<()> {
        let problem = match error {
            Error::ObjectMissing { key } => FsckProblem::Missing {
                key,
                referenced_by: referrer.to_string(),
            },
            Error::DigestMismatch { key, found, .. } => FsckProblem::DigestMismatch { key, found },
            Error::CorruptObject { key, reason } => FsckProblem::Corrupt { key, reason },
            Error::UnsupportedFormatVersion { found, supported } => FsckProblem::Corrupt {
                key: key.to_string(),
                reason: format!(
                    "object format version {found} is newer than this floe reads ({supported})"
                ),
            },
            other => return Err(other),
        };
        self.problem(problem);
        Ok(())
    }

    fn corrupt(&self, key: &str, reason: impl Into<String>) {
        self.problem(FsckProblem::Corrupt {
            key: key.to_string(),
            reason: reason.into(),
        });
    }

    // ---- reading ----------------------------------------------------------------------

    /// Reads a digest-addressed object whole and checks its digest. No side effects.
    async fn fetch(&self, key: &str, digest: &[u8; 32]) -> Result<Fetched> {
        let bytes = {
            let _permit = self.permit().await;
            match self.storage.get(key).await {
                Ok(bytes) => bytes,
                Err(Error::ObjectMissing { .. }) => return Ok(Fetched::Missing),
                Err(e) => return Err(e),
            }
        };
        let found = blake3::hash(&bytes);
        if found.as_bytes() == digest {
            Ok(Fetched::Intact(bytes))
        } else {
            Ok(Fetched::Mismatch {
                found: hex(found.as_bytes()),
                len: bytes.len() as u64,
            })
        }
    }

    /// Reads and digest-checks an object, counting it and reporting it when missing or
    /// damaged (then `None`).
    async fn read_object(
        &self,
        key: &str,
        digest: &[u8; 32],
        referrer: &str,
        counted: Counted,
    ) -> Result<Option<Bytes>> {
        let (len, intact) = match self.fetch(key, digest).await? {
            Fetched::Missing => {
                self.problem(FsckProblem::Missing {
                    key: key.to_string(),
                    referenced_by: referrer.to_string(),
                });
                return Ok(None);
            }
            Fetched::Mismatch { found, len } => (len, Err(found)),
            Fetched::Intact(bytes) => (bytes.len() as u64, Ok(bytes)),
        };
        self.count(|r| {
            match counted {
                Counted::Snapshot => r.snapshots += 1,
                Counted::Manifest => r.manifests += 1,
                Counted::TxLog => r.txlogs += 1,
            }
            r.bytes_verified += len;
        });
        match intact {
            Ok(bytes) => Ok(Some(bytes)),
            Err(found) => {
                self.problem(FsckProblem::DigestMismatch {
                    key: key.to_string(),
                    found,
                });
                Ok(None)
            }
        }
    }

    // ---- roots ------------------------------------------------------------------------

    /// The tips of the live branches and the snapshots of the live tags, with who names them.
    /// A ref record that cannot be read is reported and skipped.
    async fn roots(&self) -> Result<Vec<(SnapshotId, String)>> {
        let mut prefixes = self.storage.list_dir(layout::REFS_DIR).await?.prefixes;
        prefixes.sort();
        let mut roots = Vec::new();
        for prefix in prefixes {
            match layout::parse_ref_dir(&prefix) {
                Some(layout::RefDirName::Branch(name))
                    if validate_ref_name("branch", &name).is_ok() =>
                {
                    let who = format!("branch `{name}`");
                    match self.repo.branch_head_record(&name, None).await {
                        Ok(Some(BranchHead {
                            snapshot: Some(id), ..
                        })) => {
                            self.count(|r| r.branches += 1);
                            roots.push((id, who));
                        }
                        Ok(_) => {}
                        Err(e) => self.absorb(e, &prefix, &who)?,
                    }
                }
                Some(layout::RefDirName::Tag(name)) if validate_ref_name("tag", &name).is_ok() => {
                    let who = format!("tag `{name}`");
                    match self.repo.tag(&name).await {
                        Ok(info) => {
                            self.count(|r| r.tags += 1);
                            roots.push((info.snapshot, who));
                        }
                        Err(Error::TagDeleted { .. }) | Err(Error::TagNotFound { .. }) => {}
                        Err(e) => self.absorb(e, &layout::tag_key(&name), &who)?,
                    }
                }
                _ => {}
            }
        }
        Ok(roots)
    }

    /// Reads, verifies and checks one snapshot and everything it references except other
    /// snapshots. `None` when it is missing or unreadable (reported).
    async fn check_snapshot(
        &self,
        id: SnapshotId,
        referrer: String,
    ) -> Result<(SnapshotId, Option<Visit>)> {
        let key = layout::snapshot_key(&id);
        if self.collected.contains(&id) && referrer.starts_with(layout::SNAPSHOTS_DIR) {
            // Named by a newer snapshot's history, deleted by GC after expiry or once no ref
            // reached it: not damage.
            if self.storage.head(&key).await?.is_none() {
                self.count(|r| r.expired_snapshots += 1);
                return Ok((id, None));
            }
        }
        let Some(bytes) = self
            .read_object(&key, id.as_bytes(), &referrer, Counted::Snapshot)
            .await?
        else {
            return Ok((id, None));
        };
        let snapshot: Snapshot = match envelope::decode(&key, &bytes, ObjectKind::Snapshot) {
            Ok(snapshot) => snapshot,
            Err(e) => {
                self.absorb(e, &key, &referrer)?;
                return Ok((id, None));
            }
        };
        drop(bytes);
        for reason in history_findings(&snapshot) {
            self.problem(FsckProblem::InconsistentHistory {
                key: key.clone(),
                reason,
            });
        }
        if !matches!(
            serde_json::from_str(&snapshot.metadata_json),
            Ok(serde_json::Value::Object(_))
        ) {
            self.corrupt(&key, "`metadata_json` is not the text of a JSON object");
        }
        self.check_nodes(&key, &snapshot).await?;
        self.check_txlog(&key, &snapshot.txlog).await?;
        Ok((id, Some(visit_of(id, &snapshot))))
    }

    /// Node order, every `zarr.json`, the hierarchy, then every array's shards.
    async fn check_nodes(&self, key: &str, snapshot: &Snapshot) -> Result<()> {
        if let Some(pair) = snapshot.nodes.windows(2).find(|p| p[0].path >= p[1].path) {
            self.corrupt(
                key,
                format!(
                    "nodes are not sorted and unique by path ({} before {})",
                    pair[0].path, pair[1].path
                ),
            );
        }
        let invalid = |path: &NodePath, reason: String| {
            self.problem(FsckProblem::InvalidNode {
                key: key.to_string(),
                path: path.clone(),
                reason,
            })
        };
        let arrays: HashSet<&NodePath> = snapshot
            .nodes
            .iter()
            .filter(|n| matches!(n.kind, NodeKind::Array(_)))
            .map(|n| &n.path)
            .collect();
        let mut jobs = Vec::new();
        for node in &snapshot.nodes {
            let geometry = match (
                NodeMetadata::parse(&node.path, node.zarr_json.as_bytes()),
                &node.kind,
            ) {
                (Err(Error::InvalidMetadata { reason, .. }), _) => {
                    invalid(&node.path, format!("zarr.json: {reason}"));
                    None
                }
                (Err(e), _) => {
                    invalid(&node.path, format!("zarr.json: {e}"));
                    None
                }
                (Ok(m), NodeKind::Group) if m.geometry().is_some() => {
                    invalid(
                        &node.path,
                        "recorded as a group but zarr.json describes an array".into(),
                    );
                    None
                }
                (Ok(m), NodeKind::Array(_)) if m.geometry().is_none() => {
                    invalid(
                        &node.path,
                        "recorded as an array but zarr.json describes a group".into(),
                    );
                    None
                }
                (Ok(m), _) => m.geometry().cloned(),
            };
            let mut ancestor = node.path.parent();
            while let Some(a) = ancestor {
                if arrays.contains(&a) {
                    invalid(&node.path, format!("it lies inside the array {a}"));
                    break;
                }
                ancestor = a.parent();
            }
            if let NodeKind::Array(manifest) = &node.kind {
                jobs.extend(self.shard_jobs(key, &node.path, manifest, geometry.as_ref()));
            }
        }
        // The futures are built first: a closure inside the stream would make the whole
        // future's `Send` unprovable for callers that spawn it (a rustc limitation).
        let checks: Vec<_> = jobs.into_iter().map(|job| self.check_shard(job)).collect();
        stream::iter(checks)
            .buffer_unordered(self.concurrency)
            .try_collect::<()>()
            .await
    }

    /// Decodes the transaction log (reading it if it is an object) and checks its order.
    async fn check_txlog(&self, key: &str, txlog: &TxLogRef) -> Result<()> {
        let id = match txlog {
            TxLogRef::Inline(log) => {
                self.check_txlog_order(key, log);
                return Ok(());
            }
            TxLogRef::Object(id) => id,
        };
        if !lock(&self.state).txlogs.insert(*id) {
            return Ok(());
        }
        let txlog_key = layout::txlog_key(id);
        let Some(bytes) = self
            .read_object(&txlog_key, id.as_bytes(), key, Counted::TxLog)
            .await?
        else {
            return Ok(());
        };
        match envelope::decode::<TxLog>(&txlog_key, &bytes, ObjectKind::TxLog) {
            Ok(log) => self.check_txlog_order(&txlog_key, &log),
            Err(e) => self.absorb(e, &txlog_key, key)?,
        }
        Ok(())
    }

    fn check_txlog_order(&self, key: &str, log: &TxLog) {
        let reason = if log.nodes.windows(2).any(|p| p[0].0 >= p[1].0) {
            "transaction log: nodes are not sorted and unique by path"
        } else if log.chunks.windows(2).any(|p| p[0].0 >= p[1].0) {
            "transaction log: chunk lists are not sorted and unique by path"
        } else if log.chunks.iter().any(|(_, list)| {
            let coords: Result<Vec<_>> = list.iter().collect();
            coords.map_or(true, |c| c.is_empty() || c.windows(2).any(|p| p[0] >= p[1]))
        }) {
            "transaction log: a chunk list is empty or not sorted and unique"
        } else {
            return;
        };
        self.corrupt(key, reason);
    }
}
