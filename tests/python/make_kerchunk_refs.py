"""Writes small netCDF4 and HDF5 files, kerchunk references to them, and the values
netCDF4/h5py read from them, for tests/kerchunk_import.rs.

Usage: python make_kerchunk_refs.py OUT_DIR

Layout of OUT_DIR:
  data/            the source files (netCDF4 day1.nc/day2.nc, netCDF4 month1.nc..month3.nc
                   of 31, 28 and 31 days with the time dimension in one chunk per file,
                   HDF5 mixed.h5, raw grid.bin)
  refs/            the references: day1.json, day2.json, month1.json..month3.json
                   (kerchunk's own output, version 1 without templates), mixed_v0.json (version 0), mixed_v1.json (version 1
                   with templates, made from kerchunk's output), grid_gen.json (version 1 with
                   `gen`), mixed.parq/ (parquet layout written by kerchunk.df.refs_to_dataframe)
  expected/        one raw little-endian C-order file per (file, variable)
  manifest.json    {"kerchunk": version, "sets": {set name: {"refs": path, "source":
                   expected prefix, "arrays": {name: {"shape", "dtype", "expected"}}}}}
"""

import copy
import json
import os
import sys

import h5py
import kerchunk
import kerchunk.df
import kerchunk.hdf
import netCDF4
import numpy as np


def write_day(path, day):
    """A netCDF4 file of one "day": 4 time steps of a 6x5 grid, chunked along time by 2."""
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("time", 4)
        ds.createDimension("lat", 6)
        ds.createDimension("lon", 5)
        time = ds.createVariable("time", "f8", ("time",), chunksizes=(2,))
        time.units = "hours since 2026-01-01"
        time[:] = np.arange(4) * 6.0 + day * 24.0
        lat = ds.createVariable("lat", "f4", ("lat",))
        lat[:] = np.linspace(-50.0, 50.0, 6, dtype="f4")
        lon = ds.createVariable("lon", "f4", ("lon",))
        lon[:] = np.linspace(0.0, 40.0, 5, dtype="f4")
        rng = np.random.default_rng(day)
        t2m = ds.createVariable(
            "t2m", "f4", ("time", "lat", "lon"), chunksizes=(2, 3, 5),
            zlib=True, shuffle=True, complevel=4, fill_value=np.float32(-999.0),
        )
        t2m.units = "K"
        values = (250 + 40 * rng.random((4, 6, 5))).astype("f4")
        values[1, 2, 3] = -999.0  # one fill value
        t2m[:] = values
        precip = ds.createVariable(
            "precip", "f8", ("time", "lat", "lon"), chunksizes=(2, 6, 5),
            zlib=True, shuffle=True,
        )
        precip[:] = rng.random((4, 6, 5)) * 1e-3
        count = ds.createVariable(
            "count", np.dtype(">i2"), ("time", "lat", "lon"), chunksizes=(2, 2, 5),
            zlib=True, shuffle=False, endian="big",
        )
        count[:] = rng.integers(-3000, 3000, (4, 6, 5)).astype("i2")
        mask = ds.createVariable(
            "mask", "u1", ("time", "lat", "lon"), chunksizes=(2, 6, 5), zlib=True,
        )
        mask[:] = rng.integers(0, 255, (4, 6, 5)).astype("u1")


MONTH_DAYS = (31, 28, 31)


def write_month(path, month, days):
    """A netCDF4 file of one month of daily data on a 3x4 grid, each variable with the time
    dimension in one chunk of the month's length (so months give chunks of unequal lengths)."""
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("time", days)
        ds.createDimension("lat", 3)
        ds.createDimension("lon", 4)
        first_day = sum(MONTH_DAYS[:month])
        time = ds.createVariable("time", "f8", ("time",), chunksizes=(days,))
        time.units = "days since 2026-01-01"
        time[:] = np.arange(days) + first_day
        lat = ds.createVariable("lat", "f4", ("lat",))
        lat[:] = np.array([10.0, 20.0, 30.0], dtype="f4")
        lon = ds.createVariable("lon", "f4", ("lon",))
        lon[:] = np.array([0.0, 5.0, 10.0, 15.0], dtype="f4")
        rng = np.random.default_rng(100 + month)
        temp = ds.createVariable(
            "temp", "f4", ("time", "lat", "lon"), chunksizes=(days, 3, 2),
            zlib=True, shuffle=True, fill_value=np.float32(-999.0),
        )
        temp.units = "K"
        temp[:] = (260 + 30 * rng.random((days, 3, 4))).astype("f4")
        rain = ds.createVariable("rain", "i4", ("time", "lat", "lon"), chunksizes=(days, 3, 4))
        rain[:] = rng.integers(0, 500, (days, 3, 4)).astype("i4")


def write_mixed(path):
    """An HDF5 file with h5py: chunked datasets of several dtypes, shuffle and zlib, a
    contiguous one, a tiny one (inlined by kerchunk) and a nested group."""
    rng = np.random.default_rng(7)
    with h5py.File(path, "w") as f:
        f.attrs["title"] = "mixed"
        f.create_dataset(
            "f32", data=rng.random((10, 12)).astype("f4"), chunks=(4, 5),
            shuffle=True, compression="gzip", compression_opts=6,
        )
        f.create_dataset(
            "f64", data=rng.random((7, 9)), chunks=(3, 9),
            shuffle=True, compression="gzip",
        )
        f.create_dataset(
            "i16", data=rng.integers(-30000, 30000, (20,)).astype("<i2"), chunks=(6,),
            compression="gzip",
        )
        f.create_dataset(
            "u8", data=rng.integers(0, 255, (5, 4, 3)).astype("u1"), chunks=(2, 4, 3),
            shuffle=True, compression="gzip",
        )
        f.create_dataset("contiguous", data=np.arange(30, dtype=">f8").reshape(5, 6))
        f.create_dataset("tiny", data=np.array([1, 2, 3], dtype="i4"))
        group = f.create_group("nested")
        group.attrs["kind"] = "group"
        group.create_dataset(
            "be_i32", data=rng.integers(-(2**30), 2**30, (8, 3)).astype(">i4"),
            chunks=(3, 3), shuffle=True, compression="gzip",
        )


def dump(out, name, array):
    """Writes `array` raw, little-endian, C order; returns its manifest entry."""
    array = np.ascontiguousarray(array)
    little = array.astype(array.dtype.newbyteorder("<"))
    rel = f"expected/{name}.bin"
    little.tofile(os.path.join(out, rel))
    return {"shape": list(array.shape), "dtype": little.dtype.str, "expected": rel}


def netcdf_values(out, path, set_name):
    arrays = {}
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_mask(False)
        for name, var in ds.variables.items():
            arrays[name] = dump(out, f"{set_name}_{name}", var[...])
    return arrays


def h5_values(out, path, set_name):
    arrays = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            arrays[name] = dump(out, f"{set_name}_{name.replace('/', '_')}", obj[...])

    with h5py.File(path) as f:
        f.visititems(visit)
    return arrays


def translate(path, inline_threshold):
    return kerchunk.hdf.SingleHdf5ToZarr(path, inline_threshold=inline_threshold).translate()


def with_templates(refs, url):
    """Version 1 references with the source URL replaced by a template, and one reference
    written through a function template."""
    out = copy.deepcopy(refs)
    directory, file_name = url.rsplit("/", 1)
    out["templates"] = {"u": url, "in_dir": directory + "/{{name}}"}
    first_chunk = True
    for key, value in out["refs"].items():
        if isinstance(value, list) and value and value[0] == url:
            if first_chunk:
                value[0] = "{{in_dir(name='" + file_name + "')}}"
                first_chunk = False
            else:
                value[0] = "{{u}}"
    return out


def write_grid(out):
    """A raw file of 6 rows of 4 little-endian float32, referenced with `gen`, row by row."""
    path = os.path.join(out, "data", "grid.bin")
    values = np.arange(24, dtype="<f4").reshape(6, 4) / 4
    values.tofile(path)
    zarray = {
        "zarr_format": 2, "shape": [6, 4], "chunks": [1, 4], "dtype": "<f4",
        "compressor": None, "filters": None, "fill_value": "NaN", "order": "C",
    }
    refs = {
        "version": 1,
        "templates": {"u": path},
        "gen": [{
            "key": "grid/{{i}}.0",
            "url": "{{u}}",
            "offset": "{{i * 16}}",
            "length": "16",
            "dimensions": {"i": {"start": 0, "stop": 6, "step": 1}},
        }],
        "refs": {
            ".zgroup": json.dumps({"zarr_format": 2}),
            "grid/.zarray": json.dumps(zarray),
            "grid/.zattrs": json.dumps({"_ARRAY_DIMENSIONS": ["row", "col"]}),
        },
    }
    return refs, {"grid": dump(out, "grid_grid", values)}


def main():
    out = sys.argv[1]
    for sub in ("data", "refs", "expected"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    sets = {}

    for day in (1, 2):
        path = os.path.join(out, "data", f"day{day}.nc")
        write_day(path, day)
        refs = translate(path, inline_threshold=0)
        ref_path = os.path.join(out, "refs", f"day{day}.json")
        with open(ref_path, "w") as f:
            json.dump(refs, f)
        sets[f"day{day}"] = {
            "refs": ref_path, "arrays": netcdf_values(out, path, f"day{day}"),
        }

    for month, days in enumerate(MONTH_DAYS):
        path = os.path.join(out, "data", f"month{month + 1}.nc")
        write_month(path, month, days)
        refs = translate(path, inline_threshold=0)
        ref_path = os.path.join(out, "refs", f"month{month + 1}.json")
        with open(ref_path, "w") as f:
            json.dump(refs, f)
        sets[f"month{month + 1}"] = {
            "refs": ref_path, "arrays": netcdf_values(out, path, f"month{month + 1}"),
        }

    mixed = os.path.join(out, "data", "mixed.h5")
    write_mixed(mixed)
    mixed_arrays = h5_values(out, mixed, "mixed")
    refs = translate(mixed, inline_threshold=64)
    v0 = refs["refs"] if "refs" in refs else refs
    v0_path = os.path.join(out, "refs", "mixed_v0.json")
    with open(v0_path, "w") as f:
        json.dump(v0, f)
    sets["mixed_v0"] = {"refs": v0_path, "arrays": mixed_arrays}
    first_range = next(v for v in v0.values() if isinstance(v, list) and len(v) == 3)
    v1 = with_templates({"version": 1, "refs": v0}, first_range[0])
    v1_path = os.path.join(out, "refs", "mixed_v1.json")
    with open(v1_path, "w") as f:
        json.dump(v1, f)
    sets["mixed_v1"] = {"refs": v1_path, "arrays": mixed_arrays}

    parq_path = os.path.join(out, "refs", "mixed.parq")
    kerchunk.df.refs_to_dataframe({"version": 1, "refs": v0}, parq_path, record_size=5)
    sets["mixed_parquet"] = {"refs": parq_path, "arrays": mixed_arrays}

    grid_refs, grid_arrays = write_grid(out)
    grid_path = os.path.join(out, "refs", "grid_gen.json")
    with open(grid_path, "w") as f:
        json.dump(grid_refs, f)
    sets["grid_gen"] = {"refs": grid_path, "arrays": grid_arrays}

    manifest = {
        "kerchunk": kerchunk.__version__,
        "h5py": h5py.__version__,
        "netCDF4": netCDF4.__version__,
        "sets": sets,
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    inline = sum(
        1 for v in v0.values() if isinstance(v, str) and v.startswith("base64:")
    )
    print(f"kerchunk {kerchunk.__version__}: {len(sets)} reference sets, {inline} base64 inline")


if __name__ == "__main__":
    main()
