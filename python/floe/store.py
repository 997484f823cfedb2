"""`floe.FloeStore`: a floe session as a zarr-python 3 `Store`.

Keys are Zarr v3 keys (`zarr.json`, `group/array/c/0/1`); floe checks them against the
hierarchy, so a key that cannot name a node or a chunk inside an array's grid reads as absent
and is refused by writes (`InvalidKeyError`). Read-only stores offer consolidated metadata
(every group's `zarr.json` lists its subtree, so xarray opens a dataset with one request);
writable ones do not (their hierarchy is still changing)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

from zarr.abc.store import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    Store,
    SuffixByteRequest,
)
from zarr.core.buffer import Buffer, BufferPrototype, default_buffer_prototype

from floe.errors import ReadOnlyError

if TYPE_CHECKING:
    from floe.session import Session


def _range(byte_range: ByteRequest | None) -> tuple[int, int, int] | None:
    if byte_range is None:
        return None
    if isinstance(byte_range, RangeByteRequest):
        return (0, byte_range.start, byte_range.end)
    if isinstance(byte_range, OffsetByteRequest):
        return (1, byte_range.offset, 0)
    if isinstance(byte_range, SuffixByteRequest):
        return (2, byte_range.suffix, 0)
    raise TypeError(f"Unexpected byte_range, got {byte_range}")


def _prefix(prefix: str) -> str:
    """zarr-python's prefix (`""`, `"/"`, `"a"` or `"a/"`) as floe takes it (`""` or ending
    with `/`)."""
    if prefix in ("", "/"):
        return ""
    return prefix if prefix.endswith("/") else prefix + "/"


class FloeStore(Store):
    """A floe session as a `zarr.abc.store.Store`.

    `FloeStore(session)` takes the session's mode; `read_only=True` gives a read-only view of
    a writable session (what `zarr.open(..., mode="r")` asks for through `with_read_only`).
    Values read are handed over without a copy; values written are copied."""

    supports_writes = True
    supports_deletes = True
    supports_partial_writes = False
    supports_listing = True

    def __init__(self, session: Session, *, read_only: bool | None = None):
        if read_only is None:
            read_only = session.read_only
        if session.read_only and not read_only:
            raise ReadOnlyError(
                "this session is read-only: open a writable session on a branch to write"
            )
        super().__init__(read_only=read_only)
        self._session = session
        self._native = session._native.store()

    @property
    def session(self) -> Session:
        return self._session

    @property
    def supports_consolidated_metadata(self) -> bool:
        # A writable session's hierarchy is still changing; floe derives consolidated blocks
        # for read-only versions only.
        return self._native.consolidated

    def with_read_only(self, read_only: bool = False) -> FloeStore:
        return FloeStore(self._session, read_only=read_only)

    def __eq__(self, other: object) -> bool:
        # Read-only versions are values (equal when they show one snapshot of one
        # repository, as after pickling); writable sessions are identities.
        if not isinstance(other, FloeStore) or self.read_only != other.read_only:
            return False
        mine, theirs = self._session, other._session
        if mine.read_only and theirs.read_only:
            return mine.snapshot_id == theirs.snapshot_id and mine.repository == theirs.repository
        return self._native.same_as(other._native)

    def __hash__(self) -> int:
        if self._session.read_only:
            return hash((self._session.snapshot_id, self._session.repository, self.read_only))
        return hash((id(self._session._native), self.read_only))

    def __repr__(self) -> str:
        return f"FloeStore({self._session!r}, read_only={self.read_only})"

    def __reduce__(self):
        # Read-only sessions pickle; writable ones refuse with what to do instead.
        return (_reopen, (self._session, self.read_only))

    # ---- reads ----------------------------------------------------------------------------

    async def get(
        self,
        key: str,
        prototype: BufferPrototype,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        value = await self._native.get(key, _range(byte_range))
        return None if value is None else prototype.buffer.from_bytes(value)

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        requests = [(key, _range(byte_range)) for key, byte_range in key_ranges]
        values = await self._native.get_partial_values(requests)
        return [None if v is None else prototype.buffer.from_bytes(v) for v in values]

    async def exists(self, key: str) -> bool:
        return await self._native.exists(key)

    async def getsize(self, key: str) -> int:
        size = await self._native.getsize(key)
        if size is None:
            raise FileNotFoundError(key)
        return size

    async def getsize_prefix(self, prefix: str) -> int:
        return await self._native.getsize_prefix(_prefix(prefix))

    async def is_empty(self, prefix: str) -> bool:
        return await self._native.is_empty(_prefix(prefix))

    # ---- zarr-python's synchronous protocol (no event loop round trip) -------------------

    def get_sync(
        self,
        key: str,
        *,
        prototype: BufferPrototype | None = None,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        if prototype is None:
            prototype = default_buffer_prototype()
        value = self._native.get_blocking(key, _range(byte_range))
        return None if value is None else prototype.buffer.from_bytes(value)

    def set_sync(self, key: str, value: Buffer) -> None:
        self._check_writable()
        self._native.set_blocking(key, value.as_buffer_like())

    def delete_sync(self, key: str) -> None:
        self._check_writable()
        self._native.delete_blocking(key)

    # ---- writes ---------------------------------------------------------------------------

    async def set(self, key: str, value: Buffer) -> None:
        self._check_writable()
        if not isinstance(value, Buffer):
            raise TypeError(
                f"FloeStore.set(): `value` must be a Buffer instance. Got an instance of "
                f"{type(value)} instead."
            )
        await self._native.set(key, value.as_buffer_like())

    async def delete(self, key: str) -> None:
        self._check_writable()
        await self._native.delete(key)

    async def delete_dir(self, prefix: str) -> None:
        self._check_writable()
        await self._native.delete_prefix(_prefix(prefix))

    async def clear(self) -> None:
        self._check_writable()
        await self._native.delete_prefix("")

    # ---- listing --------------------------------------------------------------------------

    async def list(self) -> AsyncIterator[str]:
        for key in await self._native.list():
            yield key

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        for key in await self._native.list_prefix(_prefix(prefix)):
            yield key

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        base = _prefix(prefix)
        keys, prefixes = await self._native.list_dir(base)
        for key in keys:
            yield key[len(base) :]
        for child in prefixes:
            yield child[len(base) :].rstrip("/")


def _reopen(session: Any, read_only: bool) -> FloeStore:
    return FloeStore(session, read_only=read_only)
