//! Importing kerchunk references: virtual datasets whose chunks stay in netCDF, HDF5, GRIB...
//! files, described by [kerchunk](https://fsspec.github.io/kerchunk/) as Zarr v2 keys.
//!
//! - [`json`]: reference files, version 0 (`{key: value}`) and version 1 (`templates`, `gen`,
//!   `refs`), rendered with the [`template`] subset of jinja that kerchunk uses;
//! - [`parquet`]: the parquet reference layout (`refs.parq/`);
//! - [`zarr_v2`], [`codecs`] and [`cf_fill`]: Zarr v2 metadata (`.zarray`, `.zattrs`,
//!   `.zgroup`, `.zmetadata`) translated to Zarr v3 `zarr.json`, with the CF attributes xarray
//!   needs;
//! - [`select`]: only some variables of a reference set;
//! - [`to_dataset`]: the reference set as the neutral virtual dataset that
//!   [`crate::virtual_refs::import`] imports.

mod cf_fill;
mod codecs;
mod json;
mod parquet;
mod select;
mod template;
mod to_dataset;
mod v2_types;
mod zarr_v2;

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::repo::Session;

use super::import::sources;
use super::import::{import_dataset, ImportOptions, ImportProgress, ImportSummary};

/// One reference of a kerchunk reference set: inline bytes (a metadata document, or a chunk
/// kerchunk inlined as text or `base64:` data), a whole file (`[url]`) or a byte range
/// (`[url, offset, length]`).
pub type KerchunkRef = super::dataset::SourceChunk;

/// Imports kerchunk references into the writable `session` (nothing is committed):
///
/// - the root group of the references becomes `options.to`, created with any missing parent;
///   groups get their `.zattrs`; arrays get Zarr v3 metadata translated from `.zarray` and
///   `.zattrs` (consolidated `.zmetadata` is read too; explicit keys win), with the CF
///   attributes xarray needs to decode them as it decodes the source file: `_FillValue` in
///   xarray's Zarr v3 encoding, `dimension_names` instead of `_ARRAY_DIMENSIONS`, byte
///   strings as zarr-python's `null_terminated_bytes`;
/// - coordinate variables, arrays other variables name as CF coordinates, bounds or grid
///   mappings, and scalars are *loaded* when at most `options.load_limit` bytes: their values
///   are read from the files once, decoded, and stored as ordinary chunks (`bytes` + `zstd`,
///   chunked to grow along the append dimension); `options.load` and `options.keep_virtual`
///   override that per variable. Everything else becomes virtual chunk references (inline
///   data becomes ordinary chunks);
/// - the files the references point to are checked (absolute URLs or paths of a supported
///   scheme, no traversal) and each file's checksum (ETag, else modification time) is
///   recorded with one HEAD request, so reading a file changed after the import fails with
///   [`crate::Error::VirtualSourceChanged`]; after every check passed, the containers holding
///   the referenced files are declared when no declared container holds them yet (one per
///   directory for local files and HTTP, one per bucket for object stores).
///
/// Without `append_dim`, an array that exists at a target path is replaced. With it, an
/// existing array having that dimension grows along it:
///
/// - loaded values are written after the existing ones (the last chunk rewritten when partly
///   filled); CF time values whose `units` or `calendar` differ from the stored ones are
///   re-encoded to the stored encoding;
/// - references go after the existing chunks: a partly filled existing last chunk is read,
///   cut to its real length and stored as an ordinary chunk first; when the new chunks have
///   another length along the dimension, or a chunk was cut, the array gets (or keeps) a
///   `rectilinear` chunk grid along it (every other dimension must keep its chunking).
///
/// An existing array without the append dimension must hold the same values as the imported
/// one. Attributes that change how values decode (`scale_factor`, `add_offset`, `_FillValue`,
/// `missing_value`, `units`, `calendar`, `_Unsigned`) must agree, and so must the data type,
/// fill value and dimensions (and, for references, codecs and chunk key encoding); other
/// attributes that differ keep the stored value and are listed in the summary. Reading the
/// existing chunks (comparisons, cut chunks) goes through `session`, so its repository
/// handle must be authorized to read them (see [`crate::VirtualAccess`]).
///
/// Fails with [`crate::Error::KerchunkImport`] for malformed metadata, an unsupported codec or
/// data type (naming the variable), a chunk key that does not fit its array, a reference past
/// the end of its file, an append dimension no array has, a `load`/`keep_virtual` name no
/// array has, or an append that does not fit the existing arrays (naming the attribute and
/// both values); with the errors of location checks, HEAD requests, reads and the session's
/// writes otherwise. Every check runs before anything is written or declared.
pub async fn import_kerchunk(
    session: &Session,
    refs: &KerchunkRefs,
    options: &ImportOptions,
) -> Result<ImportSummary> {
    import_kerchunk_with_progress(session, refs, options, &|_| {}).await
}

/// [`import_kerchunk`], calling `progress` as chunk references are handled.
pub async fn import_kerchunk_with_progress(
    session: &Session,
    refs: &KerchunkRefs,
    options: &ImportOptions,
    progress: &(dyn Fn(ImportProgress) + Send + Sync),
) -> Result<ImportSummary> {
    let dataset = to_dataset::to_dataset(refs)?;
    import_dataset(session, &dataset, options, progress).await
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

    /// The references as a kerchunk JSON reference file (version 1): metadata and other
    /// UTF-8 inline data as text, other inline data as `base64:` text, byte ranges as
    /// `[url, offset, length]`, whole files as `[url]`. [`KerchunkRefs::from_json`] reads it
    /// back unchanged.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{json, Value};
        let refs: serde_json::Map<String, Value> = self
            .refs
            .iter()
            .map(|(key, reference)| {
                let value = match reference {
                    KerchunkRef::Inline(bytes) => match std::str::from_utf8(bytes) {
                        Ok(text) if !text.starts_with("base64:") => json!(text),
                        _ => json!(format!("base64:{}", crate::zarr::base64::encode(bytes))),
                    },
                    KerchunkRef::File { url } => json!([url.as_ref()]),
                    KerchunkRef::Range {
                        url,
                        offset,
                        length,
                    } => json!([url.as_ref(), offset, length]),
                };
                (key.clone(), value)
            })
            .collect();
        json!({"version": 1, "refs": refs})
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
    Error::import_refused(what, reason)
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
