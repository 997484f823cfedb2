//! `floe du`: logical and stored bytes of every array below a path, from shard statistics.

use std::io::Write;

use floe::{ExpireBefore, ExpireOptions, NodePath};
use serde::Serialize;

use super::age::parse_before;
use super::common::{bytes, resolve, short, write_json, write_table, CliResult, RepoLocation};
use super::info::logical_bytes;

/// Documentation of `floe du --json`.
pub const JSON_HELP: &str = "\
JSON output (--json), one document:
  {\"ref\": \"<REF as given>\", \"snapshot\": \"<64-hex id>\", \"path\": \"/...\",
   \"arrays\": [{\"path\": \"/a/b\", \"chunks_total\": n, \"chunks_initialized\": n,
               \"inline\": n, \"native\": n, \"virtual\": n,
               \"bytes_logical\": n or null (variable-size data type),
               \"bytes_stored\": n}, ...],
   \"total\": {same fields without \"path\"; bytes_logical null if any array's is},
   \"old_versions\": {\"objects\": n, \"bytes\": n} (with --old-versions; else absent)}
Arrays at or below PATH, in path order. bytes_stored counts virtual chunks by the length of
their byte ranges (bytes outside the repository). Costs no manifest read: the counts are the
statistics every snapshot keeps per manifest shard.

--old-versions AGE|TIME adds, for the whole repository (whatever PATH), the objects and bytes
that only history older than that holds (with versions no branch or tag reaches any more):
what `floe gc` would free after
`floe expire --older-than AGE|TIME` (the default --keep-last 1). Nothing is recorded; this
reads the repository's history and the manifests of the slots that history changed.";

/// Arguments of `floe du`.
#[derive(Debug, clap::Args)]
pub struct DuArgs {
    /// The version to look at.
    #[arg(long = "at", value_name = "REF", default_value = floe::DEFAULT_BRANCH)]
    at: String,
    /// The group or array to sum up (`/`, the whole tree, by default).
    #[arg(value_name = "PATH", default_value = "/")]
    path: String,
    /// Also report the bytes only history older than this holds (an age such as `30d`, or an
    /// RFC 3339 time): what expiry then GC would free.
    #[arg(long = "old-versions", value_name = "AGE|TIME", value_parser = parse_before)]
    old_versions: Option<ExpireBefore>,
    /// Print one JSON document (see below) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct OldVersions {
    objects: u64,
    bytes: u64,
}

#[derive(Serialize, Default)]
struct Usage {
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    chunks_total: u64,
    chunks_initialized: u64,
    inline: u64,
    native: u64,
    #[serde(rename = "virtual")]
    virtual_chunks: u64,
    bytes_logical: Option<u64>,
    bytes_stored: u64,
}

#[derive(Serialize)]
struct DuReport {
    #[serde(rename = "ref")]
    reference: String,
    snapshot: String,
    path: String,
    arrays: Vec<Usage>,
    total: Usage,
    #[serde(skip_serializing_if = "Option::is_none")]
    old_versions: Option<OldVersions>,
}

/// Prints the usage.
pub async fn run(location: &RepoLocation, args: DuArgs, out: &mut dyn Write) -> CliResult {
    let repo = location.open().await?;
    let root = NodePath::new(&args.path)?;
    let id = resolve(&repo, &args.at).await?;
    let session = repo.session_at_snapshot(id).await?;
    let top = session.require_node(&root)?;
    let mut nodes = vec![top];
    nodes.extend(session.list_descendants(&root)?);
    let mut arrays = Vec::new();
    let mut total = Usage {
        bytes_logical: Some(0),
        ..Default::default()
    };
    for node in nodes {
        if node.metadata.geometry().is_none() {
            continue;
        }
        let stats = session.array_stats(&node.path).await?;
        let logical = logical_bytes(&node.metadata);
        total.chunks_total = total.chunks_total.saturating_add(stats.chunks_total);
        total.chunks_initialized += stats.chunks_initialized;
        total.inline += stats.inline_chunks;
        total.native += stats.native_chunks;
        total.virtual_chunks += stats.virtual_chunks;
        total.bytes_stored += stats.bytes_stored;
        total.bytes_logical = total
            .bytes_logical
            .zip(logical)
            .and_then(|(a, b)| a.checked_add(b));
        arrays.push(Usage {
            path: Some(node.path.to_string()),
            chunks_total: stats.chunks_total,
            chunks_initialized: stats.chunks_initialized,
            inline: stats.inline_chunks,
            native: stats.native_chunks,
            virtual_chunks: stats.virtual_chunks,
            bytes_logical: logical,
            bytes_stored: stats.bytes_stored,
        });
    }
    let old_versions = match args.old_versions {
        Some(before) => {
            let dry = ExpireOptions {
                dry_run: true,
                ..ExpireOptions::older_than(before)
            };
            let (objects, bytes) = repo.expire(&dry).await?.would_free.unwrap_or_default();
            Some(OldVersions { objects, bytes })
        }
        None => None,
    };
    if args.json {
        let report = DuReport {
            reference: args.at,
            snapshot: id.to_string(),
            path: root.to_string(),
            arrays,
            total,
            old_versions,
        };
        return write_json(out, &report);
    }
    writeln!(out, "{} ({})", short(&id), args.at)?;
    let row = |u: &Usage, name: String| {
        vec![
            name,
            format!("{}/{}", u.chunks_initialized, u.chunks_total),
            u.inline.to_string(),
            u.native.to_string(),
            u.virtual_chunks.to_string(),
            u.bytes_logical.map_or("?".to_string(), bytes),
            bytes(u.bytes_stored),
        ]
    };
    let mut rows: Vec<Vec<String>> = arrays
        .iter()
        .map(|u| row(u, u.path.clone().unwrap_or_default()))
        .collect();
    rows.push(row(&total, "total".to_string()));
    write_table(
        out,
        &[
            "ARRAY", "CHUNKS", "INLINE", "NATIVE", "VIRTUAL", "LOGICAL", "STORED",
        ],
        &rows,
    )?;
    if let Some(old) = old_versions {
        writeln!(
            out,
            "only older history holds: {} in {} objects (what expiry then `floe gc` would free)",
            bytes(old.bytes),
            old.objects
        )?;
    }
    Ok(())
}
