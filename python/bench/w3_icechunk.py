"""W3 for Icechunk, to compare with `examples/workloads --workload w3` in the same window: the
268 MB float32 cube (256, 512, 512) in 64 chunks of (16, 256, 256), written + committed and
read back (fresh repository handle, median of 3) on a local directory repository,
uncompressed and with zstd, through zarr-python.

    python w3_icechunk.py SCRATCH_DIR

Prints MB/s (MB = 1e6 bytes) as JSON. Data: 10*sin(k/20) along the last axis plus N(0, 1),
as WORKLOADS.md describes (values differ from floe's generator; both are incompressible
noise plus a smooth signal).
"""

import json
import os
import statistics
import subprocess
import sys
import time

import icechunk
import numpy as np
import zarr
from zarr.codecs import ZstdCodec

SHAPE = (256, 512, 512)
CHUNKS = (16, 256, 256)


def cube():
    rng = np.random.default_rng(3)
    k = np.arange(SHAPE[2], dtype=np.float32)
    return (10 * np.sin(k / 20) + rng.standard_normal(SHAPE, dtype=np.float32)).astype(np.float32)


def round_trip(path, data, compressed):
    storage = icechunk.local_filesystem_storage(path)
    repo = icechunk.Repository.create(storage)
    session = repo.writable_session("main")
    array = zarr.create_array(
        session.store,
        name="cube",
        shape=SHAPE,
        chunks=CHUNKS,
        dtype="float32",
        compressors=[ZstdCodec()] if compressed else None,
        fill_value=0,
    )
    subprocess.run(["sync"], check=False)
    start = time.perf_counter()
    array[:] = data
    session.commit("bulk write")
    write_s = time.perf_counter() - start
    reads = []
    for _ in range(3):
        start = time.perf_counter()
        repo = icechunk.Repository.open(icechunk.local_filesystem_storage(path))
        got = zarr.open_array(repo.readonly_session("main").store, path="cube", mode="r")[:]
        reads.append(time.perf_counter() - start)
        assert np.array_equal(got, data)
    return data.nbytes / 1e6 / write_s, data.nbytes / 1e6 / statistics.median(reads)


def main():
    scratch = sys.argv[1]
    data = cube()
    raw_w, raw_r = round_trip(os.path.join(scratch, "raw"), data, False)
    z_w, z_r = round_trip(os.path.join(scratch, "zstd"), data, True)
    print(json.dumps({
        "icechunk": icechunk.__version__,
        "write_mbps_raw_codec": round(raw_w),
        "read_mbps_raw_codec": round(raw_r),
        "write_mbps_zstd": round(z_w),
        "read_mbps_zstd": round(z_r),
    }))


if __name__ == "__main__":
    main()
