//! `floe log`: the history ending at a version, newest first.

use std::io::Write;

use serde::Serialize;
use serde_json::{Map, Value};

use super::common::{short, time, version_error, write_json, write_table, CliResult, RepoLocation};
use floe::VersionSpec;

/// Documentation of `floe log --json`.
pub const JSON_HELP: &str = "\
JSON output (--json), one document:
  {\"ref\": \"<REF as given>\", \"snapshot\": \"<64-hex id REF resolves to>\",
   \"entries\": [{\"id\": \"<64-hex snapshot id>\", \"generation\": <number of ancestors>,
                \"committed_at\": \"<RFC 3339 UTC, microseconds>\", \"message\": \"...\",
                \"metadata\": {<commit metadata object>}}, ...]}
Entries are newest first.";

/// Arguments of `floe log`.
#[derive(Debug, clap::Args)]
pub struct LogArgs {
    /// Where the history ends (branch, tag, snapshot id or prefix, branch@<RFC 3339 time>).
    #[arg(value_name = "REF", default_value = floe::DEFAULT_BRANCH)]
    reference: String,
    /// Show at most N entries.
    #[arg(short = 'n', long = "max-count", value_name = "N")]
    max_count: Option<usize>,
    /// Print one JSON document (see below) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct LogReport {
    #[serde(rename = "ref")]
    reference: String,
    snapshot: String,
    entries: Vec<EntryReport>,
}

#[derive(Serialize)]
struct EntryReport {
    id: String,
    generation: u64,
    committed_at: String,
    message: String,
    metadata: Map<String, Value>,
}

/// Prints the log.
pub async fn run(location: &RepoLocation, args: LogArgs, out: &mut dyn Write) -> CliResult {
    let repo = location.open().await?;
    let spec = VersionSpec::parse(&args.reference)?;
    let (tip, entries) = repo
        .log(&spec, args.max_count.unwrap_or(usize::MAX))
        .await
        .map_err(version_error)?;
    if args.json {
        let report = LogReport {
            reference: args.reference,
            snapshot: tip.to_string(),
            entries: entries
                .into_iter()
                .map(|e| EntryReport {
                    id: e.id.to_string(),
                    generation: e.generation,
                    committed_at: time(e.committed_at),
                    message: e.message,
                    metadata: e.metadata,
                })
                .collect(),
        };
        return write_json(out, &report);
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let metadata = if e.metadata.is_empty() {
                String::new()
            } else {
                Value::Object(e.metadata.clone()).to_string()
            };
            vec![
                short(&e.id),
                time(e.committed_at),
                one_line(&e.message),
                metadata,
            ]
        })
        .collect();
    write_table(
        out,
        &["SNAPSHOT", "COMMITTED", "MESSAGE", "METADATA"],
        &rows,
    )
}

/// The first line of a message, marked when more lines follow.
pub fn one_line(message: &str) -> String {
    let mut lines = message.lines();
    let first = lines.next().unwrap_or("").to_string();
    if lines.next().is_some() {
        format!("{first} ...")
    } else {
        first
    }
}
