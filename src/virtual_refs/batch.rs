//! Reading many chunks of one array at once, with virtual chunks of one source coalesced.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::manifest::{ChunkCoord, ChunkRef, VirtualSource};
use crate::format::path::NodePath;
use crate::repo::{PendingChunk, Session};

impl Session {
    /// The encoded bytes of several chunks of the array at `path`, in the order of `coords`
    /// (`None` for a chunk never written). Virtual chunks are grouped by source file and
    /// nearby byte ranges of one file are read by one request; other chunks are read one by
    /// one as by [`Session::get_chunk`].
    ///
    /// Fails as [`Session::get_chunk`] does for any of the chunks; a virtual chunk's read
    /// fails as described in [`crate::VirtualAccess`] (not authorized, refused location,
    /// changed or missing source).
    pub async fn get_chunks(
        &self,
        path: &NodePath,
        coords: &[ChunkCoord],
    ) -> Result<Vec<Option<Bytes>>> {
        let mut out: Vec<Option<Bytes>> = vec![None; coords.len()];
        let mut by_source: BTreeMap<Arc<VirtualSource>, Vec<(usize, Range<u64>)>> = BTreeMap::new();
        for (i, coord) in coords.iter().enumerate() {
            match self.chunk_location(path, coord).await? {
                None => {}
                Some(PendingChunk::Ready(ChunkRef::Virtual(v))) => {
                    let end =
                        v.offset
                            .checked_add(v.length)
                            .ok_or_else(|| Error::InvalidByteRange {
                                key: v.source.location.clone(),
                                start: v.offset,
                                end: u64::MAX,
                                size: v.length,
                            })?;
                    by_source
                        .entry(v.source.clone())
                        .or_default()
                        .push((i, v.offset..end));
                }
                Some(_) => out[i] = self.get_chunk(path, coord).await?,
            }
        }
        let repo = self.repository();
        for (source, wanted) in by_source {
            let ranges: Vec<Range<u64>> = wanted.iter().map(|(_, r)| r.clone()).collect();
            let parts = repo.read_source_ranges(&source, &ranges).await?;
            for ((i, _), bytes) in wanted.into_iter().zip(parts) {
                out[i] = Some(bytes);
            }
        }
        Ok(out)
    }
}
