"""W7 for Icechunk: the same operations as floe's W7 runner (examples/workloads/w7.rs), on the
same kind of repository (100 commits of one 4 KiB row of an int32 array), against the same S3
test server through the same latency proxy (scripts/latency_proxy.py), each operation on a
fresh repository handle.

    python w7_icechunk.py OUT.json

Environment as for the runner: FLOE_W7_DIRECT, FLOE_W7_PROXY, FLOE_W7_BUCKET and the AWS_*
credentials. Writes {"version": ..., "<operation>": {"ms", "requests", "waves"}, ...}.
"""

import json
import os
import statistics
import sys
import time
import urllib.request

import icechunk
import numpy as np
import zarr

COMMITS = 100
ROW = 1024
RUNS = 5


def row(i):
    return (np.arange(ROW, dtype=np.int64) + i * ROW).astype(np.int32)


def storage(endpoint, prefix):
    return icechunk.s3_storage(
        bucket=os.environ["FLOE_W7_BUCKET"],
        prefix=prefix,
        endpoint_url=endpoint,
        allow_http=True,
        force_path_style=True,
        region="us-east-1",
        access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "floe-test"),
        secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "floe-test"),
    )


def take_meter(proxy):
    with urllib.request.urlopen(proxy.rstrip("/") + "/__meter") as response:
        reading = json.load(response)
    return reading["requests"], reading["waves"]


def main():
    out = sys.argv[1]
    direct = os.environ["FLOE_W7_DIRECT"]
    proxy = os.environ["FLOE_W7_PROXY"]
    prefix = f"w7-icechunk-{os.getpid()}"
    print(f"W7 (Icechunk {icechunk.__version__}): {COMMITS} commits, measured through {proxy}")

    setup = icechunk.Repository.create(storage(direct, prefix))
    session = setup.writable_session("main")
    root = zarr.group(store=session.store)
    root.create_array(
        "t",
        shape=(COMMITS, ROW),
        chunks=(1, ROW),
        dtype="int32",
        fill_value=0,
        compressors=None,
        dimension_names=("time", "x"),
    )
    session.commit("create t")
    ids = []
    for i in range(COMMITS):
        session = setup.writable_session("main")
        zarr.open_array(session.store, path="t")[i, :] = row(i)
        ids.append(session.commit(f"row {i}"))
    middle_id = ids[COMMITS // 2]
    middle = next(
        s.written_at for s in setup.ancestry(branch="main") if s.id == middle_id
    )

    def open_repo():
        return icechunk.Repository.open(storage(proxy, prefix))

    results = {"version": icechunk.__version__}

    def measure(key, what, op):
        ms, requests, waves, commit_waves = [], [], [], []
        for _ in range(RUNS):
            take_meter(proxy)
            start = time.perf_counter()
            before_commit = op()
            ms.append((time.perf_counter() - start) * 1000)
            r, w = take_meter(proxy)
            if before_commit is not None:
                requests.append(before_commit[0] + r)
                waves.append(before_commit[1] + w)
                commit_waves.append(w)
            else:
                requests.append(r)
                waves.append(w)
        entry = {
            "ms": statistics.median(ms),
            "requests": statistics.median(requests),
            "waves": statistics.median(waves),
        }
        if commit_waves:
            entry["commit_waves"] = statistics.median(commit_waves)
        results[key] = entry
        print(f"  {what}: {entry['ms']:.1f} ms, {entry['requests']} requests, {entry['waves']} waves")

    tip = ids[-1]

    def open_tip():
        assert open_repo().lookup_branch("main") == tip

    def as_of():
        session = open_repo().readonly_session(branch="main", as_of=middle)
        assert session.snapshot_id == middle_id, (session.snapshot_id, middle_id)

    def log_all():
        log = list(open_repo().ancestry(branch="main"))
        assert len(log) == COMMITS + 2, len(log)

    def log_50():
        log = []
        for entry in open_repo().ancestry(branch="main"):
            log.append(entry)
            if len(log) == 50:
                break
        assert len(log) == 50

    wanted = COMMITS // 3

    def chunk_read():
        session = open_repo().readonly_session(branch="main")
        got = zarr.open_array(session.store, path="t", mode="r")[wanted, :]
        assert np.array_equal(got, row(wanted))

    counter = {"rewritten": 0, "rows": COMMITS}

    def small_commit():
        session = open_repo().writable_session("main")
        counter["rewritten"] += 1
        i = counter["rewritten"]
        zarr.open_array(session.store, path="t")[i % COMMITS, :] = row(i)
        before = take_meter(proxy)
        session.commit("rewrite")
        return before

    def append():
        session = open_repo().writable_session("main")
        array = zarr.open_array(session.store, path="t")
        rows = counter["rows"]
        array.resize((rows + 1, ROW))
        array[rows, :] = row(rows)
        before = take_meter(proxy)
        session.commit("append")
        counter["rows"] += 1
        return before

    measure("open_tip", "open + tip of main", open_tip)
    measure("as_of", "open + as-of a time", as_of)
    measure("log_all", "open + whole log", log_all)
    measure("log_50", "open + newest 50 log entries", log_50)
    measure("chunk_read", "open + cold chunk read", chunk_read)
    measure("small_commit", "open + session + rewrite one chunk + commit", small_commit)
    measure("append", "open + session + append a row (as W1) + commit", append)
    with open(out, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
