"""Storage errors: a backend failed; the driver's own error is chained as the cause."""

from __future__ import annotations

from collections.abc import Sequence

from pyworkflow._errors.base import PyWorkflowError

__all__ = [
    "ConcurrencyConflictError",
    "CopyConflictError",
    "CorruptRecordError",
    "RunsChangedDuringCopyError",
    "SchemaVersionError",
    "StorageError",
    "StorageUnavailableError",
]


class StorageError(PyWorkflowError):
    """A storage backend failed; the driver's exception is chained as ``__cause__``."""


class SchemaVersionError(StorageError):
    """The database schema is older or newer than this version of pyworkflow expects."""


class StorageUnavailableError(StorageError):
    """The database cannot be reached: refused, down, restarting, or the connection dropped.

    Raised after the storage's own reconnection attempts ran out; the message names the URL
    (password masked) and what to check.

    Attributes:
        url: the database, password masked.
    """

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(f"cannot reach the database at {url}: {detail}")
        self.url = url


class ConcurrencyConflictError(StorageError):
    """An append lost the optimistic check: another writer advanced the run or took its lease.

    Attributes:
        run_id: the run.
        expected_seq: the sequence number the writer expected to follow.
    """

    def __init__(self, run_id: str, expected_seq: int, reason: str) -> None:
        self.run_id = run_id
        self.expected_seq = expected_seq
        super().__init__(f"append to run {run_id!r} after seq {expected_seq} refused: {reason}")


class CorruptRecordError(StorageError):
    """A stored value that cannot be read back: not JSON, or not of the shape it must have.

    Damage done outside pyworkflow (a flipped byte, a torn write, a hand edit). A run whose
    record or log cannot be read is failed with this error as its reason, never retried.

    Attributes:
        table: the table, e.g. ``"runs"``, ``"events"``, ``"hooks"``.
        run_id: the run the row belongs to.
        column: the column, e.g. ``"args"``, ``"payload"``.
        value: the stored value, cut to its first 200 characters.
        seq: the event's ``seq``, for a row of ``events``; None otherwise.
    """

    def __init__(
        self,
        table: str,
        run_id: str,
        column: str,
        value: object,
        reason: str,
        *,
        seq: int | None = None,
    ) -> None:
        self.table, self.run_id, self.column, self.seq = table, run_id, column, seq
        text = value if isinstance(value, str) else repr(value)
        self.value = text if len(text) <= 200 else text[:200] + "..."
        where = "" if seq is None else f" (seq {seq})"
        super().__init__(
            f"corrupt {table}.{column} of run {run_id!r}{where}: {reason}; "
            f"stored value {_excerpt(text)}"
        )


class CopyConflictError(StorageError):
    """A copy of runs refused by its destination, which already holds some of them.

    Raised before anything is written (``pyworkflow.storage.copy_runs``, ``pyworkflow db
    copy``): the destination has runs with the same ids, idempotency keys or hook tokens (a
    second copy into it, or another system's runs), or a run the copy wrote moved on there
    meanwhile (a worker already drives it).

    Attributes:
        url: the destination, password masked.
        run_ids: the runs in question (all of those found; the message names the first few).
        reason: what about them.
    """

    def __init__(self, url: str, run_ids: Sequence[str], reason: str) -> None:
        self.url, self.run_ids, self.reason = url, list(run_ids), reason
        super().__init__(f"cannot copy runs to {url}: {_some(self.run_ids)} {reason}")


class RunsChangedDuringCopyError(StorageError):
    """Runs kept changing in the source while they were being copied, so they were not copied.

    A run that changes during a copy (its log grew, a hook was delivered) is read and written
    again; one still changing after a few rounds is taken back out of the destination, and
    the whole copy with it, and this is raised: stop the workers on the source and copy again.

    Attributes:
        url: the source, password masked.
        run_ids: the runs that kept changing.
    """

    def __init__(self, url: str, run_ids: Sequence[str]) -> None:
        self.url, self.run_ids = url, list(run_ids)
        super().__init__(
            f"runs kept changing in {url} during the copy: {_some(self.run_ids)}; nothing was "
            "copied. Stop the workers that use it (a run in flight moves on) and copy again"
        )


def _some(run_ids: Sequence[str], shown: int = 5) -> str:
    """``run 'a'`` / ``runs 'a', 'b' and 3 more``: the first few ids of a list, quoted."""
    quoted = ", ".join(repr(r) for r in run_ids[:shown])
    more = f" and {len(run_ids) - shown} more" if len(run_ids) > shown else ""
    return f"run{'' if len(run_ids) == 1 else 's'} {quoted}{more}"


def _excerpt(text: str) -> str:
    """The start of a stored value, quoted, short enough for a log line or a status line."""
    return repr(text) if len(text) <= 60 else repr(text[:60]) + "..."


# Their public home: type paths in logged errors, reprs and pickles name it, as before the split.
for _name in __all__:
    globals()[_name].__module__ = "pyworkflow.exceptions"
