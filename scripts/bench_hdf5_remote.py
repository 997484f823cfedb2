"""Scanning netCDF-4 files on S3 with a latency per request: floe against kerchunk and
VirtualiZarr, in one run (issue 13's remote benchmark; not a test).

Starts the moto S3 server (threaded, so concurrent requests are served concurrently) behind
`scripts/latency_proxy.py` (LATENCY_MS per request), writes a small netCDF-4 file, one with
16,384 chunks, and FILES daily files, uploads them, then measures:

- floe: `floe import hdf5 FILE --dry-run` per file (requests and round trips from its own
  count, wall time of the command), and `floe import hdf5 's3://.../day_*.nc' --append-dim
  time --concurrency 64 --dry-run` over all daily files (files per second, peak RSS);
- kerchunk `SingleHdf5ToZarr` and VirtualiZarr `HDFParser` on the small and the large file
  through the same proxy (requests and round trips from the proxy's meter), when installed.

Usage: python scripts/bench_hdf5_remote.py FLOE_BINARY [--latency-ms 50] [--files 400]
Run it with a Python that has moto, boto3, netCDF4, h5py (and s3fs, kerchunk, virtualizarr
for the comparison). Prints one JSON object per measurement.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings

import boto3
import netCDF4
import numpy as np

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
BUCKET = "bench"


def wait_for(path):
    for _ in range(600):
        if os.path.exists(path) and open(path).read().strip():
            return int(open(path).read())
        time.sleep(0.05)
    raise SystemExit(f"{path} never appeared")


def small_file(path, day=0):
    ds = netCDF4.Dataset(path, "w")
    ds.createDimension("time", None)
    ds.createDimension("lat", 73)
    ds.createDimension("lon", 144)
    t = ds.createVariable("time", "f8", ("time",))
    t.units = "hours since 2000-01-01"
    t[:] = np.arange(4) + 24 * day
    lat = ds.createVariable("lat", "f4", ("lat",))
    lat[:] = np.linspace(-90, 90, 73)
    lon = ds.createVariable("lon", "f4", ("lon",))
    lon[:] = np.arange(144) * 2.5
    v = ds.createVariable("t2m", "f4", ("time", "lat", "lon"), zlib=True, shuffle=True)
    v.units = "K"
    v[:] = np.random.default_rng(day).random((4, 73, 144), dtype="f4")
    ds.close()


def large_file(path):
    ds = netCDF4.Dataset(path, "w")
    ds.createDimension("y", 1024)
    ds.createDimension("x", 1024)
    v = ds.createVariable("v", "f4", ("y", "x"), zlib=True, chunksizes=(8, 8))
    v[:] = np.random.default_rng(0).random((1024, 1024), dtype="f4")
    ds.close()


def meter(proxy):
    with urllib.request.urlopen(f"{proxy}/__meter") as r:
        return json.load(r)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("floe")
    ap.add_argument("--latency-ms", type=int, default=50)
    ap.add_argument("--files", type=int, default=400)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    env = dict(os.environ, FLOE_S3_SERVER_THREADED="1")
    s3 = subprocess.Popen([sys.executable, f"{HERE}/s3_test_server.py", f"{tmp}/s3port", BUCKET],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    s3_url = f"http://127.0.0.1:{wait_for(f'{tmp}/s3port')}"
    proxy_proc = subprocess.Popen([sys.executable, f"{HERE}/latency_proxy.py", s3_url,
                                   str(args.latency_ms), f"{tmp}/pport"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proxy = f"http://127.0.0.1:{wait_for(f'{tmp}/pport')}"
    creds = dict(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                 AWS_REGION="us-east-1", AWS_ALLOW_HTTP="true", AWS_ENDPOINT=proxy)
    os.environ.update(creds)
    try:
        client = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1")
        small_file(f"{tmp}/small.nc")
        large_file(f"{tmp}/large.nc")
        for name in ("small.nc", "large.nc"):
            client.upload_file(f"{tmp}/{name}", BUCKET, name)
        for day in range(args.files):
            small_file(f"{tmp}/d.nc", day)
            client.upload_file(f"{tmp}/d.nc", BUCKET, f"daily/day_{day:04d}.nc")
        repo = f"{tmp}/repo"
        subprocess.run([args.floe, "-r", repo, "init"], check=True, capture_output=True)
        for name in ("small.nc", "large.nc"):
            meter(proxy)
            start = time.perf_counter()
            out = subprocess.run([args.floe, "-r", repo, "import", "hdf5", f"s3://{BUCKET}/{name}",
                                  "--to", "x", "--dry-run"], capture_output=True, text=True)
            wall = time.perf_counter() - start
            print(json.dumps({"tool": "floe", "file": name, "wall_ms": round(wall * 1000, 1),
                              "proxy": meter(proxy), "report": out.stdout.strip().splitlines()[:1],
                              "error": out.stderr.strip()[-300:]}))
        meter(proxy)
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        out = subprocess.run([args.floe, "-r", repo, "import", "hdf5",
                              f"s3://{BUCKET}/daily/day_*.nc", "--to", "d", "--append-dim", "time",
                              "--concurrency", "64", "--dry-run"], capture_output=True, text=True)
        wall = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        print(json.dumps({"tool": "floe", "files": args.files, "wall_s": round(wall, 2),
                          "files_per_s": round(args.files / wall, 1),
                          "peak_rss_mib": round(max(peak, before) / 1024, 1),
                          "proxy": meter(proxy), "error": out.stderr.strip()[-300:]}))
        storage = {"key": "bench", "secret": "bench", "client_kwargs": {"endpoint_url": proxy,
                                                                         "region_name": "us-east-1"}}
        try:
            from kerchunk.hdf import SingleHdf5ToZarr
            for name in ("small.nc", "large.nc"):
                meter(proxy)
                start = time.perf_counter()
                SingleHdf5ToZarr(f"s3://{BUCKET}/{name}", storage_options=storage,
                                 inline_threshold=0).translate()
                wall = time.perf_counter() - start
                print(json.dumps({"tool": "kerchunk", "file": name,
                                  "wall_ms": round(wall * 1000, 1), "proxy": meter(proxy)}))
        except ImportError as e:
            print(json.dumps({"tool": "kerchunk", "skipped": str(e)}))
        try:
            from obstore.store import S3Store
            from virtualizarr import open_virtual_dataset
            from virtualizarr.parsers import HDFParser
            try:
                from obspec_utils.registry import ObjectStoreRegistry
            except ImportError:
                from virtualizarr.registry import ObjectStoreRegistry
            store = S3Store(BUCKET, endpoint=proxy, region="us-east-1", access_key_id="bench",
                            secret_access_key="bench", client_options={"allow_http": True})
            registry = ObjectStoreRegistry({f"s3://{BUCKET}": store})
            for name in ("small.nc", "large.nc"):
                meter(proxy)
                start = time.perf_counter()
                open_virtual_dataset(f"s3://{BUCKET}/{name}", registry=registry,
                                     parser=HDFParser(), loadable_variables=[])
                wall = time.perf_counter() - start
                print(json.dumps({"tool": "virtualizarr", "file": name,
                                  "wall_ms": round(wall * 1000, 1), "proxy": meter(proxy)}))
        except ImportError as e:
            print(json.dumps({"tool": "virtualizarr", "skipped": str(e)}))
    finally:
        proxy_proc.terminate()
        s3.terminate()


if __name__ == "__main__":
    main()
