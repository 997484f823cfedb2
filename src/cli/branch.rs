//! `floe branch`: create, list, delete and reset branches.

use std::io::Write;

use clap::Subcommand;
use serde::Serialize;

use super::common::{resolve, short, time, write_json, write_table, CliResult, RepoLocation};
use super::log::one_line;

/// Documentation of `floe branch list --json`.
pub const JSON_HELP: &str = "\
JSON output (--json), one document:
  {\"branches\": [{\"name\": \"main\", \"snapshot\": \"<64-hex tip id>\",
                 \"committed_at\": \"<RFC 3339 UTC, microseconds, of the tip>\",
                 \"message\": \"<tip commit message>\"}, ...]}
Branches are sorted by name.";

/// The `branch` subcommands.
#[derive(Debug, Subcommand)]
pub enum BranchCommand {
    /// Create a branch at a version.
    Create {
        /// The new branch's name (letters, digits, `.`, `_`, `-`).
        name: String,
        /// Where the branch starts.
        #[arg(long = "from", value_name = "REF", default_value = floe::DEFAULT_BRANCH)]
        from: String,
    },
    /// List branches with their tips.
    #[command(after_long_help = JSON_HELP)]
    List {
        /// Print one JSON document (see below) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete a branch (its snapshots stay readable by id; `main` cannot be deleted).
    Delete {
        /// The branch to delete.
        name: String,
    },
    /// Point a branch at any version (recorded in the branch's history of moves).
    Reset {
        /// The branch to move.
        name: String,
        /// Where it should point.
        #[arg(value_name = "REF")]
        reference: String,
        /// Move it only if it still points at this version (refused, changing nothing, if
        /// another writer moved it since).
        #[arg(long, value_name = "REF")]
        expect: Option<String>,
    },
}

/// One branch, as `branch list --json` and `status --json` print it.
#[derive(Serialize)]
pub struct BranchReport {
    name: String,
    snapshot: String,
    committed_at: String,
    message: String,
}

/// Every branch with its tip's time and message, sorted by name.
pub async fn branch_reports(repo: &floe::Repository) -> CliResult<Vec<BranchReport>> {
    let mut out = Vec::new();
    for branch in repo.list_branches().await? {
        let tip = repo.snapshot_entry(branch.snapshot).await?;
        out.push(BranchReport {
            name: branch.name,
            snapshot: branch.snapshot.to_string(),
            committed_at: time(tip.committed_at),
            message: tip.message,
        });
    }
    Ok(out)
}

/// Writes branches as an aligned table.
pub fn write_branch_table(out: &mut dyn Write, branches: &[BranchReport]) -> CliResult {
    let rows: Vec<Vec<String>> = branches
        .iter()
        .map(|b| {
            vec![
                b.name.clone(),
                b.snapshot.chars().take(12).collect(),
                b.committed_at.clone(),
                one_line(&b.message),
            ]
        })
        .collect();
    write_table(out, &["BRANCH", "SNAPSHOT", "COMMITTED", "MESSAGE"], &rows)
}

#[derive(Serialize)]
struct BranchList {
    branches: Vec<BranchReport>,
}

/// Runs a `branch` subcommand.
pub async fn run(
    location: &RepoLocation,
    command: BranchCommand,
    out: &mut dyn Write,
) -> CliResult {
    let repo = location.open().await?;
    match command {
        BranchCommand::Create { name, from } => {
            let id = resolve(&repo, &from).await?;
            repo.create_branch(&name, id).await?;
            writeln!(out, "created branch {name} at {}", short(&id))?;
        }
        BranchCommand::List { json } => {
            let branches = branch_reports(&repo).await?;
            if json {
                write_json(out, &BranchList { branches })?;
            } else {
                write_branch_table(out, &branches)?;
            }
        }
        BranchCommand::Delete { name } => {
            let tip = repo.branch_tip(&name).await?;
            repo.delete_branch(&name).await?;
            writeln!(out, "deleted branch {name} (was at {})", short(&tip))?;
        }
        BranchCommand::Reset {
            name,
            reference,
            expect,
        } => {
            let target = resolve(&repo, &reference).await?;
            let before = match expect {
                Some(expect) => {
                    let expected = resolve(&repo, &expect).await?;
                    repo.reset_branch_expecting(&name, target, expected).await?;
                    expected
                }
                None => {
                    let before = repo.branch_tip(&name).await?;
                    repo.reset_branch(&name, target).await?;
                    before
                }
            };
            writeln!(
                out,
                "reset branch {name} to {} (was at {})",
                short(&target),
                short(&before)
            )?;
        }
    }
    Ok(())
}
