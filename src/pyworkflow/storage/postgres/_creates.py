"""Group commit for PostgreSQL run creations: runs started at once share one statement.

A burst of starts (B2: 500 runs started by one ``asyncio.gather``) otherwise costs a statement,
a commit and a pool acquire per run, about a fifth of the burst. The queueing is ``_group``'s;
a lone start runs the shared script (``storage/sql/_scripts/runs.py``), which PostgreSQL's
session sends as ``CREATE_RUN_ONE_TRIP``; several go out as one ``CREATE_RUN_BATCH``, built
from the same values (``_params.new_run_values``). A run the batch did not create (its
idempotency key or id was taken, or, on a retry, its first attempt had committed) goes through
the script alone on the same connection, which says which: the key's existing run, the run
itself, or a taken id.
"""

from __future__ import annotations

import asyncpg

from pyworkflow.storage.postgres import _one_trip as one_trip
from pyworkflow.storage.postgres._group import RunOnConnection, WriteGroup, outcome
from pyworkflow.storage.postgres._session import PgSession, compiled
from pyworkflow.storage.records import NewRun, RunRecord
from pyworkflow.storage.sql._params import encode, first_event_values, new_run_values
from pyworkflow.storage.sql._scripts import runs

__all__ = ["CreateGroup"]

_CREATE_RUN_BATCH = compiled(one_trip.CREATE_RUN_BATCH)
Created = tuple[RunRecord, bool]


class CreateGroup(WriteGroup[NewRun, Created]):
    """Queues run creations and sends them in shared statements.

    Args:
        run: the storage's ``run`` (``_group.RunOnConnection``).
        channel: the NOTIFY channel for ``runnable <run_id>``.
        max_batches: batches in flight at once (at most the pool's size).
    """

    def __init__(self, run: RunOnConnection, channel: str, max_batches: int) -> None:
        super().__init__(run, max_batches)
        self._channel = channel

    async def _execute(
        self, conn: asyncpg.Connection, writes: list[NewRun], retried: bool
    ) -> list[Created | BaseException]:
        db = PgSession(conn, retried, self._channel)
        if len(writes) == 1:
            return [await outcome(runs.create_run(db, writes[0]))]
        made = [new_run_values(new) for new in writes]
        batch = {
            "b_runs": encode([values for _, values in made]),
            "b_events": encode(
                [row for new in writes for row in first_event_values(new, encoded=False)]
            ),
            "b_channel": self._channel,
        }
        created = {row["run_id"] for row in await _CREATE_RUN_BATCH.fetch(conn, batch)}
        outcomes: list[Created | BaseException] = []
        for new, (record, _) in zip(writes, made, strict=True):
            if new.run_id in created:
                outcomes.append((record, True))
            else:  # a taken key or id, or committed by a lost first attempt: alone says which
                outcomes.append(await outcome(runs.create_run(db, new)))
        return outcomes
