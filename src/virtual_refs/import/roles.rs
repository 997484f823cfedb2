//! Which arrays of a virtual dataset an import *loads* (reads their values once and stores
//! them as ordinary chunks) and which stay virtual (references into the source files).
//!
//! Loaded by default, when their decoded size is at most [`DEFAULT_LOAD_LIMIT`]:
//! - coordinate variables: one-dimensional arrays named like their dimension (`time(time)`);
//! - arrays another variable names as its CF `coordinates`, `bounds`, `climatology` or
//!   `grid_mapping` (auxiliary coordinates, cell bounds, grid mappings), or that the dataset's
//!   global `coordinates` attribute names;
//! - scalars (no dimension).
//!
//! Such arrays are small, read whole by every client that opens the dataset, and often grow
//! with each appended file in a chunking that cannot be extended (netCDF stores a 1-D
//! unlimited variable in one chunk of 512). Everything else stays virtual. `load` and
//! `keep_virtual` options override the default per variable.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::summary::LoadReason;
use crate::error::{Error, Result};
use crate::virtual_refs::dataset::{VirtualArray, VirtualDataset};

/// The largest array (decoded bytes) loaded without being asked: 64 MiB.
pub const DEFAULT_LOAD_LIMIT: u64 = 64 << 20;

/// What an import does with one array's source data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Read, decode and store the values as native chunks.
    Load(LoadReason),
    /// Reference the source chunks. `note` says why a default candidate was not loaded.
    Virtual {
        /// Why an array that would be loaded by default stays virtual.
        note: Option<String>,
    },
}

/// Decoded size in bytes of an array document, `None` for data types without a fixed size.
pub(crate) fn decoded_size(array: &VirtualArray) -> Option<u64> {
    let element = element_size(&array.document["data_type"])?;
    array
        .shape()
        .iter()
        .try_fold(element, |n, &d| n.checked_mul(d))
}

/// Size in bytes of one element of a Zarr v3 data type floe translates to.
pub(crate) fn element_size(data_type: &Value) -> Option<u64> {
    if let Some(length) = data_type.pointer("/configuration/length_bytes") {
        return length.as_u64();
    }
    if data_type
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| n.starts_with("numpy."))
    {
        return Some(8);
    }
    match data_type.as_str()? {
        "bool" | "int8" | "uint8" => Some(1),
        "int16" | "uint16" | "float16" => Some(2),
        "int32" | "uint32" | "float32" => Some(4),
        "int64" | "uint64" | "float64" | "complex64" => Some(8),
        "complex128" => Some(16),
        _ => None,
    }
}

/// The names an attribute value lists: space-separated names, and for `grid_mapping` also the
/// `name: coordinates` form (the names before the colons).
fn listed_names(attribute: &str, value: &str) -> Vec<String> {
    if attribute == "grid_mapping" && value.contains(':') {
        return value
            .split_whitespace()
            .filter_map(|w| w.strip_suffix(':'))
            .map(str::to_string)
            .collect();
    }
    value.split_whitespace().map(str::to_string).collect()
}

/// Resolves a CF variable reference made from group `group` to an array path of `dataset`: an
/// absolute path, a relative path, or a bare name looked up in `group` and then its ancestors
/// (CF 1.8 search by proximity).
fn resolve_reference(dataset: &VirtualDataset, group: &str, name: &str) -> Option<String> {
    if let Some(absolute) = name.strip_prefix('/') {
        return dataset
            .arrays
            .contains_key(absolute)
            .then(|| absolute.to_string());
    }
    let mut scope = Some(group.to_string());
    while let Some(g) = scope {
        let candidate = if g.is_empty() {
            name.to_string()
        } else {
            format!("{g}/{name}")
        };
        if dataset.arrays.contains_key(&candidate) {
            return Some(candidate);
        }
        scope = (!g.is_empty()).then(|| VirtualDataset::parent_of(&g).to_string());
    }
    None
}

/// The CF reasons to load each array another variable points at.
fn referenced(dataset: &VirtualDataset) -> BTreeMap<String, LoadReason> {
    let mut out = BTreeMap::new();
    let attributes = ["coordinates", "bounds", "climatology", "grid_mapping"];
    for (path, array) in &dataset.arrays {
        let group = VirtualDataset::parent_of(path);
        let attrs = array.attributes();
        for attribute in attributes {
            let Some(value) = attrs.get(attribute).and_then(Value::as_str) else {
                continue;
            };
            for name in listed_names(attribute, value) {
                let target = resolve_reference(dataset, group, &name).filter(|t| t != path);
                if let Some(target) = target {
                    out.entry(target).or_insert_with(|| LoadReason::Referenced {
                        by: path.clone(),
                        attribute,
                    });
                }
            }
        }
    }
    for (group, attrs) in &dataset.groups {
        let Some(value) = attrs.get("coordinates").and_then(Value::as_str) else {
            continue;
        };
        for name in value.split_whitespace() {
            if let Some(target) = resolve_reference(dataset, group, name) {
                out.entry(target).or_insert_with(|| LoadReason::Referenced {
                    by: if group.is_empty() {
                        "/".into()
                    } else {
                        group.clone()
                    },
                    attribute: "coordinates",
                });
            }
        }
    }
    out
}

/// The variable each bounds (or climatology) array belongs to, by path: `bounds` arrays
/// inherit their parent's `units` and `calendar` when they lack them (CF 7.1), which an
/// append needs to compare and re-encode their times.
pub(crate) fn bounds_parents(dataset: &VirtualDataset) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (path, array) in &dataset.arrays {
        let attrs = array.attributes();
        for attribute in ["bounds", "climatology"] {
            let Some(name) = attrs.get(attribute).and_then(Value::as_str) else {
                continue;
            };
            if let Some(target) = resolve_reference(dataset, VirtualDataset::parent_of(path), name)
            {
                out.entry(target).or_insert_with(|| path.clone());
            }
        }
    }
    out
}

/// The role of every array of `dataset`, by path. `load` and `keep_virtual` name variables by
/// path relative to the dataset root or by name (matching every array of that name).
///
/// Fails with [`crate::Error::KerchunkImport`] when a name matches no array, or one array is
/// named by both lists.
pub(crate) fn decide(
    dataset: &VirtualDataset,
    load: &[String],
    keep_virtual: &[String],
    limit: u64,
) -> Result<BTreeMap<String, Role>> {
    let matching = |names: &[String], option: &str| -> Result<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        for name in names {
            let name = name.trim_start_matches('/');
            let hits: Vec<&String> = dataset
                .arrays
                .keys()
                .filter(|p| p.as_str() == name || VirtualDataset::name_of(p) == name)
                .collect();
            if hits.is_empty() {
                return Err(Error::import_refused(
                    &dataset.origin,
                    format!("{option} `{name}`: the dataset has no such variable"),
                ));
            }
            out.extend(hits.into_iter().cloned());
        }
        Ok(out)
    };
    let asked_load = matching(load, "--load")?;
    let asked_virtual = matching(keep_virtual, "--virtual")?;
    if let Some(both) = asked_load.intersection(&asked_virtual).next() {
        return Err(Error::import_refused(
            &dataset.origin,
            format!("variable `{both}` is named by both --load and --virtual"),
        ));
    }
    let referenced = referenced(dataset);
    let mut roles = BTreeMap::new();
    for (path, array) in &dataset.arrays {
        let role = if asked_load.contains(path) {
            Role::Load(LoadReason::Asked)
        } else if asked_virtual.contains(path) {
            Role::Virtual { note: None }
        } else {
            default_role(path, array, referenced.get(path), limit)
        };
        roles.insert(path.clone(), role);
    }
    Ok(roles)
}

fn default_role(
    path: &str,
    array: &VirtualArray,
    referenced: Option<&LoadReason>,
    limit: u64,
) -> Role {
    let names = array.dimension_names();
    let reason = if names.len() == 1 && names[0] == VirtualDataset::name_of(path) {
        Some(LoadReason::Coordinate)
    } else if let Some(reason) = referenced {
        Some(reason.clone())
    } else if array.shape().is_empty() {
        Some(LoadReason::Scalar)
    } else {
        None
    };
    let Some(reason) = reason else {
        return Role::Virtual { note: None };
    };
    match decoded_size(array) {
        Some(size) if size <= limit => Role::Load(reason),
        Some(size) => Role::Virtual {
            note: Some(format!(
                "{reason}, but {size} bytes exceed the {limit}-byte limit for loading by \
                 default (use --load to load it)"
            )),
        },
        None if element_size(&array.document["data_type"]).is_some() => Role::Virtual {
            note: Some(format!("{reason}, but its size overflows 64 bits")),
        },
        None => Role::Virtual {
            note: Some(format!("{reason}, but its data type has no fixed size")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn array(dims: &[&str], shape: &[u64], attrs: Value) -> VirtualArray {
        VirtualArray {
            document: json!({"shape": shape, "data_type": "float64",
                "dimension_names": dims, "attributes": attrs}),
            chunks: Vec::new(),
        }
    }

    fn dataset() -> VirtualDataset {
        let mut d = VirtualDataset::default();
        d.groups.insert(String::new(), serde_json::Map::new());
        d.groups.insert("g".into(), serde_json::Map::new());
        d.arrays
            .insert("time".into(), array(&["time"], &[12], json!({})));
        d.arrays.insert(
            "g/t2m".into(),
            array(
                &["time", "y", "x"],
                &[12, 4, 5],
                json!({"coordinates": "lat lon", "grid_mapping": "crs: lat lon"}),
            ),
        );
        d.arrays
            .insert("g/lat".into(), array(&["y", "x"], &[4, 5], json!({})));
        d.arrays
            .insert("lon".into(), array(&["y", "x"], &[4, 5], json!({})));
        d.arrays.insert("g/crs".into(), array(&[], &[], json!({})));
        d.arrays.insert(
            "time_bnds".into(),
            array(&["time", "nv"], &[12, 2], json!({})),
        );
        d.arrays.get_mut("time").unwrap().document["attributes"] = json!({"bounds": "time_bnds"});
        d.arrays
            .insert("big".into(), array(&["big"], &[1 << 20], json!({})));
        d
    }

    #[test]
    fn coordinates_bounds_grid_mappings_and_scalars_load() {
        let roles = decide(&dataset(), &[], &[], 1 << 20).unwrap();
        let loaded = |p: &str| matches!(roles[p], Role::Load(_));
        assert_eq!(roles["time"], Role::Load(LoadReason::Coordinate));
        // Found in the group, then in the root (search by proximity).
        assert!(loaded("g/lat") && loaded("lon") && loaded("time_bnds"));
        assert_eq!(
            roles["g/crs"],
            Role::Load(LoadReason::Referenced {
                by: "g/t2m".into(),
                attribute: "grid_mapping"
            })
        );
        assert!(!loaded("g/t2m"));
        // 8 MiB of coordinate is over this test's limit.
        let Role::Virtual { note: Some(note) } = &roles["big"] else {
            panic!("{:?}", roles["big"]);
        };
        assert!(note.contains("--load"), "{note}");
    }

    #[test]
    fn options_override_and_unknown_names_are_refused() {
        let d = dataset();
        let roles = decide(&d, &["t2m".into()], &["time".into()], 1 << 20).unwrap();
        assert_eq!(roles["g/t2m"], Role::Load(LoadReason::Asked));
        assert_eq!(roles["time"], Role::Virtual { note: None });
        let err = decide(&d, &["nope".into()], &[], 1 << 20).unwrap_err();
        assert!(err.to_string().contains("--load `nope`"), "{err}");
        let err = decide(&d, &["time".into()], &["/time".into()], 1 << 20).unwrap_err();
        assert!(err.to_string().contains("both"), "{err}");
    }
}
