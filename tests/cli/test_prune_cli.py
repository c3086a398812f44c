"""`pyworkflow runs prune` and `pyworkflow worker run --retention` as a user runs them.

Real processes on a real SQLite file. The database is seeded through the storage API with runs
as a worker leaves them, at chosen times: two that ended over 30 days ago (``old_*``), one that
ended yesterday, and one pending for 100 days (its workflow lives elsewhere, so no worker here
runs it). Retention of 30 days must delete exactly the two old ones, with their events.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import textwrap
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from pyworkflow.events import EventType, RunStatus
from pyworkflow.storage import AppendWrite, NewEvent, NewRun, SQLiteStorage
from workers import WorkerProcesses, cli, on_sqlite

pytestmark = pytest.mark.slow  # the CLI and workers in processes of their own

DAY = 86400.0

WORKFLOWS = """
from pyworkflow import workflow


@workflow()
async def tidy() -> str:
    return "tidy"
"""

ENDINGS = {
    RunStatus.COMPLETED: EventType.WORKFLOW_COMPLETED,
    RunStatus.FAILED: EventType.WORKFLOW_FAILED,
}


async def add_run(
    storage: SQLiteStorage, workflow: str, created: float, ended: float | None, status: RunStatus
) -> str:
    """A run started at ``created``, two steps, and (unless ``ended`` is None) ended then."""
    run_id = f"run_{uuid.uuid4().hex}"
    await storage.create_run(
        NewRun(
            run_id=run_id,
            workflow_name=workflow,
            args={"args": [], "kwargs": {}},
            started_payload={"v": 1, "workflow": workflow},
            now=created,
            idempotency_key=f"key-{run_id}",
            lease_owner=None if ended is None else "seed",
            lease_expires_at=None if ended is None else created + 30,
        )
    )
    if ended is not None:
        steps = [NewEvent(EventType.STEP_COMPLETED, {"v": 1, "step_id": f"s#{i}"}) for i in (1, 2)]
        await storage.append(
            AppendWrite(
                run_id=run_id,
                owner="seed",
                expected_seq=1,
                events=[*steps, NewEvent(ENDINGS[status], {"v": 1})],
                now=ended,
                status=status,
            )
        )
    return run_id


def seed(db: Path, old: int = 2) -> dict[str, str]:
    now = time.time()

    async def fill(storage: SQLiteStorage) -> dict[str, str]:
        ids = {}
        for i in range(old):
            status = RunStatus.FAILED if i % 2 else RunStatus.COMPLETED
            ended = now - (40 - i) * DAY
            ids[f"old_{i}"] = await add_run(storage, "tidy", ended - 60, ended, status)
        ids["yesterday"] = await add_run(
            storage, "tidy", now - 31 * DAY, now - DAY, RunStatus.COMPLETED
        )
        ids["pending"] = await add_run(
            storage, "elsewhere", now - 100 * DAY, None, RunStatus.PENDING
        )
        return ids

    return on_sqlite(db, fill)


def present(db: Path, ids: dict[str, str]) -> set[str]:
    """The names of ``ids`` whose run is still stored (checked with its events)."""

    async def look(storage: SQLiteStorage) -> set[str]:
        found = set()
        for name, run_id in ids.items():
            record = await storage.get_run(run_id)
            events = await storage.load_events(run_id)
            assert (record is None) == (events == []), name  # a run and its log go together
            if record is not None:
                found.add(name)
        return found

    return on_sqlite(db, look)


@pytest.fixture
def project(tmp_path: Path, worker_env: dict[str, str]) -> Path:
    (tmp_path / "prunewf.py").write_text(textwrap.dedent(WORKFLOWS))
    return tmp_path


def pyworkflow(
    project: Path, env: dict[str, str], db: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    (done,) = many(project, env, db, list(args))
    return done


def many(
    project: Path, env: dict[str, str], db: Path, *commands: list[str]
) -> list[subprocess.CompletedProcess[str]]:
    """Run the commands at the same time (each is a process start of ~0.5 s), on ``db``."""
    procs = [
        subprocess.Popen(
            [*cli(*args), *([] if "--storage" in args else ["--storage", f"sqlite:///{db}"])],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in commands
    ]
    done = []
    for args, proc in zip(commands, procs, strict=True):
        out, err = proc.communicate(timeout=60)
        done.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    return done


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_prune_deletes_only_runs_that_ended_before_the_bound(
    project: Path, worker_env: dict[str, str]
) -> None:
    db = project / "runs.db"
    ids = seed(db, old=5)  # ended 40, 39, 38, 37 and 36 days ago
    prune = ["runs", "prune", "--older-than"]
    counted, shown = many(
        project,
        worker_env,
        db,
        [*prune, "38d", "--dry-run", "--json"],
        [*prune, "30d", "--dry-run"],
    )
    assert json.loads(counted.stdout)["would_delete"] == 3, counted.stderr
    assert shown.stdout.startswith("would delete 5 runs that ended before "), shown.stderr
    assert present(db, ids) == set(ids)

    first = pyworkflow(project, worker_env, db, *prune, "38d", "--batch-size", "2", "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["deleted"], report["dry_run"]) == (3, False)
    ended_before = datetime.fromisoformat(report["ended_before"]).timestamp()
    assert abs(time.time() - 38 * DAY - ended_before) < 60
    assert present(db, ids) == {"old_3", "old_4", "yesterday", "pending"}

    second = pyworkflow(project, worker_env, db, *prune, "30d")
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("deleted 2 runs that ended before ")
    assert present(db, ids) == {"yesterday", "pending"}


def test_progress_shows_on_a_terminal(project: Path, worker_env: dict[str, str]) -> None:
    db = project / "runs.db"
    seed(db, old=5)
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [
                *cli("runs", "prune", "--older-than", "30d", "--batch-size", "2"),
                "--storage",
                f"sqlite:///{db}",
            ],
            cwd=project,
            env=worker_env,
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
        )
        os.close(follower)
        out, _ = proc.communicate(timeout=60)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the process closed its end
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    assert proc.returncode == 0, shown
    text = shown.decode()
    for count in (2, 4, 5):
        assert f"pruning: {count} runs deleted" in text
    assert out.startswith("deleted 5 runs")


MISTAKES = [
    (["runs", "prune", "--older-than", "5 parsecs"], "'5 parsecs'"),
    (["runs", "prune", "--older-than", "-30d"], "'-30d'"),
    (["runs", "prune", "--older-than", "1000000w"], "'1000000w' is not a duration (too large"),
    (["runs", "prune", "--older-than", "30d", "--storage", "sqlite:///nowhere.db"], "no database"),
    (["worker", "run", "-m", "prunewf", "--retention", "forever"], "--retention 'forever'"),
]


def test_mistakes_are_one_line_exit_2_and_delete_nothing(
    project: Path, worker_env: dict[str, str]
) -> None:
    db = project / "runs.db"
    ids = seed(db)
    results = many(project, worker_env, db, *(args for args, _ in MISTAKES))
    for (args, named), result in zip(MISTAKES, results, strict=True):
        assert result.returncode == 2, (args, result.stderr)
        assert named in one_line(result.stderr), args
    assert present(db, ids) == set(ids)
    assert not (project / "nowhere.db").exists()
    # click's own usage errors: exit 2 too, naming the option.
    usage = many(
        project,
        worker_env,
        db,
        ["runs", "prune"],
        ["runs", "prune", "--older-than", "30d", "--batch-size", "0"],
    )
    assert [u.returncode for u in usage] == [2, 2]
    assert "--older-than" in usage[0].stderr
    assert "--batch-size" in usage[1].stderr
    assert present(db, ids) == set(ids)


# --- worker run --retention ------------------------------------------------------------------


def test_a_worker_with_retention_deletes_old_ended_runs(
    project: Path, worker_env: dict[str, str], worker_processes: WorkerProcesses
) -> None:
    db = project / "runs.db"
    ids = seed(db)
    log = project / "worker.log"
    worker = worker_processes.spawn("prunewf", db, "--retention", "30d", log=log)
    deadline = time.monotonic() + 30
    while "retention: deleted 2 runs" not in log.read_text():
        assert worker.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    assert present(db, ids) == {"yesterday", "pending"}
    assert "retention 30 days" in log.read_text()  # said at start
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=10) == 0, log.read_text()


def test_a_bad_retention_in_the_environment_is_one_line_and_exit_2(
    project: Path, worker_env: dict[str, str]
) -> None:
    db = project / "runs.db"
    ids = seed(db)
    worker_env["PYWORKFLOW_RETENTION"] = "forever"
    result = pyworkflow(project, worker_env, db, "worker", "run", "--module", "prunewf")
    assert result.returncode == 2
    assert "PYWORKFLOW_RETENTION: 'forever' is not a duration" in one_line(result.stderr)
    assert present(db, ids) == set(ids)


def test_retention_from_the_environment_is_a_workers_not_a_commands(
    project: Path, worker_env: dict[str, str]
) -> None:
    db = project / "runs.db"
    ids = seed(db)
    worker_env["PYWORKFLOW_RETENTION"] = "30d"
    # A command that wakes the executor (it records a cancel request) must not prune.
    result = pyworkflow(project, worker_env, db, "runs", "cancel", ids["pending"])
    assert result.returncode == 0, result.stderr
    assert present(db, ids) == set(ids)
