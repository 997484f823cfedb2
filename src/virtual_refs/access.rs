//! Who may read which virtual chunks: the authorization given when opening, and the per-handle
//! state that applies it (declared containers, object-store clients, request counters).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use object_store::path::Path as StorePath;
use object_store::ObjectStore;

use super::clients::{build_client, store_identity};
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
///
/// What the repository may configure: a container's declared options (endpoint, region...)
/// are used only when the reader trusts that container, through
/// [`allow_declared`](Self::allow_declared) or an [`allow`](Self::allow) prefix covering the
/// source. A source readable only through an [`allow_undeclared`](Self::allow_undeclared)
/// prefix is read with a client built from that prefix and the reader's own
/// [`with_options`](Self::with_options), never from options stored in the repository, even
/// when a declared container holds it. Whatever the trust, the repository can never set
/// options that redirect credentials or weaken transport security (proxies, certificate
/// checks, metadata or credential endpoints and files, bucket overrides): see
/// [`VirtualContainer::new`]. Local files are read only if their canonical path (symbolic
/// links resolved) stays inside the narrowest prefix that authorized them.
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
    /// them), which are used only for trusted containers (see the type's docs); when several
    /// prefixes match, longer ones are applied last. These are the reader's own options: any
    /// key the backend accepts is allowed here, proxies included. Fails with
    /// [`Error::VirtualLocationRefused`] for a malformed prefix.
    pub fn with_options(mut self, prefix: &str, options: StorageOptions) -> Result<Self> {
        self.options.push((check_prefix(prefix)?.text, options));
        Ok(self)
    }

    /// True when nothing is authorized.
    pub fn is_deny_all(&self) -> bool {
        self.allowed.is_empty() && self.undeclared.is_empty() && !self.allow_declared
    }

    /// The options for a client of `prefix`: `declared` (the container's options, when the
    /// reader trusts it), then every matching option set of the reader, shorter prefixes first.
    fn options_for(&self, prefix: &str, declared: &StorageOptions) -> StorageOptions {
        let mut matching: Vec<&(String, StorageOptions)> = self
            .options
            .iter()
            .filter(|(p, _)| prefix.starts_with(p.as_str()))
            .collect();
        matching.sort_by_key(|(p, _)| p.len());
        let mut options = declared.clone();
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
    /// Identity of the store read (prefix and non-secret options, hashed), so cached ranges
    /// of differently configured stores never mix.
    pub(crate) store_id: String,
}

/// How a source may be read: the prefix and options its client is built from, and the
/// narrowest authorized prefix its canonical location must stay inside.
#[derive(Clone, Debug)]
struct Authorized {
    client_prefix: String,
    options: StorageOptions,
    bound: String,
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

    /// How `url` may be read, or `None` when it may not.
    ///
    /// A trusted declared container (every one with `allow_declared`, or one covering an
    /// `allow` prefix that covers `url`) is read with its declared options; the containment
    /// bound is the container, narrowed to the (broadest) matching `allow` prefix when only
    /// that authorizes it. Otherwise the longest matching `allow_undeclared` prefix serves as
    /// the container, with the reader's options only.
    fn authorize(&self, declared: &[VirtualContainer], url: &str) -> Option<Authorized> {
        if let Some(container) = longest(declared, url) {
            let allowed = self
                .access
                .allowed
                .iter()
                .filter(|p| url.starts_with(p.as_str()))
                .min_by_key(|p| p.len());
            let bound = match allowed {
                _ if self.access.allow_declared => Some(container.prefix.clone()),
                // Both are prefixes of `url`: the longer one is the narrower.
                Some(p) if p.len() > container.prefix.len() => Some(p.clone()),
                Some(_) => Some(container.prefix.clone()),
                None => None,
            };
            if let Some(bound) = bound {
                return Some(Authorized {
                    options: self
                        .access
                        .options_for(&container.prefix, &container.options),
                    client_prefix: container.prefix.clone(),
                    bound,
                });
            }
        }
        let explicit = self
            .access
            .undeclared
            .iter()
            .filter(|p| url.starts_with(p.as_str()))
            .max_by_key(|p| p.len())?;
        Some(Authorized {
            options: self.access.options_for(explicit, &Vec::new()),
            client_prefix: explicit.clone(),
            bound: explicit.clone(),
        })
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

    /// The client for `authorized` (one per prefix and option set) and its store identity.
    fn client(&self, authorized: &Authorized) -> Result<(Arc<dyn ObjectStore>, String)> {
        let store_id = store_identity(&authorized.client_prefix, &authorized.options);
        let key = format!("{}#{store_id}", authorized.client_prefix);
        if let Some(found) = lock(&self.clients).get(&key) {
            return Ok((found.clone(), store_id));
        }
        let store = build_client(&authorized.client_prefix, &authorized.options)?;
        let store = lock(&self.clients).entry(key).or_insert(store).clone();
        Ok((store, store_id))
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
        let Some(authorized) = container else {
            return Err(VirtualReader::refusal(&declared, location, &checked.text));
        };
        let (store, store_id) = reader.client(&authorized)?;
        let path = object_path(location, &checked, &authorized)?;
        Ok(ResolvedSource {
            store,
            path,
            store_id,
        })
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

/// The path of a checked source inside the store of its client. The source must name the same
/// scheme, bucket or host (and port) as the client's prefix. For local files the path is
/// canonicalised and must still lie inside the canonical directory of the narrowest prefix
/// that authorized it, so a symbolic link cannot lead out of it.
fn object_path(location: &str, checked: &CheckedUrl, authorized: &Authorized) -> Result<StorePath> {
    let refused = |reason: String| Error::VirtualLocationRefused {
        location: location.to_string(),
        reason,
    };
    let client_url = url::Url::parse(&authorized.client_prefix)
        .map_err(|e| refused(format!("its container cannot be parsed: {e}")))?;
    let same_store = |a: &url::Url, b: &url::Url| {
        a.scheme() == b.scheme()
            && a.host_str() == b.host_str()
            && a.port_or_known_default() == b.port_or_known_default()
    };
    if !same_store(&checked.url, &client_url)
        || !checked.text.starts_with(&authorized.client_prefix)
    {
        return Err(refused(format!(
            "it is not in the store of its container `{}`",
            authorized.client_prefix
        )));
    }
    if checked.scheme() != "file" {
        let path = StorePath::from_url_path(checked.url.path())
            .map_err(|e| refused(format!("not a valid object path: {e}")))?;
        return Ok(path);
    }
    let file = checked
        .url
        .to_file_path()
        .map_err(|_| refused("not an absolute file path".into()))?;
    let dir = url::Url::parse(&authorized.bound)
        .ok()
        .and_then(|u| u.to_file_path().ok())
        .ok_or_else(|| refused(format!("`{}` is not a directory", authorized.bound)))?;
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
            "it resolves (through a symbolic link) to `{}`, outside `{}` that authorized it",
            canonical_file.display(),
            authorized.bound
        )));
    }
    let path = StorePath::from_absolute_path(&canonical_file)
        .map_err(|e| refused(format!("not a valid file path: {e}")))?;
    Ok(path)
}
