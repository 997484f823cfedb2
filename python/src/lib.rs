//! floe's Python extension module `floe._floe`: repositories, sessions and stores over the
//! `floe` crate. Every decision lives in Rust (in `floe`); this crate converts arguments,
//! results and errors, runs calls on floe's own tokio runtime with the GIL released, and
//! refuses to run in a process forked after that runtime started (see [`runtime`]). The Python
//! package `floe` (in `python/floe/`) wraps these classes.

#![deny(clippy::unwrap_used)]

mod diff_json;
mod errors;
mod ready;
mod references;
mod repository;
mod runtime;
mod session;
mod store;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
fn _floe(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<repository::PyRepository>()?;
    module.add_class::<session::PySession>()?;
    module.add_class::<store::PyStore>()?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
