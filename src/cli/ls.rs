//! `floe ls`: the tree of groups and arrays of a version.

use std::io::Write;

use floe::{NodeInfo, NodeMetadata, NodePath};
use serde::Serialize;
use serde_json::Value;

use super::common::{dims, resolve, write_json, write_table, CliResult, RepoLocation};

/// Documentation of `floe ls --json`.
pub const JSON_HELP: &str = "\
JSON output (--json), one document:
  {\"ref\": \"<REF as given>\", \"snapshot\": \"<64-hex id>\", \"path\": \"/<PATH>\",
   \"nodes\": [{\"path\": \"/a/b\", \"type\": \"group\" | \"array\",
              arrays also: \"shape\": [..], \"chunk_shape\": [..], \"dtype\": \"float32\"}, ...]}
Nodes are PATH and everything below it, parents before children; paths start with `/`.";

/// Arguments of `floe ls`.
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// The version to list.
    #[arg(long = "at", value_name = "REF", default_value = floe::DEFAULT_BRANCH)]
    at: String,
    /// The group (or array) to list, `/` for everything.
    #[arg(value_name = "PATH", default_value = "/")]
    path: String,
    /// Print one JSON document (see below) instead of a tree.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct LsReport {
    #[serde(rename = "ref")]
    reference: String,
    snapshot: String,
    path: String,
    nodes: Vec<NodeReport>,
}

#[derive(Serialize)]
struct NodeReport {
    path: String,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    shape: Option<Vec<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chunk_shape: Option<Vec<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dtype: Option<String>,
}

/// The name of an array's data type (`float32`, or an extension type's `name`).
pub fn dtype_name(metadata: &NodeMetadata) -> Option<String> {
    match metadata.document().get("data_type")? {
        Value::String(name) => Some(name.clone()),
        Value::Object(object) => object
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

/// The nodes at or below `root`, parents before children, siblings by name.
pub fn subtree(nodes: Vec<NodeInfo>, root: &NodePath) -> Vec<NodeInfo> {
    let mut found: Vec<NodeInfo> = nodes
        .into_iter()
        .filter(|n| n.path.is_within(root))
        .collect();
    found.sort_by(|a, b| {
        let segments = |p: &NodePath| {
            p.as_str()
                .split('/')
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let (a, b) = (&a.path, &b.path);
        match (a.is_root(), b.is_root()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            (false, false) => segments(a).cmp(&segments(b)),
        }
    });
    found
}

/// Lists the tree.
pub async fn run(location: &RepoLocation, args: LsArgs, out: &mut dyn Write) -> CliResult {
    let repo = location.open().await?;
    let root = NodePath::new(&args.path)?;
    let id = resolve(&repo, &args.at).await?;
    let session = repo.session_at_snapshot(id).await?;
    if !root.is_root() {
        session.require_node(&root)?;
    }
    let nodes = subtree(session.list_nodes()?, &root);
    let reports: Vec<NodeReport> = nodes
        .iter()
        .map(|n| {
            let geometry = n.metadata.geometry();
            NodeReport {
                path: n.path.to_string(),
                kind: n.metadata.kind_name(),
                shape: geometry.map(|g| g.shape.clone()),
                chunk_shape: geometry.map(|g| g.max_chunk_shape()),
                dtype: geometry.and(dtype_name(&n.metadata)),
            }
        })
        .collect();
    if args.json {
        let report = LsReport {
            reference: args.at,
            snapshot: id.to_string(),
            path: root.to_string(),
            nodes: reports,
        };
        return write_json(out, &report);
    }
    if nodes.is_empty() {
        writeln!(
            out,
            "no groups or arrays at {} ({})",
            args.at,
            super::common::short(&id)
        )?;
        return Ok(());
    }
    let base_depth = root.depth();
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .zip(&reports)
        .map(|(node, report)| {
            let indent = "  ".repeat(node.path.depth().saturating_sub(base_depth));
            let name = if node.path.is_root() {
                "/".to_string()
            } else if node.path == root {
                node.path.to_string()
            } else {
                node.path.name().to_string()
            };
            let suffix = if report.kind == "group" && !node.path.is_root() {
                "/"
            } else {
                ""
            };
            vec![
                format!("{indent}{name}{suffix}"),
                report.kind.to_string(),
                report.dtype.clone().unwrap_or_default(),
                report.shape.as_deref().map(dims).unwrap_or_default(),
                report.chunk_shape.as_deref().map(dims).unwrap_or_default(),
            ]
        })
        .collect();
    write_table(out, &["NAME", "TYPE", "DTYPE", "SHAPE", "CHUNKS"], &rows)
}
