"""Retention on a Celery deployment: the sweeper deletes runs that ended long enough ago.

It was the local executor's alone, so a deployment of Celery workers never pruned. Both
executors now start the engine's periodic work (``_engine/periodic.py``); on Celery it runs in
each worker's sweeper, beside the sweep, once at start and then hourly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from celery_flows import sequence
from celery_workers import Deployment

import pyworkflow
from pyworkflow import RunNotFoundError

pytestmark = pytest.mark.slow


async def test_a_celery_worker_prunes_runs_past_retention(
    deployment: Callable[..., Deployment], client: Callable[..., None]
) -> None:
    deployed = deployment(storage="postgres", broker="redis", env={"PYWORKFLOW_RETENTION": "2s"})
    first = deployed.workers.start(name="first")
    client(deployed)
    run_id = await pyworkflow.start(sequence, 1)
    await pyworkflow.get_workflow_result(run_id, timeout=30)
    assert deployed.workers.stop(first) == 0
    await asyncio.sleep(2.5)  # now it ended longer ago than the retention

    deployed.workers.start(name="second")  # its sweeper prunes at start
    deadline = time.monotonic() + 20
    while True:
        try:
            await pyworkflow.get_workflow_run(run_id)
        except RunNotFoundError:
            break
        assert time.monotonic() < deadline, f"the run was not pruned\n{deployed.context()}"
        await asyncio.sleep(0.2)
    assert not deployed.unexpected_errors(), deployed.context()
