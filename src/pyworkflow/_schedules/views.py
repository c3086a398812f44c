"""How a schedule reads to users: ``Schedule``, built from its stored record and run counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyworkflow._schedules.specs import OverlapPolicy, ScheduleSpec, overlap_policy
from pyworkflow.events import RunStatus, ScheduleStatus
from pyworkflow.storage.records import ScheduleRecord

__all__ = ["Schedule", "schedule_view"]


def _moment(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A schedule as it stands: its spec, policy, state and what it started.

    Attributes:
        schedule_id: its id.
        workflow_name: the workflow its runs are of.
        spec: when it fires.
        status: active, paused or deleted.
        overlap_policy: what a slot does while an earlier run is still going.
        catchup_window: seconds within which missed slots still start (None: the latest
            missed slot only).
        next_run_time: the next slot (UTC), or None (paused, deleted, past ``end_at``).
        last_run_at: the slot of the last run it started (UTC), or None.
        last_run_id: the last run it started, or None.
        total_runs: runs it started (slots, triggers, backfills).
        skipped_runs: slots it did not start (missed beyond the catch-up window, or refused
            by the overlap policy).
        buffered_runs: slots waiting for the running run to end.
        successful_runs: its stored runs that completed.
        failed_runs: its stored runs that failed.
        running_runs: its stored runs that have not ended.
        args: the positional arguments every run gets (as stored, encoded).
        created_at: when it was created (UTC).
        updated_at: when it was last written (UTC).
    """

    schedule_id: str
    workflow_name: str
    spec: ScheduleSpec
    status: ScheduleStatus
    overlap_policy: OverlapPolicy
    catchup_window: float | None
    next_run_time: datetime | None
    last_run_at: datetime | None
    last_run_id: str | None
    total_runs: int
    skipped_runs: int
    buffered_runs: int
    successful_runs: int
    failed_runs: int
    running_runs: int
    args: Any
    created_at: datetime
    updated_at: datetime


def schedule_view(record: ScheduleRecord, counts: dict[RunStatus, int]) -> Schedule:
    """The user's view of a stored schedule, with its stored runs counted by status."""
    live = sum(n for status, n in counts.items() if not status.is_terminal)
    return Schedule(
        schedule_id=record.schedule_id,
        workflow_name=record.workflow_name,
        spec=ScheduleSpec.from_json(record.spec),
        status=record.status,
        overlap_policy=overlap_policy(record.overlap_policy),
        catchup_window=record.catchup_window,
        next_run_time=(
            _moment(record.next_slot_at) if record.status is ScheduleStatus.ACTIVE else None
        ),
        last_run_at=_moment(record.last_slot_at),
        last_run_id=record.last_run_id,
        total_runs=record.total_runs,
        skipped_runs=record.skipped_runs,
        buffered_runs=len(record.buffered),
        successful_runs=counts.get(RunStatus.COMPLETED, 0),
        failed_runs=counts.get(RunStatus.FAILED, 0),
        running_runs=live,
        args=record.args,
        created_at=datetime.fromtimestamp(record.created_at, UTC),
        updated_at=datetime.fromtimestamp(record.updated_at, UTC),
    )
