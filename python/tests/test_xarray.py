"""xarray writes to and reads from floe sessions: `to_zarr` with mode "w" then appends along
time with mode "a", a commit after each, and every version reads back identical."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import floe


def day(i: int) -> xr.Dataset:
    """One day of a forecast: 24 hourly steps of a 4 x 5 field, CF attributes, a NaN."""
    rng = np.random.default_rng(i)
    time = pd.date_range("2026-01-01", periods=24, freq="h") + pd.Timedelta(days=i)
    t2m = rng.random((24, 4, 5)).astype("f4") * 40 + 250
    t2m[0, 0, 0] = np.nan
    return xr.Dataset(
        {"t2m": (("time", "lat", "lon"), t2m, {"units": "K", "long_name": "2 m temperature"})},
        coords={
            "time": time,
            "lat": ("lat", np.linspace(-10, 10, 4), {"units": "degrees_north"}),
            "lon": ("lon", np.linspace(0, 20, 5), {"units": "degrees_east"}),
        },
        attrs={"Conventions": "CF-1.10", "title": "test forecast"},
    )


def test_to_zarr_then_appends_round_trip_at_every_version(repo: floe.Repository) -> None:
    snapshots = []
    for i in range(3):
        session = repo.writable_session()
        if i == 0:
            day(i).to_zarr(session.store, mode="w", encoding={"t2m": {"chunks": (6, 4, 5)}})
        else:
            day(i).to_zarr(session.store, mode="a", append_dim="time")
        snapshots.append(session.commit(f"day {i}"))
    for k, snapshot in enumerate(snapshots, start=1):
        got = xr.open_zarr(repo.readonly_session(snapshot_id=snapshot).store).load()
        want = xr.concat([day(i) for i in range(k)], dim="time", data_vars="minimal")
        xr.testing.assert_identical(got, want)
    latest = xr.open_zarr(repo.readonly_session().store)
    assert latest.sizes["time"] == 72
    assert latest.t2m.encoding["chunks"] == (6, 4, 5)


def test_a_read_only_version_opens_from_consolidated_metadata(repo: floe.Repository) -> None:
    session = repo.writable_session()
    day(0).to_zarr(session.store, mode="w")
    # A writable store offers no consolidated metadata (its hierarchy is changing).
    assert not session.store.supports_consolidated_metadata
    session.commit("day 0")
    store = repo.readonly_session().store
    assert store.supports_consolidated_metadata
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(store, consolidated=True)
    assert set(ds.data_vars) == {"t2m"}


def test_as_of_and_tags_read_older_days(repo: floe.Repository) -> None:
    session = repo.writable_session()
    day(0).to_zarr(session.store, mode="w")
    first = session.commit("day 0")
    repo.create_tag("v0", first)
    when = repo.log()[0].committed_at
    session = repo.writable_session()
    day(1).to_zarr(session.store, mode="a", append_dim="time")
    session.commit("day 1")
    for version in (
        repo.readonly_session(tag="v0"),
        repo.readonly_session(branch="main", as_of=when),
        repo.readonly_session(first[:12]),
    ):
        assert xr.open_zarr(version.store).sizes["time"] == 24
    assert xr.open_zarr(repo.readonly_session().store).sizes["time"] == 48


def test_read_only_sessions_refuse_writes(repo: floe.Repository) -> None:
    session = repo.writable_session()
    day(0).to_zarr(session.store, mode="w")
    session.commit("day 0")
    reader = repo.readonly_session()
    with pytest.raises(ValueError, match="read-only"):
        day(1).to_zarr(reader.store, mode="a", append_dim="time")
