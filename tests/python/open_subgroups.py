"""Opens datasets stored below the root of a repository served by `floe serve` from their own
URL (`<base>/main/ds`, `<base>/main/ds/sub`), as a user of an imported dataset does.

Usage: open_subgroups.py BASE_URL EXPECTED_JSON

EXPECTED_JSON (written by tests/python_interop.rs) maps each dataset path (relative to the
version) to its attributes, its variables (dimension names and values) and every node below it
(paths relative to the dataset), under "datasets"; "view" names a rechunked view of one
dataset (version segment, dataset, array and its chunk shape in the view).

First, `xarray.open_zarr(<base>/counted/ds/sub, consolidated=True)` once and nothing else at
the tag `counted`: the Rust side counts the requests it caused. Then, per dataset:
  * xarray.open_zarr(url) and xarray.open_zarr(url, consolidated=True) must emit no warning at
    all (a fallback from consolidated metadata to listing warns) and give the expected
    attributes, variables, dimensions and values;
  * zarr.open_group(url, use_consolidated=True) must carry consolidated metadata and list
    every node below the dataset from it.
Last, the dataset of the rechunked view opens the same way, with the same values, and its
consolidated metadata gives the array the view's chunk shape.
Prints `ok counted`, `ok <dataset>` and `ok view`; exits 1 listing every mismatch.
"""

import json
import sys
import warnings

import numpy as np
import xarray as xr
import zarr

from read_versions import FAILURES, expect, fail


def passes(where, check):
    """Runs `check()`; a client error is a failure of `where`, not a crash. True when it added
    no failure."""
    before = len(FAILURES)
    try:
        check()
    except Exception as e:
        fail(where, f"{type(e).__name__}: {e}")
    return len(FAILURES) == before


def open_quietly(where, url, **kwargs):
    """xarray.open_zarr(url, **kwargs), loaded, failing `where` for each warning it emits."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = xr.open_zarr(url, **kwargs).load()
    for warning in caught:
        fail(where, f"warning {warning.category.__name__}: {warning.message}")
    return ds


def check_dataset(where, ds, spec):
    expect(where, "attributes", dict(ds.attrs), spec["attrs"])
    names = sorted(set(ds.data_vars) | set(ds.coords))
    expect(where, "variables", names, sorted(spec["variables"]))
    for name, variable in spec["variables"].items():
        if name not in ds.variables:
            continue
        actual = ds[name]
        expect(f"{where} {name}", "dims", list(actual.dims), variable["dims"])
        wanted = np.array(variable["values"])
        if not np.array_equal(actual.values, wanted):
            fail(f"{where} {name}", f"values {actual.values.tolist()} != {wanted.tolist()}")


def check_zarr(where, url, spec):
    group = zarr.open_group(url, mode="r", use_consolidated=True)
    expect(where, "consolidated metadata present",
           group.metadata.consolidated_metadata is not None, True)
    members = sorted(path for path, _ in group.members(max_depth=None))
    expect(where, "members", members, sorted(spec["members"]))


def main():
    base, expected_path = sys.argv[1].rstrip("/"), sys.argv[2]
    with open(expected_path) as f:
        expected = json.load(f)
    print(f"zarr {zarr.__version__}, xarray {xr.__version__}")

    datasets = expected["datasets"]
    counted = f"{base}/counted/ds/sub"
    if passes("counted", lambda: check_dataset(
            "counted", open_quietly("counted", counted, consolidated=True), datasets["ds/sub"])):
        print("ok counted")

    for path, spec in datasets.items():
        url = f"{base}/main/{path}"
        ok = True
        for kwargs in ({}, {"consolidated": True}):
            where = f"{path} xarray {kwargs}"
            ok &= passes(where, lambda: check_dataset(where, open_quietly(where, url, **kwargs),
                                                      spec))
        ok &= passes(f"{path} zarr", lambda: check_zarr(f"{path} zarr", url, spec))
        print(f"{'ok' if ok else 'FAILED'} {path}: {url}")

    view = expected["view"]
    url = f"{base}/{view['segment']}/{view['dataset']}"

    def check_view():
        check_dataset("view", open_quietly("view", url, consolidated=True),
                      datasets[view["dataset"]])
        array = zarr.open_group(url, mode="r", use_consolidated=True)[view["array"]]
        expect("view", "chunks", array.chunks, tuple(view["chunks"]))

    print(f"{'ok' if passes('view', check_view) else 'FAILED'} view: {url}")

    if FAILURES:
        print("\n".join(FAILURES), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
