"""kill -9 a real `pyworkflow worker run` again and again: every run still completes, once.

The workflow module lives in tmp_path; each step execution appends one fsync'ed line to a
side-effect file outside the engine. Runs are created straight through the storage API with no
lease, so only the worker executes them, on SQLite (a file in tmp_path) and on PostgreSQL (a
fresh schema of the session's database). After each SIGKILL (with the worker dead, so nothing
moves) the test reads the event log: a step whose STEP_COMPLETED is logged then must never be
executed again (DESIGN §2.1). A step in flight at a kill may run again (at-least-once).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import textwrap
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from pyworkflow.events import EventType, RunStatus
from pyworkflow.serialization import Codec
from pyworkflow.storage import Storage, storage_from_url
from workers import KILL_EFFECTS, WorkerProcesses, add_unleased_run, executions_in

pytestmark = pytest.mark.slow

STEPS = 8
KILLS = 4  # keep below max_recoveries (5): a run killed every time without progress fails
LEASE_SECONDS = 2

WORKFLOW_MODULE = """
import asyncio
import random

from pyworkflow import sleep, step, workflow

from kill_effects import record_execution


@step()
async def work(n: int) -> int:
    await asyncio.sleep(random.uniform(0.1, 0.4))
    record_execution()
    await asyncio.sleep(random.uniform(0.0, 0.1))  # a kill here re-executes a recorded step
    return n * 2 + 1


@workflow()
async def chain(n: int) -> int:
    total = 0
    for i in range(STEPS):
        total += await work(n + i)
        if i == 2:
            await sleep(0.3)
    return total
""".replace("STEPS", str(STEPS))


def expected_result(n: int) -> int:
    return sum((n + i) * 2 + 1 for i in range(STEPS))


@pytest.fixture(params=["sqlite", "postgres"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.db'}"
    return str(request.getfixturevalue("postgres_server").fresh_url())


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[Storage]:
    storage = storage_from_url(url)
    await storage.open()
    try:
        yield storage
    finally:
        await storage.close()


async def _create_runs(url: str, numbers: list[int]) -> dict[str, int]:
    async with opened(url) as storage:
        return {await add_unleased_run(storage, "chain", n): n for n in numbers}


async def _completed_steps(url: str, run_ids: list[str]) -> set[tuple[str, str]]:
    async with opened(url) as storage:
        done = set()
        for run_id in run_ids:
            for event in await storage.load_events(run_id):
                if event.type is EventType.STEP_COMPLETED:
                    done.add((run_id, event.payload["step_id"]))
        return done


async def _logged_attempts(url: str, run_ids: list[str]) -> dict[tuple[str, str], list[int]]:
    """The attempts each step's STEP_STARTED events record, in log order."""
    async with opened(url) as storage:
        attempts: dict[tuple[str, str], list[int]] = {}
        for run_id in run_ids:
            for event in await storage.load_events(run_id):
                if event.type is EventType.STEP_STARTED:
                    key = (run_id, event.payload["step_id"])
                    attempts.setdefault(key, []).append(event.payload["attempt"])
        return attempts


def _executed_attempts(side_effects: Path) -> dict[tuple[str, str], list[int]]:
    """The attempt number each execution of each step saw (``kill_effects`` lines)."""
    seen: dict[tuple[str, str], list[int]] = {}
    for line in side_effects.read_text().splitlines():
        run_id, step_id, attempt, *_ = line.split()
        seen.setdefault((run_id, step_id), []).append(int(attempt))
    return seen


async def _statuses(url: str, run_ids: list[str]) -> dict[str, tuple[RunStatus, object]]:
    codec = Codec()
    async with opened(url) as storage:
        out = {}
        for run_id in run_ids:
            record = await storage.get_run(run_id)
            assert record is not None
            result = codec.decode(record.result) if record.status is RunStatus.COMPLETED else None
            out[run_id] = (record.status, result)
        return out


def test_runs_survive_repeated_kill_9_of_the_worker(
    tmp_path: Path,
    storage_url: str,
    worker_env: dict[str, str],
    worker_processes: WorkerProcesses,
) -> None:
    seed = int(os.environ.get("KILLTEST_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    began = time.monotonic()
    (tmp_path / "killwf.py").write_text(textwrap.dedent(WORKFLOW_MODULE))
    shutil.copy(KILL_EFFECTS, tmp_path)
    side_effects = tmp_path / "side_effects.log"
    log = tmp_path / "worker.log"
    worker_env["KILLTEST_SIDE_EFFECTS"] = str(side_effects)

    def start_worker() -> subprocess.Popen[bytes]:
        return worker_processes.start_marked(
            "killwf", storage_url, "--lease-seconds", str(LEASE_SECONDS), log=log, since=began
        )

    def wait_ready() -> None:
        # SIGTERM before the worker installed its handlers would just kill it.
        deadline = time.monotonic() + 15
        while " serving " not in log.read_text().rsplit("--- worker start", 1)[-1]:
            assert time.monotonic() < deadline, f"worker did not start; {context()}"
            time.sleep(0.05)

    def context() -> str:
        return f"seed={seed} (rerun with KILLTEST_SEED={seed}); worker log:\n{log.read_text()}"

    runs = asyncio.run(_create_runs(storage_url, list(range(0, 800, 100))))
    # Invariant (DESIGN §2.1): (run, step) completed in the log -> executions seen at that time.
    frozen: dict[tuple[str, str], int] = {}
    kills = 0
    worker = start_worker()
    while kills < KILLS:
        if kills % 2:
            # Every other kill lands while the worker works, however slowly it started (a
            # fresh checkout compiles its bytecode first); the others may land in its start.
            wait_ready()
            time.sleep(rng.uniform(0.05, 1.0))
        else:
            time.sleep(rng.uniform(0.3, 2.0))  # the worker needs ~0.5 s to start
        if kills == KILLS - 1 and not frozen:
            # The last kill comes after some step completed, so the "never twice" check below
            # has something to hold on to.
            deadline = time.monotonic() + 20
            while not asyncio.run(_completed_steps(storage_url, list(runs))):
                assert time.monotonic() < deadline, f"no step completed; {context()}"
                time.sleep(0.1)
        assert worker.poll() is None, f"worker exited by itself; {context()}"
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        kills += 1
        executions = executions_in(side_effects)
        for key in asyncio.run(_completed_steps(storage_url, list(runs))):
            frozen.setdefault(key, executions[key])
        # New runs while no worker is alive, so that every kill finds runs in flight.
        runs.update(
            asyncio.run(_create_runs(storage_url, [1000 * kills + 10 * i for i in range(3)]))
        )
        worker = start_worker()

    deadline = time.monotonic() + 40
    while True:
        statuses = asyncio.run(_statuses(storage_url, list(runs)))
        if all(status.is_terminal for status, _ in statuses.values()):
            break
        assert time.monotonic() < deadline, f"runs did not finish: {statuses}; {context()}"
        time.sleep(0.3)
    wait_ready()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=10) == 0, context()

    for run_id, n in runs.items():
        assert statuses[run_id] == (RunStatus.COMPLETED, expected_result(n)), context()
    executions = executions_in(side_effects)
    completed = asyncio.run(_completed_steps(storage_url, list(runs)))
    assert completed == {(run_id, f"work#{i + 1}") for run_id in runs for i in range(STEPS)}
    assert set(executions) == completed, "a step ran that the log does not know"
    for key, count_then in frozen.items():
        assert executions[key] == count_then, (
            f"{key} was completed in the log at a kill with {count_then} executions, then "
            f"executed again ({executions[key]} in all); {context()}"
        )
    for key, count in executions.items():
        assert 1 <= count <= kills + 1, f"{key} executed {count} times; {context()}"
    for run_id in runs:
        # The workflow is sequential: a kill interrupts at most one step of a run.
        duplicates = sum(c - 1 for (r, _), c in executions.items() if r == run_id)
        assert duplicates <= kills, f"run {run_id}: {duplicates} re-executions; {context()}"
    # Every execution is explained by the history alone: each ran as an attempt that the log
    # started, and no attempt ran twice (one cut short by a kill runs again as the next one).
    logged = asyncio.run(_logged_attempts(storage_url, list(runs)))
    for key, seen in _executed_attempts(side_effects).items():
        assert len(seen) == len(set(seen)), f"{key}: an attempt ran twice {seen}; {context()}"
        assert set(seen) <= set(logged[key]), f"{key}: ran {seen}, log {logged[key]}"
    text = log.read_text()
    assert "Traceback" not in text, context()
    assert "taken over from" in text, f"no kill hit a leased run; {context()}"
    assert frozen, f"no step had completed at any kill; {context()}"
    print(
        f"seed={seed} kills={kills} runs={len(runs)} re-executions="
        f"{sum(c - 1 for c in executions.values())} in {time.monotonic() - began:.1f}s"
    )
