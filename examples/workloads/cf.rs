//! The CF-1.10 description of W1's forecast, as a forecast provider publishes it: the
//! attributes xarray needs to decode `time` to dates and to label `t2m` with latitudes and
//! longitudes, and the global attributes of the dataset. Only the attribute documents live
//! here; `zarr_io` writes them. Nothing here names the software that wrote the data.

use serde_json::{Map, Value};

/// Units of `time`: its int64 values are Unix timestamps ([`super::data::day_timestamp`]).
pub const TIME_UNITS: &str = "seconds since 1970-01-01 00:00:00";
/// Calendar of `time`.
pub const CALENDAR: &str = "proleptic_gregorian";
/// The CF version the dataset follows (the `Conventions` global attribute).
pub const CONVENTIONS: &str = "CF-1.10";
/// The `title` global attribute.
pub const TITLE: &str = "Daily 2 m air temperature forecast, 1 degree global grid (synthetic)";

fn attributes(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|&(key, value)| (key.to_string(), Value::from(value)))
        .collect()
}

/// Global attributes of the root group.
pub fn global() -> Map<String, Value> {
    attributes(&[
        ("Conventions", CONVENTIONS),
        ("title", TITLE),
        ("institution", "floe examples"),
        (
            "source",
            "synthetic field: 288 K - 30 K |sin(lat)| + 5 K sin(lon + day/58) \
             + N(0, 1.5 K) noise seeded by the day",
        ),
        ("history", "one day appended per commit by a daily job"),
    ])
}

/// Attributes of the `time` coordinate.
pub fn time() -> Map<String, Value> {
    attributes(&[
        ("standard_name", "time"),
        ("long_name", "time"),
        ("units", TIME_UNITS),
        ("calendar", CALENDAR),
        ("axis", "T"),
    ])
}

/// Attributes of the `lat` coordinate.
pub fn latitude() -> Map<String, Value> {
    attributes(&[
        ("standard_name", "latitude"),
        ("long_name", "latitude"),
        ("units", "degrees_north"),
        ("axis", "Y"),
    ])
}

/// Attributes of the `lon` coordinate.
pub fn longitude() -> Map<String, Value> {
    attributes(&[
        ("standard_name", "longitude"),
        ("long_name", "longitude"),
        ("units", "degrees_east"),
        ("axis", "X"),
    ])
}

/// Attributes of the `t2m` data variable.
pub fn t2m() -> Map<String, Value> {
    attributes(&[
        ("standard_name", "air_temperature"),
        ("long_name", "2 metre temperature"),
        ("units", "K"),
    ])
}
