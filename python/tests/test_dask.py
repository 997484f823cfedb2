"""Dask-backed writes through forks: the threaded scheduler and a distributed cluster of worker
processes write a dataset (and append to it) that reads back identical."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

import floe
import floe.dask
import floe.xarray


def dataset(days: int, first_day: int = 0) -> xr.Dataset:
    steps = 24 * days
    time = pd.date_range("2026-01-01", periods=steps, freq="h") + pd.Timedelta(days=first_day)
    values = da.random.default_rng(first_day).random((steps, 6, 8), chunks=(24, 3, 8))
    values = values.astype("f4")
    return xr.Dataset(
        {
            "t2m": (("time", "y", "x"), values, {"units": "K"}),
            "flag": (("time",), da.arange(steps, chunks=24) % 3, {"long_name": "flag"}),
        },
        coords={"time": time, "y": np.arange(6.0), "x": np.arange(8.0)},
        attrs={"title": "dask"},
    )


def check(repo: floe.Repository, want: xr.Dataset) -> None:
    got = xr.open_zarr(repo.readonly_session().store).load()
    xr.testing.assert_identical(got, want.load())


def test_threaded_writes_and_appends(repo: floe.Repository) -> None:
    first, second = dataset(2), dataset(1, first_day=2)
    with dask.config.set(scheduler="threads"):
        session = repo.writable_session()
        floe.xarray.to_floe(first, session, mode="w", encoding={"t2m": {"chunks": (24, 3, 8)}})
        session.commit("two days")
        session = repo.writable_session()
        floe.xarray.to_floe(second, session, mode="a", append_dim="time")
        session.commit("one more")
    check(repo, xr.concat([first, second], dim="time", data_vars="minimal"))
    assert len(repo.log()) == 3


def test_a_distributed_cluster_of_processes_writes_through_forks(repo: floe.Repository) -> None:
    distributed = pytest.importorskip("distributed")
    ds = dataset(3)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster):
        session = repo.writable_session()
        floe.xarray.to_floe(ds, session, mode="w", encoding={"t2m": {"chunks": (24, 3, 8)}})
        session.commit("from a cluster")
    check(repo, ds)


def test_store_dask_refuses_blocks_that_share_a_chunk(repo: floe.Repository) -> None:
    session = repo.writable_session()
    target = zarr.open_group(session.store, mode="w").create_array(
        "a", shape=(10,), chunks=(4,), dtype="i8"
    )
    with pytest.raises(ValueError, match="rechunk"):
        floe.dask.store_dask(session, [da.arange(10, chunks=5)], [target])
    counts = floe.dask.store_dask(session, [da.arange(10, chunks=4)], [target])
    assert counts["chunks"] == 3
    session.commit("aligned")
    assert (zarr.open_array(repo.readonly_session().store, path="a")[:] == np.arange(10)).all()


def test_writable_sessions_do_not_travel_but_forks_do(repo: floe.Repository) -> None:
    import pickle

    session = repo.writable_session()
    with pytest.raises(floe.PicklingError, match="to_floe"):
        pickle.dumps(session)
    fork = session.fork()
    assert pickle.loads(pickle.dumps(fork))._ticket == fork._ticket
