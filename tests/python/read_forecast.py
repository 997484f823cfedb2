"""Opens the daily_forecast example's dataset, served by `floe serve`, with xarray.open_zarr at
several versions and checks that it reads as a CF forecast.

Usage: read_forecast.py BASE_URL EXPECTED_JSON

EXPECTED_JSON (written by tests/forecast_xarray.rs) holds the dataset's global attributes,
t2m's attributes, time's CF units and calendar, the lat and lon values, and per version its
label, URL segment (branch, tag or `branch@<RFC 3339 time>`), the expected dates of `time`
and a few t2m values (day, lat index, lon index, value).

For each version, `xarray.open_zarr(f"{BASE_URL}/{segment}")` (the segment percent-encoded as
one path segment) must give: `time` as datetime64 values equal to the dates, with the CF units
and calendar in its encoding; `time`, `lat` and `lon` as coordinates, `lat`/`lon` float64 with
the expected values, units and standard names; `t2m` the only data variable, dimensions
(time, lat, lon), exactly the expected attributes and the expected values, also when selected
by date and coordinate value; the global attributes exactly as expected; and no attribute
starting with `_zarrs` on the dataset or any variable. Prints `ok <label>` per version and
exits 1 listing every mismatch.
"""

import json
import sys

import numpy as np
import xarray as xr

from read_versions import FAILURES, expect, fail, version_url


def check_no_tool_attributes(where, ds):
    for name, attrs in [("the dataset", ds.attrs)] + [
        (f"variable {name}", ds[name].attrs) for name in ds.variables
    ]:
        tool = sorted(key for key in attrs if key.startswith("_zarrs"))
        if tool:
            fail(where, f"{name} has tool attributes {tool}")


def check_coordinate(where, ds, name, values, units, standard_name):
    if name not in ds.coords:
        fail(where, f"{name} is not a coordinate (coords: {list(ds.coords)})")
        return
    coord = ds[name]
    expect(where, f"{name} dims", coord.dims, (name,))
    expect(where, f"{name} dtype", str(coord.dtype), "float64")
    if not np.array_equal(coord.values, np.array(values, dtype=np.float64)):
        fail(where, f"{name} values differ: {coord.values[:5]}...")
    expect(where, f"{name} units", coord.attrs.get("units"), units)
    expect(where, f"{name} standard_name", coord.attrs.get("standard_name"), standard_name)


def check_time(where, ds, version, expected):
    if "time" not in ds.coords:
        fail(where, f"time is not a coordinate (coords: {list(ds.coords)})")
        return
    time = ds["time"]
    if time.dtype.kind != "M":
        fail(where, f"time is {time.dtype}, not datetime64 (not decoded)")
        return
    wanted = np.array(version["dates"], dtype="datetime64[s]")
    if not np.array_equal(time.values.astype("datetime64[s]"), wanted):
        fail(where, f"time is {time.values}, expected {wanted}")
    expect(where, "time units", time.encoding.get("units"), expected["time_units"])
    expect(where, "time calendar", time.encoding.get("calendar"), expected["calendar"])
    expect(where, "time standard_name", time.attrs.get("standard_name"), "time")
    expect(where, "time axis", time.attrs.get("axis"), "T")


def check_t2m(where, ds, version, expected):
    expect(where, "data variables", sorted(ds.data_vars), ["t2m"])
    if "t2m" not in ds.data_vars:
        return
    t2m = ds["t2m"]
    days = len(version["dates"])
    expect(where, "t2m dims", t2m.dims, ("time", "lat", "lon"))
    expect(where, "t2m shape", t2m.shape, (days, len(expected["lat"]), len(expected["lon"])))
    expect(where, "t2m attributes", dict(t2m.attrs), expected["t2m_attributes"])
    for point in version["t2m_points"]:
        day, i, j = point["day"], point["lat"], point["lon"]
        wanted = np.float32(point["value"])
        by_index = t2m.isel(time=day, lat=i, lon=j).values
        if by_index != wanted:
            fail(where, f"t2m[{day}, {i}, {j}] is {by_index}, expected {wanted}")
        by_label = t2m.sel(
            time=np.datetime64(version["dates"][day]),
            lat=expected["lat"][i],
            lon=expected["lon"][j],
        ).values
        if by_label != wanted:
            fail(where, f"t2m at {version['dates'][day]} ({i}, {j}) by label is {by_label}")


def check_version(base, version, expected):
    where = version["label"]
    with xr.open_zarr(version_url(base, version["segment"])) as ds:
        expect(where, "global attributes", dict(ds.attrs), expected["global_attributes"])
        check_no_tool_attributes(where, ds)
        check_time(where, ds, version, expected)
        check_coordinate(where, ds, "lat", expected["lat"], "degrees_north", "latitude")
        check_coordinate(where, ds, "lon", expected["lon"], "degrees_east", "longitude")
        check_t2m(where, ds, version, expected)
    if not any(f.startswith(f"{where}:") for f in FAILURES):
        print(f"ok {where}")


def main():
    base, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path) as f:
        expected = json.load(f)
    for version in expected["versions"]:
        check_version(base, version, expected)
    if FAILURES:
        sys.exit("\n".join(FAILURES))


if __name__ == "__main__":
    main()
