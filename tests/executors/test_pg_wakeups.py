"""LISTEN/NOTIFY on PostgreSQL: workers and waiters hear of changes instead of polling for them.

A real ``pyworkflow worker run`` process polls storage only every 30 s in the first test, so
anything it does sooner was woken by a notification from this process; in the second, this
process waits up to a minute for a run the worker drives, so only a notification ends it sooner.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

import pyworkflow
from pyworkflow import RunStatus
from pyworkflow.runtime import get_runtime
from pyworkflow.storage.postgres import PostgresStorage
from workers import WorkerProcesses, add_unleased_run

pytestmark = pytest.mark.slow

MODULE = """
import asyncio
from pyworkflow import step, workflow

@step()
async def wk_pause(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds

@workflow()
async def wk_flow(seconds: float) -> float:
    return await wk_pause(seconds)
"""


async def _wait_until(predicate: object, within: float) -> None:
    deadline = time.monotonic() + within
    while not await predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {within}s"
        await asyncio.sleep(0.02)


async def test_a_worker_claims_a_run_made_due_elsewhere_at_once(
    pw_postgres: PostgresStorage,
    tmp_path: Path,
    worker_processes: WorkerProcesses,
) -> None:
    log = _start_worker(pw_postgres, tmp_path, worker_processes, poll_interval=30)
    # The worker polls once at start; wait until it serves (a loaded machine starts it
    # slowly), then give it time to go to sleep on its long poll.
    deadline = time.monotonic() + 60
    while "serving" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "the worker did not start within 60 s"
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)
    begun = time.monotonic()
    run_id = await add_unleased_run(pw_postgres, "wk_flow", 0.0)  # type: ignore[arg-type]

    async def done() -> bool:
        record = await pw_postgres.get_run(run_id)
        return record is not None and record.status is RunStatus.COMPLETED

    await _wait_until(done, within=10.0)
    assert time.monotonic() - begun < 5.0, log.read_text()


def _start_worker(
    storage: PostgresStorage, tmp_path: Path, processes: WorkerProcesses, *, poll_interval: float
) -> Path:
    """A real worker for ``MODULE`` on ``storage``'s schema; returns its log file."""
    (tmp_path / "wk_module.py").write_text(MODULE)
    log = tmp_path / "worker.log"
    # No password on the test server, so the masked URL is the URL.
    args = ["--module", "wk_module", "--storage", storage.url]
    processes.start("worker", "run", *args, "--poll-interval", str(poll_interval), log=log)
    return log


async def test_a_waiter_hears_that_a_run_ended_in_another_process(
    pw_postgres: PostgresStorage,
    tmp_path: Path,
    worker_processes: WorkerProcesses,
) -> None:
    log = _start_worker(pw_postgres, tmp_path, worker_processes, poll_interval=0.2)
    run_id = await add_unleased_run(pw_postgres, "wk_flow", 1.0)  # type: ignore[arg-type]
    executor = (await get_runtime()).executor
    assert not executor.is_driving(run_id)
    # Only the run's "ended" notification can end this wait early: nothing here drives the
    # run, so without it the wait lasts its full minute.
    begun = time.monotonic()
    await executor.wait_finished(run_id, 60.0)
    assert time.monotonic() - begun < 30.0, log.read_text()
    record = await pw_postgres.get_run(run_id)
    assert record is not None
    assert record.status is RunStatus.COMPLETED, log.read_text()
    assert await pyworkflow.get_workflow_result(run_id, timeout=5) == 1.0
