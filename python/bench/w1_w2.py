"""W1 (365 daily appends) and W2's as-of open, driven through zarr-python, for floe's Python
package and, when installed, Icechunk in the same run (WORKLOADS.md). Run by hand, not a test:

    python python/bench/w1_w2.py [--days 365] [--engines floe,icechunk] [--dir SCRATCH]

Each append is what a daily cron job does (the field is its input, computed before the clock
starts, as in `examples/workloads`): open the repository, start a session on `main`,
grow `t2m` (float32, chunks (1, 181, 360), zstd) and `time` (int64) by one day, write the
day's field and timestamp, commit. Prints append and commit medians, the commit times of the
first and last ten days (their ratio is the growth), and the median of five as-of opens (a
fresh repository handle each, as of the commit time of day 200, or of the middle day).
Every value written is read back at the end and checked."""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from datetime import timezone
from pathlib import Path

import numpy as np
import zarr

LAT = np.linspace(-90, 90, 181, dtype="f4")
LON = np.linspace(0, 359, 360, dtype="f4")


def field(day: int) -> np.ndarray:
    lat = np.radians(LAT)[:, None]
    lon = np.radians(LON)[None, :]
    base = 288 - 30 * np.abs(np.sin(lat)) + 5 * np.sin(lon + day / 58)
    noise = np.random.default_rng(day).normal(0, 1.5, (181, 360))
    return (base + noise).astype("f4")[None]


class Floe:
    name = "floe"

    def __init__(self, path: Path):
        import floe

        self.floe, self.path = floe, str(path)
        floe.Repository.init(self.path)

    def writable(self):
        session = self.floe.Repository.open(self.path).writable_session("main")
        return session, session.store

    def commit(self, session, message: str) -> str:
        return session.commit(message)

    def as_of_store(self, when):
        return self.floe.Repository.open(self.path).readonly_session(branch="main", as_of=when).store

    def main_store(self):
        return self.floe.Repository.open(self.path).readonly_session().store

    def commit_time(self, snapshot: str):
        for entry in self.floe.Repository.open(self.path).log(limit=100_000):
            if entry.id == snapshot:
                return entry.committed_at
        raise KeyError(snapshot)


class Icechunk:
    name = "icechunk"

    def __init__(self, path: Path):
        import icechunk

        self.ic, self.path = icechunk, str(path)
        icechunk.Repository.create(icechunk.local_filesystem_storage(self.path))

    def _repo(self):
        return self.ic.Repository.open(self.ic.local_filesystem_storage(self.path))

    def writable(self):
        session = self._repo().writable_session("main")
        return session, session.store

    def commit(self, session, message: str) -> str:
        return session.commit(message)

    def as_of_store(self, when):
        return self._repo().readonly_session(branch="main", as_of=when).store

    def main_store(self):
        return self._repo().readonly_session(branch="main").store

    def commit_time(self, snapshot: str):
        for entry in self._repo().ancestry(branch="main"):
            if entry.id == snapshot:
                return entry.written_at
        raise KeyError(snapshot)


def run(engine, days: int) -> dict:
    session, store = engine.writable()
    group = zarr.open_group(store, mode="w")
    group.create_array(
        "t2m", shape=(0, 181, 360), chunks=(1, 181, 360), dtype="f4", fill_value=np.nan,
        dimension_names=("time", "lat", "lon"),
        compressors=[zarr.codecs.ZstdCodec(level=3)],
    )
    group.create_array("time", shape=(0,), chunks=(1,), dtype="i8", dimension_names=("time",))
    engine.commit(session, "create")
    appends, commits, snapshots = [], [], []
    for day in range(days):
        # The field is the job's input (it arrives from the model run): not timed, as in
        # `examples/workloads`.
        today = field(day)
        start = time.perf_counter()
        session, store = engine.writable()
        group = zarr.open_group(store, mode="r+")
        t2m, times = group["t2m"], group["time"]
        t2m.resize((day + 1, 181, 360))
        times.resize((day + 1,))
        t2m[day] = today
        times[day] = 1_767_225_600 + 86_400 * day
        before_commit = time.perf_counter()
        snapshots.append(engine.commit(session, f"append day {day}"))
        end = time.perf_counter()
        appends.append((end - start) * 1000)
        commits.append((end - before_commit) * 1000)
    middle = min(200, days // 2)
    when = engine.commit_time(snapshots[middle])
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    opens = []
    for _ in range(5):
        start = time.perf_counter()
        store = engine.as_of_store(when)
        zarr.open_group(store, mode="r")["time"].shape  # noqa: B018 - what an open reads
        opens.append((time.perf_counter() - start) * 1000)
    group = zarr.open_group(engine.main_store(), mode="r")
    assert group["t2m"].shape == (days, 181, 360)
    for day in range(days):
        assert np.array_equal(group["t2m"][day], field(day)[0]), day
    assert list(group["time"][:]) == [1_767_225_600 + 86_400 * d for d in range(days)]
    first, last = statistics.mean(commits[:10]), statistics.mean(commits[-10:])
    return {
        "append_ms_p50": statistics.median(appends),
        "append_ms_p90": float(np.percentile(appends, 90)),
        "commit_ms_p50": statistics.median(commits),
        "commit_ms_first10": first,
        "commit_ms_last10": last,
        "commit_growth": last / first,
        "as_of_open_ms_p50": statistics.median(opens),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--engines", default="floe,icechunk")
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    scratch = Path(args.dir or tempfile.mkdtemp(prefix="w1w2-"))
    results = {}
    for name in args.engines.split(","):
        cls = {"floe": Floe, "icechunk": Icechunk}[name]
        path = scratch / name
        shutil.rmtree(path, ignore_errors=True)
        try:
            engine = cls(path)
        except ImportError as e:
            print(f"{name}: not installed ({e})")
            continue
        results[name] = run(engine, args.days)
    keys = list(next(iter(results.values())))
    print(f"{'':22}" + "".join(f"{n:>12}" for n in results))
    for key in keys:
        print(f"{key:22}" + "".join(f"{results[n][key]:12.2f}" for n in results))
    if "floe" in results and "icechunk" in results:
        f, i = results["floe"], results["icechunk"]
        print(f"append p50 floe/icechunk: {f['append_ms_p50'] / i['append_ms_p50']:.2f}")
        print(f"as-of open floe/icechunk: {f['as_of_open_ms_p50'] / i['as_of_open_ms_p50']:.2f}")


if __name__ == "__main__":
    main()
