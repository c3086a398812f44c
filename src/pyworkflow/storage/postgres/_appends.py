"""Group commit for PostgreSQL appends: concurrent runs' turns share one statement and one commit.

The queueing is ``_group``'s; this module says how a batch of appends is written. A lone append
(B1) runs the shared append script (``storage/sql/_scripts/appends.py``) on PostgreSQL's
session, which sends it as ``APPEND_ONE`` (cheaper than a batch of one); several go out as one
``APPEND_BATCH``, built from the same values (``_params.append_params``) and the same UPDATE
(``appends.append_update``).

Appends that end their runs reach other runs' rows too (children, parent: ``_effects``): a
batch holding one goes out as ``APPEND_BATCH_ENDING``, which does that as well (one ending per
run, and B2's runs all end: endings need the shared commit as much as steps do); a batch of
plain appends keeps the smaller ``APPEND_BATCH``. An append that creates hooks or runs goes
alone, whatever the queue holds, through the script.

A write the statement refused (stale seq or lease) gets its own error, from the script's
refusal path (``appends.refused``), which also recognises a retried write that had committed.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from pyworkflow.storage.postgres import _effects as effects
from pyworkflow.storage.postgres import _one_trip as one_trip
from pyworkflow.storage.postgres._group import RunOnConnection, WriteGroup, outcome
from pyworkflow.storage.postgres._session import PgSession, compiled
from pyworkflow.storage.records import AppendResult, AppendWrite
from pyworkflow.storage.sql._params import (
    append_params,
    appended_event_values,
    effect_params,
    encode,
    ends_run,
)
from pyworkflow.storage.sql._scripts import appends

__all__ = ["AppendGroup"]

_APPEND_BATCH = compiled(one_trip.APPEND_BATCH)
_APPEND_BATCH_ENDING = compiled(effects.APPEND_BATCH_ENDING)

Outcome = AppendResult | BaseException


class AppendGroup(WriteGroup[AppendWrite, AppendResult]):
    """Queues appends and sends them in shared statements.

    Args:
        run: the storage's ``run`` (``_group.RunOnConnection``).
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
        db = PgSession(conn, retried, self._channel)
        if len(writes) == 1:
            return [await outcome(appends.append(db, writes[0]))]
        params = [append_params(write) for write in writes]
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
                outcomes.append(await outcome(appends.append(db, write)))
            else:
                outcomes.append(await outcome(appends.refused(db, write)))
        return outcomes
