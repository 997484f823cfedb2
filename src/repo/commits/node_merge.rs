//! Three-way merge of one node's `zarr.json` when two commits changed the same node
//! (spec/algorithms.md §8, "Merging a node changed by both").
//!
//! Only two kinds of change merge: growing an array's shape (the merged shape is the
//! element-wise maximum) and changing attributes (key by key). Anything else changed on one
//! side merges only with an attribute-only change on the other side.

use serde_json::{Map, Value};

use super::identical::shown;
use crate::format::path::NodePath;
use crate::zarr::metadata::NodeMetadata;

/// What one side did to a node besides its final document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SideFacts {
    /// It wrote or deleted chunks of the node.
    pub(crate) wrote_chunks: bool,
    /// Some intermediate version (or a clip of the session) had a smaller shape than the base.
    pub(crate) shrank: bool,
    /// The first key other than `shape` and `attributes` in which some intermediate version
    /// differed from the base.
    pub(crate) other_key: Option<String>,
}

/// How one document differs from the base.
#[derive(Debug, Default)]
struct DocDiff {
    shape_changed: bool,
    shrank: bool,
    attributes_changed: bool,
    /// The first key other than `shape` and `attributes` whose value differs.
    other_key: Option<String>,
}

fn attributes_of(doc: &Map<String, Value>) -> Map<String, Value> {
    doc.get("attributes")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn shape_of(doc: &Map<String, Value>) -> Option<Vec<u64>> {
    doc.get("shape")?
        .as_array()?
        .iter()
        .map(Value::as_u64)
        .collect()
}

/// True when `shape` is smaller than `base` in some dimension or has another rank.
pub(crate) fn shrinks(base: &[u64], shape: &[u64]) -> bool {
    base.len() != shape.len() || shape.iter().zip(base).any(|(s, b)| s < b)
}

fn diff(base: &Map<String, Value>, doc: &Map<String, Value>) -> DocDiff {
    let mut out = DocDiff {
        attributes_changed: attributes_of(base) != attributes_of(doc),
        ..DocDiff::default()
    };
    let (base_shape, shape) = (shape_of(base), shape_of(doc));
    if base_shape != shape {
        out.shape_changed = true;
        out.shrank = match (&base_shape, &shape) {
            (Some(b), Some(s)) => shrinks(b, s),
            _ => true,
        };
    }
    out.other_key = base
        .keys()
        .chain(doc.keys())
        .filter(|k| *k != "shape" && *k != "attributes")
        .find(|k| base.get(*k) != doc.get(*k))
        .cloned();
    out
}

/// The first key other than `shape` and `attributes` in which `doc` differs from `base`.
pub(crate) fn other_key_changed(base: &NodeMetadata, doc: &NodeMetadata) -> Option<String> {
    diff(base.document(), doc.document()).other_key
}

/// Merges `theirs` and `ours`, both derived from `base`, for the node at `path`.
///
/// `their_facts` and `our_facts` add what the documents alone do not show (chunk writes,
/// intermediate shrinks or other changes). Returns the merged document, or the reason the
/// two changes conflict.
pub(crate) fn merge_node(
    path: &NodePath,
    base: &NodeMetadata,
    theirs: &NodeMetadata,
    ours: &NodeMetadata,
    their_facts: SideFacts,
    our_facts: SideFacts,
) -> Result<NodeMetadata, String> {
    let (b, t, o) = (base.document(), theirs.document(), ours.document());
    let their_diff = diff(b, t);
    let our_diff = diff(b, o);
    let other = |d: &DocDiff, f: &SideFacts| d.other_key.clone().or_else(|| f.other_key.clone());
    let their_other = other(&their_diff, &their_facts);
    let our_other = other(&our_diff, &our_facts);
    let their_shrank = their_diff.shrank || their_facts.shrank;
    let our_shrank = our_diff.shrank || our_facts.shrank;
    let active = |d: &DocDiff, f: &SideFacts, other: &Option<String>, shrank: bool| {
        d.shape_changed || d.attributes_changed || f.wrote_chunks || other.is_some() || shrank
    };
    let their_active = active(&their_diff, &their_facts, &their_other, their_shrank);
    let our_active = active(&our_diff, &our_facts, &our_other, our_shrank);
    if their_active && our_active {
        // Beyond attributes, a change of anything but the shape may change what chunks mean
        // (data type, codecs, chunk grid, fill value...): it merges only with an
        // attribute-only change of the other side.
        let attributes_only = |d: &DocDiff, f: &SideFacts, other: &Option<String>, shrank: bool| {
            !d.shape_changed && !f.wrote_chunks && other.is_none() && !shrank
        };
        if let Some(key) = &their_other {
            if !attributes_only(&our_diff, &our_facts, &our_other, our_shrank) {
                return Err(other_change_clash(key, [b, t, o], Side::Theirs));
            }
        }
        if let Some(key) = &our_other {
            if !attributes_only(&their_diff, &their_facts, &their_other, their_shrank) {
                return Err(other_change_clash(key, [b, t, o], Side::Ours));
            }
        }
        if their_shrank {
            return Err("the other commit shrank the array while this session changed it".into());
        }
        if our_shrank {
            return Err("this session shrank the array while the other commit changed it".into());
        }
    }
    let mut merged = b.clone();
    for key in b.keys().chain(t.keys()).chain(o.keys()) {
        if key == "shape" || key == "attributes" {
            continue;
        }
        let (bv, tv, ov) = (b.get(key), t.get(key), o.get(key));
        let value = if tv == bv {
            ov
        } else if ov == bv || ov == tv {
            tv
        } else {
            return Err(both_changed(key, ov, tv));
        };
        set_or_remove(&mut merged, key, value.cloned());
    }
    match (their_diff.shape_changed, our_diff.shape_changed) {
        (false, false) => {}
        (true, false) => set_or_remove(&mut merged, "shape", t.get("shape").cloned()),
        (false, true) => set_or_remove(&mut merged, "shape", o.get("shape").cloned()),
        (true, true) => {
            let (Some(ts), Some(os)) = (shape_of(t), shape_of(o)) else {
                return Err("`shape` is not a list of integers".into());
            };
            if ts.len() != os.len() {
                return Err("both commits changed the shape to different ranks".into());
            }
            let max: Vec<u64> = ts.iter().zip(&os).map(|(a, b)| *a.max(b)).collect();
            merged.insert("shape".into(), Value::from(max));
        }
    }
    let attributes = merge_attributes(
        b,
        t,
        o,
        their_diff.attributes_changed,
        our_diff.attributes_changed,
    )?;
    if let Some(attributes) = attributes {
        set_or_remove(&mut merged, "attributes", attributes);
    }
    NodeMetadata::from_value(path, Value::Object(merged))
        .map_err(|e| format!("the merged metadata is not valid: {e}"))
}

/// The side whose change of a key conflicts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Theirs,
    Ours,
}

/// Why a change of `key` (not `shape` or `attributes`) by `side` conflicts with the other
/// side's change of the array, with the values involved when the documents show them (`docs`:
/// base, theirs, ours); a key only an intermediate version changed is named, with no values.
fn other_change_clash(key: &str, docs: [&Map<String, Value>; 3], side: Side) -> String {
    let [bv, tv, ov] = docs.map(|d| d.get(key));
    if tv != bv && ov != bv && tv != ov {
        return both_changed(key, ov, tv);
    }
    let (who, other, value) = match side {
        Side::Theirs => ("the other commit", "this session", tv),
        Side::Ours => ("this session", "the other commit", ov),
    };
    if value == bv {
        return format!("{who} changed `{key}` while {other} changed the array too");
    }
    format!(
        "{who} changed `{key}` from {} to {} while {other} changed the array too",
        shown(bv),
        shown(value)
    )
}

/// Why both sides' values of `key` do not merge.
fn both_changed(key: &str, ours: Option<&Value>, theirs: Option<&Value>) -> String {
    format!(
        "`{key}` changed by both commits to different values: {} in this session, {} in the \
         other commit",
        shown(ours),
        shown(theirs)
    )
}

fn set_or_remove(doc: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    match value {
        Some(v) => {
            doc.insert(key.to_string(), v);
        }
        None => {
            doc.remove(key);
        }
    }
}

/// The merged `attributes` value: `None` to keep the base's, `Some(None)` to remove the key.
#[allow(clippy::option_option)]
fn merge_attributes(
    b: &Map<String, Value>,
    t: &Map<String, Value>,
    o: &Map<String, Value>,
    their_changed: bool,
    our_changed: bool,
) -> Result<Option<Option<Value>>, String> {
    match (their_changed, our_changed) {
        (false, false) => Ok(None),
        (true, false) => Ok(Some(t.get("attributes").cloned())),
        (false, true) => Ok(Some(o.get("attributes").cloned())),
        (true, true) => {
            let (ba, ta, oa) = (attributes_of(b), attributes_of(t), attributes_of(o));
            let mut merged = ba.clone();
            let mut clashes = Vec::new();
            for key in ba.keys().chain(ta.keys()).chain(oa.keys()) {
                let (bv, tv, ov) = (ba.get(key), ta.get(key), oa.get(key));
                let value = if tv == bv {
                    ov
                } else if ov == bv || ov == tv {
                    tv
                } else {
                    if !clashes.contains(key) {
                        clashes.push(key.clone());
                    }
                    continue;
                };
                set_or_remove(&mut merged, key, value.cloned());
            }
            if let Some(first) = clashes.first() {
                let names: Vec<String> = clashes.iter().map(|k| format!("`{k}`")).collect();
                return Err(format!(
                    "attribute{} {} changed by both commits to different values ({} is {} in \
                     this session, {} in the other commit)",
                    if names.len() > 1 { "s" } else { "" },
                    names.join(", "),
                    names[0],
                    shown(oa.get(first)),
                    shown(ta.get(first)),
                ));
            }
            Ok(Some(
                if merged.is_empty()
                    && !t.contains_key("attributes")
                    && !o.contains_key("attributes")
                {
                    None
                } else {
                    Some(Value::Object(merged))
                },
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn array(shape: &[u64], dtype: &str, attrs: Value) -> NodeMetadata {
        let p = NodePath::new("a").unwrap();
        NodeMetadata::from_value(
            &p,
            json!({
                "zarr_format": 3, "node_type": "array", "shape": shape, "data_type": dtype,
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1]}},
                "chunk_key_encoding": {"name": "default"},
                "fill_value": 0, "codecs": [{"name": "bytes"}], "attributes": attrs
            }),
        )
        .unwrap()
    }

    fn merge(b: &NodeMetadata, t: &NodeMetadata, o: &NodeMetadata) -> Result<NodeMetadata, String> {
        let chunks = SideFacts {
            wrote_chunks: true,
            ..SideFacts::default()
        };
        merge_node(
            &NodePath::new("a").unwrap(),
            b,
            t,
            o,
            chunks.clone(),
            chunks,
        )
    }

    #[test]
    fn appends_take_the_larger_shape_and_merge_attributes() {
        let b = array(&[2], "uint8", json!({"x": 1}));
        let t = array(&[3], "uint8", json!({"x": 1, "t": 1}));
        let o = array(&[4], "uint8", json!({"o": 2}));
        let m = merge(&b, &t, &o).unwrap();
        assert_eq!(m.geometry().unwrap().shape, vec![4]);
        assert_eq!(Value::Object(m.attributes()), json!({"t": 1, "o": 2}));
    }

    #[test]
    fn real_conflicts_are_refused() {
        let b = array(&[2], "uint8", json!({"x": 1}));
        let e = merge(
            &b,
            &array(&[2], "uint8", json!({"x": 2})),
            &array(&[2], "uint8", json!({"x": 3})),
        )
        .unwrap_err();
        assert!(e.contains("`x`"), "{e}");
        assert!(
            e.contains("(`x` is 3 in this session, 2 in the other commit)"),
            "{e}"
        );
        let same = merge(
            &b,
            &array(&[2], "uint8", json!({"x": 2})),
            &array(&[2], "uint8", json!({"x": 2})),
        );
        assert!(same.is_ok());
        let e = merge(
            &b,
            &array(&[2], "int8", json!({"x": 1})),
            &array(&[3], "uint8", json!({"x": 1})),
        )
        .unwrap_err();
        assert!(
            e.contains(r#"the other commit changed `data_type` from "uint8" to "int8""#),
            "{e}"
        );
        let e = merge(
            &b,
            &array(&[2], "int8", json!({"x": 1})),
            &array(&[2], "int16", json!({"x": 1})),
        )
        .unwrap_err();
        assert!(
            e.contains(r#"`data_type` changed by both commits to different values: "int16" in this session, "int8" in the other commit"#),
            "{e}"
        );
        let e = merge(
            &b,
            &array(&[1], "uint8", json!({"x": 1})),
            &array(&[3], "uint8", json!({"x": 1})),
        )
        .unwrap_err();
        assert!(e.contains("shrank"), "{e}");
    }
}
