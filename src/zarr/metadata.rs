//! Zarr v3 node metadata (`zarr.json`) as floe needs it: validated on write, with the array
//! geometry (shape, chunk grid, chunk key encoding) extracted once.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::format::path::NodePath;

use super::chunk_grid::ChunkGrid;

/// How chunk coordinates become key suffixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkKeyEncoding {
    /// Zarr v3 default: `c/1/2` (or `c.1.2` with the `.` separator); `c` for 0-d arrays.
    Default {
        /// `/` or `.`.
        separator: char,
    },
    /// Zarr v2 style: `1.2` (or `1/2`); `0` for 0-d arrays.
    V2 {
        /// `.` or `/`.
        separator: char,
    },
}

/// The geometry of an array: what floe needs to address chunks.
///
/// The grid is [`ChunkGrid::Regular`] or [`ChunkGrid::Rectilinear`]; every method here works
/// for both. The grid holds the chunks that contain at least one element of the array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArrayGeometry {
    /// Array shape in elements.
    pub shape: Vec<u64>,
    /// The chunk grid (validated against `shape`).
    pub chunk_grid: ChunkGrid,
    /// Key encoding of chunk keys.
    pub key_encoding: ChunkKeyEncoding,
}

impl ArrayGeometry {
    /// Number of chunks along each dimension (`ceil(shape / chunk_shape)` for a regular grid;
    /// the chunks that hold an element of the array for a rectilinear one).
    pub fn grid_shape(&self) -> Vec<u64> {
        self.shape
            .iter()
            .enumerate()
            .map(|(dim, &extent)| self.chunk_grid.chunk_count(dim, extent))
            .collect()
    }

    /// True when `coords` addresses a chunk inside the current grid.
    pub fn contains_chunk(&self, coords: &[u64]) -> bool {
        coords.len() == self.shape.len()
            && coords
                .iter()
                .zip(&self.shape)
                .enumerate()
                .all(|(dim, (&c, &extent))| c < self.chunk_grid.chunk_count(dim, extent))
    }

    /// Total number of chunks in the grid (saturating).
    pub fn chunk_count(&self) -> u64 {
        self.grid_shape()
            .iter()
            .fold(1u64, |a, &g| a.saturating_mul(g))
    }

    /// The regular chunk shape, `None` for a rectilinear grid.
    pub fn regular_chunk_shape(&self) -> Option<&[u64]> {
        match &self.chunk_grid {
            ChunkGrid::Regular { chunk_shape } => Some(chunk_shape),
            ChunkGrid::Rectilinear { .. } => None,
        }
    }

    /// Per dimension, the largest chunk edge length (the regular chunk shape for a regular
    /// grid). Every chunk fits in a box of this shape.
    pub fn max_chunk_shape(&self) -> Vec<u64> {
        (0..self.shape.len())
            .map(|dim| self.chunk_grid.max_chunk_length(dim))
            .collect()
    }

    /// First element of chunk `index` along `dim`, `None` when `index` is outside the grid.
    pub fn chunk_start(&self, dim: usize, index: u64) -> Option<u64> {
        let extent = *self.shape.get(dim)?;
        (index < self.chunk_grid.chunk_count(dim, extent))
            .then(|| self.chunk_grid.chunk_start(dim, index))
            .flatten()
    }

    /// Edge length of chunk `index` along `dim` as stored (edge chunks may reach past the
    /// array's end), `None` when `index` is outside the grid.
    pub fn chunk_length(&self, dim: usize, index: u64) -> Option<u64> {
        let extent = *self.shape.get(dim)?;
        (index < self.chunk_grid.chunk_count(dim, extent))
            .then(|| self.chunk_grid.chunk_length(dim, index))
            .flatten()
    }

    /// The chunk along `dim` holding element `element`, `None` when `element` is outside the
    /// array.
    pub fn chunk_of(&self, dim: usize, element: u64) -> Option<u64> {
        if element >= *self.shape.get(dim)? {
            return None;
        }
        self.chunk_grid.chunk_of(dim, element)
    }

    /// The first chunk of the grid of `old` (an earlier geometry of the same array) that this
    /// geometry places differently, as `(dimension, chunk index)`: a chunk present in both
    /// grids whose elements differ along that dimension (or `(0, 0)` when the ranks differ).
    /// `None` when every chunk both grids have covers the same elements, as after an append
    /// that only declares new chunks (or lengthens the shape inside the last one).
    pub fn moved_chunk(&self, old: &ArrayGeometry) -> Option<(usize, u64)> {
        if old.shape.len() != self.shape.len() {
            return Some((0, 0));
        }
        (0..self.shape.len()).find_map(|dim| {
            old.chunk_grid
                .first_difference(&self.chunk_grid, dim, old.shape[dim], self.shape[dim])
                .map(|index| (dim, index))
        })
    }

    /// The shape of chunk `coords` as stored (decoded), `None` when it is outside the grid.
    pub fn chunk_shape_at(&self, coords: &[u64]) -> Option<Vec<u64>> {
        if coords.len() != self.shape.len() {
            return None;
        }
        coords
            .iter()
            .enumerate()
            .map(|(dim, &c)| self.chunk_length(dim, c))
            .collect()
    }
}

/// A validated `zarr.json` document.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeMetadata {
    /// A group document.
    Group {
        /// The whole document.
        document: Map<String, Value>,
    },
    /// An array document and its geometry.
    Array {
        /// The whole document.
        document: Map<String, Value>,
        /// Shape, chunking and key encoding.
        geometry: ArrayGeometry,
    },
}

impl NodeMetadata {
    /// Parses and validates a `zarr.json` document for the node at `path`.
    pub fn parse(path: &NodePath, json: &[u8]) -> Result<Self> {
        let value: Value = serde_json::from_slice(json).map_err(|e| {
            let reason = match lone_surrogate(json) {
                Some(escape) => format!(
                    "a string holds the lone UTF-16 surrogate escape `{escape}`, which is not a \
                     Unicode character (RFC 8259 §8.2); floe keeps metadata as Unicode text"
                ),
                None => format!("not JSON: {e}"),
            };
            Error::invalid_metadata(path.as_str(), reason)
        })?;
        Self::from_value(path, value)
    }

    /// Validates an already parsed document.
    pub fn from_value(path: &NodePath, value: Value) -> Result<Self> {
        let bad = |reason: String| Error::invalid_metadata(path.as_str(), reason);
        let Value::Object(document) = value else {
            return Err(bad("zarr.json must be a JSON object".into()));
        };
        if document.get("zarr_format") != Some(&Value::from(3)) {
            return Err(bad(
                "only Zarr format 3 is supported (`zarr_format` must be 3)".into(),
            ));
        }
        match document.get("node_type").and_then(Value::as_str) {
            Some("group") => {
                if let Some(a) = document.get("attributes") {
                    if !a.is_object() {
                        return Err(bad("`attributes` must be an object".into()));
                    }
                }
                Ok(NodeMetadata::Group { document })
            }
            Some("array") => {
                serde_json::from_value::<zarrs::metadata::v3::ArrayMetadataV3>(Value::Object(
                    document.clone(),
                ))
                .map_err(|e| bad(format!("not valid Zarr v3 array metadata: {e}")))?;
                let geometry = geometry(&document).map_err(bad)?;
                Ok(NodeMetadata::Array { document, geometry })
            }
            _ => Err(bad("`node_type` must be \"group\" or \"array\"".into())),
        }
    }

    /// The document.
    pub fn document(&self) -> &Map<String, Value> {
        match self {
            NodeMetadata::Group { document } | NodeMetadata::Array { document, .. } => document,
        }
    }

    /// The array geometry, for arrays.
    pub fn geometry(&self) -> Option<&ArrayGeometry> {
        match self {
            NodeMetadata::Array { geometry, .. } => Some(geometry),
            NodeMetadata::Group { .. } => None,
        }
    }

    /// `"group"` or `"array"`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            NodeMetadata::Group { .. } => "group",
            NodeMetadata::Array { .. } => "array",
        }
    }

    /// The user attributes (empty when absent).
    pub fn attributes(&self) -> Map<String, Value> {
        self.document()
            .get("attributes")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    /// The document as compact JSON text.
    pub fn to_json(&self) -> String {
        Value::Object(self.document().clone()).to_string()
    }
}

/// Checks an update of the array at `path` from geometry `old` to `new` (a no-op when `new`
/// is a group): when either grid is rectilinear, every chunk both grids have must cover the
/// same elements, so that chunks already written keep their meaning. Appending declares new
/// chunks after the existing ones (or lengthens the shape inside the last declared chunk);
/// rechunking an array means recreating it. Changes between regular grids are not checked.
///
/// Errors with [`Error::InvalidMetadata`] naming the first chunk that would move.
pub(crate) fn check_grid_update(
    path: &NodePath,
    old: &ArrayGeometry,
    new: &NodeMetadata,
) -> Result<()> {
    let Some(new) = new.geometry() else {
        return Ok(());
    };
    if old.chunk_grid.is_regular() && new.chunk_grid.is_regular() {
        return Ok(());
    }
    match new.moved_chunk(old) {
        None => Ok(()),
        Some((dim, index)) => Err(Error::invalid_metadata(
            path.as_str(),
            format!(
                "the new chunk grid changes the elements of chunk {index} along dimension \
                 {dim}: a rectilinear grid may only gain chunks after the existing ones \
                 (delete and recreate the array to rechunk it)"
            ),
        )),
    }
}

fn u64_list(value: Option<&Value>, what: &str) -> std::result::Result<Vec<u64>, String> {
    value
        .and_then(Value::as_array)
        .ok_or_else(|| format!("`{what}` must be a list of integers"))?
        .iter()
        .map(|v| {
            v.as_u64()
                .ok_or_else(|| format!("`{what}` must hold non-negative integers"))
        })
        .collect()
}

fn geometry(document: &Map<String, Value>) -> std::result::Result<ArrayGeometry, String> {
    let shape = u64_list(document.get("shape"), "shape")?;
    let grid = document.get("chunk_grid").ok_or("missing `chunk_grid`")?;
    let chunk_grid = ChunkGrid::from_metadata(grid, &shape)?;
    let encoding = document
        .get("chunk_key_encoding")
        .ok_or("missing `chunk_key_encoding`")?;
    let separator = encoding
        .get("configuration")
        .and_then(|c| c.get("separator"))
        .and_then(Value::as_str);
    let parse_sep = |s: Option<&str>, default: char| match s {
        None => Ok(default),
        Some("/") => Ok('/'),
        Some(".") => Ok('.'),
        Some(other) => Err(format!("unsupported chunk key separator `{other}`")),
    };
    let key_encoding = match encoding.get("name").and_then(Value::as_str) {
        Some("default") => ChunkKeyEncoding::Default {
            separator: parse_sep(separator, '/')?,
        },
        Some("v2") => ChunkKeyEncoding::V2 {
            separator: parse_sep(separator, '.')?,
        },
        _ => return Err("chunk key encoding must be `default` or `v2`".into()),
    };
    Ok(ArrayGeometry {
        shape,
        chunk_grid,
        key_encoding,
    })
}

/// The first `\uXXXX` escape of a UTF-16 surrogate in `json` that is not half of a pair
/// (a high surrogate followed by a low one), if any.
fn lone_surrogate(json: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(json).ok()?;
    let unit = |at: usize| -> Option<u16> {
        let escape = text.get(at..at + 6)?;
        let hex = escape.strip_prefix("\\u")?;
        u16::from_str_radix(hex, 16).ok()
    };
    let mut at = 0;
    while let Some(found) = text[at..].find("\\u") {
        let start = at + found;
        // An escaped backslash (`\\u`) is not an escape.
        let backslashes = text[..start]
            .bytes()
            .rev()
            .take_while(|b| *b == b'\\')
            .count();
        at = start + 2;
        if backslashes % 2 == 1 {
            continue;
        }
        let Some(code) = unit(start) else { continue };
        match code {
            0xD800..=0xDBFF => match unit(start + 6) {
                Some(0xDC00..=0xDFFF) => at = start + 12,
                _ => return text.get(start..start + 6).map(str::to_string),
            },
            0xDC00..=0xDFFF => return text.get(start..start + 6).map(str::to_string),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn array_json(shape: &[u64], chunks: &[u64]) -> Value {
        serde_json::json!({
            "zarr_format": 3,
            "node_type": "array",
            "shape": shape,
            "data_type": "int32",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunks}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": 0,
            "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
            "attributes": {"units": "K"}
        })
    }

    #[test]
    fn parses_arrays_and_groups() {
        let p = NodePath::new("a").unwrap();
        let m = NodeMetadata::from_value(&p, array_json(&[10, 7], &[4, 7])).unwrap();
        let g = m.geometry().unwrap();
        assert_eq!(g.grid_shape(), vec![3, 1]);
        assert!(g.contains_chunk(&[2, 0]));
        assert!(!g.contains_chunk(&[3, 0]));
        assert!(!g.contains_chunk(&[0]));
        assert_eq!(m.attributes()["units"], "K");
        let group = NodeMetadata::parse(&p, br#"{"zarr_format":3,"node_type":"group"}"#).unwrap();
        assert_eq!(group.kind_name(), "group");
        assert!(group.attributes().is_empty());
    }

    #[test]
    fn lone_surrogates_are_refused_by_name_and_pairs_kept() {
        let p = NodePath::new("a").unwrap();
        let doc = |key: &str| {
            format!(r#"{{"zarr_format":3,"node_type":"group","attributes":{{"{key}":1}}}}"#)
        };
        for lone in [r"\ud800", r"x\uDC00y", r"\ud800\u0041"] {
            match NodeMetadata::parse(&p, doc(lone).as_bytes()) {
                Err(Error::InvalidMetadata { reason, .. }) => {
                    assert!(reason.contains("lone UTF-16 surrogate"), "{lone}: {reason}")
                }
                other => panic!("{lone}: {other:?}"),
            }
        }
        let pair = NodeMetadata::parse(&p, doc(r"\ud83d\ude00").as_bytes()).unwrap();
        assert!(pair.attributes().contains_key("\u{1F600}"));
        // An escaped backslash followed by `ud800` is plain text.
        let text = NodeMetadata::parse(&p, doc(r"\\ud800").as_bytes()).unwrap();
        assert!(text.attributes().contains_key("\\ud800"));
        assert_eq!(lone_surrogate(br#"{"a":"\\ud800"}"#), None);
    }

    #[test]
    fn rectilinear_geometry() {
        let p = NodePath::new("a").unwrap();
        let mut doc = array_json(&[59, 5], &[1, 1]);
        doc["chunk_grid"] = serde_json::json!({"name": "rectilinear",
            "configuration": {"kind": "inline", "chunk_shapes": [[31, 28], 2]}});
        let m = NodeMetadata::from_value(&p, doc.clone()).unwrap();
        let g = m.geometry().unwrap();
        assert_eq!(g.grid_shape(), vec![2, 3]);
        assert_eq!(g.regular_chunk_shape(), None);
        assert_eq!(g.max_chunk_shape(), vec![31, 2]);
        assert!(g.contains_chunk(&[1, 2]) && !g.contains_chunk(&[2, 0]));
        assert_eq!(g.chunk_start(0, 1), Some(31));
        assert_eq!(g.chunk_start(0, 2), None);
        assert_eq!(g.chunk_length(0, 1), Some(28));
        assert_eq!(g.chunk_of(0, 30), Some(0));
        assert_eq!(g.chunk_of(0, 31), Some(1));
        assert_eq!(g.chunk_of(0, 59), None);
        assert_eq!(g.chunk_of(1, 4), Some(2));
        assert_eq!(g.chunk_shape_at(&[1, 2]), Some(vec![28, 2]));
        assert_eq!(g.chunk_shape_at(&[1, 3]), None);
        // The lengths must cover the shape.
        doc["shape"] = serde_json::json!([60, 5]);
        let err = NodeMetadata::from_value(&p, doc).unwrap_err().to_string();
        assert!(
            err.contains("dimension 0") && err.contains("sum to 59"),
            "{err}"
        );
        // Regular grids answer the same questions.
        let r = NodeMetadata::from_value(&p, array_json(&[10, 7], &[4, 7])).unwrap();
        let r = r.geometry().unwrap();
        assert_eq!(r.regular_chunk_shape(), Some(&[4u64, 7][..]));
        assert_eq!(r.chunk_start(0, 2), Some(8));
        assert_eq!(r.chunk_start(0, 3), None);
        assert_eq!(r.chunk_of(0, 9), Some(2));
        assert_eq!(r.chunk_shape_at(&[2, 0]), Some(vec![4, 7]));
    }

    #[test]
    fn empty_arrays_with_zero_chunk_sizes_have_no_chunks() {
        let p = NodePath::new("a").unwrap();
        // As zarr-python 3.1 writes `zarr.create_array(shape=(0, 3), chunks=(0, 3))`.
        let m = NodeMetadata::from_value(&p, array_json(&[0, 3], &[0, 3])).unwrap();
        let g = m.geometry().unwrap();
        assert_eq!(g.grid_shape(), vec![0, 1]);
        assert_eq!(g.chunk_count(), 0);
        assert!(!g.contains_chunk(&[0, 0]));
        assert_eq!(g.chunk_shape_at(&[0, 0]), None);
        assert_eq!((g.chunk_start(0, 0), g.chunk_length(0, 0)), (None, None));
        assert_eq!(g.chunk_of(0, 0), None);
        assert_eq!(g.max_chunk_shape(), vec![0, 3]);
        let one = NodeMetadata::from_value(&p, array_json(&[0], &[0])).unwrap();
        assert_eq!(one.geometry().unwrap().grid_shape(), vec![0]);
        // Growing it needs a positive chunk size: a resize alone is refused.
        let err = NodeMetadata::from_value(&p, array_json(&[2, 3], &[0, 3]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("dimension 0 is 0") && err.contains("length along it is 2"),
            "{err}"
        );
        let grown = NodeMetadata::from_value(&p, array_json(&[2, 3], &[1, 3])).unwrap();
        assert_eq!(grown.geometry().unwrap().moved_chunk(g), None);
        assert!(check_grid_update(&p, g, &grown).is_ok());
    }

    #[test]
    fn rejects_bad_documents() {
        let p = NodePath::new("a").unwrap();
        assert!(NodeMetadata::parse(&p, b"not json").is_err());
        assert!(NodeMetadata::parse(&p, br#"{"zarr_format":2,"node_type":"group"}"#).is_err());
        assert!(NodeMetadata::parse(&p, br#"{"zarr_format":3,"node_type":"thing"}"#).is_err());
        let mut bad = array_json(&[10], &[0]);
        assert!(NodeMetadata::from_value(&p, bad.clone()).is_err());
        bad["chunk_grid"]["configuration"]["chunk_shape"] = serde_json::json!([2, 2]);
        assert!(NodeMetadata::from_value(&p, bad).is_err());
        let mut no_dtype = array_json(&[10], &[2]);
        no_dtype.as_object_mut().unwrap().remove("data_type");
        assert!(NodeMetadata::from_value(&p, no_dtype).is_err());
    }
}
