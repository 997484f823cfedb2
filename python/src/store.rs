//! `floe._floe.Store`: the Zarr v3 key-value view of a session, with the operations
//! zarr-python's `Store` needs, each returning an asyncio awaitable. `floe.FloeStore`
//! (a `zarr.abc.store.Store`) wraps it.
//!
//! Values read are handed to Python without a copy (a buffer over floe's bytes); values
//! written are copied first, so floe never keeps a reference to the caller's buffer (which the
//! caller may reuse while the session is still uncommitted).

use bytes::Bytes;
use floe::{ByteRange, ZarrStore};
use futures::future::join_all;
use pyo3::prelude::*;
use pyo3_bytes::PyBytes;

use crate::errors::{invalid_argument, IntoPy};
use crate::runtime::{awaitable_eager, block_on};

/// How a byte range is given from Python: `(kind, a, b)` with kind 0 = bytes `a..b`,
/// 1 = from offset `a`, 2 = the last `a` bytes.
type RangeArg = Option<(u8, u64, u64)>;

fn byte_range(range: RangeArg) -> PyResult<Option<ByteRange>> {
    match range {
        None => Ok(None),
        Some((0, start, end)) => Ok(Some(ByteRange::Bounded { start, end })),
        Some((1, offset, _)) => Ok(Some(ByteRange::FromOffset(offset))),
        Some((2, suffix, _)) => Ok(Some(ByteRange::Suffix(suffix))),
        Some((kind, _, _)) => Err(invalid_argument(format!("unknown byte range kind {kind}"))),
    }
}

/// The value of `key` or a byte range of it. A range that starts past the end reads as empty
/// bytes, as zarr-python's own stores (local, memory) answer, where floe's HTTP view answers
/// 416.
async fn get(
    store: &ZarrStore,
    key: &str,
    range: Option<ByteRange>,
) -> floe::Result<Option<Bytes>> {
    match range {
        None => store.get(key).await,
        Some(range) => match store.get_range(key, range).await {
            Err(floe::Error::InvalidByteRange { .. }) => Ok(Some(Bytes::new())),
            other => other,
        },
    }
}

/// A session's Zarr v3 store.
#[pyclass(name = "Store", module = "floe._floe", frozen)]
pub(crate) struct PyStore {
    store: ZarrStore,
}

impl PyStore {
    pub(crate) fn new(store: ZarrStore) -> Self {
        PyStore { store }
    }
}

#[pymethods]
impl PyStore {
    /// True when writes are allowed (the session is writable).
    #[getter]
    fn writable(&self) -> bool {
        self.store.is_writable()
    }

    /// True when group documents carry consolidated metadata.
    #[getter]
    fn consolidated(&self) -> bool {
        self.store.is_consolidated()
    }

    /// True when both stores view one session.
    fn same_as(&self, other: &PyStore) -> bool {
        self.store.session().same_as(other.store.session())
    }

    /// The value of `key` (a byte range of it), `None` when absent.
    #[pyo3(signature = (key, range=None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: String,
        range: RangeArg,
    ) -> PyResult<Bound<'py, PyAny>> {
        let range = byte_range(range)?;
        let store = self.store.clone();
        awaitable_eager(py, async move {
            let value = get(&store, &key, range).await.py()?;
            Ok(value.map(PyBytes::new))
        })
    }

    /// Several values (or byte ranges), in order; `None` for absent keys.
    fn get_partial_values<'py>(
        &self,
        py: Python<'py>,
        requests: Vec<(String, RangeArg)>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let requests: Vec<(String, Option<ByteRange>)> = requests
            .into_iter()
            .map(|(key, range)| Ok((key, byte_range(range)?)))
            .collect::<PyResult<_>>()?;
        let store = self.store.clone();
        awaitable_eager(py, async move {
            let reads = requests.iter().map(|(key, range)| get(&store, key, *range));
            let values = join_all(reads).await;
            values
                .into_iter()
                .map(|v| v.py().map(|v| v.map(PyBytes::new)))
                .collect::<PyResult<Vec<_>>>()
        })
    }

    /// The size of `key`'s value, `None` when absent.
    fn getsize<'py>(&self, py: Python<'py>, key: String) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable_eager(py, async move { store.size(&key).await.py() })
    }

    /// The total size of the values of every key below `prefix`.
    fn getsize_prefix<'py>(&self, py: Python<'py>, prefix: String) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable_eager(py, async move { store.size_prefix(&prefix).await.py() })
    }

    /// True when `key` has a value.
    fn exists<'py>(&self, py: Python<'py>, key: String) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable_eager(py, async move { store.exists(&key).await.py() })
    }

    /// Stores a copy of `value` at `key`.
    fn set<'py>(
        &self,
        py: Python<'py>,
        key: String,
        value: PyBytes,
    ) -> PyResult<Bound<'py, PyAny>> {
        // Never keep the caller's buffer: it may change before the session commits.
        let value = Bytes::copy_from_slice(value.as_slice());
        let store = self.store.clone();
        awaitable_eager(py, async move { store.set(&key, value).await.py() })
    }

    /// Deletes `key` (absent keys are fine).
    fn delete<'py>(&self, py: Python<'py>, key: String) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable_eager(py, async move { store.delete(&key).await.py() })
    }

    /// Deletes every key below `prefix` (`""` or ending with `/`).
    fn delete_prefix<'py>(&self, py: Python<'py>, prefix: String) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable_eager(py, async move { store.delete_prefix(&prefix).await.py() })
    }

    /// True when no key starts with `prefix`.
    fn is_empty<'py>(&self, py: Python<'py>, prefix: String) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable_eager(py, async move { store.is_empty(&prefix).await.py() })
    }

    /// Every key.
    fn list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable_eager(py, async move { store.list().await.py() })
    }

    /// Every key below `prefix`.
    fn list_prefix<'py>(&self, py: Python<'py>, prefix: String) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable_eager(py, async move { store.list_prefix(&prefix).await.py() })
    }

    /// [`PyStore::get`], blocking (with the GIL released).
    #[pyo3(signature = (key, range=None))]
    fn get_blocking(
        &self,
        py: Python<'_>,
        key: String,
        range: RangeArg,
    ) -> PyResult<Option<PyBytes>> {
        let range = byte_range(range)?;
        let value = block_on(py, get(&self.store, &key, range))?.py()?;
        Ok(value.map(PyBytes::new))
    }

    /// [`PyStore::set`], blocking (with the GIL released); the value is copied first.
    fn set_blocking(&self, py: Python<'_>, key: String, value: PyBytes) -> PyResult<()> {
        let value = Bytes::copy_from_slice(value.as_slice());
        block_on(py, self.store.set(&key, value))?.py()
    }

    /// [`PyStore::delete`], blocking (with the GIL released).
    fn delete_blocking(&self, py: Python<'_>, key: String) -> PyResult<()> {
        block_on(py, self.store.delete(&key))?.py()
    }

    /// `(keys, prefixes)` directly inside `prefix` (full keys; prefixes end with `/`).
    fn list_dir<'py>(&self, py: Python<'py>, prefix: String) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable_eager(py, async move { store.list_dir(&prefix).await.py() })
    }
}
