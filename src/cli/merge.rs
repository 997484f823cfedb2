//! `floe merge`: merge a version into a branch.

use std::io::Write;

use super::common::{resolve, short, write_json, CliResult, RepoLocation};
use floe::{MergeOptions, MergeStrategy};

/// Documentation of `floe merge`.
pub const LONG_ABOUT: &str = "\
Merge a version (usually another branch) into a branch, three-way from their nearest common
ancestor (an earlier merge of the same source counts, so merging again takes only what
changed since). Nodes and manifest shards only one side changed are taken as they are;
nodes both changed merge like concurrent commits do (shapes grow to the larger, attributes
merge by key); chunks both changed differently conflict unless --strategy says which side
wins. A node deleted on one side and changed on the other, or left without its parent group,
always conflicts. On success one merge commit lands on the branch, recording its source.";

/// Documentation of `floe merge --json`.
pub const JSON_HELP: &str = "\
JSON output (--json), one document:
  {\"snapshot\": \"<merge commit id>\" or null (up to date, or --dry-run),
   \"parent\": \"<the branch tip it sits on>\", \"source\": \"<id SRC resolves to>\",
   \"base\": \"<nearest common ancestor>\", \"up_to_date\": bool,
   \"nodes_from_source\": n, \"nodes_merged\": n, \"shards_reused\": n,
   \"shards_merged\": n, \"chunks_resolved\": n}
Exit status 4 on a conflict (the message names the node and the chunks) or when the branch
moved and --expect was given.";

/// Arguments of `floe merge`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The version to merge (branch, tag, snapshot id or prefix, branch@<RFC 3339 time>).
    #[arg(value_name = "SRC")]
    source: String,
    /// The branch that receives the merge commit.
    #[arg(long = "into", value_name = "BRANCH", default_value = "main")]
    into: String,
    /// Chunks both sides changed differently: fail, keep the branch's (ours) or take the
    /// source's (theirs).
    #[arg(long, value_enum, default_value = "fail")]
    strategy: StrategyArg,
    /// The merge commit's message (default: "Merge <SRC id> into <BRANCH>").
    #[arg(short, long)]
    message: Option<String>,
    /// Merge only while BRANCH points at this version (otherwise exit 4, nothing published).
    #[arg(long, value_name = "REF")]
    expect: Option<String>,
    /// Work the merge out (conflicts included) but publish nothing.
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// Print one JSON document (see below).
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum StrategyArg {
    Fail,
    Ours,
    Theirs,
}

/// Runs the merge.
pub async fn run(location: &RepoLocation, args: MergeArgs, out: &mut dyn Write) -> CliResult {
    let repo = location.open().await?;
    let source = resolve(&repo, &args.source).await?;
    let expect = match &args.expect {
        Some(reference) => Some(resolve(&repo, reference).await?),
        None => None,
    };
    let options = MergeOptions {
        strategy: match args.strategy {
            StrategyArg::Fail => MergeStrategy::Fail,
            StrategyArg::Ours => MergeStrategy::Ours,
            StrategyArg::Theirs => MergeStrategy::Theirs,
        },
        message: args.message,
        metadata: None,
        expect,
        dry_run: args.dry_run,
    };
    let report = repo.merge(source, &args.into, &options).await?;
    if args.json {
        return write_json(out, &report.to_json());
    }
    if report.up_to_date {
        writeln!(
            out,
            "`{}` already contains {}: nothing to merge",
            args.into,
            short(&source)
        )?;
        return Ok(());
    }
    let c = &report.counts;
    let verb = match report.snapshot {
        Some(id) => format!("merged into `{}` as {}", args.into, short(&id)),
        None => format!("would merge into `{}` (dry run)", args.into),
    };
    writeln!(
        out,
        "{} {verb} (base {}): {} nodes taken, {} merged; {} shards reused, {} merged; {} chunk \
         conflicts resolved",
        short(&source),
        short(&report.base),
        c.nodes_from_source,
        c.nodes_merged,
        c.shards_reused,
        c.shards_merged,
        c.chunks_resolved
    )?;
    Ok(())
}
