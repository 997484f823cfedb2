//! The documents `Repository.diff` and `Repository.reflog` hand to Python, in the shape the
//! CLI's `floe diff --json` and `floe reflog --json` print.

use floe::{BranchMove, ChunkDiff, NodeChange, NodeType, VersionDiff};
use serde_json::{json, Value};

fn type_name(t: NodeType) -> &'static str {
    match t {
        NodeType::Group => "group",
        NodeType::Array => "array",
    }
}

/// The name of a branch move.
pub(crate) fn move_name(kind: BranchMove) -> &'static str {
    match kind {
        BranchMove::Created => "created",
        BranchMove::Commit => "commit",
        BranchMove::Reset => "reset",
        BranchMove::Deleted => "deleted",
    }
}

fn chunks(c: &ChunkDiff) -> Value {
    let mut doc = json!({
        "added": c.added, "changed": c.changed, "removed": c.removed,
        "bytes_added": c.bytes_added, "bytes_removed": c.bytes_removed,
    });
    if let Some(coords) = &c.coords {
        doc["coords"] = json!({
            "added": coords.added, "changed": coords.changed, "removed": coords.removed,
        });
    }
    doc
}

/// `floe diff --json`'s document for `diff`.
pub(crate) fn diff_document(diff: &VersionDiff) -> Value {
    let nodes: Vec<Value> = diff
        .nodes
        .iter()
        .map(|n| {
            let mut doc = json!({
                "path": n.path.to_string(),
                "chunks": n.chunks.as_ref().map(chunks),
            });
            match &n.change {
                NodeChange::Added(t) => {
                    doc["change"] = json!("added");
                    doc["type"] = json!(type_name(*t));
                }
                NodeChange::Deleted(t) => {
                    doc["change"] = json!("deleted");
                    doc["type"] = json!(type_name(*t));
                }
                NodeChange::Replaced { from, to } => {
                    doc["change"] = json!("replaced");
                    doc["type"] = json!(type_name(*to));
                    doc["from_type"] = json!(type_name(*from));
                }
                NodeChange::Updated(m) => {
                    doc["change"] = json!("updated");
                    doc["type"] = json!(if n.chunks.is_some() { "array" } else { "group" });
                    doc["metadata"] = json!({
                        "shape": m.shape,
                        "attributes_added": m.attributes_added,
                        "attributes_removed": m.attributes_removed,
                        "attributes_changed": m.attributes_changed,
                        "codecs_changed": m.codecs_changed,
                        "other_fields_changed": m.other_fields_changed,
                    });
                }
            }
            doc
        })
        .collect();
    json!({
        "from": diff.from.to_string(),
        "to": diff.to.to_string(),
        "shards_read": diff.shards_read,
        "shards_skipped": diff.shards_skipped,
        "nodes": nodes,
    })
}
