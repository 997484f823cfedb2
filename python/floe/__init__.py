"""floe: a versioned, transactional store for Zarr arrays.

    import floe, xarray as xr
    repo = floe.Repository.open_or_init("./repo")
    session = repo.writable_session("main")
    ds.to_zarr(session.store, mode="w")
    session.commit("first day")
    xr.open_zarr(repo.readonly_session("main").store)
"""

from floe._floe import __version__
from floe.errors import (
    AlreadyExistsError,
    CommitOutcomeUnknownError,
    ConflictError,
    ExpiredError,
    FloeError,
    ForkedProcessError,
    ForkError,
    ImportRefusedError,
    InvalidArgumentError,
    InvalidKeyError,
    InvalidMetadataError,
    NotFoundError,
    NothingToCommitError,
    PicklingError,
    ReadOnlyError,
    VirtualSourceError,
)
from floe.repository import LogEntry, ReflogEntry, Repository
from floe.session import ForkSession, Session
from floe.store import FloeStore

__all__ = [
    "AlreadyExistsError",
    "CommitOutcomeUnknownError",
    "ConflictError",
    "ExpiredError",
    "FloeError",
    "FloeStore",
    "ForkError",
    "ForkSession",
    "ForkedProcessError",
    "ImportRefusedError",
    "InvalidArgumentError",
    "InvalidKeyError",
    "InvalidMetadataError",
    "LogEntry",
    "ReflogEntry",
    "NotFoundError",
    "NothingToCommitError",
    "PicklingError",
    "ReadOnlyError",
    "Repository",
    "Session",
    "VirtualSourceError",
    "__version__",
]
