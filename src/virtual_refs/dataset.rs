//! The neutral description of a virtual dataset that every importer produces (kerchunk
//! references today, native file scanners next) and one import path turns into groups, arrays
//! and chunk references (see [`super::import`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::format::manifest::ChunkCoord;

/// Where the encoded bytes of one chunk of a source file are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceChunk {
    /// The bytes themselves: a metadata document, or a chunk the describing tool inlined.
    Inline(Bytes),
    /// A whole file (`[url]` in kerchunk references).
    File {
        /// The file's URL or absolute path.
        url: Arc<str>,
    },
    /// A byte range of a file (`[url, offset, length]` in kerchunk references).
    Range {
        /// The file's URL or absolute path.
        url: Arc<str>,
        /// Offset of the first byte.
        offset: u64,
        /// Number of bytes.
        length: u64,
    },
}

impl SourceChunk {
    /// The URL of the referenced file, `None` for inline data.
    pub fn url(&self) -> Option<&str> {
        match self {
            SourceChunk::Inline(_) => None,
            SourceChunk::File { url } | SourceChunk::Range { url, .. } => Some(url),
        }
    }
}

/// One array of a virtual dataset.
#[derive(Clone, Debug)]
pub(crate) struct VirtualArray {
    /// Its Zarr v3 `zarr.json` (regular chunk grid), with the CF attributes xarray needs.
    pub(crate) document: Value,
    /// Every chunk the source holds, by its coordinates in the document's chunk grid.
    pub(crate) chunks: Vec<(ChunkCoord, SourceChunk)>,
}

impl VirtualArray {
    /// The array's dimension names (`dimension_names`), empty when it has none.
    pub(crate) fn dimension_names(&self) -> Vec<&str> {
        self.document["dimension_names"]
            .as_array()
            .map(|names| names.iter().map(|n| n.as_str().unwrap_or("")).collect())
            .unwrap_or_default()
    }

    /// The array's shape.
    pub(crate) fn shape(&self) -> Vec<u64> {
        self.document["shape"]
            .as_array()
            .map(|s| s.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default()
    }

    /// Its user attributes.
    pub(crate) fn attributes(&self) -> Map<String, Value> {
        self.document["attributes"]
            .as_object()
            .cloned()
            .unwrap_or_default()
    }
}

/// A virtual dataset: the groups and arrays of one source (a file, or what a reference set
/// describes), by path relative to the dataset's root (`""` is the root group).
#[derive(Clone, Debug, Default)]
pub(crate) struct VirtualDataset {
    /// What the dataset was read from, for messages.
    pub(crate) origin: String,
    /// Groups with their attributes.
    pub(crate) groups: BTreeMap<String, Map<String, Value>>,
    /// Arrays.
    pub(crate) arrays: BTreeMap<String, VirtualArray>,
    /// Entries of the source that belong to no array and are not metadata (ignored).
    pub(crate) skipped_keys: u64,
}

impl VirtualDataset {
    /// The name of an array path: its last segment.
    pub(crate) fn name_of(path: &str) -> &str {
        path.rsplit('/').next().unwrap_or(path)
    }

    /// The group path of an array path (`""` for arrays at the root).
    pub(crate) fn parent_of(path: &str) -> &str {
        path.rsplit_once('/').map_or("", |(parent, _)| parent)
    }
}
