"""Schedules on Celery: each worker's sweeper fires them; a worker killed mid-stream loses none.

Two Celery workers on one PostgreSQL schema (Redis broker) both fire an every-second
schedule (ALLOW_ALL, a catch-up window of a minute) from their sweepers, through the same
engine call as the local executor (``_engine/periodic.py``). One is killed with SIGKILL (its
pool too, by pid); the other goes on. Then: one run per slot, no slot missing between the first
and the last, none skipped, and every run completed by the workers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from celery_flows import sequence
from celery_workers import Deployment

import pyworkflow
from pyworkflow import OverlapPolicy, RunStatus, ScheduleSpec

pytestmark = pytest.mark.slow


async def test_two_celery_workers_and_a_kill_start_each_slot_once(
    deployment: Callable[..., Deployment], client: Callable[..., None]
) -> None:
    deployed = deployment(storage="postgres", broker="redis")
    first = deployed.workers.start(name="first")
    deployed.workers.start(name="second")
    client(deployed)
    await pyworkflow.create_schedule(
        sequence,
        ScheduleSpec(interval="1s"),
        args=[1],
        schedule_id="celery-every-second",
        overlap_policy=OverlapPolicy.ALLOW_ALL,
        catchup_window="1m",
    )
    await asyncio.sleep(5)
    deployed.workers.kill(first)
    await asyncio.sleep(5)
    await pyworkflow.pause_schedule("celery-every-second")
    deadline = time.monotonic() + 60
    while True:
        runs = await pyworkflow.list_workflow_runs(schedule_id="celery-every-second", limit=1000)
        if runs and all(r.status.is_terminal for r in runs):
            break
        assert time.monotonic() < deadline, f"runs did not end\n{deployed.context()}"
        await asyncio.sleep(0.3)
    slots = sorted(r.schedule_slot_at.timestamp() for r in runs if r.schedule_slot_at)
    offsets = [round(s - slots[0], 3) for s in slots]
    assert offsets == [float(i) for i in range(len(slots))]  # none twice, none missing
    assert len(slots) >= 8
    assert {r.status for r in runs} == {RunStatus.COMPLETED}
    assert [r.result for r in runs] == [[2, 12, 112]] * len(runs)
    schedule = await pyworkflow.get_schedule("celery-every-second")
    assert (schedule.total_runs, schedule.skipped_runs) == (len(runs), 0)
