"""Reads rechunked views of the interop repository's `main` through `floe serve`: the URL form
(`/main;chunks=f32=3,10,...,weather%2Fsurface%2Ft2m=6,2/...`: a nested array's name is
percent-encoded once, and the server decodes the parameter once) and the zarr-proxy header form
(`chunks: f32=3,10,...,weather/surface/t2m=6,2`, sent by fsspec via
storage_options={"headers": ...}), with zarr-python and xarray (root dataset and the nested
group). Each requested array must report the requested chunk shape and hold exactly the values
of the stored array (a sharded array is served unsharded); the other arrays keep their stored
chunks and values. zarr-python also opens each view without consolidated metadata, discovering
the nodes through the view's HTML listings.

Usage: read_rechunked.py BASE_URL EXPECTED_JSON (the `main` version from tests/python_interop.rs)
"""

import json
import sys
from urllib.parse import quote

import xarray as xr
import zarr

from read_versions import FAILURES, check_values, expect, fail

REQUESTED = {
    "f32": (3, 10),
    "i32": (12, 1),
    "u8": (1, 10),
    "c128": (5, 3),
    "flag": (2, 2),
    "label": (12, 10),
    "sharded": (4, 4),
    "weather/surface/t2m": (6, 2),
}


def request_text(name_of):
    return ",".join(f"{name_of(name)}=" + ",".join(map(str, shape))
                    for name, shape in REQUESTED.items())


def chunks_of(name, spec):
    return REQUESTED.get(name, tuple(spec["chunks"]))


def check(where, url, arrays, storage_options):
    for consolidated in (True, False):
        root = zarr.open_group(url, mode="r", storage_options=storage_options,
                               use_consolidated=consolidated)
        found = {path for path, node in root.members(max_depth=None)
                 if isinstance(node, zarr.Array)}
        expect(f"{where} zarr consolidated={consolidated}", "arrays", sorted(found),
               sorted(arrays))
        for name, spec in arrays.items():
            at = f"{where} zarr consolidated={consolidated} {name}"
            array = root[name]
            expect(at, "chunks", array.chunks, chunks_of(name, spec))
            shards = tuple(spec["shards"]) if spec["shards"] and name not in REQUESTED else None
            expect(at, "shards", array.shards, shards)
            check_values(at, array[...], spec)
    for group in ("", "weather/surface"):
        with xr.open_zarr(url, group=group or None, consolidated=True,
                          storage_options=storage_options) as ds:
            for path, spec in arrays.items():
                parent, _, name = path.rpartition("/")
                if parent != group:
                    continue
                var = ds[name]
                expect(f"{where} xarray {path}", "encoded chunks",
                       tuple(var.encoding["chunks"]), chunks_of(path, spec))
                check_values(f"{where} xarray {path}", var.values, spec)


def main():
    base, expected_path = sys.argv[1].rstrip("/"), sys.argv[2]
    with open(expected_path) as f:
        arrays = json.load(f)["arrays"]
    in_url = request_text(lambda name: quote(name, safe=""))
    in_header = request_text(lambda name: name)
    forms = [
        ("url form", f"{base}/main;chunks={in_url}", None),
        ("header form", f"{base}/main", {"headers": {"chunks": in_header}}),
    ]
    for label, url, storage_options in forms:
        before = len(FAILURES)
        try:
            check(label, url, arrays, storage_options)
        except Exception as e:
            fail(label, f"{type(e).__name__}: {e}")
        print(("ok " if len(FAILURES) == before else "FAILED ") + f"{label}: {url}")
    if FAILURES:
        print("\n".join(FAILURES), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
