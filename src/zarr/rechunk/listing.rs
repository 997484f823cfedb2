//! Listing the keys of a [`RechunkedStore`]: the wrapped store's keys, with the chunk keys of
//! every requested array replaced by the keys of its requested chunks that overlap at least
//! one stored chunk. Prefixes follow [`ZarrStore::list_prefix`](crate::ZarrStore::list_prefix).

use std::collections::BTreeSet;

use crate::error::Result;
use crate::zarr::keys::chunk_key;
use crate::zarr::resolve::check_prefix;
use crate::zarr::resolve::METADATA_FILE;

use super::RechunkedStore;

/// Most view chunks a listing enumerates for one array.
pub const MAX_LISTED_VIEW_CHUNKS: u64 = 1 << 20;

impl RechunkedStore {
    /// True when `key` (or prefix) lies inside a requested array's chunk key space (below the
    /// array, other than its `zarr.json`).
    fn in_view_chunk_space(&self, key: &str) -> bool {
        self.inner.arrays.iter().any(|array| {
            let prefix = array.path.key_prefix();
            key.len() > prefix.len()
                && key.starts_with(&prefix)
                && &key[prefix.len()..] != METADATA_FILE
        })
    }

    /// The requested-chunk keys of every requested array that start with `prefix`. With
    /// `only_inside`, arrays whose directory lies below `prefix` are skipped (a one-level
    /// listing shows them as a child prefix, which the wrapped store already lists).
    ///
    /// Refuses ([`crate::Error::InvalidRechunk`]) to enumerate an array whose view has more
    /// than [`MAX_LISTED_VIEW_CHUNKS`] chunks: a tiny requested chunk shape must not make a
    /// listing hold billions of keys.
    async fn view_chunk_keys(&self, prefix: &str, only_inside: bool) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        for array in &self.inner.arrays {
            let array_prefix = array.path.key_prefix();
            let inside = prefix.starts_with(&array_prefix);
            if !(inside || (!only_inside && array_prefix.starts_with(prefix))) {
                continue;
            }
            let geometry = array.view_geometry();
            let chunks = geometry
                .grid_shape()
                .iter()
                .try_fold(1u64, |n, g| n.checked_mul(*g))
                .unwrap_or(u64::MAX);
            if chunks > MAX_LISTED_VIEW_CHUNKS {
                return Err(crate::Error::InvalidRechunk {
                    request: self.inner.request.to_string(),
                    reason: format!(
                        "listing `{}` would enumerate {chunks} view chunks (more than \
                         {MAX_LISTED_VIEW_CHUNKS}): use consolidated metadata, or ask for \
                         keys directly",
                        array.path
                    ),
                });
            }
            for coords in array.chunk_coords(&self.inner.store).await? {
                let key = chunk_key(&array.path, geometry, &coords);
                if key.starts_with(prefix) {
                    keys.push(key);
                }
            }
        }
        Ok(keys)
    }

    /// Every key of the view, sorted.
    pub async fn list(&self) -> Result<Vec<String>> {
        self.list_prefix("").await
    }

    /// Every key of the view starting with `prefix` (`""` or ending with `/`; `"/"` is `""`),
    /// sorted.
    ///
    /// Errors with [`crate::Error::InvalidKey`] for other prefixes.
    pub async fn list_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        let prefix = check_prefix(prefix)?;
        let mut keys = self.inner.store.list_prefix(prefix).await?;
        keys.retain(|k| !self.in_view_chunk_space(k));
        keys.extend(self.view_chunk_keys(prefix, false).await?);
        keys.sort();
        Ok(keys)
    }

    /// `(keys, prefixes)`: the keys of the view directly inside `prefix` (`""` or ending with
    /// `/`; `"/"` is `""`) and its child prefixes (each ending with `/`), both sorted.
    ///
    /// Errors with [`crate::Error::InvalidKey`] for other prefixes.
    pub async fn list_dir(&self, prefix: &str) -> Result<(Vec<String>, Vec<String>)> {
        let prefix = check_prefix(prefix)?;
        let (keys, prefixes) = self.inner.store.list_dir(prefix).await?;
        let mut keys: BTreeSet<String> = keys
            .into_iter()
            .filter(|k| !self.in_view_chunk_space(k))
            .collect();
        let mut prefixes: BTreeSet<String> = prefixes
            .into_iter()
            .filter(|p| !self.in_view_chunk_space(p))
            .collect();
        for key in self.view_chunk_keys(prefix, true).await? {
            let rest = &key[prefix.len()..];
            match rest.find('/') {
                Some(i) => {
                    prefixes.insert(format!("{prefix}{}", &rest[..=i]));
                }
                None => {
                    keys.insert(key);
                }
            }
        }
        Ok((keys.into_iter().collect(), prefixes.into_iter().collect()))
    }
}
