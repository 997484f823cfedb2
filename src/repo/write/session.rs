//! Sessions: a view of one version, read-only or writable on a branch.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

use super::change_set::{ChangeSet, NodeEdit};
use super::packs::Packs;
use crate::error::{Error, Result};
use crate::format::path::NodePath;
use crate::id::SnapshotId;
use crate::repo::read::loaded::{lock, LoadedSnapshot};
use crate::repo::read::repository::Repository;
use crate::zarr::metadata::NodeMetadata;

/// A group or array as a session sees it.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    /// Where it lives.
    pub path: NodePath,
    /// Its validated `zarr.json`.
    pub metadata: Arc<NodeMetadata>,
}

/// A session: the repository at one version, plus uncommitted changes when writable.
///
/// Cheap to clone; clones share the same changes. Reads see the base snapshot with the
/// session's own changes applied. Writes are allowed only on sessions opened on a branch and
/// become visible to others only when [`Session::commit`] succeeds.
#[derive(Clone, Debug)]
pub struct Session {
    pub(crate) inner: Arc<SessionInner>,
}

#[derive(Debug)]
pub(crate) struct SessionInner {
    pub(crate) repo: Repository,
    pub(crate) branch: Option<String>,
    pub(crate) state: Mutex<SessionState>,
    /// Writes hold it shared; a commit holds it exclusively, so no write straddles a commit.
    pub(crate) write_gate: tokio::sync::RwLock<()>,
    /// Chunk objects being stored in the background (flushed by commits and forks).
    pub(crate) uploads: super::uploads::Uploads,
}

#[derive(Debug)]
pub(crate) struct SessionState {
    pub(crate) base: Arc<LoadedSnapshot>,
    pub(crate) base_seq: u64,
    pub(crate) changes: ChangeSet,
    pub(crate) packs: Packs,
    /// Commits whose ref write had an unknown outcome (see `Session::commit`).
    pub(crate) unknown_outcomes: Vec<UnknownOutcome>,
    /// Snapshots of discarded attempts with unknown outcomes: if one lands after all, rebase
    /// must not mistake it for another writer's conflicting commit.
    pub(crate) abandoned_outcomes: Vec<SnapshotId>,
    /// Set on worker sessions: what they were forked from.
    pub(crate) fork: Option<super::fork_state::ForkOrigin>,
    /// Forks taken from this session, with the base they were taken on.
    pub(crate) issued_forks: super::fork_state::IssuedForks,
    /// When the changes not yet committed started (the session opened, or its last commit
    /// landed): no chunk object they name, its forks' included, is older.
    pub(crate) changes_since: std::time::Instant,
}

impl Repository {
    /// A read-only session at the version `spec` names.
    pub async fn readonly_session(
        &self,
        spec: &crate::repo::history::version::VersionSpec,
    ) -> Result<Session> {
        let id = self.resolve(spec).await?;
        self.session_at(id, None, 0).await
    }

    /// A read-only session at a snapshot. A snapshot garbage collection deleted fails with
    /// [`Error::SnapshotExpired`], naming the run; any other missing one with
    /// [`Error::SnapshotNotFound`].
    pub async fn session_at_snapshot(&self, id: SnapshotId) -> Result<Session> {
        match self.session_at(id, None, 0).await {
            Err(e @ Error::SnapshotNotFound { .. }) => Err(self.explain_missing(e).await),
            other => other,
        }
    }

    /// A writable session on the tip of `branch`.
    pub async fn writable_session(&self, branch: &str) -> Result<Session> {
        let (seq, id) = self.branch_head(branch).await?;
        self.session_at(id, Some(branch.to_string()), seq).await
    }

    pub(crate) async fn session_at(
        &self,
        id: SnapshotId,
        branch: Option<String>,
        seq: u64,
    ) -> Result<Session> {
        let base = self.load_snapshot(&id).await?;
        Ok(Session {
            inner: Arc::new(SessionInner {
                repo: self.clone(),
                branch,
                state: Mutex::new(SessionState {
                    base,
                    base_seq: seq,
                    changes: ChangeSet::default(),
                    packs: Packs::default(),
                    unknown_outcomes: Vec::new(),
                    abandoned_outcomes: Vec::new(),
                    fork: None,
                    issued_forks: Default::default(),
                    changes_since: std::time::Instant::now(),
                }),
                write_gate: tokio::sync::RwLock::new(()),
                uploads: super::uploads::Uploads::new(self.settings().io_concurrency),
            }),
        })
    }
}

impl Session {
    /// The repository this session reads from.
    pub fn repository(&self) -> &Repository {
        &self.inner.repo
    }

    /// The snapshot the session is based on (the new one after a successful commit).
    pub fn snapshot_id(&self) -> SnapshotId {
        lock(&self.inner.state).base.id
    }

    /// The branch of a writable session.
    pub fn branch(&self) -> Option<&str> {
        self.inner.branch.as_deref()
    }

    /// True for sessions opened on a branch.
    pub fn is_writable(&self) -> bool {
        self.inner.branch.is_some()
    }

    /// True when `self` and `other` are handles of one session (clones share its changes).
    pub fn same_as(&self, other: &Session) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Fails unless the session may take changes: it must be writable, and no commit of it
    /// may have an unknown outcome (see [`Session::commit`]).
    pub(crate) fn check_writable(&self) -> Result<()> {
        if !self.is_writable() {
            return Err(Error::ReadOnlySession);
        }
        match lock(&self.inner.state).unknown_outcomes.last() {
            Some(attempt) => Err(Error::UnsettledCommit {
                snapshot: attempt.snapshot.id.to_string(),
            }),
            None => Ok(()),
        }
    }

    // ---- nodes ------------------------------------------------------------------------

    /// The node at `path`, with uncommitted changes applied.
    pub fn node(&self, path: &NodePath) -> Result<Option<NodeInfo>> {
        let (edit, base) = {
            let state = lock(&self.inner.state);
            (state.changes.nodes.get(path).cloned(), state.base.clone())
        };
        let metadata = match edit {
            Some(NodeEdit::Put { metadata, .. }) => Some(metadata),
            Some(NodeEdit::Deleted) => None,
            None => base.node_metadata(path)?,
        };
        Ok(metadata.map(|metadata| NodeInfo {
            path: path.clone(),
            metadata,
        }))
    }

    /// The node at `path`, or [`Error::NodeNotFound`].
    pub fn require_node(&self, path: &NodePath) -> Result<NodeInfo> {
        self.node(path)?.ok_or_else(|| Error::NodeNotFound {
            path: path.to_string(),
        })
    }

    /// Every node, sorted by path.
    pub fn list_nodes(&self) -> Result<Vec<NodeInfo>> {
        self.nodes_under("")
    }

    /// Every node strictly below `path` (its descendants, not `path` itself), sorted by path,
    /// with uncommitted changes applied. Empty when `path` has no descendants or no node.
    ///
    /// Costs O(log n + k) for the k descendants in the base snapshot (a snapshot's nodes are
    /// sorted by path, so a subtree is one contiguous run), plus one pass over the session's
    /// own node edits: never a walk of the whole hierarchy.
    pub fn list_descendants(&self, path: &NodePath) -> Result<Vec<NodeInfo>> {
        let mut nodes = self.nodes_under(&path.key_prefix())?;
        nodes.retain(|node| &node.path != path);
        Ok(nodes)
    }

    /// The nodes whose path starts with `prefix` (`""`: every node; else a key prefix `a/`),
    /// sorted by path, with uncommitted changes applied.
    fn nodes_under(&self, prefix: &str) -> Result<Vec<NodeInfo>> {
        let (edits, base) = {
            let state = lock(&self.inner.state);
            let edits: BTreeMap<NodePath, NodeEdit> = state
                .changes
                .nodes
                .iter()
                .filter(|(path, _)| path.as_str().starts_with(prefix))
                .map(|(path, edit)| (path.clone(), edit.clone()))
                .collect();
            (edits, state.base.clone())
        };
        let stored = &base.snapshot.nodes;
        // Paths starting with `prefix` form one run of the sorted node table.
        let start = stored.partition_point(|node| node.path.as_str() < prefix);
        let mut out: BTreeMap<NodePath, Arc<NodeMetadata>> = BTreeMap::new();
        for node in stored[start..]
            .iter()
            .take_while(|node| node.path.as_str().starts_with(prefix))
        {
            if !edits.contains_key(&node.path) {
                if let Some(m) = base.node_metadata(&node.path)? {
                    out.insert(node.path.clone(), m);
                }
            }
        }
        for (path, edit) in edits {
            if let NodeEdit::Put { metadata, .. } = edit {
                out.insert(path, metadata);
            }
        }
        Ok(out
            .into_iter()
            .map(|(path, metadata)| NodeInfo { path, metadata })
            .collect())
    }

    /// The total length of the stored `zarr.json` texts of the base snapshot's nodes: a
    /// measure of the hierarchy's metadata size (uncommitted edits are not counted).
    pub(crate) fn base_metadata_len(&self) -> u64 {
        let base = lock(&self.inner.state).base.clone();
        base.snapshot
            .nodes
            .iter()
            .map(|node| node.zarr_json.len() as u64)
            .sum()
    }

    /// Creates or replaces the node at `path` from a `zarr.json` document.
    ///
    /// Updating a node of the same kind keeps its chunks (an array's chunks outside a smaller
    /// new shape are dropped); replacing a group by an array or the other way round starts
    /// afresh and deletes everything below the old node. A node cannot be placed inside an
    /// array.
    pub async fn set_metadata(&self, path: &NodePath, metadata: NodeMetadata) -> Result<()> {
        self.check_writable()?;
        // Exclusive: the hierarchy checks below and the edit must not interleave with other
        // node changes or chunk writes of the same session.
        let _gate = self.inner.write_gate.write().await;
        let mut ancestor = path.parent();
        while let Some(a) = ancestor {
            if let Some(info) = self.node(&a)? {
                if info.metadata.geometry().is_some() {
                    return Err(Error::InvalidHierarchy {
                        path: path.to_string(),
                        reason: format!("`{a}` is an array, and arrays cannot contain nodes"),
                    });
                }
            }
            ancestor = a.parent();
        }
        let existing = self.node(path)?;
        let same_kind =
            existing.as_ref().map(|e| e.metadata.kind_name()) == Some(metadata.kind_name());
        if let Some(old) = existing.as_ref().and_then(|e| e.metadata.geometry()) {
            crate::zarr::metadata::check_grid_update(path, old, &metadata)?;
        }
        if metadata.geometry().is_some() && !same_kind {
            let below = self
                .list_nodes()?
                .into_iter()
                .filter(|n| n.path.is_within(path) && &n.path != path)
                .count();
            if below > 0 {
                self.delete_descendants(path)?;
            }
        }
        let mut state = lock(&self.inner.state);
        let base_has = state.base.snapshot.node(path).is_some();
        let fresh = match state.changes.nodes.get(path) {
            Some(NodeEdit::Put { fresh, .. }) if same_kind => *fresh,
            Some(NodeEdit::Deleted) => true,
            _ => !same_kind && base_has,
        };
        if !same_kind {
            state.changes.chunks.remove(path);
            state.changes.clips.remove(path);
        } else if let (Some(old), Some(new)) = (
            existing.as_ref().and_then(|e| e.metadata.geometry()),
            metadata.geometry(),
        ) {
            state
                .changes
                .record_grid_change(path, &old.grid_shape(), &new.grid_shape())?;
        }
        state.changes.nodes.insert(
            path.clone(),
            NodeEdit::Put {
                metadata: Arc::new(metadata),
                fresh,
            },
        );
        Ok(())
    }

    /// Creates (or updates) a group with the given attributes.
    pub async fn create_group(
        &self,
        path: &NodePath,
        attributes: Map<String, Value>,
    ) -> Result<()> {
        let mut doc = serde_json::json!({"zarr_format": 3, "node_type": "group"});
        if !attributes.is_empty() {
            doc["attributes"] = Value::Object(attributes);
        }
        self.set_metadata(path, NodeMetadata::from_value(path, doc)?)
            .await
    }

    /// Creates (or updates) an array from its Zarr v3 metadata document.
    pub async fn create_array(&self, path: &NodePath, zarr_json: Value) -> Result<()> {
        let metadata = NodeMetadata::from_value(path, zarr_json)?;
        if metadata.geometry().is_none() {
            return Err(Error::WrongNodeKind {
                path: path.to_string(),
                expected: "array",
                found: "group",
            });
        }
        self.set_metadata(path, metadata).await
    }

    /// Replaces the user attributes of a node.
    pub async fn set_attributes(
        &self,
        path: &NodePath,
        attributes: Map<String, Value>,
    ) -> Result<()> {
        let node = self.require_node(path)?;
        let mut doc = node.metadata.document().clone();
        if attributes.is_empty() {
            doc.remove("attributes");
        } else {
            doc.insert("attributes".into(), Value::Object(attributes));
        }
        self.set_metadata(path, NodeMetadata::from_value(path, Value::Object(doc))?)
            .await
    }

    /// Changes an array's shape. Chunks entirely outside the new shape are dropped at commit
    /// (and stop being readable at once).
    pub async fn resize_array(&self, path: &NodePath, shape: &[u64]) -> Result<()> {
        let node = self.require_node(path)?;
        let Some(geometry) = node.metadata.geometry() else {
            return Err(Error::WrongNodeKind {
                path: path.to_string(),
                expected: "array",
                found: "group",
            });
        };
        if shape.len() != geometry.shape.len() {
            return Err(Error::invalid_metadata(
                path.as_str(),
                format!(
                    "new shape has {} dimensions, the array has {}",
                    shape.len(),
                    geometry.shape.len()
                ),
            ));
        }
        let mut doc = node.metadata.document().clone();
        doc.insert("shape".into(), Value::from(shape.to_vec()));
        self.set_metadata(path, NodeMetadata::from_value(path, Value::Object(doc))?)
            .await
    }

    /// Drops every change below `path` and records the deletion of every node below it that
    /// the base snapshot holds (including those already deleted in this session).
    fn delete_descendants(&self, path: &NodePath) -> Result<()> {
        let mut state = lock(&self.inner.state);
        state.changes.forget_below(path, false);
        let below: Vec<NodePath> = state
            .base
            .snapshot
            .nodes
            .iter()
            .map(|n| &n.path)
            .filter(|p| p.is_within(path) && *p != path)
            .cloned()
            .collect();
        for p in below {
            state.changes.nodes.insert(p, NodeEdit::Deleted);
        }
        Ok(())
    }

    /// Deletes a node and everything below it.
    pub async fn delete_node(&self, path: &NodePath) -> Result<()> {
        self.check_writable()?;
        let _gate = self.inner.write_gate.write().await;
        self.require_node(path)?;
        self.delete_descendants(path)?;
        let mut state = lock(&self.inner.state);
        // Only the node's own edits: its descendants' deletions were just recorded.
        state.changes.forget_node(path);
        if state.base.snapshot.node(path).is_some() {
            state.changes.nodes.insert(path.clone(), NodeEdit::Deleted);
        }
        Ok(())
    }
}

impl Session {
    // ---- status -----------------------------------------------------------------------

    /// The uncommitted changes, summarised.
    pub fn status(&self) -> SessionStatus {
        let state = lock(&self.inner.state);
        let mut status = SessionStatus::default();
        for (path, edit) in &state.changes.nodes {
            let base_has = state.base.snapshot.node(path).is_some();
            match edit {
                NodeEdit::Deleted => status.deleted_nodes.push(path.clone()),
                NodeEdit::Put { fresh, .. } if !base_has || *fresh => {
                    status.new_nodes.push(path.clone())
                }
                NodeEdit::Put { .. } => status.updated_nodes.push(path.clone()),
            }
        }
        for (path, edits) in &state.changes.chunks {
            let (mut written, mut deleted) = (0, 0);
            for edit in edits.iter() {
                match edit {
                    Ok((_, Some(_))) => written += 1,
                    Ok((_, None)) => deleted += 1,
                    // A spilled run that cannot be read back is reported by reads and commit.
                    Err(_) => {}
                }
            }
            if written + deleted > 0 {
                status.chunks.push(ChunkChanges {
                    path: path.clone(),
                    written,
                    deleted,
                });
            }
        }
        status
    }

    /// True when the session has uncommitted changes.
    pub fn has_changes(&self) -> bool {
        !lock(&self.inner.state).changes.is_empty()
    }

    /// Drops every uncommitted change. Chunk objects already written stay in storage until
    /// garbage collection.
    pub async fn discard(&self) {
        let _gate = self.inner.write_gate.write().await;
        let mut state = lock(&self.inner.state);
        // A worker goes back to its ticket; any other session to its base snapshot.
        state.changes = match &state.fork {
            Some(origin) => origin.inherited.clone(),
            None => ChangeSet::default(),
        };
        state.packs = Packs::default();
        // The objects of the dropped edits need not be stored any more.
        self.inner.uploads.forget_all();
        // Forks taken before were based on the changes just dropped: refuse their merges.
        state.issued_forks.clear();
        // Attempts with an unknown outcome stay known to rebase (they may still land), but no
        // longer block new changes.
        let keep = std::mem::take(&mut state.unknown_outcomes);
        state
            .abandoned_outcomes
            .extend(keep.into_iter().map(|a| a.snapshot.id));
    }
}

/// Uncommitted changes of a session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionStatus {
    /// Nodes created (or replaced by a node of another kind).
    pub new_nodes: Vec<NodePath>,
    /// Nodes whose metadata changed.
    pub updated_nodes: Vec<NodePath>,
    /// Nodes deleted.
    pub deleted_nodes: Vec<NodePath>,
    /// Chunk writes and deletes per array.
    pub chunks: Vec<ChunkChanges>,
}

impl SessionStatus {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.new_nodes.is_empty()
            && self.updated_nodes.is_empty()
            && self.deleted_nodes.is_empty()
            && self.chunks.is_empty()
    }
}

/// Chunk changes of one array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkChanges {
    /// The array.
    pub path: NodePath,
    /// Chunks written.
    pub written: usize,
    /// Chunks deleted.
    pub deleted: usize,
}

/// A commit attempt whose ref write failed in a way that leaves its outcome unknown.
#[derive(Debug)]
pub(crate) struct UnknownOutcome {
    /// The branch record it tried to create.
    pub(crate) seq: u64,
    /// The snapshot it tried to publish.
    pub(crate) snapshot: Arc<LoadedSnapshot>,
}

impl UnknownOutcome {
    pub(crate) fn clone_shallow(&self) -> Self {
        UnknownOutcome {
            seq: self.seq,
            snapshot: self.snapshot.clone(),
        }
    }
}
