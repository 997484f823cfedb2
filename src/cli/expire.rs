//! `floe expire`: drop old history from branches (recorded as cuts; nothing is deleted until
//! `floe gc`).

use std::io::Write;

use super::age::{parse_before, parse_branch_before};
use super::common::{short, time, write_json, write_table, CliResult, RepoLocation};
use floe::{ExpireBefore, ExpireOptions};

/// Documentation of `floe expire --json`.
pub const JSON_HELP: &str = "\
Per branch, the commits newer than the threshold and at least --keep-last of the newest are
kept; every tagged snapshot is kept (without its history when no branch keeps it); the root
is kept. History is never rewritten: the edge below each branch's oldest kept commit is
recorded as cut, log and as-of stop there (as-of before it fails: expired), and `floe gc`
deletes what only the expired history reaches, after its grace period. Ages are measured
from the store's clock.

JSON output (--json), one document:
  {\"store_time\": \"<RFC 3339>\", \"dry_run\": bool, \"record\": <seq> or null,
   \"would_free\": {\"objects\": n, \"bytes\": n} (dry runs: what `floe gc` would then free) or null,
   \"branches\": [{\"branch\": \"main\", \"tip\": \"<id>\", \"older_than\": \"<RFC 3339>\",
                 \"oldest_kept\": \"<id>\", \"kept\": n, \"newly_expired\": n}, ...],
   \"tags_cut\": [\"<tag>\", ...],
   \"new_cuts\": [{\"child\": \"<id>\", \"parent\": \"<id>\", \"reason\": \"branch main\"}, ...]}";

/// Arguments of `floe expire`.
#[derive(Debug, clap::Args)]
pub struct ExpireArgs {
    /// Expire history older than this: an age (`30d`, `12h`, `2w`) or an RFC 3339 time.
    #[arg(long = "older-than", value_name = "AGE|TIME", value_parser = parse_before)]
    older_than: ExpireBefore,
    /// Keep at least this many of each branch's newest commits.
    #[arg(long = "keep-last", value_name = "N", default_value_t = 1)]
    keep_last: u64,
    /// Another threshold for one branch (repeatable), e.g. `--branch dev=7d`.
    #[arg(long = "branch", value_name = "BRANCH=AGE|TIME", value_parser = parse_branch_before)]
    branches: Vec<(String, ExpireBefore)>,
    /// Report what would be expired without recording anything.
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// Print one JSON document (see below) instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs the expiry.
pub async fn run(location: &RepoLocation, args: ExpireArgs, out: &mut dyn Write) -> CliResult {
    let repo = location.open().await?;
    let options = ExpireOptions {
        older_than: args.older_than,
        keep_last: args.keep_last,
        per_branch: args.branches.into_iter().collect(),
        dry_run: args.dry_run,
    };
    let report = repo.expire(&options).await?;
    if args.json {
        return write_json(out, &report.to_json(args.dry_run));
    }
    let rows: Vec<Vec<String>> = report
        .branches
        .iter()
        .map(|b| {
            vec![
                b.branch.clone(),
                time(b.older_than),
                short(&b.oldest_kept),
                b.kept.to_string(),
                b.newly_expired.to_string(),
            ]
        })
        .collect();
    write_table(
        out,
        &[
            "BRANCH",
            "OLDER THAN",
            "OLDEST KEPT",
            "KEPT",
            "NEWLY EXPIRED",
        ],
        &rows,
    )?;
    for tag in &report.tags_cut {
        writeln!(out, "tag {tag}: kept without its history")?;
    }
    if let Some((objects, freed)) = report.would_free {
        writeln!(
            out,
            "garbage collection would then free {objects} objects ({}) after its grace period",
            super::common::bytes(freed)
        )?;
    }
    let verdict = match (args.dry_run, report.record) {
        (true, _) => "dry run: nothing recorded".to_string(),
        (false, Some(seq)) => format!(
            "recorded as expiry record {seq}; `floe gc` deletes the expired objects after its grace period"
        ),
        (false, None) => "nothing new to expire".to_string(),
    };
    writeln!(out, "{verdict}")?;
    Ok(())
}
