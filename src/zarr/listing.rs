//! Listing the keys of a [`ZarrStore`] with Zarr semantics.
//!
//! Every node contributes its `zarr.json`; every array contributes the key of each stored
//! chunk inside its current grid, in the array's chunk key encoding. Prefixes are `""` (the
//! whole hierarchy, also spelled `"/"`, see [`check_prefix`]) or end with `/`. Results
//! are sorted.

use std::collections::BTreeSet;

use crate::error::Result;
use crate::repo::NodeInfo;

use super::keys::chunk_key;
use super::metadata::ArrayGeometry;
use super::resolve::check_prefix;
use super::store::ZarrStore;

/// How a node's key space relates to a listing prefix.
enum Overlap<'a> {
    /// Every key of the node starts with the prefix.
    Inside,
    /// The prefix lies strictly inside the key space of this array: some chunk keys may match.
    ChunksOf(&'a ArrayGeometry),
    /// No key of the node can match.
    Disjoint,
}

fn overlap<'a>(node: &'a NodeInfo, prefix: &str) -> Overlap<'a> {
    let node_prefix = node.path.key_prefix();
    if node_prefix.starts_with(prefix) {
        Overlap::Inside
    } else if prefix.starts_with(&node_prefix) {
        node.metadata
            .geometry()
            .map_or(Overlap::Disjoint, Overlap::ChunksOf)
    } else {
        Overlap::Disjoint
    }
}

impl ZarrStore {
    async fn chunk_keys(&self, node: &NodeInfo, geometry: &ArrayGeometry) -> Result<Vec<String>> {
        Ok(self
            .session()
            .list_chunks(&node.path)
            .await?
            .iter()
            .map(|coords| chunk_key(&node.path, geometry, coords))
            .collect())
    }

    /// Every key of the hierarchy, sorted.
    pub async fn list(&self) -> Result<Vec<String>> {
        self.list_prefix("").await
    }

    /// Every key starting with `prefix` (`""` or ending with `/`; `"/"` is `""`, the root as
    /// zarr-python's stateful test spells it), sorted.
    ///
    /// Errors with [`Error::InvalidKey`](crate::Error::InvalidKey) for other prefixes, longer ones starting with `/`
    /// (`"/a/"`) included: keys never start with `/`, and zarr-python's stores disagree on
    /// what such a prefix means (spec/zarr.md §2).
    pub async fn list_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        let prefix = check_prefix(prefix)?;
        let mut keys = Vec::new();
        for node in self.session().list_nodes()? {
            match overlap(&node, prefix) {
                Overlap::Disjoint => {}
                Overlap::Inside => {
                    keys.push(node.path.metadata_key());
                    if let Some(geometry) = node.metadata.geometry() {
                        keys.extend(self.chunk_keys(&node, geometry).await?);
                    }
                }
                Overlap::ChunksOf(geometry) => {
                    let chunk_keys = self.chunk_keys(&node, geometry).await?;
                    keys.extend(chunk_keys.into_iter().filter(|k| k.starts_with(prefix)));
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// `(keys, prefixes)`: the keys directly inside `prefix` (`""` or ending with `/`; `"/"`
    /// is `""`) and its child prefixes (each ending with `/`), both sorted.
    ///
    /// Nodes below the prefix are reported as child prefixes without listing their chunks.
    /// Errors with [`Error::InvalidKey`](crate::Error::InvalidKey) for other prefixes.
    pub async fn list_dir(&self, prefix: &str) -> Result<(Vec<String>, Vec<String>)> {
        let prefix = check_prefix(prefix)?;
        let mut keys = BTreeSet::new();
        let mut prefixes = BTreeSet::new();
        let mut place = |key: String| {
            let rest = &key[prefix.len()..];
            match rest.find('/') {
                Some(i) => {
                    prefixes.insert(format!("{prefix}{}", &rest[..=i]));
                }
                None => {
                    keys.insert(key);
                }
            }
        };
        for node in self.session().list_nodes()? {
            let node_prefix = node.path.key_prefix();
            match overlap(&node, prefix) {
                Overlap::Disjoint => {}
                Overlap::Inside if node_prefix != prefix => {
                    // The node lives below the prefix: it shows as (part of) a child prefix.
                    place(node.path.metadata_key());
                }
                Overlap::Inside => {
                    place(node.path.metadata_key());
                    if let Some(geometry) = node.metadata.geometry() {
                        self.chunk_keys(&node, geometry)
                            .await?
                            .into_iter()
                            .for_each(&mut place);
                    }
                }
                Overlap::ChunksOf(geometry) => {
                    for key in self.chunk_keys(&node, geometry).await? {
                        if key.starts_with(prefix) {
                            place(key);
                        }
                    }
                }
            }
        }
        Ok((keys.into_iter().collect(), prefixes.into_iter().collect()))
    }

    /// True when no key starts with `prefix` (`""` or ending with `/`; `"/"` is `""`), as
    /// zarr-python's `Store.is_empty` asks. Stops at the first key found: a node inside the
    /// prefix answers without listing any chunk.
    ///
    /// Errors with [`Error::InvalidKey`](crate::Error::InvalidKey) for other prefixes.
    pub async fn is_empty(&self, prefix: &str) -> Result<bool> {
        let prefix = check_prefix(prefix)?;
        for node in self.session().list_nodes()? {
            match overlap(&node, prefix) {
                Overlap::Disjoint => {}
                Overlap::Inside => return Ok(false),
                Overlap::ChunksOf(geometry) => {
                    let chunk_keys = self.chunk_keys(&node, geometry).await?;
                    if chunk_keys.iter().any(|k| k.starts_with(prefix)) {
                        return Ok(false);
                    }
                }
            }
        }
        Ok(true)
    }

    /// The total size in bytes of every key starting with `prefix` (prefixes as
    /// [`ZarrStore::list_prefix`] takes them).
    pub async fn size_prefix(&self, prefix: &str) -> Result<u64> {
        let mut total = 0u64;
        for key in self.list_prefix(prefix).await? {
            total = total.saturating_add(self.size(&key).await?.unwrap_or(0));
        }
        Ok(total)
    }
}
