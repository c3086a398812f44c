"""A PostgreSQL outage under two workers: no step attempt runs twice, whatever its length.

Two real `pyworkflow worker run` processes (lease 3 s) share 16 runs of 6 steps on a private
server (``private_postgres``). Once a third of the steps have run, the server stops (``-m
immediate``: connections drop, nothing answers) for longer than the lease, or for less, and
starts again. Each step execution appends ``run step attempt pid`` to a file outside the engine.

What must hold afterwards: every run completed; every execution of a step ran as an attempt
that the run's log started, and no attempt ran twice. A worker that cannot renew its leases
gives its runs up before they lapse, and a write retried after the outage is never taken for
its lost first attempt unless the stored row and events are that write's: an owner never acts
on a run it cannot prove it still holds. (A step cut short by the outage runs again, as its
next attempt, after a logged WORKFLOW_INTERRUPTED.)
"""

from __future__ import annotations

import asyncio
import signal
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from private_postgres import PrivateServer, private_server
from pyworkflow.events import EventType, RunStatus
from pyworkflow.storage.postgres import PostgresStorage
from workers import WorkerProcesses, add_unleased_run

pytestmark = pytest.mark.slow

RUNS = 16
STEPS = 6

WORKFLOW_MODULE = """
import asyncio
import os
import random

from pyworkflow import get_step_context, step, workflow

EFFECTS = os.environ["OUTAGE_EFFECTS"]


@step()
async def work(n: int) -> int:
    await asyncio.sleep(random.uniform(0.2, 0.6))
    ctx = get_step_context()
    with open(EFFECTS, "a") as out:  # one short line per write: appends do not interleave
        out.write(f"{ctx.run_id} {ctx.step_id} {ctx.attempt} {os.getpid()}\\n")
    return n + 1


@workflow()
async def chain(n: int) -> int:
    for _ in range(STEPS):
        n = await work(n)
    return n
""".replace("STEPS", str(STEPS))


@pytest.fixture(scope="module")
def server() -> Iterator[PrivateServer]:
    with private_server() as instance:
        yield instance


async def _create_runs(url: str) -> dict[str, int]:
    storage = PostgresStorage(url)
    await storage.open()
    try:
        return {await add_unleased_run(storage, "chain", 100 * n): 100 * n for n in range(RUNS)}
    finally:
        await storage.close()


async def _read(url: str, run_ids: list[str]) -> tuple[dict[str, object], dict[str, list[int]]]:
    """Each run's (status, result), and each ``"run step"``'s logged attempts."""
    storage = PostgresStorage(url, reconnect_timeout=5)
    await storage.open()
    try:
        outcomes: dict[str, object] = {}
        attempts: dict[str, list[int]] = {}
        for run_id in run_ids:
            record = await storage.get_run(run_id)
            assert record is not None
            outcomes[run_id] = (record.status, record.result)
            for event in await storage.load_events(run_id):
                if event.type is EventType.STEP_STARTED:
                    key = f"{run_id} {event.payload['step_id']}"
                    attempts.setdefault(key, []).append(event.payload["attempt"])
        return outcomes, attempts
    finally:
        await storage.close()


@pytest.mark.parametrize("outage", [10.0, 1.5], ids=["longer-than-the-lease", "shorter"])
def test_an_outage_runs_no_step_attempt_twice(
    server: PrivateServer,
    outage: float,
    tmp_path: Path,
    worker_env: dict[str, str],
    worker_processes: WorkerProcesses,
) -> None:
    url = f"{server.url}?schema=outage_{int(outage * 10)}"
    (tmp_path / "outagewf.py").write_text(textwrap.dedent(WORKFLOW_MODULE))
    effects = tmp_path / "effects.log"
    effects.touch()
    worker_env["OUTAGE_EFFECTS"] = str(effects)
    log = tmp_path / "workers.log"
    runs = asyncio.run(_create_runs(url))
    flags = ("--lease-seconds", "3", "--poll-interval", "0.2")
    workers = [
        worker_processes.start("worker", "run", "--module", "outagewf", "--storage", url,
                               *flags, log=log)
        for _ in range(2)
    ]  # fmt: skip

    def context() -> str:
        return f"worker log:\n{log.read_text()[-6000:]}\nserver log:\n{server.server_log()[-2000:]}"

    deadline = time.monotonic() + 30
    while len(effects.read_text().splitlines()) < RUNS * STEPS // 3:
        assert all(w.poll() is None for w in workers), f"a worker exited; {context()}"
        assert time.monotonic() < deadline, f"the runs did not start; {context()}"
        time.sleep(0.05)
    server.stop("immediate")
    try:
        time.sleep(outage)
    finally:
        server.start()

    deadline = time.monotonic() + 60
    while True:
        outcomes, logged = asyncio.run(_read(url, list(runs)))
        if all(status.is_terminal for status, _ in outcomes.values()):  # type: ignore[attr-defined]
            break
        assert time.monotonic() < deadline, f"runs did not finish: {outcomes}; {context()}"
        time.sleep(0.3)
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        assert worker.wait(timeout=30) == 0, context()

    assert outcomes == {r: (RunStatus.COMPLETED, n + STEPS) for r, n in runs.items()}, context()
    executed: dict[str, list[int]] = {}
    for line in effects.read_text().splitlines():
        run_id, step_id, attempt, _pid = line.split()
        executed.setdefault(f"{run_id} {step_id}", []).append(int(attempt))
    assert len(executed) == RUNS * STEPS
    twice = {k: a for k, a in executed.items() if max(Counter(a).values()) > 1}
    assert not twice, f"step attempts executed twice: {twice}; {context()}"
    unlogged = {k: (a, logged.get(k)) for k, a in executed.items() if not set(a) <= set(logged[k])}
    assert not unlogged, f"executions the log does not explain: {unlogged}; {context()}"
    assert "Task exception was never retrieved" not in log.read_text(), context()
