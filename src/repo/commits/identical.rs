//! Identical changes (spec/algorithms.md §8, "Agreed nodes"): whether two sides left a node
//! in the same state, so that their changes of it merge, and how two versions of a node
//! differ when they do not, for conflict messages.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::format::txlog::NodeChange;
use crate::repo::write::change_set::NodeEdit;
use crate::zarr::metadata::NodeMetadata;

/// Values longer than this many characters are cut short in messages.
const SHOWN_VALUE_CHARS: usize = 60;

/// True when `a` and `b` are the same `zarr.json`: every key has the same value, and an
/// absent `attributes` counts as `{}`. Key order does not matter.
pub(crate) fn same_document(a: &NodeMetadata, b: &NodeMetadata) -> bool {
    let (a, b) = (a.document(), b.document());
    let others_equal = |x: &Map<String, Value>, y: &Map<String, Value>| {
        x.iter()
            .filter(|(k, _)| *k != "attributes")
            .all(|(k, v)| y.get(k) == Some(v))
    };
    others_equal(a, b) && others_equal(b, a) && attributes(a) == attributes(b)
}

/// True when two session edits of one node leave it in the same state: both absent (no
/// edit), both deleted, or both put the same document ([`same_document`]) with the same
/// `fresh` flag.
pub(crate) fn same_edit(a: Option<&NodeEdit>, b: Option<&NodeEdit>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(NodeEdit::Deleted), Some(NodeEdit::Deleted)) => true,
        (
            Some(NodeEdit::Put {
                metadata: ma,
                fresh: fa,
            }),
            Some(NodeEdit::Put {
                metadata: mb,
                fresh: fb,
            }),
        ) => fa == fb && same_document(ma, mb),
        _ => false,
    }
}

/// Whether another commit, which recorded `change` for a node the session edits, left that
/// node as the session's edit `ours` leaves it (`theirs`: the commit's document, `None` when
/// the node is absent after it; `clipped`: the session keeps a clip for the node; `in_base`:
/// the session's parent has a node at the path).
///
/// `Ok(())` when they agree: both deleted it, or both leave the same document with the same
/// chunks. So the session must not have shrunk the array (its clip would drop the other
/// side's chunks); if it re-created a node of the base (`fresh`), the other commit must have
/// created it as well (else the other side kept chunks the session drops); and if it updated
/// a node of its parent (kept its chunks), the other commit must have updated it too (else
/// the other side dropped the chunks the session writes on). Otherwise `Err` with what a
/// conflict message should add, or an empty string when the states plainly differ (one side
/// deleted the node).
pub(crate) fn agreement(
    ours: &NodeEdit,
    clipped: bool,
    in_base: bool,
    change: NodeChange,
    theirs: Option<&NodeMetadata>,
) -> Result<(), String> {
    let (metadata, fresh, theirs) = match (ours, theirs) {
        (NodeEdit::Deleted, None) => return Ok(()),
        (NodeEdit::Put { metadata, fresh }, Some(theirs)) => (metadata, *fresh, theirs),
        _ => return Err(String::new()),
    };
    if !same_document(metadata, theirs) {
        return Err(format!(
            "to different metadata: {}",
            describe_difference(metadata, theirs, "this session", "the other commit")
        ));
    }
    if clipped {
        let why = "this session shrank the array in between (its chunks beyond the smaller \
                   shape are dropped, the other commit's included)";
        return Err(format!("to the same metadata, but {why}"));
    }
    if fresh && change != NodeChange::Created {
        let why = "this session re-created the node (dropping its chunks) while the other \
                   commit kept them";
        return Err(format!("to the same metadata, but {why}"));
    }
    if !fresh && in_base && change != NodeChange::Updated {
        let why = "the other commit re-created the node (dropping its chunks) while this \
                   session kept them";
        return Err(format!("to the same metadata, but {why}"));
    }
    Ok(())
}

/// How `ours` differs from `theirs`, named `our_name` and `their_name`: the first key whose
/// value differs (an attribute as `attributes.<key>`), both values (shortened, or `absent`),
/// and how many other keys differ. Keys are taken in sorted order, attributes last.
pub(crate) fn describe_difference(
    ours: &NodeMetadata,
    theirs: &NodeMetadata,
    our_name: &str,
    their_name: &str,
) -> String {
    let (o, t) = (ours.document(), theirs.document());
    let (oa, ta) = (attributes(o), attributes(t));
    let top: BTreeSet<&String> = o
        .keys()
        .chain(t.keys())
        .filter(|k| *k != "attributes")
        .collect();
    let attribute_keys: BTreeSet<&String> = oa.keys().chain(ta.keys()).collect();
    let mut differing = top
        .into_iter()
        .filter(|k| o.get(*k) != t.get(*k))
        .map(|k| (format!("`{k}`"), o.get(k), t.get(k)))
        .chain(
            attribute_keys
                .into_iter()
                .filter(|k| oa.get(*k) != ta.get(*k))
                .map(|k| (format!("`attributes.{k}`"), oa.get(k), ta.get(k))),
        );
    let Some((key, ov, tv)) = differing.next() else {
        return "the documents are equal".into();
    };
    let more = differing.count();
    let mut out = format!(
        "{key} is {} in {our_name}, {} in {their_name}",
        shown(ov),
        shown(tv)
    );
    if more > 0 {
        out.push_str(&format!(
            " ({more} other key{} differ{})",
            if more > 1 { "s" } else { "" },
            if more > 1 { "" } else { "s" }
        ));
    }
    out
}

fn attributes(doc: &Map<String, Value>) -> Map<String, Value> {
    doc.get("attributes")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// A value as compact JSON, cut to [`SHOWN_VALUE_CHARS`] characters (ending in `…`), or
/// `absent`.
pub(crate) fn shown(value: Option<&Value>) -> String {
    let Some(value) = value else {
        return "absent".into();
    };
    let text = value.to_string();
    if text.chars().count() <= SHOWN_VALUE_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(SHOWN_VALUE_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::path::NodePath;
    use serde_json::json;
    use std::sync::Arc;

    fn node(doc: Value) -> NodeMetadata {
        NodeMetadata::from_value(&NodePath::new("a").unwrap(), doc).unwrap()
    }

    fn array(dtype: &str, attrs: Value) -> NodeMetadata {
        node(json!({
            "zarr_format": 3, "node_type": "array", "shape": [4], "data_type": dtype,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1]}},
            "chunk_key_encoding": {"name": "default"},
            "fill_value": 0, "codecs": [{"name": "bytes"}], "attributes": attrs
        }))
    }

    fn put(metadata: NodeMetadata, fresh: bool) -> NodeEdit {
        NodeEdit::Put {
            metadata: Arc::new(metadata),
            fresh,
        }
    }

    #[test]
    fn documents_compare_by_value_with_absent_attributes_as_empty() {
        let bare = node(json!({"zarr_format": 3, "node_type": "group"}));
        let empty = node(json!({"zarr_format": 3, "node_type": "group", "attributes": {}}));
        let reordered = node(json!({"node_type": "group", "attributes": {}, "zarr_format": 3}));
        let titled = node(json!({"zarr_format": 3, "node_type": "group", "attributes": {"t": 1}}));
        assert!(same_document(&bare, &empty));
        assert!(same_document(&empty, &reordered));
        assert!(!same_document(&bare, &titled));
        assert!(!same_document(&array("uint8", json!({})), &bare));
    }

    #[test]
    fn agreement_needs_the_same_state_and_no_dropped_chunks() {
        let doc = array("uint8", json!({"u": "K"}));
        let ours = put(doc.clone(), false);
        assert_eq!(
            agreement(&ours, false, false, NodeChange::Created, Some(&doc)),
            Ok(())
        );
        assert_eq!(
            agreement(&ours, false, true, NodeChange::Updated, Some(&doc)),
            Ok(())
        );
        assert_eq!(
            agreement(&NodeEdit::Deleted, false, true, NodeChange::Deleted, None),
            Ok(())
        );
        assert_eq!(
            agreement(&ours, false, true, NodeChange::Deleted, None),
            Err(String::new())
        );
        assert_eq!(
            agreement(
                &NodeEdit::Deleted,
                false,
                true,
                NodeChange::Updated,
                Some(&doc)
            ),
            Err(String::new())
        );
        let clip = agreement(&ours, true, false, NodeChange::Created, Some(&doc)).unwrap_err();
        assert!(clip.contains("shrank"), "{clip}");
        let fresh = put(doc.clone(), true);
        assert_eq!(
            agreement(&fresh, false, true, NodeChange::Created, Some(&doc)),
            Ok(())
        );
        let kept = agreement(&fresh, false, true, NodeChange::Updated, Some(&doc)).unwrap_err();
        assert!(kept.contains("this session re-created"), "{kept}");
        // An update of the parent's node does not agree with a re-creation of it.
        let dropped = agreement(&ours, false, true, NodeChange::Created, Some(&doc)).unwrap_err();
        assert!(dropped.contains("the other commit re-created"), "{dropped}");
        let other = array("int16", json!({"u": "K"}));
        let differs =
            agreement(&ours, false, false, NodeChange::Created, Some(&other)).unwrap_err();
        assert!(
            differs
                .contains(r#"`data_type` is "uint8" in this session, "int16" in the other commit"#),
            "{differs}"
        );
    }

    #[test]
    fn same_edit_compares_states() {
        let doc = array("uint8", json!({}));
        assert!(same_edit(None, None));
        assert!(same_edit(
            Some(&NodeEdit::Deleted),
            Some(&NodeEdit::Deleted)
        ));
        assert!(same_edit(
            Some(&put(doc.clone(), false)),
            Some(&put(array("uint8", json!({})), false))
        ));
        assert!(!same_edit(
            Some(&put(doc.clone(), false)),
            Some(&put(doc.clone(), true))
        ));
        assert!(!same_edit(Some(&put(doc, false)), None));
    }

    #[test]
    fn differences_name_the_key_both_values_and_the_rest() {
        let ours = array("uint8", json!({"title": "x".repeat(200), "a": 1}));
        let theirs = array("int16", json!({"title": "short"}));
        let text = describe_difference(&ours, &theirs, "ours", "theirs");
        assert!(
            text.starts_with(r#"`data_type` is "uint8" in ours, "int16" in theirs"#),
            "{text}"
        );
        assert!(text.ends_with("(2 other keys differ)"), "{text}");
        let text = describe_difference(
            &array("uint8", json!({"title": "x".repeat(200)})),
            &array("uint8", json!({})),
            "ours",
            "theirs",
        );
        assert!(text.starts_with("`attributes.title` is \"xxx"), "{text}");
        assert!(text.contains("… in ours, absent in theirs"), "{text}");
        assert!(text.len() < 120, "{text}");
    }
}
