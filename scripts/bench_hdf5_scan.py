"""Times the Python tools that find the chunks of HDF5/netCDF-4 files, to compare with floe's
native scanner in the same run (`cargo bench --bench scan` and `floe import netcdf --dry-run`).

For each file: kerchunk's `SingleHdf5ToZarr(path, inline_threshold=0).translate()` and, when
installed, VirtualiZarr's `open_virtual_dataset(url, registry, HDFParser(),
loadable_variables=[])`, each run `--repeat` times inside one interpreter (its start-up
excluded; the first run, which imports and warms caches, is dropped). Prints one JSON line
per file and tool with the median and the runs in milliseconds.

Usage: python scripts/bench_hdf5_scan.py FILE... [--repeat N]
"""
import argparse
import json
import os
import statistics
import time
import warnings

warnings.filterwarnings("ignore")


def timed(fn, repeat):
    fn()
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - start) * 1000)
    return runs


def kerchunk_scan(path):
    from kerchunk.hdf import SingleHdf5ToZarr

    return lambda: SingleHdf5ToZarr(path, inline_threshold=0).translate()


def virtualizarr_scan(path):
    try:
        from obspec_utils.registry import ObjectStoreRegistry
    except ImportError:
        from virtualizarr.registry import ObjectStoreRegistry
    from obstore.store import LocalStore
    from virtualizarr import open_virtual_dataset
    from virtualizarr.parsers import HDFParser

    url = "file://" + os.path.abspath(path)
    registry = ObjectStoreRegistry({"file://": LocalStore()})
    return lambda: open_virtual_dataset(
        url, registry=registry, parser=HDFParser(), loadable_variables=[]
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+")
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    tools = {"kerchunk": kerchunk_scan}
    try:
        import virtualizarr  # noqa: F401

        tools["virtualizarr"] = virtualizarr_scan
    except ImportError:
        pass
    for path in args.files:
        for name, make in tools.items():
            try:
                runs = timed(make(path), args.repeat)
            except Exception as e:  # a tool that cannot read the file is reported, not fatal
                print(json.dumps({"file": os.path.basename(path), "tool": name,
                                  "error": f"{type(e).__name__}: {e}"}))
                continue
            print(json.dumps({"file": os.path.basename(path), "tool": name,
                              "median_ms": round(statistics.median(runs), 3),
                              "runs_ms": [round(r, 3) for r in runs]}))


if __name__ == "__main__":
    main()
