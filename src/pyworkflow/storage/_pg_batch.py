"""Group commit for PostgreSQL appends: concurrent runs' turns share one statement and one commit.

Why: each append alone is a round trip and a commit, and on a small machine PostgreSQL's CPU per
commit, not the disk, bounds how many steps per second concurrent runs reach (B2 on PostgreSQL).
So appends queue here; up to ``max_batches`` batches are in flight at once (each on a pooled
connection), and whatever queued meanwhile goes out together as one ``APPEND_BATCH`` statement.
A lone append (B1) leaves at once from its caller's task, as a statement of its own
(``APPEND_ONE``, cheaper than a batch of one).

Appends that end their runs reach other runs' rows too (children, parent: ``_pg_effects``): a
batch holding one goes out as ``APPEND_BATCH_ENDING``, which does that as well (one ending per
run, and B2's runs all end: endings need the shared commit as much as steps do); a batch of
plain appends keeps the smaller ``APPEND_BATCH``. An append that creates hooks or runs goes
alone, whatever the queue holds, as one ``append_with_effects`` statement.

Each write still succeeds or fails on its own: a write the statement refused (stale seq or
lease) gets its own error; a statement that fails as a whole (which a correct write never
causes) is retried one write at a time, so only the faulty write fails. A batch holds at most
one write per run: a second write of the same run waits for the next batch, after the first
has committed.
"""

from __future__ import annotations

import asyncio
import copy
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from pyworkflow.exceptions import PyWorkflowError, StorageError, StorageUnavailableError
from pyworkflow.storage import _pg_effects
from pyworkflow.storage import _pg_statements as one_trip
from pyworkflow.storage._pg_query import PgQuery
from pyworkflow.storage.protocol import AppendResult, AppendWrite
from pyworkflow.storage.rows import (
    append_params,
    append_refused,
    appended_event_values,
    effect_params,
    ends_run,
    plain_append,
    run_from_row,
)
from pyworkflow.storage.statements import APPEND_FIELDS, GET_RUN, RUN_STATE

__all__ = ["AppendGroup"]

_APPEND_BATCH = PgQuery(one_trip.APPEND_BATCH)
_APPEND_ONE = PgQuery(one_trip.APPEND_ONE)
_APPEND_BATCH_ENDING = PgQuery(_pg_effects.APPEND_BATCH_ENDING)
_APPEND_WITH_EFFECTS = {
    (with_hooks, with_runs): PgQuery(_pg_effects.append_with_effects(with_hooks, with_runs))
    for with_hooks in (False, True)
    for with_runs in (False, True)
}
_GET_RUN = PgQuery(GET_RUN.stmt)
_RUN_STATE = PgQuery(RUN_STATE)
_MAX_BATCH = 200

Outcome = AppendResult | BaseException
RunOnConnection = Callable[[Callable[[asyncpg.Connection, bool], Awaitable[Any]]], Awaitable[Any]]


class AppendGroup:
    """Queues appends and sends them in shared statements.

    Args:
        run: the storage's ``_run``: calls a function on a pooled connection, retrying while the
            connection is lost (the function learns whether it is a retry).
        channel: the NOTIFY channel for ``ended <run_id>``.
        max_batches: batches in flight at once (at most the pool's size).
    """

    def __init__(self, run: RunOnConnection, channel: str, max_batches: int) -> None:
        self._run = run
        self._channel = channel
        self._max_batches = max(1, max_batches)
        self._queue: deque[tuple[AppendWrite, asyncio.Future[AppendResult]]] = deque()
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, write: AppendWrite) -> AppendResult:
        """Append ``write`` in the next batch; its own result or error."""
        if write.hooks or write.new_runs:
            # A statement of its own (module docstring), not counted against the batches:
            # such appends are few, and the pool bounds them.
            (outcome,) = await self._send([write])
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        if not self._queue and self._in_flight < self._max_batches:
            # Nobody waiting: send it alone from the caller's task, with no hand-off.
            self._in_flight += 1
            try:
                (outcome,) = await self._send([write])
            finally:
                self._in_flight -= 1
                self._start_draining()
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        future: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()
        self._queue.append((write, future))
        self._start_draining()
        return await future

    def _start_draining(self) -> None:
        if self._queue and self._in_flight < self._max_batches:
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._drain(), name="pyworkflow-append")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._take()
                try:
                    outcomes = await self._send([write for write, _ in batch])
                except Exception as exc:  # a bug of ours: fail the batch, never leave it hanging
                    outcomes = [StorageError(f"append failed: {exc!r}") for _ in batch]
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue  # its caller was cancelled; the write may still have committed
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._in_flight -= 1

    def _take(self) -> list[tuple[AppendWrite, asyncio.Future[AppendResult]]]:
        """Up to ``_MAX_BATCH`` queued writes, one per run, in queue order."""
        batch: list[tuple[AppendWrite, asyncio.Future[AppendResult]]] = []
        later: list[tuple[AppendWrite, asyncio.Future[AppendResult]]] = []
        runs: set[str] = set()
        while self._queue and len(batch) < _MAX_BATCH:
            item = self._queue.popleft()
            (later if item[0].run_id in runs else batch).append(item)
            runs.add(item[0].run_id)
        self._queue.extendleft(reversed(later))
        return batch

    async def _send(self, writes: list[AppendWrite]) -> list[Outcome]:
        try:
            outcomes: list[Outcome] = await self._run(
                lambda conn, retried: self._execute(conn, writes, retried)
            )
            return outcomes
        except StorageUnavailableError as exc:  # no write of the batch can go through now
            return [copy.copy(exc) for _ in writes]
        except PyWorkflowError as exc:
            if len(writes) == 1:
                return [exc]
        # The statement failed as a whole: find the faulty write by sending each alone.
        outcomes = []
        for write in writes:
            outcomes.extend(await self._send([write]))
        return outcomes

    async def _execute(
        self, conn: asyncpg.Connection, writes: list[AppendWrite], retried: bool
    ) -> list[Outcome]:
        params = [append_params(write) for write in writes]
        if len(writes) == 1:
            return [await self._execute_one(conn, writes[0], params[0], retried)]
        ends = [ends_run(write) for write in writes]
        ending = any(ends)
        fields: dict[str, Any] = APPEND_FIELDS
        if ending:
            fields = _pg_effects.ENDING_FIELDS
            for write, p, end in zip(writes, params, ends, strict=True):
                p.update(effect_params(write), b_notify=end)
        batch: dict[str, Any] = {f"b_{name}": [p[f"b_{name}"] for p in params] for name in fields}
        batch["b_notify"] = ends
        batch["b_channel"] = self._channel
        if ending:
            batch["b_ending_ids"] = [w.run_id for w, end in zip(writes, ends, strict=True) if end]
        rows = [row for write in writes for row in appended_event_values(write)]
        for column, key in (
            ("run_id", "b_ev_run_ids"),
            ("seq", "b_ev_seqs"),
            ("type", "b_ev_types"),
            ("payload", "b_ev_payloads"),
            ("created_at", "b_ev_created"),
        ):
            batch[key] = [row[column] for row in rows]
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
            params.update(_pg_effects.effect_arrays(write))
            query = _APPEND_WITH_EFFECTS[bool(write.hooks), bool(write.new_runs)]
        row = await query.fetchrow(conn, params)
        if row is None:
            return await _refused(conn, write, params["b_last_seq"], retried)
        return AppendResult(params["b_last_seq"], row["signal_seq"], row["cancel_requested"])


async def _refused(
    conn: asyncpg.Connection, write: AppendWrite, last_seq: int, retried: bool
) -> Outcome:
    """Why a write got no row (a cold path), or its result if a lost attempt had committed."""
    if retried:
        current = await _GET_RUN.fetchrow(conn, {"b_run_id": write.run_id})
        if current is not None and current["last_seq"] == last_seq:
            stored = run_from_row(current)
            return AppendResult(last_seq, stored.signal_seq, stored.cancel_requested)
    return append_refused(write, await _RUN_STATE.fetchrow(conn, {"b_run_id": write.run_id}))
