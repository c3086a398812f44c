"""Reading and writing schedules for the public API: resolve, plan, view, versioned change.

Every write of a schedule by a user states the version it read, as the schedulers' fires do; a
write that lost to a fire reads the schedule again and tries again (:func:`change`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from pyworkflow import registry
from pyworkflow._schedules.policy import upcoming_due_at
from pyworkflow._schedules.slots import next_slot
from pyworkflow._schedules.specs import ScheduleSpec
from pyworkflow._schedules.views import Schedule, schedule_view
from pyworkflow.events import ScheduleStatus
from pyworkflow.exceptions import InputError, ScheduleNotFoundError, StorageError
from pyworkflow.runtime import Runtime, get_runtime
from pyworkflow.storage.records import ScheduleRecord
from pyworkflow.workflow import Workflow

__all__ = ["ATTEMPTS", "change", "planned", "resolve_workflow", "stored", "view_of"]

ATTEMPTS = 20
"""Writes of a schedule race with the schedulers' fires (each states the version it read); a
user's write that lost reads the schedule again and tries again this many times."""


def resolve_workflow(wf: Workflow[..., Any] | str) -> Workflow[..., Any]:
    """The workflow, or the one registered under the name.

    Raises:
        WorkflowNotFoundError: no workflow by that name here.
        InputError: neither a workflow nor a name.
    """
    if isinstance(wf, Workflow):
        return wf
    if isinstance(wf, str):
        found: Workflow[..., Any] = registry.get_workflow(wf)
        return found
    raise InputError(f"{wf!r} is not a workflow or a workflow's name")


def planned(record: ScheduleRecord, now: float) -> ScheduleRecord:
    """``record`` with its next slot counted from ``now`` (active) or none (paused, deleted).

    Slots before ``now`` are not made up: a resumed or changed schedule starts afresh.
    """
    if record.status is not ScheduleStatus.ACTIVE:
        return dataclasses.replace(record, due_at=None)
    spec = ScheduleSpec.from_json(record.spec)
    upcoming = next_slot(spec, now - 1e-6, anchor=record.created_at)
    due_at = upcoming_due_at(record.schedule_id, spec, upcoming)
    if record.buffered:  # look at the waiting slot at once
        due_at = now if due_at is None else min(due_at, now)
    return dataclasses.replace(record, next_slot_at=upcoming, due_at=due_at, updated_at=now)


async def view_of(runtime: Runtime, record: ScheduleRecord) -> Schedule:
    """The user's view of ``record``, with its stored runs counted."""
    counts = await runtime.storage.count_schedule_runs(record.schedule_id)
    return schedule_view(record, counts)


async def stored(runtime: Runtime, schedule_id: str) -> ScheduleRecord:
    """The stored schedule.

    Raises:
        ScheduleNotFoundError: none has this id, or it was deleted.
    """
    record = await runtime.storage.get_schedule(schedule_id)
    if record is None or record.status is ScheduleStatus.DELETED:
        raise ScheduleNotFoundError(schedule_id)
    return record


async def change(
    schedule_id: str, how: Callable[[ScheduleRecord, float], ScheduleRecord]
) -> Schedule:
    """Read, change and write a schedule, again while a scheduler's fire wins the race."""
    runtime = await get_runtime()
    for _ in range(ATTEMPTS):
        record = await stored(runtime, schedule_id)
        written = await runtime.storage.update_schedule(how(record, runtime.executor.now()))
        if written is not None:
            runtime.executor.wake()  # this process's scheduler looks at it now
            return await view_of(runtime, written)
    raise StorageError(f"schedule {schedule_id!r} kept changing; try again")
