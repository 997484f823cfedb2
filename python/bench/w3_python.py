"""W3 through zarr-python, for Icechunk and for floe's Python package, to compare with
`examples/workloads --workload w3` in the same window: the 268 MB float32 cube (256, 512, 512)
in 64 chunks of (16, 256, 256), written + committed and read back (fresh repository handle,
median of 3) on a local directory repository, uncompressed and with zstd. Run by hand, not a
test (build floe's package with `maturin develop --release` for figures worth comparing):

    python w3_python.py SCRATCH_DIR [--engines floe,icechunk]

Prints MB/s (MB = 1e6 bytes) per engine as JSON. Data: 10*sin(k/20) along the last axis plus
N(0, 1), as WORKLOADS.md describes (values differ from floe's Rust generator; both are
incompressible noise plus a smooth signal). An engine whose package is missing is skipped.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import zarr
from zarr.codecs import ZstdCodec

SHAPE = (256, 512, 512)
CHUNKS = (16, 256, 256)


def cube():
    rng = np.random.default_rng(3)
    k = np.arange(SHAPE[2], dtype=np.float32)
    return (10 * np.sin(k / 20) + rng.standard_normal(SHAPE, dtype=np.float32)).astype(np.float32)


class Icechunk:
    def __init__(self):
        import icechunk

        self.ic = icechunk
        self.version = icechunk.__version__

    def create(self, path):
        session = self.ic.Repository.create(self.ic.local_filesystem_storage(path)).writable_session("main")
        return session, session.store

    def open_main(self, path):
        return self.ic.Repository.open(self.ic.local_filesystem_storage(path)).readonly_session("main").store


class Floe:
    def __init__(self):
        import floe

        self.floe = floe
        self.version = getattr(floe, "__version__", "dev")

    def create(self, path):
        session = self.floe.Repository.init(path).writable_session("main")
        return session, session.store

    def open_main(self, path):
        return self.floe.Repository.open(path).readonly_session().store


def round_trip(engine, path, data, compressed):
    session, store = engine.create(path)
    array = zarr.create_array(
        store,
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
        got = zarr.open_array(engine.open_main(path), path="cube", mode="r")[:]
        reads.append(time.perf_counter() - start)
        assert np.array_equal(got, data)
    return data.nbytes / 1e6 / write_s, data.nbytes / 1e6 / statistics.median(reads)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scratch")
    parser.add_argument("--engines", default="floe,icechunk")
    args = parser.parse_args()
    data = cube()
    results = {}
    for name in args.engines.split(","):
        try:
            engine = {"floe": Floe, "icechunk": Icechunk}[name]()
        except ImportError as e:
            print(f"{name}: skipped ({e})", file=sys.stderr)
            continue
        base = os.path.join(args.scratch, name)
        raw_w, raw_r = round_trip(engine, os.path.join(base, "raw"), data, False)
        z_w, z_r = round_trip(engine, os.path.join(base, "zstd"), data, True)
        results[name] = {
            "version": engine.version,
            "write_mbps_raw_codec": round(raw_w),
            "read_mbps_raw_codec": round(raw_r),
            "write_mbps_zstd": round(z_w),
            "read_mbps_zstd": round(z_r),
        }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
