//! Zarr v3 node metadata (`zarr.json`) as floe needs it: validated on write, with the array
//! geometry (shape, chunk grid, chunk key encoding) extracted once.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::format::path::NodePath;

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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArrayGeometry {
    /// Array shape in elements.
    pub shape: Vec<u64>,
    /// Regular chunk shape in elements.
    pub chunk_shape: Vec<u64>,
    /// Key encoding of chunk keys.
    pub key_encoding: ChunkKeyEncoding,
}

impl ArrayGeometry {
    /// Number of chunks along each dimension (`ceil(shape / chunk_shape)`).
    pub fn grid_shape(&self) -> Vec<u64> {
        self.shape
            .iter()
            .zip(&self.chunk_shape)
            .map(|(&s, &c)| s.div_ceil(c))
            .collect()
    }

    /// True when `coords` addresses a chunk inside the current grid.
    pub fn contains_chunk(&self, coords: &[u64]) -> bool {
        coords.len() == self.shape.len()
            && coords
                .iter()
                .zip(self.shape.iter().zip(&self.chunk_shape))
                .all(|(&c, (&s, &chunk))| c < s.div_ceil(chunk))
    }

    /// Total number of chunks in the grid (saturating).
    pub fn chunk_count(&self) -> u64 {
        self.grid_shape()
            .iter()
            .fold(1u64, |a, &g| a.saturating_mul(g))
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
        let value: Value = serde_json::from_slice(json)
            .map_err(|e| Error::invalid_metadata(path.as_str(), format!("not JSON: {e}")))?;
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
    if grid.get("name").and_then(Value::as_str) != Some("regular") {
        return Err("only the `regular` chunk grid is supported".into());
    }
    let chunk_shape = u64_list(
        grid.get("configuration").and_then(|c| c.get("chunk_shape")),
        "chunk_grid.configuration.chunk_shape",
    )?;
    if chunk_shape.len() != shape.len() {
        return Err(format!(
            "chunk shape has {} dimensions but the array has {}",
            chunk_shape.len(),
            shape.len()
        ));
    }
    if chunk_shape.contains(&0) {
        return Err("chunk sizes must be positive".into());
    }
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
        chunk_shape,
        key_encoding,
    })
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
