//! Consolidated metadata: a group's `zarr.json` carrying the metadata of every node below it,
//! so a client (zarr-python 3, xarray, zarrs) opens that group's whole subtree with one request.
//! Every group can carry one, not only the root: a dataset stored in group `ds` opens from
//! `…/ds` as quickly as a dataset at the root.
//!
//! The block has the form zarr-python 3 writes (`zarr.consolidate_metadata(store, path)`) and
//! reads: `"consolidated_metadata": {"kind": "inline", "must_understand": false, "metadata":
//! {...}}` where `metadata` maps the flattened path of every descendant relative to the
//! consolidating group (`"a"`, `"a/b"`) to its `zarr.json` document. Descendant groups carry an
//! empty block of their own, as zarr-python does, so readers know the listing is complete
//! without asking the store (zarr-python fills those nested blocks from the flat entries).
//!
//! floe derives this block from the session every time; a block supplied by a writer is
//! dropped (it would go stale at the next change). Rendered documents are cached by
//! [`super::group_documents::GroupDocuments`].

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::format::path::NodePath;
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

/// The document of the group at `group` (whose metadata is `metadata`) with a consolidated
/// block listing every node of `nodes` strictly below `group`, keyed by its path relative to
/// `group` (`"t"`, `"sub/u"`), plus an empty implicit group for every intermediate path that
/// has no node (zarr-python cannot open a consolidated hierarchy with a gap). Other nodes of `nodes` (the group itself, its ancestors,
/// siblings such as `ds-1` next to `ds`) are ignored, so `nodes` may be any superset of the
/// descendants, for example every node of the session.
pub fn consolidated_document(
    group: &NodePath,
    metadata: &NodeMetadata,
    nodes: &[NodeInfo],
) -> Map<String, Value> {
    let prefix = group.key_prefix();
    let mut entries = Map::new();
    for node in nodes {
        let relative = match node.path.as_str().strip_prefix(&prefix) {
            Some(relative) if !relative.is_empty() => relative,
            _ => continue,
        };
        let mut document = plain_document(&node.metadata);
        if node.metadata.geometry().is_none() {
            document.insert(CONSOLIDATED_FIELD.into(), block(Map::new()));
        }
        entries.insert(relative.to_string(), Value::Object(document));
    }
    // zarr-python nests the flat entries by parent: every intermediate group must have an
    // entry, even one the session never created (the library lets arrays sit below missing
    // groups); such a group reads as an empty implicit group.
    let implied: Vec<String> = entries
        .keys()
        .flat_map(|key| {
            key.match_indices('/')
                .map(|(i, _)| key[..i].to_string())
                .collect::<Vec<_>>()
        })
        .filter(|parent| !entries.contains_key(parent))
        .collect();
    for parent in implied {
        let mut implicit = Map::new();
        implicit.insert("zarr_format".into(), Value::from(3));
        implicit.insert("node_type".into(), Value::from("group"));
        implicit.insert("attributes".into(), Value::Object(Map::new()));
        implicit.insert(CONSOLIDATED_FIELD.into(), block(Map::new()));
        entries.insert(parent, Value::Object(implicit));
    }
    let mut document = plain_document(metadata);
    document.insert(CONSOLIDATED_FIELD.into(), block(entries));
    document
}

/// The JSON text of a `zarr.json` document, as served.
pub fn render(document: Map<String, Value>) -> Bytes {
    Bytes::from(Value::Object(document).to_string())
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

    use serde_json::json;

    use super::*;
    use crate::zarr::metadata::tests::array_json;

    fn group(attrs: Value) -> NodeMetadata {
        let doc = json!({"zarr_format": 3, "node_type": "group", "attributes": attrs});
        NodeMetadata::from_value(&NodePath::root(), doc).unwrap()
    }

    fn node(path: &str, metadata: NodeMetadata) -> NodeInfo {
        NodeInfo {
            path: NodePath::new(path).unwrap(),
            metadata: Arc::new(metadata),
        }
    }

    fn array(path: &str) -> NodeInfo {
        let path = NodePath::new(path).unwrap();
        let metadata = NodeMetadata::from_value(&path, array_json(&[4], &[2])).unwrap();
        NodeInfo {
            path,
            metadata: Arc::new(metadata),
        }
    }

    /// Every node of a hierarchy with siblings whose names start like `ds` (`ds-1` sorts
    /// between `ds` and `ds/...`, `dsx` after them).
    fn hierarchy() -> Vec<NodeInfo> {
        vec![
            node("", group(json!({"title": "t"}))),
            node("ds", group(json!({"level": 1}))),
            node("ds-1", group(json!({}))),
            array("ds-1/t"),
            node("ds/sub", group(json!({"level": 2}))),
            node("ds/sub/deep", group(json!({}))),
            array("ds/sub/deep/v"),
            array("ds/sub/u"),
            array("ds/t"),
            array("dsx"),
        ]
    }

    fn entries(document: &Map<String, Value>) -> &Map<String, Value> {
        document[CONSOLIDATED_FIELD]["metadata"]
            .as_object()
            .unwrap()
    }

    fn keys(document: &Map<String, Value>) -> Vec<&str> {
        let mut keys: Vec<&str> = entries(document).keys().map(String::as_str).collect();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn root_lists_descendants_flattened() {
        let nodes = hierarchy();
        let doc = consolidated_document(&NodePath::root(), &nodes[0].metadata, &nodes);
        let block = &doc[CONSOLIDATED_FIELD];
        assert_eq!(block["kind"], "inline");
        assert_eq!(block["must_understand"], false);
        assert_eq!(
            keys(&doc),
            [
                "ds",
                "ds-1",
                "ds-1/t",
                "ds/sub",
                "ds/sub/deep",
                "ds/sub/deep/v",
                "ds/sub/u",
                "ds/t",
                "dsx"
            ]
        );
        assert_eq!(entries(&doc)["ds/sub"]["attributes"]["level"], 2);
        assert_eq!(doc["attributes"]["title"], "t");
    }

    #[test]
    fn missing_intermediate_groups_get_implicit_entries() {
        let root = group(json!({}));
        let nodes = vec![
            NodeInfo {
                path: NodePath::root(),
                metadata: Arc::new(root.clone()),
            },
            NodeInfo {
                path: NodePath::new("obs/x/y").unwrap(),
                metadata: Arc::new(group(json!({"k": 1}))),
            },
        ];
        let doc = consolidated_document(&NodePath::root(), &root, &nodes);
        assert_eq!(keys(&doc), ["obs", "obs/x", "obs/x/y"]);
        assert_eq!(entries(&doc)["obs/x"]["node_type"], "group");
        assert_eq!(entries(&doc)["obs/x/y"]["attributes"]["k"], 1);
    }

    #[test]
    fn sub_groups_list_exactly_their_descendants_by_relative_path() {
        let nodes = hierarchy();
        let ds = consolidated_document(&NodePath::new("ds").unwrap(), &nodes[1].metadata, &nodes);
        // Not the group itself, its ancestors, nor the siblings `ds-1` and `dsx`.
        assert_eq!(keys(&ds), ["sub", "sub/deep", "sub/deep/v", "sub/u", "t"]);
        assert_eq!(ds["attributes"]["level"], 1);
        assert_eq!(entries(&ds)["sub"]["attributes"]["level"], 2);
        assert_eq!(
            Value::Object(entries(&ds)["t"].as_object().unwrap().clone()),
            Value::Object(plain_document(&nodes[8].metadata))
        );
        let sub = consolidated_document(
            &NodePath::new("ds/sub").unwrap(),
            &nodes[4].metadata,
            &nodes,
        );
        assert_eq!(keys(&sub), ["deep", "deep/v", "u"]);
        let deep = consolidated_document(
            &NodePath::new("ds/sub/deep").unwrap(),
            &nodes[5].metadata,
            &nodes,
        );
        assert_eq!(keys(&deep), ["v"]);
        // A group with nothing below it carries an empty block, like zarr-python's.
        let empty = group(json!({}));
        let leaf = consolidated_document(&NodePath::new("ds/empty").unwrap(), &empty, &nodes);
        assert!(entries(&leaf).is_empty());
    }

    #[test]
    fn nested_groups_carry_an_empty_block_and_arrays_none() {
        let nodes = hierarchy();
        let ds = consolidated_document(&NodePath::new("ds").unwrap(), &nodes[1].metadata, &nodes);
        let empty = json!({"kind": "inline", "must_understand": false, "metadata": {}});
        for nested in ["sub", "sub/deep"] {
            assert_eq!(entries(&ds)[nested][CONSOLIDATED_FIELD], empty, "{nested}");
        }
        for array in ["t", "sub/u", "sub/deep/v"] {
            assert!(
                entries(&ds)[array].get(CONSOLIDATED_FIELD).is_none(),
                "{array}"
            );
        }
    }

    #[test]
    fn supplied_blocks_are_dropped() {
        let doc = json!({"zarr_format": 3, "node_type": "group",
            CONSOLIDATED_FIELD: {"kind": "inline", "must_understand": false, "metadata": {}}});
        let parsed = NodeMetadata::from_value(&NodePath::root(), doc).unwrap();
        assert!(plain_document(&parsed).get(CONSOLIDATED_FIELD).is_none());
        assert!(without_consolidated(parsed)
            .document()
            .get(CONSOLIDATED_FIELD)
            .is_none());
    }

    #[test]
    fn stale_blocks_of_nested_groups_are_replaced() {
        let stale = json!({"zarr_format": 3, "node_type": "group",
            CONSOLIDATED_FIELD: {"kind": "inline", "must_understand": false,
                                 "metadata": {"gone": {}}}});
        let nodes = vec![
            node("", group(json!({}))),
            node(
                "a",
                NodeMetadata::from_value(&NodePath::root(), stale).unwrap(),
            ),
        ];
        let root = consolidated_document(&NodePath::root(), &nodes[0].metadata, &nodes);
        assert_eq!(
            entries(&root)["a"][CONSOLIDATED_FIELD]["metadata"],
            json!({})
        );
    }
}
