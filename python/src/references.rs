//! Kerchunk references as Python hands them over: a file or directory path, or JSON text.

use floe::KerchunkRefs;
use pyo3::prelude::*;

use crate::errors::{invalid_argument, IntoPy};

/// Kerchunk references from a path or JSON text.
pub(crate) fn read_refs(
    path: Option<String>,
    json: Option<String>,
    origin: &str,
) -> PyResult<KerchunkRefs> {
    match (path, json) {
        (Some(path), None) => KerchunkRefs::read(std::path::Path::new(&path)).py(),
        (None, Some(json)) => KerchunkRefs::from_json(origin, json.as_bytes()).py(),
        _ => Err(invalid_argument(
            "give the references as a path or as JSON text, not both".into(),
        )),
    }
}
