//! Comparing the attributes of an imported array with the stored one's before appending to it
//! (or finding it unchanged): attributes that decide how stored numbers decode must agree,
//! CF time units may differ when the values are re-encoded, and every other difference keeps
//! the stored value and is reported.

use serde_json::{Map, Value};

use super::cf_time::{TimeConversion, TimeEncoding};
use crate::error::{Error, Result};
use crate::format::path::NodePath;

/// Attributes that change what the stored numbers mean (CF packing, missing values, units,
/// calendars, xarray's unsigned marker).
pub(crate) const DECODING_ATTRIBUTES: [&str; 7] = [
    "scale_factor",
    "add_offset",
    "_FillValue",
    "missing_value",
    "units",
    "calendar",
    "_Unsigned",
];

/// What the attributes of an imported array require and what differs harmlessly.
#[derive(Debug, Default)]
pub(crate) struct AttributeCheck {
    /// The imported values are CF times in another encoding: convert them with this.
    pub(crate) time: Option<TimeChange>,
    /// Other attributes that differ: (name, stored value, imported value); `null` for absent.
    pub(crate) differing: Vec<(String, Value, Value)>,
}

/// A change of CF time encoding between the imported file and the stored array.
#[derive(Debug)]
pub(crate) struct TimeChange {
    pub(crate) conversion: TimeConversion,
    /// The imported encoding, as `units` (and `calendar`).
    pub(crate) from: String,
    /// The stored encoding.
    pub(crate) to: String,
}

fn encoding_text(attributes: &Map<String, Value>) -> String {
    let units = attributes
        .get("units")
        .and_then(Value::as_str)
        .unwrap_or("");
    match attributes.get("calendar").and_then(Value::as_str) {
        Some(calendar) => format!("{units}, calendar {calendar}"),
        None => units.to_string(),
    }
}

/// The CF time encoding of `attributes`, `None` when its `units` are not a time unit.
fn time_encoding(path: &NodePath, attributes: &Map<String, Value>) -> Result<Option<TimeEncoding>> {
    let Some(units) = attributes.get("units").and_then(Value::as_str) else {
        return Ok(None);
    };
    let calendar = attributes.get("calendar").and_then(Value::as_str);
    TimeEncoding::parse(units, calendar)
        .transpose()
        .map_err(|reason| Error::import_refused(format!("array `{path}`"), reason))
}

/// Compares the attributes of the array at `path`: `stored` in the repository, `imported` from
/// the file. `convertible` says whether the imported values are loaded (so CF times in another
/// encoding can be re-encoded) or stay virtual (so they cannot).
///
/// Fails with [`Error::KerchunkImport`] naming the attribute and both values when a decoding
/// attribute differs in a way that cannot be reconciled.
pub(crate) fn compare(
    path: &NodePath,
    stored: &Map<String, Value>,
    imported: &Map<String, Value>,
    convertible: bool,
) -> Result<AttributeCheck> {
    let mut check = AttributeCheck::default();
    let value =
        |attrs: &Map<String, Value>, name: &str| attrs.get(name).cloned().unwrap_or(Value::Null);
    let time_differs = ["units", "calendar"]
        .iter()
        .any(|name| stored.get(*name) != imported.get(*name));
    // Time units spelled differently but meaning the same encoding need nothing.
    let mut same_time = false;
    if time_differs {
        let encodings = (time_encoding(path, stored)?, time_encoding(path, imported)?);
        if let (Some(to), Some(from)) = encodings {
            match TimeConversion::between(from, to) {
                None => same_time = true,
                Some(_) if !convertible => {
                    return Err(refusal(
                        path,
                        "units",
                        &Value::String(encoding_text(stored)),
                        &Value::String(encoding_text(imported)),
                        "its values stay virtual, so they cannot be re-encoded: import it with \
                         --load to convert them to the stored units",
                    ))
                }
                Some(conversion) => {
                    check.time = Some(TimeChange {
                        conversion,
                        from: encoding_text(imported),
                        to: encoding_text(stored),
                    })
                }
            }
        }
    }
    let time_handled = same_time || check.time.is_some();
    for name in DECODING_ATTRIBUTES {
        let (s, i) = (value(stored, name), value(imported, name));
        let is_time = name == "units" || name == "calendar";
        if s != i && !(is_time && time_handled) {
            return Err(refusal(
                path,
                name,
                &s,
                &i,
                "the imported values would decode differently from the stored ones",
            ));
        }
    }
    check.differing = differing(stored, imported)
        .into_iter()
        .filter(|(name, _, _)| !DECODING_ATTRIBUTES.contains(&name.as_str()))
        .collect();
    Ok(check)
}

/// The attributes whose values differ between `stored` and `imported`, sorted by name, as
/// (name, stored value, imported value); `null` stands for an absent attribute.
pub(crate) fn differing(
    stored: &Map<String, Value>,
    imported: &Map<String, Value>,
) -> Vec<(String, Value, Value)> {
    let mut names: Vec<&String> = stored.keys().chain(imported.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|name| stored.get(*name) != imported.get(*name))
        .map(|name| {
            let value =
                |attrs: &Map<String, Value>| attrs.get(name).cloned().unwrap_or(Value::Null);
            (name.clone(), value(stored), value(imported))
        })
        .collect()
}

fn refusal(path: &NodePath, name: &str, stored: &Value, imported: &Value, why: &str) -> Error {
    Error::import_refused(
        format!("array `{path}`"),
        format!(
            "its attribute `{name}` is {} in the imported file but {} in the stored array: \
             {why}; nothing was changed",
            shown(imported),
            shown(stored)
        ),
    )
}

fn shown(value: &Value) -> String {
    match value {
        Value::Null => "absent".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn decoding_attributes_must_agree_and_others_are_reported() {
        let path = NodePath::new("t2m").unwrap();
        let stored = attrs(json!({"units": "K", "scale_factor": 0.01, "history": "a"}));
        let same = attrs(json!({"units": "K", "scale_factor": 0.01, "history": "b", "x": 1}));
        let check = compare(&path, &stored, &same, false).unwrap();
        assert!(check.time.is_none());
        assert_eq!(
            check.differing,
            vec![
                ("history".to_string(), json!("a"), json!("b")),
                ("x".to_string(), Value::Null, json!(1))
            ]
        );
        let packed = attrs(json!({"units": "K", "scale_factor": 0.02}));
        let err = compare(&path, &stored, &packed, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`scale_factor` is 0.02"), "{err}");
        assert!(err.contains("but 0.01"), "{err}");
        assert!(err.contains("t2m"), "{err}");
        let celsius = attrs(json!({"units": "degC", "scale_factor": 0.01}));
        let err = compare(&path, &stored, &celsius, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`units` is \"degC\""), "{err}");
        let filled = attrs(json!({"units": "K", "scale_factor": 0.01, "_FillValue": -1}));
        let err = compare(&path, &stored, &filled, true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`_FillValue` is -1") && err.contains("absent"),
            "{err}"
        );
    }

    #[test]
    fn time_units_convert_only_when_loaded() {
        let path = NodePath::new("time").unwrap();
        let stored = attrs(json!({"units": "hours since 2026-01-01", "calendar": "standard"}));
        let next = attrs(json!({"units": "hours since 2026-01-02", "calendar": "standard"}));
        let check = compare(&path, &stored, &next, true).unwrap();
        let change = check.time.unwrap();
        assert_eq!(change.conversion.convert(0.0).unwrap(), Some(24.0));
        assert_eq!(change.from, "hours since 2026-01-02, calendar standard");
        let err = compare(&path, &stored, &next, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--load"), "{err}");
        // Spelled differently, encoded the same: nothing to do.
        let spelled =
            attrs(json!({"units": "hours since 2026-01-01 00:00:00", "calendar": "gregorian"}));
        let check = compare(&path, &stored, &spelled, false).unwrap();
        assert!(check.time.is_none() && check.differing.is_empty());
    }
}
