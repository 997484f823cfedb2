//! Choosing the variables of a reference set to import: only some (with what they need to be
//! read as a dataset), or all but some.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{invalid, KerchunkRef, KerchunkRefs};
use crate::error::Result;

/// The array paths of a reference set (`<path>/.zarray` keys).
fn arrays(refs: &KerchunkRefs) -> BTreeSet<String> {
    refs.refs
        .keys()
        .filter_map(|k| k.strip_suffix("/.zarray"))
        .map(str::to_string)
        .collect()
}

fn attributes(refs: &KerchunkRefs, array: &str) -> serde_json::Map<String, Value> {
    match refs.refs.get(&format!("{array}/.zattrs")) {
        Some(KerchunkRef::Inline(bytes)) => serde_json::from_slice::<Value>(bytes)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default(),
        _ => Default::default(),
    }
}

/// The variables `array` needs to be read as xarray reads it: the coordinate variables of its
/// dimensions (arrays named like them, in the same group) and the arrays its `coordinates`,
/// `bounds` and `grid_mapping` attributes name.
fn needed_by(refs: &KerchunkRefs, array: &str, all: &BTreeSet<String>) -> Vec<String> {
    let group = array.rsplit_once('/').map_or("", |(g, _)| g);
    let in_group = |name: &str| {
        if group.is_empty() {
            name.to_string()
        } else {
            format!("{group}/{name}")
        }
    };
    let attrs = attributes(refs, array);
    let mut names: Vec<String> = Vec::new();
    if let Some(Value::Array(dims)) = attrs.get("_ARRAY_DIMENSIONS") {
        names.extend(dims.iter().filter_map(Value::as_str).map(str::to_string));
    }
    for key in ["coordinates", "bounds", "grid_mapping"] {
        if let Some(Value::String(text)) = attrs.get(key) {
            names.extend(
                text.split_whitespace()
                    .map(|w| w.trim_end_matches(':').to_string()),
            );
        }
    }
    names
        .into_iter()
        .map(|n| in_group(&n))
        .filter(|path| path != array && all.contains(path))
        .collect()
}

impl KerchunkRefs {
    /// The reference set with only some variables (arrays, by path below the root, e.g.
    /// `t2m` or `group/t2m`): with `keep` non-empty, those and what they need to read as a
    /// dataset (coordinate variables of their dimensions, arrays their `coordinates`, `bounds`
    /// and `grid_mapping` name, transitively); then without those in `drop`. Groups and their
    /// attributes stay. Fails with [`crate::Error::KerchunkImport`] for a name no array has.
    pub fn select_variables(&self, keep: &[String], drop: &[String]) -> Result<KerchunkRefs> {
        let all = arrays(self);
        for name in keep.iter().chain(drop) {
            if !all.contains(name) {
                return Err(invalid(
                    self.origin.clone(),
                    format!(
                        "no variable `{name}` (it has: {})",
                        all.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        let mut chosen: BTreeSet<String> = if keep.is_empty() {
            all.clone()
        } else {
            let mut chosen = BTreeSet::new();
            let mut pending: Vec<String> = keep.to_vec();
            while let Some(name) = pending.pop() {
                if chosen.insert(name.clone()) {
                    pending.extend(needed_by(self, &name, &all));
                }
            }
            chosen
        };
        for name in drop {
            chosen.remove(name);
        }
        let refs = self
            .refs
            .iter()
            .filter(|(key, _)| {
                let owner = key.rsplit_once('/').map_or("", |(owner, _)| owner);
                !all.contains(owner) || chosen.contains(owner)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(KerchunkRefs {
            origin: self.origin.clone(),
            refs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs() -> KerchunkRefs {
        KerchunkRefs::from_json(
            "t",
            br#"{".zgroup": {"zarr_format": 2},
                 "time/.zarray": {"shape": [1]}, "time/.zattrs": {"_ARRAY_DIMENSIONS": ["time"]},
                 "time/0": ["/d/f.nc", 0, 8],
                 "lat/.zarray": {"shape": [1]}, "lat/.zattrs": {"_ARRAY_DIMENSIONS": ["lat"]},
                 "crs/.zarray": {"shape": []}, "crs/.zattrs": {"_ARRAY_DIMENSIONS": []},
                 "t2m/.zarray": {"shape": [1, 1]},
                 "t2m/.zattrs": {"_ARRAY_DIMENSIONS": ["time", "lat"], "grid_mapping": "crs"},
                 "t2m/0.0": ["/d/f.nc", 8, 4],
                 "u10/.zarray": {"shape": [1]}, "u10/.zattrs": {"_ARRAY_DIMENSIONS": ["time"]},
                 "u10/0": ["/d/f.nc", 12, 4]}"#,
        )
        .unwrap()
    }

    #[test]
    fn kept_variables_bring_their_coordinates_and_grid_mapping() {
        let kept = refs().select_variables(&["t2m".into()], &[]).unwrap();
        let arrays = arrays(&kept);
        assert_eq!(
            arrays.into_iter().collect::<Vec<_>>(),
            ["crs", "lat", "t2m", "time"]
        );
        assert!(kept.refs.contains_key(".zgroup"));
        assert!(kept.refs.contains_key("t2m/0.0"));
        assert!(!kept.refs.contains_key("u10/0"));
    }

    #[test]
    fn dropped_variables_go_and_unknown_names_are_refused() {
        let dropped = refs().select_variables(&[], &["u10".into()]).unwrap();
        assert!(!arrays(&dropped).contains("u10"));
        assert_eq!(arrays(&dropped).len(), 4);
        let err = refs().select_variables(&["nope".into()], &[]).unwrap_err();
        assert!(err.to_string().contains("no variable `nope`"), "{err}");
    }
}
