"""Schedules: workflows started by cron, interval or calendar slots, each slot exactly once.

A schedule starts a run of its workflow at each of its slots (``ScheduleSpec``), in whichever
process serves that workflow: ``pyworkflow worker run``, an application's own in-process
executor, a Celery worker's sweeper, or ``pyworkflow scheduler run``. Every slot starts at most
one run, whatever number of schedulers run and whatever crashes, restarts or clock jumps
happen: the slot is consumed in the transaction that creates its run, and that run's
idempotency key is derived from the schedule and the slot (``_engine/scheduler.py``).

Example:
    >>> schedule = await create_schedule(
    ...     "daily_report",
    ...     ScheduleSpec(cron="0 9 * * 1-5", timezone="Europe/Prague"),
    ...     overlap_policy=OverlapPolicy.SKIP,
    ...     schedule_id="reports",
    ... )
    >>> schedule.next_run_time  # the next weekday at 09:00 Prague time, in UTC

Every function validates its input before the first write: a bad cron expression, interval or
time zone is an ``InvalidScheduleError`` naming it, and nothing is stored. Each takes
``storage=`` as the pyworkflow documentation spells it; it must name this process's storage
(the one ``configure()`` set), as on the client calls.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from pyworkflow._engine.new_runs import encode_call
from pyworkflow._schedules.activation import LocalScheduler as LocalScheduler
from pyworkflow._schedules.changes import change, planned, resolve_workflow, stored, view_of
from pyworkflow._schedules.decorated import catchup_seconds, decorated_schedules
from pyworkflow._schedules.decorated import scheduled_workflow as scheduled_workflow
from pyworkflow._schedules.specs import CalendarSpec as CalendarSpec
from pyworkflow._schedules.specs import OverlapPolicy as OverlapPolicy
from pyworkflow._schedules.specs import ScheduleSpec as ScheduleSpec
from pyworkflow._schedules.specs import overlap_policy as as_policy
from pyworkflow._schedules.starting import MAX_BACKFILL as MAX_BACKFILL
from pyworkflow._schedules.starting import backfill_schedule as backfill_schedule
from pyworkflow._schedules.starting import trigger_schedule as trigger_schedule
from pyworkflow._schedules.views import Schedule as Schedule
from pyworkflow._schedules.views import schedule_view
from pyworkflow.events import ScheduleStatus as ScheduleStatus
from pyworkflow.exceptions import InputError
from pyworkflow.per_call import same_storage
from pyworkflow.runtime import get_runtime
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import ScheduleRecord
from pyworkflow.workflow import Workflow

__all__ = [
    "CalendarSpec",
    "LocalScheduler",
    "OverlapPolicy",
    "Schedule",
    "ScheduleSpec",
    "ScheduleStatus",
    "activate_scheduled_workflows",
    "backfill_schedule",
    "create_schedule",
    "delete_schedule",
    "get_schedule",
    "list_schedules",
    "pause_schedule",
    "resume_schedule",
    "scheduled_workflow",
    "trigger_schedule",
    "update_schedule",
]


async def create_schedule(
    workflow_name: Workflow[..., Any] | str,
    spec: ScheduleSpec,
    *,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    overlap_policy: OverlapPolicy | str = OverlapPolicy.SKIP,
    schedule_id: str | None = None,
    catchup_window: str | float | timedelta | None = None,
    paused: bool = False,
    storage: Storage | str | None = None,
) -> Schedule:
    """Store a schedule: from now on its workflow starts at each slot of ``spec``.

    Example:
        >>> await create_schedule("sync", ScheduleSpec(interval="5m"), schedule_id="sync-5m")

    Args:
        workflow_name: the workflow (or its registered name) its runs are of.
        spec: when it fires. An interval schedule's first slot is now.
        args: positional arguments of every run.
        kwargs: keyword arguments of every run.
        overlap_policy: what a slot does while the previous run still goes (default SKIP).
        schedule_id: its id (default ``sched_`` and random hex).
        catchup_window: after downtime, slots younger than this still start; default (None)
            only the latest missed slot starts.
        paused: store it paused (``resume_schedule`` starts it).
        storage: accepted for code written for the pyworkflow documentation; it must be this
            process's storage (``pyworkflow.per_call``).

    Raises:
        WorkflowNotFoundError: no such workflow registered here.
        InvalidScheduleError: a bad policy or catch-up window (the spec checked itself).
        SerializationError: an argument cannot be encoded.
        ScheduleExistsError: the id is taken.
    """
    if not isinstance(spec, ScheduleSpec):
        raise InputError(f"spec must be a ScheduleSpec, not {spec!r}")
    wf = resolve_workflow(workflow_name)
    policy = as_policy(overlap_policy)
    window = catchup_seconds(catchup_window)
    await same_storage(storage)
    runtime = await get_runtime()
    encoded = encode_call(wf, tuple(args), dict(kwargs or {}), runtime.codec)
    now = runtime.executor.now()
    record = ScheduleRecord(
        schedule_id=schedule_id or f"sched_{secrets.token_hex(6)}",
        workflow_name=wf.name,
        spec=spec.to_json(),
        args=encoded,
        overlap_policy=policy.value,
        catchup_window=window,
        status=ScheduleStatus.PAUSED if paused else ScheduleStatus.ACTIVE,
        next_slot_at=None,
        due_at=None,
        buffered=(),
        total_runs=0,
        skipped_runs=0,
        last_slot_at=None,
        last_run_id=None,
        created_at=now,
        updated_at=now,
    )
    stored = await runtime.storage.create_schedule(planned(record, now))
    runtime.executor.wake()
    return schedule_view(stored, {})


async def get_schedule(schedule_id: str, *, storage: Storage | str | None = None) -> Schedule:
    """The schedule, with counts of the runs it started.

    Raises:
        ScheduleNotFoundError: no such schedule (or it was deleted).
    """
    await same_storage(storage)
    runtime = await get_runtime()
    return await view_of(runtime, await stored(runtime, schedule_id))


async def list_schedules(
    *,
    status: ScheduleStatus | str | None = None,
    workflow_name: str | None = None,
    limit: int = 1000,
    storage: Storage | str | None = None,
) -> list[Schedule]:
    """Schedules by id; deleted ones only with ``status="deleted"``.

    Raises:
        InputError: an unknown status or a limit below 1.
    """
    await same_storage(storage)
    try:
        wanted = None if status is None else ScheduleStatus(status)
    except ValueError as exc:
        raise InputError(f"unknown schedule status {status!r}: {exc}") from exc
    if limit < 1:
        raise InputError(f"limit must be at least 1, not {limit!r}")
    runtime = await get_runtime()
    records = await runtime.storage.list_schedules(
        status=wanted, workflow_name=workflow_name, limit=limit
    )
    return [await view_of(runtime, r) for r in records]


_KEEP: Any = object()


async def update_schedule(
    schedule_id: str,
    *,
    spec: ScheduleSpec | None = None,
    overlap_policy: OverlapPolicy | str | None = None,
    catchup_window: Any = _KEEP,
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    storage: Storage | str | None = None,
) -> Schedule:
    """Change a schedule; what is not given stays. A new spec counts its slots from now.

    Raises:
        ScheduleNotFoundError: no such schedule.
        InvalidScheduleError: a bad policy or catch-up window.
        SerializationError: an argument cannot be encoded.
    """
    await same_storage(storage)
    if spec is not None and not isinstance(spec, ScheduleSpec):
        raise InputError(f"spec must be a ScheduleSpec, not {spec!r}")
    policy = None if overlap_policy is None else as_policy(overlap_policy)
    window = _KEEP if catchup_window is _KEEP else catchup_seconds(catchup_window)
    runtime = await get_runtime()
    encoded = None
    if args is not None or kwargs is not None:
        record = await stored(runtime, schedule_id)
        wf = resolve_workflow(record.workflow_name)
        encoded = encode_call(wf, tuple(args or ()), dict(kwargs or {}), runtime.codec)

    def changed(record: ScheduleRecord, now: float) -> ScheduleRecord:
        new = record
        if policy is not None:
            new = dataclasses.replace(new, overlap_policy=policy.value)
        if window is not _KEEP:
            new = dataclasses.replace(new, catchup_window=window)
        if encoded is not None:
            new = dataclasses.replace(new, args=encoded)
        if spec is not None:
            new = planned(dataclasses.replace(new, spec=spec.to_json()), now)
        return dataclasses.replace(new, updated_at=now)

    return await change(schedule_id, changed)


async def pause_schedule(schedule_id: str, *, storage: Storage | str | None = None) -> Schedule:
    """Stop starting runs until ``resume_schedule``; the slots meanwhile are not made up.

    Raises:
        ScheduleNotFoundError: no such schedule.
    """
    await same_storage(storage)

    def pause(record: ScheduleRecord, now: float) -> ScheduleRecord:
        return dataclasses.replace(
            record, status=ScheduleStatus.PAUSED, due_at=None, updated_at=now
        )

    return await change(schedule_id, pause)


async def resume_schedule(schedule_id: str, *, storage: Storage | str | None = None) -> Schedule:
    """Start runs again, from the next slot after now.

    Raises:
        ScheduleNotFoundError: no such schedule.
    """
    await same_storage(storage)

    def resume(record: ScheduleRecord, now: float) -> ScheduleRecord:
        return planned(dataclasses.replace(record, status=ScheduleStatus.ACTIVE), now)

    return await change(schedule_id, resume)


async def delete_schedule(schedule_id: str, *, storage: Storage | str | None = None) -> None:
    """Delete a schedule: it starts nothing more; its row stays for the record (soft delete).

    Its runs go on. Its id may be taken by a new schedule.

    Raises:
        ScheduleNotFoundError: no such schedule.
    """
    await same_storage(storage)

    def delete(record: ScheduleRecord, now: float) -> ScheduleRecord:
        return dataclasses.replace(
            record, status=ScheduleStatus.DELETED, due_at=None, updated_at=now
        )

    await change(schedule_id, delete)


async def activate_scheduled_workflows(*, storage: Storage | str | None = None) -> list[str]:
    """Store the schedules that ``@scheduled_workflow`` declared in this process.

    A schedule not stored yet is created; one stored already gets the declared spec, policy
    and catch-up window where they changed (its counts and state stay). Call it at start-up;
    ``pyworkflow worker run`` and ``pyworkflow scheduler run`` call it for their modules.

    ``storage``: accepted for code written for the pyworkflow documentation; it must be this
    process's storage (``pyworkflow.per_call``).

    Returns:
        The ids of the declared schedules.
    """
    await same_storage(storage)
    runtime = await get_runtime()
    ids = []
    for declared in decorated_schedules():
        ids.append(declared.schedule_id)
        stored = await runtime.storage.get_schedule(declared.schedule_id)
        if stored is None or stored.status is ScheduleStatus.DELETED:
            await create_schedule(
                declared.workflow_name,
                declared.spec,
                overlap_policy=declared.overlap_policy,
                schedule_id=declared.schedule_id,
                catchup_window=declared.catchup_window,
            )
            continue
        same = (
            stored.spec == declared.spec.to_json()
            and stored.overlap_policy == declared.overlap_policy.value
            and stored.catchup_window == declared.catchup_window
        )
        if not same:
            await update_schedule(
                declared.schedule_id,
                spec=declared.spec if stored.spec != declared.spec.to_json() else None,
                overlap_policy=declared.overlap_policy,
                catchup_window=declared.catchup_window,
            )
    return ids
