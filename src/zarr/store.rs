//! The Zarr v3 key-value view of a session: `zarr.json` and chunk keys, read, written,
//! deleted and listed.
//!
//! Keys are relative to the hierarchy root (`zarr.json`, `a/zarr.json`, `a/c/0/1`) and are
//! resolved as described in [`super::resolve`]. Keys that cannot name anything (malformed,
//! unknown array, bad coordinates, outside the chunk grid) read as absent and are refused by
//! writes with [`Error::InvalidKey`]. Listing lives in [`super::listing`].

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::path::NodePath;
use crate::repo::Session;

use super::consolidated::{consolidated_document, plain_document, render, without_consolidated};
use super::group_documents::GroupDocuments;
use super::metadata::NodeMetadata;
use super::resolve::{resolve_key, KeyTarget, Unresolved};

/// A byte range of a stored value.
///
/// Ranges follow HTTP semantics: an end past the value is clamped to its size, a suffix longer
/// than the value returns the whole value, and a start past the end of the value is an error
/// ([`Error::InvalidByteRange`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// Bytes `start..end` (end exclusive).
    Bounded {
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
    },
    /// From this offset to the end.
    FromOffset(u64),
    /// The last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// The absolute range within a value of `size` bytes, `None` when it cannot be satisfied
    /// (a start past the end, or a start after the end).
    pub fn resolve(&self, size: u64) -> Option<Range<u64>> {
        match *self {
            ByteRange::Bounded { start, end } => {
                (start <= end && start <= size).then(|| start..end.min(size))
            }
            ByteRange::FromOffset(start) => (start <= size).then_some(start..size),
            ByteRange::Suffix(n) => Some(size.saturating_sub(n)..size),
        }
    }

    fn unsatisfiable(&self, key: &str, size: u64) -> Error {
        let (start, end) = match *self {
            ByteRange::Bounded { start, end } => (start, end),
            ByteRange::FromOffset(start) => (start, start),
            ByteRange::Suffix(n) => (size.saturating_sub(n), size),
        };
        Error::InvalidByteRange {
            key: key.to_string(),
            start,
            end,
            size,
        }
    }
}

impl From<Range<u64>> for ByteRange {
    fn from(range: Range<u64>) -> Self {
        ByteRange::Bounded {
            start: range.start,
            end: range.end,
        }
    }
}

impl From<std::ops::RangeFrom<u64>> for ByteRange {
    fn from(range: std::ops::RangeFrom<u64>) -> Self {
        ByteRange::FromOffset(range.start)
    }
}

/// A session seen as a Zarr v3 key-value store.
///
/// Cheap to clone; clones share the session (and its uncommitted changes). Reads see the
/// session's current state, writes go into the session and become visible to others when the
/// session commits.
///
/// For read-only sessions every group's `zarr.json` carries consolidated metadata by default
/// (see [`ZarrStore::with_consolidated`]).
#[derive(Clone, Debug)]
pub struct ZarrStore {
    session: Session,
    consolidated: bool,
    /// The rendered consolidated group documents of a read-only session (its snapshot never
    /// changes); shared by clones.
    documents: Arc<GroupDocuments>,
}

impl Session {
    /// This session as a Zarr v3 key-value store (see [`ZarrStore::new`]).
    pub fn zarr(&self) -> ZarrStore {
        ZarrStore::new(self.clone())
    }
}

impl ZarrStore {
    /// The Zarr view of `session`. Consolidated metadata is on for read-only sessions and off
    /// for writable ones.
    pub fn new(session: Session) -> Self {
        let consolidated = !session.is_writable();
        ZarrStore {
            session,
            consolidated,
            documents: Arc::default(),
        }
    }

    /// Turns consolidated metadata on or off. When on, the `zarr.json` of every group (the
    /// root's `zarr.json`, `ds/zarr.json`, ...) is the group document with a
    /// `consolidated_metadata` block in the form zarr-python 3 writes and reads: every node
    /// below that group, keyed by its path relative to the group (`sub`, `sub/u`), nested
    /// groups with an empty block of their own; when off, the plain group document. Array
    /// documents are the same either way.
    ///
    /// On a read-only session rendered documents are kept (the root's always, other groups'
    /// within a byte budget proportional to the snapshot's metadata), so repeated requests do
    /// not render them again. On a writable session they are rendered at each request, from
    /// the session's current state.
    pub fn with_consolidated(mut self, consolidated: bool) -> Self {
        self.consolidated = consolidated;
        self
    }

    /// True when group `zarr.json` documents carry consolidated metadata.
    pub fn is_consolidated(&self) -> bool {
        self.consolidated
    }

    /// The session behind this store.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// True when writes are allowed (the session is writable).
    pub fn is_writable(&self) -> bool {
        self.session.is_writable()
    }

    // ---- reads ------------------------------------------------------------------------

    /// The value of `key`, `None` when absent or when the key cannot name anything.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        match resolve_key(&self.session, key)? {
            Err(_) => Ok(None),
            Ok(KeyTarget::Metadata(path)) => self.metadata_bytes(&path),
            Ok(KeyTarget::Chunk { array, coords }) => self.session.get_chunk(&array, &coords).await,
        }
    }

    /// A byte range of the value of `key`, `None` when the key is absent.
    ///
    /// Errors with [`Error::InvalidByteRange`] when the range starts past the end of the value.
    pub async fn get_range(&self, key: &str, range: ByteRange) -> Result<Option<Bytes>> {
        match resolve_key(&self.session, key)? {
            Err(_) => Ok(None),
            Ok(KeyTarget::Metadata(path)) => {
                let Some(bytes) = self.metadata_bytes(&path)? else {
                    return Ok(None);
                };
                let size = bytes.len() as u64;
                let r = range
                    .resolve(size)
                    .ok_or_else(|| range.unsatisfiable(key, size))?;
                Ok(Some(bytes.slice(r.start as usize..r.end as usize)))
            }
            Ok(KeyTarget::Chunk { array, coords }) => {
                let Some(size) = self.session.chunk_size(&array, &coords).await? else {
                    return Ok(None);
                };
                let r = range
                    .resolve(size)
                    .ok_or_else(|| range.unsatisfiable(key, size))?;
                self.session
                    .get_chunk_range(&array, &coords, r)
                    .await
                    .map_err(|e| match e {
                        Error::InvalidByteRange {
                            start, end, size, ..
                        } => Error::InvalidByteRange {
                            key: key.to_string(),
                            start,
                            end,
                            size,
                        },
                        other => other,
                    })
            }
        }
    }

    /// Several byte ranges of the value of `key` at once, `None` when the key is absent.
    /// Ranges of a chunk stored in an object are fetched together (nearby ranges coalesced).
    ///
    /// Errors with [`Error::InvalidByteRange`] when a range starts past the end of the value.
    pub async fn get_ranges(&self, key: &str, ranges: &[ByteRange]) -> Result<Option<Vec<Bytes>>> {
        let resolve = |size: u64| -> Result<Vec<Range<u64>>> {
            ranges
                .iter()
                .map(|r| r.resolve(size).ok_or_else(|| r.unsatisfiable(key, size)))
                .collect()
        };
        match resolve_key(&self.session, key)? {
            Err(_) => Ok(None),
            Ok(KeyTarget::Metadata(path)) => {
                let Some(bytes) = self.metadata_bytes(&path)? else {
                    return Ok(None);
                };
                let wanted = resolve(bytes.len() as u64)?;
                Ok(Some(
                    wanted
                        .into_iter()
                        .map(|r| bytes.slice(r.start as usize..r.end as usize))
                        .collect(),
                ))
            }
            Ok(KeyTarget::Chunk { array, coords }) => {
                self.session
                    .get_chunk_ranges(&array, &coords, resolve)
                    .await
            }
        }
    }

    /// The size in bytes of the value of `key` (the length [`ZarrStore::get`] returns), `None`
    /// when absent.
    pub async fn size(&self, key: &str) -> Result<Option<u64>> {
        match resolve_key(&self.session, key)? {
            Err(_) => Ok(None),
            Ok(KeyTarget::Metadata(path)) => {
                Ok(self.metadata_bytes(&path)?.map(|b| b.len() as u64))
            }
            Ok(KeyTarget::Chunk { array, coords }) => {
                self.session.chunk_size(&array, &coords).await
            }
        }
    }

    /// True when `key` has a value.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.size(key).await?.is_some())
    }

    /// The `zarr.json` bytes of the node at `path` as served (with consolidated metadata for
    /// groups when enabled).
    pub(crate) fn metadata_bytes(&self, path: &NodePath) -> Result<Option<Bytes>> {
        let Some(node) = self.session.node(path)? else {
            return Ok(None);
        };
        if !self.consolidated || node.metadata.geometry().is_some() {
            return Ok(Some(render(plain_document(&node.metadata))));
        }
        let rendering = || {
            let descendants = self.session.list_descendants(path)?;
            Ok(render(consolidated_document(
                path,
                &node.metadata,
                &descendants,
            )))
        };
        if self.session.is_writable() {
            return rendering().map(Some);
        }
        self.documents
            .get_or_render(&self.session, path, rendering)
            .map(Some)
    }

    // ---- writes -----------------------------------------------------------------------

    /// Writes the value of `key`: a `zarr.json` creates or replaces a node (a consolidated
    /// metadata block in a group document is dropped: floe derives it), a chunk key stores
    /// the chunk's encoded bytes.
    ///
    /// Errors: [`Error::ReadOnlySession`] on read-only sessions, [`Error::InvalidKey`] for keys
    /// that cannot name a node or a chunk inside an existing array's grid,
    /// [`Error::InvalidMetadata`] / [`Error::InvalidHierarchy`] for bad `zarr.json` documents.
    pub async fn set(&self, key: &str, value: Bytes) -> Result<()> {
        self.session.check_writable()?;
        match self.resolve_for_write(key)? {
            KeyTarget::Metadata(path) => {
                let metadata = without_consolidated(NodeMetadata::parse(&path, &value)?);
                self.session.set_metadata(&path, metadata).await
            }
            KeyTarget::Chunk { array, coords } => {
                self.session.set_chunk(&array, &coords, value).await
            }
        }
    }

    /// Deletes `key`: a `zarr.json` deletes the node and everything below it, a chunk key the
    /// chunk. Deleting an absent key (or a well-formed key that cannot exist here) succeeds.
    ///
    /// Errors: [`Error::ReadOnlySession`] on read-only sessions, [`Error::InvalidKey`] for
    /// malformed keys (empty segments, `..`, leading `/`, too long).
    pub async fn delete(&self, key: &str) -> Result<()> {
        self.session.check_writable()?;
        match resolve_key(&self.session, key)? {
            Err(Unresolved {
                reason,
                malformed: true,
            }) => Err(Error::invalid_key(key, reason)),
            Err(_) => Ok(()),
            Ok(KeyTarget::Metadata(path)) => {
                if self.session.node(&path)?.is_some() {
                    self.session.delete_node(&path).await?;
                }
                Ok(())
            }
            Ok(KeyTarget::Chunk { array, coords }) => {
                if self.session.chunk_size(&array, &coords).await?.is_some() {
                    self.session.delete_chunk(&array, &coords).await?;
                }
                Ok(())
            }
        }
    }

    /// Deletes every key starting with `prefix` (`""` or ending in `/`; `"/"` is `""`, as for
    /// [`ZarrStore::list_prefix`]): nodes inside the prefix are deleted whole, chunks of an
    /// array whose key space contains the prefix one by one.
    ///
    /// Errors: [`Error::ReadOnlySession`] on read-only sessions, [`Error::InvalidKey`] for
    /// other prefixes.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        self.session.check_writable()?;
        let prefix = super::resolve::check_prefix(prefix)?;
        for node in self.session.list_nodes()? {
            let node_prefix = node.path.key_prefix();
            if node_prefix.starts_with(prefix) {
                // An ancestor deleted earlier may have taken this node with it.
                if self.session.node(&node.path)?.is_some() {
                    self.session.delete_node(&node.path).await?;
                }
            } else if prefix.starts_with(&node_prefix) {
                if let Some(geometry) = node.metadata.geometry() {
                    for coords in self.session.list_chunks(&node.path).await? {
                        let key = super::keys::chunk_key(&node.path, geometry, &coords);
                        if key.starts_with(prefix) {
                            self.session.delete_chunk(&node.path, &coords).await?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn resolve_for_write(&self, key: &str) -> Result<KeyTarget> {
        resolve_key(&self.session, key)?.map_err(|u| Error::invalid_key(key, u.reason))
    }
}
