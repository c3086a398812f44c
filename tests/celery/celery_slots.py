"""An every-second schedule fired while a scheduler process is killed: each slot started once.

The scenario of the Celery schedule tests (the workers' sweepers, or Celery beat): a schedule
of ``cf_sequence`` every second (ALLOW_ALL, a catch-up window of a minute) fires for a while,
``kill`` ends one of the processes firing it with SIGKILL, the rest fire on, then the schedule
is paused and every run it started is awaited. ``assert_each_slot_once`` then checks one run
per slot, none missing between the first and the last, none skipped, all completed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from celery_flows import sequence
from celery_workers import Deployment

import pyworkflow
from pyworkflow import OverlapPolicy, RunStatus, ScheduleSpec, WorkflowRun


async def fire_through_a_kill(
    deployed: Deployment, schedule_id: str, kill: Callable[[], None], *, before: float, after: float
) -> list[WorkflowRun]:
    """Create the schedule, kill after ``before`` s, pause ``after`` s later; its ended runs."""
    await pyworkflow.create_schedule(
        sequence,
        ScheduleSpec(interval="1s"),
        args=[1],
        schedule_id=schedule_id,
        overlap_policy=OverlapPolicy.ALLOW_ALL,
        catchup_window="1m",
    )
    await asyncio.sleep(before)
    kill()
    await asyncio.sleep(after)
    await pyworkflow.pause_schedule(schedule_id)
    deadline = time.monotonic() + 60
    while True:
        runs = await pyworkflow.list_workflow_runs(schedule_id=schedule_id, limit=1000)
        if runs and all(r.status.is_terminal for r in runs):
            return runs
        assert time.monotonic() < deadline, f"runs did not end\n{deployed.context()}"
        await asyncio.sleep(0.3)


async def assert_each_slot_once(
    deployed: Deployment, schedule_id: str, runs: list[WorkflowRun], *, at_least: int
) -> None:
    """One run per slot, no slot missing, none skipped, every run completed by the workers."""
    slots = sorted(r.schedule_slot_at.timestamp() for r in runs if r.schedule_slot_at)
    offsets = [round(s - slots[0], 3) for s in slots]
    assert offsets == [float(i) for i in range(len(slots))], deployed.context()
    assert len(slots) >= at_least
    assert {r.status for r in runs} == {RunStatus.COMPLETED}
    assert [r.result for r in runs] == [[2, 12, 112]] * len(runs)
    schedule = await pyworkflow.get_schedule(schedule_id)
    assert (schedule.total_runs, schedule.skipped_runs) == (len(runs), 0)
