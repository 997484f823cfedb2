//! Chunk reads and writes of a session.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::change_set::{within_grid, NodeEdit};
use super::pending_chunk::PendingChunk;
use super::session::Session;
use crate::error::{Error, Result};
use crate::format::envelope::chunk_object_header;
use crate::format::manifest::{ChunkCoord, ChunkRef, VirtualChunkRef};
use crate::format::path::NodePath;
use crate::id::ChunkObjectId;
use crate::repo::read::loaded::lock;
use crate::storage::layout;

/// How often a read looks a chunk up again when commits or discards keep moving it.
const STALE_LOCATION_RETRIES: usize = 8;

impl Session {
    // ---- chunks -----------------------------------------------------------------------

    /// The chunk grid of the array at `path` (with uncommitted changes applied); an error when
    /// nothing or a group is there.
    pub(crate) fn array_geometry(
        &self,
        path: &NodePath,
    ) -> Result<crate::zarr::metadata::ArrayGeometry> {
        let node = self.require_node(path)?;
        node.metadata
            .geometry()
            .cloned()
            .ok_or_else(|| Error::WrongNodeKind {
                path: path.to_string(),
                expected: "array",
                found: "group",
            })
    }

    fn check_chunk(&self, path: &NodePath, coord: &[u64]) -> Result<()> {
        let geometry = self.array_geometry(path)?;
        if !geometry.contains_chunk(coord) {
            return Err(Error::ChunkOutOfBounds {
                path: path.to_string(),
                coords: coord.to_vec(),
                grid: geometry.grid_shape(),
            });
        }
        Ok(())
    }

    /// Stores the encoded bytes of one chunk. Tiny chunks go inline, small ones into a pack,
    /// large ones into an object of their own, stored in the background (up to
    /// `io_concurrency` at once; reads in the session see it at once, and the commit waits
    /// for it and reports a failed upload).
    ///
    /// A full pack is written by the call that fills it. If that write fails the error is
    /// returned, but the chunk stays recorded in its pack, which is written again by a later
    /// call or at commit: an error here never loses an earlier write of the session.
    pub async fn set_chunk(&self, path: &NodePath, coord: &[u64], data: Bytes) -> Result<()> {
        self.check_writable()?;
        let _gate = self.inner.write_gate.read().await;
        self.check_chunk(path, coord)?;
        let settings = self.inner.repo.settings();
        let pending = if data.len() <= settings.inline_threshold {
            PendingChunk::Ready(ChunkRef::Inline(data))
        } else if data.len() >= settings.single_object_threshold {
            let mut object = chunk_object_header();
            let offset = object.len() as u64;
            object.extend_from_slice(&data);
            let object = object.freeze();
            let id = ChunkObjectId::of_bytes(&object);
            // Stored in the background; commits and forks wait for it (uploads.rs).
            self.inner
                .uploads
                .start(&self.inner.repo, id, object)
                .await?;
            PendingChunk::Ready(ChunkRef::Native {
                object: id,
                offset,
                length: data.len() as u64,
            })
        } else {
            let (pack, offset) = lock(&self.inner.state)
                .packs
                .append(&data, settings.pack_target_bytes);
            PendingChunk::Packed {
                pack,
                offset,
                length: data.len() as u64,
            }
        };
        self.record_edit(path, coord, Some(pending))?;
        self.write_sealed_packs().await
    }

    /// Records that the chunk at `coord` is a byte range of a file outside the repository.
    /// Nothing is read or checked now: reading it later needs the source's container to be
    /// authorized, and fails if the source changed (when the reference has a checksum).
    pub async fn set_virtual_chunk(
        &self,
        path: &NodePath,
        coord: &[u64],
        chunk: VirtualChunkRef,
    ) -> Result<()> {
        self.check_writable()?;
        let _gate = self.inner.write_gate.read().await;
        self.check_chunk(path, coord)?;
        self.record_edit(
            path,
            coord,
            Some(PendingChunk::Ready(ChunkRef::Virtual(chunk))),
        )
    }

    /// Records a chunk edit and keeps the session's edits compact (see
    /// `ChangeSet::maintain`).
    fn record_edit(
        &self,
        path: &NodePath,
        coord: &[u64],
        edit: Option<PendingChunk>,
    ) -> Result<()> {
        let settings = self.inner.repo.settings();
        let mut state = lock(&self.inner.state);
        let state = &mut *state;
        state
            .changes
            .chunks
            .entry(path.clone())
            .or_default()
            .insert(coord.to_vec(), edit);
        state.changes.maintain(
            path,
            &state.packs,
            settings.spool_memory_bytes,
            settings.spool_dir.as_deref(),
        )
    }

    /// Deletes one chunk (reads return nothing, i.e. the fill value).
    pub async fn delete_chunk(&self, path: &NodePath, coord: &[u64]) -> Result<()> {
        self.check_writable()?;
        let _gate = self.inner.write_gate.read().await;
        self.check_chunk(path, coord)?;
        self.record_edit(path, coord, None)
    }

    /// Hands every sealed pack that no other caller claimed to the background uploads
    /// (uploads.rs) and records its object id. Called after writes and at commit; the commit
    /// and forks wait for the uploads. A pack that cannot be handed over goes back to the
    /// sealed state and is retried later.
    pub(crate) async fn write_sealed_packs(&self) -> Result<()> {
        let claimed = lock(&self.inner.state).packs.claim_sealed();
        let mut result = Ok(());
        for (index, bytes) in claimed {
            if result.is_err() {
                lock(&self.inner.state).packs.release(index);
                continue;
            }
            let id = ChunkObjectId::of_bytes(&bytes);
            match self.inner.uploads.start(&self.inner.repo, id, bytes).await {
                Ok(()) => lock(&self.inner.state).packs.mark_written(index, id),
                Err(e) => {
                    lock(&self.inner.state).packs.release(index);
                    result = Err(e);
                }
            }
        }
        result
    }

    /// Where the chunk at `coord` of array `path` lives, `None` when it was never written (or
    /// lies outside the current shape).
    pub(crate) async fn chunk_location(
        &self,
        path: &NodePath,
        coord: &[u64],
    ) -> Result<Option<PendingChunk>> {
        let Some(node) = self.node(path)? else {
            return Ok(None);
        };
        let Some(geometry) = node.metadata.geometry() else {
            return Ok(None);
        };
        if !geometry.contains_chunk(coord) {
            return Ok(None);
        }
        let (edit, inherit, base) = {
            let state = lock(&self.inner.state);
            let edit = match state.changes.chunks.get(path) {
                Some(edits) => edits.get(coord)?,
                None => None,
            };
            let inherit = !matches!(
                state.changes.nodes.get(path),
                Some(NodeEdit::Put { fresh: true, .. }) | Some(NodeEdit::Deleted)
            ) && state
                .changes
                .clips
                .get(path)
                .is_none_or(|clip| within_grid(coord, clip));
            (edit, inherit, state.base.clone())
        };
        if let Some(edit) = edit {
            return Ok(edit);
        }
        if !inherit {
            return Ok(None);
        }
        Ok(base
            .chunk_ref(&self.inner.repo, path, coord)
            .await?
            .map(PendingChunk::Ready))
    }

    /// Reads (a range of) the chunk at `location`; `None` when the location went stale
    /// because the session committed or discarded its changes meanwhile.
    async fn read_located(
        &self,
        location: PendingChunk,
        range: Option<std::ops::Range<u64>>,
        what: impl Fn() -> String,
    ) -> Result<Option<Bytes>> {
        let length = location.len();
        let range = range.unwrap_or(0..length);
        if range.start > range.end || range.end > length {
            return Err(Error::InvalidByteRange {
                key: what(),
                start: range.start,
                end: range.end,
                size: length,
            });
        }
        let slice = |bytes: Bytes| bytes.slice(range.start as usize..range.end as usize);
        let (object, offset) = match location {
            PendingChunk::Ready(ChunkRef::Inline(data)) => return Ok(Some(slice(data))),
            PendingChunk::Ready(ChunkRef::Native { object, offset, .. }) => (object, offset),
            PendingChunk::Ready(ChunkRef::Virtual(v)) => {
                return self
                    .inner
                    .repo
                    .read_virtual(&v, &[range])
                    .await
                    .map(|mut parts| parts.pop())
            }
            PendingChunk::Packed {
                pack,
                offset,
                length,
            } => match lock(&self.inner.state).packs.locate(pack, offset, length) {
                Some(Ok(bytes)) => return Ok(Some(slice(bytes))),
                Some(Err(object)) => (object, offset),
                None => return Ok(None),
            },
        };
        if let Some(stored) = self.inner.uploads.pending_bytes(&object) {
            // Not confirmed stored yet: served from the bytes being uploaded.
            let start = usize::try_from(offset.saturating_add(range.start)).unwrap_or(usize::MAX);
            let end = usize::try_from(offset.saturating_add(range.end)).unwrap_or(usize::MAX);
            if end <= stored.len() && start <= end {
                return Ok(Some(stored.slice(start..end)));
            }
        }
        let key = layout::chunk_object_key(&object);
        let start = offset.checked_add(range.start);
        let end = offset.checked_add(range.end);
        let (Some(start), Some(end)) = (start, end) else {
            return Err(Error::corrupt(
                key,
                "a chunk reference points past 2^64 bytes",
            ));
        };
        read_chunk_bytes(self.inner.repo.storage().as_ref(), &key, start..end)
            .await
            .map(Some)
    }

    /// Reads (a range of) one chunk, looking its location up again if the session's changes
    /// were committed or discarded between the lookup and the read.
    async fn read_chunk(
        &self,
        path: &NodePath,
        coord: &[u64],
        range: Option<std::ops::Range<u64>>,
    ) -> Result<Option<Bytes>> {
        let what = || format!("{path} chunk {coord:?}");
        for _ in 0..STALE_LOCATION_RETRIES {
            let Some(location) = self.chunk_location(path, coord).await? else {
                return Ok(None);
            };
            if let Some(bytes) = self.read_located(location, range.clone(), what).await? {
                return Ok(Some(bytes));
            }
        }
        Err(Error::SessionChangedDuringRead { what: what() })
    }

    /// The encoded bytes of one chunk, `None` if it was never written.
    pub async fn get_chunk(&self, path: &NodePath, coord: &[u64]) -> Result<Option<Bytes>> {
        self.read_chunk(path, coord, None).await
    }

    /// A byte range of one chunk's encoded bytes.
    pub async fn get_chunk_range(
        &self,
        path: &NodePath,
        coord: &[u64],
        range: std::ops::Range<u64>,
    ) -> Result<Option<Bytes>> {
        self.read_chunk(path, coord, Some(range)).await
    }

    /// Several byte ranges of one chunk's encoded bytes, read together: ranges of a stored
    /// object go to the backend in one call, which coalesces nearby ranges into few requests.
    /// `resolve` turns the chunk's size into the absolute ranges wanted (or an error when they
    /// cannot be satisfied). `None` when the chunk was never written.
    pub async fn get_chunk_ranges(
        &self,
        path: &NodePath,
        coord: &[u64],
        resolve: impl Fn(u64) -> Result<Vec<std::ops::Range<u64>>>,
    ) -> Result<Option<Vec<Bytes>>> {
        let what = || format!("{path} chunk {coord:?}");
        for _ in 0..STALE_LOCATION_RETRIES {
            let Some(location) = self.chunk_location(path, coord).await? else {
                return Ok(None);
            };
            let size = location.len();
            let ranges = resolve(size)?;
            if let Some(bad) = ranges.iter().find(|r| r.start > r.end || r.end > size) {
                return Err(Error::InvalidByteRange {
                    key: what(),
                    start: bad.start,
                    end: bad.end,
                    size,
                });
            }
            let in_memory = |bytes: &Bytes| {
                ranges
                    .iter()
                    .map(|r| bytes.slice(r.start as usize..r.end as usize))
                    .collect::<Vec<_>>()
            };
            let (object, offset) = match location {
                PendingChunk::Ready(ChunkRef::Inline(data)) => return Ok(Some(in_memory(&data))),
                PendingChunk::Ready(ChunkRef::Native { object, offset, .. }) => (object, offset),
                PendingChunk::Ready(ChunkRef::Virtual(v)) => {
                    return self.inner.repo.read_virtual(&v, &ranges).await.map(Some)
                }
                PendingChunk::Packed {
                    pack,
                    offset,
                    length,
                } => match lock(&self.inner.state).packs.locate(pack, offset, length) {
                    Some(Ok(bytes)) => return Ok(Some(in_memory(&bytes))),
                    Some(Err(object)) => (object, offset),
                    None => continue,
                },
            };
            let absolute: Vec<std::ops::Range<u64>> = ranges
                .iter()
                .map(|r| offset.saturating_add(r.start)..offset.saturating_add(r.end))
                .collect();
            if let Some(stored) = self.inner.uploads.pending_bytes(&object) {
                // Not confirmed stored yet: served from the bytes being uploaded.
                if absolute.iter().all(|r| r.end <= stored.len() as u64) {
                    return Ok(Some(
                        absolute
                            .iter()
                            .map(|r| stored.slice(r.start as usize..r.end as usize))
                            .collect(),
                    ));
                }
            }
            let key = layout::chunk_object_key(&object);
            let parts = self
                .inner
                .repo
                .storage()
                .get_ranges(&key, &absolute)
                .await?;
            if parts.len() != ranges.len()
                || parts
                    .iter()
                    .zip(&ranges)
                    .any(|(p, r)| p.len() as u64 != r.end - r.start)
            {
                return Err(Error::corrupt(
                    key,
                    "the object is shorter than the chunk references in it need",
                ));
            }
            return Ok(Some(parts));
        }
        Err(Error::SessionChangedDuringRead { what: what() })
    }

    /// Size of one chunk's encoded bytes, `None` if it was never written.
    pub async fn chunk_size(&self, path: &NodePath, coord: &[u64]) -> Result<Option<u64>> {
        Ok(self.chunk_location(path, coord).await?.map(|l| l.len()))
    }

    /// Coordinates of every stored chunk of an array, sorted.
    pub async fn list_chunks(&self, path: &NodePath) -> Result<Vec<ChunkCoord>> {
        let geometry = self.array_geometry(path)?;
        let (edits, inherit, clip, base) = {
            let state = lock(&self.inner.state);
            let inherit = !matches!(
                state.changes.nodes.get(path),
                Some(NodeEdit::Put { fresh: true, .. }) | Some(NodeEdit::Deleted)
            );
            let clip = state.changes.clips.get(path).cloned();
            (
                state.changes.chunks.get(path).cloned().unwrap_or_default(),
                inherit,
                clip,
                state.base.clone(),
            )
        };
        let mut coords: BTreeMap<ChunkCoord, bool> = BTreeMap::new();
        if inherit {
            if let Some(crate::format::snapshot::NodeKind::Array(manifest)) =
                base.snapshot.node(path).map(|n| &n.kind)
            {
                for shard in &manifest.shards {
                    let index = base.shard_index(&self.inner.repo, shard).await?;
                    for c in index.coords() {
                        if clip.as_ref().is_none_or(|clip| within_grid(c, clip)) {
                            coords.insert(c.to_vec(), true);
                        }
                    }
                }
            }
        }
        for edit in edits.iter() {
            let (c, edit) = edit?;
            coords.insert(c, edit.is_some());
        }
        Ok(coords
            .into_iter()
            .filter(|(c, live)| *live && geometry.contains_chunk(c))
            .map(|(c, _)| c)
            .collect())
    }
}

/// Reads `range` of a chunk object. A chunk reference always lies inside its object, so an
/// object too short for it (truncated, or replaced) is reported as corrupt rather than as a
/// transient storage failure or a short chunk.
async fn read_chunk_bytes(
    storage: &dyn crate::storage::Storage,
    key: &str,
    range: std::ops::Range<u64>,
) -> Result<Bytes> {
    let wanted = range.end - range.start;
    let result = storage.get_range(key, range.clone()).await;
    match &result {
        Ok(bytes) if bytes.len() as u64 == wanted => return result,
        Ok(_) | Err(Error::InvalidByteRange { .. }) | Err(Error::Storage { .. }) => {}
        Err(_) => return result,
    }
    match storage.head(key).await {
        Ok(Some(size)) if size < range.end => Err(Error::corrupt(
            key,
            format!(
                "the object has {size} bytes but a chunk reference needs bytes {}..{}",
                range.start, range.end
            ),
        )),
        Ok(None) => Err(Error::ObjectMissing {
            key: key.to_string(),
        }),
        _ => match result {
            Ok(bytes) => Err(Error::corrupt(
                key,
                format!("read {} bytes of a {wanted}-byte chunk", bytes.len()),
            )),
            Err(e) => Err(e),
        },
    }
}
