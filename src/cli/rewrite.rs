//! `floe squash` and `floe amend`: rewrite the newest history of a branch.

use std::io::Write;

use super::common::{resolve, short, write_json, CliError, CliResult, Exit, RepoLocation};
use floe::{Error, SquashOptions};

/// Documentation of `floe squash`.
pub const SQUASH_ABOUT: &str = "\
Replace the commits FIRST..LAST of a branch (both included, oldest first; FIRST is not the
repository's first snapshot) by one commit with LAST's content on FIRST's parent. Commits
after LAST are replayed on top unchanged. Nothing is re-encoded and no manifest rewritten:
the new commits carry the old ones' manifests. The branch moves only if it still points
where the squash found it (or at --expect); a session still based on a replaced commit is
refused when it commits. The replaced commits stay readable by id until `floe expire` and
`floe gc` remove them.

JSON output (--json), one document:
  {\"snapshot\": \"<squash commit>\", \"tip\": \"<new branch tip>\",
   \"squashed\": [\"<id>\", ...] (oldest first),
   \"replayed\": [{\"original\": \"<id>\", \"copy\": \"<id>\"}, ...]}";

/// Arguments of `floe squash`.
#[derive(Debug, clap::Args)]
pub struct SquashArgs {
    /// The range, FIRST..LAST (each a snapshot id or prefix, tag, or branch@<time>).
    #[arg(value_name = "FIRST..LAST")]
    range: String,
    /// The branch whose history holds the range.
    #[arg(long, default_value = "main")]
    branch: String,
    /// The squash commit's message (default: the squashed messages, one per line).
    #[arg(short, long)]
    message: Option<String>,
    /// Squash only while the branch points at this version.
    #[arg(long, value_name = "REF")]
    expect: Option<String>,
    /// Print one JSON document (see below).
    #[arg(long)]
    json: bool,
}

/// Arguments of `floe amend`.
#[derive(Debug, clap::Args)]
pub struct AmendArgs {
    /// The branch whose tip is amended.
    #[arg(long, default_value = "main")]
    branch: String,
    /// The new message of the tip commit.
    #[arg(short, long)]
    message: String,
    /// Amend only while the branch points at this version.
    #[arg(long, value_name = "REF")]
    expect: Option<String>,
}

/// Runs the squash.
pub async fn squash(location: &RepoLocation, args: SquashArgs, out: &mut dyn Write) -> CliResult {
    let Some((first, last)) = args.range.split_once("..") else {
        return Err(CliError::new(
            Exit::Usage,
            format!("`{}` is not a range FIRST..LAST", args.range),
        ));
    };
    let repo = location.open().await?;
    let (first, last) = (resolve(&repo, first).await?, resolve(&repo, last).await?);
    let expect = match &args.expect {
        Some(reference) => Some(resolve(&repo, reference).await?),
        None => None,
    };
    let options = SquashOptions {
        message: args.message,
        metadata: None,
        expect,
    };
    let report = repo.squash(&args.branch, first, last, &options).await?;
    if args.json {
        return write_json(out, &report.to_json());
    }
    writeln!(
        out,
        "squashed {} commits of `{}` into {}; {} later commits replayed; tip {}",
        report.squashed.len(),
        args.branch,
        short(&report.snapshot),
        report.replayed.len(),
        short(&report.tip)
    )?;
    Ok(())
}

/// Runs the amend: a new message for the branch's tip commit.
pub async fn amend(location: &RepoLocation, args: AmendArgs, out: &mut dyn Write) -> CliResult {
    let repo = location.open().await?;
    let session = repo.writable_session(&args.branch).await?;
    if let Some(reference) = &args.expect {
        let expected = resolve(&repo, reference).await?;
        let base = session.snapshot_id();
        if base != expected {
            return Err(Error::BranchMoved {
                name: args.branch.clone(),
                expected: expected.to_string(),
                found: base.to_string(),
            }
            .into());
        }
    }
    let id = session.amend(Some(&args.message), None).await?;
    writeln!(out, "amended the tip of `{}`: {}", args.branch, short(&id))?;
    Ok(())
}
