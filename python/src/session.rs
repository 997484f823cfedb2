//! `floe._floe.Session`: a version opened read-only, or a writable session on a branch, with
//! its store, commits, forks and imports. `floe.Session` wraps it.

use floe::{
    expand_sources, import_kerchunk, scan_sources, ChangeStream, ImportOptions, NodePath, Session,
};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::{invalid_argument, IntoPy};
use crate::references::read_refs;
use crate::runtime::{awaitable, block_on};
use crate::store::PyStore;

/// The status as Python receives it: `(new nodes, updated nodes, deleted nodes, [(array,
/// chunks written, chunks deleted)])`.
type StatusRow = (
    Vec<String>,
    Vec<String>,
    Vec<String>,
    Vec<(String, usize, usize)>,
);

/// A floe session.
#[pyclass(name = "Session", module = "floe._floe", frozen)]
pub(crate) struct PySession {
    pub(crate) session: Session,
}

impl PySession {
    pub(crate) fn new(session: Session) -> Self {
        PySession { session }
    }
}

fn metadata_map(
    metadata_json: Option<String>,
) -> PyResult<Option<serde_json::Map<String, serde_json::Value>>> {
    let Some(text) = metadata_json else {
        return Ok(None);
    };
    match serde_json::from_str(&text) {
        Ok(serde_json::Value::Object(map)) => Ok(Some(map)),
        _ => Err(invalid_argument(
            "commit metadata must be a JSON object (a dict of JSON values)".into(),
        )),
    }
}

#[pymethods]
impl PySession {
    /// The snapshot the session reads (for a writable session: its base).
    #[getter]
    fn snapshot_id(&self) -> String {
        self.session.snapshot_id().to_string()
    }

    /// The branch a writable session commits to, `None` when read-only.
    #[getter]
    fn branch(&self) -> Option<String> {
        self.session.branch().map(str::to_string)
    }

    /// True for read-only sessions.
    #[getter]
    fn read_only(&self) -> bool {
        !self.session.is_writable()
    }

    /// True when the session has uncommitted changes.
    #[getter]
    fn has_changes(&self) -> bool {
        self.session.has_changes()
    }

    /// True for a worker session opened from a fork ticket.
    #[getter]
    fn is_fork(&self) -> bool {
        self.session.is_fork()
    }

    /// The uncommitted changes: `(new nodes, updated nodes, deleted nodes, [(array, chunks
    /// written, chunks deleted)])`.
    fn status(&self) -> StatusRow {
        let status = self.session.status();
        let paths = |p: Vec<NodePath>| p.into_iter().map(|p| p.to_string()).collect();
        (
            paths(status.new_nodes),
            paths(status.updated_nodes),
            paths(status.deleted_nodes),
            status
                .chunks
                .into_iter()
                .map(|c| (c.path.to_string(), c.written, c.deleted))
                .collect(),
        )
    }

    /// Drops every uncommitted change.
    fn discard(&self, py: Python<'_>) -> PyResult<()> {
        block_on(py, self.session.discard())
    }

    /// Awaitable [`PySession::discard`].
    fn discard_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let session = self.session.clone();
        awaitable(py, async move {
            session.discard().await;
            Ok(())
        })
    }

    /// Commits the changes; returns the new snapshot id.
    #[pyo3(signature = (message, metadata_json=None))]
    fn commit(
        &self,
        py: Python<'_>,
        message: String,
        metadata_json: Option<String>,
    ) -> PyResult<String> {
        let metadata = metadata_map(metadata_json)?;
        let id = block_on(py, self.session.commit(&message, metadata))?.py()?;
        Ok(id.to_string())
    }

    /// Replaces the branch tip this session is based on by a commit holding its content plus
    /// this session's changes; `None` keeps the tip's message or metadata.
    #[pyo3(signature = (message=None, metadata_json=None))]
    fn amend(
        &self,
        py: Python<'_>,
        message: Option<String>,
        metadata_json: Option<String>,
    ) -> PyResult<String> {
        let metadata = metadata_map(metadata_json)?;
        let id = block_on(py, self.session.amend(message.as_deref(), metadata))?.py()?;
        Ok(id.to_string())
    }

    /// Awaitable [`PySession::commit`].
    #[pyo3(signature = (message, metadata_json=None))]
    fn commit_async<'py>(
        &self,
        py: Python<'py>,
        message: String,
        metadata_json: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let metadata = metadata_map(metadata_json)?;
        let session = self.session.clone();
        awaitable(py, async move {
            let id = session.commit(&message, metadata).await.py()?;
            Ok(id.to_string())
        })
    }

    /// Writes the session's pending chunks and returns a fork ticket: the bytes a worker
    /// opens with `Repository.open_fork` to continue from this session's state.
    fn fork<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let ticket = block_on(py, async {
            let ticket = self.session.fork().await?;
            ticket.to_bytes()
        })?
        .py()?;
        Ok(PyBytes::new(py, &ticket))
    }

    /// A worker's changes since its ticket, as bytes for the coordinator's `merge`.
    fn finish_fork<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let changes = block_on(py, async {
            let changes = self.session.finish_fork().await?;
            changes.to_bytes()
        })?
        .py()?;
        Ok(PyBytes::new(py, &changes))
    }

    /// Merges a worker's changes (from `finish_fork`) into this coordinator session:
    /// `(nodes applied, chunks applied, changes already present, already merged)`.
    fn merge(
        &self,
        py: Python<'_>,
        changes: &Bound<'_, PyBytes>,
    ) -> PyResult<(u64, u64, u64, bool)> {
        let stream = ChangeStream::from_bytes(changes.as_bytes().to_vec()).py()?;
        let summary = block_on(py, self.session.merge_fork(&stream))?.py()?;
        Ok((
            summary.nodes,
            summary.chunks,
            summary.already_present,
            summary.already_merged,
        ))
    }

    /// The session as a Zarr v3 key-value store (consolidated metadata when read-only).
    fn store(&self) -> PyStore {
        PyStore::new(self.session.zarr())
    }

    /// Imports kerchunk references (a path, or JSON text) below `to`; nothing is committed.
    /// Returns the import summary as text.
    #[pyo3(signature = (to, path=None, json=None, append_dim=None, load=Vec::new(),
        keep_virtual=Vec::new(), source_options=None))]
    #[allow(clippy::too_many_arguments)]
    fn import_kerchunk(
        &self,
        py: Python<'_>,
        to: String,
        path: Option<String>,
        json: Option<String>,
        append_dim: Option<String>,
        load: Vec<String>,
        keep_virtual: Vec<String>,
        source_options: Option<std::collections::HashMap<String, String>>,
    ) -> PyResult<String> {
        let origin = path.clone().unwrap_or_else(|| "references".into());
        let refs = read_refs(path, json, &origin)?;
        let mut options = ImportOptions::new(NodePath::new(&to).py()?);
        options.append_dim = append_dim;
        options.load = load;
        options.keep_virtual = keep_virtual;
        options.source_options = source_options.unwrap_or_default().into_iter().collect();
        let summary = block_on(py, import_kerchunk(&self.session, &refs, &options))?.py()?;
        Ok(summary.to_string())
    }

    /// Scans netCDF-3 files (absolute paths or URLs) natively and imports them below `to`
    /// (several need `append_dim`; they are appended in the order of their append
    /// coordinate); nothing is committed. Returns the import summaries as text.
    #[pyo3(signature = (to, files, append_dim=None, load=Vec::new(), keep_virtual=Vec::new(),
        variables=Vec::new(), drop_variables=Vec::new(), source_options=None, concurrency=16))]
    #[allow(clippy::too_many_arguments)]
    fn import_netcdf(
        &self,
        py: Python<'_>,
        to: String,
        files: Vec<String>,
        append_dim: Option<String>,
        load: Vec<String>,
        keep_virtual: Vec<String>,
        variables: Vec<String>,
        drop_variables: Vec<String>,
        source_options: Option<std::collections::HashMap<String, String>>,
        concurrency: usize,
    ) -> PyResult<String> {
        let source_options: floe::StorageOptions =
            source_options.unwrap_or_default().into_iter().collect();
        // Patterns (`s3://bucket/run/*.nc`) become the files they match.
        let files = block_on(py, expand_sources(&files, &source_options))?.py()?;
        if files.len() > 1 && append_dim.is_none() {
            return Err(invalid_argument(
                "several files need append_dim (each would replace the one before)".into(),
            ));
        }
        let mut options = ImportOptions::new(NodePath::new(&to).py()?);
        options.append_dim = append_dim;
        options.load = load;
        options.keep_virtual = keep_virtual;
        options.source_options = source_options;
        let session = &self.session;
        let summaries = block_on(py, async {
            let scanned = scan_sources(
                &files,
                &options.source_options,
                concurrency,
                options.append_dim.as_deref(),
            )
            .await?;
            let mut summaries = Vec::new();
            for (refs, _) in scanned {
                let refs = refs.select_variables(&variables, &drop_variables)?;
                summaries.push(import_kerchunk(session, &refs, &options).await?.to_string());
            }
            Ok::<_, floe::Error>(summaries)
        })?
        .py()?;
        Ok(summaries.join("\n"))
    }

    /// True when both handles share one session (clones of one session).
    fn same_as(&self, other: &PySession) -> bool {
        self.session.same_as(&other.session)
    }
}
