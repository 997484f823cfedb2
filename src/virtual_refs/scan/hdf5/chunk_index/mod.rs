//! Chunk indexes: where each stored chunk of a dataset is.

/// One stored chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ChunkEntry {
    /// Chunk grid coordinates (chunk index along each dimension, not element offsets).
    pub(crate) scaled: Vec<u64>,
    pub(crate) address: u64,
    /// Stored bytes.
    pub(crate) size: u64,
    /// Bit i set: filter i of the pipeline was NOT applied to this chunk.
    pub(crate) filter_mask: u32,
}

/// What an index needs to know of its dataset.
#[derive(Clone, Debug)]
#[allow(dead_code)] // read by the chunk indexes being written (helper); removed when they land
pub(crate) struct ChunkGeometry {
    /// Current dataspace dimensions.
    pub(crate) dims: Vec<u64>,
    /// Maximum dimensions (u64::MAX = unlimited).
    pub(crate) max_dims: Vec<u64>,
    /// Chunk dimensions (without the element-size entry of the layout message).
    pub(crate) chunk: Vec<u64>,
    /// Bytes of one element.
    pub(crate) element_size: u32,
    /// Whether the dataset has a filter pipeline (filtered index element forms).
    pub(crate) filtered: bool,
}

pub(crate) mod btree2_chunks;
pub(crate) mod extensible_array;
pub(crate) mod fixed_array;
