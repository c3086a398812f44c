"""The schedule methods of SqlStorage: schedules by version, fired with their runs at once.

A part of :class:`~pyworkflow.storage.sql.SqlStorage` (a base of it), kept apart so that each
module holds one concern, as MemoryStorage's are. Each method runs one script of
``_scripts/schedules.py``; a fire runs in one transaction (``_run_atomic``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence

from pyworkflow.events import RunStatus, ScheduleStatus
from pyworkflow.storage.records import ScheduleFire, ScheduleRecord
from pyworkflow.storage.sql._script_runner import ScriptRunner
from pyworkflow.storage.sql._scripts import schedules

__all__ = ["SqlScheduleMethods"]


class SqlScheduleMethods(ScriptRunner):
    """The schedule methods of the Storage protocol on SQL (a base of SqlStorage)."""

    async def create_schedule(self, schedule: ScheduleRecord) -> ScheduleRecord:
        """Insert a schedule; see ``Storage.create_schedule``."""
        return await self._run_atomic(lambda db: schedules.create_schedule(db, schedule))

    async def get_schedule(self, schedule_id: str) -> ScheduleRecord | None:
        """The schedule, or None."""
        return await self._run(lambda db: schedules.get_schedule(db, schedule_id), writes=False)

    async def list_schedules(
        self,
        *,
        status: ScheduleStatus | None = None,
        workflow_name: str | None = None,
        limit: int = 1000,
    ) -> list[ScheduleRecord]:
        """Schedules by id, filtered; see ``Storage.list_schedules``."""
        return await self._run(
            lambda db: schedules.list_schedules(
                db, status=status, workflow_name=workflow_name, limit=limit
            ),
            writes=False,
        )

    async def update_schedule(self, schedule: ScheduleRecord) -> ScheduleRecord | None:
        """Store a schedule if its version is current; see ``Storage.update_schedule``."""
        return await self._run(lambda db: schedules.update_schedule(db, schedule), writes=True)

    async def due_schedules(
        self,
        *,
        now: float,
        limit: int,
        workflow_names: Collection[str] | None = None,
        after: tuple[float, str] | None = None,
    ) -> list[ScheduleRecord]:
        """Schedules due at ``now``, in order; see ``Storage.due_schedules``."""
        return await self._run(
            lambda db: schedules.due_schedules(
                db, now=now, limit=limit, workflow_names=workflow_names, after=after
            ),
            writes=False,
        )

    async def next_schedule_due_at(
        self, *, workflow_names: Collection[str] | None = None, after: float | None = None
    ) -> float | None:
        """The earliest ``due_at``, or None; see ``Storage.next_schedule_due_at``."""
        return await self._run(
            lambda db: schedules.next_schedule_due_at(
                db, workflow_names=workflow_names, after=after
            ),
            writes=False,
        )

    async def fire_schedule(self, fire: ScheduleFire) -> list[str] | None:
        """A schedule's new state and its slots' runs in one transaction; see the protocol."""
        return await self._run_atomic(lambda db: schedules.fire_schedule(db, fire))

    async def fire_schedules(self, fires: Sequence[ScheduleFire]) -> list[list[str] | None]:
        """Several fires, each its own script; see ``Storage.fire_schedules``.

        Issued together, so SQLite's group commit shares commits between them (measured
        faster than one script running them all, B10); PostgreSQL overrides this with one
        transaction of three statements.
        """
        return list(await asyncio.gather(*(self.fire_schedule(f) for f in fires)))

    async def live_schedule_runs(self, schedule_ids: Collection[str]) -> dict[str, list[str]]:
        """The live runs of these schedules, by schedule id."""
        return await self._run(
            lambda db: schedules.live_schedule_runs(db, schedule_ids), writes=False
        )

    async def count_schedule_runs(self, schedule_id: str) -> dict[RunStatus, int]:
        """How many stored runs the schedule started, by status."""
        return await self._run(
            lambda db: schedules.count_schedule_runs(db, schedule_id), writes=False
        )
