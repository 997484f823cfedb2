//! Consolidated group documents of a rechunked view.
//!
//! When the wrapped store consolidates, the `zarr.json` of every group above a requested array
//! lists that array with its view metadata (the requested chunk shape), so a client opening the
//! view at that group (`/main;chunks=ds%2Ft=1,10/ds`) sees the grid whose chunks the view
//! serves. Groups with no requested array below them are answered by the wrapped store: their
//! documents are the same in the view. Rendered documents are kept in the view's
//! [`GroupDocuments`](crate::zarr::group_documents::GroupDocuments).

use bytes::Bytes;

use crate::error::Result;
use crate::format::path::NodePath;
use crate::repo::NodeInfo;
use crate::zarr::consolidated::{consolidated_document, render};
use crate::zarr::resolve::METADATA_FILE;

use super::RechunkedStore;

impl RechunkedStore {
    /// The group whose `zarr.json` is `key`, when the wrapped store consolidates and a requested
    /// array lies below that group (its consolidated block then differs from the stored one).
    pub(super) fn consolidating_group(&self, key: &str) -> Option<NodePath> {
        if !self.inner.store.is_consolidated() {
            return None;
        }
        // `""` for the root's `zarr.json`, `a/b/` for `a/b/zarr.json`.
        let prefix = key.strip_suffix(METADATA_FILE)?;
        if !(prefix.is_empty() || prefix.ends_with('/')) {
            return None;
        }
        let below = self.inner.arrays.iter().any(|array| {
            let array_prefix = array.path.key_prefix();
            array_prefix.len() > prefix.len() && array_prefix.starts_with(prefix)
        });
        if !below {
            return None;
        }
        NodePath::new(prefix.strip_suffix('/').unwrap_or(prefix)).ok()
    }

    /// The consolidated document of the group at `path` with the view metadata of the
    /// requested arrays below it, `None` when no group is there.
    pub(super) fn group_document(&self, path: &NodePath) -> Result<Option<Bytes>> {
        let session = self.inner.store.session();
        let Some(group) = session.node(path)? else {
            return Ok(None);
        };
        if group.metadata.geometry().is_some() {
            // Arrays contain no nodes, so no requested array lies below an array.
            return self.inner.store.metadata_bytes(path);
        }
        let document = self.inner.documents.get_or_render(session, path, || {
            let nodes: Vec<NodeInfo> = session
                .list_descendants(path)?
                .into_iter()
                .map(|node| self.as_viewed(node))
                .collect();
            Ok(render(consolidated_document(path, &group.metadata, &nodes)))
        })?;
        Ok(Some(document))
    }

    /// `node` as the view shows it: with its view metadata when it is a requested array.
    fn as_viewed(&self, node: NodeInfo) -> NodeInfo {
        match self.inner.arrays.iter().find(|a| a.path == node.path) {
            Some(array) => NodeInfo {
                path: node.path,
                metadata: array.view.clone(),
            },
            None => node,
        }
    }
}
