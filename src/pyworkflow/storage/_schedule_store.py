"""The schedule store: schedules and the runs their slots start.

A part of :class:`~pyworkflow.storage.protocol.Storage` (a base of it), kept apart so that each
module holds one concern. Schedules (``create_schedule`` ... ``fire_schedule``) are rows of
their own, written with optimistic versions: every write states the ``version`` it read and a
stale one writes nothing. Firing a schedule stores its new state and creates the runs of its
slots in one transaction, so a slot is consumed exactly when its run exists; a slot's run has
an idempotency key derived from the schedule and the slot, so a slot fired twice (two
schedulers, a restart) finds its run instead of starting another.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from pyworkflow.events import RunStatus, ScheduleStatus
from pyworkflow.storage.records import ScheduleFire, ScheduleRecord

__all__ = ["ScheduleStore"]


class ScheduleStore(Protocol):
    """What schedulers need: schedules, read and written by version, and fired with their runs."""

    async def create_schedule(self, schedule: ScheduleRecord) -> ScheduleRecord:
        """Insert a schedule (stored with ``version`` 0 and returned as stored).

        A deleted schedule of the same id is replaced. Raises ScheduleExistsError, writing
        nothing, when one that is not deleted has the id.
        """

    async def get_schedule(self, schedule_id: str) -> ScheduleRecord | None:
        """The schedule, deleted ones included, or None."""

    async def list_schedules(
        self,
        *,
        status: ScheduleStatus | None = None,
        workflow_name: str | None = None,
        limit: int = 1000,
    ) -> list[ScheduleRecord]:
        """Schedules by id, filtered (deleted ones only when ``status`` asks for them)."""

    async def update_schedule(self, schedule: ScheduleRecord) -> ScheduleRecord | None:
        """Store ``schedule`` if the stored one is at ``schedule.version``; returns it as stored.

        The stored version becomes ``schedule.version + 1``. None, writing nothing, when the
        version is stale or the schedule is gone.
        """

    async def due_schedules(
        self,
        *,
        now: float,
        limit: int,
        workflow_names: Collection[str] | None = None,
        after: tuple[float, str] | None = None,
    ) -> list[ScheduleRecord]:
        """Up to ``limit`` schedules with ``due_at <= now``, of ``workflow_names``.

        In ``(due_at, schedule_id)`` order; ``after``: only those past this pair, so a
        scheduler reads what is due a page at a time, each page from where the last ended
        (a keyset: rows fired meanwhile leave the range, none is read twice). Only active
        schedules have a ``due_at``. A read: schedulers decide with ``fire_schedule``, whose
        version check lets one of them win.
        """

    async def next_schedule_due_at(
        self, *, workflow_names: Collection[str] | None = None, after: float | None = None
    ) -> float | None:
        """The earliest ``due_at`` of the schedules of ``workflow_names`` (None: any), or None.

        ``after``: only a ``due_at`` later than this. A scheduler that has just fired what was
        due asks for what comes after: on PostgreSQL the index entries of the rows it just
        moved (dead until vacuumed) lie before that bound, and are not walked.
        """

    async def fire_schedule(self, fire: ScheduleFire) -> list[str] | None:
        """Store a schedule's new state, create its runs and cancel requests, in one transaction.

        Returns the ids of the runs of ``fire.runs``, in order (for a run whose idempotency
        key was already taken, the run that holds it: the slot's run exists already). The
        stored ``total_runs`` grows by the number of runs the fire created (not those it
        found) and ``last_run_id`` names the last of the returned runs. A fire writes only a
        schedule's slots and counts (``next_slot_at``, ``due_at``, ``buffered``,
        ``total_runs``, ``skipped_runs``, ``last_slot_at``, ``last_run_id``, ``updated_at``):
        its spec, call, policy and status stay as stored. None,
        writing nothing, when the stored schedule is not at ``fire.schedule.version`` (another
        scheduler fired it, or a user changed it) or is gone.
        """

    async def fire_schedules(self, fires: Sequence[ScheduleFire]) -> list[list[str] | None]:
        """Several ``fire_schedule`` at once, each standing or falling on its own.

        What each returns, in order. For a scheduler's tick that fires many schedules at once:
        a backend may write them in one transaction (PostgreSQL: a few statements for the
        lot; SQLite: group commit), each fire still all or nothing. At most one fire per
        schedule.
        """

    async def live_schedule_runs(self, schedule_ids: Collection[str]) -> dict[str, list[str]]:
        """The runs of these schedules that have not ended, by schedule id, oldest first."""

    async def count_schedule_runs(self, schedule_id: str) -> dict[RunStatus, int]:
        """How many stored runs the schedule started, by status (statuses with none left out)."""
