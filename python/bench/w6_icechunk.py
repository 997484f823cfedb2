"""W6's history queries for Icechunk, to compare with `examples/workloads --workload w6` in the
same window: COMMITS small commits (default 10,000) on `main` of a local directory repository,
each writing element i of an int32 array of shape (COMMITS,) chunked (1,); then, on fresh
repository handles (median of 5), the whole history and the newest 50 entries.

    python w6_icechunk.py SCRATCH_DIR [COMMITS]

Prints the figures in ms as JSON.
"""

import itertools
import json
import statistics
import sys
import time

import icechunk
import zarr


def main():
    path = sys.argv[1]
    commits = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(path))
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="counter", shape=(commits,), chunks=(1,), dtype="int32", fill_value=0)
    session.commit("create counter")
    for i in range(commits):
        session = repo.writable_session("main")
        zarr.open_array(session.store, path="counter")[i] = i
        session.commit(f"set {i}")

    def fresh():
        return icechunk.Repository.open(icechunk.local_filesystem_storage(path))

    log_all, log_50 = [], []
    for _ in range(5):
        start = time.perf_counter()
        entries = list(fresh().ancestry(branch="main"))
        log_all.append((time.perf_counter() - start) * 1000)
        assert len(entries) == commits + 2, len(entries)
        start = time.perf_counter()
        entries = list(itertools.islice(fresh().ancestry(branch="main"), 50))
        log_50.append((time.perf_counter() - start) * 1000)
        assert len(entries) == 50
    print(json.dumps({
        "icechunk": icechunk.__version__,
        "commits": commits,
        "log_all_ms": round(statistics.median(log_all), 2),
        "log_50_ms": round(statistics.median(log_50), 2),
    }))


if __name__ == "__main__":
    main()
