//! The files an import references: their normalised locations, the containers that hold them
//! (declared when missing), and their checksums (one HEAD request per file).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};

use super::super::clients::build_client;
use super::super::containers::VirtualContainer;
use super::super::location::{check_source, CheckedUrl};
use super::summary::ImportedContainer;
use crate::error::{Error, Result};
use crate::format::manifest::{SourceChecksum, VirtualSource};
use crate::repo::Repository;
use crate::storage::StorageOptions;

/// How many HEAD requests are in flight at once.
const CONCURRENT_HEADS: usize = 8;

/// One referenced file, as seen at import.
pub(crate) struct SourceFile {
    /// The normalised location and the checksum found now.
    pub(crate) source: Arc<VirtualSource>,
    /// The file's size now.
    pub(crate) size: u64,
    store: Arc<dyn ObjectStore>,
    path: StorePath,
}

/// Every file of an import, by the URL the references spell.
pub(crate) struct Sources {
    files: HashMap<Arc<str>, SourceFile>,
    /// The container prefix each file would be read through: a declared container holding
    /// it, or the prefix the import declares for it.
    holders: HashMap<Arc<str>, String>,
}

impl Sources {
    /// The file a reference's URL names (every URL given to [`resolve`] has one).
    pub(crate) fn get(&self, url: &str) -> Result<&SourceFile> {
        self.files
            .get(url)
            .ok_or_else(|| Error::VirtualSourceMissing {
                location: url.to_string(),
            })
    }

    /// Reads a byte range of a file directly (to load values, or compare arrays an append
    /// must find unchanged). Fails with [`Error::VirtualSourceChanged`] when the file is
    /// shorter than the range.
    pub(crate) async fn read(&self, url: &str, offset: u64, length: u64) -> Result<Bytes> {
        let file = self.get(url)?;
        let location = &file.source.location;
        let end = offset
            .checked_add(length)
            .filter(|&end| end <= file.size)
            .ok_or_else(|| Error::VirtualSourceChanged {
                location: location.clone(),
            })?;
        file.store
            .get_range(&file.path, offset..end)
            .await
            .map_err(|source| Error::Storage {
                key: location.clone(),
                source,
            })
    }

    /// Declares the containers the files of `urls` (those the import references) need and
    /// that are not declared yet, and returns every container holding them with its count of
    /// files.
    pub(crate) async fn declare(
        &self,
        repo: &Repository,
        urls: &BTreeSet<Arc<str>>,
    ) -> Result<Vec<ImportedContainer>> {
        let declared = repo.virtual_containers().await?;
        let mut per_container: BTreeMap<String, usize> = BTreeMap::new();
        for url in urls {
            let prefix = self
                .holders
                .get(url)
                .ok_or_else(|| Error::VirtualSourceMissing {
                    location: url.to_string(),
                })?;
            *per_container.entry(prefix.clone()).or_default() += 1;
        }
        let new_containers = per_container
            .keys()
            .filter(|prefix| !declared.iter().any(|c| &c.prefix == *prefix))
            .map(|prefix| VirtualContainer::new(prefix, Vec::new()))
            .collect::<Result<Vec<_>>>()?;
        if !new_containers.is_empty() {
            repo.declare_virtual_containers(&new_containers).await?;
        }
        Ok(per_container
            .into_iter()
            .map(|(prefix, sources)| ImportedContainer {
                newly_declared: new_containers.iter().any(|c| c.prefix == prefix),
                prefix,
                sources,
            })
            .collect())
    }
}

/// The container prefix an import derives for a source: its directory for local files and
/// HTTP(S), its bucket (or container) for object stores.
pub(crate) fn derived_prefix(checked: &CheckedUrl) -> String {
    match checked.scheme() {
        "s3" | "gs" | "az" => {
            let host = checked.url.host_str().unwrap_or_default();
            format!("{}://{host}/", checked.scheme())
        }
        _ => match checked.text.rfind('/') {
            Some(i) => checked.text[..=i].to_string(),
            None => checked.text.clone(),
        },
    }
}

/// Drops prefixes that lie below another prefix of the set.
pub(crate) fn outermost(prefixes: BTreeSet<String>) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    for prefix in prefixes {
        // Sorted order puts a prefix before everything below it.
        if !kept.iter().any(|k| prefix.starts_with(k.as_str())) {
            kept.push(prefix);
        }
    }
    kept
}

/// Checks every URL, finds the containers holding them (declared ones, or the prefixes the
/// import will declare: see [`Sources::declare`]), and reads each file's size and checksum
/// (its ETag, or else its modification time) with one HEAD request. Declares nothing.
///
/// Fails with [`Error::VirtualLocationRefused`] for a location that is not an absolute URL or
/// path of a supported scheme (or that tries traversal), [`Error::VirtualSourceMissing`] for a
/// file that does not exist, and [`Error::Storage`] when a HEAD request fails otherwise.
pub(crate) async fn resolve(
    repo: &Repository,
    urls: &BTreeSet<Arc<str>>,
    options: &StorageOptions,
) -> Result<Sources> {
    let checked: Vec<(Arc<str>, CheckedUrl)> = urls
        .iter()
        .map(|url| Ok((url.clone(), check_source(url)?)))
        .collect::<Result<_>>()?;
    let declared = repo.virtual_containers().await?;
    let holder = |text: &str| {
        declared
            .iter()
            .filter(|c| c.holds(text))
            .max_by_key(|c| c.prefix.len())
            .map(|c| c.prefix.clone())
    };
    let wanted: BTreeSet<String> = checked
        .iter()
        .filter(|(_, c)| holder(&c.text).is_none())
        .map(|(_, c)| derived_prefix(c))
        .collect();
    let new_prefixes = outermost(wanted);
    let mut holders: HashMap<Arc<str>, String> = HashMap::new();
    for (url, checked) in &checked {
        let prefix = holder(&checked.text)
            .or_else(|| {
                new_prefixes
                    .iter()
                    .find(|p| checked.text.starts_with(p.as_str()))
                    .cloned()
            })
            .ok_or_else(|| Error::VirtualLocationRefused {
                location: url.to_string(),
                reason: "no container holds it, and none can be derived for it".into(),
            })?;
        holders.insert(url.clone(), prefix);
    }
    // The importer's HEAD requests use its own options only: options a repository declares
    // (endpoints...) must never steer the importer's credentials (see `VirtualAccess`).
    let mut clients: HashMap<String, Arc<dyn ObjectStore>> = HashMap::new();
    for prefix in holders.values() {
        if !clients.contains_key(prefix) {
            clients.insert(prefix.clone(), build_client(prefix, options)?);
        }
    }
    let (clients, holders_ref) = (&clients, &holders);
    let files: Vec<(Arc<str>, SourceFile)> = futures::stream::iter(checked)
        .map(|(url, checked)| async move {
            let store = holders_ref
                .get(&url)
                .and_then(|prefix| clients.get(prefix))
                .cloned()
                .ok_or_else(|| Error::VirtualSourceMissing {
                    location: url.to_string(),
                })?;
            let file = head(store, &checked).await?;
            Ok::<_, Error>((url, file))
        })
        .buffer_unordered(CONCURRENT_HEADS)
        .try_collect()
        .await?;
    Ok(Sources {
        files: files.into_iter().collect(),
        holders,
    })
}

/// The object path of a checked location in its container's store (local files by their
/// canonical path, as reads resolve them).
pub(crate) fn object_path(checked: &CheckedUrl) -> Result<StorePath> {
    let location = checked.text.clone();
    let refused = |reason: String| Error::VirtualLocationRefused {
        location: location.clone(),
        reason,
    };
    if checked.scheme() != "file" {
        return StorePath::from_url_path(checked.url.path())
            .map_err(|e| refused(format!("not a valid object path: {e}")));
    }
    let file = checked
        .url
        .to_file_path()
        .map_err(|_| refused("not an absolute file path".into()))?;
    let canonical = match std::fs::canonicalize(&file) {
        Ok(path) => path,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::VirtualSourceMissing {
                location: location.clone(),
            })
        }
        Err(source) => return Err(Error::Io { path: file, source }),
    };
    StorePath::from_absolute_path(&canonical)
        .map_err(|e| refused(format!("not a valid file path: {e}")))
}

async fn head(store: Arc<dyn ObjectStore>, checked: &CheckedUrl) -> Result<SourceFile> {
    let location = checked.text.clone();
    let path = object_path(checked)?;
    let meta = match store.head(&path).await {
        Ok(meta) => meta,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(Error::VirtualSourceMissing { location })
        }
        Err(source) => {
            return Err(Error::Storage {
                key: location,
                source,
            })
        }
    };
    let checksum = match meta.e_tag {
        Some(tag) => SourceChecksum::ETag(tag),
        None => SourceChecksum::LastModified(meta.last_modified.timestamp()),
    };
    Ok(SourceFile {
        source: Arc::new(VirtualSource {
            location,
            checksum: Some(checksum),
        }),
        size: meta.size,
        store,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_directories_or_buckets_and_nested_ones_merge() {
        let prefix = |url: &str| derived_prefix(&check_source(url).unwrap());
        assert_eq!(prefix("/data/day1.nc"), "file:///data/");
        assert_eq!(prefix("file:///data/sub/x.nc"), "file:///data/sub/");
        assert_eq!(prefix("s3://bucket/a/b/x.nc"), "s3://bucket/");
        assert_eq!(prefix("gs://bucket/x.nc"), "gs://bucket/");
        assert_eq!(
            prefix("https://example.org/d/x.nc"),
            "https://example.org/d/"
        );
        let merged = outermost(BTreeSet::from([
            "file:///data/sub/".to_string(),
            "file:///data/".to_string(),
            "file:///data2/".to_string(),
        ]));
        assert_eq!(merged, vec!["file:///data/", "file:///data2/"]);
    }
}
