//! Merging one version into a branch (spec/algorithms.md §15): a three-way merge from the
//! nearest common ancestor, published as one merge commit that records its source.

use serde_json::{Map, Value};

use super::merge_tree::{MergeCounts, MergeStrategy, ThreeWay};
use super::rewrite::{child_snapshot, Content};
use crate::error::{Error, Result};
use crate::format::now_us;
use crate::id::SnapshotId;
use crate::repo::history::refs::AdvanceOutcome;
use crate::repo::read::loaded::LoadedSnapshot;
use crate::repo::read::repository::Repository;

/// How to merge.
#[derive(Clone, Debug, Default)]
pub struct MergeOptions {
    /// What to do with chunks both sides changed differently.
    pub strategy: MergeStrategy,
    /// The merge commit's message (default: "Merge `<source>` into `<branch>`").
    pub message: Option<String>,
    /// The merge commit's metadata.
    pub metadata: Option<Map<String, Value>>,
    /// Publish only while the target branch points here ([`Error::BranchMoved`] otherwise);
    /// without it, a branch that moves during the merge is merged again from its new tip.
    pub expect: Option<SnapshotId>,
    /// Work the merge out (conflicts included) but publish nothing.
    pub dry_run: bool,
}

/// What a merge did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeReport {
    /// The merge commit; `None` when the source was already merged (or on a dry run).
    pub snapshot: Option<SnapshotId>,
    /// The target branch's tip the merge commit sits on.
    pub parent: SnapshotId,
    /// The merged version.
    pub source: SnapshotId,
    /// Their nearest common ancestor, where the merge started.
    pub base: SnapshotId,
    /// True when the branch already contained the source: nothing to merge.
    pub up_to_date: bool,
    /// What was taken, merged and resolved.
    pub counts: MergeCounts,
}

impl Repository {
    /// Merges the version `source` into branch `into` (spec/algorithms.md §15).
    ///
    /// Starts from the nearest common ancestor ([`Repository::merge_base`]; an earlier merge
    /// of the same source counts, so merging again takes only what changed since). Nodes and
    /// manifest shards only one side changed are taken as they are (shards reused by id);
    /// nodes both changed merge by the rebase rules (shapes grow to the larger, attributes by
    /// key) and their shards both changed merge chunk by chunk. A chunk both sides changed
    /// differently, a node deleted on one side and changed on the other, or a node left
    /// without its parent group fails with [`Error::Conflict`] naming the node (and the
    /// chunks), unless `options.strategy` resolves chunks. Publishes one commit on `into`
    /// whose `merged` field names `source` (spec/objects.md §5); when `into` moves
    /// meanwhile, the merge is worked out again on its new tip (or, with `options.expect`,
    /// refused with [`Error::BranchMoved`]).
    pub async fn merge(
        &self,
        source: SnapshotId,
        into: &str,
        options: &MergeOptions,
    ) -> Result<MergeReport> {
        let settings = self.settings().clone();
        let attempts = settings.max_commit_attempts.max(1);
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::time::sleep(settings.commit_backoff(attempt - 1)).await;
            }
            let (seq, tip) = self.branch_head(into).await?;
            if let Some(expected) = options.expect.filter(|&e| e != tip) {
                return Err(Error::BranchMoved {
                    name: into.to_string(),
                    expected: expected.to_string(),
                    found: tip.to_string(),
                });
            }
            let base =
                self.merge_base(tip, source)
                    .await?
                    .ok_or_else(|| Error::InvalidHistoryEdit {
                        operation: format!("merge {source} into `{into}`"),
                        reason: "they share no history that is still stored (expired and \
                                 collected?): there is no common ancestor to merge from"
                            .into(),
                    })?;
            let mut report = MergeReport {
                snapshot: None,
                parent: tip,
                source,
                base,
                up_to_date: base == source,
                counts: MergeCounts::default(),
            };
            if report.up_to_date {
                return Ok(report);
            }
            let (base_snapshot, target, source_snapshot) = futures::try_join!(
                self.load_named_snapshot(&base),
                self.load_named_snapshot(&tip),
                self.load_named_snapshot(&source)
            )?;
            let three_way = ThreeWay {
                repo: self,
                base: &base_snapshot,
                target: &target,
                source: &source_snapshot,
                strategy: options.strategy,
                branch: into,
            };
            let merged = three_way.merge().await?;
            report.counts = merged.counts;
            if options.dry_run {
                return Ok(report);
            }
            let message = options
                .message
                .clone()
                .unwrap_or_else(|| format!("Merge {source} into {into}"));
            let content = Content {
                // Later than the source too: times increase along merge edges as well.
                committed_at_us: now_us().max(source_snapshot.snapshot.committed_at_us + 1),
                message,
                metadata_json: Value::Object(options.metadata.clone().unwrap_or_default())
                    .to_string(),
                nodes: merged.nodes,
                txlog: self.txlog_ref(merged.txlog).await?,
                merged: Some(source),
                rewritten_from: None,
            };
            let snapshot = child_snapshot(&target, content);
            let id = self.write_snapshot(&snapshot).await?;
            // The merge carries the source's objects: a source garbage collection condemned
            // may not come back through it (spec/algorithms.md §14.1).
            self.check_ref_target(source).await?;
            match self
                .try_advance_branch(
                    into,
                    seq + 1,
                    Some(id),
                    Some((snapshot.generation, &snapshot.pages)),
                )
                .await?
            {
                AdvanceOutcome::Landed => {
                    self.cache_snapshot(std::sync::Arc::new(LoadedSnapshot::new(id, snapshot)));
                    report.snapshot = Some(id);
                    return Ok(report);
                }
                AdvanceOutcome::Lost if options.expect.is_some() => {
                    let (_, found) = self.branch_head(into).await?;
                    return Err(Error::BranchMoved {
                        name: into.to_string(),
                        expected: tip.to_string(),
                        found: found.to_string(),
                    });
                }
                AdvanceOutcome::Lost => {}
            }
        }
        Err(Error::TooManyRebaseAttempts {
            branch: into.to_string(),
            attempts,
        })
    }
}

impl MergeReport {
    /// The report as one JSON document (`floe merge --json`, Python `Repository.merge`).
    pub fn to_json(&self) -> Value {
        let c = &self.counts;
        serde_json::json!({
            "snapshot": self.snapshot.map(|id| id.to_string()),
            "parent": self.parent.to_string(),
            "source": self.source.to_string(),
            "base": self.base.to_string(),
            "up_to_date": self.up_to_date,
            "nodes_from_source": c.nodes_from_source,
            "nodes_merged": c.nodes_merged,
            "shards_reused": c.shards_reused,
            "shards_merged": c.shards_merged,
            "chunks_resolved": c.chunks_resolved,
        })
    }
}
