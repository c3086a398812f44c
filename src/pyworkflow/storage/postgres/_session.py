"""PostgreSQL's session: the shared scripts on an asyncpg connection, each write one round trip.

A script runs on a pooled connection outside any transaction block, so every statement commits
on its own (``PgConnections.run``). That is safe because each write a script makes is one
statement: the primitives run single statements, and every step that runs several write
statements by default (``sql.COMPOSITE_STEPS``) is overridden here by one statement composed
of the same pieces (``_one_trip.py``, ``_effects.py``): one round trip, one commit, and the
``NOTIFY`` of the runs it made due or ended in the same commit. Claims and sweeps of due runs
lock their candidates with ``FOR UPDATE SKIP LOCKED``, so concurrent workers split the runs
without waiting on each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
import sqlalchemy as sa

from pyworkflow.events import EventType
from pyworkflow.storage.postgres import _effects as effects
from pyworkflow.storage.postgres import _one_trip as one_trip
from pyworkflow.storage.postgres._query import PgQuery, compile_once_off
from pyworkflow.storage.records import AppendWrite, NewRun, RunRecord
from pyworkflow.storage.sql import Row, Session
from pyworkflow.storage.sql._decoding import claimed_runs
from pyworkflow.storage.sql._params import (
    appended_event_values,
    ends_run,
    event_values,
    first_event_values,
)

__all__ = ["PgSession", "compiled"]

# Compiled once per statement (statements are module constants or cached per shape).
_COMPILED: dict[sa.Executable, PgQuery] = {}


def compiled(statement: sa.Executable) -> PgQuery:
    """``statement`` compiled for asyncpg, once."""
    query = _COMPILED.get(statement)
    if query is None:
        query = _COMPILED[statement] = PgQuery(statement)
    return query


_APPEND_ONE = compiled(one_trip.APPEND_ONE)
_APPEND_WITH_EFFECTS = {
    (with_hooks, with_runs): compiled(effects.append_with_effects(with_hooks, with_runs))
    for with_hooks in (False, True)
    for with_runs in (False, True)
}
_CREATE_RUN = compiled(one_trip.CREATE_RUN_ONE_TRIP)
_REOPEN = compiled(one_trip.REOPEN_ONE_TRIP)
_DELIVER = compiled(effects.DELIVER_HOOK_NOTIFYING)
_PRUNE = compiled(one_trip.PRUNE_ONE_TRIP)
_ANNOUNCE = compiled(one_trip.ANNOUNCE)
_CLAIM = {
    (by_names, by_ids, due_only, suspects, by_queues): compiled(
        one_trip.claim_one_trip(
            by_names, by_ids, due_only=due_only, suspects=suspects, by_queues=by_queues
        )
    )
    for by_names in (False, True)
    for by_ids in (False, True)
    for due_only in (False, True)
    for suspects in (None, False, True)
    for by_queues in (False, True)
}
_TAKE_DUE = {by_names: compiled(one_trip.take_due_one_trip(by_names)) for by_names in (False, True)}


class PgSession(Session):
    """An asyncpg connection of the pool, for one script (or one batch of them).

    Args:
        conn: the pooled connection.
        retried: the script runs again after the previous connection broke mid-statement.
        channel: the NOTIFY channel of the storage's schema.
    """

    dialect = "postgresql"

    __slots__ = ("_channel", "_conn", "retried")

    def __init__(self, conn: asyncpg.Connection, retried: bool, channel: str) -> None:
        self._conn = conn
        self.retried = retried
        self._channel = channel

    # --- primitives ---------------------------------------------------------------------------

    async def first(self, statement: sa.Executable, params: Mapping[str, Any]) -> Row | None:
        """The first row of a statement, or None."""
        row: Row | None = await compiled(statement).fetchrow(self._conn, params)
        return row

    async def all(self, statement: sa.Executable, params: Mapping[str, Any]) -> list[Row]:
        """Every row of a statement."""
        return await compiled(statement).fetch(self._conn, params)

    async def execute(self, statement: sa.Executable, params: Mapping[str, Any]) -> int:
        """Run a statement that returns no rows; how many rows it changed."""
        return await compiled(statement).execute(self._conn, params)

    async def insert(self, statement: sa.Executable, rows: list[dict[str, Any]]) -> None:
        """Run an INSERT once per row (asyncpg's ``executemany``)."""
        query = compiled(statement)
        await self._conn.executemany(query.sql, [query.args(row) for row in rows])

    async def query(self, statement: sa.Executable) -> list[Row]:
        """Every row of a statement built for one call."""
        sql, args = compile_once_off(statement)
        return list(await self._conn.fetch(sql, *args))

    # --- steps, each one statement ------------------------------------------------------------

    async def advance_run(self, write: AppendWrite, params: dict[str, Any]) -> Row | None:
        """The append and everything with it in one statement, ``ended <run_id>`` notified."""
        params.update(one_trip.event_arrays(appended_event_values(write)))
        params["b_notify"] = ends_run(write)
        params["b_channel"] = self._channel
        query = _APPEND_ONE
        if "b_ends" in params:  # not plain: hooks, runs, or an end that reaches relatives
            params.update(effects.effect_arrays(write))
            query = _APPEND_WITH_EFFECTS[bool(write.hooks), bool(write.new_runs)]
        row: Row | None = await query.fetchrow(self._conn, params)
        return row

    async def insert_run(self, run: NewRun, record: RunRecord, values: dict[str, Any]) -> bool:
        """The run's row and its first events in one statement; ``runnable`` if unleased."""
        params = {f"b_{name}": value for name, value in values.items()}
        params.update(one_trip.event_arrays(first_event_values(run)))
        params["b_now"] = run.now
        params["b_notify"] = record.lease_owner is None
        params["b_channel"] = self._channel
        return await _CREATE_RUN.fetchrow(self._conn, params) is not None

    async def reopen_run(self, run_id: str, now: float, payload: dict[str, Any]) -> Row | None:
        """The reopened row and its WORKFLOW_RESUMED in one statement, workers woken."""
        (resumed,) = event_values(run_id, 0, [(EventType.WORKFLOW_RESUMED, payload)], now)
        params = {
            "b_run_id": run_id,
            "b_now": now,
            "b_payload": resumed["payload"],
            "b_channel": self._channel,
        }
        row = await _REOPEN.fetchrow(self._conn, params)
        return None if row is None else tuple(row)[:-1]  # without the notification's column

    async def deliver(self, params: dict[str, Any]) -> Row | None:
        """The hook's payload and its run's signal in one statement, a worker woken."""
        row = await _DELIVER.fetchrow(self._conn, {**params, "b_channel": self._channel})
        return None if row is None else tuple(row)[:-1]  # without the notification's column

    async def claim(
        self, params: dict[str, Any], *, due_only: bool, suspects: bool | None
    ) -> list[RunRecord]:
        """One statement that locks its candidates (``FOR UPDATE SKIP LOCKED``) and leases them."""
        key = ("b_names" in params, "b_ids" in params, due_only, suspects, "b_queues" in params)
        query = _CLAIM[key]
        return claimed_runs(await query.fetch(self._conn, params))

    async def take_due(self, params: dict[str, Any]) -> list[Row]:
        """One statement that locks the due runs it takes (``FOR UPDATE SKIP LOCKED``)."""
        return await _TAKE_DUE["b_names" in params].fetch(self._conn, params)

    async def delete_ended(self, params: dict[str, Any]) -> list[str]:
        """The ended runs and every row of theirs in one statement (``PRUNE_ONE_TRIP``)."""
        return [row[0] for row in await _PRUNE.fetch(self._conn, params)]

    async def wake(self, statement: sa.Update, params: dict[str, Any]) -> int:
        """The outside write, announcing ``runnable <run_id>`` for each run it made due."""
        query = compiled(one_trip.notifying(statement))
        return len(await query.fetch(self._conn, {**params, "b_channel": self._channel}))

    async def announce(self, run_id: str) -> None:
        """``NOTIFY`` ``runnable <run_id>``: workers listening look at storage now."""
        await _ANNOUNCE.fetch(self._conn, {"b_channel": self._channel, "b_run_id": run_id})
