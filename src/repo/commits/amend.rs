//! Amending the branch tip from a session (spec/algorithms.md §16): the tip is replaced by a
//! commit on its parent holding the tip's content with the session's changes.

use serde_json::{Map, Value};

use super::commit::{assemble_snapshot, uploaded_objects};
use super::rewrite::{compose_txlogs, replacing_snapshot, Content};
use crate::error::{Error, Result};
use crate::format::now_us;
use crate::id::SnapshotId;
use crate::repo::history::gc_guard::UPLOAD_AGE_NEEDING_CHECK;
use crate::repo::history::refs::AdvanceOutcome;
use crate::repo::read::loaded::lock;
use crate::repo::write::session::Session;

impl Session {
    /// Replaces the commit this session is based on (the branch tip when the session started
    /// or last committed) by one on the same parent holding its content plus this session's
    /// changes (none is fine: a new message), and moves the branch there, only if the branch
    /// still points at the replaced commit: otherwise [`Error::BranchMoved`], nothing is
    /// published and the session keeps its changes. `message` and `metadata` default to the
    /// replaced commit's. The replaced commit stays readable by id until expiry and garbage
    /// collection remove it; another session based on it fails to commit with
    /// [`Error::Conflict`] rather than write over the amended history.
    pub async fn amend(
        &self,
        message: Option<&str>,
        metadata: Option<Map<String, Value>>,
    ) -> Result<SnapshotId> {
        let branch = self.inner.branch.clone().ok_or(Error::ReadOnlySession)?;
        let _gate = self.inner.write_gate.write().await;
        self.check_writable()?;
        if lock(&self.inner.state).fork.is_some() {
            return Err(Error::CommitFromFork);
        }
        let changes = self.resolved_changes().await?;
        let repo = &self.inner.repo;
        let (tip, tip_seq) = {
            let state = lock(&self.inner.state);
            (state.base.clone(), state.base_seq)
        };
        if tip.snapshot.parent.is_none() {
            return Err(Error::InvalidHistoryEdit {
                operation: format!("amend the tip of branch `{branch}`"),
                reason: "the repository's first snapshot cannot be amended".into(),
            });
        }
        let (assembled, stored, tip_log) = tokio::join!(
            assemble_snapshot(repo, &tip, &changes, "", "{}"),
            self.inner.uploads.flush(repo),
            repo.load_txlog(&tip.snapshot.txlog)
        );
        stored?;
        let (amended, session_log) = assembled?;
        let txlog = compose_txlogs(&amended.nodes, &[tip_log?, session_log])?;
        let metadata_json = match metadata {
            Some(m) => Value::Object(m).to_string(),
            None => tip.snapshot.metadata_json.clone(),
        };
        let snapshot = replacing_snapshot(
            &tip.snapshot,
            Content {
                committed_at_us: now_us(),
                message: message.map_or_else(|| tip.snapshot.message.clone(), str::to_string),
                metadata_json,
                nodes: amended.nodes,
                txlog: repo.txlog_ref(txlog).await?,
                merged: tip.snapshot.merged,
                rewritten_from: Some(tip.id),
            },
        );
        let id = repo.write_snapshot(&snapshot).await?;
        // Expired history below the tip stays expired below its replacement.
        let cut = repo.carry_cuts(&[(tip.id, &snapshot, id)]).await?;
        // Otherwise the replacement makes its parent reachable again: like a ref move, refused
        // when garbage collection condemned it (spec/algorithms.md §14.1); and the content it
        // carries must not be condemned either.
        let parent = snapshot.parent.filter(|_| !cut.contains(&id));
        futures::try_join!(repo.check_ref_target(tip.id), async {
            match parent {
                Some(p) => repo.check_ref_target(p).await,
                None => Ok(()),
            }
        })?;
        if lock(&self.inner.state).changes_since.elapsed() >= UPLOAD_AGE_NEEDING_CHECK {
            repo.refuse_collected_uploads(&uploaded_objects(&changes)?)
                .await?;
        }
        let outcome = repo
            .try_advance_branch(
                &branch,
                tip_seq + 1,
                Some(id),
                Some((snapshot.generation, &snapshot.pages)),
            )
            .await
            .map_err(|e| Error::CommitOutcomeUnknown {
                branch: branch.clone(),
                snapshot: id.to_string(),
                reason: e.to_string(),
            })?;
        if let AdvanceOutcome::Lost = outcome {
            let (_, found) = repo.branch_head(&branch).await?;
            return Err(Error::BranchMoved {
                name: branch,
                expected: tip.id.to_string(),
                found: found.to_string(),
            });
        }
        self.moved_onto(id, snapshot, tip_seq + 1);
        Ok(id)
    }
}
