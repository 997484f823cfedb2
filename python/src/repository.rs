//! `floe._floe.Repository`: opening repositories, sessions, refs, history, checks and
//! imports. The Python class `floe.Repository` wraps it (pickling, datetimes, defaults).

use std::collections::HashMap;

use floe::{
    ChangeStream, FsckOptions, Repository, SnapshotId, StorageOptions, VersionSpec, VirtualAccess,
};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::{invalid_argument, IntoPy};
use crate::references::read_refs;
use crate::runtime::block_on;
use crate::session::PySession;

/// One history entry as Python receives it: `(id, generation, committed at in RFC 3339,
/// message, metadata as JSON)`.
type LogRow = (String, u64, String, String, String);
/// `(seq, snapshot id or None, written at in RFC 3339, kind)`.
type ReflogRow = (u64, Option<String>, String, &'static str);

/// A floe repository handle: where it lives, how it was opened, and what virtual sources it
/// may read.
#[pyclass(name = "Repository", module = "floe._floe", frozen)]
pub(crate) struct PyRepository {
    pub(crate) repo: Repository,
    location: String,
    options: StorageOptions,
    /// Virtual-read authorization: `(prefixes, trust declared containers)`.
    access: (Vec<String>, bool),
}

fn storage_options(options: Option<HashMap<String, String>>) -> StorageOptions {
    let mut options: StorageOptions = options.unwrap_or_default().into_iter().collect();
    options.sort();
    options
}

/// The version a Python caller names: `kind` is `branch`, `tag`, `snapshot`, `as_of`
/// (`value` is `branch@<RFC 3339 time>`) or `name` (a branch, tag, snapshot id or prefix).
pub(crate) fn version_spec(kind: &str, value: &str) -> PyResult<VersionSpec> {
    match kind {
        "branch" => Ok(VersionSpec::Branch(value.to_string())),
        "tag" => Ok(VersionSpec::Tag(value.to_string())),
        "snapshot" => Ok(VersionSpec::Snapshot(SnapshotId::parse(value).py()?)),
        "as_of" | "name" => VersionSpec::parse(value).py(),
        other => Err(invalid_argument(format!(
            "unknown kind of version `{other}` (branch, tag, snapshot, as_of or name)"
        ))),
    }
}

fn snapshot_id(text: &str) -> PyResult<SnapshotId> {
    SnapshotId::parse(text).py()
}

impl PyRepository {
    fn with(&self, repo: Repository) -> PyRepository {
        PyRepository {
            repo,
            location: self.location.clone(),
            options: self.options.clone(),
            access: self.access.clone(),
        }
    }

    fn opened(repo: Repository, location: String, options: StorageOptions) -> PyRepository {
        PyRepository {
            repo,
            location,
            options,
            access: (Vec::new(), false),
        }
    }
}

#[pymethods]
impl PyRepository {
    /// Creates a repository at `location` (a path, or `s3://`, `gs://`, `az://`, `memory://`).
    #[staticmethod]
    #[pyo3(signature = (location, storage_options=None))]
    fn init(
        py: Python<'_>,
        location: String,
        storage_options: Option<HashMap<String, String>>,
    ) -> PyResult<PyRepository> {
        let options = self::storage_options(storage_options);
        let repo = block_on(py, Repository::init_location(&location, &options))?.py()?;
        Ok(PyRepository::opened(repo, location, options))
    }

    /// Opens the repository at `location`.
    #[staticmethod]
    #[pyo3(signature = (location, storage_options=None))]
    fn open(
        py: Python<'_>,
        location: String,
        storage_options: Option<HashMap<String, String>>,
    ) -> PyResult<PyRepository> {
        let options = self::storage_options(storage_options);
        let repo = block_on(py, Repository::open_location(&location, &options))?.py()?;
        Ok(PyRepository::opened(repo, location, options))
    }

    /// Opens the repository at `location`, creating it when there is none.
    #[staticmethod]
    #[pyo3(signature = (location, storage_options=None))]
    fn open_or_init(
        py: Python<'_>,
        location: String,
        storage_options: Option<HashMap<String, String>>,
    ) -> PyResult<PyRepository> {
        let options = self::storage_options(storage_options);
        let repo = block_on(py, async {
            match Repository::open_location(&location, &options).await {
                Err(floe::Error::RepositoryNotFound { .. }) => {
                    match Repository::init_location(&location, &options).await {
                        // Another process created it meanwhile.
                        Err(floe::Error::RepositoryExists { .. }) => {
                            Repository::open_location(&location, &options).await
                        }
                        other => other,
                    }
                }
                other => other,
            }
        })?
        .py()?;
        Ok(PyRepository::opened(repo, location, options))
    }

    /// The location the repository was opened at.
    #[getter]
    fn location(&self) -> String {
        self.location.clone()
    }

    /// The storage options it was opened with, as `(key, value)` pairs.
    #[getter]
    fn storage_options(&self) -> Vec<(String, String)> {
        self.options.clone()
    }

    /// The virtual-read authorization: `(prefixes, trust_declared)`.
    #[getter]
    fn virtual_access(&self) -> (Vec<String>, bool) {
        self.access.clone()
    }

    /// This repository allowed to read virtual chunks below `prefixes` (declared or not), and
    /// in every declared container when `declared`.
    #[pyo3(signature = (prefixes, declared=false))]
    fn with_virtual_access(&self, prefixes: Vec<String>, declared: bool) -> PyResult<PyRepository> {
        let mut access = VirtualAccess::deny_all();
        for prefix in &prefixes {
            access = access.allow_undeclared(prefix).py()?;
        }
        if declared {
            access = access.allow_declared();
        }
        let mut out = self.with(self.repo.clone().with_virtual_access(access));
        out.access = (prefixes, declared);
        Ok(out)
    }

    /// A writable session on `branch`.
    #[pyo3(signature = (branch=floe::DEFAULT_BRANCH.to_string()))]
    fn writable_session(&self, py: Python<'_>, branch: String) -> PyResult<PySession> {
        let session = block_on(py, self.repo.writable_session(&branch))?.py()?;
        Ok(PySession::new(session))
    }

    /// A read-only session at a version (see `version_spec`).
    fn readonly_session(&self, py: Python<'_>, kind: &str, value: &str) -> PyResult<PySession> {
        let spec = version_spec(kind, value)?;
        let session = block_on(py, self.repo.readonly_session(&spec))?.py()?;
        Ok(PySession::new(session))
    }

    /// The snapshot id a version names.
    fn resolve(&self, py: Python<'_>, kind: &str, value: &str) -> PyResult<String> {
        let spec = version_spec(kind, value)?;
        Ok(block_on(py, self.repo.resolve(&spec))?.py()?.to_string())
    }

    /// Every branch as `(name, tip snapshot id)`.
    fn branches(&self, py: Python<'_>) -> PyResult<Vec<(String, String)>> {
        let branches = block_on(py, self.repo.list_branches())?.py()?;
        Ok(branches
            .into_iter()
            .map(|b| (b.name, b.snapshot.to_string()))
            .collect())
    }

    /// Every tag as `(name, snapshot id, created at in RFC 3339)`.
    fn tags(&self, py: Python<'_>) -> PyResult<Vec<(String, String, String)>> {
        let tags = block_on(py, self.repo.list_tags())?.py()?;
        Ok(tags
            .into_iter()
            .map(|t| (t.name, t.snapshot.to_string(), t.created_at.to_rfc3339()))
            .collect())
    }

    /// Creates branch `name` at `snapshot_id`.
    fn create_branch(&self, py: Python<'_>, name: &str, snapshot_id: &str) -> PyResult<()> {
        let id = self::snapshot_id(snapshot_id)?;
        block_on(py, self.repo.create_branch(name, id))?.py()
    }

    /// Moves branch `name` to `snapshot_id`; with `expect`, only while it still points there.
    #[pyo3(signature = (name, snapshot_id, expect=None))]
    fn reset_branch(
        &self,
        py: Python<'_>,
        name: &str,
        snapshot_id: &str,
        expect: Option<&str>,
    ) -> PyResult<()> {
        let id = self::snapshot_id(snapshot_id)?;
        match expect {
            Some(expected) => {
                let expected = self::snapshot_id(expected)?;
                block_on(py, self.repo.reset_branch_expecting(name, id, expected))?.py()
            }
            None => block_on(py, self.repo.reset_branch(name, id))?.py(),
        }
    }

    /// Deletes branch `name`.
    fn delete_branch(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        block_on(py, self.repo.delete_branch(name))?.py()
    }

    /// Creates tag `name` at `snapshot_id`.
    fn create_tag(&self, py: Python<'_>, name: &str, snapshot_id: &str) -> PyResult<()> {
        let id = self::snapshot_id(snapshot_id)?;
        block_on(py, self.repo.create_tag(name, id))?.py()
    }

    /// Deletes tag `name`.
    fn delete_tag(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        block_on(py, self.repo.delete_tag(name))?.py()
    }

    /// What changed from version `from` to version `to`, as the JSON document `floe diff
    /// --json` prints.
    #[pyo3(signature = (from, to, path=None, coords=false))]
    fn diff(
        &self,
        py: Python<'_>,
        from: &str,
        to: &str,
        path: Option<&str>,
        coords: bool,
    ) -> PyResult<String> {
        let (from, to) = (version_spec("name", from)?, version_spec("name", to)?);
        let path = path
            .map(floe::NodePath::new)
            .transpose()
            .map_err(crate::errors::to_py)?;
        let options = floe::DiffOptions {
            path,
            chunk_coords: coords,
        };
        let diff = block_on(py, async {
            let (from, to) = futures::try_join!(self.repo.resolve(&from), self.repo.resolve(&to))?;
            self.repo.diff(from, to, &options).await
        })?
        .py()?;
        Ok(crate::diff_json::diff_document(&diff).to_string())
    }

    /// Merges version `source` (any version name) into branch `into`; `strategy` is `fail`,
    /// `ours` or `theirs`. Returns the report as the JSON text `floe merge --json` prints.
    #[pyo3(signature = (source, into, strategy="fail", message=None, expect=None, dry_run=false))]
    #[allow(clippy::too_many_arguments)]
    fn merge(
        &self,
        py: Python<'_>,
        source: &str,
        into: &str,
        strategy: &str,
        message: Option<String>,
        expect: Option<&str>,
        dry_run: bool,
    ) -> PyResult<String> {
        let strategy = match strategy {
            "fail" => floe::MergeStrategy::Fail,
            "ours" => floe::MergeStrategy::Ours,
            "theirs" => floe::MergeStrategy::Theirs,
            other => {
                return Err(invalid_argument(format!(
                    "unknown merge strategy `{other}` (fail, ours or theirs)"
                )))
            }
        };
        let source = version_spec("name", source)?;
        let expect = expect.map(|e| version_spec("name", e)).transpose()?;
        let report = block_on(py, async {
            let source = self.repo.resolve(&source).await?;
            let expect = match &expect {
                Some(spec) => Some(self.repo.resolve(spec).await?),
                None => None,
            };
            let options = floe::MergeOptions {
                strategy,
                message,
                metadata: None,
                expect,
                dry_run,
            };
            self.repo.merge(source, into, &options).await
        })?
        .py()?;
        Ok(report.to_json().to_string())
    }

    /// Squashes the commits `first..=last` of `branch` into one; returns the report as the
    /// JSON text `floe squash --json` prints.
    #[pyo3(signature = (branch, first, last, message=None, expect=None))]
    fn squash(
        &self,
        py: Python<'_>,
        branch: &str,
        first: &str,
        last: &str,
        message: Option<String>,
        expect: Option<&str>,
    ) -> PyResult<String> {
        let specs = [first, last]
            .iter()
            .map(|v| version_spec("name", v))
            .collect::<PyResult<Vec<_>>>()?;
        let expect = expect.map(|e| version_spec("name", e)).transpose()?;
        let report = block_on(py, async {
            let (first, last) =
                futures::try_join!(self.repo.resolve(&specs[0]), self.repo.resolve(&specs[1]))?;
            let expect = match &expect {
                Some(spec) => Some(self.repo.resolve(spec).await?),
                None => None,
            };
            let options = floe::SquashOptions {
                message,
                metadata: None,
                expect,
            };
            self.repo.squash(branch, first, last, &options).await
        })?
        .py()?;
        Ok(report.to_json().to_string())
    }

    /// Expires old history; `older_than` and the values of `branches` are an age in whole
    /// seconds (`"<n>s"`) or an RFC 3339 time. Returns the report as JSON text.
    fn expire(
        &self,
        py: Python<'_>,
        older_than: &str,
        keep_last: u64,
        branches: Vec<(String, String)>,
        dry_run: bool,
    ) -> PyResult<String> {
        let per_branch = branches
            .into_iter()
            .map(|(name, before)| Ok((name, expire_before(&before)?)))
            .collect::<PyResult<_>>()?;
        let options = floe::ExpireOptions {
            older_than: expire_before(older_than)?,
            keep_last,
            per_branch,
            dry_run,
        };
        let report = block_on(py, self.repo.expire(&options))?.py()?;
        Ok(report.to_json(dry_run).to_string())
    }

    /// Runs garbage collection; returns the report as JSON text (objects listed).
    fn gc(
        &self,
        py: Python<'_>,
        grace_seconds: f64,
        full: bool,
        dry_run: bool,
        sparse_pack_threshold: f64,
    ) -> PyResult<String> {
        let grace = std::time::Duration::try_from_secs_f64(grace_seconds).map_err(|e| {
            crate::errors::to_py(floe::Error::InvalidLifecycleOption {
                option: "grace".into(),
                reason: e.to_string(),
            })
        })?;
        let options = floe::GcOptions {
            grace,
            full,
            dry_run,
            sparse_pack_threshold,
        };
        let report = block_on(py, self.repo.gc(&options))?.py()?;
        Ok(report.to_json(true).to_string())
    }

    /// Every move of branch `name`, newest first: `(seq, snapshot id or None, written at in
    /// RFC 3339, kind)`.
    fn reflog(&self, py: Python<'_>, name: &str, limit: usize) -> PyResult<Vec<ReflogRow>> {
        let entries = block_on(py, self.repo.reflog(name, limit))?.py()?;
        Ok(entries
            .into_iter()
            .map(|e| {
                (
                    e.seq,
                    e.snapshot.map(|id| id.to_string()),
                    e.written_at.to_rfc3339(),
                    crate::diff_json::move_name(e.kind),
                )
            })
            .collect())
    }

    /// The history from a version, newest first: `(id, generation, committed at in RFC 3339,
    /// message, metadata as JSON)`.
    fn log(&self, py: Python<'_>, kind: &str, value: &str, limit: usize) -> PyResult<Vec<LogRow>> {
        let spec = version_spec(kind, value)?;
        let entries = block_on(py, async {
            Ok::<_, floe::Error>(self.repo.log(&spec, limit).await?.1)
        })?
        .py()?;
        Ok(entries
            .into_iter()
            .map(|e| {
                let metadata = serde_json::Value::Object(e.metadata).to_string();
                (
                    e.id.to_string(),
                    e.generation,
                    e.committed_at.to_rfc3339(),
                    e.message,
                    metadata,
                )
            })
            .collect())
    }

    /// Checks every object reachable from a ref; returns the report as text and whether it
    /// found problems.
    #[pyo3(signature = (verify_chunks=true))]
    fn fsck(&self, py: Python<'_>, verify_chunks: bool) -> PyResult<(bool, String)> {
        let options = FsckOptions {
            verify_chunk_digests: verify_chunks,
        };
        let report = block_on(py, self.repo.fsck(options))?.py()?;
        Ok((report.problems.is_empty(), format!("{report:?}")))
    }

    /// `(location, format version, created at in RFC 3339 or "")`.
    fn info(&self, py: Python<'_>) -> PyResult<(String, u32, String)> {
        let info = block_on(py, self.repo.info())?.py()?;
        Ok((
            info.location,
            info.format_version,
            info.created_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        ))
    }

    /// A worker session from a fork ticket (see `Session.fork`).
    fn open_fork(&self, py: Python<'_>, ticket: &Bound<'_, PyBytes>) -> PyResult<PySession> {
        let ticket = ChangeStream::from_bytes(ticket.as_bytes().to_vec()).py()?;
        let session = block_on(py, self.repo.open_fork(&ticket))?.py()?;
        Ok(PySession::new(session))
    }

    /// Parses kerchunk references: a file or directory path, or the JSON text of a
    /// reference set (`origin` names it in errors).
    #[staticmethod]
    #[pyo3(signature = (path=None, json=None, origin="references".to_string()))]
    fn check_references(
        path: Option<String>,
        json: Option<String>,
        origin: String,
    ) -> PyResult<usize> {
        Ok(read_refs(path, json, &origin)?.len())
    }
}

/// `"<n>s"` (an age in seconds) or an RFC 3339 time.
fn expire_before(text: &str) -> PyResult<floe::ExpireBefore> {
    if let Some(seconds) = text.strip_suffix('s').and_then(|n| n.parse::<u64>().ok()) {
        return Ok(floe::ExpireBefore::Age(std::time::Duration::from_secs(
            seconds,
        )));
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| floe::ExpireBefore::Time(t.to_utc()))
        .map_err(|e| {
            crate::errors::to_py(floe::Error::InvalidLifecycleOption {
                option: "expiry threshold".into(),
                reason: format!("`{text}` is neither an age nor an RFC 3339 time: {e}"),
            })
        })
}
