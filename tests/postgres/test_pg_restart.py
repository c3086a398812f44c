"""PostgreSQL restarts under a running `pyworkflow worker run`: it reconnects, every run ends once.

The shared server is not ours to restart, so this module starts a PostgreSQL instance of its own
(``initdb`` into a temporary directory owned by the ``postgres`` user, a free port, its socket
in that directory) and stops only that one, by its data directory, at the end. A real worker
process serves 20 runs of 8 steps; each step execution appends a line to a file outside the
engine. Mid-way the server restarts (``-m fast``: connections are told to go; ``-m immediate``:
the server crashes and recovers from its WAL), and then every run must complete with every step
executed exactly once: the worker stayed alive, so even a step in flight must not run again.
"""

from __future__ import annotations

import asyncio
import re
import signal
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from private_postgres import PrivateServer, private_server
from pyworkflow.events import EventType, RunStatus
from pyworkflow.exceptions import StorageUnavailableError
from pyworkflow.serialization import Codec
from pyworkflow.storage.postgres import PostgresStorage
from pyworkflow.storage.records import NewRun
from workers import WorkerProcesses, add_unleased_run

pytestmark = pytest.mark.slow

RUNS = 20
STEPS = 8

WORKFLOW_MODULE = """
import asyncio
import os
import random

from pyworkflow import get_step_context, sleep, step, workflow

SIDE_EFFECTS = os.environ["RESTART_SIDE_EFFECTS"]


@step()
async def work(n: int) -> int:
    await asyncio.sleep(random.uniform(0.1, 0.3))
    ctx = get_step_context()
    with open(SIDE_EFFECTS, "a") as out:  # one short line per write: appends do not interleave
        out.write(f"{ctx.run_id} {ctx.step_id}\\n")
    return n + 1


@workflow()
async def chain(n: int) -> int:
    for i in range(STEPS):
        n = await work(n)
        if i == 3:
            await sleep(0.2)
    return n
""".replace("STEPS", str(STEPS))


@pytest.fixture(scope="module")
def server() -> Iterator[PrivateServer]:
    """One private instance for the module; removed at the end."""
    with private_server() as instance:
        yield instance


async def _create_runs(url: str, count: int) -> dict[str, int]:
    storage = PostgresStorage(url)
    await storage.open()
    try:
        return {await add_unleased_run(storage, "chain", 100 * n): 100 * n for n in range(count)}
    finally:
        await storage.close()


Outcomes = dict[str, tuple[RunStatus, object]]


async def _runs_and_steps(url: str, run_ids: list[str]) -> tuple[Outcomes, list[str]]:
    """Each run's (status, result), and the completed steps of all runs, duplicates kept."""
    codec = Codec()
    storage = PostgresStorage(url)
    await storage.open()
    try:
        outcomes: Outcomes = {}
        steps: list[str] = []
        for run_id in run_ids:
            record = await storage.get_run(run_id)
            assert record is not None
            done = record.status is RunStatus.COMPLETED
            outcomes[run_id] = (record.status, codec.decode(record.result) if done else None)
            events = await storage.load_events(run_id)
            assert [e.seq for e in events] == list(range(1, len(events) + 1)), "a gap in the log"
            steps += [
                f"{run_id} {e.payload['step_id']}"
                for e in events
                if e.type is EventType.STEP_COMPLETED
            ]
        return outcomes, steps
    finally:
        await storage.close()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_runs_complete_once_across_a_server_restart(
    server: PrivateServer,
    mode: str,
    tmp_path: Path,
    worker_env: dict[str, str],
    worker_processes: WorkerProcesses,
) -> None:
    url = f"{server.url}?schema=restart_{mode}"
    (tmp_path / "restartwf.py").write_text(textwrap.dedent(WORKFLOW_MODULE))
    side_effects = tmp_path / "side_effects.log"
    side_effects.touch()
    worker_env["RESTART_SIDE_EFFECTS"] = str(side_effects)
    log = tmp_path / "worker.log"
    runs = asyncio.run(_create_runs(url, RUNS))
    worker = worker_processes.start(
        "worker", "run", "--module", "restartwf", "--storage", url, "--poll-interval", "0.2",
        log=log,
    )  # fmt: skip

    def context() -> str:
        return f"worker log:\n{log.read_text()}\nserver log:\n{server.server_log()[-3000:]}"

    # Restart once about a third of the steps ran: runs are mid-way, steps are in flight.
    deadline = time.monotonic() + 30
    while len(side_effects.read_text().splitlines()) < RUNS * STEPS // 3:
        assert worker.poll() is None, f"worker exited; {context()}"
        assert time.monotonic() < deadline, f"the runs did not start; {context()}"
        time.sleep(0.05)
    executed_before = len(side_effects.read_text().splitlines())
    server.restart(mode)

    deadline = time.monotonic() + 20  # the runs need about 3 s, the restart about 1 s
    while True:
        outcomes, completed = asyncio.run(_runs_and_steps(url, list(runs)))
        if all(status.is_terminal for status, _ in outcomes.values()):
            break
        assert worker.poll() is None, f"worker exited; {context()}"
        if time.monotonic() > deadline:
            worker.send_signal(signal.SIGTERM)  # its log then tells what it was waiting on
            worker.wait(timeout=10)
            stuck = {r: o for r, o in outcomes.items() if o[0] is not RunStatus.COMPLETED}
            raise AssertionError(f"runs did not finish: {stuck}; {context()}")
        time.sleep(0.2)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0, context()

    assert outcomes == {r: (RunStatus.COMPLETED, n + STEPS) for r, n in runs.items()}, context()
    executions = Counter(side_effects.read_text().splitlines())
    assert executed_before < RUNS * STEPS, "the restart came after the runs ended"
    assert sorted(completed) == sorted(executions), "the log and the executions disagree"
    twice = {step: count for step, count in executions.items() if count > 1}
    assert not twice, f"steps executed more than once: {twice}; {context()}"
    assert len(executions) == RUNS * STEPS
    # asyncpg logs its own retries with tracebacks ("Failed to restore the pool connection
    # floor"); what must not appear is an error of ours or a task that died unseen.
    text = log.read_text()
    assert not re.search(r" ERROR +pyworkflow", text), context()
    assert "Task exception was never retrieved" not in text, context()


def test_a_server_that_stays_down_is_storage_unavailable_then_reconnected(
    server: PrivateServer,
) -> None:
    url = f"{server.url}?schema=down"

    async def scenario() -> None:
        storage = PostgresStorage(url, reconnect_timeout=1.0)
        await storage.open()
        try:
            server.stop("fast")
            began = time.monotonic()
            with pytest.raises(StorageUnavailableError) as info:
                await storage.get_run("r1")
            waited = time.monotonic() - began
            assert 0.5 < waited < 2.0, f"retried {waited:.2f}s, not up to reconnect_timeout"
            assert info.value.url == storage.url
            assert f"127.0.0.1:{server.port}" in str(info.value)
            server.start()
            assert await storage.get_run("r1") is None  # the same storage is usable again
        finally:
            await storage.close()

    try:
        asyncio.run(scenario())
    finally:
        if not (server.data / "postmaster.pid").exists():
            server.start()


def test_pooled_connections_the_server_dropped_are_replaced(server: PrivateServer) -> None:
    url = f"{server.url}?schema=idle&pool_size=4"

    async def scenario() -> None:
        storage = PostgresStorage(url)
        await storage.create_run(NewRun("r1", "wf", [], {}, now=1.0))
        # Four connections in the pool, idle when the server goes away.
        await asyncio.gather(*(storage.get_run(f"r{i}") for i in range(4)))
        try:
            for mode in ("fast", "immediate"):
                server.restart(mode)  # blocks this loop, as a busy process would be
                for turns in range(4):
                    for _ in range(turns):  # let the loop read what the server sent first
                        await asyncio.sleep(0)
                    record = await storage.get_run("r1")
                    assert record is not None
                await storage.request_cancel("r1", now=2.0, reason=mode)
        finally:
            await storage.close()

    asyncio.run(scenario())
