//! `floe serve`: the read-only HTTP server.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use floe::server::{ServeOptions, Server, DEFAULT_ADDR};
use floe::{
    open_storage, CachedStorage, DecodedChunkCache, Error, LocalCache, Repository,
    RepositorySettings,
};

use super::common::{CliError, CliResult, Exit, RepoLocation};

/// Long description of `floe serve`.
pub const LONG_ABOUT: &str = "\
Serve every version of the repository read-only over HTTP, as Zarr v3 hierarchies that
zarr-python 3 and xarray open with fsspec (`xarray.open_zarr(\"http://ADDR/main\")`):

  GET|HEAD /<REF>/<zarr key>     one key (zarr.json or a chunk); Range requests supported
  GET|HEAD /<REF>/<prefix>/      HTML listing of a prefix (for clients without consolidation)
  GET|HEAD /                     HTML listing of branches and tags

REF is URL-encoded: a branch, a tag, a snapshot id (or a unique prefix) or
`branch@<RFC 3339 time>`. Snapshot-id URLs are cached as immutable; others are revalidated.

Rechunked views serve arrays in another (regular) chunk shape than stored, assembled on the
fly from the stored chunks: put `;chunks=REQUEST` after REF in the URL
(`xarray.open_zarr(\"http://ADDR/main;chunks=temperature=365,1,1\")`, nested arrays as
`group%2Fname`) or send the zarr-proxy header `chunks: REQUEST` (if both are given they must
agree). REQUEST is `array=size,size,...` with one size per dimension, several arrays
comma-separated: `temperature=365,1,1,group/pressure=10,10`. Invalid requests get 400 with the
reason. Decoded stored chunks are kept in memory for all views (--decoded-cache-mib).

--cache DIR puts a persistent local cache in front of the repository's storage: immutable
objects (snapshots, manifests, chunk byte ranges) read once are kept in DIR within
--cache-mib and read from there afterwards; refs are always read from the repository, so new
commits are seen at once. Inspect it with `floe cache stats --cache DIR` once the server has
stopped (one program at a time uses a cache directory).

Once listening, prints `listening on http://ADDR` on stdout. The access log goes to stderr
(filter with FLOE_LOG, e.g. FLOE_LOG=warn; default info). Ctrl-C or SIGTERM stops it.

A non-loopback --addr requires --auth-token (clients then send `Authorization: Bearer TOKEN`)
unless --allow-unauthenticated is given.";

/// Arguments of `floe serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "IP:PORT", default_value = DEFAULT_ADDR)]
    addr: SocketAddr,
    /// Require `Authorization: Bearer TOKEN` on every request.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "FLOE_SERVE_TOKEN",
        hide_env_values = true
    )]
    auth_token: Option<String>,
    /// Allow a non-loopback address without --auth-token.
    #[arg(long)]
    allow_unauthenticated: bool,
    /// Memory for decoded stored chunks shared by rechunked views, in MiB (0 disables it).
    #[arg(long, value_name = "MIB", default_value_t = DecodedChunkCache::DEFAULT_CAPACITY_BYTES >> 20)]
    decoded_cache_mib: u64,
    /// Keep immutable objects read from the repository in this local cache directory
    /// (created if missing).
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Byte budget of --cache in MiB (default: the budget recorded in DIR, else 1024).
    #[arg(long, value_name = "MIB", requires = "cache")]
    cache_mib: Option<u64>,
}

/// Converts MiB to bytes, refusing values that overflow.
fn mib_to_bytes(option: &str, mib: u64) -> CliResult<u64> {
    mib.checked_mul(1 << 20)
        .ok_or_else(|| CliError::new(Exit::Usage, format!("{option} {mib} is too large")))
}

/// Opens the repository, behind a local cache directory when `--cache` is given.
async fn open_repository(location: &RepoLocation, args: &ServeArgs) -> CliResult<Repository> {
    let repo = location.open().await?;
    let Some(dir) = &args.cache else {
        return Ok(repo);
    };
    // Opened once without the cache above, so that a wrong location fails before the cache
    // directory is created.
    drop(repo);
    let budget = args
        .cache_mib
        .map(|mib| mib_to_bytes("--cache-mib", mib))
        .transpose()?;
    let storage = open_storage(location.require()?, &location.options)?;
    let cache = Arc::new(LocalCache::open(dir, budget)?);
    let cached = Arc::new(CachedStorage::new(storage, cache.clone()));
    let repo = Repository::open(cached, RepositorySettings::default()).await?;
    // The same cache keeps verified byte ranges of virtual sources (those with a checksum).
    Ok(repo
        .with_virtual_access(location.virtual_access()?)
        .with_virtual_cache(cache))
}

/// Sets up logging to stderr (`FLOE_LOG`, default `info`), binds, prints the address and
/// serves until Ctrl-C or SIGTERM.
pub async fn run(location: &RepoLocation, args: ServeArgs, out: &mut dyn Write) -> CliResult {
    init_logging();
    let repo = open_repository(location, &args).await?;
    let options = ServeOptions {
        addr: args.addr,
        auth_token: args.auth_token.filter(|t| !t.is_empty()),
        allow_unauthenticated: args.allow_unauthenticated,
        decoded_cache_bytes: mib_to_bytes("--decoded-cache-mib", args.decoded_cache_mib)?,
    };
    let server = Server::bind(repo, &options).await.map_err(|e| match e {
        Error::UnauthenticatedBind { .. } => CliError::new(Exit::Usage, e.to_string()),
        other => other.into(),
    })?;
    writeln!(out, "listening on http://{}", server.local_addr())?;
    out.flush()?;
    server.run(stop_signal()).await?;
    Ok(())
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLOE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second initialisation (never in the binary) is harmless: keep the first.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Completes on Ctrl-C, or SIGTERM on Unix.
async fn stop_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
