//! The netCDF-4 conventions over HDF5: which datasets are variables, and the names of each
//! variable's dimensions.
//!
//! - A dimension is a dimension scale (`CLASS = "DIMENSION_SCALE"`); one whose `NAME` says it
//!   is "not a netCDF variable" defines a dimension only and is not a variable.
//! - A variable names its dimensions through `DIMENSION_LIST` (object references to the
//!   scales, in the global heap); a coordinate variable is its own dimension scale; a
//!   multi-dimensional coordinate variable lists its dimension ids in `_Netcdf4Coordinates`.
//! - A dataset without scales (written by h5py, say) gets dimensions as the netCDF library
//!   gives them: per group, the first dimension (a scale, or a phony one made before) of the
//!   same length and unlimitedness that the dataset does not use yet; else a new
//!   `phony_dim_N`, numbered after all the file's dimension scales in the order they are
//!   made (subgroups before their parent's datasets).
//! - The attributes that carry these conventions are hidden.

use std::collections::HashMap;

use super::attribute::{self, Attribute};
use super::bytes::{bad, gather, Cursor, Fault, FileBytes, Parsed, Sizes};
use super::datatype::Datatype;
use super::heaps::{global_object, HeapRef};
use super::objects::{Dataset, Tree};

/// Attributes of the conventions, never shown as attributes.
pub(crate) const HIDDEN: &[&str] = &[
    "CLASS",
    "NAME",
    "DIMENSION_LIST",
    "REFERENCE_LIST",
    "DIMENSION_LABELS",
    "_Netcdf4Dimid",
    "_Netcdf4Coordinates",
    "_nc3_strict",
    "_NCProperties",
    "_SuperblockVersion",
    "_IsNetcdf4",
];

/// The text that marks a dimension scale as a dimension only.
const DIMENSION_ONLY: &str = "This is a netCDF dimension but not a netCDF variable";

/// The variables of a file: the index of each visible dataset in `tree.datasets` with its
/// dimension names.
pub(crate) struct Variables {
    pub(crate) dims: Vec<(usize, Vec<String>)>,
    /// Whether the file follows the netCDF-4 conventions (written by the netCDF library).
    pub(crate) is_netcdf: bool,
}

fn text(file: &FileBytes, sizes: Sizes, a: Option<&Attribute>) -> Parsed<Option<String>> {
    match a {
        None => Ok(None),
        Some(a) => Ok(attribute::value(file, sizes, a)?
            .as_str()
            .map(str::to_string)),
    }
}

fn is_scale(file: &FileBytes, sizes: Sizes, d: &Dataset) -> Parsed<bool> {
    Ok(text(file, sizes, d.attribute("CLASS"))?.as_deref() == Some("DIMENSION_SCALE"))
}

/// The object addresses a `DIMENSION_LIST` attribute names, one per dimension (the first
/// scale of each).
fn dimension_list(file: &FileBytes, sizes: Sizes, a: &Attribute) -> Parsed<Vec<u64>> {
    if !matches!(&a.datatype, Datatype::Sequence(base) if matches!(**base, Datatype::ObjectReference { .. }))
    {
        return bad("`DIMENSION_LIST` is not a list of object references");
    }
    let count = a.space.elements().unwrap_or(0).min(64) as usize;
    let refs: Vec<HeapRef> = (0..count)
        .map(|i| {
            let raw = a.data.get(16 * i..16 * i + 16).unwrap_or_default();
            HeapRef::decode(&mut Cursor::new(raw, 0, sizes))
        })
        .collect::<Parsed<_>>()?;
    gather(refs.into_iter().map(|r| {
        let bytes = global_object(file, sizes, r)?;
        if bytes.len() < usize::from(sizes.offsets) {
            return bad("an empty `DIMENSION_LIST` entry");
        }
        Cursor::new(&bytes, 0, sizes).address_field()
    }))
}

/// Finds the variables of `tree` and their dimension names.
pub(crate) fn variables(file: &FileBytes, sizes: Sizes, tree: &Tree) -> Parsed<Variables> {
    let root_attrs = tree
        .groups
        .iter()
        .find(|g| g.path.is_empty())
        .map(|g| g.attributes.as_slice())
        .unwrap_or_default();
    let scales: Vec<bool> = gather(tree.datasets.iter().map(|d| is_scale(file, sizes, d)))?;
    let is_netcdf = root_attrs.iter().any(|a| a.name == "_NCProperties")
        || tree
            .datasets
            .iter()
            .any(|d| d.attribute("_Netcdf4Dimid").is_some());
    let names_by_address: HashMap<u64, &str> = tree
        .datasets
        .iter()
        .zip(&scales)
        .filter(|(_, s)| **s)
        .map(|(d, _)| (d.address, d.name()))
        .collect();
    // Dimension ids of scales (`_Netcdf4Dimid`), for `_Netcdf4Coordinates`.
    let mut by_dimid: HashMap<(String, i64), String> = HashMap::new();
    for (d, _) in tree.datasets.iter().zip(&scales).filter(|(_, s)| **s) {
        if let Some(a) = d.attribute("_Netcdf4Dimid") {
            if let Some(id) = attribute::value(file, sizes, a)?.as_i64() {
                by_dimid.insert((d.group().to_string(), id), d.name().to_string());
            }
        }
    }
    let dimension_only: Vec<bool> = gather(tree.datasets.iter().zip(&scales).map(|(d, s)| {
        Ok(*s
            && text(file, sizes, d.attribute("NAME"))?
                .is_some_and(|n| n.starts_with(DIMENSION_ONLY)))
    }))?;
    let lists = gather(
        tree.datasets
            .iter()
            .map(|d| match d.attribute("DIMENSION_LIST") {
                Some(a) => dimension_list(file, sizes, a).map(Some),
                None => Ok(None),
            }),
    )?;
    // Each group's dimensions (name, length, unlimited), in creation order: its dimension
    // scales first (the netCDF library reads them with the metadata), then phony dimensions
    // as datasets without scales need them, numbered after every dimension of the file.
    let mut group_dims: HashMap<String, Vec<(String, u64, bool)>> = HashMap::new();
    for (d, _) in tree.datasets.iter().zip(&scales).filter(|(_, s)| **s) {
        if let (Some(&len), Some(&max)) = (d.space.dims.first(), d.space.max_dims.first()) {
            group_dims.entry(d.group().to_string()).or_default().push((
                d.name().to_string(),
                len,
                max == u64::MAX,
            ));
        }
    }
    let mut phony_count = scales.iter().filter(|s| **s).count();
    let mut out = Vec::new();
    for i in netcdf_order(tree) {
        let d = &tree.datasets[i];
        if dimension_only[i] {
            continue;
        }
        let rank = d.space.dims.len();
        let dims: Vec<String> = if let Some(addresses) = &lists[i] {
            if addresses.len() != rank {
                return bad(format!(
                    "dataset `{}` lists {} dimensions for its {rank}",
                    d.path,
                    addresses.len()
                ));
            }
            addresses
                .iter()
                .map(|a| {
                    names_by_address
                        .get(a)
                        .map(|n| n.to_string())
                        .ok_or_else(|| {
                            Fault::Bad(format!(
                                "dataset `{}` names a dimension at byte {a} that is no dimension \
                             scale",
                                d.path
                            ))
                        })
                })
                .collect::<Parsed<_>>()?
        } else if scales[i] && rank == 1 {
            vec![d.name().to_string()]
        } else if let Some(coords) = d.attribute("_Netcdf4Coordinates") {
            let ids = attribute::value(file, sizes, coords)?;
            let ids: Vec<i64> = match ids {
                serde_json::Value::Array(v) => v.iter().filter_map(|x| x.as_i64()).collect(),
                v => v.as_i64().into_iter().collect(),
            };
            ids.iter()
                .map(|&id| {
                    // A dimension id may be defined in this group or an ancestor.
                    let mut group = d.group().to_string();
                    loop {
                        if let Some(name) = by_dimid.get(&(group.clone(), id)) {
                            return Ok(name.clone());
                        }
                        match group.rsplit_once('/') {
                            Some((parent, _)) => group = parent.to_string(),
                            None if !group.is_empty() => group.clear(),
                            None => {
                                return bad(format!(
                                    "dataset `{}` names dimension id {id}, which no scale has",
                                    d.path
                                ))
                            }
                        }
                    }
                })
                .collect::<Parsed<_>>()?
        } else {
            // As the netCDF library matches them: the first dimension of the group with the
            // same length and the same unlimitedness that this dataset does not use yet.
            let known = group_dims.entry(d.group().to_string()).or_default();
            let mut used: Vec<String> = Vec::new();
            for (&len, &max) in d.space.dims.iter().zip(&d.space.max_dims) {
                let unlimited = max == u64::MAX;
                let found = known
                    .iter()
                    .find(|(n, l, u)| *l == len && *u == unlimited && !used.contains(n))
                    .map(|(n, _, _)| n.clone());
                let name = match found {
                    Some(n) => n,
                    None => {
                        let n = format!("phony_dim_{phony_count}");
                        phony_count += 1;
                        known.push((n.clone(), len, unlimited));
                        n
                    }
                };
                used.push(name);
            }
            used
        };
        out.push((i, dims));
    }
    Ok(Variables {
        dims: out,
        is_netcdf,
    })
}

/// The order the netCDF library reads datasets in (which numbers phony dimensions): a
/// group's subgroups first, each wholly, in link order, then its own datasets in link order.
fn netcdf_order(tree: &Tree) -> Vec<usize> {
    fn visit(tree: &Tree, group: &str, out: &mut Vec<usize>, depth: usize) {
        if depth > 64 {
            return;
        }
        for g in &tree.groups {
            let parent = g.path.rsplit_once('/').map_or("", |(p, _)| p);
            if !g.path.is_empty() && parent == group {
                visit(tree, &g.path, out, depth + 1);
            }
        }
        out.extend(
            tree.datasets
                .iter()
                .enumerate()
                .filter(|(_, d)| d.group() == group)
                .map(|(i, _)| i),
        );
    }
    let mut out = Vec::with_capacity(tree.datasets.len());
    visit(tree, "", &mut out, 0);
    out
}
