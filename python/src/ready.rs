//! `floe._floe.Ready`: an awaitable whose result is already known.
//!
//! Most store calls a zarr-python session makes (metadata documents, absent `.zgroup` probes,
//! chunk writes that land in a pack in memory) finish without waiting for I/O. Handing such a
//! result through an asyncio future costs two thread hops (to floe's runtime and back to the
//! event loop); a `Ready` hands it back at the first step of the `await`.

use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;

/// An awaitable that completes at once with its value (`await` on it never suspends).
#[pyclass(name = "Ready", module = "floe._floe", frozen)]
pub(crate) struct Ready {
    value: Py<PyAny>,
}

impl Ready {
    pub(crate) fn new(value: Py<PyAny>) -> Self {
        Ready { value }
    }
}

#[pymethods]
impl Ready {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Ends the iteration with the value; awaiting again gives the same value, as a done
    /// asyncio future does.
    fn __next__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Err(PyStopIteration::new_err((self.value.clone_ref(py),)))
    }

    fn __repr__(&self) -> &'static str {
        "<floe ready awaitable>"
    }
}
