//! Consolidated metadata: the root `zarr.json` carrying the metadata of every descendant node,
//! so a client (zarr-python 3, xarray, zarrs) opens a whole hierarchy with one request.
//!
//! The block has the form zarr-python 3 writes and reads:
//! `"consolidated_metadata": {"kind": "inline", "must_understand": false, "metadata": {...}}`
//! where `metadata` maps the flattened relative path of every descendant (`"a"`, `"a/b"`) to
//! its `zarr.json` document. Descendant groups carry an empty block of their own, as
//! zarr-python does, so readers know the listing is complete without asking the store.
//!
//! floe derives this block from the session every time; a block supplied by a writer is
//! dropped (it would go stale at the next change).

use serde_json::{Map, Value};

use crate::repo::NodeInfo;

use super::metadata::NodeMetadata;

/// The name of the consolidated metadata field of a group document.
pub const CONSOLIDATED_FIELD: &str = "consolidated_metadata";

/// The document of a node as served, without any consolidated metadata block.
pub fn plain_document(metadata: &NodeMetadata) -> Map<String, Value> {
    let mut document = metadata.document().clone();
    if metadata.geometry().is_none() {
        document.remove(CONSOLIDATED_FIELD);
    }
    document
}

fn block(metadata: Map<String, Value>) -> Value {
    let mut block = Map::new();
    block.insert("kind".into(), Value::from("inline"));
    block.insert("must_understand".into(), Value::from(false));
    block.insert("metadata".into(), Value::Object(metadata));
    Value::Object(block)
}

/// The root group document with a consolidated block listing every node of `nodes` except the
/// root itself. `nodes` are all the nodes of the session.
pub fn consolidated_root_document(root: &NodeMetadata, nodes: &[NodeInfo]) -> Map<String, Value> {
    let mut entries = Map::new();
    for node in nodes.iter().filter(|n| !n.path.is_root()) {
        let mut document = plain_document(&node.metadata);
        if node.metadata.geometry().is_none() {
            document.insert(CONSOLIDATED_FIELD.into(), block(Map::new()));
        }
        entries.insert(node.path.as_str().to_string(), Value::Object(document));
    }
    let mut document = plain_document(root);
    document.insert(CONSOLIDATED_FIELD.into(), block(entries));
    document
}

/// The metadata with any writer-supplied consolidated block removed (groups only).
pub fn without_consolidated(metadata: NodeMetadata) -> NodeMetadata {
    match metadata {
        NodeMetadata::Group { mut document } => {
            document.remove(CONSOLIDATED_FIELD);
            NodeMetadata::Group { document }
        }
        array => array,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::format::path::NodePath;

    fn group(attrs: Value) -> NodeMetadata {
        let doc = serde_json::json!({"zarr_format": 3, "node_type": "group", "attributes": attrs});
        NodeMetadata::from_value(&NodePath::root(), doc).unwrap()
    }

    #[test]
    fn root_lists_descendants_flattened() {
        let root = group(serde_json::json!({"title": "t"}));
        let nodes = vec![
            NodeInfo {
                path: NodePath::root(),
                metadata: Arc::new(root.clone()),
            },
            NodeInfo {
                path: NodePath::new("a").unwrap(),
                metadata: Arc::new(group(serde_json::json!({}))),
            },
            NodeInfo {
                path: NodePath::new("a/b").unwrap(),
                metadata: Arc::new(group(serde_json::json!({"x": 1}))),
            },
        ];
        let doc = Value::Object(consolidated_root_document(&root, &nodes));
        let block = &doc[CONSOLIDATED_FIELD];
        assert_eq!(block["kind"], "inline");
        assert_eq!(block["must_understand"], false);
        let metadata = block["metadata"].as_object().unwrap();
        assert_eq!(metadata.keys().collect::<Vec<_>>(), vec!["a", "a/b"]);
        assert_eq!(metadata["a/b"]["attributes"]["x"], 1);
        assert_eq!(
            metadata["a"][CONSOLIDATED_FIELD]["metadata"],
            serde_json::json!({})
        );
        assert_eq!(doc["attributes"]["title"], "t");
    }

    #[test]
    fn supplied_blocks_are_dropped() {
        let doc = serde_json::json!({"zarr_format": 3, "node_type": "group",
            CONSOLIDATED_FIELD: {"kind": "inline", "must_understand": false, "metadata": {}}});
        let parsed = NodeMetadata::from_value(&NodePath::root(), doc).unwrap();
        assert!(plain_document(&parsed).get(CONSOLIDATED_FIELD).is_none());
        assert!(without_consolidated(parsed)
            .document()
            .get(CONSOLIDATED_FIELD)
            .is_none());
    }
}
