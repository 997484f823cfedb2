"""Repositories, sessions and their errors from Python: refs, history, versions, commits and
the exception tree; pickling; fork safety."""

from __future__ import annotations

import multiprocessing
import pickle

import numpy as np
import pytest
import zarr

import floe


def write_array(session: floe.Session, values: np.ndarray, name: str = "a") -> None:
    group = zarr.open_group(session.store, mode="a")
    array = group.require_array(name, shape=values.shape, chunks=(2,), dtype=values.dtype)
    array[:] = values


def read_array(session: floe.Session, name: str = "a") -> np.ndarray:
    return zarr.open_group(session.store, mode="r")[name][:]


def test_refs_history_and_versions(repo: floe.Repository) -> None:
    session = repo.writable_session()
    write_array(session, np.arange(4))
    first = session.commit("first", metadata={"by": "test"})
    assert repo.branches()["main"] == first
    repo.create_branch("dev", first)
    repo.create_tag("v1", first)
    dev = repo.writable_session("dev")
    write_array(dev, np.arange(4) * 10)
    dev.commit("on dev")
    assert repo.tags() == {"v1": first}
    entries = repo.log("main")
    assert [e.message for e in entries] == ["first", "Repository initialized"]
    assert entries[0].metadata == {"by": "test"} and entries[0].id == first
    assert entries[0].committed_at.tzinfo is not None
    assert (read_array(repo.readonly_session("dev")) == np.arange(4) * 10).all()
    assert (read_array(repo.readonly_session(tag="v1")) == np.arange(4)).all()
    assert repo.resolve("v1") == first == repo.resolve(first[:10])
    on_dev = repo.branches()["dev"]
    # A reset that expects the branch elsewhere changes nothing.
    with pytest.raises(floe.errors.ConflictError, match="moved since you looked"):
        repo.reset_branch("dev", first, expect=first)
    assert repo.branches()["dev"] == on_dev
    repo.reset_branch("dev", first, expect=on_dev)
    assert (read_array(repo.readonly_session(branch="dev")) == np.arange(4)).all()
    repo.delete_branch("dev")
    repo.delete_tag("v1")
    assert set(repo.branches()) == {"main"} and repo.tags() == {}
    assert repo.fsck().ok
    assert repo.info()["format_version"] >= 1


def test_diff_and_reflog(repo: floe.Repository) -> None:
    session = repo.writable_session()
    write_array(session, np.arange(6))
    first = session.commit("first")
    group = zarr.open_group(session.store, mode="a")
    array = group["a"]
    array.resize((8,))
    array[1] = 100  # chunk 0 changes
    array[6:] = [6, 7]  # chunk 3 is new
    array.attrs["units"] = "K"
    write_array(session, np.arange(3), name="b")
    second = session.commit("second")
    diff = repo.diff(first, "main")
    assert (diff["from"], diff["to"]) == (first, second)
    by_path = {n["path"]: n for n in diff["nodes"]}
    a = by_path["/a"]
    assert a["change"] == "updated" and a["metadata"]["shape"] == [[6], [8]]
    assert "units" in a["metadata"]["attributes_added"]
    assert (a["chunks"]["added"], a["chunks"]["changed"], a["chunks"]["removed"]) == (1, 1, 0)
    assert by_path["/b"]["change"] == "added" and by_path["/b"]["chunks"]["added"] == 2
    coords = repo.diff(first, second, path="a", coords=True)
    assert [n["path"] for n in coords["nodes"]] == ["/a"]
    assert coords["nodes"][0]["chunks"]["coords"] == {
        "added": [[3]],
        "changed": [[0]],
        "removed": [],
    }
    assert repo.diff(second, second)["nodes"] == []
    with pytest.raises(floe.errors.InvalidArgumentError, match="no-such-branch"):
        repo.diff(first, "no-such-branch")

    repo.reset_branch("main", first)
    moves = repo.reflog()
    assert [(m.kind, m.snapshot_id) for m in moves[:3]] == [
        ("reset", first),
        ("commit", second),
        ("commit", first),
    ]
    assert moves[-1].kind == "created" and moves[-1].seq == 0
    assert len(repo.reflog(limit=2)) == 2
    assert moves[0].written_at.tzinfo is not None


def test_session_state_status_and_discard(repo: floe.Repository) -> None:
    session = repo.writable_session()
    assert not session.read_only and session.branch == "main" and not session.has_changes
    write_array(session, np.arange(4))
    status = session.status()
    assert "/a" in status["new_nodes"] and status["chunks"]["/a"]["written"] == 2
    session.discard()
    assert not session.has_changes
    with pytest.raises(floe.NothingToCommitError):
        session.commit("nothing")
    reader = repo.readonly_session()
    assert reader.read_only and reader.branch is None


def test_errors_are_a_tree_with_actionable_messages(repo: floe.Repository) -> None:
    with pytest.raises(floe.NotFoundError, match="nope"):
        repo.readonly_session(branch="nope")
    with pytest.raises(floe.AlreadyExistsError):
        floe.Repository.init(repo.location)
    with pytest.raises(floe.FloeError, match="no such directory"):
        floe.Repository.open(repo.location + "-missing")
    with pytest.raises(floe.NotFoundError, match="no floe repository"):
        empty = repo.location + "-empty"
        __import__("os").makedirs(empty)
        floe.Repository.open(empty)
    with pytest.raises(floe.InvalidArgumentError):
        repo.readonly_session(tag="x", snapshot_id="y")
    # Two sessions write the same chunk: the second commit conflicts, naming it.
    one, two = repo.writable_session(), repo.writable_session()
    for s in (one, two):
        write_array(s, np.arange(4))
    one.commit("one")
    with pytest.raises(floe.ConflictError) as conflict:
        two.commit("two")
    assert isinstance(conflict.value, floe.FloeError)
    # A fork cannot commit.
    coordinator = repo.writable_session()
    fork = coordinator.fork()
    fork.store  # opens the worker session
    with pytest.raises(floe.ForkError, match="merge"):
        fork.session.commit("from a fork")
    # A key that names nothing: InvalidKeyError, also a ValueError.
    import asyncio

    from zarr.core.buffer import cpu

    store = repo.writable_session().store
    with pytest.raises(ValueError, match="b/c/0") as invalid:
        asyncio.run(store.set("b/c/0", cpu.Buffer.from_bytes(b"x")))
    assert isinstance(invalid.value, floe.InvalidKeyError)


def test_pickling_rules(repo: floe.Repository) -> None:
    session = repo.writable_session()
    write_array(session, np.arange(4))
    with pytest.raises(floe.PicklingError, match=r"fork\(\)") as refused:
        pickle.dumps(session)
    assert "to_floe" in str(refused.value)
    with pytest.raises(floe.PicklingError):
        pickle.dumps(session.store)
    snapshot = session.commit("data")
    assert pickle.loads(pickle.dumps(repo)) == repo
    reader = pickle.loads(pickle.dumps(repo.readonly_session()))
    assert reader.snapshot_id == snapshot and reader.read_only
    assert (read_array(reader) == np.arange(4)).all()
    store = pickle.loads(pickle.dumps(repo.readonly_session().store))
    assert (zarr.open_array(store, path="a", mode="r")[:] == np.arange(4)).all()


def test_forks_travel_and_merge(repo: floe.Repository) -> None:
    coordinator = repo.writable_session()
    write_array(coordinator, np.zeros(8, dtype="i8"))
    fork = pickle.loads(pickle.dumps(coordinator.fork()))
    array = zarr.open_array(fork.store, path="a", mode="a")
    array[4:] = [4, 5, 6, 7]
    returned = pickle.loads(pickle.dumps(fork))
    assert coordinator.merge(returned)["chunks"] == 2
    coordinator.commit("merged")
    assert (read_array(repo.readonly_session()) == [0, 0, 0, 0, 4, 5, 6, 7]).all()


def _child_in_forked_process(location: str, queue) -> None:
    try:
        floe.Repository.open(location).readonly_session()
        queue.put("worked")
    except floe.ForkedProcessError as e:
        queue.put(f"refused: {e}")
    except Exception as e:  # noqa: BLE001 - report anything else to the parent
        queue.put(f"other: {type(e).__name__}: {e}")


# Forking a multi-threaded process is what this test is about (Python 3.12+ warns about it).
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_fails_at_once_and_spawn_works(repo: floe.Repository) -> None:
    repo.writable_session()  # floe's runtime is running in this process now
    for method, expected in (("fork", "refused: "), ("spawn", "worked")):
        context = multiprocessing.get_context(method)
        queue = context.Queue()
        child = context.Process(target=_child_in_forked_process, args=(repo.location, queue))
        child.start()
        child.join(timeout=60)
        assert not child.is_alive(), f"a {method} child hung"
        message = queue.get(timeout=5)
        assert message.startswith(expected), message
        if method == "fork":
            assert "spawn" in message
