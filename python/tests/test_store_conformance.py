"""zarr-python's own store conformance suite (`zarr.testing.store.StoreTests`) on FloeStore.

floe validates every key against the hierarchy: a chunk key must lie in an existing array's
grid, and `zarr.json` must be a valid Zarr v3 document (floe re-renders it compactly). The
suite writes arbitrary bytes to keys such as `c/0`, `foo/c/0.0` and `foo/0/0` and to
`zarr.json`, which a validating store must refuse, as Icechunk's does. The tests that do so are
overridden below, each saying why, with the same checks on the key forms floe serves: a chunk
of a root array (`c/0`), of a nested array with the default encoding (`foo/c/0/0`), and of an
array with the v2 encoding (`bar/0.0`); metadata documents are compared as parsed JSON. Every
other test of the suite runs as zarr-python wrote it. The suite differs between zarr-python
releases (3.2 added sync/async parity laws, dropped `_get_bytes`): the overrides of tests a
release lacks run as floe's own checks of the same laws."""

from __future__ import annotations

import json
import pickle

import pytest
from zarr.abc.store import OffsetByteRequest, RangeByteRequest, Store, SuffixByteRequest
from zarr.core.buffer import Buffer, cpu, default_buffer_prototype
from zarr.core.sync import _collect_aiterator
from zarr.storage._utils import _normalize_byte_range_index
from zarr.testing.store import StoreTests
from zarr.testing.utils import assert_bytes_equal

import floe


def _array(shape, chunks, *, v2=False) -> bytes:
    encoding = (
        {"name": "v2", "configuration": {"separator": "."}}
        if v2
        else {"name": "default", "configuration": {"separator": "/"}}
    )
    return json.dumps(
        {
            "zarr_format": 3,
            "node_type": "array",
            "shape": shape,
            "data_type": "uint8",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunks}},
            "chunk_key_encoding": encoding,
            "fill_value": 0,
            "codecs": [{"name": "bytes"}],
        }
    ).encode()


_GROUP = json.dumps({"zarr_format": 3, "node_type": "group"}).encode()

# The arrays that make each key form valid: (array path, zarr.json).
_FORMS = {
    "c/0": ("", _array([100], [1])),
    "foo/c/0/0": ("foo", _array([10, 10], [1, 1])),
    "bar/0.0": ("bar", _array([10, 10], [1, 1], v2=True)),
}
KEYS = list(_FORMS)


async def make_valid(store: floe.FloeStore, *keys: str) -> None:
    """Creates the nodes that the chunk keys `keys` need (their arrays, and a root group for
    nested ones)."""
    native = store._native
    for key in keys:
        path, document = _FORMS[key]
        if path:
            if not await native.exists("zarr.json"):
                await native.set("zarr.json", _GROUP)
            await native.set(f"{path}/zarr.json", document)
        else:
            await native.set("zarr.json", document)


def buf(data: bytes) -> cpu.Buffer:
    return cpu.Buffer.from_bytes(data)


class TestFloeStore(StoreTests[floe.FloeStore, cpu.Buffer]):
    store_cls = floe.FloeStore
    buffer_cls = cpu.Buffer

    @pytest.fixture
    def store_kwargs(self, tmp_path) -> dict:
        repo = floe.Repository.init(str(tmp_path / "repo"))
        return {"session": repo.writable_session()}

    async def set(self, store: floe.FloeStore, key: str, value: Buffer) -> None:
        # Through the native store, bypassing FloeStore's own methods (and its read-only
        # flag), as the suite asks.
        await store._native.set(key, value.as_buffer_like())

    async def get(self, store: floe.FloeStore, key: str) -> Buffer:
        value = await store._native.get(key)
        return buf(bytes(value))

    def test_store_repr(self, store: floe.FloeStore) -> None:
        assert repr(store).startswith("FloeStore(floe.Session(writable on 'main'")

    def test_store_supports_writes(self, store: floe.FloeStore) -> None:
        assert store.supports_writes

    def test_store_supports_listing(self, store: floe.FloeStore) -> None:
        assert store.supports_listing

    # ---- overrides: floe refuses the suite's keys or metadata bytes ----------------------

    async def test_serializable_store(self, store: floe.FloeStore) -> None:
        """Overridden: a writable session's uncommitted changes live in one process, so its
        store does not pickle (it raises naming `fork()`); a read-only store pickles and
        reads the same data. The suite also writes `foo`, which is no Zarr key."""
        with pytest.raises(floe.PicklingError, match="fork()"):
            pickle.dumps(store)
        await make_valid(store, "foo/c/0/0")
        await store.set("foo/c/0/0", buf(b"\x01\x02\x03\x04"))
        session = store.session
        session.commit("data")
        reader = session.repository.readonly_session().store
        copy = pickle.loads(pickle.dumps(reader))
        assert copy == reader and copy.read_only
        got = await copy.get("foo/c/0/0", default_buffer_prototype())
        assert_bytes_equal(got, buf(b"\x01\x02\x03\x04"))

    async def test_with_read_only_store(self, open_kwargs: dict) -> None:
        """Overridden: the suite writes the key `foo`, which is no Zarr key; the same checks on
        a valid key."""
        store = await self.store_cls.open(**{**open_kwargs, "read_only": True})
        assert store.read_only
        writer = store.with_read_only(read_only=False)
        assert not writer._is_open and not writer.read_only
        await make_valid(writer, "foo/c/0/0")
        await writer.set("foo/c/0/0", buf(b"bar"))
        await writer.delete("foo/c/0/0")
        for reader in (store, store.with_read_only(read_only=True)):
            assert reader.read_only
            with pytest.raises(ValueError, match="store was opened in read-only mode"):
                await reader.set("foo/c/0/0", buf(b"bar"))
            with pytest.raises(ValueError, match="store was opened in read-only mode"):
                await reader.delete("foo/c/0/0")

    @pytest.mark.parametrize("key", KEYS)
    @pytest.mark.parametrize(
        ("data", "byte_range"),
        [
            (b"\x01\x02\x03\x04", None),
            (b"\x01\x02\x03\x04", RangeByteRequest(1, 4)),
            (b"\x01\x02\x03\x04", OffsetByteRequest(1)),
            (b"\x01\x02\x03\x04", SuffixByteRequest(1)),
            (b"", None),
        ],
    )
    async def test_get(self, store, key, data, byte_range) -> None:
        """Overridden: valid keys of each form (the suite's have no array)."""
        await make_valid(store, key)
        data_buf = buf(data)
        await self.set(store, key, data_buf)
        observed = await store.get(key, prototype=default_buffer_prototype(), byte_range=byte_range)
        start, stop = _normalize_byte_range_index(data_buf, byte_range=byte_range)
        assert_bytes_equal(observed, data_buf[start:stop])

    async def test_get_not_open(self, store_not_open) -> None:
        """Overridden: a valid key (the suite's `c/0` has no array)."""
        assert not store_not_open._is_open
        await make_valid(store_not_open, "c/0")
        await self.set(store_not_open, "c/0", buf(b"\x01\x02\x03\x04"))
        observed = await store_not_open.get("c/0", prototype=default_buffer_prototype())
        assert_bytes_equal(observed, buf(b"\x01\x02\x03\x04"))

    async def test_get_raises(self, store) -> None:
        """Overridden: a valid key (the suite's `c/0` has no array)."""
        await make_valid(store, "c/0")
        await self.set(store, "c/0", buf(b"\x01\x02\x03\x04"))
        with pytest.raises((ValueError, TypeError), match=r"Unexpected byte_range, got.*"):
            await store.get("c/0", prototype=default_buffer_prototype(), byte_range=(0, 2))

    async def test_get_many(self, store) -> None:
        """Overridden: ten chunks of one array (the suite's keys `0`..`9` are no Zarr keys)."""
        await make_valid(store, "c/0")
        keys = tuple(f"c/{i}" for i in range(10))
        values = tuple(k.encode() for k in keys)
        for k, v in zip(keys, values, strict=True):
            await self.set(store, k, buf(v))
        requests = zip(keys, (default_buffer_prototype(),) * 10, (None,) * 10, strict=True)
        observed = await _collect_aiterator(store._get_many(requests))
        assert sorted((k, b.to_bytes()) for k, b in observed) == sorted(zip(keys, values))

    @pytest.mark.parametrize("key", KEYS)
    @pytest.mark.parametrize("data", [b"\x01\x02\x03\x04", b""])
    async def test_getsize(self, store, key, data) -> None:
        """Overridden: valid keys of each form."""
        await make_valid(store, key)
        await self.set(store, key, buf(data))
        assert await store.getsize(key) == len(data)

    async def test_getsize_prefix(self, store) -> None:
        """Overridden: the chunks of a valid 2-D array `foo` (the suite's `c/0/0` has none)."""
        await make_valid(store, "foo/c/0/0")
        keys = ["foo/c/0/0", "foo/c/0/1", "foo/c/1/0", "foo/c/1/1"]
        await store._set_many([(k, buf(b"\x01\x02\x03\x04")) for k in keys])
        metadata = await store.getsize("foo/zarr.json")
        assert await store.getsize_prefix("foo/c") == 4 * len(keys)
        assert await store.getsize_prefix("foo") == 4 * len(keys) + metadata

    @pytest.mark.parametrize("key", ["zarr.json", *KEYS])
    @pytest.mark.parametrize("data", [b"\x01\x02\x03\x04", b""])
    async def test_set(self, store, key, data) -> None:
        """Overridden: valid keys; `zarr.json` takes a valid document (floe refuses other
        bytes there, and re-renders documents, so they are compared parsed)."""
        assert not store.read_only
        if key == "zarr.json":
            await store.set(key, buf(_GROUP))
            assert json.loads((await self.get(store, key)).to_bytes()) == json.loads(_GROUP)
            return
        await make_valid(store, key)
        await store.set(key, buf(data))
        assert_bytes_equal(await self.get(store, key), buf(data))

    async def test_set_not_open(self, store_not_open) -> None:
        """Overridden: a valid key."""
        assert not store_not_open._is_open
        await make_valid(store_not_open, "c/0")
        await store_not_open.set("c/0", buf(b"\x01\x02\x03\x04"))
        assert_bytes_equal(await self.get(store_not_open, "c/0"), buf(b"\x01\x02\x03\x04"))

    async def test_set_many(self, store) -> None:
        """Overridden: a root group, two arrays of both encodings and their chunks."""
        items = {
            "zarr.json": _GROUP,
            "foo/zarr.json": _FORMS["foo/c/0/0"][1],
            "bar/zarr.json": _FORMS["bar/0.0"][1],
            "foo/c/0/0": b"foo/c/0/0",
            "bar/0.0": b"bar/0.0",
        }
        # Nodes first: floe refuses a chunk before its array exists, and `_set_many` writes
        # concurrently (zarr-python itself writes metadata before chunks).
        nodes = [(k, buf(v)) for k, v in items.items() if k.endswith("zarr.json")]
        chunks = [(k, buf(v)) for k, v in items.items() if not k.endswith("zarr.json")]
        await store._set_many(nodes[:1])
        await store._set_many(nodes[1:])
        await store._set_many(chunks)
        for k, v in items.items():
            got = (await self.get(store, k)).to_bytes()
            if k.endswith("zarr.json"):
                assert json.loads(got) == json.loads(v)
            else:
                assert got == v

    @pytest.mark.parametrize(
        "key_ranges",
        [
            [],
            [("c/0", RangeByteRequest(0, 2))],
            [("c/1", RangeByteRequest(0, 2)), ("c/2", None)],
            [
                ("c/3", RangeByteRequest(0, 2)),
                ("c/4", SuffixByteRequest(2)),
                ("c/5", OffsetByteRequest(2)),
            ],
        ],
    )
    async def test_get_partial_values(self, store, key_ranges) -> None:
        """Overridden: chunks of a valid array (the suite also puts arbitrary bytes in
        `zarr.json`)."""
        await make_valid(store, "c/0")
        for key, _ in key_ranges:
            await self.set(store, key, buf(key.encode()))
        observed = await store.get_partial_values(
            prototype=default_buffer_prototype(), key_ranges=key_ranges
        )
        for (key, byte_range), obs in zip(key_ranges, observed, strict=True):
            expected = await store.get(key, default_buffer_prototype(), byte_range=byte_range)
            assert obs is not None and obs.to_bytes() == expected.to_bytes()

    async def test_exists(self, store) -> None:
        """Overridden: a valid document at `foo/zarr.json`."""
        assert not await store.exists("foo")
        await store.set("zarr.json", buf(_GROUP))
        await store.set("foo/zarr.json", buf(_GROUP))
        assert await store.exists("foo/zarr.json")
        assert not await store.exists("foo")

    async def test_delete(self, store) -> None:
        """Overridden: a valid document at `foo/zarr.json`."""
        await store.set("zarr.json", buf(_GROUP))
        await store.set("foo/zarr.json", buf(_GROUP))
        assert await store.exists("foo/zarr.json")
        await store.delete("foo/zarr.json")
        assert not await store.exists("foo/zarr.json")

    async def test_delete_dir(self, store) -> None:
        """Overridden: valid documents and a chunk of a valid array."""
        await store.set("zarr.json", buf(_GROUP))
        await store.set("foo-bar/zarr.json", buf(_GROUP))
        await store.set("foo/zarr.json", _as_buffer(_FORMS["foo/c/0/0"][1]))
        await store.set("foo/c/0/0", buf(b"chunk"))
        await store.delete_dir("foo")
        assert await store.exists("zarr.json")
        assert await store.exists("foo-bar/zarr.json")
        assert not await store.exists("foo/zarr.json")
        assert not await store.exists("foo/c/0/0")

    async def test_is_empty(self, store) -> None:
        """Overridden: a chunk of a valid array `foo` (the suite's `foo/bar` is no key)."""
        assert await store.is_empty("")
        await make_valid(store, "foo/c/0/0")
        await self.set(store, "foo/c/0/0", buf(b"something"))
        assert not await store.is_empty("")
        assert await store.is_empty("fo")
        assert not await store.is_empty("foo/")
        assert not await store.is_empty("foo")
        assert await store.is_empty("spam/")

    async def test_clear(self, store) -> None:
        """Overridden: a chunk of a valid array (the suite's `key` is no Zarr key)."""
        await make_valid(store, "c/0")
        await self.set(store, "c/0", buf(b"something"))
        await store.clear()
        assert await store.is_empty("")

    async def test_list(self, store) -> None:
        """Overridden: a valid array `foo` and ten chunks."""
        assert await _collect_aiterator(store.list()) == ()
        await make_valid(store, "c/0")
        items = {"zarr.json": None, **{f"c/{i}": b"" for i in range(10)}}
        await store._set_many((k, buf(b"")) for k in items if k != "zarr.json")
        assert sorted(await _collect_aiterator(store.list())) == sorted(items)

    async def test_list_prefix(self, store) -> None:
        """Overridden: valid group documents at each prefix."""
        prefixes = ("", "a/", "a/b/", "a/b/c/")
        await store._set_many((p + "zarr.json", buf(_GROUP)) for p in prefixes)
        keys = [p + "zarr.json" for p in prefixes]
        for prefix in prefixes:
            observed = tuple(sorted(await _collect_aiterator(store.list_prefix(prefix))))
            assert observed == tuple(sorted(k for k in keys if k.startswith(prefix)))

    async def test_list_empty_path(self, store) -> None:
        """Overridden: valid nodes (the suite writes empty bytes as `zarr.json`)."""
        await store.set("zarr.json", buf(_GROUP))
        await store.set("foo/zarr.json", buf(_GROUP))
        await store.set("foo/bar/zarr.json", _as_buffer(_array([4], [1])))
        await store.set("foo/baz/zarr.json", _as_buffer(_array([4], [1])))
        await store._set_many([("foo/bar/c/1", buf(b"")), ("foo/baz/c/0", buf(b""))])
        keys = [
            "zarr.json",
            "foo/zarr.json",
            "foo/bar/zarr.json",
            "foo/baz/zarr.json",
            "foo/bar/c/1",
            "foo/baz/c/0",
        ]
        assert sorted(await _collect_aiterator(store.list())) == sorted(keys)
        assert sorted(await _collect_aiterator(store.list_prefix(""))) == sorted(keys)
        observed = sorted(await _collect_aiterator(store.list_prefix("foo/bar/")))
        assert observed == sorted(k for k in keys if k.startswith("foo/bar/"))

    async def test_list_dir(self, store) -> None:
        """Overridden: valid nodes (the suite's `foo/bar/foobar_first_child` is no key)."""
        assert await _collect_aiterator(store.list_dir("")) == ()
        assert await _collect_aiterator(store.list_dir("foo")) == ()
        await store.set("zarr.json", buf(_GROUP))
        await store.set("foo/zarr.json", buf(_GROUP))
        await store.set("foo/bar/zarr.json", _as_buffer(_array([4], [1])))
        await store.set("foo/bar/c/1", buf(b"\x01"))
        await store.set("foo/baz/zarr.json", buf(_GROUP))
        for root, expected in [
            ("", ["zarr.json", "foo"]),
            ("foo", ["zarr.json", "bar", "baz"]),
            ("foo/bar", ["zarr.json", "c"]),
        ]:
            for form in (root, root + "/"):
                observed = await _collect_aiterator(store.list_dir(form))
                assert sorted(observed) == sorted(expected), form

    async def test_set_if_not_exists(self, store) -> None:
        """Overridden: chunks of a valid array (the suite's `k` is no Zarr key)."""
        await make_valid(store, "c/0")
        await self.set(store, "c/0", buf(b"0000"))
        await store.set_if_not_exists("c/0", buf(b"1111"))
        assert await store.get("c/0", default_buffer_prototype()) == buf(b"0000")
        await store.set_if_not_exists("c/1", buf(b"1111"))
        assert await store.get("c/1", default_buffer_prototype()) == buf(b"1111")

    if hasattr(Store, "_get_bytes"):
        # zarr-python 3.1 only (3.2 dropped these helpers and the suite's tests of them).

        async def test_get_bytes(self, store) -> None:
            """Overridden: a chunk (floe refuses `hello world` as a `zarr.json`)."""
            await make_valid(store, "c/0")
            await self.set(store, "c/0", buf(b"hello world"))
            assert await store._get_bytes("c/0", prototype=default_buffer_prototype()) == b"hello world"
            with pytest.raises(FileNotFoundError):
                await store._get_bytes("c/99", prototype=default_buffer_prototype())

        def test_get_bytes_sync(self, store) -> None:
            """Overridden: a chunk (floe refuses `hello world` as a `zarr.json`)."""
            from zarr.core.sync import sync

            sync(make_valid(store, "c/0"))
            sync(self.set(store, "c/0", buf(b"hello world")))
            assert store._get_bytes_sync("c/0", prototype=default_buffer_prototype()) == b"hello world"

        async def test_get_json(self, store) -> None:
            """Overridden: a valid document (floe refuses `{"foo": "bar"}` as a `zarr.json`)."""
            document = {"zarr_format": 3, "node_type": "group", "attributes": {"foo": "bar"}}
            await self.set(store, "zarr.json", buf(json.dumps(document).encode()))
            assert await store._get_json("zarr.json", prototype=default_buffer_prototype()) == document

        def test_get_json_sync(self, store) -> None:
            """Overridden: a valid document (floe refuses `{"foo": "bar"}` as a `zarr.json`)."""
            from zarr.core.sync import sync

            document = {"zarr_format": 3, "node_type": "group", "attributes": {"foo": "bar"}}
            sync(self.set(store, "zarr.json", buf(json.dumps(document).encode())))
            got = store._get_json_sync("zarr.json", prototype=default_buffer_prototype())
            assert got == document


    # ---- the synchronous protocol: the suite's keys are no Zarr keys ----------------------

    def test_get_sync(self, store) -> None:
        """Overridden: a valid key (the suite's `sync_get` is no Zarr key)."""
        from zarr.core.sync import sync

        sync(make_valid(store, "c/0"))
        sync(self.set(store, "c/0", buf(b"\x01\x02\x03\x04")))
        assert_bytes_equal(store.get_sync("c/0"), buf(b"\x01\x02\x03\x04"))
        got = store.get_sync("c/0", byte_range=RangeByteRequest(1, 3))
        assert_bytes_equal(got, buf(b"\x02\x03"))

    def test_set_sync(self, store) -> None:
        """Overridden: a valid key (the suite's `sync_set` is no Zarr key)."""
        from zarr.core.sync import sync

        sync(make_valid(store, "c/0"))
        store.set_sync("c/0", buf(b"\x01\x02\x03\x04"))
        assert_bytes_equal(sync(self.get(store, "c/0")), buf(b"\x01\x02\x03\x04"))

    def test_delete_sync(self, store) -> None:
        """Overridden: a valid key (the suite's `sync_delete` is no Zarr key)."""
        from zarr.core.sync import sync

        sync(make_valid(store, "c/0"))
        store.set_sync("c/0", buf(b"\x01\x02\x03\x04"))
        store.delete_sync("c/0")
        assert store.get_sync("c/0") is None

    # ---- sync/async parity laws (the suite has them from zarr-python 3.2 on; its keys are
    # no Zarr keys): written through one protocol, observed through the other ---------------

    @pytest.mark.parametrize("direction", ["set_async_get_sync", "set_sync_get_async"])
    @pytest.mark.parametrize("key", KEYS)
    async def test_sync_async_set_get_parity(self, store, direction: str, key: str) -> None:
        """Overridden: valid keys of each form (the suite's `parity_set_get` is no Zarr key)."""
        await make_valid(store, key)
        value = buf(b"\x01\x02\x03\x04")
        if direction == "set_async_get_sync":
            await store.set(key, value)
            got = store.get_sync(key)
        else:
            store.set_sync(key, value)
            got = await store.get(key, prototype=default_buffer_prototype())
        assert got is not None
        assert_bytes_equal(got, value)

    @pytest.mark.parametrize("key", KEYS)
    async def test_delete_sync_visible_to_async_get(self, store, key: str) -> None:
        """Overridden: valid keys of each form (the suite's `parity_delete` is no Zarr key)."""
        await make_valid(store, key)
        await store.set(key, buf(b"\x01\x02\x03\x04"))
        store.delete_sync(key)
        assert await store.get(key, prototype=default_buffer_prototype()) is None
        assert not await store.exists(key)

    @pytest.mark.parametrize(
        "byte_range",
        [
            None,
            RangeByteRequest(1, 4),
            OffsetByteRequest(1),
            SuffixByteRequest(1),
            RangeByteRequest(10, 20),
        ],
        ids=["none", "range", "offset", "suffix", "range-past-eof"],
    )
    async def test_get_sync_byte_range_parity(self, store, byte_range) -> None:
        """Overridden: a chunk key (the suite's `parity_byte_range` is no Zarr key)."""
        await make_valid(store, "foo/c/0/0")
        await store.set("foo/c/0/0", buf(b"\x01\x02\x03\x04"))
        sync_result = store.get_sync("foo/c/0/0", byte_range=byte_range)
        async_result = await store.get(
            "foo/c/0/0", prototype=default_buffer_prototype(), byte_range=byte_range
        )
        if async_result is None:
            assert sync_result is None
        else:
            assert sync_result is not None
            assert_bytes_equal(sync_result, async_result)


def _as_buffer(data: bytes) -> cpu.Buffer:
    return cpu.Buffer.from_bytes(data)


async def test_invalid_keys_are_refused_naming_the_key(tmp_path) -> None:
    """What the overrides work around, stated: writes to keys that cannot name anything are
    refused with InvalidKeyError (a ValueError), reads of them are absent."""
    store = floe.Repository.init(str(tmp_path / "r")).writable_session().store
    with pytest.raises(floe.InvalidKeyError, match="c/0"):
        await store.set("c/0", buf(b"\x01"))
    with pytest.raises(floe.InvalidMetadataError):
        await store.set("zarr.json", buf(b"\x01\x02"))
    assert await store.get("c/0", default_buffer_prototype()) is None
    assert not await store.exists("foo")


def test_zarr_v2_writes_are_refused_saying_why(tmp_path) -> None:
    """floe holds Zarr v3 hierarchies: writing with zarr_format=2 fails at the first v2
    document, naming the way out, and leaves nothing behind."""
    import zarr

    session = floe.Repository.init(str(tmp_path / "r")).writable_session()
    with pytest.raises(floe.InvalidKeyError, match=r"`\.zgroup` is Zarr v2 metadata.*zarr_format=3"):
        zarr.open_group(session.store, mode="w", zarr_format=2)
    assert not session.has_changes
