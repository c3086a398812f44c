"""Starting a schedule's runs by hand: ``trigger_schedule`` (now) and ``backfill_schedule``.

Both go through ``Storage.fire_schedule``, as the schedulers do, so a backfilled slot whose run
exists (it fired, or an earlier backfill covered it) finds that run instead of starting one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime

from pyworkflow._engine.new_runs import new_run
from pyworkflow._schedules.changes import ATTEMPTS, change, resolve_workflow, stored
from pyworkflow._schedules.slots import slot_key, slots_between
from pyworkflow._schedules.specs import ScheduleSpec
from pyworkflow.exceptions import InputError, StorageError
from pyworkflow.per_call import same_storage
from pyworkflow.runtime import Runtime, get_runtime
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import ScheduleFire, ScheduleRecord

__all__ = ["MAX_BACKFILL", "backfill_schedule", "trigger_schedule"]

MAX_BACKFILL = 10_000
"""The most slots one ``backfill_schedule`` call starts."""


async def _fire(
    runtime: Runtime,
    schedule_id: str,
    slots: Callable[[ScheduleRecord, float], list[float]],
    key: Callable[[str, float], str],
) -> list[str]:
    """Start runs for ``slots`` of a schedule in one fire, counted in its ``total_runs``."""
    for _ in range(ATTEMPTS):
        record = await stored(runtime, schedule_id)
        now = runtime.executor.now()
        wf = resolve_workflow(record.workflow_name)
        runs = [
            new_run(
                wf,
                record.args,
                now=now,
                idempotency_key=key(schedule_id, slot),
                schedule_id=schedule_id,
                schedule_slot_at=slot,
            )
            for slot in slots(record, now)
        ]
        state = dataclasses.replace(record, updated_at=now)
        run_ids = await runtime.storage.fire_schedule(ScheduleFire(state, runs=runs, now=now))
        if run_ids is None:
            continue  # a scheduler fired it meanwhile: read it again
        if runs:  # the slot of the last run it started
            await change(schedule_id, _last_slot(runs[-1].schedule_slot_at))
            runtime.executor.wake(run_ids[-1])
        return run_ids
    raise StorageError(f"schedule {schedule_id!r} kept changing; try again")


def _last_slot(slot: float | None) -> Callable[[ScheduleRecord, float], ScheduleRecord]:
    def last(record: ScheduleRecord, now: float) -> ScheduleRecord:
        return dataclasses.replace(record, last_slot_at=slot)

    return last


def _trigger_key(schedule_id: str, moment: float) -> str:
    stamp = datetime.fromtimestamp(moment, UTC).isoformat(timespec="microseconds")
    return f"schedule:{schedule_id}:trigger:{stamp}"


async def trigger_schedule(schedule_id: str, *, storage: Storage | str | None = None) -> str:
    """Start a run of the schedule now, outside its slots; its regular slots are unchanged.

    The run records the schedule and now as its slot. Returns its id.

    Raises:
        ScheduleNotFoundError: no such schedule.
    """
    await same_storage(storage)
    runtime = await get_runtime()
    (run_id,) = await _fire(runtime, schedule_id, lambda record, now: [now], _trigger_key)
    return run_id


async def backfill_schedule(
    schedule_id: str,
    start_time: datetime,
    end_time: datetime,
    *,
    storage: Storage | str | None = None,
) -> list[str]:
    """Start a run for every slot from ``start_time`` to ``end_time`` (both included).

    A slot whose run exists already (it fired, or an earlier backfill covered it) is not
    started again: its run's id is returned. The overlap policy does not apply: every slot of
    the range starts (mind a busy schedule).

    Raises:
        ScheduleNotFoundError: no such schedule.
        InputError: naive datetimes, an end before the start, or more than 10,000 slots.
    """
    for name, moment in (("start_time", start_time), ("end_time", end_time)):
        if not isinstance(moment, datetime) or moment.utcoffset() is None:
            raise InputError(f"{name} must be an aware datetime, not {moment!r}")
    start, end = start_time.timestamp(), end_time.timestamp()
    if end < start:
        raise InputError(f"end_time {end_time!r} is before start_time {start_time!r}")
    await same_storage(storage)
    runtime = await get_runtime()

    def slots(record: ScheduleRecord, now: float) -> list[float]:
        spec = ScheduleSpec.from_json(record.spec)
        found = list(
            slots_between(spec, start, end, anchor=record.created_at, limit=MAX_BACKFILL + 1)
        )
        if len(found) > MAX_BACKFILL:
            raise InputError(
                f"{start_time.isoformat()} to {end_time.isoformat()} holds more than "
                f"{MAX_BACKFILL:,} slots of schedule {schedule_id!r}; backfill a shorter range"
            )
        return found

    return await _fire(runtime, schedule_id, slots, slot_key)
