//! floe errors as Python exceptions. The classes live in `floe/errors.py` (so they can also
//! derive from `ValueError`, `KeyError` or `RuntimeError` where Python code expects those);
//! this module picks the class for each [`floe::Error`] and keeps floe's message, which says
//! what to do.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// The exception class `name` of `floe.errors` raised with `message`.
fn raise(name: &str, message: String) -> PyErr {
    Python::attach(|py| {
        let module = ERRORS.get_or_try_init(py, || py.import("floe.errors").map(|m| m.unbind()));
        let class = module.and_then(|m| m.bind(py).getattr(name));
        match class {
            Ok(class) => match class.call1((message.clone(),)) {
                Ok(instance) => PyErr::from_value(instance),
                Err(e) => e,
            },
            // The package is broken (floe.errors missing): still say what went wrong.
            Err(_) => pyo3::exceptions::PyRuntimeError::new_err(message),
        }
    })
}

/// The name of the `floe.errors` class for a floe error.
fn class_of(error: &floe::Error) -> &'static str {
    use floe::Error as E;
    match error {
        E::Conflict { .. }
        | E::TooManyRebaseAttempts { .. }
        | E::ForkConflict { .. }
        | E::BranchMoved { .. }
        | E::SessionObjectsCollected { .. } => "ConflictError",
        E::HistoryExpired { .. } | E::SnapshotExpired { .. } | E::SnapshotCondemned { .. } => {
            "ExpiredError"
        }
        E::CommitOutcomeUnknown { .. } | E::UnsettledCommit { .. } => "CommitOutcomeUnknownError",
        E::CommitFromFork | E::Fork { .. } => "ForkError",
        E::InvalidKey { .. } | E::InvalidPath { .. } | E::InvalidByteRange { .. } => {
            "InvalidKeyError"
        }
        E::InvalidMetadata { .. } | E::InvalidHierarchy { .. } | E::WrongNodeKind { .. } => {
            "InvalidMetadataError"
        }
        E::NothingToCommit => "NothingToCommitError",
        E::ReadOnlySession => "ReadOnlyError",
        E::RepositoryNotFound { .. }
        | E::BranchNotFound { .. }
        | E::TagNotFound { .. }
        | E::TagDeleted { .. }
        | E::SnapshotNotFound { .. }
        | E::NodeNotFound { .. }
        | E::NoCommitAsOf { .. } => "NotFoundError",
        E::RepositoryExists { .. } | E::BranchExists { .. } | E::TagExists { .. } => {
            "AlreadyExistsError"
        }
        E::InvalidVersion { .. }
        | E::InvalidRefName { .. }
        | E::AmbiguousSnapshotPrefix { .. }
        | E::InvalidLifecycleOption { .. }
        | E::InvalidHistoryEdit { .. }
        | E::InvalidLocation { .. } => "InvalidArgumentError",
        E::KerchunkImport { .. } => "ImportRefusedError",
        E::VirtualSourceNotAuthorized { .. }
        | E::VirtualLocationRefused { .. }
        | E::VirtualSourceChanged { .. }
        | E::VirtualSourceMissing { .. } => "VirtualSourceError",
        _ => "FloeError",
    }
}

/// A floe error as the matching Python exception.
pub(crate) fn to_py(error: floe::Error) -> PyErr {
    raise(class_of(&error), error.to_string())
}

/// A `FloeError` with `message`.
pub(crate) fn floe_error(message: String) -> PyErr {
    raise("FloeError", message)
}

/// An `InvalidArgumentError` with `message`.
pub(crate) fn invalid_argument(message: String) -> PyErr {
    raise("InvalidArgumentError", message)
}

/// The error of any call in a process forked after floe started its runtime.
pub(crate) fn forked_process_error() -> PyErr {
    raise(
        "ForkedProcessError",
        "floe was used in this process's parent before it forked, and its I/O threads do not \
         survive fork(): start worker processes with the 'spawn' (or 'forkserver') start \
         method, e.g. multiprocessing.get_context(\"spawn\"), or create them before using floe"
            .into(),
    )
}

/// Converts floe results.
pub(crate) trait IntoPy<T> {
    /// The value, or the floe error as a Python exception.
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for floe::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}
