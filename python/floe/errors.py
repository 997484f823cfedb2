"""The exceptions floe raises. Every one is a `FloeError`; some also derive from the built-in
exception Python code expects in that situation (`ValueError` for an invalid key,
`KeyError`-like lookups are `NotFoundError`, a forked process gets a `RuntimeError`).
Messages say what happened and what to do."""


class FloeError(Exception):
    """Any error floe reports."""


class ConflictError(FloeError):
    """The branch moved and the session's changes conflict with the new commits: open a new
    session on the branch and redo the work (or merge by hand)."""


class CommitOutcomeUnknownError(FloeError):
    """A commit's outcome is unknown (the storage did not answer): the session refuses further
    changes until it is settled by committing again, which finds out what happened."""


class ForkError(FloeError):
    """A fork ticket or a worker's changes cannot be used: only the coordinator commits, and a
    worker's changes merge into the session that forked it."""


class InvalidKeyError(FloeError, ValueError):
    """A Zarr key or node path that cannot name anything in the hierarchy."""


class InvalidMetadataError(FloeError, ValueError):
    """A `zarr.json` document (or a change of it) floe refuses."""


class NothingToCommitError(FloeError):
    """`commit()` on a session without changes."""


class ReadOnlyError(FloeError):
    """A write to a read-only session."""


class NotFoundError(FloeError):
    """No such repository, branch, tag, snapshot or node."""


class ExpiredError(NotFoundError):
    """The version asked for was expired (`Repository.expire`) or deleted by garbage
    collection, or is condemned by it and cannot be named by a branch or tag; newer history is
    unaffected. `floe serve` answers 410 Gone for it."""


class AlreadyExistsError(FloeError):
    """The repository, branch or tag exists already."""


class InvalidArgumentError(FloeError, ValueError):
    """An argument floe cannot use (a version, a ref name, a location...)."""


class ImportRefusedError(FloeError):
    """An import that does not fit the repository; nothing was changed."""


class VirtualSourceError(FloeError):
    """A virtual chunk's source is not authorized, refused, changed or missing."""


class ForkedProcessError(FloeError, RuntimeError):
    """floe was used in the parent of this process before it forked; its I/O threads do not
    survive fork(): start processes with the 'spawn' or 'forkserver' method."""


class PicklingError(FloeError, TypeError):
    """An object that cannot be pickled, with the alternative to use."""
