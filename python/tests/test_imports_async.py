"""Kerchunk imports from Python (a references dict and a file, with the CLI's options) and the
awaitable twins of blocking calls."""

from __future__ import annotations

import base64
import json

import numpy as np
import zarr

import floe


def references(values: list[int], units: str) -> dict:
    """Inline kerchunk references of one day: `time` (a coordinate, loaded) and `v`."""
    raw = np.array(values, dtype="<i2").tobytes()
    times = np.arange(len(values), dtype="<f8").tobytes()
    zarray = lambda dtype: json.dumps(  # noqa: E731
        {"zarr_format": 2, "shape": [len(values)], "chunks": [len(values)], "dtype": dtype,
         "fill_value": None, "order": "C", "filters": None, "compressor": None}
    )
    return {
        "version": 1,
        "refs": {
            ".zgroup": json.dumps({"zarr_format": 2}),
            "v/.zarray": zarray("<i2"),
            "v/.zattrs": json.dumps({"_ARRAY_DIMENSIONS": ["time"]}),
            "v/0": "base64:" + base64.b64encode(raw).decode(),
            "time/.zarray": zarray("<f8"),
            "time/.zattrs": json.dumps({"_ARRAY_DIMENSIONS": ["time"], "units": units}),
            "time/0": "base64:" + base64.b64encode(times).decode(),
        },
    }


def test_kerchunk_imports_append_and_reencode_times(repo: floe.Repository, tmp_path) -> None:
    snapshot, summary = repo.import_kerchunk(
        references([1, 2, 3], "hours since 2026-01-01"), "ds", append_dim="time"
    )
    assert snapshot and "loaded /ds/time (coordinate variable)" in summary
    path = tmp_path / "day2.json"
    path.write_text(json.dumps(references([4, 5, 6], "hours since 2026-01-02")))
    snapshot, summary = repo.import_kerchunk(path, "ds", append_dim="time")
    assert "converted 3 values of /ds/time" in summary
    group = zarr.open_group(repo.readonly_session().store, path="ds", mode="r")
    assert list(group["v"][:]) == [1, 2, 3, 4, 5, 6]
    assert list(group["time"][:]) == [0, 1, 2, 24, 25, 26]
    # A refused import names what differs and changes nothing.
    bad = references([7], "days since 2026-01-01")
    bad["refs"]["v/.zattrs"] = json.dumps({"_ARRAY_DIMENSIONS": ["time"], "scale_factor": 2.0})
    try:
        repo.import_kerchunk(bad, "ds", append_dim="time")
        raise AssertionError("the import was not refused")
    except floe.ImportRefusedError as e:
        assert "scale_factor" in str(e)
    assert repo.log()[0].id == snapshot


async def test_async_twins(repo: floe.Repository) -> None:
    reopened = await floe.Repository.open_async(repo.location)
    session = await reopened.writable_session_async()
    group = zarr.open_group(session.store, mode="a")
    array = group.create_array("a", shape=(4,), chunks=(2,), dtype="i4")
    await array._async_array.setitem(slice(None), np.arange(4, dtype="i4"))
    fork = await session.fork_async()
    assert await session.merge_async(fork) == {"nodes": 0, "chunks": 0, "already_present": 0}
    snapshot = await session.commit_async("async", metadata={"k": 1})
    entries = await reopened.log_async()
    assert entries[0].id == snapshot and entries[0].metadata == {"k": 1}
    reader = await reopened.readonly_session_async(snapshot_id=snapshot)
    assert list(zarr.open_array(reader.store, path="a", mode="r")[:]) == [0, 1, 2, 3]
