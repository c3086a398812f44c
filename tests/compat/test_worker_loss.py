"""kill -9 of a real worker: ``recover_on_worker_loss`` and the step context across the crash.

A run of ``@workflow(recover_on_worker_loss=False)`` whose worker is killed mid-step fails with
``WorkerLostError`` when the next worker takes it, its step not run again; the same workflow
with the default is taken over and completes, and the step it re-runs reads the step context
the workflow set before the crash (from the replayed log).
"""

from __future__ import annotations

import os
import signal
import textwrap
import time
from pathlib import Path

import pytest

from pyworkflow.events import RunStatus
from workers import WorkerProcesses, create_unleased_run, read_run, subprocess_env, wait_for_run

pytestmark = pytest.mark.slow

MODULE = textwrap.dedent(
    """
    import asyncio
    import os

    from pyworkflow import StepContext, get_step_context, set_step_context, step, workflow

    MARKS = os.environ["LOSS_MARKS"]


    class Tenant(StepContext):
        tenant: str = ""


    @step(name="wl_slow")
    async def slow(tag: str) -> str:
        ctx = get_step_context()
        with open(os.path.join(MARKS, f"{tag}.{ctx.attempt}"), "w") as out:
            out.write(ctx.tenant)
        if not os.path.exists(os.path.join(MARKS, "go")):
            await asyncio.sleep(60)  # killed here the first time
        return f"{tag}:{ctx.tenant}"


    @workflow(name="wl_fragile", recover_on_worker_loss=False, context_class=Tenant)
    async def fragile() -> str:
        await set_step_context(Tenant(tenant="acme"))
        return await slow("fragile")


    @workflow(name="wl_sturdy", context_class=Tenant)
    async def sturdy() -> str:
        await set_step_context(Tenant(tenant="acme"))
        return await slow("sturdy")
    """
)


@pytest.mark.parametrize("workflow", ["wl_fragile", "wl_sturdy"])
def test_a_killed_worker(workflow: str, tmp_path: Path) -> None:
    (tmp_path / "losswf.py").write_text(MODULE)
    marks = tmp_path / "marks"
    marks.mkdir()
    env = subprocess_env(tmp_path)
    env["LOSS_MARKS"] = str(marks)
    db = tmp_path / "loss.db"
    workers = WorkerProcesses(tmp_path, env)
    log = tmp_path / "workers.log"
    try:
        first = workers.spawn("losswf", db, "--lease-seconds", "2", log=log)
        run_id = create_unleased_run(db, workflow)
        tag = workflow.removeprefix("wl_")
        deadline = time.monotonic() + 30
        while not (marks / f"{tag}.1").exists():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert (marks / f"{tag}.1").read_text() == "acme"
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        (marks / "go").touch()
        workers.spawn("losswf", db, "--lease-seconds", "2", log=log)
        record = wait_for_run(db, run_id, lambda r: r.status.is_terminal, within=30)
    finally:
        workers.kill_started()
    if workflow == "wl_fragile":
        assert record.status is RunStatus.FAILED, log.read_text()
        assert record.error is not None
        assert record.error["type"] == "WorkerLostError"
        assert "recover_on_worker_loss=False" in record.error["message"]
        assert not (marks / f"{tag}.2").exists()  # the step did not run again
    else:
        assert record.status is RunStatus.COMPLETED, log.read_text()
        assert (marks / f"{tag}.2").read_text() == "acme"  # the context, from the log
        assert read_run(db, run_id).recovery_count == 0  # progress made after the take-over
