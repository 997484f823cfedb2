//! Driving floe in the merge model (`tests/merge_model.rs`): the operations sessions draw,
//! and a writable session applying them with the model's view of it alongside.

use bytes::Bytes;
use floe::{Error, NodeMetadata, Session};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::common::{p, uint8_array};
use super::rules::{Changes, Doc, State};

/// The arrays: `a` is 2-D (`BASE_ROWS` x `COLUMNS` chunks of one element), `b` is 1-D.
pub const ARRAYS: [&str; 2] = ["a", "b"];
/// Chunk columns of `a` (its second dimension never changes).
pub const COLUMNS: u64 = 4;
/// Rows of both arrays in the base.
pub const BASE_ROWS: u64 = 4;
/// Nodes whose attributes the sessions change.
pub const ATTRIBUTE_NODES: [&str; 3] = ["a", "b", "g"];
/// Attribute keys the sessions set or remove.
pub const KEYS: [&str; 3] = ["k0", "k1", "k2"];
/// Groups the sessions may create (absent from the base).
pub const NEW_GROUPS: [&str; 3] = ["x0", "x1", "g/x0"];

/// One operation of one session.
#[derive(Clone, Debug)]
pub enum Op {
    /// Writes chunk `[row, col]` of `a` (`[row]` of `b`); out of bounds is refused.
    Write {
        array: usize,
        row: u64,
        col: u64,
        seed: u8,
    },
    /// Deletes a chunk; out of bounds is refused.
    Delete { array: usize, row: u64, col: u64 },
    /// Grows dimension 0 by `rows` and writes a chunk in the last new row.
    Append {
        array: usize,
        rows: u64,
        col: u64,
        seed: u8,
    },
    /// Sets one attribute key of a node.
    SetAttribute { node: usize, key: usize, value: u8 },
    /// Removes one attribute key of a node (which may be absent).
    RemoveAttribute { node: usize, key: usize },
    /// Creates (or, if this session created it already, rewrites) a group.
    CreateGroup { group: usize, value: u8 },
    /// Shrinks dimension 0 to `rows` (skipped unless smaller than the current extent).
    Shrink { array: usize, rows: u64 },
    /// Sets the array's `fill_value` (a change of a key other than shape and attributes).
    SetFillValue { array: usize, value: u8 },
    /// Deletes the array and creates it again with the same document: without its chunks.
    Recreate { array: usize },
    /// Sets the array's document back to the base's (shape, fill value and attributes).
    Restore { array: usize },
}

pub fn op() -> impl Strategy<Value = Op> {
    let array = 0usize..ARRAYS.len();
    prop_oneof![
        5 => (array.clone(), 0u64..7, 0..COLUMNS, any::<u8>())
            .prop_map(|(array, row, col, seed)| Op::Write { array, row, col, seed }),
        2 => (array.clone(), 0u64..7, 0..COLUMNS)
            .prop_map(|(array, row, col)| Op::Delete { array, row, col }),
        3 => (array, 1u64..=2, 0..COLUMNS, any::<u8>())
            .prop_map(|(array, rows, col, seed)| Op::Append { array, rows, col, seed }),
        3 => (0..ATTRIBUTE_NODES.len(), 0..KEYS.len(), 0u8..3)
            .prop_map(|(node, key, value)| Op::SetAttribute { node, key, value }),
        1 => (0..ATTRIBUTE_NODES.len(), 0..KEYS.len())
            .prop_map(|(node, key)| Op::RemoveAttribute { node, key }),
        1 => (0..NEW_GROUPS.len(), 0u8..3)
            .prop_map(|(group, value)| Op::CreateGroup { group, value }),
        1 => (0..ARRAYS.len(), 1u64..4).prop_map(|(array, rows)| Op::Shrink { array, rows }),
        1 => (0..ARRAYS.len(), 0u8..2)
            .prop_map(|(array, value)| Op::SetFillValue { array, value }),
        1 => (0..ARRAYS.len()).prop_map(|array| Op::Recreate { array }),
        2 => (0..ARRAYS.len()).prop_map(|array| Op::Restore { array }),
    ]
}

/// The base document of `ARRAYS[array]`, as `zarr.json` and as the model sees it: `a` is
/// [`BASE_ROWS`, `COLUMNS`] with attribute k0, `b` is [`BASE_ROWS`] without attributes.
pub fn base_document(array: usize) -> (Value, Doc) {
    let (mut json, attributes) = if array == 0 {
        let json = uint8_array(&[BASE_ROWS, COLUMNS], &[1, 1]);
        (json, base_attributes(&[("k0", 0)]))
    } else {
        (uint8_array(&[BASE_ROWS], &[1]), Map::new())
    };
    if !attributes.is_empty() {
        json["attributes"] = Value::Object(attributes.clone());
    }
    let doc = Doc {
        shape: Some(coord(array, BASE_ROWS, COLUMNS)),
        fill: Some(0),
        attributes,
    };
    (json, doc)
}

pub fn base_attributes(pairs: &[(&str, u8)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect()
}

pub fn group_doc(attributes: Map<String, Value>) -> Doc {
    Doc {
        shape: None,
        fill: None,
        attributes,
    }
}

/// Chunk coordinates of `array` for a drawn row and column.
pub fn coord(array: usize, row: u64, col: u64) -> Vec<u64> {
    if array == 0 {
        vec![row, col]
    } else {
        vec![row]
    }
}

/// A writable session with the model's view of it.
pub struct Writer {
    pub session: Session,
    pub view: State,
    pub changes: Changes,
    /// Distinguishes this session's chunk bytes from every other's.
    pub tag: u8,
}

impl Writer {
    /// Applies `op` to the session and to the model, checking that floe accepts or refuses
    /// it as the model expects.
    pub async fn apply(&mut self, step: usize, op: &Op) {
        match *op {
            Op::Write {
                array,
                row,
                col,
                seed,
            } => {
                let bytes = vec![self.tag, step as u8, seed];
                self.edit_chunk(array, coord(array, row, col), Some(bytes))
                    .await;
            }
            Op::Delete { array, row, col } => {
                self.edit_chunk(array, coord(array, row, col), None).await;
            }
            Op::Append {
                array,
                rows,
                col,
                seed,
            } => {
                let name = ARRAYS[array];
                let mut doc = self.view.nodes[name].clone();
                let shape = doc.shape.as_mut().unwrap();
                shape[0] += rows;
                self.session.resize_array(&p(name), shape).await.unwrap();
                let last = shape[0] - 1;
                self.put(name, doc);
                let bytes = vec![self.tag, step as u8, seed];
                self.edit_chunk(array, coord(array, last, col), Some(bytes))
                    .await;
            }
            Op::SetAttribute { node, key, value } => {
                let name = ATTRIBUTE_NODES[node];
                let mut doc = self.view.nodes[name].clone();
                doc.attributes.insert(KEYS[key].into(), json!(value));
                self.set_attributes(name, doc).await;
            }
            Op::RemoveAttribute { node, key } => {
                let name = ATTRIBUTE_NODES[node];
                let mut doc = self.view.nodes[name].clone();
                doc.attributes.remove(KEYS[key]);
                self.set_attributes(name, doc).await;
            }
            Op::CreateGroup { group, value } => {
                let name = NEW_GROUPS[group];
                let attributes = base_attributes(&[("v", value)]);
                self.session
                    .create_group(&p(name), attributes.clone())
                    .await
                    .unwrap();
                if !self.view.nodes.contains_key(name) {
                    self.changes.created.insert(name.into());
                }
                self.put(name, group_doc(attributes));
            }
            Op::Shrink { array, rows } => {
                let name = ARRAYS[array];
                let mut doc = self.view.nodes[name].clone();
                let shape = doc.shape.as_mut().unwrap();
                if rows >= shape[0] {
                    return;
                }
                shape[0] = rows;
                self.session.resize_array(&p(name), shape).await.unwrap();
                self.put(name, doc);
                self.clip_rows(name, rows);
            }
            Op::Restore { array } => {
                let name = ARRAYS[array];
                let rows = self.view.nodes[name].shape.as_ref().unwrap()[0];
                let (json, doc) = base_document(array);
                let metadata = NodeMetadata::from_value(&p(name), json).unwrap();
                self.session.set_metadata(&p(name), metadata).await.unwrap();
                self.put(name, doc);
                if BASE_ROWS < rows {
                    self.clip_rows(name, BASE_ROWS);
                }
            }
            Op::SetFillValue { array, value } => {
                let name = ARRAYS[array];
                let node = self.session.require_node(&p(name)).unwrap();
                let mut json = node.metadata.document().clone();
                json.insert("fill_value".into(), json!(value));
                let metadata = NodeMetadata::from_value(&p(name), Value::Object(json)).unwrap();
                self.session.set_metadata(&p(name), metadata).await.unwrap();
                let mut doc = self.view.nodes[name].clone();
                doc.fill = Some(value);
                self.put(name, doc);
            }
            Op::Recreate { array } => self.recreate(ARRAYS[array]).await,
        }
    }

    /// Deletes array `name` and creates it again from its current document.
    async fn recreate(&mut self, name: &str) {
        let node = self.session.require_node(&p(name)).unwrap();
        let json = Value::Object(node.metadata.document().clone());
        self.session.delete_node(&p(name)).await.unwrap();
        self.session.create_array(&p(name), json).await.unwrap();
        self.view.chunks.retain(|(p, _), _| p != name);
        self.changes.chunks.remove(name);
        self.changes.clips.remove(name);
        self.changes.fresh.insert(name.into());
        let doc = self.view.nodes[name].clone();
        self.put(name, doc);
    }

    /// The array shrank to `rows` rows: chunks beyond are gone, the session's own edits
    /// included, and the session keeps the smallest extent as its clip.
    fn clip_rows(&mut self, name: &str, rows: u64) {
        self.view
            .chunks
            .retain(|(p, c), _| p != name || c[0] < rows);
        if let Some(edits) = self.changes.chunks.get_mut(name) {
            edits.retain(|c, _| c[0] < rows);
            if edits.is_empty() {
                self.changes.chunks.remove(name);
            }
        }
        let clip = self.changes.clips.entry(name.into()).or_insert(rows);
        *clip = (*clip).min(rows);
    }

    fn put(&mut self, name: &str, doc: Doc) {
        self.view.nodes.insert(name.into(), doc.clone());
        self.changes.puts.insert(name.into(), doc);
    }

    async fn set_attributes(&mut self, name: &str, doc: Doc) {
        self.session
            .set_attributes(&p(name), doc.attributes.clone())
            .await
            .unwrap();
        self.put(name, doc);
    }

    async fn edit_chunk(&mut self, array: usize, coord: Vec<u64>, bytes: Option<Vec<u8>>) {
        let name = ARRAYS[array];
        let rows = self.view.nodes[name].shape.as_ref().unwrap()[0];
        let result = match &bytes {
            Some(b) => {
                self.session
                    .set_chunk(&p(name), &coord, Bytes::from(b.clone()))
                    .await
            }
            None => self.session.delete_chunk(&p(name), &coord).await,
        };
        if coord[0] >= rows {
            assert!(
                matches!(result, Err(Error::ChunkOutOfBounds { .. })),
                "{name}{coord:?} is outside {rows} rows: {result:?}"
            );
            return;
        }
        result.unwrap();
        let key = (name.to_string(), coord.clone());
        match &bytes {
            Some(b) => self.view.chunks.insert(key, b.clone()),
            None => self.view.chunks.remove(&key),
        };
        self.changes
            .chunks
            .entry(name.into())
            .or_default()
            .insert(coord, bytes);
    }
}
