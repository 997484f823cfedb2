//! fsck of chunk objects: existence and size (one `head` each), the byte range of every native
//! reference, and, when asked, each object read whole against its digest and header.

use std::collections::HashMap;

use futures::stream::{self, StreamExt, TryStreamExt};

use super::{cell, Checker, FsckProblem, ObjectInfo};
use crate::error::{Error, Result};
use crate::format::envelope::{self, ObjectKind, HEADER_LEN};
use crate::format::manifest::{ChunkRef, ManifestEntry};
use crate::id::ChunkObjectId;
use crate::repo::read::loaded::lock;
use crate::repo::read::repository::hex;
use crate::storage::layout;

/// Chunk objects are hashed in blocks of this many bytes, so memory stays bounded by
/// `io_concurrency` blocks whatever the objects' sizes.
const HASH_BLOCK: u64 = 8 << 20;

impl Checker<'_> {
    /// Checks that every native reference of `entries` lies inside its chunk object's payload.
    pub(super) async fn check_ranges(
        &self,
        referrer: &str,
        entries: &[ManifestEntry],
    ) -> Result<()> {
        let mut objects: Vec<ChunkObjectId> = entries
            .iter()
            .filter_map(|(_, r)| match r {
                Some(ChunkRef::Native { object, .. }) => Some(*object),
                _ => None,
            })
            .collect();
        objects.sort();
        objects.dedup();
        // Futures built first, so the caller's future stays provably `Send`.
        let reads: Vec<_> = objects
            .into_iter()
            .map(|object| async move {
                Ok::<_, Error>((object, self.object_size(object, referrer).await?))
            })
            .collect();
        let sizes: HashMap<ChunkObjectId, Option<u64>> = stream::iter(reads)
            .buffer_unordered(self.concurrency)
            .try_collect()
            .await?;
        for (coord, r) in entries {
            let Some(ChunkRef::Native {
                object,
                offset,
                length,
            }) = r
            else {
                continue;
            };
            let Some(Some(size)) = sizes.get(object) else {
                continue;
            };
            let inside = *offset >= HEADER_LEN as u64
                && offset.checked_add(*length).is_some_and(|end| end <= *size);
            if !inside {
                self.problem(FsckProblem::ChunkRefOutOfRange {
                    key: layout::chunk_object_key(object),
                    referenced_by: referrer.to_string(),
                    coord: coord.clone(),
                    offset: *offset,
                    length: *length,
                    object_size: *size,
                });
            }
        }
        Ok(())
    }

    /// The size of a chunk object, from one `head` per run; `None` when it is missing
    /// (reported once, naming `referrer`).
    async fn object_size(&self, id: ChunkObjectId, referrer: &str) -> Result<Option<u64>> {
        let object = cell(&self.objects, &id);
        let info = object
            .get_or_try_init(|| async {
                let key = layout::chunk_object_key(&id);
                let size = {
                    let _permit = self.permit().await;
                    self.storage.head(&key).await?
                };
                match size {
                    Some(_) => self.count(|r| r.chunk_objects += 1),
                    None => self.problem(FsckProblem::Missing {
                        key,
                        referenced_by: referrer.to_string(),
                    }),
                }
                Ok::<_, Error>(ObjectInfo {
                    size,
                    referrer: referrer.to_string(),
                })
            })
            .await?;
        Ok(info.size)
    }

    /// Reads every chunk object found during the walk whole and checks header and digest.
    pub(super) async fn verify_chunk_objects(&self) -> Result<()> {
        let objects: Vec<(ChunkObjectId, u64, String)> = lock(&self.objects)
            .iter()
            .filter_map(|(id, cell)| {
                let info = cell.get()?;
                Some((*id, info.size?, info.referrer.clone()))
            })
            .collect();
        let checks: Vec<_> = objects
            .into_iter()
            .map(|(id, size, referrer)| self.verify_chunk_object(id, size, referrer))
            .collect();
        stream::iter(checks)
            .buffer_unordered(self.concurrency)
            .try_collect()
            .await
    }

    async fn verify_chunk_object(
        &self,
        id: ChunkObjectId,
        size: u64,
        referrer: String,
    ) -> Result<()> {
        let key = layout::chunk_object_key(&id);
        let mut hasher = blake3::Hasher::new();
        let mut header = Ok(0);
        let mut start = 0u64;
        loop {
            let end = size.min(start.saturating_add(HASH_BLOCK));
            let block = {
                let _permit = self.permit().await;
                match self.storage.get_range(&key, start..end).await {
                    Ok(block) => block,
                    Err(Error::ObjectMissing { .. }) => {
                        self.problem(FsckProblem::Missing {
                            key,
                            referenced_by: referrer,
                        });
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
            };
            if start == 0 {
                header = envelope::check_header(&key, &block, ObjectKind::Chunks);
            }
            hasher.update(&block);
            start = end;
            if start >= size {
                break;
            }
        }
        self.count(|r| r.bytes_verified += size);
        let found = hasher.finalize();
        if found.as_bytes() != id.as_bytes() {
            self.problem(FsckProblem::DigestMismatch {
                key,
                found: hex(found.as_bytes()),
            });
            return Ok(());
        }
        match header {
            Ok(0) => Ok(()),
            Ok(encoding) => {
                self.corrupt(
                    &key,
                    format!("payload encoding {encoding}; chunk objects are always raw (0)"),
                );
                Ok(())
            }
            Err(e) => self.absorb(e, &key, &referrer),
        }
    }
}
