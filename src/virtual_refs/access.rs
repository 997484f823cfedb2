//! Who may read which virtual chunks: the authorization given when opening, and the per-handle
//! state that applies it (declared containers, object-store clients, request counters).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use object_store::path::Path as StorePath;
use object_store::ObjectStore;

use super::clients::build_client;
use super::containers::VirtualContainer;
use super::location::{check_prefix, check_source, CheckedUrl};
use crate::error::{Error, Result};
use crate::format::manifest::VirtualSource;
use crate::repo::Repository;
use crate::storage::StorageOptions;

/// What a repository handle may read of virtual chunks. Deny by default: an empty
/// `VirtualAccess` (the default) authorizes nothing. Given when opening, with
/// [`Repository::with_virtual_access`]; never stored.
///
/// A source is readable when it lies below
/// - a container declared in the repository and either [`allow_declared`](Self::allow_declared)
///   is set or one of the [`allow`](Self::allow) prefixes covers the source, or
/// - one of the [`allow_undeclared`](Self::allow_undeclared) prefixes (explicitly accepted, read
///   with that prefix as its container).
#[derive(Clone, Default)]
pub struct VirtualAccess {
    allowed: Vec<String>,
    undeclared: Vec<String>,
    allow_declared: bool,
    options: Vec<(String, StorageOptions)>,
}

impl std::fmt::Debug for VirtualAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Option values may be credentials: only their keys are shown.
        let options: Vec<(&str, Vec<&str>)> = self
            .options
            .iter()
            .map(|(p, o)| (p.as_str(), o.iter().map(|(k, _)| k.as_str()).collect()))
            .collect();
        f.debug_struct("VirtualAccess")
            .field("allowed", &self.allowed)
            .field("undeclared", &self.undeclared)
            .field("allow_declared", &self.allow_declared)
            .field("option_keys", &options)
            .finish()
    }
}

impl VirtualAccess {
    /// Authorizes nothing (the default).
    pub fn deny_all() -> Self {
        Self::default()
    }

    /// Authorizes reading sources below `prefix` that also lie in a container declared in the
    /// repository. Fails with [`Error::VirtualLocationRefused`] for a malformed prefix.
    pub fn allow(mut self, prefix: &str) -> Result<Self> {
        self.allowed.push(check_prefix(prefix)?.text);
        Ok(self)
    }

    /// Authorizes reading sources below `prefix` even if no declared container holds them:
    /// `prefix` itself then serves as their container. Fails with
    /// [`Error::VirtualLocationRefused`] for a malformed prefix.
    pub fn allow_undeclared(mut self, prefix: &str) -> Result<Self> {
        self.undeclared.push(check_prefix(prefix)?.text);
        Ok(self)
    }

    /// Authorizes every container declared in the repository.
    pub fn allow_declared(mut self) -> Self {
        self.allow_declared = true;
        self
    }

    /// Object-store options (typically credentials) for the containers whose prefix starts
    /// with `prefix`. They are added after the container's declared options (and win over
    /// them); when several prefixes match, longer ones are applied last. Fails with
    /// [`Error::VirtualLocationRefused`] for a malformed prefix.
    pub fn with_options(mut self, prefix: &str, options: StorageOptions) -> Result<Self> {
        self.options.push((check_prefix(prefix)?.text, options));
        Ok(self)
    }

    /// True when nothing is authorized.
    pub fn is_deny_all(&self) -> bool {
        self.allowed.is_empty() && self.undeclared.is_empty() && !self.allow_declared
    }

    /// The options for `container`: its declared ones, then every matching credential set,
    /// shorter prefixes first.
    fn options_for(&self, container: &VirtualContainer) -> StorageOptions {
        let mut matching: Vec<&(String, StorageOptions)> = self
            .options
            .iter()
            .filter(|(p, _)| container.prefix.starts_with(p.as_str()))
            .collect();
        matching.sort_by_key(|(p, _)| p.len());
        let mut options = container.options.clone();
        for (_, extra) in matching {
            options.extend(extra.iter().cloned());
        }
        options
    }
}

/// Counters of the requests sent to virtual chunk sources by one repository handle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VirtualReadStats {
    /// Ranged GET requests sent (one per coalesced byte range).
    pub requests: u64,
    /// Bytes received by those requests (including gaps read to coalesce ranges).
    pub bytes: u64,
}

/// A source resolved for reading: the client of its container and its path there.
pub(crate) struct ResolvedSource {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) path: StorePath,
}

/// The virtual chunk state of one repository handle.
#[derive(Default)]
pub(crate) struct VirtualReader {
    access: VirtualAccess,
    /// Where verified byte ranges of sources with a checksum are kept, if anywhere.
    pub(crate) cache: Option<Arc<crate::storage::LocalCache>>,
    declared: Mutex<Option<Arc<Vec<VirtualContainer>>>>,
    clients: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
    requests: AtomicU64,
    bytes: AtomicU64,
}

impl std::fmt::Debug for VirtualReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualReader")
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Longest container of `containers` holding `url`.
fn longest<'a>(containers: &'a [VirtualContainer], url: &str) -> Option<&'a VirtualContainer> {
    containers
        .iter()
        .filter(|c| c.holds(url))
        .max_by_key(|c| c.prefix.len())
}

impl VirtualReader {
    fn new(access: VirtualAccess) -> Self {
        VirtualReader {
            access,
            ..Default::default()
        }
    }

    /// Caches the declared containers a read of the configuration just found.
    pub(crate) fn remember_declared(&self, containers: &[VirtualContainer]) {
        *lock(&self.declared) = Some(Arc::new(containers.to_vec()));
    }

    pub(crate) fn count_request(&self, bytes: u64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The container `url` may be read through, or the refusal.
    fn authorize(&self, declared: &[VirtualContainer], url: &str) -> Option<VirtualContainer> {
        let declared_match = longest(declared, url);
        if let Some(container) = declared_match {
            if self.access.allow_declared
                || self
                    .access
                    .allowed
                    .iter()
                    .any(|p| url.starts_with(p.as_str()))
            {
                return Some(container.clone());
            }
        }
        let explicit = self
            .access
            .undeclared
            .iter()
            .filter(|p| url.starts_with(p.as_str()))
            .max_by_key(|p| p.len())?;
        Some(declared_match.cloned().unwrap_or(VirtualContainer {
            prefix: explicit.clone(),
            options: Vec::new(),
        }))
    }

    fn refusal(declared: &[VirtualContainer], location: &str, url: &str) -> Error {
        let hint = match longest(declared, url) {
            Some(container) => format!(
                "the repository declares the container `{p}` for it, but this handle is not \
                 authorized to read it: pass `--allow-virtual {p}` (or `--allow-virtual-declared` \
                 to trust every declared container), or authorize it with VirtualAccess when \
                 opening",
                p = container.prefix
            ),
            None if declared.is_empty() => "the repository declares no virtual chunk container: \
                 declare one with `floe -r REPO container add <prefix>` and pass \
                 `--allow-virtual <prefix>` (or `--allow-virtual-declared`)"
                .to_string(),
            None => format!(
                "no container declared in the repository holds it (declared: {}): declare one \
                 with `floe -r REPO container add <prefix>` and pass `--allow-virtual <prefix>`",
                declared
                    .iter()
                    .map(|c| format!("`{}`", c.prefix))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        Error::VirtualSourceNotAuthorized {
            location: location.to_string(),
            hint,
        }
    }

    fn client(&self, container: &VirtualContainer) -> Result<Arc<dyn ObjectStore>> {
        if let Some(found) = lock(&self.clients).get(&container.prefix) {
            return Ok(found.clone());
        }
        let store = build_client(&container.prefix, &self.access.options_for(container))?;
        Ok(lock(&self.clients)
            .entry(container.prefix.clone())
            .or_insert(store)
            .clone())
    }
}

impl Repository {
    /// This handle with the given authorization to read virtual chunks (replacing any earlier
    /// one). Sessions opened from the returned handle read with it; the handle it was made
    /// from and its sessions keep theirs. Caches of repository objects stay shared.
    pub fn with_virtual_access(self, access: VirtualAccess) -> Repository {
        let cache = self.virtual_reader.cache.clone();
        Repository {
            inner: self.inner,
            virtual_reader: Arc::new(VirtualReader {
                cache,
                ..VirtualReader::new(access)
            }),
        }
    }

    /// This handle with virtual byte ranges kept in `cache` (a persistent local cache, as
    /// `floe serve --cache DIR` uses for repository objects). Only ranges of sources that
    /// carry a checksum are cached, and only after a conditional read proved them current:
    /// such a range can never change. Authorization is still checked on every read, hit or
    /// miss. The authorization given with [`Repository::with_virtual_access`] is kept.
    pub fn with_virtual_cache(self, cache: Arc<crate::storage::LocalCache>) -> Repository {
        Repository {
            inner: self.inner,
            virtual_reader: Arc::new(VirtualReader {
                cache: Some(cache),
                ..VirtualReader::new(self.virtual_reader.access.clone())
            }),
        }
    }

    /// Requests this handle (and its sessions) sent to virtual chunk sources so far.
    pub fn virtual_read_stats(&self) -> VirtualReadStats {
        VirtualReadStats {
            requests: self.virtual_reader.requests.load(Ordering::Relaxed),
            bytes: self.virtual_reader.bytes.load(Ordering::Relaxed),
        }
    }

    /// Checks a source's location and authorization and finds its client and path.
    pub(crate) async fn resolve_virtual(&self, source: &VirtualSource) -> Result<ResolvedSource> {
        let location = &source.location;
        let checked = check_source(location)?;
        let reader = &self.virtual_reader;
        if reader.access.is_deny_all() {
            let declared = self.declared_containers(false).await?;
            return Err(VirtualReader::refusal(&declared, location, &checked.text));
        }
        let mut declared = self.declared_containers(false).await?;
        let mut container = reader.authorize(&declared, &checked.text);
        if container.is_none() {
            // Containers may have been declared since this handle looked.
            declared = self.declared_containers(true).await?;
            container = reader.authorize(&declared, &checked.text);
        }
        let Some(container) = container else {
            return Err(VirtualReader::refusal(&declared, location, &checked.text));
        };
        let store = reader.client(&container)?;
        let path = object_path(location, &checked, &container)?;
        Ok(ResolvedSource { store, path })
    }

    async fn declared_containers(&self, fresh: bool) -> Result<Arc<Vec<VirtualContainer>>> {
        if !fresh {
            if let Some(found) = lock(&self.virtual_reader.declared).clone() {
                return Ok(found);
            }
        }
        let containers = Arc::new(self.virtual_containers().await?);
        Ok(containers)
    }
}

/// The path of a checked source inside its container's store. For local files the path is
/// canonicalised and must still lie inside the container's canonical directory, so a symbolic
/// link cannot lead out of it.
fn object_path(
    location: &str,
    checked: &CheckedUrl,
    container: &VirtualContainer,
) -> Result<StorePath> {
    let refused = |reason: String| Error::VirtualLocationRefused {
        location: location.to_string(),
        reason,
    };
    if checked.scheme() != "file" {
        let path = StorePath::from_url_path(checked.url.path())
            .map_err(|e| refused(format!("not a valid object path: {e}")))?;
        return Ok(path);
    }
    let file = checked
        .url
        .to_file_path()
        .map_err(|_| refused("not an absolute file path".into()))?;
    let dir = url::Url::parse(&container.prefix)
        .ok()
        .and_then(|u| u.to_file_path().ok())
        .ok_or_else(|| {
            refused(format!(
                "container `{}` is not a directory",
                container.prefix
            ))
        })?;
    let missing = || Error::VirtualSourceMissing {
        location: location.to_string(),
    };
    let canonical_dir = std::fs::canonicalize(&dir).map_err(|_| missing())?;
    let canonical_file = match std::fs::canonicalize(&file) {
        Ok(path) => path,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
        Err(source) => return Err(Error::Io { path: file, source }),
    };
    if !canonical_file.starts_with(&canonical_dir) {
        return Err(refused(format!(
            "it resolves (through a symbolic link) to `{}`, outside its container `{}`",
            canonical_file.display(),
            container.prefix
        )));
    }
    let path = StorePath::from_absolute_path(&canonical_file)
        .map_err(|e| refused(format!("not a valid file path: {e}")))?;
    Ok(path)
}
