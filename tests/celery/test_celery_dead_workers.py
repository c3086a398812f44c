"""A Celery worker killed mid-step: its step runs again at once on another, not after minutes.

Leases of 60 s, a dispatch grace of 60 s and a Redis visibility timeout of an hour: a re-run
within seconds can only come from the killed worker's pool process being seen dead (its
PostgreSQL session, with its advisory lock, ends with its socket; on SQLite its lock file
is unlocked by the kernel), not from a lease, the watchdog or the broker.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from celery_flows import hang_once
from celery_runs import wait_for, wait_status
from celery_workers import Deployment

import pyworkflow
from pyworkflow import RunStatus
from workers import executions_in

pytestmark = pytest.mark.slow

SLOW_TO_NOTICE = {
    "PYWORKFLOW_LEASE_SECONDS": "60",
    "PYWORKFLOW_DISPATCH_GRACE": "60",
    "PYWORKFLOW_VISIBILITY_TIMEOUT": "3600",
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("storage", ["postgres", "sqlite"])
async def test_a_killed_workers_step_runs_again_within_seconds(
    deployment: Callable[..., Deployment], client: Callable[..., None], storage: str
) -> None:
    deployed = deployment(storage=storage, broker="redis", env=SLOW_TO_NOTICE)
    doomed = deployed.workers.start(name="doomed", env={"CF_HANG": "1"})
    client(deployed, dispatch_grace=60)
    run_id = await pyworkflow.start(hang_once)
    effects = deployed.workdir / "side_effects.log"

    async def executed(times: int) -> bool:
        return executions_in(effects)[run_id, "cf_hangs_in_doomed#1"] >= times

    await wait_for(lambda: executed(1), 30, deployed.context)
    survivor = deployed.workers.start(name="survivor")
    deployed.workers.kill(doomed)
    killed_at = time.monotonic()

    # A third of the lease and of the grace: only the death being seen explains a re-run in
    # time (how soon it comes is printed: a figure, not a bound).
    await wait_for(lambda: executed(2), 20, deployed.context)
    again_after = time.monotonic() - killed_at
    print(f"{storage}: the step ran again {again_after:.2f}s after the kill")
    record = await wait_status(run_id, RunStatus.COMPLETED, 20, deployed.context)
    assert await pyworkflow.get_workflow_result(run_id) in survivor.pool_pids()
    assert record.status is RunStatus.COMPLETED
    assert "is dead: its runs are taken over now" in survivor.output(), deployed.context()
