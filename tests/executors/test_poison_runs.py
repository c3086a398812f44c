"""A run that kills its worker is failed alone: the runs that shared the worker carry on.

Real `pyworkflow worker run` processes on SQLite and on PostgreSQL. One run's step ends its
process (``os._exit``) every time it executes; five healthy runs, each a few steps of ~1 s,
share the worker with it. Whenever the worker dies, the test starts another (as a supervisor
would). A crash charges every run the worker held one recovery, since nobody can tell which
run killed it; but a run taken over again without progress is a *suspect*, and a worker holds
one suspect at a time, so from then on each crash is charged to the run that caused it. The
poison run must end failed with RecoveryLimitExceeded, every healthy run completed, and no
completed step executed twice.
"""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pyworkflow import EventType, RunStatus
from pyworkflow.storage import Storage, storage_from_url
from workers import WorkerProcesses, add_unleased_run, executions_in

pytestmark = pytest.mark.slow

MODULE = """
import asyncio
import os

from pyworkflow import get_step_context, step, workflow

EFFECTS = os.environ["POISON_EFFECTS"]


def record() -> None:
    ctx = get_step_context()
    with open(EFFECTS, "a") as out:
        out.write(f"{ctx.run_id} {ctx.step_id}\\n")
        out.flush()
        os.fsync(out.fileno())


@step(max_retries=0)
async def explode() -> None:
    record()
    await asyncio.sleep(0.3)  # long enough for its neighbours to be running their steps
    os._exit(3)


@workflow()
async def poison() -> None:
    await explode()


@step()
async def chunk(n: int) -> int:
    await asyncio.sleep(0.8)
    record()
    return n + 1


@workflow()
async def steady(n: int) -> int:
    for _ in range(3):
        n = await chunk(n)
    return n
"""

HEALTHY = 5
MAX_RECOVERIES = 3


@pytest.fixture(params=["sqlite", "postgres"])
async def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'runs.db'}"
    else:
        yield str(request.getfixturevalue("postgres_server").fresh_url())


async def test_only_the_run_that_kills_its_worker_is_failed(
    storage_url: str,
    tmp_path: Path,
    worker_env: dict[str, str],
    worker_processes: WorkerProcesses,
) -> None:
    (tmp_path / "poisonwf.py").write_text(textwrap.dedent(MODULE))
    effects = tmp_path / "effects.log"
    worker_env["POISON_EFFECTS"] = str(effects)
    storage: Storage = storage_from_url(storage_url)
    await storage.open()
    try:
        poison = await add_unleased_run(storage, "poison")  # type: ignore[arg-type]
        healthy = [
            await add_unleased_run(storage, "steady", i * 100)  # type: ignore[arg-type]
            for i in range(HEALTHY)
        ]
        since, deaths = time.monotonic(), 0
        log = tmp_path / "workers.log"
        flags = ("--lease-seconds", "1", "--max-recoveries", str(MAX_RECOVERIES))
        while True:
            worker = worker_processes.start_marked(
                "poisonwf", storage_url, *flags, log=log, since=since
            )
            while worker.poll() is None and not await _all_ended(storage, [poison, *healthy]):
                assert time.monotonic() - since < 150, log.read_text()[-3000:]
                await asyncio.sleep(0.1)
            if worker.poll() is None:
                break
            assert worker.returncode == 3, log.read_text()[-3000:]
            deaths += 1
        worker.terminate()
        worker.wait(timeout=30)

        failed = await storage.get_run(poison)
        assert failed is not None
        assert failed.status is RunStatus.FAILED
        assert failed.error is not None
        assert failed.error["type"] == "RecoveryLimitExceeded"
        for run_id in healthy:
            record = await storage.get_run(run_id)
            assert record is not None
            assert record.status is RunStatus.COMPLETED, (record.status, record.error)
            assert record.result == int(record.args["args"][0]) + 3
        counts = executions_in(effects)
        # The poison run's step ran once per take-over it was charged for, then no more.
        assert counts[poison, "explode#1"] == MAX_RECOVERIES + 1
        assert deaths == MAX_RECOVERIES + 1
        for run_id in healthy:
            completed = {
                e.payload["step_id"]
                for e in await storage.load_events(run_id)
                if e.type is EventType.STEP_COMPLETED
            }
            assert completed == {"chunk#1", "chunk#2", "chunk#3"}
    finally:
        await storage.close()


async def _all_ended(storage: Storage, run_ids: list[str]) -> bool:
    for run_id in run_ids:
        record = await storage.get_run(run_id)
        if record is None or not record.status.is_terminal:
            return False
    return True
