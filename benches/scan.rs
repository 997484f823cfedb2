//! Criterion benches of the native netCDF-3 scanner (`floe::scan_source`) on local files
//! built here byte by byte:
//!
//! - `scan/netcdf3_small`: 6 variables (5 along `time`), 5 records (the size of a daily
//!   observation file);
//! - `scan/netcdf3_8760_records`: an hourly year, `time` and 4 `float` variables of 4 x 5
//!   values along it: 43,800 chunk references.
//!
//! - `scan/hdf5/<file>`: each HDF5 or netCDF-4 file named in `FLOE_BENCH_HDF5_FILES`
//!   (comma-separated paths; none by default), e.g. a small netCDF-4 file and one with 16,384
//!   chunks written by netCDF4-python or h5py.
//!
//! Run with `cargo bench --bench scan` (and `FLOE_BENCH_HDF5_FILES=a.nc,b.nc`). Compare with
//! kerchunk (`NetCDF3ToZarr` or `SingleHdf5ToZarr` with `inline_threshold=0`) and VirtualiZarr
//! timed inside Python on the same files by `scripts/bench_hdf5_scan.py` (interpreter
//! start-up excluded); the figures are in the closing notes of issue 13.

use criterion::{criterion_group, criterion_main, Criterion};
use tokio::runtime::Runtime;

fn be(n: u32) -> [u8; 4] {
    n.to_be_bytes()
}

fn name(out: &mut Vec<u8>, text: &str) {
    out.extend(be(text.len() as u32));
    out.extend(text.as_bytes());
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

/// A classic file: dimensions `time` (unlimited, `records`), `lat` (4), `lon` (5); a `double`
/// record variable `time` with `units`, and `vars` `float` record variables `(time, lat,
/// lon)`; zeros as data.
fn classic_file(vars: usize, records: u32) -> Vec<u8> {
    let mut h = b"CDF\x01".to_vec();
    h.extend(be(records));
    h.extend(be(0x0A));
    h.extend(be(3));
    for (dim, len) in [("time", 0), ("lat", 4), ("lon", 5)] {
        name(&mut h, dim);
        h.extend(be(len));
    }
    h.extend([0; 8]);
    h.extend(be(0x0B));
    h.extend(be(vars as u32 + 1));
    let mut begins = Vec::new();
    let units = "hours since 2026-01-01";
    for v in 0..=vars {
        name(
            &mut h,
            &if v == 0 {
                "time".to_string()
            } else {
                format!("v{v}")
            },
        );
        let dims: &[u32] = if v == 0 { &[0] } else { &[0, 1, 2] };
        h.extend(be(dims.len() as u32));
        for &d in dims {
            h.extend(be(d));
        }
        h.extend(be(0x0C));
        h.extend(be(1));
        name(&mut h, "units");
        h.extend(be(2));
        h.extend(be(units.len() as u32));
        h.extend(units.as_bytes());
        while h.len() % 4 != 0 {
            h.push(0);
        }
        h.extend(be(if v == 0 { 6 } else { 5 }));
        h.extend(be(if v == 0 { 8 } else { 80 }));
        begins.push(h.len());
        h.extend(be(0));
    }
    let mut at = h.len() as u32;
    for (v, place) in begins.into_iter().enumerate() {
        h[place..place + 4].copy_from_slice(&be(at));
        at += if v == 0 { 8 } else { 80 };
    }
    let recsize = 8 + 80 * vars;
    h.resize(h.len() + recsize * records as usize, 0);
    h
}

fn bench_scan(c: &mut Criterion) {
    let rt = Runtime::new().unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let mut group = c.benchmark_group("scan");
    for (label, vars, records) in [("netcdf3_small", 5, 5), ("netcdf3_8760_records", 4, 8760)] {
        let path = dir.path().join(format!("{label}.nc"));
        std::fs::write(&path, classic_file(vars, records)).unwrap_or_else(|e| panic!("write: {e}"));
        let location = path.to_str().unwrap_or_default().to_string();
        let (refs, _) = rt
            .block_on(floe::scan_source(&location, &Vec::new()))
            .unwrap_or_else(|e| panic!("scan: {e}"));
        let expected = (vars as u32 + 1) * records;
        let found = refs.refs.values().filter(|r| r.url().is_some()).count() as u32;
        assert_eq!(found, expected, "{label}");
        group.bench_function(label, |b| {
            b.iter(|| rt.block_on(floe::scan_source(&location, &Vec::new())))
        });
    }
    let hdf5_files = std::env::var("FLOE_BENCH_HDF5_FILES").unwrap_or_default();
    for path in hdf5_files.split(',').filter(|p| !p.is_empty()) {
        let location = std::fs::canonicalize(path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .to_string_lossy()
            .into_owned();
        let label = format!(
            "hdf5/{}",
            std::path::Path::new(path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        rt.block_on(floe::scan_source(&location, &Vec::new()))
            .unwrap_or_else(|e| panic!("scan {path}: {e}"));
        group.bench_function(label, |b| {
            b.iter(|| rt.block_on(floe::scan_source(&location, &Vec::new())))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_scan);
criterion_main!(benches);
