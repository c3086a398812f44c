"""Retention: deleting ended runs, with their event logs, in bounded batches.

One loop shared by the three ways in: ``prune_runs()`` (the API), ``pyworkflow runs prune``
(the CLI, through the API) and the local executor's background pruning
(``configure(retention=...)``, ``pyworkflow worker run --retention``). Each batch is one call of
``Storage.delete_ended_runs``, one transaction, so a large backlog never holds a long lock on a
database that workers share.
"""

from __future__ import annotations

from collections.abc import Callable

from pyworkflow.storage.protocol import Storage

__all__ = ["DEFAULT_BATCH_SIZE", "delete_ended_runs"]

DEFAULT_BATCH_SIZE = 500
"""Runs per transaction: a batch takes tens of milliseconds on SQLite and PostgreSQL."""


async def delete_ended_runs(
    storage: Storage,
    *,
    ended_before: float,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Delete every run that ended before ``ended_before``, ``batch_size`` runs at a time.

    Args:
        storage: an opened storage.
        ended_before: epoch seconds; runs whose ``completed_at`` is earlier go.
        batch_size: runs per call of ``Storage.delete_ended_runs`` (one transaction).
        on_progress: called after each batch that deleted something, with the total so far.

    Returns:
        How many runs were deleted. The bound is fixed, and runs that end meanwhile end after
        it, so the loop finishes however busy the database is.
    """
    deleted = 0
    while True:
        gone = await storage.delete_ended_runs(ended_before=ended_before, limit=batch_size)
        deleted += len(gone)
        if gone and on_progress is not None:
            on_progress(deleted)
        if len(gone) < batch_size:
            return deleted
