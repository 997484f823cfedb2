"""`floe.Session` (a read-only version, or a writable session on a branch) and
`floe.ForkSession` (a part of a writable session's work done in another process)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from floe import _floe
from floe.errors import ForkError, PicklingError
from floe.store import FloeStore

if TYPE_CHECKING:
    from floe.repository import Repository


def _metadata_json(metadata: Mapping[str, Any] | None) -> str | None:
    return None if metadata is None else json.dumps(dict(metadata))


def _references(references: str | os.PathLike | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(references, Mapping):
        return {"json": json.dumps(references)}
    return {"path": os.fspath(references)}


class Session:
    """A session of a repository: read-only at one version, or writable on a branch.

    `store` is its Zarr v3 store for zarr-python and xarray. A writable session collects
    changes until `commit()`; other processes work on it through `fork()` (see
    `ForkSession`). Read-only sessions pickle (as their repository and snapshot); writable
    ones do not."""

    def __init__(self, native: _floe.Session, repository: Repository):
        self._native = native
        self._repository = repository
        self._store: FloeStore | None = None

    @property
    def repository(self) -> Repository:
        return self._repository

    @property
    def store(self) -> FloeStore:
        """The session as a `zarr.abc.store.Store` (consolidated metadata when read-only)."""
        if self._store is None:
            self._store = FloeStore(self)
        return self._store

    @property
    def snapshot_id(self) -> str:
        """The snapshot read (for a writable session: the one it started from)."""
        return self._native.snapshot_id

    @property
    def branch(self) -> str | None:
        """The branch a writable session commits to; `None` when read-only."""
        return self._native.branch

    @property
    def read_only(self) -> bool:
        return self._native.read_only

    @property
    def has_changes(self) -> bool:
        return self._native.has_changes

    def status(self) -> dict[str, Any]:
        """The uncommitted changes: new, updated and deleted nodes, and chunk counts per
        array."""
        new, updated, deleted, chunks = self._native.status()
        return {
            "new_nodes": new,
            "updated_nodes": updated,
            "deleted_nodes": deleted,
            "chunks": {path: {"written": w, "deleted": d} for path, w, d in chunks},
        }

    def discard(self) -> None:
        """Drops every uncommitted change."""
        self._native.discard()

    async def discard_async(self) -> None:
        await self._native.discard_async()

    def commit(self, message: str, metadata: Mapping[str, Any] | None = None) -> str:
        """Commits the changes to the branch and returns the new snapshot id. When the branch
        moved meanwhile, the changes are rebased onto it if they do not conflict; otherwise
        `ConflictError` says what conflicts."""
        return self._native.commit(message, _metadata_json(metadata))

    def amend(
        self, message: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> str:
        """Replaces the branch tip this session is based on by a commit on the same parent
        holding the tip's content plus this session's changes (none is fine: a new message);
        `message` and `metadata` default to the tip's. Publishes only if the branch still
        points at that tip (`ConflictError` otherwise, the changes kept). Returns the new
        snapshot id."""
        return self._native.amend(message, _metadata_json(metadata))

    async def commit_async(self, message: str, metadata: Mapping[str, Any] | None = None) -> str:
        return await self._native.commit_async(message, _metadata_json(metadata))

    def import_kerchunk(
        self,
        references: str | os.PathLike | Mapping[str, Any],
        to: str,
        *,
        append_dim: str | None = None,
        load: Iterable[str] = (),
        virtual: Iterable[str] = (),
        source_options: Mapping[str, str] | None = None,
    ) -> str:
        """Imports kerchunk references into this session (nothing is committed); returns the
        import summary. See `floe import kerchunk --help` for the rules."""
        return self._native.import_kerchunk(
            to,
            append_dim=append_dim,
            load=list(load),
            keep_virtual=list(virtual),
            source_options=dict(source_options or {}),
            **_references(references),
        )

    def import_netcdf(
        self,
        files: str | os.PathLike | Iterable[str | os.PathLike],
        to: str,
        *,
        append_dim: str | None = None,
        load: Iterable[str] = (),
        virtual: Iterable[str] = (),
        variables: Iterable[str] = (),
        drop_variables: Iterable[str] = (),
        source_options: Mapping[str, str] | None = None,
        concurrency: int = 16,
    ) -> str:
        """Scans netCDF-3 files (local paths or URLs) with floe's own parser and imports
        them into this session (nothing is committed), as `floe import netcdf` does: several
        files need `append_dim` and are appended in the order of their append coordinate;
        `variables` / `drop_variables` choose what is imported. Returns the import summary."""
        if isinstance(files, (str, os.PathLike)):
            files = [files]
        located = [
            str(f) if "://" in str(f) else os.path.abspath(os.fspath(f)) for f in files
        ]
        return self._native.import_netcdf(
            to,
            located,
            append_dim=append_dim,
            load=list(load),
            keep_virtual=list(virtual),
            variables=list(variables),
            drop_variables=list(drop_variables),
            source_options=dict(source_options or {}),
            concurrency=concurrency,
        )

    async def import_netcdf_async(self, *args: Any, **kwargs: Any) -> str:
        return await asyncio.to_thread(self.import_netcdf, *args, **kwargs)

    # ---- distributed writes ---------------------------------------------------------------

    def fork(self) -> ForkSession:
        """A fork of this writable session for work in another process (or thread): it sees
        this session's state, takes any change, cannot commit, and pickles. Give it to the
        worker, write through `fork.store` there, send it back, and `merge()` it here."""
        if self.read_only:
            raise ForkError("only a writable session can be forked")
        return ForkSession(self._repository, self._native.fork())

    def merge(self, *forks: ForkSession) -> dict[str, int]:
        """Merges the work of forks (returned by workers) into this session. A fork merged
        before is skipped. Returns counts of what was applied."""
        total = {"nodes": 0, "chunks": 0, "already_present": 0}
        for fork in forks:
            changes = fork._changes()
            if changes is None:
                continue
            nodes, chunks, present, _already = self._native.merge(changes)
            total["nodes"] += nodes
            total["chunks"] += chunks
            total["already_present"] += present
        return total

    async def import_kerchunk_async(self, *args: Any, **kwargs: Any) -> str:
        return await asyncio.to_thread(self.import_kerchunk, *args, **kwargs)

    async def fork_async(self) -> ForkSession:
        return await asyncio.to_thread(self.fork)

    async def merge_async(self, *forks: ForkSession) -> dict[str, int]:
        return await asyncio.to_thread(self.merge, *forks)

    # ---- pickling -------------------------------------------------------------------------

    def __reduce__(self):
        if not self.read_only:
            raise PicklingError(
                "a writable floe Session cannot be pickled: its uncommitted changes live in "
                "this process. Send `session.fork()` to other processes and `merge()` what "
                "they return, or use floe.xarray.to_floe / floe.dask.store_dask, which do that"
            )
        return (_reopen_readonly, (self._repository, self.snapshot_id))

    def __repr__(self) -> str:
        kind = "read-only" if self.read_only else f"writable on {self.branch!r}"
        return f"floe.Session({kind}, snapshot {self.snapshot_id[:12]})"


def _reopen_readonly(repository: Repository, snapshot_id: str) -> Session:
    return repository.readonly_session(snapshot_id=snapshot_id)


class ForkSession:
    """Work on a writable session done elsewhere. It pickles as its repository and ticket
    (plus, once it has written, its changes), so it travels to a worker and back; the worker
    writes through `store`, and the coordinator merges it with `Session.merge`. A fork cannot
    commit."""

    def __init__(self, repository: Repository, ticket: bytes, changes: bytes | None = None):
        self._repository = repository
        self._ticket = ticket
        self._changes_bytes = changes
        self._native: _floe.Session | None = None
        self._session: Session | None = None

    def _open(self) -> Session:
        if self._session is None:
            self._native = self._repository._native.open_fork(self._ticket)
            self._session = Session(self._native, self._repository)
        return self._session

    @property
    def store(self) -> FloeStore:
        """The fork's store: write the worker's part of the data through it."""
        return self._open().store

    @property
    def session(self) -> Session:
        return self._open()

    def _changes(self) -> bytes | None:
        """The fork's changes since its ticket (`None` when it never opened)."""
        if self._session is not None and self._native is not None:
            self._changes_bytes = self._native.finish_fork()
        return self._changes_bytes

    def __reduce__(self):
        return (ForkSession, (self._repository, self._ticket, self._changes()))

    def __repr__(self) -> str:
        state = "with changes" if self._changes_bytes or self._session else "unused"
        return f"floe.ForkSession({state})"
