"""Messages delivered again: a step executes once while it runs, again after its worker died.

With ``acks_late``, a message stays unacknowledged in Redis while its task runs; once older
than the visibility timeout (1 s here) Redis hands it out again when a consumer restores
unacknowledged messages, as every worker does when it starts. The step lease (renewed by a
heartbeat while the step runs) makes that second delivery stand back: the step executes
once, although its message was received twice. When its pool process is killed instead, the
message Celery puts back waits for the dead process's step lease to lapse and executes it again
within seconds.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

import pytest
from celery_flows import beside_a_long_local_step, held_step, slow_step
from celery_runs import wait_for
from celery_workers import Deployment

import pyworkflow
from pyworkflow import EventType
from workers import executions_in

pytestmark = pytest.mark.slow

STEP_TASK_RECEIVED = re.compile(r"Task pyworkflow\.step\[([0-9a-f-]+)\] received")


async def test_a_step_redelivered_while_it_runs_executes_once(
    deployment: Callable[..., Deployment], client: Callable[..., None]
) -> None:
    deployed = deployment(
        storage="postgres",
        broker="redis",
        env={"PYWORKFLOW_VISIBILITY_TIMEOUT": "1", "PYWORKFLOW_LEASE_SECONDS": "2"},
    )
    first = deployed.workers.start(name="first")
    client(deployed)
    side_effects = deployed.workdir / "side_effects.log"
    hold = deployed.workdir / "hold"  # the step works until the test removes it
    hold.touch()

    run_id = await pyworkflow.start(held_step, str(hold))

    async def executing() -> bool:
        return bool(executions_in(side_effects))

    await wait_for(executing, 20, deployed.context)
    await asyncio.sleep(1.5)  # the unacknowledged message is now older than the timeout
    second = deployed.workers.start(name="second")  # restores it at start: a redelivery

    def received() -> list[str]:
        return STEP_TASK_RECEIVED.findall(first.output() + second.output())

    async def redelivered() -> bool:
        return len(received()) > len(set(received()))

    # However slowly a loaded machine starts the second worker, the step is still running
    # when the redelivered message arrives.
    await wait_for(redelivered, 60, deployed.context)
    hold.unlink()

    assert await pyworkflow.get_workflow_result(run_id, timeout=30) == str(hold)
    assert executions_in(side_effects) == {(run_id, "cf_held#1"): 1}, deployed.context()
    assert not deployed.unexpected_errors(), deployed.context()


async def test_a_step_killed_mid_way_runs_again_within_the_lease(
    deployment: Callable[..., Deployment], client: Callable[..., None]
) -> None:
    """The message Celery puts back for a killed pool process waits for the dead step lease.

    It does not depend on the run's watchdog (``dispatch_grace``, 60 s here, the default).
    """
    deployed = deployment(storage="postgres", broker="redis", env={"PYWORKFLOW_LEASE_SECONDS": "2"})
    worker = deployed.workers.start()
    client(deployed)
    side_effects = deployed.workdir / "side_effects.log"
    run_id = await pyworkflow.start(slow_step, 2.0)

    async def executed() -> list[str]:
        return side_effects.read_text().split() if side_effects.exists() else []

    *_, pid = await wait_for(executed, 20, deployed.context)
    deployed.workers.kill_pool_process(worker, int(pid))
    killed_at = time.monotonic()

    assert await pyworkflow.get_workflow_result(run_id, timeout=30) == 2.0
    recovered_in = time.monotonic() - killed_at
    assert executions_in(side_effects) == {(run_id, "cf_slow#1"): 2}
    # Lapse (<= 2 s) + the step (2 s) + slack for this machine; far below the 60 s grace.
    assert recovered_in < 15, f"{recovered_in:.1f}s\n{deployed.context()}"
    # The second execution is in the history: attempt 1 was cut short, attempt 2 ran.
    events = await pyworkflow.get_workflow_events(run_id)
    (cut,) = [e for e in events if e.type is EventType.WORKFLOW_INTERRUPTED]
    assert cut.data["reason"] == "redelivered"
    assert cut.data["steps"] == [{"step_id": "cf_slow#1", "attempt": 1}]
    started = [e.data["attempt"] for e in events if e.type is EventType.STEP_STARTED]
    assert started == [1, 2]


async def test_a_step_beside_a_long_force_local_step_executes_once(
    deployment: Callable[..., Deployment], client: Callable[..., None]
) -> None:
    deployed = deployment(
        storage="postgres",
        broker="redis",
        env={"PYWORKFLOW_LEASE_SECONDS": "1", "PYWORKFLOW_DISPATCH_GRACE": "2"},
    )
    deployed.workers.start()
    client(deployed, dispatch_grace=2.0)

    # gather(slow(0.2) on a worker, local_slow(3.0) inline, holding the run's lease 3 s).
    run_id = await pyworkflow.start(beside_a_long_local_step, 3.0)
    assert await pyworkflow.get_workflow_result(run_id, timeout=30) == [0.2, 3.0]

    executions = executions_in(deployed.workdir / "side_effects.log")
    assert executions[run_id, "cf_local_slow#1"] == 1
    assert executions[run_id, "cf_slow#1"] == 1, deployed.context()
