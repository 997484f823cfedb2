//! `floe status`: the repository at a glance.

use std::io::Write;

use serde::Serialize;

use super::branch::{branch_reports, write_branch_table, BranchReport};
use super::common::{time, write_json, CliResult, RepoLocation};

/// Long description of `floe status`.
pub const LONG_ABOUT: &str = "\
Summarise the repository: location, format version, creation time, every branch with its tip
(id, time, message) and the number of tags.

The command line keeps no session between commands, so there are never uncommitted changes
to show here: changes live in the program that holds a writable session until it commits.";

/// Documentation of `floe status --json`.
pub const JSON_HELP: &str = "\
JSON output (--json), one document:
  {\"location\": \"<as given>\", \"format_version\": 1,
   \"created_at\": \"<RFC 3339 UTC>\" or null,
   \"branches\": [<as in `floe branch list --json`>], \"tag_count\": <number>}";

/// Arguments of `floe status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print one JSON document (see below) instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct StatusReport {
    location: String,
    format_version: u32,
    created_at: Option<String>,
    branches: Vec<BranchReport>,
    tag_count: usize,
}

/// Prints the summary.
pub async fn run(location: &RepoLocation, args: StatusArgs, out: &mut dyn Write) -> CliResult {
    let repo = location.open().await?;
    let info = repo.info().await?;
    let report = StatusReport {
        location: info.location,
        format_version: info.format_version,
        created_at: info.created_at.map(time),
        branches: branch_reports(&repo).await?,
        tag_count: repo.list_tags().await?.len(),
    };
    if args.json {
        return write_json(out, &report);
    }
    writeln!(out, "repository  {}", report.location)?;
    writeln!(out, "format      {}", report.format_version)?;
    if let Some(created) = &report.created_at {
        writeln!(out, "created     {created}")?;
    }
    writeln!(out, "tags        {}", report.tag_count)?;
    writeln!(out, "branches    {}", report.branches.len())?;
    writeln!(out)?;
    write_branch_table(out, &report.branches)?;
    writeln!(out)?;
    writeln!(
        out,
        "(no uncommitted changes: the command line keeps no session between commands)"
    )?;
    Ok(())
}
