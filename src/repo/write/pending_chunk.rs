//! Where a chunk written in a session is until the commit: stored already, or inside one of
//! the session's packs.

use crate::error::{Error, Result};
use crate::format::manifest::ChunkRef;

/// Where a written chunk's bytes are while the session is open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PendingChunk {
    /// Stored (inline, or in an object already written).
    Ready(ChunkRef),
    /// Inside pack number `pack` of this session, not necessarily written yet.
    Packed {
        pack: usize,
        offset: u64,
        length: u64,
    },
}

impl PendingChunk {
    pub(crate) fn len(&self) -> u64 {
        match self {
            PendingChunk::Ready(r) => r.len(),
            PendingChunk::Packed { length, .. } => *length,
        }
    }
}

/// The stored location of a settled chunk edit (`None` deletes).
pub(crate) fn settled(edit: Option<&PendingChunk>) -> Result<Option<ChunkRef>> {
    match edit {
        None => Ok(None),
        Some(PendingChunk::Ready(r)) => Ok(Some(r.clone())),
        Some(PendingChunk::Packed { .. }) => Err(Error::corrupt(
            "<session pack>",
            "a packed chunk was not settled before use",
        )),
    }
}
