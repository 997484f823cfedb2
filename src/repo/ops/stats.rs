//! Storage statistics: what an array holds, and what a repository is.
//!
//! Committed snapshots keep per-shard counts (chunks, bytes, inline chunks), so the statistics
//! of an array without uncommitted changes cost no manifest read at all.

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::format::manifest::ChunkRef;
use crate::format::path::NodePath;
use crate::format::snapshot::NodeKind;
use crate::repo::read::loaded::lock;
use crate::repo::read::repository::Repository;
use crate::repo::write::pending_chunk::PendingChunk;
use crate::repo::write::session::Session;
use crate::storage::{get_optional, layout};

/// How many chunks an array has stored and how many bytes they take. Every stored chunk is
/// counted in exactly one of `inline_chunks`, `native_chunks` and `virtual_chunks`, so their
/// sum is `chunks_initialized`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArrayStats {
    /// Number of chunks the grid has at the array's current shape.
    pub chunks_total: u64,
    /// Number of stored chunks (chunks never written read as the fill value).
    pub chunks_initialized: u64,
    /// Stored chunks kept inline in the manifest.
    pub inline_chunks: u64,
    /// Stored chunks kept in chunk objects (single chunks or packs).
    pub native_chunks: u64,
    /// Stored chunks that are byte ranges of files outside the repository (virtual).
    pub virtual_chunks: u64,
    /// Sum of the encoded sizes of the stored chunks, in bytes (for a virtual chunk, the
    /// length of its byte range in the outside file).
    pub bytes_stored: u64,
}

/// Facts recorded in a repository's marker object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepositoryInfo {
    /// Where the repository lives, as it was opened.
    pub location: String,
    /// The repository format version it was created with.
    pub format_version: u32,
    /// When it was created, if recorded in a readable form.
    pub created_at: Option<DateTime<Utc>>,
}

impl Session {
    /// Chunk counts and stored bytes of the array at `path`, with uncommitted changes applied.
    ///
    /// Fails with [`Error::NodeNotFound`] when nothing is at `path` and
    /// [`Error::WrongNodeKind`] when it is a group. For an array without uncommitted changes
    /// this reads no manifest; otherwise it looks every stored chunk up.
    pub async fn array_stats(&self, path: &NodePath) -> Result<ArrayStats> {
        let geometry = self.array_geometry(path)?;
        let mut stats = ArrayStats {
            chunks_total: geometry.chunk_count(),
            ..ArrayStats::default()
        };
        let (untouched, base) = {
            let state = lock(&self.inner.state);
            let untouched = !state.changes.nodes.contains_key(path)
                && state
                    .changes
                    .chunks
                    .get(path)
                    .is_none_or(|edits| edits.is_empty());
            (untouched, state.base.clone())
        };
        if untouched {
            if let Some(NodeKind::Array(manifest)) = base.snapshot.node(path).map(|n| &n.kind) {
                for shard in &manifest.shards {
                    stats.chunks_initialized += shard.chunk_count;
                    stats.inline_chunks += shard.inline_count;
                    stats.virtual_chunks += shard.virtual_count;
                    stats.bytes_stored += shard.chunk_bytes;
                }
            }
        } else {
            for coord in self.list_chunks(path).await? {
                let Some(location) = self.chunk_location(path, &coord).await? else {
                    continue;
                };
                stats.chunks_initialized += 1;
                stats.bytes_stored += location.len();
                match location {
                    PendingChunk::Ready(ChunkRef::Inline(_)) => stats.inline_chunks += 1,
                    PendingChunk::Ready(ChunkRef::Virtual(_)) => stats.virtual_chunks += 1,
                    _ => {}
                }
            }
        }
        stats.native_chunks = stats
            .chunks_initialized
            .saturating_sub(stats.inline_chunks)
            .saturating_sub(stats.virtual_chunks);
        Ok(stats)
    }
}

impl Repository {
    /// The facts in the repository's marker object: location, format version, creation time.
    ///
    /// Fails with [`Error::RepositoryNotFound`] if the marker disappeared and
    /// [`Error::CorruptObject`] if it is not readable.
    pub async fn info(&self) -> Result<RepositoryInfo> {
        let location = self.storage().location().to_string();
        let bytes = get_optional(self.storage().as_ref(), layout::REPO_INFO_KEY)
            .await?
            .ok_or_else(|| Error::RepositoryNotFound {
                location: location.clone(),
            })?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::corrupt(layout::REPO_INFO_KEY, format!("not JSON: {e}")))?;
        let format_version = value
            .get("floe_format")
            .and_then(serde_json::Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| Error::corrupt(layout::REPO_INFO_KEY, "missing `floe_format`"))?;
        let created_at = value
            .get("created_at")
            .and_then(serde_json::Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        Ok(RepositoryInfo {
            location,
            format_version,
            created_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::repo::read::settings::RepositorySettings;
    use crate::storage::open_storage;
    use crate::zarr::metadata::tests::array_json;

    #[tokio::test]
    async fn stats_with_and_without_uncommitted_changes() {
        let storage = open_storage("memory://", &vec![]).unwrap();
        let repo = Repository::init(storage, RepositorySettings::default())
            .await
            .unwrap();
        let info = repo.info().await.unwrap();
        assert_eq!(info.format_version, crate::repo::REPOSITORY_FORMAT);
        assert!(info.created_at.is_some());

        let s = repo.writable_session("main").await.unwrap();
        let a = NodePath::new("a").unwrap();
        s.create_group(&NodePath::root(), Default::default())
            .await
            .unwrap();
        s.create_array(&a, array_json(&[10], &[2])).await.unwrap();
        s.set_chunk(&a, &[0], Bytes::from(vec![1u8; 8]))
            .await
            .unwrap();
        s.set_chunk(&a, &[1], Bytes::from(vec![2u8; 2000]))
            .await
            .unwrap();
        s.set_chunk(&a, &[4], Bytes::from(vec![3u8; 3000]))
            .await
            .unwrap();
        let source = std::sync::Arc::new(crate::format::manifest::VirtualSource {
            location: "file:///data/source.bin".into(),
            checksum: None,
        });
        s.set_virtual_chunk(
            &a,
            &[3],
            crate::format::manifest::VirtualChunkRef {
                source,
                offset: 100,
                length: 700,
            },
        )
        .await
        .unwrap();
        let expected = ArrayStats {
            chunks_total: 5,
            chunks_initialized: 4,
            inline_chunks: 1,
            native_chunks: 2,
            virtual_chunks: 1,
            bytes_stored: 5708,
        };
        assert_eq!(s.array_stats(&a).await.unwrap(), expected, "uncommitted");
        s.commit("four chunks", None).await.unwrap();
        assert_eq!(
            s.array_stats(&a).await.unwrap(),
            expected,
            "committed, from shard counts"
        );

        s.resize_array(&a, &[4]).await.unwrap();
        s.delete_chunk(&a, &[0]).await.unwrap();
        let shrunk = ArrayStats {
            chunks_total: 2,
            chunks_initialized: 1,
            inline_chunks: 0,
            native_chunks: 1,
            virtual_chunks: 0,
            bytes_stored: 2000,
        };
        assert_eq!(
            s.array_stats(&a).await.unwrap(),
            shrunk,
            "shrunk and deleted, uncommitted"
        );
        let id = s.commit("shrink", None).await.unwrap();
        let read = repo.session_at_snapshot(id).await.unwrap();
        assert_eq!(
            read.array_stats(&a).await.unwrap(),
            shrunk,
            "shrunk, committed"
        );

        assert!(matches!(
            read.array_stats(&NodePath::root()).await,
            Err(Error::WrongNodeKind { .. })
        ));
        assert!(matches!(
            read.array_stats(&NodePath::new("nope").unwrap()).await,
            Err(Error::NodeNotFound { .. })
        ));
    }
}
