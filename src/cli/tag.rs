//! `floe tag`: create, list and delete tags.

use std::io::Write;

use clap::Subcommand;
use serde::Serialize;

use super::common::{resolve, short, time, write_json, write_table, CliResult, RepoLocation};

/// Documentation of `floe tag list --json`.
pub const JSON_HELP: &str = "\
JSON output (--json), one document:
  {\"tags\": [{\"name\": \"v1\", \"snapshot\": \"<64-hex id>\",
             \"created_at\": \"<RFC 3339 UTC, microseconds>\"}, ...]}
Tags are sorted by name; deleted tags are not listed.";

/// The `tag` subcommands.
#[derive(Debug, Subcommand)]
pub enum TagCommand {
    /// Tag a version. Tags never move, and a tag name is never reused, even after deletion.
    Create {
        /// The tag's name (letters, digits, `.`, `_`, `-`).
        name: String,
        /// The version to tag.
        #[arg(value_name = "REF", default_value = floe::DEFAULT_BRANCH)]
        reference: String,
    },
    /// List tags.
    #[command(after_long_help = JSON_HELP)]
    List {
        /// Print one JSON document (see below) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete a tag (the name stays reserved).
    Delete {
        /// The tag to delete.
        name: String,
    },
}

#[derive(Serialize)]
struct TagReport {
    name: String,
    snapshot: String,
    created_at: String,
}

#[derive(Serialize)]
struct TagList {
    tags: Vec<TagReport>,
}

/// Runs a `tag` subcommand.
pub async fn run(location: &RepoLocation, command: TagCommand, out: &mut dyn Write) -> CliResult {
    let repo = location.open().await?;
    match command {
        TagCommand::Create { name, reference } => {
            let id = resolve(&repo, &reference).await?;
            repo.create_tag(&name, id).await?;
            writeln!(out, "created tag {name} at {}", short(&id))?;
        }
        TagCommand::List { json } => {
            let tags: Vec<TagReport> = repo
                .list_tags()
                .await?
                .into_iter()
                .map(|t| TagReport {
                    name: t.name,
                    snapshot: t.snapshot.to_string(),
                    created_at: time(t.created_at),
                })
                .collect();
            if json {
                write_json(out, &TagList { tags })?;
            } else {
                let rows: Vec<Vec<String>> = tags
                    .iter()
                    .map(|t| {
                        vec![
                            t.name.clone(),
                            t.snapshot.chars().take(12).collect(),
                            t.created_at.clone(),
                        ]
                    })
                    .collect();
                write_table(out, &["TAG", "SNAPSHOT", "CREATED"], &rows)?;
            }
        }
        TagCommand::Delete { name } => {
            let tag = repo.tag(&name).await?;
            repo.delete_tag(&name).await?;
            writeln!(out, "deleted tag {name} (was at {})", short(&tag.snapshot))?;
        }
    }
    Ok(())
}
