"""Reads empty arrays with a chunk size of 0 (as zarr-python 3.1 writes them for
`shape=(0,), chunks=(0,)` and `shape=(0, 3), chunks=(0, 3)`) from a repository served by
`floe serve`, with zarr-python and xarray over fsspec's HTTP filesystem.

Usage: read_empty.py BASE_URL

The repository (written by tests/python_interop.rs) has, on `main`, a root group holding `e`
(int32, shape (0,), chunks (0,), dimension `t`) and `m` (float64, shape (0, 3), chunks (0, 3),
dimensions `t`, `x`). Checks, with consolidated metadata and through the server's listings:
the shapes, chunk shapes and dtypes zarr-python reports, that reading every element gives empty
arrays and that zarr-python counts no chunk; then that xarray opens the dataset with a `t` of
length 0. Prints `ok empty`; exits 1 listing every mismatch.
"""

import sys

import numpy as np
import xarray as xr
import zarr

from read_versions import FAILURES, expect, fail

ARRAYS = {
    "e": {"shape": (0,), "chunks": (0,), "dtype": np.dtype("int32")},
    "m": {"shape": (0, 3), "chunks": (0, 3), "dtype": np.dtype("float64")},
}


def check_group(where, group):
    expect(where, "members", sorted(name for name, _ in group.members()), sorted(ARRAYS))
    for name, spec in ARRAYS.items():
        array = group[name]
        expect(f"{where} {name}", "shape", array.shape, spec["shape"])
        expect(f"{where} {name}", "chunks", array.chunks, spec["chunks"])
        expect(f"{where} {name}", "dtype", array.dtype, spec["dtype"])
        expect(f"{where} {name}", "nchunks", array.nchunks, 0)
        values = array[...]
        expect(f"{where} {name}", "values", (values.shape, values.dtype),
               (spec["shape"], spec["dtype"]))


def main():
    base = sys.argv[1]
    url = f"{base}/main"
    for consolidated in (True, False):
        where = f"zarr use_consolidated={consolidated}"
        try:
            group = zarr.open_group(url, mode="r", use_consolidated=consolidated)
            check_group(where, group)
        except Exception as e:
            fail(where, f"{type(e).__name__}: {e}")
    try:
        ds = xr.open_zarr(url, consolidated=True).load()
        expect("xarray", "dims", dict(ds.sizes), {"t": 0, "x": 3})
        expect("xarray", "variables", sorted(ds.data_vars), sorted(ARRAYS))
        expect("xarray", "m", ds["m"].shape, (0, 3))
    except Exception as e:
        fail("xarray", f"{type(e).__name__}: {e}")
    if FAILURES:
        print("\n".join(FAILURES))
        sys.exit(1)
    print("ok empty")


if __name__ == "__main__":
    main()
