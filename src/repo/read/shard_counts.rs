//! The statistics a manifest shard records about its chunks, kept up to date by commits and
//! checked by fsck.

use std::fmt;

use crate::format::manifest::ChunkRef;

/// The three statistics a shard records about its content (objects.md §5, `ShardRef`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardCounts {
    /// Number of chunks.
    pub chunk_count: u64,
    /// Sum of the chunks' lengths in bytes.
    pub chunk_bytes: u64,
    /// How many of the chunks are inline.
    pub inline_count: u64,
    /// How many of the chunks are virtual.
    pub virtual_count: u64,
}

impl ShardCounts {
    /// Counts one more chunk.
    pub(crate) fn add(&mut self, r: &ChunkRef) {
        self.chunk_count = self.chunk_count.saturating_add(1);
        self.chunk_bytes = self.chunk_bytes.saturating_add(r.len());
        self.inline_count = self
            .inline_count
            .saturating_add(u64::from(matches!(r, ChunkRef::Inline(_))));
        self.virtual_count = self
            .virtual_count
            .saturating_add(u64::from(matches!(r, ChunkRef::Virtual(_))));
    }

    /// Counts one chunk less.
    pub(crate) fn remove(&mut self, r: &ChunkRef) {
        self.chunk_count = self.chunk_count.saturating_sub(1);
        self.chunk_bytes = self.chunk_bytes.saturating_sub(r.len());
        self.inline_count = self
            .inline_count
            .saturating_sub(u64::from(matches!(r, ChunkRef::Inline(_))));
        self.virtual_count = self
            .virtual_count
            .saturating_sub(u64::from(matches!(r, ChunkRef::Virtual(_))));
    }
}

impl fmt::Display for ShardCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} chunks, {} bytes, {} inline, {} virtual",
            self.chunk_count, self.chunk_bytes, self.inline_count, self.virtual_count
        )
    }
}
