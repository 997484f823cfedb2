//! The tokio runtime every call runs on, owned by the process that created it.
//!
//! Blocking calls release the GIL and block on the runtime; `_async` calls return asyncio
//! awaitables driven by it (pyo3-async-runtimes, given this runtime). tokio cannot survive
//! `fork()`: a child gets the runtime's memory but none of its threads, so any call would wait
//! forever. Every entry point therefore checks the process id first and fails at once in a
//! forked child that inherited a started runtime, naming the `spawn` start method. A child
//! forked before the first call creates its own runtime as usual.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use pyo3::prelude::*;
use pyo3::BoundObject;
use tokio::runtime::Runtime;

use crate::errors::{floe_error, forked_process_error};
use crate::ready::Ready;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
/// The process that created [`RUNTIME`] (0 until then).
static OWNER: AtomicU32 = AtomicU32::new(0);

/// The runtime, created on first use. Fails in a process forked after the runtime started.
pub(crate) fn runtime() -> PyResult<&'static Runtime> {
    let pid = std::process::id();
    if let Some(runtime) = RUNTIME.get() {
        return if OWNER.load(Ordering::SeqCst) == pid {
            Ok(runtime)
        } else {
            Err(forked_process_error())
        };
    }
    let built = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("floe-io")
        .build()
        .map_err(|e| floe_error(format!("floe cannot start its I/O runtime: {e}")))?;
    // Another thread may have won the race; its runtime (and its owner) stand.
    if RUNTIME.set(built).is_ok() {
        OWNER.store(pid, Ordering::SeqCst);
    }
    let runtime = RUNTIME
        .get()
        .ok_or_else(|| floe_error("floe's I/O runtime vanished".into()))?;
    // pyo3-async-runtimes drives `_async` calls on the same runtime; only the first call
    // can set it, and later calls find it set.
    let _ = pyo3_async_runtimes::tokio::init_with_runtime(runtime);
    if OWNER.load(Ordering::SeqCst) != pid {
        return Err(forked_process_error());
    }
    Ok(runtime)
}

/// Runs `future` to completion with the GIL released.
pub(crate) fn block_on<F>(py: Python<'_>, future: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let runtime = runtime()?;
    // This thread waits anyway (with the GIL released): local file reads run on it instead
    // of being handed to the runtime's blocking pool and back.
    Ok(py.detach(|| runtime.block_on(floe::with_inline_io(future))))
}

/// `future` as an asyncio awaitable driven by the runtime.
pub(crate) fn awaitable<'py, F, T>(py: Python<'py>, future: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    runtime()?;
    pyo3_async_runtimes::tokio::future_into_py(py, future)
}

/// Like [`awaitable`], but tries `future` once at once (on the caller's thread, inside the
/// runtime's context, with the GIL held): when it finishes without waiting for I/O, the result
/// comes back as a [`Ready`] (or the error is raised now) instead of through an asyncio future
/// and two thread hops. For short store operations only: the first step runs with the GIL held.
pub(crate) fn awaitable_eager<'py, F, T>(py: Python<'py>, future: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let runtime = runtime()?;
    let mut future = Box::pin(future);
    let first = {
        let _context = runtime.enter();
        let mut context = Context::from_waker(Waker::noop());
        future.as_mut().poll(&mut context)
    };
    match first {
        Poll::Ready(result) => {
            let value = result?.into_pyobject(py).map_err(Into::into)?;
            Bound::new(py, Ready::new(value.into_any().unbind())).map(Bound::into_any)
        }
        // The future registers the runtime's waker when the runtime polls it next.
        Poll::Pending => pyo3_async_runtimes::tokio::future_into_py(py, future),
    }
}
