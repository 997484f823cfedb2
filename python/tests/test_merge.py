"""Merging, squashing and amending from Python, as a team would: a branch fixes part of a
dataset while `main` keeps appending days through xarray; the merge opens in xarray as both
sides left it (CF decoding included), conflicts name the variable and chunks, and rewritten
history reads back identical."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import zarr

import floe
from test_xarray import day


def write_days(repo: floe.Repository, days: range, branch: str = "main") -> list[str]:
    ids = []
    for i in days:
        session = repo.writable_session(branch)
        if i == 0:
            # Chunks of 5 steps over 24-step days: every append rewrites a partial edge chunk.
            day(i).to_zarr(session.store, mode="w", encoding={"t2m": {"chunks": (5, 4, 5)}})
        else:
            day(i).to_zarr(session.store, mode="a", append_dim="time")
        ids.append(session.commit(f"day {i}"))
    return ids


def fix_first_hours(repo: floe.Repository, branch: str, value: float) -> None:
    session = repo.writable_session(branch)
    group = zarr.open_group(session.store, mode="r+")
    group["t2m"][0:5] = np.full((5, 4, 5), value, dtype="f4")
    group["t2m"].attrs["long_name"] = "2 m air temperature"
    session.commit(f"fix first hours to {value}")


def expected(days: range, fixed: float | None) -> xr.Dataset:
    ds = xr.concat([day(i) for i in days], dim="time", data_vars="minimal")
    if fixed is not None:
        t2m = ds["t2m"].values.copy()
        t2m[0:5] = fixed
        ds["t2m"] = (ds["t2m"].dims, t2m, {**ds["t2m"].attrs, "long_name": "2 m air temperature"})
    return ds


def test_a_fix_branch_merges_into_appending_main(repo: floe.Repository) -> None:
    write_days(repo, range(1))
    repo.create_branch("fix", repo.log("main")[0].id)
    fix_first_hours(repo, "fix", 273.15)
    write_days(repo, range(1, 3))

    report = repo.merge("fix", "main")
    assert report["snapshot"] == repo.log("main")[0].id
    assert report["up_to_date"] is False
    got = xr.open_zarr(repo.readonly_session(branch="main").store).load()
    xr.testing.assert_identical(got, expected(range(3), 273.15))
    # Merging again changes nothing; `fix` still reads as it did.
    assert repo.merge("fix", "main")["up_to_date"] is True
    fix = xr.open_zarr(repo.readonly_session(branch="fix").store).load()
    xr.testing.assert_identical(fix, expected(range(1), 273.15))
    assert repo.fsck().ok


def test_conflicting_fixes_name_the_chunks_unless_a_strategy_decides(
    repo: floe.Repository,
) -> None:
    write_days(repo, range(1))
    repo.create_branch("fix", repo.log("main")[0].id)
    fix_first_hours(repo, "fix", 1.0)
    fix_first_hours(repo, "main", 2.0)
    before = repo.log("main")[0].id
    with pytest.raises(floe.ConflictError, match=r"/t2m.*\[0, 0, 0\]"):
        repo.merge("fix", "main")
    assert repo.log("main")[0].id == before
    ours = repo.merge("fix", "main", strategy="ours", dry_run=True)
    assert ours["snapshot"] is None and ours["chunks_resolved"] == 1
    repo.merge("fix", "main", strategy="theirs", message="take the fix")
    assert repo.log("main")[0].message == "take the fix"
    got = xr.open_zarr(repo.readonly_session(branch="main").store).load()
    xr.testing.assert_identical(got, expected(range(1), 1.0))


def test_squash_and_amend_keep_the_data_and_refuse_stale_writers(
    repo: floe.Repository,
) -> None:
    ids = write_days(repo, range(4))
    stale = repo.writable_session()
    report = repo.squash(ids[1], ids[2], message="days 1-2")
    assert report["squashed"] == ids[1:3]
    assert [r["original"] for r in report["replayed"]] == [ids[3]]
    log = repo.log("main")
    assert [e.message for e in log[:3]] == ["day 3", "days 1-2", "day 0"]
    got = xr.open_zarr(repo.readonly_session(branch="main").store).load()
    xr.testing.assert_identical(got, expected(range(4), None))
    squashed = xr.open_zarr(repo.readonly_session(snapshot_id=report["snapshot"]).store).load()
    xr.testing.assert_identical(squashed, expected(range(3), None))

    # A writer that opened before the squash cannot commit over the new history.
    zarr.open_group(stale.store, mode="r+").attrs["note"] = "late"
    with pytest.raises(floe.ConflictError, match="rewritten"):
        stale.commit("late")

    session = repo.writable_session()
    zarr.open_group(session.store, mode="r+").attrs["source"] = "reanalysis"
    amended = session.amend("day 3, with its source")
    log = repo.log("main")
    assert (log[0].id, log[0].message, log[1].message) == (
        amended,
        "day 3, with its source",
        "days 1-2",
    )
    got = xr.open_zarr(repo.readonly_session(branch="main").store).load()
    want = expected(range(4), None)
    want.attrs["source"] = "reanalysis"
    xr.testing.assert_identical(got, want)
    with pytest.raises(floe.InvalidArgumentError, match="not a range"):
        repo.squash(ids[3], ids[3])
