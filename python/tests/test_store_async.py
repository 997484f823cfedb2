"""The store's awaitables: answers that need no I/O (metadata, a chunk still in the session's
memory) complete at once, answers read from storage go through floe's runtime; both kinds mix
freely in `asyncio.gather`, and errors surface where the call is awaited."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import zarr
from zarr.core.buffer import default_buffer_prototype

import floe


def _committed(repo: floe.Repository) -> None:
    session = repo.writable_session()
    group = zarr.open_group(session.store, mode="w")
    array = group.create_array("x", shape=(40, 5), chunks=(3, 5), dtype="i4", compressors=None)
    array[:] = np.arange(200, dtype="i4").reshape(40, 5)
    session.commit("forty rows in chunks of three")


async def test_ready_and_stored_answers_mix_in_gather(repo: floe.Repository) -> None:
    _committed(repo)
    session = repo.writable_session()
    store = session.store
    proto = default_buffer_prototype()
    # One chunk rewritten in this session (in memory); the rest come from storage.
    fresh = np.full((3, 5), -1, dtype="i4").tobytes()
    await store.set("x/c/2/0", proto.buffer.from_bytes(fresh))
    keys = ["zarr.json", "x/zarr.json", ".zgroup", "x/c/99/0"] + [f"x/c/{i}/0" for i in range(14)]
    values = await asyncio.gather(*(store.get(key, proto) for key in keys))
    by_key = dict(zip(keys, values, strict=True))
    assert by_key[".zgroup"] is None and by_key["x/c/99/0"] is None
    assert b'"node_type"' in by_key["x/zarr.json"].to_bytes()
    assert by_key["x/c/2/0"].to_bytes() == fresh
    for i in (0, 1, 3, 13):
        rows = np.frombuffer(by_key[f"x/c/{i}/0"].to_bytes(), dtype="i4").reshape(-1, 5)
        expected = np.arange(200, dtype="i4").reshape(40, 5)[3 * i : 3 * i + 3]
        # The last chunk is partial: zarr stores it whole, padded with the fill value.
        assert np.array_equal(rows[: len(expected)], expected), i


async def test_errors_surface_when_awaited(repo: floe.Repository) -> None:
    _committed(repo)
    store = repo.writable_session().store
    proto = default_buffer_prototype()
    with pytest.raises(floe.errors.InvalidKeyError, match="outside the chunk grid"):
        await store.set("x/c/99/0", proto.buffer.from_bytes(b"\0" * 60))
    # A refused write changed nothing.
    assert await store.get("x/c/99/0", proto) is None
    assert not await store.exists("x/c/99/0")


async def test_awaitables_give_their_result_again(repo: floe.Repository) -> None:
    _committed(repo)
    native = repo.writable_session().store._native
    # Metadata is answered at once; a committed chunk is read from storage.
    for key in ("zarr.json", "x/c/5/0"):
        pending = native.get(key)
        first = await pending
        assert first is not None
        # Like a done asyncio future: awaiting again gives the same value, no second read.
        assert bytes(await pending) == bytes(first), key
