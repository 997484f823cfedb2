//! HDF5 files on S3 (the moto server `scripts/check` starts): the scanner's round trips and
//! requests, and source patterns expanded by listing the bucket.
//!
//! - `small_files_on_s3_cost_two_round_trips`: the netCDF-4 and h5py fixtures of
//!   `tests/data/hdf5` (all their metadata in the first 64 KiB) cost a HEAD request and one
//!   ranged read each, and scan to the same references as the local copy (URLs aside).
//! - `a_deep_chunk_index_costs_one_round_trip_per_level`: a file with 16,384 chunks in a
//!   two-level version 1 B-tree (written by `tests/python/hdf5_deep.py`; needs
//!   `FLOE_TEST_PYTHON`) costs 4 round
//!   trips: HEAD, the first read, then one per level of the tree below the root.
//! - `patterns_expand_to_the_matching_objects`: `s3://bucket/prefix/day_0?.nc` lists and
//!   matches keys; a pattern without matches is refused.

#![cfg(all(feature = "cli", feature = "server"))]

mod common;

use std::path::Path;

use common::python::{python, run_python};
use object_store::ObjectStoreExt;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/hdf5")
            .join(name),
    )
    .unwrap()
}

/// The references with every URL replaced by `url`, for comparing scans of two copies.
fn with_url(refs: &floe::KerchunkRefs, url: &str) -> Vec<(String, String)> {
    refs.refs
        .iter()
        .map(|(k, r)| {
            let text = match r {
                floe::KerchunkRef::Range { offset, length, .. } => {
                    format!("{url} {offset} {length}")
                }
                other => format!("{other:?}"),
            };
            (k.clone(), text)
        })
        .collect()
}

#[tokio::test]
async fn small_files_on_s3_cost_two_round_trips() {
    let Some((bucket, options, store)) =
        common::s3_sources::s3_sources("small_files_on_s3_cost_two_round_trips")
    else {
        return;
    };
    let prefix = common::s3_sources::unique_prefix("hdf5-scan");
    for name in ["nc4.nc", "earliest.h5", "latest.h5"] {
        let key = format!("{prefix}/{name}");
        store
            .put(
                &object_store::path::Path::from(key.as_str()),
                fixture(name).into(),
            )
            .await
            .unwrap();
        let url = format!("s3://{bucket}/{key}");
        let (remote, summary) = floe::scan_source(&url, &options).await.unwrap();
        assert_eq!(summary.requests, 2, "{name}: {summary:?}");
        assert_eq!(summary.round_trips, 2, "{name}: {summary:?}");
        let local_path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/hdf5")
            .join(name);
        let (local, _) = floe::scan_source(local_path.to_str().unwrap(), &Vec::new())
            .await
            .unwrap();
        assert_eq!(with_url(&remote, "X"), with_url(&local, "X"), "{name}");
    }
}

#[tokio::test]
async fn a_deep_chunk_index_costs_one_round_trip_per_level() {
    let Some((bucket, options, store)) =
        common::s3_sources::s3_sources("a_deep_chunk_index_costs_one_round_trip_per_level")
    else {
        return;
    };
    let Some(python) = python("a_deep_chunk_index_costs_one_round_trip_per_level") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep.h5");
    run_python(
        &python,
        "hdf5_deep.py",
        vec![path.to_str().unwrap().to_string()],
    )
    .await;
    let key = format!("{}/deep.h5", common::s3_sources::unique_prefix("hdf5-deep"));
    store
        .put(
            &object_store::path::Path::from(key.as_str()),
            std::fs::read(&path).unwrap().into(),
        )
        .await
        .unwrap();
    let url = format!("s3://{bucket}/{key}");
    let (refs, summary) = floe::scan_source(&url, &options).await.unwrap();
    let chunks = refs
        .refs
        .iter()
        .filter(|(k, r)| k.starts_with("v/") && r.url().is_some())
        .count();
    assert_eq!(chunks, 16_384);
    // 16,384 chunks of 64 per leaf: a root over 256 leaves, two levels.
    assert_eq!(summary.round_trips, 4, "{summary:?}");
    println!("deep file on S3: {summary:?}");
}

#[tokio::test]
async fn patterns_expand_to_the_matching_objects() {
    let Some((bucket, options, store)) =
        common::s3_sources::s3_sources("patterns_expand_to_the_matching_objects")
    else {
        return;
    };
    let prefix = common::s3_sources::unique_prefix("hdf5-glob");
    for name in [
        "day_01.nc",
        "day_02.nc",
        "day_10.nc",
        "notes.txt",
        "sub/day_03.nc",
    ] {
        store
            .put(
                &object_store::path::Path::from(format!("{prefix}/{name}").as_str()),
                b"x".to_vec().into(),
            )
            .await
            .unwrap();
    }
    let base = format!("s3://{bucket}/{prefix}");
    let found = floe::expand_sources(&[format!("{base}/day_0?.nc")], &options)
        .await
        .unwrap();
    assert_eq!(
        found,
        vec![format!("{base}/day_01.nc"), format!("{base}/day_02.nc")]
    );
    let deep = floe::expand_sources(&[format!("{base}/**/day_*.nc")], &options)
        .await
        .unwrap();
    assert_eq!(deep, vec![format!("{base}/sub/day_03.nc")]);
    let plain = vec![format!("{base}/notes.txt")];
    assert_eq!(floe::expand_sources(&plain, &options).await.unwrap(), plain);
    let err = floe::expand_sources(&[format!("{base}/*.h5")], &options)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no file matches"), "{err}");
}
