"""Firing many schedules on SQLite: a chunk of fires in one script of three ``executemany``.

Fire by fire, the shared script (``storage/sql/_scripts/schedules.py``) runs a statement per
schedule and two per run, each paying the driver's per-call cost. Nearly every fire of a tick
wins its schedule's version check and creates every run of its slots, so this script bets on
that: every schedule's new state in one ``executemany`` of the shared ``FIRE_STATE``, then
every run, then every first event, the same statements and values as the shared script's.
If the rows changed say the bet lost (another scheduler won a schedule, a slot's run existed),
it raises :class:`FireOneByOne` after writing: the batch's transaction undoes the script's
writes alone (``_batch.py``), and the caller fires the chunk one by one through the shared
script, which sorts out each case. Fires that cancel runs (CANCEL_OTHER) always go that way.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyworkflow.storage.records import ScheduleFire
from pyworkflow.storage.sql._params import first_event_values, new_run_values
from pyworkflow.storage.sql._scripts.schedules import fired_params
from pyworkflow.storage.sql._statements.runs import INSERT_EVENT, insert_new_run
from pyworkflow.storage.sql._statements.schedules import FIRE_STATE
from pyworkflow.storage.sqlite._session import SqliteSession

__all__ = ["FireOneByOne", "fire_all_won"]


class FireOneByOne(Exception):
    """The bet of :func:`fire_all_won` lost: fire these one by one (nothing was written)."""


async def fire_all_won(db: SqliteSession, fires: Sequence[ScheduleFire]) -> list[list[str] | None]:
    """Every fire written, each creating every run of its slots; what ``fire_schedules`` says.

    Raises:
        FireOneByOne: a fire lost its version check, found a slot's run, or cancels runs.
    """
    if any(fire.cancel for fire in fires):
        raise FireOneByOne
    if await db.execute_many(FIRE_STATE, [fired_params(fire) for fire in fires]) != len(fires):
        raise FireOneByOne
    runs = [new for fire in fires for new in fire.runs]
    if runs:
        rows = [new_run_values(new)[1] for new in runs]
        if await db.execute_many(insert_new_run(db.dialect), rows) != len(runs):
            raise FireOneByOne
        await db.insert(INSERT_EVENT, [row for new in runs for row in first_event_values(new)])
    return [[new.run_id for new in fire.runs] for fire in fires]
