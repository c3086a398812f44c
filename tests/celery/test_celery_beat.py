"""Celery beat as the pyworkflow documentation spells it: the scheduler class, and ``--beat``.

The workers' sweepers are off (``PYWORKFLOW_SWEEP_INTERVAL=0``), so only beat fires. Two beats
fire one every-second schedule at once: ``pyworkflow worker run --executor celery --beat`` (beat
embedded in the worker) and ``celery -A pyworkflow.celery.app beat --scheduler
pyworkflow.celery.scheduler:PyWorkflowScheduler`` (a beat process of its own). The standalone
one is killed with SIGKILL half-way. Then: one run per slot, none missing, every run completed
by the worker.
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


async def test_two_beats_and_a_kill_start_each_slot_once(
    deployment: Callable[..., Deployment], client: Callable[..., None]
) -> None:
    deployed = deployment(
        storage="postgres", broker="redis", env={"PYWORKFLOW_SWEEP_INTERVAL": "0"}
    )
    worker = deployed.workers.start(name="celery", via_cli=True, beat=True)
    standalone = deployed.workers.start_beat()
    client(deployed)
    await pyworkflow.create_schedule(
        sequence,
        ScheduleSpec(interval="1s"),
        args=[1],
        schedule_id="beat-every-second",
        overlap_policy=OverlapPolicy.ALLOW_ALL,
        catchup_window="1m",
    )
    await asyncio.sleep(4)
    deployed.workers.kill(standalone)
    await asyncio.sleep(4)
    await pyworkflow.pause_schedule("beat-every-second")
    deadline = time.monotonic() + 60
    while True:
        runs = await pyworkflow.list_workflow_runs(schedule_id="beat-every-second", limit=1000)
        if runs and all(r.status.is_terminal for r in runs):
            break
        assert time.monotonic() < deadline, f"runs did not end\n{deployed.context()}"
        await asyncio.sleep(0.3)
    slots = sorted(r.schedule_slot_at.timestamp() for r in runs if r.schedule_slot_at)
    offsets = [round(s - slots[0], 3) for s in slots]
    assert offsets == [float(i) for i in range(len(slots))], deployed.context()
    assert len(slots) >= 6
    assert {r.status for r in runs} == {RunStatus.COMPLETED}
    assert [r.result for r in runs] == [[2, 12, 112]] * len(runs)
    schedule = await pyworkflow.get_schedule("beat-every-second")
    assert (schedule.total_runs, schedule.skipped_runs) == (len(runs), 0)
    # Both beats fired: the embedded one logs in the worker's output, the other in its own.
    assert "beat fires the schedules of" in worker.output()
    assert "beat fires the schedules of" in standalone.output()
    assert not deployed.unexpected_errors(), deployed.context()
