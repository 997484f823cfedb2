//! [`Storage`] over any `object_store` backend, and opening one from a URL or a path.

use std::ops::Range;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{
    GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt, PutMode, PutOptions,
    PutPayload,
};

use super::{DirListing, DynStorage, ListedObject, PutOutcome, Storage};
use crate::error::{Error, Result};

/// Backend options given when opening (credentials, endpoints, region...), as the
/// backend's own configuration keys (for S3 e.g. `aws_endpoint`, `aws_region`,
/// `aws_access_key_id`, `aws_allow_http`). They are never stored in the repository.
pub type StorageOptions = Vec<(String, String)>;

/// [`Storage`] implemented by an `object_store` backend, rooted at a prefix.
#[derive(Debug)]
pub struct ObjectStoreStorage {
    store: Arc<dyn ObjectStore>,
    root: StorePath,
    location: String,
}

impl ObjectStoreStorage {
    /// Wraps a backend; every key is resolved below `root`.
    pub fn new(store: Arc<dyn ObjectStore>, root: StorePath, location: impl Into<String>) -> Self {
        ObjectStoreStorage {
            store,
            root,
            location: location.into(),
        }
    }

    fn path(&self, key: &str) -> StorePath {
        let mut parts: Vec<object_store::path::PathPart<'_>> = self.root.parts().collect();
        parts.extend(
            key.split('/')
                .filter(|s| !s.is_empty())
                .map(object_store::path::PathPart::from),
        );
        StorePath::from_iter(parts)
    }

    fn relative(&self, path: &StorePath) -> String {
        let root_len = self.root.parts().count();
        path.parts()
            .skip(root_len)
            .map(|p| p.as_ref().to_string())
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Reads an object or a range of it. Local files come back from the backend as an open
    /// file: they are read straight into an uninitialised buffer of the exact size (one pass
    /// over the bytes, where the generic path first zero-fills the buffer).
    async fn read(&self, key: &str, range: Option<Range<u64>>) -> Result<Bytes> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..Default::default()
        };
        let result = self
            .store
            .get_opts(&self.path(key), options)
            .await
            .map_err(|e| self.error(key, e))?;
        let range = result.range.clone();
        match result.payload {
            GetResultPayload::File(file, path) if super::inline_io_allowed() => {
                read_file_range(file, range).map_err(|source| Error::Io { path, source })
            }
            GetResultPayload::File(file, path) => {
                let read = tokio::task::spawn_blocking(move || read_file_range(file, range))
                    .await
                    .map_err(|e| Error::Io {
                        path: path.clone(),
                        source: std::io::Error::other(e.to_string()),
                    })?;
                read.map_err(|source| Error::Io { path, source })
            }
            GetResultPayload::Stream(_) => result.bytes().await.map_err(|e| self.error(key, e)),
        }
    }

    fn error(&self, key: &str, source: object_store::Error) -> Error {
        match source {
            object_store::Error::NotFound { .. } => Error::ObjectMissing {
                key: key.to_string(),
            },
            source => Error::Storage {
                key: key.to_string(),
                source,
            },
        }
    }
}

#[async_trait]
impl Storage for ObjectStoreStorage {
    async fn get(&self, key: &str) -> Result<Bytes> {
        self.read(key, None).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        if range.start == range.end {
            return Ok(Bytes::new());
        }
        self.read(key, Some(range)).await
    }

    async fn get_ranges(&self, key: &str, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.store
            .get_ranges(&self.path(key), ranges)
            .await
            .map_err(|e| self.error(key, e))
    }

    async fn head(&self, key: &str) -> Result<Option<u64>> {
        match self.store.head(&self.path(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(key, e)),
        }
    }

    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.store
            .put(&self.path(key), PutPayload::from(bytes))
            .await
            .map_err(|e| self.error(key, e))?;
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<PutOutcome> {
        let options = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&self.path(key), PutPayload::from(bytes), options)
            .await
        {
            Ok(_) => Ok(PutOutcome::Created),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(PutOutcome::AlreadyExists),
            Err(e) => Err(self.error(key, e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>> {
        let path = self.path(prefix);
        let found: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&path))
            .try_collect()
            .await
            .map_err(|e| self.error(prefix, e))?;
        Ok(found
            .into_iter()
            .map(|m| ListedObject {
                key: self.relative(&m.location),
                size: m.size,
                last_modified_us: m.last_modified.timestamp_micros(),
            })
            .collect())
    }

    async fn list_dir(&self, prefix: &str) -> Result<DirListing> {
        let path = self.path(prefix);
        let listed = self
            .store
            .list_with_delimiter(Some(&path))
            .await
            .map_err(|e| self.error(prefix, e))?;
        Ok(DirListing {
            prefixes: listed
                .common_prefixes
                .iter()
                .map(|p| self.relative(p))
                .collect(),
            objects: listed
                .objects
                .into_iter()
                .map(|m| ListedObject {
                    key: self.relative(&m.location),
                    size: m.size,
                    last_modified_us: m.last_modified.timestamp_micros(),
                })
                .collect(),
        })
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(key, e)),
        }
    }

    fn location(&self) -> &str {
        &self.location
    }
}

/// Reads `range` of an open file into a buffer of exactly that size, without zero-filling it.
fn read_file_range(mut file: std::fs::File, range: Range<u64>) -> std::io::Result<Bytes> {
    use std::io::{Read, Seek, SeekFrom};
    let len = usize::try_from(range.end - range.start)
        .map_err(|_| std::io::Error::other("range does not fit in memory"))?;
    file.seek(SeekFrom::Start(range.start))?;
    let mut buf = Vec::with_capacity(len);
    file.take(len as u64).read_to_end(&mut buf)?;
    Ok(Bytes::from(buf))
}

/// Opens storage from a location:
///
/// - a plain path or `file:///abs/path`: an existing local directory (see [`create_storage`]);
/// - `memory://`: a fresh in-memory store (for tests and experiments);
/// - `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`: cloud object stores,
///   configured from the usual environment variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`) and then
///   from `options`.
///
/// S3 (and S3-compatible servers, set with the `aws_endpoint` option or `AWS_ENDPOINT`) must
/// support conditional writes: [`Storage::put_if_absent`] is sent with `If-None-Match: *`,
/// which floe enables by default (the `aws_conditional_put` option can still override it,
/// and commits then fail).
pub fn open_storage(location: &str, options: &StorageOptions) -> Result<DynStorage> {
    open_with(location, options, false)
}

/// Like [`open_storage`], but creates a local directory (and its parents) when it is missing.
/// Used to create repositories; opening never creates anything.
pub fn create_storage(location: &str, options: &StorageOptions) -> Result<DynStorage> {
    open_with(location, options, true)
}

fn open_with(location: &str, options: &StorageOptions, create: bool) -> Result<DynStorage> {
    let invalid = |reason: String| Error::InvalidLocation {
        location: location.to_string(),
        reason,
    };
    let Some((scheme, _)) = location.split_once("://") else {
        return open_local(location, std::path::Path::new(location), create);
    };
    let url = url::Url::parse(location).map_err(|e| invalid(e.to_string()))?;
    let root = StorePath::from_url_path(url.path()).map_err(|e| invalid(e.to_string()))?;
    let store: Arc<dyn ObjectStore> = match scheme {
        "memory" => Arc::new(object_store::memory::InMemory::new()),
        "file" => {
            let path = url
                .to_file_path()
                .map_err(|_| invalid("not an absolute file:// URL".into()))?;
            return open_local(location, &path, create);
        }
        "s3" | "s3a" => {
            // Create-if-absent must be atomic: use S3's conditional writes (`If-None-Match: *`)
            // whatever `AWS_CONDITIONAL_PUT` says; only an explicit option overrides it.
            let mut builder = object_store::aws::AmazonS3Builder::from_env()
                .with_url(location)
                .with_conditional_put(object_store::aws::S3ConditionalPut::ETagMatch);
            for (k, v) in options {
                let key = object_store::aws::AmazonS3ConfigKey::from_str(k)
                    .map_err(|_| invalid(format!("unknown S3 option `{k}`")))?;
                builder = builder.with_config(key, v);
            }
            Arc::new(builder.build().map_err(|e| invalid(e.to_string()))?)
        }
        "gs" => {
            let mut builder =
                object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(location);
            for (k, v) in options {
                let key = object_store::gcp::GoogleConfigKey::from_str(k)
                    .map_err(|_| invalid(format!("unknown GCS option `{k}`")))?;
                builder = builder.with_config(key, v);
            }
            Arc::new(builder.build().map_err(|e| invalid(e.to_string()))?)
        }
        "az" | "azure" | "abfs" | "abfss" => {
            let mut builder =
                object_store::azure::MicrosoftAzureBuilder::from_env().with_url(location);
            for (k, v) in options {
                let key = object_store::azure::AzureConfigKey::from_str(k)
                    .map_err(|_| invalid(format!("unknown Azure option `{k}`")))?;
                builder = builder.with_config(key, v);
            }
            Arc::new(builder.build().map_err(|e| invalid(e.to_string()))?)
        }
        other => {
            return Err(invalid(format!(
            "unsupported scheme `{other}` (use a path, file://, memory://, s3://, gs:// or az://)"
        )))
        }
    };
    Ok(Arc::new(ObjectStoreStorage::new(store, root, location)))
}

fn open_local(location: &str, path: &std::path::Path, create: bool) -> Result<DynStorage> {
    if create {
        std::fs::create_dir_all(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
    } else if !path.is_dir() {
        return Err(Error::InvalidLocation {
            location: location.to_string(),
            reason: "no such directory".into(),
        });
    }
    let store = object_store::local::LocalFileSystem::new_with_prefix(path).map_err(|e| {
        Error::InvalidLocation {
            location: location.to_string(),
            reason: e.to_string(),
        }
    })?;
    Ok(Arc::new(ObjectStoreStorage::new(
        Arc::new(store),
        StorePath::default(),
        location,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The storage conformance suite (every operation, concurrent create-if-absent) runs
    // against memory, a local directory and S3 in tests/s3.rs; here only how locations open.

    #[tokio::test]
    async fn local_locations_open_but_never_create() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        assert!(
            open_storage(path.to_str().unwrap(), &vec![]).is_err(),
            "opening never creates"
        );
        let created = create_storage(path.to_str().unwrap(), &vec![]).unwrap();
        created.put("a/c", Bytes::from_static(b"1")).await.unwrap();
        let url = url::Url::from_file_path(&path).unwrap();
        let reopened = open_storage(url.as_str(), &vec![]).unwrap();
        assert_eq!(reopened.get("a/c").await.unwrap(), Bytes::from_static(b"1"));
    }

    #[test]
    fn bad_locations_are_explained() {
        let err = open_storage("ftp://x/y", &vec![]).unwrap_err();
        assert!(err.to_string().contains("unsupported scheme"), "{err}");
        let err = open_storage(
            "s3://bucket/p",
            &vec![("no_such_option".into(), "1".into())],
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown S3 option"), "{err}");
        assert!(open_storage(
            "s3://bucket/p",
            &vec![("aws_region".into(), "us-east-1".into())]
        )
        .is_ok());
    }
}
