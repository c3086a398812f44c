"""A worker told to stop finishes the step it is running, starts nothing new, hands the run back.

Real `pyworkflow worker run` processes on SQLite. A two-step run is mid-way through its first
step when the worker gets SIGTERM. Within ``--drain-timeout`` the step may end: its outcome is
logged, the second step is not started, the run is handed back, and the next worker finishes
it with every step executed once. A step that does not end in time is cancelled and handed
back; the next worker runs it again as its next attempt, and the history says so.
"""

from __future__ import annotations

import signal
import subprocess
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pyworkflow.events import EventType, RunStatus
from pyworkflow.storage import EventRecord
from workers import WorkerProcesses, create_unleased_run, on_sqlite, read_run, wait_for_run

pytestmark = pytest.mark.slow

MODULE = """
import asyncio
import os
from pathlib import Path

from pyworkflow import step, workflow

HERE = Path(os.environ["DRAIN_DIR"])


def record(name: str) -> None:
    with open(HERE / "executions.log", "a") as out:
        out.write(name + "\\n")


@step()
async def first(n: int) -> int:
    record("first")
    while not (HERE / "release").exists():
        await asyncio.sleep(0.05)
    return n + 1


@step()
async def second(n: int) -> int:
    record("second")
    return n * 10


@workflow()
async def two(n: int) -> int:
    return await second(await first(n))
"""


@pytest.fixture
def spawn(
    tmp_path: Path, worker_env: dict[str, str], worker_processes: WorkerProcesses
) -> Callable[..., subprocess.Popen[bytes]]:
    (tmp_path / "drainwf.py").write_text(textwrap.dedent(MODULE))
    worker_env["DRAIN_DIR"] = str(tmp_path)

    def start(*flags: str) -> subprocess.Popen[bytes]:
        return worker_processes.spawn(
            "drainwf",
            tmp_path / "runs.db",
            "--poll-interval",
            "0.1",
            "--lease-seconds",
            "30",
            *flags,
            log=tmp_path / "workers.log",
        )

    return start


def _executions(tmp_path: Path) -> list[str]:
    path = tmp_path / "executions.log"
    return path.read_text().split() if path.exists() else []


def _events(db: Path, run_id: str) -> list[EventRecord]:
    return on_sqlite(db, lambda storage: storage.load_events(run_id))


def _wait_first_running(tmp_path: Path) -> None:
    deadline = time.monotonic() + 20
    while "first" not in _executions(tmp_path):
        assert time.monotonic() < deadline, "the first step never started"
        time.sleep(0.05)


def test_a_step_that_ends_within_the_drain_is_logged_and_not_run_again(
    tmp_path: Path, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    db = tmp_path / "runs.db"
    run_id = create_unleased_run(db, "two", 4)
    worker = spawn("--drain-timeout", "10")
    _wait_first_running(tmp_path)
    worker.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    (tmp_path / "release").touch()  # the step ends while the worker drains
    assert worker.wait(timeout=20) == 0

    record = read_run(db, run_id)
    assert not record.status.is_terminal
    assert record.lease_owner is None, "handed back, not left to its lease"
    kinds = [(e.type, e.payload.get("step_id")) for e in _events(db, run_id)]
    assert (EventType.STEP_COMPLETED, "first#1") in kinds, "the drained step's outcome"
    assert (EventType.STEP_STARTED, "second#1") not in kinds, "nothing new started"
    assert _executions(tmp_path) == ["first"]

    spawn()
    record = wait_for_run(db, run_id, lambda r: r.status.is_terminal, within=20)
    assert record.status is RunStatus.COMPLETED
    assert record.result == 50
    assert _executions(tmp_path) == ["first", "second"], "each step ran once"
    assert EventType.WORKFLOW_INTERRUPTED not in [e.type for e in _events(db, run_id)]


def test_a_step_still_running_after_the_drain_is_handed_back_and_run_again(
    tmp_path: Path, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    db = tmp_path / "runs.db"
    run_id = create_unleased_run(db, "two", 4)
    worker = spawn("--drain-timeout", "0.5")
    _wait_first_running(tmp_path)
    began = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0
    assert time.monotonic() - began < 5, "the drain waited no longer than it was told"
    assert read_run(db, run_id).lease_owner is None

    (tmp_path / "release").touch()
    spawn()
    record = wait_for_run(db, run_id, lambda r: r.status.is_terminal, within=20)
    assert record.status is RunStatus.COMPLETED
    assert _executions(tmp_path) == ["first", "first", "second"]
    events = _events(db, run_id)
    (cut,) = [e for e in events if e.type is EventType.WORKFLOW_INTERRUPTED]
    assert cut.payload["steps"] == [{"step_id": "first#1", "attempt": 1}]
