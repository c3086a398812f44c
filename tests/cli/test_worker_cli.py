"""`pyworkflow worker run` and `pyworkflow db upgrade` as a user runs them: real processes."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from pyworkflow.events import RunStatus
from pyworkflow.serialization import Codec
from pyworkflow.storage import RunRecord
from workers import WorkerProcesses, cli, create_unleased_run, read_run, wait_for_run

pytestmark = pytest.mark.slow  # workers and the CLI in processes of their own

WORKFLOWS = """
import asyncio
import os

from pyworkflow import sleep, step, workflow

HOLD = os.environ.get("CLITEST_HOLD", "")


@step()
async def greet(name: str) -> str:
    while HOLD and os.path.exists(HOLD):  # lets a test catch the run mid-step
        await asyncio.sleep(0.05)
    return f"hello {name}"


@workflow()
async def hello(name: str) -> str:
    await sleep(0.2)
    return await greet(name)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "cliwf.py").write_text(textwrap.dedent(WORKFLOWS))
    return tmp_path


@pytest.fixture
def env(project: Path, worker_env: dict[str, str]) -> dict[str, str]:
    return worker_env


def run_cli(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli(*args), cwd=project, env=env, capture_output=True, text=True, timeout=60, check=False
    )


class Worker:
    """A `pyworkflow` subprocess (``args`` are its command line) logging to a file."""

    def __init__(self, processes: WorkerProcesses, *args: str) -> None:
        self.log = processes.cwd / f"worker-{uuid.uuid4().hex[:6]}.log"
        self.proc = processes.start(*args, log=self.log)

    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, text: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.proc.poll() is None, f"worker exited: {self.output()}"
            assert time.monotonic() < deadline, f"no {text!r} in: {self.output()}"
            time.sleep(0.05)

    def stop(self, timeout: float = 5) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


def wait_status(db: Path, run_id: str, statuses: set[RunStatus], timeout: float = 15) -> RunRecord:
    return wait_for_run(db, run_id, lambda record: record.status in statuses, within=timeout)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize("via", ["flag", "env"])
def test_unknown_module_is_one_line_and_exit_2(
    project: Path, env: dict[str, str], via: str
) -> None:
    args = ["worker", "run", "--storage", "sqlite:///w.db"]
    if via == "flag":
        args += ["--module", "cliwf", "--module", "no_such_module_here"]
    else:
        env["PYWORKFLOW_MODULES"] = "cliwf, no_such_module_here"
    result = run_cli(project, env, *args)
    assert result.returncode == 2
    assert "no_such_module_here" in one_line(result.stderr)
    assert not (project / "w.db").exists()


@pytest.mark.parametrize("via", ["flag", "env"])
def test_bad_storage_url_names_the_accepted_schemes(
    project: Path, env: dict[str, str], via: str
) -> None:
    url = "mysql://app:hunter2@db.internal/runs"
    args = ["worker", "run", "--module", "cliwf"]
    if via == "flag":
        args += ["--storage", url]
    else:
        env["PYWORKFLOW_STORAGE"] = url
    result = run_cli(project, env, *args)
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "mysql://" in line
    assert "sqlite:///" in line
    assert "memory://" in line
    assert "hunter2" not in line


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--lease-seconds", "1e20"),
        ("--lease-seconds", "0"),
        ("--poll-interval", "1e20"),
        ("--retention", "1000000w"),
    ],
)
def test_a_duration_option_past_a_century_is_one_line_and_exit_2(
    project: Path, env: dict[str, str], option: str, value: str
) -> None:
    # Before durations were bounded, such a worker started, and leased runs until 1e20.
    args = ["worker", "run", "--module", "cliwf", "--storage", "sqlite:///w.db", option, value]
    result = subprocess.run(
        cli(*args), cwd=project, env=env, capture_output=True, text=True, timeout=20, check=False
    )
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert option in line
    assert value in line
    assert "Traceback" not in result.stderr
    assert not (project / "w.db").exists()


def test_a_worker_without_workflows_refuses_to_start(project: Path, env: dict[str, str]) -> None:
    result = run_cli(project, env, "worker", "run", "--storage", "sqlite:///w.db")
    assert result.returncode == 2
    assert "--module" in one_line(result.stderr)


def test_sigterm_stops_an_idle_worker_with_exit_0(
    project: Path, env: dict[str, str], worker_processes: WorkerProcesses
) -> None:
    worker = Worker(worker_processes, "worker", "run", "-m", "cliwf", "--storage", "sqlite:///w.db")
    worker.wait_for("serving")
    started = time.monotonic()
    assert worker.stop() == 0, worker.output()
    assert time.monotonic() - started < 5
    assert "worker stopped" in worker.output()


def test_worker_completes_a_run_another_process_started(
    project: Path, env: dict[str, str], worker_processes: WorkerProcesses
) -> None:
    db = project / "w.db"
    env["PYWORKFLOW_STORAGE"] = f"sqlite:///{db}"
    env["PYWORKFLOW_MODULES"] = "cliwf"
    worker = Worker(
        worker_processes,
        "--log-format",
        "json",
        "worker",
        "run",
        "--poll-interval",
        "0.2",
        "--concurrency",
        "4",
    )
    worker.wait_for("serving")
    run_id = create_unleased_run(db, "hello", "world")
    record = wait_status(db, run_id, {RunStatus.COMPLETED, RunStatus.FAILED})
    assert record.status is RunStatus.COMPLETED
    assert Codec().decode(record.result) == "hello world"
    assert worker.stop() == 0
    records = [json.loads(line) for line in worker.output().splitlines()]
    startup = records[0]["message"]
    assert str(db) in startup
    assert "hello" in startup
    assert "concurrency 4" in startup
    assert any(r.get("run_id") == run_id and "completed" in r["message"] for r in records)


def test_sigterm_hands_a_running_run_back(
    project: Path, env: dict[str, str], worker_processes: WorkerProcesses
) -> None:
    db = project / "w.db"
    hold = project / "hold"
    hold.touch()
    env["CLITEST_HOLD"] = str(hold)
    args = (
        "worker",
        "run",
        "-m",
        "cliwf",
        "--storage",
        f"sqlite:///{db}",
        "--lease-seconds",
        "30",
        "--poll-interval",
        "0.2",
        "--drain-timeout",  # the held step does not end: hand it back soon
        "0.5",
    )
    first = Worker(worker_processes, *args)
    first.wait_for("serving")
    run_id = create_unleased_run(db, "hello", "again")
    wait_status(db, run_id, {RunStatus.RUNNING})
    assert first.stop() == 0, first.output()
    record = read_run(db, run_id)
    assert record.lease_owner is None  # handed back, not left to a 30 s lease
    assert not record.status.is_terminal

    hold.unlink()
    second = Worker(worker_processes, *args)
    record = wait_status(db, run_id, {RunStatus.COMPLETED, RunStatus.FAILED}, timeout=10)
    assert Codec().decode(record.result) == "hello again"
    assert second.stop() == 0


def test_db_upgrade_creates_the_schema_of_a_fresh_file(project: Path, env: dict[str, str]) -> None:
    db = project / "fresh" / "app.db"
    result = run_cli(project, env, "db", "upgrade", "--storage", f"sqlite:///{db}")
    assert result.returncode == 0, result.stderr
    assert "revision" in result.stdout
    with sqlite3.connect(db) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert {"runs", "events"} <= tables
    again = run_cli(project, env, "db", "upgrade", "--storage", f"sqlite:///{db}")
    assert again.returncode == 0, again.stderr


def test_db_upgrade_of_memory_storage_is_a_user_error(project: Path, env: dict[str, str]) -> None:
    result = run_cli(project, env, "db", "upgrade", "--storage", "memory://")
    assert result.returncode == 2
    assert "memory://" in one_line(result.stderr)


def test_runs_of_a_workflow_this_worker_lacks_are_left_and_logged_once(
    project: Path, env: dict[str, str], worker_processes: WorkerProcesses
) -> None:
    db = project / "w.db"
    foreign = [create_unleased_run(db, "billing_cycle", n) for n in range(3)]
    worker = Worker(
        worker_processes,
        "worker",
        "run",
        "-m",
        "cliwf",
        "--storage",
        f"sqlite:///{db}",
        "--poll-interval",
        "0.1",
    )
    worker.wait_for("serving")
    worker.wait_for("'billing_cycle' is not registered here")
    mine = create_unleased_run(db, "hello", "you")
    assert wait_status(db, mine, {RunStatus.COMPLETED}).status is RunStatus.COMPLETED
    assert worker.stop() == 0
    assert worker.output().count("'billing_cycle' is not registered here") == 1
    for run_id in foreign:
        record = read_run(db, run_id)
        assert record.status is RunStatus.PENDING, "left for a worker that has the workflow"
        assert record.recovery_count == 0
        assert record.lease_owner is None
