"""A corpus of real netCDF/HDF5 layouts for floe's virtual imports, and the xarray comparison.

    python virtual_corpus.py make DIR
        Writes each case's daily (or monthly) files with netCDF4-python, h5py or xarray, the
        kerchunk references of every file (kerchunk.hdf.SingleHdf5ToZarr, or
        kerchunk.netCDF3.NetCDF3ToZarr for netCDF-3, JSON), and
        DIR/manifest.json: {"cases": {name: {"files": [...], "refs": [...],
        "append_dim": "time", "group": "..."}}}.

    python virtual_corpus.py compare SERVER_URL DIR VERSIONS_JSON
        VERSIONS_JSON maps each case to the snapshot ids after each imported file. For every
        case and version k, opens `SERVER_URL/<snapshot>/<case>[/<group>]` with
        `xarray.open_zarr` (warnings are errors: consolidated metadata must be found) and
        compares it with `xarray.open_mfdataset` of the first k files (combined along the
        append dimension, other variables taken from the first file) using
        `xarray.testing.assert_identical`. Prints `ok <case> <k>` per version.

Each case is one layout a provider's files really have; see CASES below.
"""

import json
import os
import sys
import warnings

import h5py
import kerchunk.hdf
from kerchunk.netCDF3 import NetCDF3ToZarr
import netCDF4
import numpy as np
import xarray as xr

LAT = np.linspace(-30.0, 30.0, 4, dtype="f4")
LON = np.linspace(0.0, 40.0, 5, dtype="f4")


def field(seed, shape):
    rng = np.random.default_rng(seed)
    return (rng.random(shape) * 40.0 + 260.0).astype("f4")


def nc(path, steps=12, units="hours since 2026-01-01", calendar=None, unlimited=True,
       first_hour=0, **kwargs):
    """A netCDF4 file with `time`, `lat`, `lon` and the variables `kwargs["vars"]` adds."""
    ds = netCDF4.Dataset(path, "w")
    ds.title = "floe corpus"
    ds.history = f"written for {os.path.basename(path)}"
    ds.createDimension("time", None if unlimited else steps)
    ds.createDimension("lat", len(LAT))
    ds.createDimension("lon", len(LON))
    t = ds.createVariable("time", "f8", ("time",), contiguous=not unlimited)
    t.units = units
    if calendar:
        t.calendar = calendar
    t.standard_name = "time"
    t.axis = "T"
    t[:] = first_hour + np.arange(steps, dtype="f8")
    lat = ds.createVariable("lat", "f4", ("lat",))
    lat.units = "degrees_north"
    lat.standard_name = "latitude"
    lat[:] = LAT
    lon = ds.createVariable("lon", "f4", ("lon",))
    lon.units = "degrees_east"
    lon[:] = LON
    return ds


def case_unlimited_default(d, i):
    """Unlimited `time` with netCDF-C's default chunking (time in one chunk of 512)."""
    ds = nc(f"{d}/unlimited_{i}.nc", first_hour=24 * i)
    v = ds.createVariable("t2m", "f4", ("time", "lat", "lon"))
    v.units = "K"
    v.long_name = "2 metre temperature"
    v[:] = field(i, (12, 4, 5))
    # Written for the first 8 records only: netCDF reads the rest as its fill value.
    gust = ds.createVariable("gust", "f4", ("time", "lat"), fill_value=-1.0)
    gust[0:8] = field(5 + i, (8, 4))
    ds.close()


def case_contiguous(d, i):
    """Fixed-size dimensions and contiguous (unchunked) variables."""
    ds = nc(f"{d}/contiguous_{i}.nc", unlimited=False, first_hour=24 * i)
    v = ds.createVariable("t2m", "f4", ("time", "lat", "lon"), contiguous=True)
    v.units = "K"
    v[:] = field(10 + i, (12, 4, 5))
    ds.close()


def case_scalars_strings(d, i):
    """Scalar variables (a grid mapping, a height), fixed-length and variable-length strings."""
    ds = nc(f"{d}/scalars_{i}.nc", first_hour=24 * i)
    ds.createDimension("station", 3)
    ds.createDimension("name_strlen", 8)
    crs = ds.createVariable("crs", "i4")
    crs.grid_mapping_name = "latitude_longitude"
    height = ds.createVariable("height", "f8")
    height.units = "m"
    height.assignValue(2.0)
    names = ds.createVariable("station_name", "S1", ("station", "name_strlen"))
    names.cf_role = "timeseries_id"
    names[:] = netCDF4.stringtochar(np.array([b"oslo", b"bergen", b"tromso"], "S8"))
    labels = ds.createVariable("station_label", str, ("station",))
    labels[:] = np.array(["Oslo", "Bergen", "Tromsø"], dtype=object)
    v = ds.createVariable("t2m", "f4", ("time", "lat", "lon"))
    v.grid_mapping = "crs"
    v.coordinates = "height"
    v[:] = field(20 + i, (12, 4, 5))
    obs = ds.createVariable("obs", "f4", ("time", "station"))
    obs[:] = field(25 + i, (12, 3))
    ds.close()


def case_group_dimensions(d, i):
    """A netCDF-4 group defining its own `time` (kerchunk names it `hourly/time`), beside a
    group with a `time` of another length."""
    ds = netCDF4.Dataset(f"{d}/groupdims_{i}.nc", "w")
    ds.title = "groups with their own dimensions"
    hourly = ds.createGroup("hourly")
    hourly.createDimension("time", None)
    hourly.createDimension("x", 3)
    t = hourly.createVariable("time", "f8", ("time",))
    t.units = "hours since 2026-01-01"
    t[:] = np.arange(24) + 24 * i
    v = hourly.createVariable("v", "f4", ("time", "x"))
    v[:] = field(110 + i, (24, 3))
    daily = ds.createGroup("daily")
    daily.createDimension("time", None)
    td = daily.createVariable("time", "f8", ("time",))
    td.units = "days since 2026-01-01"
    td[:] = [i]
    m = daily.createVariable("vmax", "f4", ("time",))
    m[:] = [float(i)]
    ds.close()


def case_nested_groups(d, i):
    """Data in nested groups, with the dimensions defined at the root."""
    ds = nc(f"{d}/nested_{i}.nc", first_hour=24 * i)
    surface = ds.createGroup("forecast").createGroup("surface")
    surface.level = "surface"
    v = surface.createVariable("t2m", "f4", ("time", "lat", "lon"))
    v.units = "K"
    v[:] = field(30 + i, (12, 4, 5))
    ds.close()


def case_packed_fill(d, i):
    """Packed int16 with scale_factor/add_offset, and _FillValue / missing_value."""
    ds = nc(f"{d}/packed_{i}.nc", first_hour=24 * i)
    values = field(40 + i, (12, 4, 5))
    p = ds.createVariable("t2m", "i2", ("time", "lat", "lon"), fill_value=-32767)
    p.scale_factor = 0.01
    p.add_offset = 273.15
    p.units = "K"
    p.set_auto_maskandscale(True)
    packed = values.copy()
    packed[0, 0, :] = np.nan
    p[:] = np.ma.masked_array(np.nan_to_num(packed), mask=np.isnan(packed))
    f = ds.createVariable("precip", "f4", ("time", "lat", "lon"), fill_value=-9999.0, zlib=True)
    f.missing_value = np.float32(-8888.0)
    f.units = "mm"
    rain = values - 270.0
    rain[1, 1, 1] = -9999.0
    rain[2, 2, 2] = -8888.0
    f.set_auto_maskandscale(False)
    f[:] = rain
    ds.close()


def case_packed_float32(d, i):
    """Packing attributes stored as float32 (common in NOAA and satellite files)."""
    ds = nc(f"{d}/packed32_{i}.nc", first_hour=24 * i)
    p = ds.createVariable("sst", "i2", ("time", "lat", "lon"), fill_value=np.int16(-32768))
    p.scale_factor = np.float32(0.01)
    p.add_offset = np.float32(20.0)
    p.units = "degC"
    p[:] = field(45 + i, (12, 4, 5)) - 260.0
    ds.close()


def case_time_units(d, i):
    """Each daily file counts hours from its own day (units change every file); the time
    bounds inherit the units of `time` (CF 7.1), so they change too."""
    ds = nc(f"{d}/units_{i}.nc", units=f"hours since 2026-01-{i + 1:02d} 00:00:00")
    ds.createDimension("nv", 2)
    ds["time"].bounds = "time_bnds"
    bounds = ds.createVariable("time_bnds", "f8", ("time", "nv"))
    bounds[:] = np.stack([np.arange(12) - 0.5, np.arange(12) + 0.5], axis=1)
    v = ds.createVariable("t2m", "f4", ("time", "lat", "lon"))
    v[:] = field(50 + i, (12, 4, 5))
    ds.close()


def case_noleap(d, i):
    """A `noleap` calendar across 28 February, days since a fixed date."""
    ds = nc(f"{d}/noleap_{i}.nc", steps=2, units="days since 2023-02-27", calendar="noleap",
            first_hour=2 * i)
    v = ds.createVariable("t2m", "f4", ("time", "lat", "lon"))
    v[:] = field(60 + i, (2, 4, 5))
    ds.close()


def case_no_coordinate(d, i):
    """A dimension (`lon`) without a coordinate variable, and one (`time`) only on data."""
    ds = netCDF4.Dataset(f"{d}/nocoord_{i}.nc", "w")
    ds.createDimension("time", None)
    ds.createDimension("x", 5)
    t = ds.createVariable("time", "i4", ("time",))
    t.units = "days since 2000-01-01"
    t[:] = np.arange(3) + 3 * i
    v = ds.createVariable("v", "f8", ("time", "x"))
    v[:] = field(70 + i, (3, 5)).astype("f8")
    ds.close()


def case_partial_chunk(d, i):
    """A variable whose last chunk along time is partly filled (chunks of 5, 12 steps)."""
    ds = nc(f"{d}/partial_{i}.nc", first_hour=24 * i)
    v = ds.createVariable("t2m", "f4", ("time", "lat", "lon"), chunksizes=(5, 2, 5), zlib=True,
                          shuffle=True, fill_value=np.float32(1e20))
    v[:] = field(80 + i, (12, 4, 5))
    w = ds.createVariable("wind", "f8", ("time",), chunksizes=(7,))
    w[:] = np.arange(12) * 0.5 + i
    ds.close()


MONTHS = [31, 28, 31]


def case_monthly(d, i):
    """Monthly files of daily values: 31, 28 and 31 days (one chunk per file)."""
    days = MONTHS[i]
    first = sum(MONTHS[:i])
    ds = nc(f"{d}/monthly_{i}.nc", steps=days, units="days since 2023-01-01", first_hour=first)
    v = ds.createVariable("t2m", "f4", ("time", "lat", "lon"), chunksizes=(days, 4, 5))
    v[:] = field(90 + i, (days, 4, 5))
    ds.close()


def case_netcdf3(d, i):
    """A netCDF-3 classic file (big-endian, one chunk per record), per-file time units,
    references by kerchunk's NetCDF3ToZarr."""
    ds = netCDF4.Dataset(f"{d}/netcdf3_{i}.nc3", "w", format="NETCDF3_CLASSIC")
    ds.createDimension("time", None)
    ds.createDimension("x", 3)
    t = ds.createVariable("time", "f8", ("time",))
    t.units = f"hours since 2026-01-{i + 1:02d}"
    t[:] = np.arange(4)
    x = ds.createVariable("x", "f4", ("x",))
    x[:] = [1, 2, 3]
    v = ds.createVariable("v", "f4", ("time", "x"), fill_value=-999.0)
    v[:] = field(120 + i, (4, 3))
    v[0, 0] = -999.0
    s = ds.createVariable("s", "i2", ("time",))
    s.scale_factor = 0.5
    s[:] = [1, 2, 3, 4]
    ds.close()


def case_h5py(d, i):
    """An HDF5 file written by h5py, with dimension scales and attributes but no netCDF
    conventions (no _FillValue): the HDF5 fill value must not mask data."""
    with h5py.File(f"{d}/h5py_{i}.h5", "w") as f:
        t = f.create_dataset("time", data=np.arange(4, dtype="f8") + 4 * i, maxshape=(None,),
                             chunks=(4,))
        t.attrs["units"] = "days since 2000-01-01"
        t.make_scale("time")
        x = f.create_dataset("x", data=np.arange(3, dtype="i4"))
        x.make_scale("x")
        v = f.create_dataset("counts", data=np.array([[0, 1, 2]] * 4, "i4") + i,
                             chunks=(2, 3), fillvalue=0)
        v.dims[0].attach_scale(t)
        v.dims[1].attach_scale(x)
        v.attrs["long_name"] = "counts"


def case_xarray_written(d, i):
    """A file written by xarray's to_netcdf: int64 times in its own units, NaN fill values."""
    times = np.datetime64("2026-03-01T00") + np.arange(6) * np.timedelta64(4, "h") \
        + i * np.timedelta64(1, "D")
    ds = xr.Dataset(
        {"t2m": (("time", "lat", "lon"), field(100 + i, (6, 4, 5)), {"units": "K"})},
        coords={"time": times, "lat": ("lat", LAT, {"units": "degrees_north"}),
                "lon": ("lon", LON, {"units": "degrees_east"})},
        attrs={"Conventions": "CF-1.10"},
    )
    ds["t2m"][0, 0, 0] = np.nan
    # A quality flag whose fill value is 0: with NaN on every float, 0 is a CF fill value.
    qc = np.ones((6, 4), "u1")
    qc[1, 1] = 0
    ds["qc"] = (("time", "lat"), qc, {"flag_values": [1, 2]})
    ds.to_netcdf(f"{d}/xarray_{i}.nc", unlimited_dims=["time"],
                 encoding={"time": {"units": f"hours since 2026-03-{i + 1:02d}"},
                           "qc": {"_FillValue": 0}})


CASES = {
    "unlimited_default": (case_unlimited_default, 3, ".nc", None),
    "contiguous": (case_contiguous, 3, ".nc", None),
    "scalars_strings": (case_scalars_strings, 2, ".nc", None),
    "nested_groups": (case_nested_groups, 2, ".nc", "forecast/surface"),
    "group_dimensions": (case_group_dimensions, 2, ".nc", "hourly"),
    "packed_fill": (case_packed_fill, 2, ".nc", None),
    "packed_float32": (case_packed_float32, 2, ".nc", None),
    "time_units": (case_time_units, 3, ".nc", None),
    "noleap": (case_noleap, 3, ".nc", None),
    "no_coordinate": (case_no_coordinate, 3, ".nc", None),
    "partial_chunk": (case_partial_chunk, 3, ".nc", None),
    "monthly": (case_monthly, 3, ".nc", None),
    "h5py": (case_h5py, 2, ".h5", None),
    "netcdf3": (case_netcdf3, 2, ".nc3", None),
    "xarray_written": (case_xarray_written, 3, ".nc", None),
}

# Cases xarray cannot decode identically from Zarr, and why (also in spec/virtual.md §5.4):
# JSON attributes have one number type, so float32 `scale_factor`/`add_offset` come back as
# float64 and xarray unpacks to float64 where the file unpacks to float32. Compared with
# assert_allclose (float32 precision) plus equal attributes and equal variables.
ALLCLOSE = {"packed_float32": "allclose"}

PREFIX = {
    "unlimited_default": "unlimited", "contiguous": "contiguous", "scalars_strings": "scalars",
    "nested_groups": "nested", "group_dimensions": "groupdims", "packed_fill": "packed", "packed_float32": "packed32",
    "time_units": "units",
    "noleap": "noleap", "no_coordinate": "nocoord", "partial_chunk": "partial",
    "monthly": "monthly", "h5py": "h5py", "netcdf3": "netcdf3", "xarray_written": "xarray",
}


def make(out):
    data = os.path.join(out, "data")
    os.makedirs(data, exist_ok=True)
    manifest = {"cases": {}}
    for name, (write, count, ext, group) in CASES.items():
        files, refs = [], []
        for i in range(count):
            write(data, i)
            path = os.path.join(data, f"{PREFIX[name]}_{i}{ext}")
            if ext == ".nc3":
                translated = NetCDF3ToZarr(path, inline_threshold=0).translate()
            else:
                translated = kerchunk.hdf.SingleHdf5ToZarr(path, inline_threshold=0).translate()
            ref_path = os.path.join(out, f"{PREFIX[name]}_{i}.json")
            with open(ref_path, "w") as f:
                json.dump(translated, f)
            files.append(path)
            refs.append(ref_path)
        manifest["cases"][name] = {"files": files, "refs": refs, "append_dim": "time",
                                   "group": group, "compare": ALLCLOSE.get(name, "identical")}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"wrote {len(CASES)} cases into {out}")


def expected(files, group):
    kwargs = {"group": group} if group else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xr.open_mfdataset(files, combine="nested", concat_dim="time", data_vars="minimal",
                                 coords="minimal", compat="override", join="override",
                                 **kwargs).load()


def compare(server, out, versions_path):
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    versions = json.load(open(versions_path))
    failures = []
    for name, snapshots in versions.items():
        case = manifest["cases"][name]
        for k, snapshot in enumerate(snapshots, start=1):
            url = f"{server}/{snapshot}/{name}"
            if case["group"]:
                url += "/" + case["group"]
            with warnings.catch_warnings():
                # A missing consolidated block warns; every other warning is xarray's own
                # business (numcodecs codecs, multiple fill values of the source itself).
                warnings.filterwarnings("error", message=".*consolidated.*")
                got = xr.open_zarr(url).load()
            want = expected(case["files"][:k], case["group"])
            try:
                if case["compare"] == "allclose":
                    assert got.attrs == want.attrs, (got.attrs, want.attrs)
                    assert sorted(got.variables) == sorted(want.variables)
                    for v in want.variables:
                        a, b = got[v], want[v]
                        assert a.attrs == b.attrs, (v, a.attrs, b.attrs)
                        if b.dtype.kind == "f":
                            # Unpacked in float64 here, in float32 from the file: they
                            # differ by float32 rounding (an ulp of ~40 is 4e-6).
                            xr.testing.assert_allclose(a.astype(b.dtype), b, rtol=1e-6, atol=1e-5)
                        else:
                            xr.testing.assert_identical(a, b)
                else:
                    xr.testing.assert_identical(got, want)
                print(f"ok {name} {k}", flush=True)
            except AssertionError as e:
                failures.append(f"{name} after {k} files:\n{e}")
                print(f"FAIL {name} {k}\n{e}", flush=True)
    if failures:
        sys.exit(f"{len(failures)} comparisons failed")


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    elif sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
