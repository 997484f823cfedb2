//! The daily_forecast example's dataset as its users read it: built with the example's own code
//! (`examples/workloads/`: `zarr_io::create_forecast`, then one `zarr_io::append_day` commit a
//! day), served by the real `floe serve` binary, and opened with `xarray.open_zarr` at the tip,
//! a tag and a `main@<time>` version (tests/python/read_forecast.py): `time` decodes to the
//! expected dates, `lat`/`lon` are coordinates with the grid's values, `t2m` carries its CF
//! attributes and values, the dataset its global attributes, and no node an attribute starting
//! with `_zarrs`.
//!
//! Its own test binary on purpose: other suites switch zarrs' global `_zarrs` option off, which
//! would hide a write that forgets to; here zarrs' defaults are left as they are.
//!
//! Needs `FLOE_TEST_PYTHON` (see `common::python`); without it the test says why and passes.

#![cfg(feature = "cli")]

mod common;

#[allow(dead_code)]
#[path = "../examples/workloads/cf.rs"]
mod cf;
#[allow(dead_code)]
#[path = "../examples/workloads/data.rs"]
mod data;
#[allow(dead_code)]
#[path = "../examples/workloads/report.rs"]
mod report;
#[allow(dead_code)]
#[path = "../examples/workloads/zarr_io.rs"]
mod zarr_io;

use chrono::{DateTime, SecondsFormat, Utc};
use common::http::spawn_floe_serve;
use common::python::{python, run_python};
use floe::{Repository, SnapshotId};
use serde_json::{json, Value};

/// Days the test appends.
const DAYS: u64 = 5;
/// The day the tag `day-2` names.
const TAG_DAY: u64 = 2;
/// The day whose commit `main@<time>` resolves to (a time between its commit and the next).
const AS_OF_DAY: u64 = 1;

/// Creates the forecast dataset and appends `DAYS` days, one commit a day, as the example
/// does. Returns the snapshot of each day's commit.
fn build(rt: &tokio::runtime::Runtime, repo: &Repository) -> Vec<SnapshotId> {
    let session = rt.block_on(repo.writable_session("main")).unwrap();
    let store = zarr_io::store_of(&session, rt).unwrap();
    zarr_io::create_forecast(&store).unwrap();
    rt.block_on(session.commit("create the forecast dataset", None))
        .unwrap();
    (0..DAYS)
        .map(|day| {
            let session = rt.block_on(repo.writable_session("main")).unwrap();
            let store = zarr_io::store_of(&session, rt).unwrap();
            zarr_io::append_day(&store, day, &data::day_field(day)).unwrap();
            rt.block_on(session.commit(&format!("append day {day}"), None))
                .unwrap()
        })
        .collect()
}

/// Day `day`'s date as numpy parses it (`2024-01-01T00:00:00`).
fn date(day: u64) -> String {
    DateTime::<Utc>::from_timestamp(data::day_timestamp(day), 0)
        .unwrap()
        .naive_utc()
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// What xarray must see at a version holding days `0..=last_day`: the dates of `time`, and
/// `t2m` at a few (day, lat index, lon index) points including the corners of the last day.
fn version(label: &str, segment: &str, last_day: u64) -> Value {
    let (lat, lon) = (data::LAT - 1, data::LON - 1);
    let points: Vec<Value> = [
        (0, 0, 0),
        (last_day, 0, 0),
        (last_day, lat, lon),
        (last_day, 90, 180),
    ]
    .into_iter()
    .map(|(day, i, j)| {
        let value = data::day_field(day)[i * data::LON + j];
        json!({"day": day, "lat": i, "lon": j, "value": value})
    })
    .collect();
    json!({
        "label": label,
        "segment": segment,
        "dates": (0..=last_day).map(date).collect::<Vec<_>>(),
        "t2m_points": points,
    })
}

/// An RFC 3339 time halfway between the commits of `a` and `b`.
fn between(
    rt: &tokio::runtime::Runtime,
    repo: &Repository,
    a: SnapshotId,
    b: SnapshotId,
) -> String {
    let t = |id| rt.block_on(repo.snapshot_entry(id)).unwrap().committed_at;
    let (ta, tb) = (t(a), t(b));
    assert!(ta < tb, "commits must have distinct times");
    (ta + (tb - ta) / 2).to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[test]
fn xarray_reads_the_forecast_example_as_cf_at_every_version() {
    let Some(python) = python("xarray_reads_the_forecast_example_as_cf_at_every_version") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let repo_path = dir.path().join("repo");
    let repo = rt
        .block_on(Repository::init_location(
            repo_path.to_str().unwrap(),
            &vec![],
        ))
        .unwrap();
    let snapshots = build(&rt, &repo);
    rt.block_on(repo.create_tag("day-2", snapshots[TAG_DAY as usize]))
        .unwrap();
    let as_of = format!(
        "main@{}",
        between(
            &rt,
            &repo,
            snapshots[AS_OF_DAY as usize],
            snapshots[AS_OF_DAY as usize + 1]
        )
    );

    let expected = json!({
        "global_attributes": cf::global(),
        "t2m_attributes": cf::t2m(),
        "time_units": cf::TIME_UNITS,
        "calendar": cf::CALENDAR,
        "lat": data::latitudes(),
        "lon": data::longitudes(),
        "versions": [
            version("tip", "main", DAYS - 1),
            version("tag", "day-2", TAG_DAY),
            version("as-of", &as_of, AS_OF_DAY),
        ],
    });
    let expected_path = dir.path().join("expected.json");
    std::fs::write(&expected_path, expected.to_string()).unwrap();

    rt.block_on(async {
        let (_server, base) = spawn_floe_serve(&repo_path, &[]).await;
        let out = run_python(
            &python,
            "read_forecast.py",
            vec![base, expected_path.to_str().unwrap().to_string()],
        )
        .await;
        for label in ["tip", "tag", "as-of"] {
            assert!(
                out.contains(&format!("ok {label}\n")),
                "no success line for {label}"
            );
        }
    });
}
