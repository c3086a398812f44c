"""Firing many schedules on PostgreSQL: a tick's fires in one transaction of a few statements.

A tick fires every due schedule at once (``Storage.fire_schedules``). Fire by fire, the shared
script (``storage/sql/_scripts/schedules.py``) costs a few round trips each; here the whole
batch is three statements in one READ COMMITTED transaction, built from the same values:

1. every schedule's new slots and counts (``FIRED_COLUMNS``), each under its version check
   (``STATES``): the rows that come back are the fires that won; the others wrote nothing,
   as the script's UPDATE would;
2. the runs of the winners' slots with their first events (``_one_trip.CREATE_RUN_BATCH``,
   the group commit of ``start()``); a run it did not insert had its key taken: the slot's
   run exists, read by key, as the script does;
3. only for a fire that found some of its slots' runs: its count corrected (``COUNTED``);
   the states were written counting every run as created, nearly always the truth.

Cancel requests (CANCEL_OTHER) go one by one through the shared statement: they are few.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from pyworkflow._json_text import encode
from pyworkflow.storage.postgres import _one_trip as one_trip
from pyworkflow.storage.postgres._session import PgSession, compiled
from pyworkflow.storage.records import NewRun, ScheduleFire
from pyworkflow.storage.sql._params import first_event_values, new_run_values
from pyworkflow.storage.sql._scripts.schedules import expecting_all_created
from pyworkflow.storage.sql._statements.runs import GET_RUN_BY_KEY, REQUEST_CANCEL
from pyworkflow.storage.sql._statements.schedules import FIRED_COLUMNS
from pyworkflow.storage.sql.schema import schedules

__all__ = ["fire_batch"]

_STATE = list(FIRED_COLUMNS)
_states = one_trip.json_rows(
    "b_states",
    {
        "schedule_id": sa.String,
        "b_version": sa.Integer,
        **{name: schedules.c[name].type for name in _STATE},
    },
    "n",
)
_ids = one_trip.json_rows("b_states", {"schedule_id": sa.String}, "m")
_id_array = sa.select(sa.func.array_agg(_ids.c.schedule_id)).scalar_subquery()
STATES = compiled(
    sa.update(schedules)
    .where(
        # The ids once more, as one array: a probe of the primary key per fire. Joined on the
        # rows alone, the planner reads every schedule for a hundred fires (a hash join).
        schedules.c.schedule_id == sa.any_(sa.cast(_id_array, postgresql.ARRAY(sa.String))),
        schedules.c.schedule_id == _states.c.schedule_id,
        schedules.c.version == _states.c.b_version,
    )
    .values({**{name: _states.c[name] for name in _STATE}, "version": schedules.c.version + 1})
    .returning(schedules.c.schedule_id)
)
"""Each schedule's new state if still at its version; the ids of those written."""

_counts = one_trip.json_rows(
    "b_counts", {"schedule_id": sa.String, "created": sa.Integer, "last": sa.String}, "c"
)
COUNTED = compiled(
    sa.update(schedules)
    .where(schedules.c.schedule_id == _counts.c.schedule_id)
    .values(total_runs=schedules.c.total_runs + _counts.c.created, last_run_id=_counts.c["last"])
)
"""Take the slots whose runs existed off ``total_runs`` (``created`` is negative); name the
fire's last run."""

_CREATE_RUNS = compiled(one_trip.CREATE_RUN_BATCH)
_BY_KEY = compiled(GET_RUN_BY_KEY)


def _state_row(fire: ScheduleFire) -> dict[str, Any]:
    row = expecting_all_created(fire)
    row["b_version"] = row.pop("version")
    return row


async def fire_batch(
    conn: asyncpg.Connection, retried: bool, channel: str, fires: Sequence[ScheduleFire]
) -> list[list[str] | None]:
    """The fires of one tick in one transaction; what ``Storage.fire_schedules`` returns."""
    async with conn.transaction():
        won = {
            row[0]
            for row in await STATES.fetch(
                conn, {"b_states": encode([_state_row(f) for f in fires])}
            )
        }
        runs: list[NewRun] = [new for f in fires if f.schedule.schedule_id in won for new in f.runs]
        created: set[str] = set()
        if runs:
            made = [new_run_values(new) for new in runs]
            batch = {
                "b_runs": encode([values for _, values in made]),
                "b_events": encode(
                    [row for new in runs for row in first_event_values(new, encoded=False)]
                ),
                "b_channel": channel,
            }
            created = {row["run_id"] for row in await _CREATE_RUNS.fetch(conn, batch)}
        outcomes: list[list[str] | None] = []
        counts = []
        session = PgSession(conn, retried, channel)
        for fire in fires:
            if fire.schedule.schedule_id not in won:
                outcomes.append(None)
                continue
            ids = []
            for new in fire.runs:
                if new.run_id in created:
                    ids.append(new.run_id)
                    continue
                row = await _BY_KEY.fetchrow(conn, {"b_key": new.idempotency_key})
                ids.append(row["run_id"] if row is not None else new.run_id)
            made_here = sum(1 for new in fire.runs if new.run_id in created)
            if made_here < len(fire.runs):  # slots whose runs existed: take them off the count
                counts.append(
                    {
                        "schedule_id": fire.schedule.schedule_id,
                        "created": made_here - len(fire.runs),
                        "last": ids[-1],
                    }
                )
            for run_id in fire.cancel:
                params = {"b_run_id": run_id, "b_now": fire.now, "b_reason": fire.cancel_reason}
                await session.wake(REQUEST_CANCEL, params)
            outcomes.append(ids)
        if counts:
            await COUNTED.execute(conn, {"b_counts": encode(counts)})
        return outcomes
