"""cancel_workflow on a run whose step is running: the step finishes, the next never starts."""

from __future__ import annotations

import asyncio

import pytest

import pyworkflow
from pyworkflow import EventType, step, workflow
from pyworkflow.storage.protocol import Storage

started: list[str] = []


@step()
async def tc_slow(name: str) -> str:
    started.append(name)
    await asyncio.sleep(0.5)
    return name


@workflow()
async def tc_two_steps() -> list[str]:
    done = [await tc_slow("first")]
    done.append(await tc_slow("second"))
    return done


async def test_cancel_while_a_step_runs(pw: Storage) -> None:
    started.clear()
    run_id = await pyworkflow.start(tc_two_steps)
    while not started:
        await asyncio.sleep(0.01)
    assert await pyworkflow.cancel_workflow(run_id, reason="stop") is True
    with pytest.raises(pyworkflow.WorkflowCancelledError, match="stop"):
        await pyworkflow.get_workflow_result(run_id, timeout=10)
    assert started == ["first"], "a step not yet started is not started after a cancel"
    types = [e.type for e in await pyworkflow.get_workflow_events(run_id)]
    assert types[-3:] == [
        EventType.CANCELLATION_REQUESTED,  # logged as soon as the lease holder sees it
        EventType.STEP_COMPLETED,  # the running step finished and its result is logged
        EventType.WORKFLOW_CANCELLED,  # the workflow saw CancellationError at its next step
    ]
