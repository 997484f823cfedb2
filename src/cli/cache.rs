//! `floe cache`: inspect and empty a local cache directory (see `floe::CachedStorage`).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use floe::LocalCache;

use super::common::{write_json, CliError, CliResult, Exit};

/// Documentation of `floe cache stats --json`.
pub const JSON_HELP: &str = "\
JSON output (--json), one document:
  {\"dir\": \"<cache directory>\", \"entries\": <number>, \"bytes\": <number>,
   \"budget_bytes\": <number>,
   \"totals\": {\"hits\": n, \"misses\": n, \"inserts\": n, \"evictions\": n,
              \"corrupt_entries\": n}}
Totals count events since the cache was created or last cleared. `bytes` counts cached data;
the index file comes on top.";

/// Long description of `floe cache`.
pub const LONG_ABOUT: &str = "\
Inspect or empty a local cache directory: the persistent cache of immutable objects
(snapshots, manifests, transaction logs, chunk byte ranges) that a program puts in front of a
slow repository. The cache is never the source of truth: clearing or deleting it loses
nothing but speed. Only one program can use a cache directory at a time, so these commands
fail while a server is running on it.";

/// The `cache` subcommands.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Show the cache's size, budget and hit/miss/eviction totals.
    #[command(after_long_help = JSON_HELP)]
    Stats {
        /// The cache directory.
        #[arg(long = "cache", value_name = "DIR")]
        dir: PathBuf,
        /// Print one JSON document (see below) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove every cached object and reset the totals.
    Clear {
        /// The cache directory.
        #[arg(long = "cache", value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(serde::Serialize)]
struct StatsReport {
    dir: String,
    entries: u64,
    bytes: u64,
    budget_bytes: u64,
    totals: floe::CacheCounters,
}

/// Opens an existing cache directory (never creates one).
fn open_existing(dir: &Path) -> CliResult<LocalCache> {
    if !dir.is_dir() {
        return Err(CliError::new(
            Exit::NotFound,
            format!("no cache directory at `{}`", dir.display()),
        ));
    }
    Ok(LocalCache::open(dir, None)?)
}

/// Runs one `cache` subcommand. The repository option is not used.
pub fn run(command: CacheCommand, out: &mut dyn Write) -> CliResult {
    match command {
        CacheCommand::Stats { dir, json } => {
            let stats = open_existing(&dir)?.stats()?;
            let report = StatsReport {
                dir: dir.display().to_string(),
                entries: stats.entries,
                bytes: stats.bytes,
                budget_bytes: stats.budget_bytes,
                totals: stats.persisted,
            };
            if json {
                return write_json(out, &report);
            }
            let t = &report.totals;
            let lookups = t.hits + t.misses;
            let rate = if lookups == 0 {
                "-".to_string()
            } else {
                format!("{:.1}%", 100.0 * t.hits as f64 / lookups as f64)
            };
            writeln!(out, "cache      {}", report.dir)?;
            writeln!(out, "entries    {}", report.entries)?;
            writeln!(
                out,
                "bytes      {} of {} budget",
                report.bytes, report.budget_bytes
            )?;
            writeln!(out, "hits       {} ({rate} of lookups)", t.hits)?;
            writeln!(out, "misses     {}", t.misses)?;
            writeln!(out, "inserts    {}", t.inserts)?;
            writeln!(out, "evictions  {}", t.evictions)?;
            writeln!(out, "corrupt    {}", t.corrupt_entries)?;
            Ok(())
        }
        CacheCommand::Clear { dir } => {
            let cache = open_existing(&dir)?;
            let before = cache.stats()?;
            cache.clear()?;
            writeln!(
                out,
                "cleared {} entries ({} bytes) from {}",
                before.entries,
                before.bytes,
                dir.display()
            )?;
            Ok(())
        }
    }
}
