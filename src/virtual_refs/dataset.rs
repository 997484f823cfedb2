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

/// The `shape` of an array's `zarr.json` (entries that are not integers skipped).
pub(crate) fn document_shape(document: &Value) -> Vec<u64> {
    document["shape"]
        .as_array()
        .map(|s| s.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

/// The user `attributes` of a node's `zarr.json` (empty when it has none).
pub(crate) fn document_attributes(document: &Value) -> Map<String, Value> {
    document["attributes"]
        .as_object()
        .cloned()
        .unwrap_or_default()
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
        document_shape(&self.document)
    }

    /// Its user attributes.
    pub(crate) fn attributes(&self) -> Map<String, Value> {
        document_attributes(&self.document)
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
    /// Gives every array the length of its group's coordinate variable (the 1-D array named
    /// like the dimension) along that dimension when it is shorter. netCDF gives every
    /// variable the unlimited dimension's length, but HDF5 (and so kerchunk) reports what was
    /// written: a variable written for fewer records than `time` has would otherwise conflict
    /// with it. The added elements have no chunks and read as the fill value, as they do in
    /// the file. Dimensions without a coordinate variable (h5py's positional `phony_dim_N`
    /// among them) are left alone.
    pub(crate) fn pad_to_coordinate_lengths(&mut self) {
        let mut lengths: BTreeMap<String, u64> = BTreeMap::new();
        for (path, array) in &self.arrays {
            let (names, shape) = (array.dimension_names(), array.shape());
            if names.len() == 1 && shape.len() == 1 && names[0] == Self::name_of(path) {
                lengths.insert(path.clone(), shape[0]);
            }
        }
        for (path, array) in &mut self.arrays {
            let group = Self::parent_of(path);
            let names: Vec<String> = array
                .dimension_names()
                .iter()
                .map(|n| n.to_string())
                .collect();
            for (i, name) in names.iter().enumerate() {
                let coordinate = if group.is_empty() {
                    name.clone()
                } else {
                    format!("{group}/{name}")
                };
                let Some(&want) = lengths.get(&coordinate) else {
                    continue;
                };
                if array.document["shape"][i]
                    .as_u64()
                    .is_some_and(|n| n < want)
                {
                    array.document["shape"][i] = Value::from(want);
                }
            }
        }
    }

    /// The name of an array path: its last segment.
    pub(crate) fn name_of(path: &str) -> &str {
        path.rsplit('/').next().unwrap_or(path)
    }

    /// The group path of an array path (`""` for arrays at the root).
    pub(crate) fn parent_of(path: &str) -> &str {
        path.rsplit_once('/').map_or("", |(parent, _)| parent)
    }
}
