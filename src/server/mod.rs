//! A read-only HTTP server exposing every version of a repository as a Zarr v3 hierarchy, for
//! zarr-python 3 / xarray over fsspec's HTTP filesystem and any other HTTP Zarr client
//! (feature `server`).
//!
//! # URLs
//!
//! * `GET|HEAD /<version>/<zarr key>`: one key, e.g. `/main/zarr.json`, `/v1/t2m/c/0/0`.
//!   `<version>` (percent-encoded) is a branch, a tag, a snapshot id, a unique snapshot id
//!   prefix (at least 4 hex characters) or `branch@<RFC 3339 time>`; 64 hex characters always
//!   name a snapshot. `zarr.json` is sent as `application/json` (a group's carries the
//!   consolidated metadata of its subtree, so `xarray.open_zarr("…/main/ds")` opens a dataset
//!   stored in group `ds` with one request), chunks as `application/octet-stream`; absent
//!   keys, including the Zarr v2 probes (`.zgroup`, `.zattrs`, `.zarray`, `.zmetadata`), are
//!   404.
//! * `GET|HEAD /<version>;chunks=<request>/<zarr key>`: the same version as a rechunked view
//!   ([`RechunkedStore`](crate::RechunkedStore)): the arrays named in `<request>` (the
//!   zarr-proxy grammar of [`ChunkShapeRequest`](crate::ChunkShapeRequest),
//!   `temperature=365,1,1,group%2Fpressure=10,10`, percent-decoded) report and serve the
//!   requested regular chunk shape; other keys are as stored. The zarr-proxy request header
//!   `chunks: <request>` asks for the same view on a plain version URL; when both are given
//!   they must name the same request (compared in canonical form), else 400. Other view
//!   parameters, a parameter or header given twice, and invalid requests (syntax, unknown
//!   array, wrong number of sizes, variable-length data type, chunk too large) are 400 with
//!   the reason. Views are cached per (snapshot, canonical request) and share one bounded
//!   cache of decoded stored chunks ([`ServeOptions::decoded_cache_bytes`]); requested chunks
//!   are assembled on tokio's blocking pool. Listings of a view list the view's keys.
//! * Arrays stored with a rectilinear chunk grid are served through a regular-grid view by
//!   default (chunks of the largest stored edge length along each dimension, see
//!   [`default_regular_chunk_shape`](crate::default_regular_chunk_shape)), so clients that
//!   read only regular grids open them; `/<version>;grid=native/<zarr key>` serves their
//!   native rectilinear metadata and chunks (`;grid=native;chunks=<request>` combines both;
//!   `grid=regular` names the default).
//! * `GET|HEAD /<version>/` and `/<version>/<prefix>/`: an HTML listing with one link per child
//!   prefix and key, linked relative to the listed prefix (404 for a prefix holding nothing).
//!   `/<version>` redirects (308) there when the version exists, and so does
//!   `/<version>/<node>` (a group or array path without the trailing slash: fsspec lists
//!   directories that way).
//! * `GET|HEAD /`: an HTML listing of branches and tags.
//!
//! # Headers
//!
//! * `Range: bytes=a-b`, `bytes=a-`, `bytes=-n` → 206 with `Content-Range`; a range starting
//!   at or past the end (or a zero-length suffix) → 416 with `Content-Range: bytes */size`.
//!   Several ranges, other units and malformed headers are ignored (200, whole value).
//!   `Accept-Ranges: bytes` and `Content-Length` are sent on GET and HEAD. An `If-Range`
//!   other than the current ETag makes the server ignore `Range`.
//! * Every value and listing has a strong `ETag` derived from the resolved snapshot, the view
//!   (stored or the canonical rechunk request) and the key; `If-None-Match` → 304. Responses
//!   carry `Vary: chunks`, since that request header selects the view. Responses addressed by a full snapshot id carry
//!   `Cache-Control: public, max-age=31536000, immutable`, all others `no-cache`.
//! * With a token configured, every request needs `Authorization: Bearer <token>` (else 401).
//!
//! Malformed paths (`..` or `.` segments, also percent-encoded, encoded slashes, NUL and other
//! control characters, invalid UTF-8, paths over [`MAX_PATH_LEN`] bytes) are 400.
//! The server never opens a file named by a request: every path becomes a Zarr key looked up
//! in the version's snapshot through [`ZarrStore`](crate::ZarrStore), so no request can reach
//! anything but the repository's own Zarr keys. Each request is logged through `tracing` at
//! target `floe::server::access`.

mod access_log;
mod auth;
mod caching;
mod listing_html;
mod range;
mod reply;
mod request_path;
mod routes;
mod sessions;
mod version_segment;
mod view;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

use crate::error::{Error, Result};
use crate::repo::Repository;
use crate::zarr::rechunk::DecodedChunkCache;

pub use request_path::MAX_PATH_LEN;
pub use view::{CHUNKS_HEADER, CHUNKS_PARAM, GRID_PARAM, NATIVE_GRID, REGULAR_GRID};

/// The default listening address of `floe serve`.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";

/// How to serve a repository.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The address to listen on (port 0 picks a free port; see [`Server::local_addr`]).
    pub addr: SocketAddr,
    /// When set, every request must carry `Authorization: Bearer <token>`.
    pub auth_token: Option<String>,
    /// Allows listening on a non-loopback address without a token (anyone who can reach the
    /// address can then read every version).
    pub allow_unauthenticated: bool,
    /// The byte budget of the decoded stored chunks kept for rechunked views, shared by every
    /// view the server opens (0 keeps none: every requested chunk decodes what it overlaps).
    pub decoded_cache_bytes: u64,
}

impl ServeOptions {
    /// Options for listening on `addr`, without authentication, with a decoded chunk cache of
    /// [`DecodedChunkCache::DEFAULT_CAPACITY_BYTES`].
    pub fn new(addr: SocketAddr) -> Self {
        ServeOptions {
            addr,
            auth_token: None,
            allow_unauthenticated: false,
            decoded_cache_bytes: DecodedChunkCache::DEFAULT_CAPACITY_BYTES,
        }
    }

    /// Sets the byte budget of the decoded chunk cache of rechunked views.
    pub fn with_decoded_cache_bytes(mut self, bytes: u64) -> Self {
        self.decoded_cache_bytes = bytes;
        self
    }

    /// Requires `Authorization: Bearer <token>` on every request.
    pub fn with_auth_token(mut self, token: impl Into<String>) -> Self {
        self.auth_token = Some(token.into());
        self
    }

    /// Errors with [`Error::UnauthenticatedBind`] when the address is not a loopback address,
    /// no token is set and unauthenticated serving was not allowed.
    pub fn check_exposure(&self) -> Result<()> {
        if self.auth_token.is_none() && !self.allow_unauthenticated && !self.addr.ip().is_loopback()
        {
            return Err(Error::UnauthenticatedBind {
                addr: self.addr.to_string(),
            });
        }
        Ok(())
    }
}

/// The router serving `repo` read-only as described in the [module docs](self): access log,
/// then the token check when `options.auth_token` is set, then the handler. It does not check
/// the bind policy (see [`ServeOptions::check_exposure`]).
pub fn router(repo: Repository, options: &ServeOptions) -> Router {
    let versions = Arc::new(sessions::Versions::new(repo, options.decoded_cache_bytes));
    let mut app = Router::new().fallback(routes::handle).with_state(versions);
    if let Some(token) = &options.auth_token {
        let check = Arc::new(auth::TokenCheck::new(token));
        app = app.layer(axum::middleware::from_fn_with_state(
            check,
            auth::require_token,
        ));
    }
    app.layer(axum::middleware::from_fn(access_log::log_request))
}

/// A server bound to its address and ready to run.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    router: Router,
    addr: SocketAddr,
}

impl Server {
    /// Checks the bind policy ([`ServeOptions::check_exposure`]) and binds `options.addr`.
    ///
    /// Errors: [`Error::UnauthenticatedBind`], or [`Error::Bind`] when the address cannot be
    /// listened on.
    pub async fn bind(repo: Repository, options: &ServeOptions) -> Result<Server> {
        options.check_exposure()?;
        let listener = TcpListener::bind(options.addr)
            .await
            .map_err(|source| Error::Bind {
                addr: options.addr.to_string(),
                source,
            })?;
        Self::from_listener(listener, router(repo, options))
    }

    /// A server answering with `router` on an already bound listener (no policy check).
    ///
    /// Errors with [`Error::Bind`] when the listener's address cannot be read.
    pub fn from_listener(listener: TcpListener, router: Router) -> Result<Server> {
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: "the given listener".to_string(),
            source,
        })?;
        Ok(Server {
            listener,
            router,
            addr,
        })
    }

    /// The address actually listened on (the chosen port when binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` completes, then stops accepting connections and waits for
    /// requests in flight to finish.
    ///
    /// Errors with [`Error::Bind`] when accepting connections fails for good.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        tracing::info!(target: "floe::server", addr = %self.addr, "serving");
        let addr = self.addr;
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|source| Error::Bind {
                addr: addr.to_string(),
                source,
            })?;
        tracing::info!(target: "floe::server", addr = %addr, "stopped");
        Ok(())
    }
}

/// Binds `options.addr` (after the bind policy check), logs the bound address and serves `repo`
/// until `shutdown` completes. See [`Server`] to learn the bound address before serving.
///
/// Errors: [`Error::UnauthenticatedBind`], [`Error::Bind`].
pub async fn serve(
    repo: Repository,
    options: &ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    Server::bind(repo, options).await?.run(shutdown).await
}
