//! Squashing a range of a branch's commits into one (spec/algorithms.md §16).
//!
//! Nothing is re-encoded and no manifest is rewritten: the squash commit carries the last
//! commit's nodes as they are, on the first commit's parent, and every commit after the
//! range is replayed on top of it with its own nodes, as a copy that names the commit it
//! replaces ([`crate::format::snapshot::Snapshot::rewritten_from`]). The branch moves only if
//! it is still where the squash found it.

use std::sync::Arc;

use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::{Map, Value};

use super::rewrite::{child_snapshot, compose_txlogs, replacing_snapshot, Content};
use crate::error::{Error, Result};
use crate::id::SnapshotId;
use crate::repo::history::refs::AdvanceOutcome;
use crate::repo::read::loaded::LoadedSnapshot;
use crate::repo::read::repository::Repository;

/// Transaction logs read at once.
const IN_FLIGHT: usize = 16;

/// How to squash.
#[derive(Clone, Debug, Default)]
pub struct SquashOptions {
    /// The squash commit's message (default: the squashed commits' messages, oldest first,
    /// one per line).
    pub message: Option<String>,
    /// The squash commit's metadata (default: the last squashed commit's).
    pub metadata: Option<Map<String, Value>>,
    /// Publish only while the branch points here (default: where the squash found it).
    pub expect: Option<SnapshotId>,
}

/// What a squash did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SquashReport {
    /// The commit that replaces the range.
    pub snapshot: SnapshotId,
    /// The branch's new tip (the squash commit, or the last replayed commit).
    pub tip: SnapshotId,
    /// The squashed commits, oldest first.
    pub squashed: Vec<SnapshotId>,
    /// The commits after the range and their replayed copies, oldest first.
    pub replayed: Vec<(SnapshotId, SnapshotId)>,
}

fn refused(branch: &str, reason: impl Into<String>) -> Error {
    Error::InvalidHistoryEdit {
        operation: format!("squash on branch `{branch}`"),
        reason: reason.into(),
    }
}

impl Repository {
    /// Replaces the commits `first..=last` of `branch` (both on its history, `first` not the
    /// repository's first snapshot) by one commit holding `last`'s content on `first`'s
    /// parent, replays the commits after `last`, and moves the branch to the new tip, only if
    /// the branch still points where it did when the squash read it (or at
    /// `options.expect`): otherwise [`Error::BranchMoved`] and nothing is published. A session
    /// based on a replaced commit fails to commit with [`Error::Conflict`] rather than write
    /// over the new history.
    pub async fn squash(
        &self,
        branch: &str,
        first: SnapshotId,
        last: SnapshotId,
        options: &SquashOptions,
    ) -> Result<SquashReport> {
        let (seq, tip) = self.branch_head(branch).await?;
        if let Some(expected) = options.expect.filter(|&e| e != tip) {
            return Err(Error::BranchMoved {
                name: branch.to_string(),
                expected: expected.to_string(),
                found: tip.to_string(),
            });
        }
        let (first_snapshot, last_snapshot) = futures::try_join!(
            self.load_named_snapshot(&first),
            self.load_named_snapshot(&last)
        )?;
        if first_snapshot.snapshot.parent.is_none() {
            return Err(refused(
                branch,
                "the repository's first snapshot cannot be squashed",
            ));
        }
        if first_snapshot.snapshot.generation > last_snapshot.snapshot.generation {
            return Err(refused(branch, format!("{first} comes after {last}")));
        }
        // The branch's commits from the tip down to `first`, newest first.
        let mut chain: Vec<Arc<LoadedSnapshot>> = Vec::new();
        let mut current = Some(tip);
        while let Some(id) = current {
            let loaded = self.load_snapshot(&id).await?;
            if loaded.snapshot.generation < first_snapshot.snapshot.generation {
                break;
            }
            // `first`'s parent is not read: expiry and GC may have removed it.
            current = loaded
                .snapshot
                .parent
                .filter(|_| loaded.snapshot.generation > first_snapshot.snapshot.generation);
            chain.push(loaded);
        }
        let position = |id: SnapshotId| chain.iter().position(|s| s.id == id);
        let (Some(first_at), Some(last_at)) = (position(first), position(last)) else {
            return Err(refused(
                branch,
                format!("{first}..{last} is not a range of the branch's history"),
            ));
        };
        chain.reverse();
        let (first_at, last_at) = (chain.len() - 1 - first_at, chain.len() - 1 - last_at);
        let squashed = &chain[first_at..=last_at];
        let after = &chain[last_at + 1..];
        // Only `first`'s edge to its parent may be cut (it is carried to the squash commit);
        // a cut above it means part of what would be rewritten has expired, and copies of it
        // would be unreachable from the start.
        let horizon = self.expiry_horizon().await?;
        if let Some(cut) = squashed[1..]
            .iter()
            .chain(after)
            .find(|s| horizon.is_cut(&s.id))
        {
            return Err(refused(
                branch,
                format!(
                    "history below {} has expired; squash only commits above it",
                    cut.id
                ),
            ));
        }
        let reads: Vec<_> = squashed
            .iter()
            .map(|s| {
                let txlog = s.snapshot.txlog.clone();
                async move { self.load_txlog(&txlog).await }
            })
            .collect();
        let logs: Vec<_> = stream::iter(reads)
            .buffered(IN_FLIGHT)
            .try_collect()
            .await?;
        let newest = &last_snapshot.snapshot;
        let message = options.message.clone().unwrap_or_else(|| {
            squashed
                .iter()
                .map(|s| s.snapshot.message.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        });
        let metadata_json = match &options.metadata {
            Some(m) => Value::Object(m.clone()).to_string(),
            None => newest.metadata_json.clone(),
        };
        let txlog = compose_txlogs(&newest.nodes, &logs)?;
        let squash = replacing_snapshot(
            &first_snapshot.snapshot,
            Content {
                committed_at_us: newest.committed_at_us,
                message,
                metadata_json,
                nodes: newest.nodes.clone(),
                txlog: self.txlog_ref(txlog).await?,
                // The newest merge of the range stays recorded for the next merge.
                merged: squashed.iter().rev().find_map(|s| s.snapshot.merged),
                rewritten_from: Some(last),
            },
        );
        let squash_id = self.write_snapshot(&squash).await?;
        let mut previous = Arc::new(LoadedSnapshot::new(squash_id, squash));
        // Each new commit with the commit whose edge to its parent it stands for.
        let mut written = vec![(first, previous.clone())];
        let mut replayed = Vec::new();
        for original in after {
            let o = &original.snapshot;
            let copy = child_snapshot(
                &previous,
                Content {
                    committed_at_us: o.committed_at_us,
                    message: o.message.clone(),
                    metadata_json: o.metadata_json.clone(),
                    nodes: o.nodes.clone(),
                    txlog: o.txlog.clone(),
                    merged: o.merged,
                    rewritten_from: Some(original.id),
                },
            );
            let id = self.write_snapshot(&copy).await?;
            replayed.push((original.id, id));
            previous = Arc::new(LoadedSnapshot::new(id, copy));
            written.push((original.id, previous.clone()));
        }
        let new_tip = previous;
        let edges: Vec<_> = written
            .iter()
            .map(|(original, copy)| (*original, &copy.snapshot, copy.id))
            .collect();
        let cut = self.carry_cuts(&edges).await?;
        // Where no cut is carried, the squash makes `first`'s parent reachable again: like a ref
        // move, refused when garbage collection condemned it (spec/algorithms.md §14.1); and
        // the content carried (the last squashed commit) must not be condemned either.
        let parent = first_snapshot
            .snapshot
            .parent
            .filter(|_| !cut.contains(&squash_id));
        futures::try_join!(self.check_ref_target(last), async {
            match parent {
                Some(p) => self.check_ref_target(p).await,
                None => Ok(()),
            }
        })?;
        let outcome = self
            .try_advance_branch(
                branch,
                seq + 1,
                Some(new_tip.id),
                Some((new_tip.snapshot.generation, &new_tip.snapshot.pages)),
            )
            .await?;
        if let AdvanceOutcome::Lost = outcome {
            let (_, found) = self.branch_head(branch).await?;
            return Err(Error::BranchMoved {
                name: branch.to_string(),
                expected: tip.to_string(),
                found: found.to_string(),
            });
        }
        self.cache_snapshot(new_tip.clone());
        Ok(SquashReport {
            snapshot: squash_id,
            tip: new_tip.id,
            squashed: squashed.iter().map(|s| s.id).collect(),
            replayed,
        })
    }
}

impl SquashReport {
    /// The report as one JSON document (`floe squash --json`, Python `Repository.squash`).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "snapshot": self.snapshot.to_string(),
            "tip": self.tip.to_string(),
            "squashed": self.squashed.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "replayed": self
                .replayed
                .iter()
                .map(|(old, new)| serde_json::json!({"original": old.to_string(), "copy": new.to_string()}))
                .collect::<Vec<_>>(),
        })
    }
}
