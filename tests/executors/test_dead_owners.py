"""A worker killed mid-step is taken over at once; a live one, however stopped, never early.

Real `pyworkflow worker run` processes on SQLite and on PostgreSQL, with a 60 s lease: long
enough that a take-over within seconds can only come from the dead worker being seen dead
(its lock file unlocked by the kernel; its PostgreSQL session ended with its socket), not
from the lease lapsing. Each step execution appends a line to a side-effect file
(``kill_effects``), which shows who ran what and how often.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from pyworkflow.events import EventType, RunStatus
from pyworkflow.storage import storage_from_url
from workers import KILL_EFFECTS, WorkerProcesses, add_unleased_run, executions_in

pytestmark = pytest.mark.slow

LEASE_SECONDS = 60
RUNS = 4

WORKFLOW_MODULE = """
import asyncio

from pyworkflow import step, workflow

from kill_effects import record_execution


@step()
async def quick(n: int) -> int:
    record_execution()
    return n


@step()
async def slow(n: int) -> int:
    record_execution()
    await asyncio.sleep(float(__import__("os").environ["SLOW_STEP_SECONDS"]))
    return n + 1


@workflow()
async def two_steps(n: int) -> int:
    return await slow(await quick(n))
"""


@pytest.fixture(params=["sqlite", "postgres"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.db'}"
    return str(request.getfixturevalue("postgres_server").fresh_url())


class Scene:
    """The workflow module in tmp_path, its runs, and the workers started on them."""

    def __init__(
        self, tmp_path: Path, url: str, env: dict[str, str], workers: WorkerProcesses
    ) -> None:
        (tmp_path / "deadwf.py").write_text(textwrap.dedent(WORKFLOW_MODULE))
        shutil.copy(KILL_EFFECTS, tmp_path)
        self.url = url
        self.effects = tmp_path / "side_effects.log"
        self.log = tmp_path / "worker.log"
        env["KILLTEST_SIDE_EFFECTS"] = str(self.effects)
        self.env = env
        self.workers = workers
        self.began = time.monotonic()

    def start_worker(self, slow_step: float) -> subprocess.Popen[bytes]:
        self.env["SLOW_STEP_SECONDS"] = str(slow_step)
        return self.workers.start_marked(
            "deadwf", self.url, "--lease-seconds", str(LEASE_SECONDS), log=self.log,
            since=self.began,
        )  # fmt: skip

    def runs_started_slow(self, run_ids: list[str], within: float) -> None:
        """Wait until every run's slow step has begun executing."""
        deadline = time.monotonic() + within
        while True:
            slow = [k for k in executions_in(self.effects) if k[1].startswith("slow")]
            if len(slow) >= len(run_ids):
                return
            assert time.monotonic() < deadline, f"slow steps not started:\n{self.context()}"
            time.sleep(0.05)

    def context(self) -> str:
        return f"worker log:\n{self.log.read_text() if self.log.exists() else ''}"


async def _create(url: str, n: int) -> list[str]:
    storage = storage_from_url(url)
    await storage.open()
    try:
        return [await add_unleased_run(storage, "two_steps", i) for i in range(n)]
    finally:
        await storage.close()


async def _runs(url: str, run_ids: list[str]) -> dict[str, tuple[RunStatus, str | None, int]]:
    """Each run's status, lease owner and count of WORKFLOW_INTERRUPTED events."""
    storage = storage_from_url(url)
    await storage.open()
    try:
        out = {}
        for run_id in run_ids:
            record = await storage.get_run(run_id)
            assert record is not None
            events = await storage.load_events(run_id)
            cuts = sum(e.type is EventType.WORKFLOW_INTERRUPTED for e in events)
            out[run_id] = (record.status, record.lease_owner, cuts)
        return out
    finally:
        await storage.close()


@pytest.fixture
def scene(
    tmp_path: Path, storage_url: str, worker_env: dict[str, str], worker_processes: WorkerProcesses
) -> Scene:
    return Scene(tmp_path, storage_url, worker_env, worker_processes)


def test_a_worker_killed_mid_step_is_taken_over_long_before_its_lease_lapses(
    scene: Scene,
) -> None:
    run_ids = asyncio.run(_create(scene.url, RUNS))
    first = scene.start_worker(slow_step=3600)  # would never finish
    scene.runs_started_slow(run_ids, within=30)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    killed_at = time.monotonic()

    scene.start_worker(slow_step=0.2)
    deadline = killed_at + 20  # a third of the lease, start-up included
    while True:
        runs = asyncio.run(_runs(scene.url, run_ids))
        if all(status is RunStatus.COMPLETED for status, _, _ in runs.values()):
            break
        assert time.monotonic() < deadline, f"runs {runs} not taken over\n{scene.context()}"
        time.sleep(0.1)

    executions = executions_in(scene.effects)
    for run_id in run_ids:
        assert executions[run_id, "quick#1"] == 1  # completed and logged: never again
        assert executions[run_id, "slow#1"] == 2  # cut short by the kill, then run again
        assert runs[run_id][2] == 1  # the history says so (WORKFLOW_INTERRUPTED)
    assert "is dead: its runs are taken over now" in scene.log.read_text()


def test_a_stopped_worker_keeps_its_runs_while_its_lease_holds(scene: Scene) -> None:
    run_ids = asyncio.run(_create(scene.url, 1))
    first = scene.start_worker(slow_step=3600)
    scene.runs_started_slow(run_ids, within=30)
    owner = asyncio.run(_runs(scene.url, run_ids))[run_ids[0]][1]
    assert owner is not None
    os.kill(first.pid, signal.SIGSTOP)  # alive, and silent: no heartbeat, no step progress
    try:
        second = scene.start_worker(slow_step=0.2)
        # The second worker looks for dead workers at start and then every second.
        deadline = time.monotonic() + 30
        while " serving " not in scene.log.read_text().rsplit("--- worker start", 1)[-1]:
            assert time.monotonic() < deadline, scene.context()
            time.sleep(0.05)
        time.sleep(3)
        assert second.poll() is None
        runs = asyncio.run(_runs(scene.url, run_ids))
        assert runs[run_ids[0]][:2] == (RunStatus.RUNNING, owner), scene.context()
        assert executions_in(scene.effects)[run_ids[0], "slow#1"] == 1  # not run again
        assert "is dead" not in scene.log.read_text()
    finally:
        os.kill(first.pid, signal.SIGCONT)
