"""Storage errors: a backend failed; the driver's own error is chained as the cause."""

from __future__ import annotations

from pyworkflow._errors.base import PyWorkflowError

__all__ = [
    "ConcurrencyConflictError",
    "CorruptRecordError",
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


def _excerpt(text: str) -> str:
    """The start of a stored value, quoted, short enough for a log line or a status line."""
    return repr(text) if len(text) <= 60 else repr(text[:60]) + "..."


# Their public home: type paths in logged errors, reprs and pickles name it, as before the split.
for _cls in (
    ConcurrencyConflictError,
    CorruptRecordError,
    SchemaVersionError,
    StorageError,
    StorageUnavailableError,
):
    _cls.__module__ = "pyworkflow.exceptions"
