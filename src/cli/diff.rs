//! `floe diff`: what changed between two versions.

use std::io::Write;

use serde::Serialize;

use super::common::{resolve, short, write_json, write_table, CliResult, RepoLocation};
use floe::{ChunkDiff, DiffOptions, MetadataDiff, NodeChange, NodePath, NodeType};

/// Documentation of `floe diff --json`.
pub const JSON_HELP: &str = "\
JSON output (--json), one document:
  {\"from\": \"<64-hex id FROM resolves to>\", \"to\": \"<64-hex id TO resolves to>\",
   \"shards_read\": <manifest shards compared entry by entry>,
   \"shards_skipped\": <shards equal on both sides, not read>,
   \"nodes\": [{\"path\": \"/...\", \"change\": \"added|deleted|replaced|updated\",
              \"type\": \"group|array\", \"from_type\": \"group|array\" (replaced only),
              \"metadata\": {\"shape\": [[old...], [new...]] or null,
                           \"attributes_added\": [...], \"attributes_removed\": [...],
                           \"attributes_changed\": [...], \"codecs_changed\": bool,
                           \"other_fields_changed\": [...]} (updated only),
              \"chunks\": {\"added\": n, \"changed\": n, \"removed\": n,
                         \"bytes_added\": n, \"bytes_removed\": n,
                         \"coords\": {\"added\": [[...]], \"changed\": [...], \"removed\": [...]}
                                   (with --coords)} or null (groups)}, ...]}
Nodes are in path order; nodes that did not change are left out.";

/// Arguments of `floe diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The older version (branch, tag, snapshot id or prefix, branch@<RFC 3339 time>).
    #[arg(value_name = "FROM")]
    from: String,
    /// The newer version; need not descend from FROM.
    #[arg(value_name = "TO")]
    to: String,
    /// Only nodes at or below this path.
    #[arg(value_name = "PATH")]
    path: Option<String>,
    /// List the coordinates of the chunks added, changed and removed.
    #[arg(long)]
    coords: bool,
    /// Print one JSON document (see below) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct DiffReport {
    from: String,
    to: String,
    shards_read: u64,
    shards_skipped: u64,
    nodes: Vec<NodeReport>,
}

#[derive(Serialize)]
struct NodeReport {
    path: String,
    change: &'static str,
    #[serde(rename = "type")]
    node_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    from_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<MetadataReport>,
    chunks: Option<ChunksReport>,
}

#[derive(Serialize)]
struct MetadataReport {
    shape: Option<(Vec<u64>, Vec<u64>)>,
    attributes_added: Vec<String>,
    attributes_removed: Vec<String>,
    attributes_changed: Vec<String>,
    codecs_changed: bool,
    other_fields_changed: Vec<String>,
}

#[derive(Serialize)]
struct ChunksReport {
    added: u64,
    changed: u64,
    removed: u64,
    bytes_added: u64,
    bytes_removed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    coords: Option<CoordsReport>,
}

#[derive(Serialize)]
struct CoordsReport {
    added: Vec<Vec<u64>>,
    changed: Vec<Vec<u64>>,
    removed: Vec<Vec<u64>>,
}

fn type_name(t: NodeType) -> &'static str {
    match t {
        NodeType::Group => "group",
        NodeType::Array => "array",
    }
}

fn metadata_report(m: &MetadataDiff) -> MetadataReport {
    MetadataReport {
        shape: m.shape.clone(),
        attributes_added: m.attributes_added.clone(),
        attributes_removed: m.attributes_removed.clone(),
        attributes_changed: m.attributes_changed.clone(),
        codecs_changed: m.codecs_changed,
        other_fields_changed: m.other_fields_changed.clone(),
    }
}

fn chunks_report(c: &ChunkDiff) -> ChunksReport {
    ChunksReport {
        added: c.added,
        changed: c.changed,
        removed: c.removed,
        bytes_added: c.bytes_added,
        bytes_removed: c.bytes_removed,
        coords: c.coords.as_ref().map(|coords| CoordsReport {
            added: coords.added.clone(),
            changed: coords.changed.clone(),
            removed: coords.removed.clone(),
        }),
    }
}

/// What changed in a node's metadata, in a few words.
fn metadata_words(m: &MetadataDiff) -> Vec<String> {
    let mut words = Vec::new();
    if let Some((old, new)) = &m.shape {
        words.push(format!("shape {old:?} -> {new:?}"));
    }
    let keys = |what: &str, keys: &[String]| format!("{what} {}", keys.join(","));
    if !m.attributes_added.is_empty() {
        words.push(keys("+attrs", &m.attributes_added));
    }
    if !m.attributes_removed.is_empty() {
        words.push(keys("-attrs", &m.attributes_removed));
    }
    if !m.attributes_changed.is_empty() {
        words.push(keys("~attrs", &m.attributes_changed));
    }
    if m.codecs_changed {
        words.push("codecs".to_string());
    }
    if !m.other_fields_changed.is_empty() {
        words.push(m.other_fields_changed.join(","));
    }
    words
}

/// Prints the difference.
pub async fn run(location: &RepoLocation, args: DiffArgs, out: &mut dyn Write) -> CliResult {
    let repo = location.open().await?;
    let path = args.path.as_deref().map(NodePath::new).transpose()?;
    let (from, to) = futures::try_join!(resolve(&repo, &args.from), resolve(&repo, &args.to))?;
    let options = DiffOptions {
        path,
        chunk_coords: args.coords,
    };
    let diff = repo.diff(from, to, &options).await?;
    if args.json {
        let nodes = diff
            .nodes
            .iter()
            .map(|n| {
                let (change, node_type, from_type, metadata) = match &n.change {
                    NodeChange::Added(t) => ("added", type_name(*t), None, None),
                    NodeChange::Deleted(t) => ("deleted", type_name(*t), None, None),
                    NodeChange::Replaced { from, to } => {
                        ("replaced", type_name(*to), Some(type_name(*from)), None)
                    }
                    NodeChange::Updated(m) => {
                        let t = if n.chunks.is_some() { "array" } else { "group" };
                        ("updated", t, None, Some(metadata_report(m)))
                    }
                };
                NodeReport {
                    path: n.path.to_string(),
                    change,
                    node_type,
                    from_type,
                    metadata,
                    chunks: n.chunks.as_ref().map(chunks_report),
                }
            })
            .collect();
        let report = DiffReport {
            from: from.to_string(),
            to: to.to_string(),
            shards_read: diff.shards_read,
            shards_skipped: diff.shards_skipped,
            nodes,
        };
        return write_json(out, &report);
    }
    writeln!(out, "{} -> {}", short(&from), short(&to))?;
    let rows: Vec<Vec<String>> = diff
        .nodes
        .iter()
        .map(|n| {
            let (change, details) = match &n.change {
                NodeChange::Added(t) => (format!("+{}", type_name(*t)), Vec::new()),
                NodeChange::Deleted(t) => (format!("-{}", type_name(*t)), Vec::new()),
                NodeChange::Replaced { from, to } => (
                    format!("{} -> {}", type_name(*from), type_name(*to)),
                    Vec::new(),
                ),
                NodeChange::Updated(m) => ("~".to_string(), metadata_words(m)),
            };
            let chunks = n.chunks.as_ref().map_or(String::new(), |c| {
                format!("+{} ~{} -{}", c.added, c.changed, c.removed)
            });
            let bytes = n.chunks.as_ref().map_or(String::new(), |c| {
                format!("+{} -{}", c.bytes_added, c.bytes_removed)
            });
            vec![
                n.path.to_string(),
                change,
                chunks,
                bytes,
                details.join("; "),
            ]
        })
        .collect();
    write_table(
        out,
        &["PATH", "CHANGE", "CHUNKS +~-", "BYTES +-", "METADATA"],
        &rows,
    )?;
    if args.coords {
        for n in &diff.nodes {
            let Some(coords) = n.chunks.as_ref().and_then(|c| c.coords.as_ref()) else {
                continue;
            };
            for (sign, list) in [
                ("+", &coords.added),
                ("~", &coords.changed),
                ("-", &coords.removed),
            ] {
                for coord in list {
                    writeln!(out, "{sign} {} {coord:?}", n.path)?;
                }
            }
        }
    }
    Ok(())
}
