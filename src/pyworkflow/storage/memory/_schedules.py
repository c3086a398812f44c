"""The schedule methods of MemoryStorage: schedules in a dict, fired with their runs at once.

The reference semantics of ``Storage.create_schedule`` ... ``fire_schedule``: a write states
the version it read and a stale one writes nothing; firing checks everything first (the
version, the slots' keys) and only then stores the schedule's state and its runs, so that a
slot is consumed exactly when its run exists.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence

from pyworkflow.events import RunStatus, ScheduleStatus
from pyworkflow.exceptions import ScheduleExistsError
from pyworkflow.storage.memory._copies import copy_tree
from pyworkflow.storage.memory._family import signalled
from pyworkflow.storage.records import NewRun, RunRecord, ScheduleFire, ScheduleRecord

__all__ = ["MemoryScheduleMethods"]


class MemoryScheduleMethods:
    """The schedule methods of the Storage protocol in memory (a base of MemoryStorage)."""

    _runs: dict[str, RunRecord]
    _keys: dict[str, str]
    _schedules: dict[str, ScheduleRecord]
    _by_schedule: dict[str, dict[str, None]]  # schedule id -> its run ids, in creation order

    def _store_new_run(self, run: NewRun) -> RunRecord:
        """Insert a run whose key and id are known to be free (``MemoryStorage``'s insert)."""
        raise NotImplementedError

    async def create_schedule(self, schedule: ScheduleRecord) -> ScheduleRecord:
        """Insert a schedule at version 0 (replacing a deleted one of the same id).

        Raises:
            ScheduleExistsError: a schedule that is not deleted has the id.
        """
        existing = self._schedules.get(schedule.schedule_id)
        if existing is not None and existing.status is not ScheduleStatus.DELETED:
            raise ScheduleExistsError(schedule.schedule_id)
        stored = copy_tree(dataclasses.replace(schedule, version=0))
        self._schedules[schedule.schedule_id] = stored
        return copy_tree(stored)

    async def get_schedule(self, schedule_id: str) -> ScheduleRecord | None:
        """The schedule, or None."""
        found = self._schedules.get(schedule_id)
        return None if found is None else copy_tree(found)

    async def list_schedules(
        self,
        *,
        status: ScheduleStatus | None = None,
        workflow_name: str | None = None,
        limit: int = 1000,
    ) -> list[ScheduleRecord]:
        """Schedules by id; deleted ones only when ``status`` is DELETED."""
        rows = [
            s
            for _, s in sorted(self._schedules.items())
            if (s.status is not ScheduleStatus.DELETED if status is None else s.status == status)
            and (workflow_name is None or s.workflow_name == workflow_name)
        ]
        return [copy_tree(s) for s in rows[: max(limit, 0)]]

    def _current(self, schedule: ScheduleRecord) -> bool:
        stored = self._schedules.get(schedule.schedule_id)
        return stored is not None and stored.version == schedule.version

    def _write(self, schedule: ScheduleRecord) -> ScheduleRecord:
        stored = copy_tree(dataclasses.replace(schedule, version=schedule.version + 1))
        # The row keeps its creation time whatever the writer says, as the SQL UPDATE does.
        created = self._schedules[schedule.schedule_id].created_at
        stored = dataclasses.replace(stored, created_at=created)
        self._schedules[schedule.schedule_id] = stored
        return copy_tree(stored)

    async def update_schedule(self, schedule: ScheduleRecord) -> ScheduleRecord | None:
        """Store ``schedule`` if the stored one is at its version; None (nothing written) if not."""
        if not self._current(schedule):
            return None
        return self._write(schedule)

    async def due_schedules(
        self,
        *,
        now: float,
        limit: int,
        workflow_names: Collection[str] | None = None,
        after: tuple[float, str] | None = None,
    ) -> list[ScheduleRecord]:
        """Up to ``limit`` schedules with ``due_at <= now`` in ``(due_at, id)`` order."""
        names = None if workflow_names is None else set(workflow_names)
        due = sorted(
            (
                s
                for s in self._schedules.values()
                if s.due_at is not None
                and s.due_at <= now
                and (names is None or s.workflow_name in names)
            ),
            key=_due_key,
        )
        if after is not None:
            due = [s for s in due if _due_key(s) > after]
        return [copy_tree(s) for s in due[: max(limit, 0)]]

    async def next_schedule_due_at(
        self, *, workflow_names: Collection[str] | None = None, after: float | None = None
    ) -> float | None:
        """The earliest ``due_at`` (later than ``after``) of the schedules of ``workflow_names``."""
        names = None if workflow_names is None else set(workflow_names)
        times = [
            s.due_at
            for s in self._schedules.values()
            if s.due_at is not None
            and (after is None or s.due_at > after)
            and (names is None or s.workflow_name in names)
        ]
        return min(times, default=None)

    async def fire_schedule(self, fire: ScheduleFire) -> list[str] | None:
        """The schedule's new state, its slots' runs and cancel requests; None if stale."""
        if not self._current(fire.schedule):
            return None
        # Everything is checked: from here on, write it all. A fire changes only the slots and
        # counts (as the SQL one, FIRED_COLUMNS): the spec, call, policy and status stay.
        current = self._schedules[fire.schedule.schedule_id]
        given = fire.schedule
        stored = self._write(
            dataclasses.replace(
                current,
                next_slot_at=given.next_slot_at,
                due_at=given.due_at,
                buffered=given.buffered,
                total_runs=given.total_runs,
                skipped_runs=given.skipped_runs,
                last_slot_at=given.last_slot_at,
                last_run_id=given.last_run_id,
                updated_at=given.updated_at,
            )
        )
        run_ids: list[str] = []
        for new in fire.runs:
            taken = None if new.idempotency_key is None else self._keys.get(new.idempotency_key)
            if taken is not None:
                run_ids.append(taken)  # the slot's run exists already
                continue
            run_ids.append(self._store_new_run(new).run_id)
        if run_ids:
            created = sum(
                1 for new, got in zip(fire.runs, run_ids, strict=True) if new.run_id == got
            )
            self._schedules[stored.schedule_id] = dataclasses.replace(
                stored, total_runs=stored.total_runs + created, last_run_id=run_ids[-1]
            )
        for run_id in fire.cancel:
            record = self._runs.get(run_id)
            if record is not None and not record.status.is_terminal:
                self._runs[run_id] = signalled(
                    record, fire.now, cancel_requested=True, cancel_reason=fire.cancel_reason
                )
        return run_ids

    async def fire_schedules(self, fires: Sequence[ScheduleFire]) -> list[list[str] | None]:
        """Each fire as ``fire_schedule`` does it, in order."""
        return [await self.fire_schedule(fire) for fire in fires]

    async def live_schedule_runs(self, schedule_ids: Collection[str]) -> dict[str, list[str]]:
        """The runs of these schedules that have not ended, by schedule id, oldest first."""
        found: dict[str, list[str]] = {}
        for schedule_id in schedule_ids:
            live = [
                run_id
                for run_id in self._by_schedule.get(schedule_id, {})
                if not self._runs[run_id].status.is_terminal
            ]
            if live:
                found[schedule_id] = live
        return found

    async def count_schedule_runs(self, schedule_id: str) -> dict[RunStatus, int]:
        """How many stored runs the schedule started, by status."""
        counts: dict[RunStatus, int] = {}
        for run_id in self._by_schedule.get(schedule_id, {}):
            status = self._runs[run_id].status
            counts[status] = counts.get(status, 0) + 1
        return counts


def _due_key(schedule: ScheduleRecord) -> tuple[float, str]:
    """Where a due schedule stands in a tick's reading order."""
    return (schedule.due_at or 0.0, schedule.schedule_id)
