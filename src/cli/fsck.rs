//! `floe fsck`: prove every object reachable from the live branches and tags.

use std::io::Write;

use floe::{FsckOptions, FsckReport};
use serde::Serialize;

use super::common::{bytes, write_json, CliError, CliResult, Exit, RepoLocation};

/// Long description of `floe fsck`.
pub const LONG_ABOUT: &str = "\
Check that every object reachable from the live branches and tags is present and intact: every
snapshot of their full history (digest, history fields, node table), every manifest (digest,
order, statistics of each shard, entries inside their shard and the array's grid), every
transaction log, and every chunk object (read whole and checked against its digest, and every
chunk reference inside its bytes). Deleted branches are not checked: their history is
garbage once no live ref reaches it. Nothing is written.

Prints a summary, then one line per problem, `problem: <key>: <what is wrong>`. Exits with 0 when
the repository is sound and 5 when problems were found; a storage failure (unreachable store,
denied access) stops the check with exit code 1.";

/// Documentation of `floe fsck --json`.
pub const JSON_HELP: &str = "\
JSON output (--json), one document:
  {\"clean\": true|false, \"branches\": <n>, \"tags\": <n>, \"snapshots\": <n>, \"manifests\": <n>,
   \"txlogs\": <n>, \"chunk_objects\": <n>, \"chunk_refs\": <n>, \"bytes_verified\": <n>,
   \"chunk_digests_verified\": true|false,
   \"problems\": [{\"kind\": \"missing\"|\"digest_mismatch\"|\"corrupt\"|\"inconsistent_history\"|
                  \"invalid_node\"|\"entry_outside_shard\"|\"chunks_outside_grid\"|
                  \"stats_mismatch\"|\"chunk_ref_out_of_range\",
                 \"key\": \"<storage key of the object at fault>\", \"message\": \"...\"}, ...]}
Problems are sorted by key. The exit code is 5 when `problems` is not empty.";

/// Arguments of `floe fsck`.
#[derive(Debug, clap::Args)]
pub struct FsckArgs {
    /// Do not read chunk objects whole: only check that they exist, their sizes, and that
    /// every chunk reference lies inside its object (much faster on large repositories).
    #[arg(long)]
    no_chunk_digests: bool,
    /// Print one JSON document (see below) instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct ProblemReport {
    kind: &'static str,
    key: String,
    message: String,
}

#[derive(Serialize)]
struct JsonReport {
    clean: bool,
    branches: u64,
    tags: u64,
    snapshots: u64,
    manifests: u64,
    txlogs: u64,
    chunk_objects: u64,
    chunk_refs: u64,
    bytes_verified: u64,
    chunk_digests_verified: bool,
    problems: Vec<ProblemReport>,
}

/// Runs the check and prints the report.
pub async fn run(location: &RepoLocation, args: FsckArgs, out: &mut dyn Write) -> CliResult {
    let repo = location.open().await?;
    let options = FsckOptions {
        verify_chunk_digests: !args.no_chunk_digests,
    };
    let report = repo.fsck(options).await?;
    if args.json {
        write_json(out, &json_report(&report, options))?;
    } else {
        write_text(out, &report, options)?;
    }
    if report.is_clean() {
        return Ok(());
    }
    let n = report.problems.len();
    Err(CliError::new(
        Exit::Corrupt,
        format!(
            "the repository has {n} problem{}",
            if n == 1 { "" } else { "s" }
        ),
    ))
}

fn json_report(report: &FsckReport, options: FsckOptions) -> JsonReport {
    JsonReport {
        clean: report.is_clean(),
        branches: report.branches,
        tags: report.tags,
        snapshots: report.snapshots,
        manifests: report.manifests,
        txlogs: report.txlogs,
        chunk_objects: report.chunk_objects,
        chunk_refs: report.chunk_refs,
        bytes_verified: report.bytes_verified,
        chunk_digests_verified: options.verify_chunk_digests,
        problems: report
            .problems
            .iter()
            .map(|p| ProblemReport {
                kind: p.kind(),
                key: p.key().to_string(),
                message: p.to_string(),
            })
            .collect(),
    }
}

fn write_text(out: &mut dyn Write, report: &FsckReport, options: FsckOptions) -> CliResult {
    let digests = if options.verify_chunk_digests {
        "verified"
    } else {
        "not verified (--no-chunk-digests)"
    };
    writeln!(out, "branches        {}", report.branches)?;
    writeln!(out, "tags            {}", report.tags)?;
    writeln!(out, "snapshots       {}", report.snapshots)?;
    writeln!(out, "manifests       {}", report.manifests)?;
    writeln!(out, "txlogs          {}", report.txlogs)?;
    writeln!(out, "chunk objects   {}", report.chunk_objects)?;
    writeln!(out, "chunk refs      {}", report.chunk_refs)?;
    writeln!(out, "bytes verified  {}", bytes(report.bytes_verified))?;
    writeln!(out, "chunk digests   {digests}")?;
    writeln!(out, "problems        {}", report.problems.len())?;
    for problem in &report.problems {
        writeln!(out, "problem: {problem}")?;
    }
    Ok(())
}
