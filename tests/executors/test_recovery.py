"""Real worker processes: bounded recoveries, clean hand-over, leases renewed by heartbeat.

Each test writes its workflow module to tmp_path, starts real `pyworkflow worker run`
processes on an SQLite file, and ends only the processes it started, by pid.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pyworkflow.events import EventType, RunStatus
from pyworkflow.storage import EventRecord, RunRecord
from workers import WorkerProcesses, cli, create_unleased_run, on_sqlite, read_run, wait_for_run

pytestmark = pytest.mark.slow

MODULE = """
import asyncio
import os
import signal
import time
from pathlib import Path

from pyworkflow import get_step_context, step, workflow

HERE = Path(os.environ["RECOVERY_DIR"])


def record(name: str) -> None:
    with open(HERE / "executions.log", "a") as out:
        out.write(f"{name} {os.getpid()}\\n")
        out.flush()
        os.fsync(out.fileno())


@step(max_retries=0)
async def crash_worker() -> None:
    record("crash")
    os.kill(os.getpid(), signal.SIGKILL)


@workflow()
async def doomed() -> None:
    await crash_worker()


@step()
async def long_step(seconds: float) -> str:
    record("long")
    await asyncio.sleep(seconds)
    return "done"


@workflow()
async def patient(seconds: float) -> str:
    return await long_step(seconds)


@step()
async def wait_for_flag() -> str:
    record("flag")
    while not (HERE / "flag").exists():
        await asyncio.sleep(0.05)
    return "flagged"


@workflow()
async def handed_over() -> str:
    return await wait_for_flag()
"""


@pytest.fixture
def env(tmp_path: Path, worker_env: dict[str, str]) -> dict[str, str]:
    (tmp_path / "recoverywf.py").write_text(textwrap.dedent(MODULE))
    worker_env["RECOVERY_DIR"] = str(tmp_path)
    return worker_env


@pytest.fixture
def spawn(
    tmp_path: Path, env: dict[str, str], worker_processes: WorkerProcesses
) -> Callable[..., subprocess.Popen[bytes]]:
    def start(*flags: str) -> subprocess.Popen[bytes]:
        return worker_processes.spawn(
            "recoverywf",
            tmp_path / "runs.db",
            "--poll-interval",
            "0.1",
            *flags,
            log=tmp_path / "workers.log",
        )

    return start


def _wait_terminal(db: Path, run_id: str, within: float) -> RunRecord:
    return wait_for_run(db, run_id, lambda record: record.status.is_terminal, within)


def _executions(tmp_path: Path, name: str) -> int:
    path = tmp_path / "executions.log"
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines() if line.split()[0] == name)


def test_a_run_that_keeps_killing_its_worker_fails_after_bounded_recoveries(
    tmp_path: Path, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    db = tmp_path / "runs.db"
    run_id = create_unleased_run(db, "doomed")
    deaths = 0
    deadline = time.monotonic() + 60
    record = read_run(db, run_id)
    while not record.status.is_terminal:
        worker = spawn("--lease-seconds", "0.5", "--max-recoveries", "2")
        while worker.poll() is None and not record.status.is_terminal:
            assert time.monotonic() < deadline, f"{deaths} deaths, run still {record.status}"
            time.sleep(0.1)
            record = read_run(db, run_id)
        if worker.poll() == -9:
            deaths += 1
    assert record.status is RunStatus.FAILED
    assert record.error is not None
    assert record.error["type"] == "RecoveryLimitExceeded"
    assert "taken over 3 times without progress" in record.error["message"]
    assert deaths == 3
    assert _executions(tmp_path, "crash") == 3


def test_a_process_that_exits_cleanly_hands_its_runs_over_at_once(
    tmp_path: Path, env: dict[str, str], spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    db = tmp_path / "runs.db"
    create_unleased_run(db, "patient", 0.0)  # creates the schema before the worker opens it
    spawn("--lease-seconds", "30")
    script = f"""
import asyncio, pyworkflow, recoverywf
async def main():
    pyworkflow.configure(storage="sqlite:///{db}", lease_seconds=30)
    run_id = await pyworkflow.start(recoverywf.handed_over)
    print(run_id, flush=True)
    await asyncio.sleep(1.0)  # the step is running here when main() returns
asyncio.run(main())
"""
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    run_id = out.stdout.split()[0]
    exited = time.monotonic()
    # The starting process ran the step once; the worker runs it again (at-least-once for a
    # step interrupted mid-way), typically before subprocess.run has even returned.
    while _executions(tmp_path, "flag") < 2:
        assert time.monotonic() - exited < 10, "the worker did not take the run over"
        time.sleep(0.05)
    taken_over_after = time.monotonic() - exited
    (tmp_path / "flag").touch()
    record = _wait_terminal(db, run_id, within=20)
    assert record.status is RunStatus.COMPLETED
    assert record.recovery_count == 0, "a hand-over is not a recovery"
    assert _executions(tmp_path, "flag") == 2
    assert taken_over_after < 10, "far sooner than the 30 s lease would allow"
    # The second execution is in the history: the hand-back cut attempt 1, attempt 2 re-ran it.
    events = _events(db, run_id)
    (cut,) = [e for e in events if e.type is EventType.WORKFLOW_INTERRUPTED]
    assert cut.payload["owner"] is None
    assert cut.payload["steps"] == [{"step_id": "wait_for_flag#1", "attempt": 1}]
    assert _started_attempts(events, "wait_for_flag#1") == [1, 2]


def test_a_step_cut_short_by_kill_9_shows_in_the_history(
    tmp_path: Path, env: dict[str, str], spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    db = tmp_path / "runs.db"
    run_id = create_unleased_run(db, "patient", 2.0)
    first = spawn("--lease-seconds", "1")
    deadline = time.monotonic() + 20
    while _executions(tmp_path, "long") < 1:
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.05)
    first.kill()  # SIGKILL, mid-step
    first.wait()
    spawn("--lease-seconds", "1")
    record = _wait_terminal(db, run_id, within=30)
    assert record.status is RunStatus.COMPLETED
    assert _executions(tmp_path, "long") == 2

    events = _events(db, run_id)
    (cut,) = [e for e in events if e.type is EventType.WORKFLOW_INTERRUPTED]
    assert f":{first.pid}:" in cut.payload["owner"], "names the worker that died"
    assert cut.payload["recovery"] == 1
    assert cut.payload["steps"] == [{"step_id": "long_step#1", "attempt": 1}]
    assert _started_attempts(events, "long_step#1") == [1, 2]

    shown = subprocess.run(
        cli("runs", "show", run_id, "--json", "--storage", f"sqlite:///{db}"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    view = json.loads(shown.stdout)
    attempts = [(a["attempt"], a["outcome"]) for a in view["steps"]]
    assert attempts == [(1, "interrupted"), (2, "completed")]
    (line,) = [e for e in view["timeline"] if e["type"] == "workflow_interrupted"]
    assert f":{first.pid}:" in line["summary"]
    assert "long_step#1 attempt 1" in line["summary"]


def _events(db: Path, run_id: str) -> list[EventRecord]:
    return on_sqlite(db, lambda storage: storage.load_events(run_id))


def _started_attempts(events: list[EventRecord], step_id: str) -> list[int]:
    return [
        e.payload["attempt"]
        for e in events
        if e.type is EventType.STEP_STARTED and e.payload["step_id"] == step_id
    ]


def test_a_long_step_keeps_its_lease_and_runs_once(
    tmp_path: Path, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    db = tmp_path / "runs.db"
    run_id = create_unleased_run(db, "patient", 3.5)
    spawn("--lease-seconds", "1")
    spawn("--lease-seconds", "1")
    record = _wait_terminal(db, run_id, within=30)
    assert record.status is RunStatus.COMPLETED
    assert record.recovery_count == 0
    assert _executions(tmp_path, "long") == 1, "a second worker took over a live run"
