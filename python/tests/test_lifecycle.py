"""Expiry and garbage collection from Python, as an ingestion service would run them: daily
appends written by xarray, old days expired, GC run twice a grace period apart; what is kept
opens in xarray identical to what was written, what was dropped raises `ExpiredError`."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
import xarray as xr

import floe
from test_xarray import day


def test_daily_appends_expired_and_collected(repo: floe.Repository, tmp_path: Path) -> None:
    snapshots = []
    for i in range(6):
        session = repo.writable_session()
        if i == 0:
            day(i).to_zarr(session.store, mode="w", encoding={"t2m": {"chunks": (5, 4, 5)}})
        else:
            day(i).to_zarr(session.store, mode="a", append_dim="time")
        snapshots.append(session.commit(f"day {i}"))
        time.sleep(0.01)
    repo.create_tag("first-day", snapshots[0])
    horizon = repo.log("main")[2].committed_at  # day 3 and later are kept

    dry = repo.expire(horizon, dry_run=True)
    assert dry["record"] is None and dry["branches"][0]["newly_expired"] == 3
    report = repo.expire(horizon)
    assert report["record"] == 0
    assert report["branches"][0]["oldest_kept"] == snapshots[3]
    assert report["tags_cut"] == ["first-day"]
    assert [e.id for e in repo.log("main")] == snapshots[:2:-1]
    with pytest.raises(floe.ExpiredError, match="expired"):
        repo.readonly_session(branch="main", as_of=repo.log("first-day")[0].committed_at)

    first = repo.gc(grace=timedelta(seconds=1))
    assert first["run"] == 0 and first["deleted"]["count"] == 0
    condemned = {o["id"] for o in first["condemned"]["objects"] if o["kind"] == "snapshot"}
    assert condemned == set(snapshots[1:3])
    time.sleep(1.1)
    assert dry["would_free"] == {
        "objects": first["condemned"]["count"],
        "bytes": first["condemned"]["bytes"],
    }
    second = repo.gc(grace=timedelta(seconds=1))
    assert second["deleted"]["count"] == first["condemned"]["count"]
    assert second["deleted"]["bytes"] > 0

    fresh = floe.Repository.open(str(tmp_path / "repo"))
    for k in (0, 3, 4, 5):
        got = xr.open_zarr(fresh.readonly_session(snapshot_id=snapshots[k]).store).load()
        want = xr.concat([day(i) for i in range(k + 1)], dim="time", data_vars="minimal")
        xr.testing.assert_identical(got, want)
    with pytest.raises(floe.ExpiredError, match="garbage collection run 1"):
        fresh.readonly_session(snapshot_id=snapshots[1])
    with pytest.raises(floe.ExpiredError):
        fresh.create_branch("back", snapshots[2])
    assert fresh.fsck().ok
    with pytest.raises(floe.InvalidArgumentError, match="grace"):
        fresh.gc(grace=timedelta(milliseconds=10))
