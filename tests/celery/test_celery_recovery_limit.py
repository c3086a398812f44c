"""A step that kills its worker every time is failed after a bounded number of deliveries.

``cf_suicide`` sends SIGKILL to the pool process executing it (a segfault, the OOM killer).
Celery forks a new pool process and the step is sent again once its lease lapses, again and
again, but not forever: with ``PYWORKFLOW_MAX_RECOVERIES=2`` the third delivery finds the
attempt taken twice without an outcome and fails it for good, although the step has retries
left (DESIGN §2.5: "a run that crashes its worker repeatedly ends failed with a clear reason
after a bounded number of recoveries").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from celery_flows import doomed
from celery_runs import events
from celery_workers import Deployment

import pyworkflow
from pyworkflow import EventType, RunStatus, WorkflowFailedError
from workers import executions_in

pytestmark = pytest.mark.slow

MAX_RECOVERIES = 2
SETTINGS = {
    "PYWORKFLOW_LEASE_SECONDS": "1",
    "PYWORKFLOW_DISPATCH_GRACE": "2",
    "PYWORKFLOW_MAX_RECOVERIES": str(MAX_RECOVERIES),
}


@pytest.mark.timeout(90)
async def test_a_step_that_keeps_killing_its_worker_fails_the_run(
    deployment: Callable[..., Deployment], client: Callable[..., None]
) -> None:
    deployed = deployment(storage="postgres", broker="redis", env=SETTINGS)
    worker = deployed.workers.start()
    client(deployed, dispatch_grace=2.0)

    run_id = await pyworkflow.start(doomed)
    with pytest.raises(WorkflowFailedError) as failed:
        await pyworkflow.get_workflow_result(run_id, timeout=60)

    side_effects = deployed.workdir / "side_effects.log"
    executions = executions_in(side_effects)[run_id, "cf_suicide#1"]
    assert 1 <= executions <= MAX_RECOVERIES + 1, deployed.context()
    message = failed.value.error_message
    assert "RecoveryLimitExceeded" in f"{failed.value.error_type} {message}", failed.value
    assert f"delivered {MAX_RECOVERIES + 1} times" in message, failed.value
    history = await events(run_id)
    outcomes = [
        e.type
        for e in history
        if e.payload.get("step_id") == "cf_suicide#1" and e.type is not EventType.STEP_STARTED
    ]
    assert outcomes == [EventType.STEP_FAILED], "failed for good, not retried"
    assert history[-1].type is EventType.WORKFLOW_FAILED
    assert (await pyworkflow.get_workflow_run(run_id)).status is RunStatus.FAILED

    # Bounded means over: nothing executes the step any more.
    await asyncio.sleep(2.5)
    assert executions_in(side_effects)[run_id, "cf_suicide#1"] == executions
    assert worker.proc.poll() is None, "the worker's main process died"
    assert worker.output().count("exited with 'signal 9 (SIGKILL)'") == executions
