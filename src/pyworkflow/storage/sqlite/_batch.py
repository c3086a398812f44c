"""SQLite's group commit: a batch of jobs in one ``BEGIN IMMEDIATE ... COMMIT``, and its errors.

The database thread (``_thread.py``) hands each batch of queued jobs to :func:`run_batch`. The
batch runs in one transaction, each write succeeding or failing on its own: a job's error (a
stale append, say) undoes only that job's writes and reaches only its caller, while the others
share one durable commit. A failed COMMIT fails every job of the batch. Batches of reads only
run without a transaction. Driver errors become StorageError here (:func:`translate`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any

import sqlalchemy as sa

from pyworkflow.exceptions import PyWorkflowError, StorageError
from pyworkflow.storage.sqlite._thread import Job, deliver_all, run_alone

__all__ = ["run_batch", "translate"]


def translate(exc: BaseException, url: str) -> BaseException:
    """Driver errors become StorageError (cause chained); ours and programming errors pass."""
    if isinstance(exc, PyWorkflowError) or not isinstance(
        exc, sqlite3.Error | sa.exc.SQLAlchemyError
    ):
        return exc
    detail = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    error = StorageError(f"SQLite storage {url}: {type(detail).__name__}: {detail}")
    error.__cause__ = exc
    return error


def run_batch(conn: sa.Connection, raw: sqlite3.Connection, batch: list[Job], url: str) -> None:
    """Run jobs in one ``BEGIN IMMEDIATE ... COMMIT``; each fails or succeeds alone; deliver each.

    Jobs first run back to back. A job that fails before writing anything (a stale append, an
    idempotency conflict: the common failures) needs no undo. Only when one fails after it
    wrote is the transaction rolled back and the batch run again with a SAVEPOINT around each
    job, so that failure undoes its own writes alone. Savepoints cost two statements per job,
    a third of an append, so they are paid only when needed.
    """
    # A caller cancelled before its job started gets nothing written (a benign racy read).
    batch = [job for job in batch if not job.future.cancelled()]
    if not any(job.kind == Job.WRITE for job in batch):
        deliver_all(batch, [run_alone(conn, job, url, translate) for job in batch])
        return
    try:
        raw.execute("BEGIN IMMEDIATE")
        outcomes = _run_jobs(conn, raw, batch, url, isolate=False)
        if outcomes is None:
            raw.execute("ROLLBACK")
            raw.execute("BEGIN IMMEDIATE")
            outcomes = _run_jobs(conn, raw, batch, url, isolate=True)
        assert outcomes is not None
        if len(batch) == 1 and not outcomes[0][0]:
            raw.execute("ROLLBACK")
        else:
            raw.execute("COMMIT")
    except Exception as exc:  # BEGIN, a savepoint or COMMIT failed: nothing of the batch holds
        if raw.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                raw.execute("ROLLBACK")
        outcomes = [(False, translate(exc, url)) for _ in batch]  # one exception per caller
    deliver_all(batch, outcomes)


def _run_jobs(
    conn: sa.Connection, raw: sqlite3.Connection, batch: list[Job], url: str, *, isolate: bool
) -> list[tuple[bool, Any]] | None:
    """Each job's outcome; None if one failed after writing and ``isolate`` is off."""
    outcomes: list[tuple[bool, Any]] = []
    for job in batch:
        assert job.fn is not None
        if isolate:
            raw.execute("SAVEPOINT job")
        changes = raw.total_changes
        try:
            value = job.fn(conn)
        except Exception as exc:
            if isolate:
                raw.execute("ROLLBACK TO job")
            elif raw.total_changes != changes and len(batch) > 1:
                return None
            outcomes.append((False, translate(exc, url)))
        else:
            outcomes.append((True, value))
        if isolate:
            raw.execute("RELEASE job")
    return outcomes
