"""`floe.Repository`: open or create a repository, start sessions, manage branches and tags,
read history, check and import."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from floe import _floe
from floe.errors import InvalidArgumentError
from floe.session import Session


@dataclass(frozen=True)
class LogEntry:
    """One commit of a branch's history."""

    id: str
    generation: int
    committed_at: datetime
    message: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class ReflogEntry:
    """One move of a branch: `kind` is "created", "commit", "reset" or "deleted";
    `snapshot_id` is None for a deletion; `written_at` is the writer's clock."""

    seq: int
    snapshot_id: str | None
    written_at: datetime
    kind: str


@dataclass(frozen=True)
class FsckReport:
    """What `Repository.fsck` found: `ok` when no problem, `text` the whole report."""

    ok: bool
    text: str


# Repositories unpickled in a process share one native handle (and its caches) per
# (location, storage options, virtual access).
_HANDLES: dict[tuple, _floe.Repository] = {}
_HANDLES_LOCK = threading.Lock()
_HANDLES_PID = os.getpid()


def _shared_handle(key: tuple) -> _floe.Repository:
    global _HANDLES_PID
    with _HANDLES_LOCK:
        if os.getpid() != _HANDLES_PID:
            _HANDLES.clear()
            _HANDLES_PID = os.getpid()
        native = _HANDLES.get(key)
        if native is None:
            location, options, (prefixes, declared) = key
            native = _floe.Repository.open(location, dict(options))
            if prefixes or declared:
                native = native.with_virtual_access(list(prefixes), declared)
            _HANDLES[key] = native
        return native


def _time_text(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise InvalidArgumentError(
            f"as_of={value!r} has no time zone: give an aware datetime (e.g. with "
            "tzinfo=datetime.timezone.utc) so the instant is unambiguous"
        )
    return value.astimezone(timezone.utc).isoformat()


def _version(
    version: str | None,
    branch: str | None,
    tag: str | None,
    snapshot_id: str | None,
    as_of: datetime | str | None,
) -> tuple[str, str]:
    """The (kind, value) the native layer takes for one way of naming a version."""
    given = [
        (kind, value)
        for kind, value in (
            ("name", version),
            ("branch", branch),
            ("tag", tag),
            ("snapshot", snapshot_id),
        )
        if value is not None
    ]
    if as_of is not None:
        if tag is not None or snapshot_id is not None or version is not None:
            raise InvalidArgumentError("as_of goes with a branch only (branch=..., as_of=...)")
        return ("as_of", f"{branch or 'main'}@{_time_text(as_of)}")
    if len(given) > 1:
        raise InvalidArgumentError(
            "name one version: a version string, branch=, tag=, snapshot_id= or "
            "branch= with as_of="
        )
    return given[0] if given else ("branch", "main")


class Repository:
    """A floe repository, opened at a location: a local directory (the default), or
    `s3://bucket/prefix`, `gs://...`, `az://...`, `memory://name`, with `storage_options` for
    the object store (credentials, region, endpoint...).

    Repositories pickle (as their location and options) and reopen on the other side."""

    def __init__(self, native: _floe.Repository):
        self._native = native

    # ---- opening ------------------------------------------------------------------------

    @classmethod
    def init(cls, location: str, storage_options: Mapping[str, str] | None = None) -> Repository:
        """Creates a repository at `location` (refused if one exists)."""
        return cls(_floe.Repository.init(str(location), dict(storage_options or {})))

    @classmethod
    def open(cls, location: str, storage_options: Mapping[str, str] | None = None) -> Repository:
        """Opens the repository at `location`."""
        return cls(_floe.Repository.open(str(location), dict(storage_options or {})))

    @classmethod
    def open_or_init(
        cls, location: str, storage_options: Mapping[str, str] | None = None
    ) -> Repository:
        """Opens the repository at `location`, creating it when there is none."""
        return cls(_floe.Repository.open_or_init(str(location), dict(storage_options or {})))

    @property
    def location(self) -> str:
        return self._native.location

    def with_virtual_access(
        self, prefixes: Iterable[str] = (), *, declared: bool = False
    ) -> Repository:
        """This repository allowed to read virtual chunks below `prefixes` (e.g.
        `"file:///data/"`, `"s3://bucket/"`), and in every container the repository declares
        when `declared`. Reading virtual chunks is denied otherwise."""
        return Repository(self._native.with_virtual_access(list(prefixes), declared))

    # ---- sessions -----------------------------------------------------------------------

    def writable_session(self, branch: str = "main") -> Session:
        """A session whose changes `commit()` puts on `branch`."""
        return Session(self._native.writable_session(branch), self)

    def readonly_session(
        self,
        version: str | None = None,
        *,
        branch: str | None = None,
        tag: str | None = None,
        snapshot_id: str | None = None,
        as_of: datetime | str | None = None,
    ) -> Session:
        """A read-only session at a version: `version` is a branch, tag, snapshot id or unique
        prefix, or `branch@<RFC 3339 time>`; or say which with `branch=`, `tag=`,
        `snapshot_id=`, or `branch=` with `as_of=` (an aware datetime or RFC 3339 text) for
        the newest commit of the branch at or before that time. Default: `main`."""
        kind, value = _version(version, branch, tag, snapshot_id, as_of)
        return Session(self._native.readonly_session(kind, value), self)

    def resolve(self, version: str) -> str:
        """The snapshot id `version` names (see `readonly_session`)."""
        return self._native.resolve("name", version)

    # ---- refs ---------------------------------------------------------------------------

    def branches(self) -> dict[str, str]:
        """Every branch and its tip snapshot id."""
        return dict(self._native.branches())

    def tags(self) -> dict[str, str]:
        """Every tag and its snapshot id."""
        return {name: snapshot for name, snapshot, _created in self._native.tags()}

    def create_branch(self, name: str, snapshot_id: str) -> None:
        self._native.create_branch(name, snapshot_id)

    def reset_branch(self, name: str, snapshot_id: str, expect: str | None = None) -> None:
        """Point branch `name` at `snapshot_id`. With `expect` (a snapshot id), only while the
        branch still points there: if another writer moved it, nothing changes and
        `ConflictError` is raised."""
        self._native.reset_branch(name, snapshot_id, expect)

    def delete_branch(self, name: str) -> None:
        self._native.delete_branch(name)

    def create_tag(self, name: str, snapshot_id: str) -> None:
        self._native.create_tag(name, snapshot_id)

    def delete_tag(self, name: str) -> None:
        self._native.delete_tag(name)

    # ---- history, checks ----------------------------------------------------------------

    def log(self, version: str = "main", limit: int = 100) -> list[LogEntry]:
        """The history that leads to `version`, newest first, at most `limit` entries."""
        return [
            LogEntry(
                id=id_,
                generation=generation,
                committed_at=datetime.fromisoformat(committed_at),
                message=message,
                metadata=json.loads(metadata),
            )
            for id_, generation, committed_at, message, metadata in self._native.log(
                "name", version, limit
            )
        ]

    def diff(
        self, from_version: str, to_version: str, path: str | None = None, coords: bool = False
    ) -> dict[str, Any]:
        """What changed from `from_version` to `to_version` (any two versions, related or
        not): the document `floe diff --json` prints, with nodes added, deleted, replaced or
        updated and, per array, chunks added, changed and removed (their coordinates with
        `coords=True`). Only nodes at or below `path` when given."""
        return json.loads(self._native.diff(from_version, to_version, path, coords))

    def reflog(self, branch: str = "main", limit: int | None = None) -> list[ReflogEntry]:
        """Every move of `branch`, newest first (at most `limit`): commits, resets, creation
        and deletion, read from its records."""
        return [
            ReflogEntry(
                seq=seq,
                snapshot_id=snapshot,
                written_at=datetime.fromisoformat(written_at),
                kind=kind,
            )
            for seq, snapshot, written_at, kind in self._native.reflog(
                branch, limit if limit is not None else 2**63
            )
        ]

    # ---- lifecycle ----------------------------------------------------------------------

    def merge(
        self,
        source: str,
        into: str = "main",
        *,
        strategy: str = "fail",
        message: str | None = None,
        expect: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Merges the version `source` (a branch, tag, snapshot id or `branch@time`) into
        branch `into`, three-way from their nearest common ancestor, as one merge commit.
        Chunks both sides changed differently raise `ConflictError` (naming the array and the
        chunks) unless `strategy` is `"ours"` (keep `into`'s) or `"theirs"` (take `source`'s).
        With `expect`, publishes only while `into` points there. Returns the document
        `floe merge --json` prints (`snapshot` is None when already up to date)."""
        return json.loads(
            self._native.merge(source, into, strategy, message, expect, dry_run)
        )

    def squash(
        self,
        first: str,
        last: str,
        *,
        branch: str = "main",
        message: str | None = None,
        expect: str | None = None,
    ) -> dict[str, Any]:
        """Replaces the commits `first` to `last` (both included) of `branch` by one commit
        with `last`'s content on `first`'s parent, replaying later commits on top; publishes
        only if the branch has not moved (`ConflictError` otherwise). Returns the document
        `floe squash --json` prints."""
        return json.loads(self._native.squash(branch, first, last, message, expect))


    def expire(
        self,
        older_than: timedelta | datetime,
        keep_last: int = 1,
        branches: dict[str, timedelta | datetime] | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Expires history older than `older_than` (an age, measured back from the store's
        clock, or a time) on every branch (`branches` overrides it per branch), keeping at least
        the `keep_last` newest commits of each, every tagged snapshot and the root. Nothing is
        deleted: the cut is recorded, `log` stops there and as-of before it raises
        `ExpiredError`; `gc` deletes the objects later. Returns the document
        `floe expire --json` prints."""
        overrides = [(name, _threshold(t)) for name, t in (branches or {}).items()]
        return json.loads(
            self._native.expire(_threshold(older_than), keep_last, overrides, dry_run)
        )

    def gc(
        self,
        grace: timedelta = timedelta(days=7),
        full: bool = False,
        dry_run: bool = False,
        sparse_pack_threshold: float = 0.5,
    ) -> dict[str, Any]:
        """Garbage collection: condemns what no branch or tag reaches any more and deletes what
        an earlier run condemned at least `grace` ago (the store's clock) and that is still
        unreachable. `full` also lists storage for orphans older than `grace`. Returns the
        document `floe gc --json --list` prints."""
        return json.loads(
            self._native.gc(grace.total_seconds(), full, dry_run, sparse_pack_threshold)
        )

    def fsck(self, verify_chunks: bool = True) -> FsckReport:
        """Checks every object reachable from a branch or tag (digests, references)."""
        ok, text = self._native.fsck(verify_chunks)
        return FsckReport(ok, text)

    def info(self) -> dict[str, Any]:
        """Where the repository lives, its format version and when it was created."""
        location, format_version, created_at = self._native.info()
        return {
            "location": location,
            "format_version": format_version,
            "created_at": datetime.fromisoformat(created_at) if created_at else None,
        }

    # ---- imports ------------------------------------------------------------------------

    def import_kerchunk(
        self,
        references: str | os.PathLike | Mapping[str, Any],
        to: str,
        *,
        branch: str = "main",
        append_dim: str | None = None,
        load: Iterable[str] = (),
        virtual: Iterable[str] = (),
        message: str | None = None,
        source_options: Mapping[str, str] | None = None,
    ) -> tuple[str | None, str]:
        """Imports kerchunk references (a JSON file, a parquet reference directory, or a
        reference dict) below `to` on `branch` and commits, as `floe import kerchunk` does.
        Returns `(snapshot id, summary)`; the id is `None` when nothing changed."""
        session = self.writable_session(branch)
        summary = session.import_kerchunk(
            references,
            to,
            append_dim=append_dim,
            load=load,
            virtual=virtual,
            source_options=source_options,
        )
        if not session.has_changes:
            return None, summary
        origin = references if isinstance(references, (str, os.PathLike)) else "references"
        return session.commit(message or f"import kerchunk {origin}"), summary

    def import_netcdf(
        self,
        files: str | os.PathLike | Iterable[str | os.PathLike],
        to: str,
        *,
        branch: str = "main",
        append_dim: str | None = None,
        load: Iterable[str] = (),
        virtual: Iterable[str] = (),
        variables: Iterable[str] = (),
        drop_variables: Iterable[str] = (),
        message: str | None = None,
        source_options: Mapping[str, str] | None = None,
    ) -> tuple[str | None, str]:
        """Scans netCDF-3 files natively, imports them below `to` on `branch` and commits
        once, as `floe import netcdf` does. Returns `(snapshot id, summary)`; the id is `None`
        when nothing changed."""
        files = [files] if isinstance(files, (str, os.PathLike)) else list(files)
        session = self.writable_session(branch)
        summary = session.import_netcdf(
            files,
            to,
            append_dim=append_dim,
            load=load,
            virtual=virtual,
            variables=variables,
            drop_variables=drop_variables,
            source_options=source_options,
        )
        if not session.has_changes:
            return None, summary
        return session.commit(message or f"import netcdf {len(files)} file(s)"), summary

    # ---- awaitable twins (the blocking calls release the GIL; these run them off the
    # event loop) ---------------------------------------------------------------------------

    @classmethod
    async def open_async(cls, location: str, storage_options: Mapping[str, str] | None = None):
        return await asyncio.to_thread(cls.open, location, storage_options)

    @classmethod
    async def init_async(cls, location: str, storage_options: Mapping[str, str] | None = None):
        return await asyncio.to_thread(cls.init, location, storage_options)

    @classmethod
    async def open_or_init_async(
        cls, location: str, storage_options: Mapping[str, str] | None = None
    ):
        return await asyncio.to_thread(cls.open_or_init, location, storage_options)

    async def writable_session_async(self, branch: str = "main") -> Session:
        return await asyncio.to_thread(self.writable_session, branch)

    async def readonly_session_async(self, *args: Any, **kwargs: Any) -> Session:
        return await asyncio.to_thread(self.readonly_session, *args, **kwargs)

    async def log_async(self, version: str = "main", limit: int = 100) -> list[LogEntry]:
        return await asyncio.to_thread(self.log, version, limit)

    # ---- pickling -----------------------------------------------------------------------

    def _key(self) -> tuple:
        prefixes, declared = self._native.virtual_access
        return (
            self._native.location,
            tuple(self._native.storage_options),
            (tuple(prefixes), declared),
        )

    def __reduce__(self):
        return (_reopen, (self._key(),))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Repository) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"floe.Repository({self.location!r})"


def _reopen(key: tuple) -> Repository:
    return Repository(_shared_handle(key))


def _threshold(value: timedelta | datetime) -> str:
    """An expiry threshold as the native layer takes it: `"<seconds>s"` or RFC 3339."""
    if isinstance(value, timedelta):
        return f"{int(value.total_seconds())}s"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidArgumentError(f"{value!r} has no time zone: give an aware datetime")
        return value.isoformat()
    raise InvalidArgumentError(f"{value!r} is neither a timedelta nor a datetime")

