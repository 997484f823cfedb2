"""Times xarray.open_zarr on a dataset served by `floe serve` (consolidated metadata).

Usage: open_time.py URL VARIABLES

Opens URL once (cold: first HTTP connection, codec registry loading), then five more times
in the same process (fsspec keeps its HTTP session, as in a notebook), checks the dataset has
VARIABLES data variables each time and prints the cold time and the median of the five. One
full read of one variable checks the data path too. Not a pass/fail timing: the numbers are
for the record.
"""

import statistics
import sys
import time

import numpy as np
import xarray as xr

RUNS = 5


def main():
    url, variables = sys.argv[1], int(sys.argv[2])
    times = []
    for _ in range(RUNS + 1):
        started = time.perf_counter()
        ds = xr.open_zarr(url, consolidated=True)
        times.append(time.perf_counter() - started)
        if len(ds.data_vars) != variables:
            sys.exit(f"expected {variables} variables, found {len(ds.data_vars)}")
        ds.close()
    with xr.open_zarr(url, consolidated=True) as ds:
        first = ds[sorted(ds.data_vars)[0]].values
    wanted = np.arange(first.size, dtype=np.float32).reshape(first.shape)
    if not np.array_equal(first, wanted):
        sys.exit("values of the first variable differ")
    cold, warm = times[0], times[1:]
    runs = ", ".join(f"{t * 1000:.1f}" for t in warm)
    print(f"xarray.open_zarr({variables} variables, consolidated) over HTTP: "
          f"median {statistics.median(warm) * 1000:.1f} ms of {RUNS} runs ({runs} ms); "
          f"first open in the process {cold * 1000:.1f} ms")


if __name__ == "__main__":
    main()
