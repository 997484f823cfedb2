"""Writing xarray datasets into a floe session, dask-backed variables from many workers.

`to_floe(ds, session, ...)` takes `Dataset.to_zarr`'s arguments. xarray writes the metadata and
every in-memory variable on the session itself; each dask-backed variable is written block by
block through forks of the session (see `floe.dask.store_dask`), on dask's current scheduler,
threads or a distributed cluster alike, and merged back. Commit the session afterwards."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import xarray as xr
from xarray.backends.common import ArrayWriter

try:  # xarray >= 2025.09
    from xarray.backends.writers import dump_to_store, get_writable_zarr_store
except ImportError:  # pragma: no cover - older xarray
    from xarray.backends.api import dump_to_store, get_writable_zarr_store

from floe.dask import store_dask
from floe.errors import ReadOnlyError

if TYPE_CHECKING:
    from floe.session import Session


def to_floe(
    obj: xr.Dataset | xr.DataArray,
    session: Session,
    *,
    mode: Literal["w", "w-", "a", "a-", "r+"] | None = None,
    group: str | None = None,
    encoding: Mapping[str, Any] | None = None,
    append_dim: Hashable | None = None,
    region: Mapping[str, slice] | Literal["auto"] | None = None,
    safe_chunks: bool = True,
    align_chunks: bool = False,
    write_empty_chunks: bool | None = None,
    compute_kwargs: Mapping[str, Any] | None = None,
) -> None:
    """Writes `obj` into the writable `session` as `obj.to_zarr(session.store, ...)` would,
    with dask-backed variables written in parallel through forks. Nothing is committed."""
    if session.read_only:
        raise ReadOnlyError("to_floe writes into a writable session")
    dataset = obj.to_dataset() if isinstance(obj, xr.DataArray) else obj
    zstore = get_writable_zarr_store(
        session.store,
        mode=mode,
        group=group,
        consolidated=False,
        append_dim=append_dim,
        region=region,
        safe_chunks=safe_chunks,
        align_chunks=align_chunks,
        write_empty_chunks=write_empty_chunks,
    )
    try:
        dataset = zstore._validate_and_autodetect_region(dataset)
        zstore._validate_encoding(encoding or {})
        # xarray writes metadata and in-memory variables now; dask-backed ones (encoded) are
        # collected with their targets and regions instead of being stored.
        writer = ArrayWriter()
        dump_to_store(dataset, zstore, writer, encoding=encoding or {})
        if writer.sources:
            store_dask(
                session,
                writer.sources,
                writer.targets,
                writer.regions,
                **dict(compute_kwargs or {}),
            )
    finally:
        zstore.close()
