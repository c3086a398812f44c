"""Group commit for PostgreSQL appends: concurrent runs' turns share one statement and one commit.

The queueing is ``_pg_group``'s; this module says how appends are written. A lone append (B1)
goes out as ``APPEND_ONE`` (cheaper than a batch of one); several as one ``APPEND_BATCH``.

Appends that end their runs reach other runs' rows too (children, parent: ``_pg_effects``): a
batch holding one goes out as ``APPEND_BATCH_ENDING``, which does that as well (one ending per
run, and B2's runs all end: endings need the shared commit as much as steps do); a batch of
plain appends keeps the smaller ``APPEND_BATCH``. An append that creates hooks or runs goes
alone, whatever the queue holds, as one ``append_with_effects`` statement.

A write the statement refused (stale seq or lease) gets its own error.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from pyworkflow.storage.postgres import _effects as effects
from pyworkflow.storage.postgres import _one_trip as one_trip
from pyworkflow.storage.postgres._group import RunOnConnection, WriteGroup
from pyworkflow.storage.postgres._query import PgQuery
from pyworkflow.storage.records import AppendResult, AppendWrite, EventRecord, RunRecord
from pyworkflow.storage.sql._decoding import events_from_rows, run_from_row
from pyworkflow.storage.sql._rows import (
    append_params,
    append_refused,
    appended_event_values,
    effect_params,
    encode,
    ends_run,
    plain_append,
)
from pyworkflow.storage.sql._statements import GET_RUN, LOAD_EVENTS, RUN_STATE

__all__ = ["AppendGroup"]

_APPEND_BATCH = PgQuery(one_trip.APPEND_BATCH)
_APPEND_ONE = PgQuery(one_trip.APPEND_ONE)
_APPEND_BATCH_ENDING = PgQuery(effects.APPEND_BATCH_ENDING)
_APPEND_WITH_EFFECTS = {
    (with_hooks, with_runs): PgQuery(effects.append_with_effects(with_hooks, with_runs))
    for with_hooks in (False, True)
    for with_runs in (False, True)
}
_GET_RUN = PgQuery(GET_RUN.stmt)
_RUN_STATE = PgQuery(RUN_STATE)
_LOAD_EVENTS = PgQuery(LOAD_EVENTS.stmt)

Outcome = AppendResult | BaseException


class AppendGroup(WriteGroup[AppendWrite, AppendResult]):
    """Queues appends and sends them in shared statements.

    Args:
        run: the storage's ``run`` (``_pg_group.RunOnConnection``).
        channel: the NOTIFY channel for ``ended <run_id>``.
        max_batches: batches in flight at once (at most the pool's size).
    """

    def __init__(self, run: RunOnConnection, channel: str, max_batches: int) -> None:
        super().__init__(run, max_batches)
        self._channel = channel

    def _goes_alone(self, write: AppendWrite) -> bool:
        # A statement of its own (module docstring), not counted against the batches: such
        # appends are few, and the pool bounds them.
        return bool(write.hooks or write.new_runs)

    async def _execute(
        self, conn: asyncpg.Connection, writes: list[AppendWrite], retried: bool
    ) -> list[Outcome]:
        params = [append_params(write) for write in writes]
        if len(writes) == 1:
            return [await self._execute_one(conn, writes[0], params[0], retried)]
        ends = [ends_run(write) for write in writes]
        ending = any(ends)
        for write, p, end in zip(writes, params, ends, strict=True):
            p["b_notify"] = end
            if ending:
                p.update(effect_params(write))
        batch: dict[str, Any] = {
            "b_writes": encode(params),
            "b_events": encode(
                [row for write in writes for row in appended_event_values(write, encoded=False)]
            ),
            "b_channel": self._channel,
        }
        if ending:
            batch["b_run_ids"] = [w.run_id for w in writes]
            batch["b_ending_ids"] = [w.run_id for w, end in zip(writes, ends, strict=True) if end]
        query = _APPEND_BATCH_ENDING if ending else _APPEND_BATCH
        accepted = {row["run_id"]: row for row in await query.fetch(conn, batch)}
        outcomes: list[Outcome] = []
        for write, p in zip(writes, params, strict=True):
            done = accepted.get(write.run_id)
            if done is not None:
                outcomes.append(
                    AppendResult(p["b_last_seq"], done["signal_seq"], done["cancel_requested"])
                )
            elif ending:  # stale, or left out for a relative's end: alone says which
                outcomes.append(await self._execute_one(conn, write, p, retried))
            else:
                outcomes.append(await _refused(conn, write, p["b_last_seq"], retried))
        return outcomes

    async def _execute_one(
        self, conn: asyncpg.Connection, write: AppendWrite, params: dict[str, Any], retried: bool
    ) -> Outcome:
        params.update(one_trip.event_arrays(appended_event_values(write)))
        params["b_notify"] = ends_run(write)
        params["b_channel"] = self._channel
        query = _APPEND_ONE
        if not plain_append(write):
            params.update(effect_params(write))
            params.update(effects.effect_arrays(write))
            query = _APPEND_WITH_EFFECTS[bool(write.hooks), bool(write.new_runs)]
        row = await query.fetchrow(conn, params)
        if row is None:
            return await _refused(conn, write, params["b_last_seq"], retried)
        return AppendResult(params["b_last_seq"], row["signal_seq"], row["cancel_requested"])


async def _refused(
    conn: asyncpg.Connection, write: AppendWrite, last_seq: int, retried: bool
) -> Outcome:
    """Why a write got no row (a cold path), or its result if a lost attempt had committed.

    A write retried on a new connection (the first one broke with the write in flight) may
    find its own first attempt committed. Only the stored run and events can prove it: the
    run's seq is where the write would have put it, its lease is as the write left it, and the
    events after the expected seq are the write's own. A seq alone proves nothing: a worker
    that took the run over meanwhile may have logged the same number of events, and the
    writer must then learn that it lost the run, not drive on without its lease.
    """
    if retried:
        current = await _GET_RUN.fetchrow(conn, {"b_run_id": write.run_id})
        if current is not None and current["last_seq"] == last_seq:
            run = run_from_row(current)
            after = {"b_run_id": write.run_id, "b_after": write.expected_seq}
            stored = events_from_rows(write.run_id, await _LOAD_EVENTS.fetch(conn, after))
            if _is_own_write(write, run, stored):
                return AppendResult(last_seq, run.signal_seq, run.cancel_requested)
    return append_refused(write, await _RUN_STATE.fetchrow(conn, {"b_run_id": write.run_id}))


def _is_own_write(write: AppendWrite, run: RunRecord, stored: list[EventRecord]) -> bool:
    """Whether ``run`` and its ``stored`` events (after the expected seq) are ``write``'s."""
    keeps_lease = write.lease_expires_at is not None
    if run.lease_owner != (write.owner if keeps_lease else None):
        return False
    if len(stored) != len(write.events):
        return False
    return all(
        s.type is w.type and encode(s.payload) == encode(w.payload)
        for s, w in zip(stored, write.events, strict=True)
    )
