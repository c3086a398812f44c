"""Group commit for PostgreSQL run creations: runs started at once share one statement.

A burst of starts (B2: 500 runs started by one ``asyncio.gather``) otherwise costs a statement,
a commit and a pool acquire per run, about a fifth of the burst. The queueing is
``_pg_group``'s; a lone start goes out as ``CREATE_RUN_ONE_TRIP``, several as one
``CREATE_RUN_BATCH``. A run the batch did not create (its idempotency key or id was taken, or,
on a retry, its first attempt had committed) is sent again alone on the same connection, which
says which: the key's existing run, the run itself, or a taken id.
"""

from __future__ import annotations

import asyncpg

from pyworkflow.exceptions import PyWorkflowError, StorageError
from pyworkflow.storage.postgres import _one_trip as one_trip
from pyworkflow.storage.postgres._group import RunOnConnection, WriteGroup
from pyworkflow.storage.postgres._query import PgQuery
from pyworkflow.storage.records import NewRun, RunRecord
from pyworkflow.storage.sql._json_text import encode
from pyworkflow.storage.sql._rows import first_event_values, idempotent_twin, new_run_values
from pyworkflow.storage.sql._statements import GET_RUN_BY_KEY, RUN_STATE

__all__ = ["CreateGroup"]

_CREATE_RUN = PgQuery(one_trip.CREATE_RUN_ONE_TRIP)
_CREATE_RUN_BATCH = PgQuery(one_trip.CREATE_RUN_BATCH)
_GET_RUN_BY_KEY = PgQuery(GET_RUN_BY_KEY)
_RUN_STATE = PgQuery(RUN_STATE)
Created = tuple[RunRecord, bool]


class CreateGroup(WriteGroup[NewRun, Created]):
    """Queues run creations and sends them in shared statements.

    Args:
        run: the storage's ``run`` (``_pg_group.RunOnConnection``).
        channel: the NOTIFY channel for ``runnable <run_id>``.
        url: the storage's masked URL, for errors.
        max_batches: batches in flight at once (at most the pool's size).
    """

    def __init__(self, run: RunOnConnection, channel: str, url: str, max_batches: int) -> None:
        super().__init__(run, max_batches)
        self._channel = channel
        self._url = url

    async def _execute(
        self, conn: asyncpg.Connection, writes: list[NewRun], retried: bool
    ) -> list[Created | BaseException]:
        if len(writes) == 1:
            return [await self._create_one(conn, writes[0], retried)]
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
                outcomes.append(await self._create_one(conn, new, retried))
        return outcomes

    async def _create_one(
        self, conn: asyncpg.Connection, run: NewRun, retried: bool
    ) -> Created | BaseException:
        record, values = new_run_values(run)
        params = {f"b_{name}": value for name, value in values.items()}
        params.update(one_trip.event_arrays(first_event_values(run)))
        params["b_now"] = run.now
        params["b_notify"] = record.lease_owner is None
        params["b_channel"] = self._channel
        if await _CREATE_RUN.fetchrow(conn, params) is not None:
            return record, True
        if run.idempotency_key is not None:
            row = await _GET_RUN_BY_KEY.fetchrow(conn, {"b_key": run.idempotency_key})
            if row is not None and not (retried and row["run_id"] == run.run_id):
                try:
                    return idempotent_twin(run, row), False
                except PyWorkflowError as exc:  # another workflow's key: this start's error
                    return exc
        if retried and await _RUN_STATE.fetchrow(conn, {"b_run_id": run.run_id}):
            return record, True  # our first attempt committed before the connection broke
        return StorageError(f"PostgreSQL storage {self._url}: run id {run.run_id!r} is taken")
