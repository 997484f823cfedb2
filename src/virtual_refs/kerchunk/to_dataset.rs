//! A kerchunk reference set as the neutral [`VirtualDataset`]: Zarr v2 groups and arrays
//! (from `.zmetadata` and the explicit metadata keys, which win) translated to Zarr v3, and
//! each chunk key placed at its coordinates.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::cf_fill::FillMeaning;
use super::zarr_v2::array_v3;
use super::{invalid, KerchunkRef, KerchunkRefs};
use crate::error::Result;
use crate::format::manifest::ChunkCoord;
use crate::virtual_refs::dataset::{VirtualArray, VirtualDataset};

/// One Zarr v2 node of the reference set.
#[derive(Default)]
struct V2Node {
    group: bool,
    zarray: Option<Value>,
    zattrs: Option<Map<String, Value>>,
}

/// The dataset the references describe.
///
/// Fails with [`crate::Error::KerchunkImport`] for malformed metadata, an unsupported codec or
/// data type (naming the variable), or a chunk key that does not address a chunk of its
/// array's grid.
pub(crate) fn to_dataset(refs: &KerchunkRefs) -> Result<VirtualDataset> {
    let origin = refs.origin.as_str();
    let nodes = collect_nodes(refs)?;
    let fills = FillMeaning::of_reference_set(
        nodes
            .values()
            .filter_map(|n| n.zarray.as_ref().map(|z| (z, n.zattrs.as_ref()))),
    );
    let mut dataset = VirtualDataset {
        origin: origin.to_string(),
        ..VirtualDataset::default()
    };
    let mut separators: BTreeMap<String, (char, usize, Vec<u64>)> = BTreeMap::new();
    for (path, node) in &nodes {
        match &node.zarray {
            Some(zarray) => {
                let document = array_v3(zarray, node.zattrs.as_ref(), fills)
                    .map_err(|e| invalid(format!("{origin}: variable `{path}`"), e))?;
                let separator =
                    match document["chunk_key_encoding"]["configuration"]["separator"].as_str() {
                        Some("/") => '/',
                        _ => '.',
                    };
                let shape = shape_of(&document, "shape");
                let chunk_shape = shape_of(&document["chunk_grid"]["configuration"], "chunk_shape");
                let grid: Vec<u64> = shape
                    .iter()
                    .zip(&chunk_shape)
                    .map(|(&s, &c)| if c == 0 { 0 } else { s.div_ceil(c) })
                    .collect();
                separators.insert(path.clone(), (separator, shape.len(), grid));
                dataset.arrays.insert(
                    path.clone(),
                    VirtualArray {
                        document,
                        chunks: Vec::new(),
                    },
                );
            }
            None if node.group => {
                dataset
                    .groups
                    .insert(path.clone(), node.zattrs.clone().unwrap_or_default());
            }
            None => {}
        }
    }
    for (key, reference) in &refs.refs {
        if is_metadata_key(key) {
            continue;
        }
        let Some((path, chunk)) = owning_array(&separators, key) else {
            dataset.skipped_keys += 1;
            continue;
        };
        let (separator, ndim, grid) = &separators[&path];
        let bad_key = |reason: String| invalid(format!("{origin}: key `{key}`"), reason);
        let coord = parse_chunk_key(chunk, *separator, *ndim).ok_or_else(|| {
            bad_key(format!(
                "not a chunk key of a {ndim}-dimensional array with separator `{separator}`"
            ))
        })?;
        if coord.iter().zip(grid).any(|(c, g)| c >= g) {
            return Err(bad_key(format!(
                "chunk {coord:?} is outside the array's grid of {grid:?} chunks"
            )));
        }
        if let Some(array) = dataset.arrays.get_mut(&path) {
            array.chunks.push((coord, reference.clone()));
        }
    }
    for array in dataset.arrays.values_mut() {
        array.chunks.sort_by(|a, b| a.0.cmp(&b.0));
    }
    dataset.pad_to_coordinate_lengths();
    Ok(dataset)
}

fn shape_of(value: &Value, field: &str) -> Vec<u64> {
    value[field]
        .as_array()
        .map(|s| s.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

/// True for Zarr v2 metadata keys (`.zgroup`, `a/.zarray`, `.zmetadata`...).
fn is_metadata_key(key: &str) -> bool {
    key.rsplit('/')
        .next()
        .is_some_and(|last| last.starts_with(".z"))
}

/// Splits `.zgroup`-style keys into the node path and the file name.
fn split_metadata_key(key: &str) -> (&str, &str) {
    match key.rsplit_once('/') {
        Some((path, name)) => (path, name),
        None => ("", key),
    }
}

fn parse_json(origin: &str, key: &str, reference: &KerchunkRef) -> Result<Value> {
    let KerchunkRef::Inline(bytes) = reference else {
        return Err(invalid(
            format!("{origin}: key `{key}`"),
            "metadata must be inline JSON",
        ));
    };
    serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("{origin}: key `{key}`"), format!("not JSON: {e}")))
}

/// Every node of the reference set, from `.zmetadata` and then the explicit metadata keys.
fn collect_nodes(refs: &KerchunkRefs) -> Result<BTreeMap<String, V2Node>> {
    let origin = refs.origin.as_str();
    let mut documents: BTreeMap<String, Value> = BTreeMap::new();
    if let Some(consolidated) = refs.refs.get(".zmetadata") {
        let value = parse_json(origin, ".zmetadata", consolidated)?;
        if let Some(metadata) = value.get("metadata").and_then(Value::as_object) {
            for (key, document) in metadata {
                let document = match document {
                    Value::String(text) => serde_json::from_str(text).map_err(|e| {
                        invalid(
                            format!("{origin}: .zmetadata `{key}`"),
                            format!("not JSON: {e}"),
                        )
                    })?,
                    other => other.clone(),
                };
                documents.insert(key.clone(), document);
            }
        }
    }
    for (key, reference) in &refs.refs {
        if is_metadata_key(key) && key != ".zmetadata" && !key.ends_with("/.zmetadata") {
            documents.insert(key.clone(), parse_json(origin, key, reference)?);
        }
    }
    let mut nodes: BTreeMap<String, V2Node> = BTreeMap::new();
    for (key, document) in documents {
        let (path, name) = split_metadata_key(&key);
        let node = nodes.entry(path.to_string()).or_default();
        match name {
            ".zgroup" => node.group = true,
            ".zarray" => node.zarray = Some(document),
            ".zattrs" => {
                let Value::Object(attributes) = document else {
                    return Err(invalid(
                        format!("{origin}: key `{key}`"),
                        "`.zattrs` must be a JSON object",
                    ));
                };
                node.zattrs = Some(attributes);
            }
            _ => {}
        }
    }
    nodes.retain(|_, n| n.group || n.zarray.is_some());
    Ok(nodes)
}

/// The array a chunk key belongs to (the longest array path that prefixes it) and the chunk
/// part of the key.
fn owning_array<'k, T>(arrays: &BTreeMap<String, T>, key: &'k str) -> Option<(String, &'k str)> {
    let mut end = key.len();
    while let Some(slash) = key[..end].rfind('/') {
        let path = &key[..slash];
        if arrays.contains_key(path) {
            return Some((path.to_string(), &key[slash + 1..]));
        }
        end = slash;
    }
    arrays.contains_key("").then(|| (String::new(), key))
}

/// Chunk coordinates from the chunk part of a v2 key (`1.2.3`, or `1/2/3`; `0` for 0-d).
fn parse_chunk_key(chunk: &str, separator: char, ndim: usize) -> Option<ChunkCoord> {
    if ndim == 0 {
        return (chunk == "0").then(Vec::new);
    }
    // Canonical decimal only: `00` or `+0` would alias chunk 0 and silently replace it.
    let canonical = |p: &str| {
        let digits = !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        (digits && (p == "0" || !p.starts_with('0')))
            .then(|| p.parse().ok())
            .flatten()
    };
    let coord: Option<Vec<u64>> = chunk.split(separator).map(canonical).collect();
    coord.filter(|c| c.len() == ndim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_keys_parse_by_separator_and_dimensionality() {
        assert_eq!(parse_chunk_key("1.2.3", '.', 3), Some(vec![1, 2, 3]));
        assert_eq!(parse_chunk_key("1/2", '/', 2), Some(vec![1, 2]));
        assert_eq!(parse_chunk_key("0", '.', 0), Some(vec![]));
        assert_eq!(parse_chunk_key("1.2", '.', 3), None);
        assert_eq!(parse_chunk_key("1.x", '.', 2), None);
        assert_eq!(parse_chunk_key("1", '.', 0), None);
        for aliased in ["00", "+0", "01", "", " 1"] {
            assert_eq!(parse_chunk_key(aliased, '.', 1), None, "{aliased:?}");
        }
        assert_eq!(parse_chunk_key("10", '.', 1), Some(vec![10]));
        assert!(is_metadata_key(".zgroup"));
        assert!(is_metadata_key("a/b/.zattrs"));
        assert!(!is_metadata_key("a/0.0"));
    }

    #[test]
    fn references_become_groups_and_arrays_with_placed_chunks() {
        let refs = KerchunkRefs::from_json(
            "t",
            br#"{".zgroup": {"zarr_format": 2}, ".zattrs": {"title": "x"},
                 "g/.zgroup": {"zarr_format": 2},
                 "g/v/.zarray": {"zarr_format": 2, "shape": [4, 2], "chunks": [2, 2],
                     "dtype": "<f4", "fill_value": -1.0, "order": "C", "filters": null,
                     "compressor": null},
                 "g/v/.zattrs": {"_ARRAY_DIMENSIONS": ["time", "x"]},
                 "g/v/1.0": ["/d/a.nc", 8, 16], "g/v/0.0": ["/d/a.nc", 0, 8],
                 "stray": "x"}"#,
        )
        .unwrap();
        let dataset = to_dataset(&refs).unwrap();
        assert_eq!(dataset.groups.keys().collect::<Vec<_>>(), vec!["", "g"]);
        assert_eq!(dataset.groups[""]["title"], "x");
        let v = &dataset.arrays["g/v"];
        assert_eq!(v.dimension_names(), vec!["time", "x"]);
        assert_eq!(
            v.chunks.iter().map(|(c, _)| c.clone()).collect::<Vec<_>>(),
            vec![vec![0, 0], vec![1, 0]]
        );
        assert_eq!(dataset.skipped_keys, 1);
        // A variable written for fewer records than its group's `time` has gets its length.
        let short = KerchunkRefs::from_json(
            "t",
            br#"{"time/.zarray": {"zarr_format": 2, "shape": [4], "chunks": [4], "dtype": "<f4",
                   "fill_value": null, "order": "C", "filters": null, "compressor": null},
                 "time/.zattrs": {"_ARRAY_DIMENSIONS": ["time"]},
                 "b/.zarray": {"zarr_format": 2, "shape": [2, 3], "chunks": [1, 3],
                   "dtype": "<f4", "fill_value": null, "order": "C", "filters": null,
                   "compressor": null},
                 "b/.zattrs": {"_ARRAY_DIMENSIONS": ["time", "x"]},
                 "p/.zarray": {"zarr_format": 2, "shape": [2], "chunks": [2], "dtype": "<f4",
                   "fill_value": null, "order": "C", "filters": null, "compressor": null},
                 "p/.zattrs": {"_ARRAY_DIMENSIONS": ["phony_dim_0"]},
                 "q/.zarray": {"zarr_format": 2, "shape": [5], "chunks": [5], "dtype": "<f4",
                   "fill_value": null, "order": "C", "filters": null, "compressor": null},
                 "q/.zattrs": {"_ARRAY_DIMENSIONS": ["phony_dim_0"]},
                 "g/c/.zarray": {"zarr_format": 2, "shape": [1], "chunks": [1], "dtype": "<f4",
                   "fill_value": null, "order": "C", "filters": null, "compressor": null},
                 "g/c/.zattrs": {"_ARRAY_DIMENSIONS": ["time"]}}"#,
        )
        .unwrap();
        let dataset = to_dataset(&short).unwrap();
        assert_eq!(dataset.arrays["b"].shape(), vec![4, 3]);
        // No coordinate variable (h5py's positional phony dimensions): left alone.
        assert_eq!(dataset.arrays["p"].shape(), vec![2]);
        // Another group's `time` is another dimension.
        assert_eq!(dataset.arrays["g/c"].shape(), vec![1]);
        let outside = KerchunkRefs::from_json(
            "t",
            br#"{"v/.zarray": {"zarr_format": 2, "shape": [4], "chunks": [2], "dtype": "<f4",
                 "fill_value": null, "order": "C", "filters": null, "compressor": null},
                 "v/2": ["/d/a.nc", 0, 8]}"#,
        )
        .unwrap();
        let err = to_dataset(&outside).unwrap_err().to_string();
        assert!(err.contains("outside the array's grid"), "{err}");
    }
}
