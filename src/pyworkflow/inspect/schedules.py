"""Schedules as readers show them: their spec in words, state, next slot and what they started.

``list_schedules`` and ``get_schedule`` read through the storage protocol, as the rest of the
read model does; ``ScheduleView.to_json`` is the stable JSON shape of ``pyworkflow schedules
list|show --json`` (keys are only ever added).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyworkflow._schedules.specs import ScheduleSpec
from pyworkflow.events import RunStatus, ScheduleStatus
from pyworkflow.exceptions import InvalidScheduleError, ScheduleNotFoundError
from pyworkflow.inspect.values import iso
from pyworkflow.storage import ScheduleRecord, Storage

__all__ = ["ScheduleView", "get_schedule", "list_schedules"]


@dataclass(frozen=True, slots=True)
class ScheduleView:
    """One schedule, for a table row or ``--json``. Times are epoch seconds.

    Attributes:
        schedule_id: its id.
        workflow: the workflow its runs are of.
        status: active, paused or deleted.
        describes: its spec in words (``cron '0 9 * * 1-5' (Europe/Prague)``, ``every 30s``).
        spec: its spec as stored (JSON).
        overlap_policy: what a slot does while a run is still going.
        catchup_window: seconds within which missed slots start (None: the latest only).
        next_run_at: its next slot, or None (paused, deleted, past its end).
        last_run_at: the slot of the last run it started, or None.
        last_run_id: the last run it started, or None.
        total_runs: runs it started.
        skipped_runs: slots it did not start.
        buffered_runs: slots waiting for the running run to end.
        runs_by_status: its stored runs counted by status.
        created_at: when it was created.
        updated_at: when it was last written.
    """

    schedule_id: str
    workflow: str
    status: ScheduleStatus
    describes: str
    spec: dict[str, Any]
    overlap_policy: str
    catchup_window: float | None
    next_run_at: float | None
    last_run_at: float | None
    last_run_id: str | None
    total_runs: int
    skipped_runs: int
    buffered_runs: int
    runs_by_status: dict[str, int]
    created_at: float
    updated_at: float

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types; times as ISO 8601 UTC strings."""
        return {
            "schedule_id": self.schedule_id,
            "workflow": self.workflow,
            "status": self.status.value,
            "describes": self.describes,
            "spec": self.spec,
            "overlap_policy": self.overlap_policy,
            "catchup_window": self.catchup_window,
            "next_run_at": iso(self.next_run_at),
            "last_run_at": iso(self.last_run_at),
            "last_run_id": self.last_run_id,
            "total_runs": self.total_runs,
            "skipped_runs": self.skipped_runs,
            "buffered_runs": self.buffered_runs,
            "runs_by_status": dict(self.runs_by_status),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


def _describe(spec: dict[str, Any]) -> str:
    try:
        return ScheduleSpec.from_json(spec).describe()
    except InvalidScheduleError as exc:  # shown, never raised: a reader must not fail on it
        return f"unreadable spec ({exc})"


def _view(record: ScheduleRecord, counts: dict[RunStatus, int]) -> ScheduleView:
    active = record.status is ScheduleStatus.ACTIVE
    return ScheduleView(
        schedule_id=record.schedule_id,
        workflow=record.workflow_name,
        status=record.status,
        describes=_describe(record.spec),
        spec=record.spec,
        overlap_policy=record.overlap_policy,
        catchup_window=record.catchup_window,
        next_run_at=record.next_slot_at if active else None,
        last_run_at=record.last_slot_at,
        last_run_id=record.last_run_id,
        total_runs=record.total_runs,
        skipped_runs=record.skipped_runs,
        buffered_runs=len(record.buffered),
        runs_by_status={status.value: n for status, n in sorted(counts.items())},
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


async def list_schedules(
    storage: Storage,
    *,
    status: ScheduleStatus | None = None,
    workflow: str | None = None,
    limit: int = 1000,
) -> list[ScheduleView]:
    """Schedules by id (deleted ones only when ``status`` asks for them)."""
    records = await storage.list_schedules(status=status, workflow_name=workflow, limit=limit)
    return [_view(r, await storage.count_schedule_runs(r.schedule_id)) for r in records]


async def get_schedule(storage: Storage, schedule_id: str) -> ScheduleView:
    """One schedule, deleted or not.

    Raises:
        ScheduleNotFoundError: no schedule has this id.
    """
    record = await storage.get_schedule(schedule_id)
    if record is None:
        raise ScheduleNotFoundError(schedule_id)
    return _view(record, await storage.count_schedule_runs(schedule_id))
