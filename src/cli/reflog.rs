//! `floe reflog`: every move of a branch, newest first.

use std::io::Write;

use serde::Serialize;

use super::common::{short, time, write_json, write_table, CliResult, RepoLocation};
use floe::BranchMove;

/// Documentation of `floe reflog --json`.
pub const JSON_HELP: &str = "\
JSON output (--json), one document:
  {\"branch\": \"<BRANCH>\",
   \"records\": [{\"seq\": <record number>, \"snapshot\": \"<64-hex id>\" or null (deleted),
                \"written_at\": \"<RFC 3339 UTC, microseconds; the writer's clock>\",
                \"kind\": \"created|commit|reset|deleted\"}, ...]}
Records are newest first. `commit`: the snapshot's parent is the previous tip; `reset`: any
other move.";

/// Arguments of `floe reflog`.
#[derive(Debug, clap::Args)]
pub struct ReflogArgs {
    /// The branch.
    #[arg(value_name = "BRANCH", default_value = floe::DEFAULT_BRANCH)]
    branch: String,
    /// Show at most the N newest records.
    #[arg(short = 'n', long = "max-count", value_name = "N")]
    max_count: Option<usize>,
    /// Print one JSON document (see below) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct ReflogReport {
    branch: String,
    records: Vec<RecordReport>,
}

#[derive(Serialize)]
struct RecordReport {
    seq: u64,
    snapshot: Option<String>,
    written_at: String,
    kind: &'static str,
}

fn kind_name(kind: BranchMove) -> &'static str {
    match kind {
        BranchMove::Created => "created",
        BranchMove::Commit => "commit",
        BranchMove::Reset => "reset",
        BranchMove::Deleted => "deleted",
    }
}

/// Prints the reflog.
pub async fn run(location: &RepoLocation, args: ReflogArgs, out: &mut dyn Write) -> CliResult {
    let repo = location.open().await?;
    let entries = repo
        .reflog(&args.branch, args.max_count.unwrap_or(usize::MAX))
        .await?;
    if args.json {
        let report = ReflogReport {
            branch: args.branch,
            records: entries
                .iter()
                .map(|e| RecordReport {
                    seq: e.seq,
                    snapshot: e.snapshot.map(|id| id.to_string()),
                    written_at: time(e.written_at),
                    kind: kind_name(e.kind),
                })
                .collect(),
        };
        return write_json(out, &report);
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                e.seq.to_string(),
                e.snapshot.as_ref().map_or("-".to_string(), short),
                kind_name(e.kind).to_string(),
                time(e.written_at),
            ]
        })
        .collect();
    write_table(out, &["SEQ", "SNAPSHOT", "KIND", "WRITTEN"], &rows)
}
