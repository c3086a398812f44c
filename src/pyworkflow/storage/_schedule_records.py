"""The schedule records of the Storage protocol: a stored schedule and one firing of it.

Storage interprets only a schedule's status, due time and version; the rest is the scheduler's
(``pyworkflow.schedules``). Re-exported by ``pyworkflow.storage.records``, their public home.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyworkflow.events import ScheduleStatus
from pyworkflow.storage._run_records import NewRun

__all__ = ["ScheduleFire", "ScheduleRecord"]


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """One stored schedule (a row of ``schedules``).

    Storage keeps it as given and interprets only ``status``, ``due_at`` and ``version``; what
    the other fields mean is the scheduler's (``pyworkflow.schedules``).

    Attributes:
        schedule_id: its id.
        workflow_name: the workflow its runs are of.
        spec: when it fires, a JSON object (cron, interval or calendar, time zone, bounds ...).
        args: the encoded call (``{"args", "kwargs"}``) every run starts with.
        overlap_policy: what a slot does while an earlier run is still going.
        catchup_window: seconds: missed slots younger than this still start; None starts the
            latest missed slot only.
        status: active, paused or deleted.
        next_slot_at: the next slot not yet handled (epoch seconds), or None when none is left.
        due_at: when a scheduler should look at it next (the next slot plus its jitter, or
            sooner while a buffered slot waits for a run to end); None when nothing is to do
            (paused, deleted, no slot left). Invariant: a scheduler's tick is one indexed
            query on this column.
        buffered: slots waiting for the running run to end (BUFFER_ONE, BUFFER_ALL).
        total_runs: runs it started (slots, triggers, backfills).
        skipped_runs: slots it did not start: missed beyond the catch-up window, or refused
            by the overlap policy.
        last_slot_at: the slot of the last run it started, or None.
        last_run_id: the last run it started, or None.
        created_at: when it was created.
        updated_at: when it was last written.
        version: bumped by every write; a write states the version it read (optimistic), so
            two schedulers, or a scheduler and a user's update, never both write one state.
    """

    schedule_id: str
    workflow_name: str
    spec: dict[str, Any]
    args: Any
    overlap_policy: str
    catchup_window: float | None
    status: ScheduleStatus
    next_slot_at: float | None
    due_at: float | None
    buffered: tuple[float, ...]
    total_runs: int
    skipped_runs: int
    last_slot_at: float | None
    last_run_id: str | None
    created_at: float
    updated_at: float
    version: int = 0


@dataclass(frozen=True, slots=True)
class ScheduleFire:
    """One firing of a schedule: its new state and the runs it starts, in one transaction.

    Attributes:
        schedule: the schedule's new row; its ``version`` is the one the writer read, and the
            stored row gets ``version + 1``. Storage adds the runs the fire creates to its
            ``total_runs`` and names the last in ``last_run_id``.
        runs: the runs its slots start, each with an idempotency key derived from the schedule
            and the slot, so a slot's run is created once however many schedulers fire it.
        cancel: ids of runs to ask to cancel (CANCEL_OTHER), as ``request_cancel`` would.
        cancel_reason: the reason those runs are given.
        now: the scheduler's clock.
    """

    schedule: ScheduleRecord
    runs: Sequence[NewRun] = ()
    cancel: Sequence[str] = ()
    cancel_reason: str | None = None
    now: float = 0.0


# Their public home: type paths in encoded values, reprs and pickles name it, as before the split.
for _name in __all__:
    if isinstance(globals()[_name], type):
        globals()[_name].__module__ = "pyworkflow.storage.records"
