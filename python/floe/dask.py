"""Writing dask arrays into a floe session from many workers (threads or processes).

`store_dask(session, sources, targets)` forks the writable `session` once; every dask block
becomes a task that opens its own fork from the ticket (in whatever process runs it), writes
its block through that fork's store, and returns the fork's changes. The changes come back to
the caller, which merges them into `session`; the caller then commits once. Workers never
commit and never see each other's changes, so nothing a worker does is lost or applied twice
(merging the same changes again is a no-op).

Each block must cover whole chunks of its target (apart from the array's and the region's
edges), so two tasks never write one chunk: `ValueError` says how to rechunk otherwise."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from floe.errors import ForkError
from floe.session import ForkSession

if TYPE_CHECKING:
    from floe.repository import Repository
    from floe.session import Session


def _write_block(
    repository: Repository, ticket: bytes, path: str, selection: tuple, block: Any
) -> bytes | None:
    """A task: write `block` at `selection` of array `path` through a fork of its own."""
    fork = ForkSession(repository, ticket)
    array = zarr.open_array(fork.store, path=path, mode="r+")
    array[selection] = np.asarray(block)
    return fork._changes()


def _region_starts(region: tuple | None, shape: tuple[int, ...]) -> list[int]:
    if region is None:
        return [0] * len(shape)
    starts = []
    for dim, part in enumerate(region):
        start = part.start if isinstance(part, slice) else part
        starts.append(0 if start is None else int(start) + (shape[dim] if start < 0 else 0))
    return starts


def _check_alignment(path: str, block_chunks, target_chunks, starts) -> None:
    """Refuses blocks that share a target chunk (their writes would race)."""
    for dim, (sizes, chunk, start) in enumerate(zip(block_chunks, target_chunks, starts)):
        edge = start
        for size in sizes[:-1]:
            edge += size
            if edge % chunk:
                raise ValueError(
                    f"the dask chunks of `{path}` along dimension {dim} ({sizes}) would make two "
                    f"tasks write one chunk of {chunk} elements (a block ends at {edge}): "
                    f"rechunk the source so its blocks cover whole chunks, e.g. "
                    f"`source.rechunk({{{dim}: {chunk}}})`"
                )


def store_dask(
    session: Session,
    sources: Sequence[Any],
    targets: Sequence[zarr.Array],
    regions: Sequence[tuple | None] | None = None,
    **compute_kwargs: Any,
) -> dict[str, int]:
    """Writes each dask array of `sources` into the zarr array of `targets` (opened on
    `session.store`), at `regions` (tuples of slices; `None` for the whole array), with one
    task per block on dask's current scheduler (`compute_kwargs` go to `dask.compute`).
    Merges the tasks' changes into `session` (not committed) and returns the merge counts."""
    import dask

    if session.read_only:
        raise ForkError("store_dask writes into a writable session")
    regions = list(regions) if regions is not None else [None] * len(sources)
    if not len(sources) == len(targets) == len(regions):
        raise ValueError("give as many sources, targets and regions")
    fork = session.fork()
    repository, ticket = fork._repository, fork._ticket
    tasks = []
    write = dask.delayed(_write_block, pure=False)
    for source, target, region in zip(sources, targets, regions):
        starts = _region_starts(region, target.shape)
        _check_alignment(target.path, source.chunks, target.chunks, starts)
        offsets = [
            list(itertools.accumulate(sizes, initial=start))
            for sizes, start in zip(source.chunks, starts)
        ]
        blocks = source.to_delayed()
        for index in np.ndindex(*source.numblocks):
            selection = tuple(
                slice(offsets[d][i], offsets[d][i + 1]) for d, i in enumerate(index)
            )
            tasks.append(write(repository, ticket, target.path, selection, blocks[index]))
    changes = dask.compute(*tasks, **compute_kwargs)
    forks = [ForkSession(repository, ticket, c) for c in changes if c is not None]
    return session.merge(*forks)
