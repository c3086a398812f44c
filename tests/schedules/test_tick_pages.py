"""One tick over more due schedules than a page or a batch, and a chunk whose write fails.

A scheduler reads what is due a page at a time and writes it a chunk at a time
(``_engine/scheduler.py``); what a user checks is that every due schedule started exactly one
run, that a chunk the storage refused leaves its schedules due (and fires them at the next
tick) while the others' runs are started and announced, and when the tick says to come back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest

from pyworkflow import workflow
from pyworkflow._engine.clock import SystemClock
from pyworkflow._engine.engine import Engine
from pyworkflow._engine.scheduler import Scheduler
from pyworkflow._schedules.specs import ScheduleSpec
from pyworkflow.events import ScheduleStatus
from pyworkflow.exceptions import StorageError
from pyworkflow.serialization import Codec
from pyworkflow.storage import MemoryStorage
from pyworkflow.storage.records import ScheduleFire, ScheduleRecord

DAY = 86400.0
# More than a batch (2,000): the tick reads a first page, the rest of the batch, then again.
MANY = 2150


@workflow(name="tp_job")
async def tp_job() -> int:
    return 1


def daily(schedule_id: str, due_at: float) -> ScheduleRecord:
    return ScheduleRecord(
        schedule_id=schedule_id,
        workflow_name="tp_job",
        spec=ScheduleSpec(interval="1d").to_json(),
        args={"args": [], "kwargs": {}},
        overlap_policy="skip",
        catchup_window=None,
        status=ScheduleStatus.ACTIVE,
        next_slot_at=due_at,
        due_at=due_at,
        buffered=(),
        total_runs=0,
        skipped_runs=0,
        last_slot_at=None,
        last_run_id=None,
        created_at=due_at - DAY,
        updated_at=due_at - DAY,
    )


class RefusingStorage(MemoryStorage):
    """Memory storage whose ``fire_schedules`` fails for a chunk holding a given schedule."""

    refuse: str | None = None

    async def fire_schedules(self, fires: Sequence[ScheduleFire]) -> list[list[str] | None]:
        if any(fire.schedule.schedule_id == self.refuse for fire in fires):
            raise StorageError("the disk is full")
        return await super().fire_schedules(fires)


async def scheduler_on(storage: MemoryStorage) -> tuple[Scheduler, list[str]]:
    announced: list[str] = []
    engine = Engine(storage=storage, codec=Codec(), clock=SystemClock(), owner="tp")
    engine = dataclasses.replace(engine, on_new_runs=announced.extend)
    return Scheduler(engine), announced


async def runs_by_schedule(storage: MemoryStorage, ids: list[str]) -> dict[str, list[str]]:
    return await storage.live_schedule_runs(ids)


async def test_one_tick_fires_every_due_schedule_once_across_pages_and_batches() -> None:
    storage = MemoryStorage()
    await storage.open()
    clock = SystemClock()
    now = clock.now()
    # Midnight: most are due at one moment, so pages end inside ties; one is due later.
    ids = [f"tp-{i:05d}" for i in range(MANY)]
    for i, schedule_id in enumerate(ids):
        await storage.create_schedule(daily(schedule_id, now - (2.0 if i % 7 else 1.0)))
    await storage.create_schedule(daily("tp-later", now + 3600.0))
    scheduler, announced = await scheduler_on(storage)

    next_due = await scheduler.tick()

    live = await runs_by_schedule(storage, ids)
    assert sorted(live) == ids
    assert all(len(runs) == 1 for runs in live.values())
    assert sorted(announced) == sorted(run for runs in live.values() for run in runs)
    assert next_due == pytest.approx(now + 3600.0)  # the later one, not tomorrow's
    assert await storage.due_schedules(now=clock.now(), limit=10) == []
    # A second tick finds nothing to do and starts nothing.
    assert await scheduler.tick() == pytest.approx(now + 3600.0)
    assert len(announced) == MANY


async def test_a_refused_chunk_stays_due_while_the_others_start() -> None:
    storage = RefusingStorage()
    await storage.open()
    now = SystemClock().now()
    ids = [f"tp-{i:05d}" for i in range(450)]
    for schedule_id in ids:
        await storage.create_schedule(daily(schedule_id, now - 1.0))
    storage.refuse = "tp-00250"  # in the third chunk of a hundred
    scheduler, announced = await scheduler_on(storage)

    with pytest.raises(StorageError, match="the disk is full"):
        await scheduler.tick()

    refused = ids[200:300]
    live = await runs_by_schedule(storage, ids)
    assert sorted(live) == [i for i in ids if i not in refused]
    assert len(announced) == len(ids) - len(refused)  # the written ones woke the executor
    still_due = await storage.due_schedules(now=SystemClock().now(), limit=1000)
    assert [s.schedule_id for s in still_due] == refused

    storage.refuse = None  # the disk has room again: the next tick fires the rest
    await scheduler.tick()
    live = await runs_by_schedule(storage, ids)
    assert sorted(live) == ids
    assert all(len(runs) == 1 for runs in live.values())
