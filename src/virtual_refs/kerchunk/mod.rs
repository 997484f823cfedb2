//! Importing kerchunk references: virtual datasets whose chunks stay in netCDF, HDF5, GRIB...
//! files, described by [kerchunk](https://fsspec.github.io/kerchunk/) as Zarr v2 keys.
//!
//! - [`json`]: reference files, version 0 (`{key: value}`) and version 1 (`templates`, `gen`,
//!   `refs`), rendered with the [`template`] subset of jinja that kerchunk uses;
//! - [`parquet`]: the parquet reference layout (`refs.parq/`);
//! - [`zarr_v2`] and [`codecs`]: Zarr v2 metadata (`.zarray`, `.zattrs`, `.zgroup`,
//!   `.zmetadata`) translated to Zarr v3 `zarr.json`;
//! - [`sources`]: the files the references point to: containers to declare, checksums;
//! - [`import`] and [`append`]: turning a reference set into groups, arrays and chunk refs of a
//!   session, replacing arrays or appending along a dimension.

mod append;
mod base64;
mod codecs;
mod import;
mod json;
mod parquet;
mod sources;
mod template;
mod zarr_v2;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};

pub use import::{
    import_kerchunk, import_kerchunk_with_progress, ImportOptions, ImportProgress, ImportSummary,
    ImportedContainer,
};

/// One reference of a kerchunk reference set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KerchunkRef {
    /// The bytes themselves: a metadata document, or a chunk kerchunk inlined (as text, or as
    /// `base64:` data in the reference file).
    Inline(Bytes),
    /// A whole file (`[url]`).
    File {
        /// The file's URL or absolute path, as written in the references.
        url: Arc<str>,
    },
    /// A byte range of a file (`[url, offset, length]`).
    Range {
        /// The file's URL or absolute path, as written in the references.
        url: Arc<str>,
        /// Offset of the first byte.
        offset: u64,
        /// Number of bytes.
        length: u64,
    },
}

impl KerchunkRef {
    /// The URL of the referenced file, `None` for inline data.
    pub fn url(&self) -> Option<&str> {
        match self {
            KerchunkRef::Inline(_) => None,
            KerchunkRef::File { url } | KerchunkRef::Range { url, .. } => Some(url),
        }
    }
}

/// A kerchunk reference set: every Zarr v2 key (metadata keys such as `t2m/.zarray`, and chunk
/// keys such as `t2m/0.1.2`) with its reference, after templates and generators are expanded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KerchunkRefs {
    /// What the references were read from, for messages.
    pub origin: String,
    /// Every key with its reference, sorted by key.
    pub refs: BTreeMap<String, KerchunkRef>,
}

impl KerchunkRefs {
    /// Parses a JSON reference file (version 0 or 1). `origin` names it in errors.
    ///
    /// Fails with [`Error::KerchunkImport`] for malformed JSON, an unknown version, a value
    /// that is not a string, object, `[url]` or `[url, offset, length]`, bad `base64:` data,
    /// or a template or generator outside the supported subset of jinja (names, calls of
    /// template functions with keyword arguments, and integer arithmetic with `+ - * // %`).
    pub fn from_json(origin: &str, json: &[u8]) -> Result<Self> {
        let refs = json::parse(json).map_err(|reason| invalid(origin, reason))?;
        Ok(KerchunkRefs {
            origin: origin.to_string(),
            refs,
        })
    }

    /// Reads the parquet reference layout in directory `dir` (a `.zmetadata` JSON file and
    /// `<variable>/refs.<n>.parq` files). Fails with [`Error::KerchunkImport`] for a missing
    /// or malformed `.zmetadata` or parquet file, and [`Error::Io`] when a file cannot be read.
    pub fn from_parquet_dir(dir: &Path) -> Result<Self> {
        parquet::read_dir(dir)
    }

    /// Reads references from `path`: a directory is the parquet layout, a file is JSON.
    /// Fails as [`KerchunkRefs::from_json`] or [`KerchunkRefs::from_parquet_dir`].
    pub fn read(path: &Path) -> Result<Self> {
        if path.is_dir() {
            return Self::from_parquet_dir(path);
        }
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&path.display().to_string(), &bytes)
    }

    /// The container prefixes an import of these references declares for its files when no
    /// declared container holds them: the directory of each local file or HTTP(S) file, the
    /// bucket of each object-store file, without prefixes nested in others. Fails with
    /// [`Error::VirtualLocationRefused`] for a location an import would refuse.
    pub fn source_prefixes(&self) -> Result<Vec<String>> {
        let mut prefixes = std::collections::BTreeSet::new();
        let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for url in self.refs.values().filter_map(KerchunkRef::url) {
            if seen.insert(url) {
                let checked = super::location::check_source(url)?;
                prefixes.insert(sources::derived_prefix(&checked));
            }
        }
        Ok(sources::outermost(prefixes))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.refs.len()
    }

    /// True when there is no key at all.
    pub fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }
}

/// The import error for `what` (a file, variable or key).
pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::KerchunkImport {
        what: what.into(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_prefixes_are_the_outermost_directories_and_buckets() {
        let refs = KerchunkRefs::from_json(
            "t",
            br#"{"a/0": ["/data/a.nc", 0, 1], "a/1": ["/data/sub/b.nc"],
                 "a/2": ["s3://bk/x/y.nc", 0, 1], "a/3": "inline", ".zgroup": {"zarr_format": 2}}"#,
        )
        .unwrap();
        assert_eq!(
            refs.source_prefixes().unwrap(),
            vec!["file:///data/".to_string(), "s3://bk/".to_string()]
        );
        let bad = KerchunkRefs::from_json("t", br#"{"a/0": ["../x.nc", 0, 1]}"#).unwrap();
        assert!(matches!(
            bad.source_prefixes(),
            Err(Error::VirtualLocationRefused { .. })
        ));
    }
}
