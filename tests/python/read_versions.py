"""Reads every version of the interop repository served by `floe serve` with zarr-python and
xarray over fsspec's HTTP filesystem, and checks it against what the Rust side committed.

Usage: read_versions.py BASE_URL EXPECTED_JSON

EXPECTED_JSON (written by tests/python_interop.rs) holds the groups' attributes and, per
version, its URL segment (branch, tag, snapshot id or `branch@<RFC 3339 time>`) and every
array: numpy dtype, shape, chunk and shard shape, fill value, codec names, attributes,
dimension names and all values, fill values included: hex of the little-endian numpy buffer,
or a list of texts for the variable-length string array (numpy dtype "text").

For each version this opens the URL (the segment percent-encoded as one path segment):
  * zarr.open_group(mode="r"): consolidated metadata present and used;
  * zarr.open_group(use_consolidated=False): every node discovered through the server's HTML
    listings (fsspec parses the links), then read;
  * xarray.open_zarr(consolidated=True) and (consolidated=False) at the root, and
    xarray.open_zarr(group="weather/surface") for the nested group;
and compares metadata and values. Prints `ok <label>` per version. When EXPECTED_JSON has a
"rectilinear" entry (an array stored with a rectilinear chunk grid, described like the arrays
above plus its path and URL segment; "versions" and "groups" may then be absent), that array is
read through the server's default regular-grid view: `ok rectilinear <path>`. Exits 1 listing
every mismatch.
"""

import json
import sys
from urllib.parse import quote

import numpy as np
import xarray as xr
import zarr

FAILURES = []


def fail(where, message):
    FAILURES.append(f"{where}: {message}")


def expect(where, what, actual, wanted):
    if actual != wanted:
        fail(where, f"{what} is {actual!r}, expected {wanted!r}")


def version_url(base, segment):
    return f"{base}/{quote(segment, safe='')}"


def expected_values(spec):
    values = spec["values"]
    if "texts" in values:
        return np.array(values["texts"], dtype=object).reshape(spec["shape"])
    dtype = np.dtype(spec["numpy"])
    data = np.frombuffer(bytes.fromhex(values["hex"]), dtype=dtype)
    return data.reshape(spec["shape"])


def expected_fill(spec):
    fill = spec["fill"]
    if spec["numpy"] == "text":
        return np.array(fill, dtype=object)
    dtype = np.dtype(spec["numpy"])
    if dtype.kind == "c":
        return np.array(complex(fill[0], fill[1]), dtype=dtype)
    if fill == "NaN":
        return np.array(np.nan, dtype=dtype)
    return np.array(fill, dtype=dtype)


def comparable(actual, wanted):
    """`actual` as an array; as Python objects when `wanted` holds texts (zarr-python reads
    variable-length strings as numpy's StringDType, xarray may give objects)."""
    actual = np.asarray(actual)
    return actual.astype(object) if wanted.dtype == object else actual


def same_values(actual, wanted):
    actual = comparable(actual, wanted)
    if actual.shape != wanted.shape:
        return False
    if wanted.dtype.kind in "fc":
        return np.array_equal(actual, wanted, equal_nan=True)
    return np.array_equal(actual, wanted)


def same_dtype(actual, wanted):
    """Same type and size whatever the byte order (big-endian arrays may read as such)."""
    actual = np.dtype(actual)
    if wanted == object:
        return actual.kind in "TO"
    return actual.newbyteorder("<") == wanted.newbyteorder("<")


def describe_mismatch(actual, wanted):
    actual = comparable(actual, wanted)
    if actual.shape != wanted.shape:
        return f"shape {actual.shape} != {wanted.shape}"
    differ = ~(actual == wanted)
    if wanted.dtype.kind in "fc":
        differ &= ~(np.isnan(actual) & np.isnan(wanted))
    where = np.argwhere(differ)
    first = tuple(where[0]) if len(where) else None
    return (f"{len(where)} elements differ, first at {first}: "
            f"{actual[first]!r} != {wanted[first]!r}")


def check_values(where, actual, spec):
    wanted = expected_values(spec)
    if not same_dtype(np.asarray(actual).dtype, wanted.dtype):
        fail(where, f"dtype {np.asarray(actual).dtype} != {wanted.dtype}")
    elif not same_values(actual, wanted):
        fail(where, "values differ: " + describe_mismatch(actual, wanted))


def codec_names(array):
    return [codec.to_dict()["name"] for codec in array.metadata.codecs]


def check_zarr_array(where, array, spec):
    expect(where, "shape", array.shape, tuple(spec["shape"]))
    expect(where, "chunks", array.chunks, tuple(spec["chunks"]))
    shards = tuple(spec["shards"]) if spec["shards"] else None
    expect(where, "shards", array.shards, shards)
    expect(where, "dimension_names", array.metadata.dimension_names, tuple(spec["dims"]))
    expect(where, "attributes", dict(array.attrs), spec["attrs"])
    expect(where, "codecs", codec_names(array), spec["codecs"])
    if not same_values(np.asarray(array.fill_value), expected_fill(spec)):
        fail(where, f"fill value {array.fill_value!r} != {spec['fill']!r}")
    check_values(where, array[...], spec)
    # A region across chunk (and shard) boundaries: partial reads, ranged for shards.
    region = (slice(2, 7), slice(3, 8))
    wanted = expected_values(spec)[region]
    if not same_values(array[region], wanted):
        fail(where, "region values differ: " + describe_mismatch(array[region], wanted))


def check_zarr(label, url, version, groups, consolidated):
    where = f"{label} zarr consolidated={consolidated}"
    kwargs = {} if consolidated else {"use_consolidated": False}
    root = zarr.open_group(url, mode="r", **kwargs)
    has_consolidated = root.metadata.consolidated_metadata is not None
    expect(where, "consolidated metadata present", has_consolidated, consolidated)
    expect(where, "root attributes", dict(root.attrs), groups[""])
    arrays = version["arrays"]
    wanted_nodes = set(arrays) | {path for path in groups if path}
    found = {path for path, _ in root.members(max_depth=None)}
    expect(where, "nodes discovered", sorted(found), sorted(wanted_nodes))
    for path, attrs in groups.items():
        if path:
            expect(f"{where} group {path}", "attributes", dict(root[path].attrs), attrs)
    for path, spec in arrays.items():
        check_zarr_array(f"{where} {path}", root[path], spec)


def check_dataset(where, ds, arrays):
    expect(where, "variables", sorted(ds.data_vars), sorted(arrays))
    expect(where, "dimensions", dict(ds.sizes), {"y": 12, "x": 10})
    for name, spec in arrays.items():
        var = ds[name]
        expect(f"{where} {name}", "dims", var.dims, tuple(spec["dims"]))
        expect(f"{where} {name}", "attrs", dict(var.attrs), spec["attrs"])
        expect(f"{where} {name}", "encoded chunks", tuple(var.encoding.get("chunks", ())),
               tuple(spec["chunks"]))
        check_values(f"{where} {name}", var.values, spec)


def check_xarray(label, url, version):
    arrays = version["arrays"]
    at_root = {path: spec for path, spec in arrays.items() if "/" not in path}
    nested = {path.rsplit("/", 1)[1]: spec for path, spec in arrays.items()
              if path.startswith("weather/surface/")}
    for consolidated in (True, False):
        where = f"{label} xarray consolidated={consolidated}"
        with xr.open_zarr(url, consolidated=consolidated) as ds:
            check_dataset(where, ds, at_root)
            expect(where, "dataset attributes", dict(ds.attrs),
                   {"title": "python interop", "conventions": "none"})
        with xr.open_zarr(url, group="weather/surface", consolidated=consolidated) as ds:
            check_dataset(f"{where} group weather/surface", ds, nested)


def check_rectilinear(base, spec):
    """The rectilinear array of EXPECTED_JSON's "rectilinear" entry, read through the server's
    default regular-grid view (chunks of its longest edge) with zarr-python (consolidated and
    listing-based discovery) and xarray: shape, chunks, dimension names, fill value and values,
    whole and in a region across several chunks of unequal lengths."""
    url = version_url(base, spec["segment"])
    path = spec["path"]
    wanted = expected_values(spec)
    for consolidated in (True, False):
        where = f"rectilinear {path} zarr consolidated={consolidated}"
        kwargs = {} if consolidated else {"use_consolidated": False}
        array = zarr.open_group(url, mode="r", **kwargs)[path]
        expect(where, "shape", array.shape, tuple(spec["shape"]))
        expect(where, "chunks", array.chunks, tuple(spec["chunks"]))
        expect(where, "dimension_names", array.metadata.dimension_names, tuple(spec["dims"]))
        if not same_values(np.asarray(array.fill_value), expected_fill(spec)):
            fail(where, f"fill value {array.fill_value!r} != {spec['fill']!r}")
        check_values(where, array[...], spec)
        region = (slice(25, 95), slice(1, 3))
        if not same_values(array[region], wanted[region]):
            fail(where, "region values differ: " + describe_mismatch(array[region], wanted[region]))
        where = f"rectilinear {path} xarray consolidated={consolidated}"
        with xr.open_zarr(url, consolidated=consolidated, mask_and_scale=False) as ds:
            var = ds[path]
            expect(where, "dims", var.dims, tuple(spec["dims"]))
            expect(where, "encoded chunks", tuple(var.encoding.get("chunks", ())),
                   tuple(spec["chunks"]))
            check_values(where, var.values, spec)


def main():
    base, expected_path = sys.argv[1].rstrip("/"), sys.argv[2]
    with open(expected_path) as f:
        expected = json.load(f)
    print(f"zarr {zarr.__version__}, xarray {xr.__version__}, numpy {np.__version__}")
    for version in expected.get("versions", []):
        label = version["label"]
        url = version_url(base, version["segment"])
        before = len(FAILURES)
        for consolidated in (True, False):
            try:
                check_zarr(label, url, version, expected["groups"], consolidated)
            except Exception as e:  # a client error is a failure of this version, not a crash
                fail(f"{label} zarr consolidated={consolidated}", f"{type(e).__name__}: {e}")
        try:
            check_xarray(label, url, version)
        except Exception as e:
            fail(f"{label} xarray", f"{type(e).__name__}: {e}")
        if len(FAILURES) == before:
            print(f"ok {label}: {url} ({len(version['arrays'])} arrays)")
        else:
            print(f"FAILED {label}: {url}")
    if "rectilinear" in expected:
        spec = expected["rectilinear"]
        before = len(FAILURES)
        try:
            check_rectilinear(base, spec)
        except Exception as e:
            fail(f"rectilinear {spec['path']}", f"{type(e).__name__}: {e}")
        status = "ok" if len(FAILURES) == before else "FAILED"
        print(f"{status} rectilinear {spec['path']}: {spec['shape']} in chunks of {spec['chunks']}")
    if FAILURES:
        print("\n".join(FAILURES), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
