"""Queues and client-only processes with real `pyworkflow worker run` processes on SQLite.

The test process is a client only (``configure(client_only=True)``): it starts runs and waits
for their results, and each step returns the pid of the process that executed it, so a test
sees who executed what. Workers are started with ``-Q`` (or without: the default queue) and
killed by their pid at teardown.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import subprocess
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

import pyworkflow
from pyworkflow import config
from pyworkflow.events import RunStatus
from workers import WorkerProcesses, cli

pytestmark = pytest.mark.slow  # workers and the CLI in processes of their own

MODULE = """
import asyncio
import os
from pathlib import Path

from pyworkflow import step, workflow


@step()
async def whoami() -> int:
    return os.getpid()


@workflow()
async def qw_plain() -> int:
    return await whoami()


@workflow(queue="qw-billing")
async def qw_billed() -> int:
    return await whoami()


@workflow(queue="qw-nobody")
async def qw_orphan() -> int:
    return await whoami()


@step(queue="qw-mail")
async def qw_send(hold: str) -> int:
    # Says it started, then works while the file ``hold`` exists.
    Path(f"{hold}.{os.getpid()}").touch()
    while Path(hold).exists():
        await asyncio.sleep(0.02)
    return os.getpid()


@workflow()
async def qw_mailer(hold: str) -> list[int]:
    before = await whoami()
    sent = await qw_send(hold)
    return [before, sent, await whoami()]
"""


@pytest.fixture
async def client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, worker_env: dict[str, str]
) -> AsyncIterator[str]:
    """This process as a client only of the SQLite file the workers share; its URL."""
    async for url in as_client(f"sqlite:///{tmp_path / 'q.db'}", tmp_path, monkeypatch, worker_env):
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
async def any_client(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    worker_env: dict[str, str],
) -> AsyncIterator[str]:
    """As ``client``, on SQLite and on a fresh schema of the test PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'q.db'}"
    else:
        url = request.getfixturevalue("postgres_server").fresh_url()
    async for shared in as_client(url, tmp_path, monkeypatch, worker_env):
        yield shared


async def as_client(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, worker_env: dict[str, str]
) -> AsyncIterator[str]:
    (tmp_path / "queueflows.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("queueflows")
    worker_env["PYWORKFLOW_STORAGE"] = url
    worker_env["PYWORKFLOW_MODULES"] = "queueflows"
    monkeypatch.setattr(config, "_settings", config._settings)
    pyworkflow.configure(storage=url, client_only=True)
    try:
        yield url
    finally:
        await pyworkflow.shutdown()


def start_worker(processes: WorkerProcesses, *flags: str) -> subprocess.Popen[bytes]:
    log = worker_log(processes, len(processes.started))
    return processes.start("worker", "run", "--poll-interval", "0.1", *flags, log=log)


def worker_log(processes: WorkerProcesses, index: int) -> Path:
    """Where the ``index``-th process ``start_worker`` started writes its log."""
    return processes.cwd / f"worker-{index}.log"


def run_cli(cwd: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        cli(*args), cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_a_client_only_process_starts_runs_that_a_worker_executes(
    client: str, worker_processes: WorkerProcesses
) -> None:
    from queueflows import qw_plain  # type: ignore[import-not-found]

    started = [await pyworkflow.start(qw_plain) for _ in range(3)]
    for run_id in started:  # stored for a worker: not leased, no turn taken here
        stored = await pyworkflow.get_workflow_run(run_id)
        assert stored.status is RunStatus.PENDING
        assert [e.type.value for e in await pyworkflow.get_workflow_events(run_id)] == [
            "workflow_started"
        ]
    worker = start_worker(worker_processes)
    # The client's run() returns once the worker has finished the run.
    assert await pyworkflow.run(qw_plain) == worker.pid
    for run_id in started:
        assert await pyworkflow.get_workflow_result(run_id, timeout=30) == worker.pid
    assert worker.pid != os.getpid()


async def test_workers_execute_only_their_queues_and_an_unserved_queue_waits_visibly(
    client: str, worker_processes: WorkerProcesses, tmp_path: Path, worker_env: dict[str, str]
) -> None:
    from queueflows import qw_billed, qw_orphan, qw_plain

    billing = start_worker(worker_processes, "-Q", "qw-billing")
    default = start_worker(worker_processes)  # no -Q: the default queue
    orphan = await pyworkflow.start(qw_orphan)  # first: due before every other run
    billed = [await pyworkflow.start(qw_billed) for _ in range(3)]
    plain = [await pyworkflow.start(qw_plain) for _ in range(3)]
    for run_id in billed:
        assert await pyworkflow.get_workflow_result(run_id, timeout=30) == billing.pid
    for run_id in plain:  # unrouted runs: the default queue, and its worker
        assert await pyworkflow.get_workflow_result(run_id, timeout=30) == default.pid
    # Both workers claimed past the orphan, due first, and left it: nobody serves its queue.
    waiting = await pyworkflow.get_workflow_run(orphan)
    assert waiting.status is RunStatus.PENDING
    assert len(await pyworkflow.get_workflow_events(orphan)) == 1

    listing = run_cli(tmp_path, worker_env, "runs", "list")
    row = next(line for line in listing.splitlines() if orphan in line)
    assert "qw-nobody (waiting for a worker)" in row
    assert "1 run waits for a worker of queue 'qw-nobody'" in listing
    billed_row = next(line for line in listing.splitlines() if billed[0] in line)
    assert "qw-billing" in billed_row
    assert "waiting" not in billed_row
    shown = run_cli(tmp_path, worker_env, "runs", "show", orphan)
    assert "waits for a worker of queue 'qw-nobody'" in shown
    document = json.loads(run_cli(tmp_path, worker_env, "runs", "show", orphan, "--json"))
    assert (document["status"], document["queue"], document["waits_for_worker"]) == (
        "pending",
        "qw-nobody",
        True,
    )
    done = json.loads(run_cli(tmp_path, worker_env, "runs", "show", plain[0], "--json"))
    assert (done["queue"], done["waits_for_worker"]) == ("pyworkflow", False)

    # A worker of that queue takes it, as any other.
    nobody = start_worker(worker_processes, "-Q", "qw-nobody,qw-spare")
    assert await pyworkflow.get_workflow_result(orphan, timeout=30) == nobody.pid
    # What would otherwise go unnoticed is in its log: a queue it serves in vain (a typo in
    # -Q looks like this).
    said = worker_log(worker_processes, 2).read_text()
    assert "no workflow registered here goes to queue 'qw-spare'" in said


async def test_a_step_of_a_queue_runs_on_a_worker_of_that_queue_and_the_rest_with_its_run(
    any_client: str, worker_processes: WorkerProcesses, tmp_path: Path, worker_env: dict[str, str]
) -> None:
    from queueflows import qw_mailer

    default = start_worker(worker_processes)
    hold = tmp_path / "no-hold"  # absent: the step does not wait
    run_id = await pyworkflow.start(qw_mailer, str(hold))

    # No worker serves qw-mail yet: the step waits for one, and `runs show` says so.
    async def offered() -> bool:
        events = await pyworkflow.get_workflow_events(run_id)
        return any(e.data.get("step_id") == "qw_send#1" for e in events)

    await until_true(offered, within=30)
    shown = run_cli(tmp_path, worker_env, "runs", "show", run_id)
    assert "step qw_send#1 (attempt 1) waits for a worker of queue 'qw-mail'" in shown
    document = json.loads(run_cli(tmp_path, worker_env, "runs", "show", run_id, "--json"))
    assert document["offered_steps"] == [
        {"step_id": "qw_send#1", "attempt": 1, "queue": "qw-mail", "executed_by": None}
    ]

    mail = start_worker(worker_processes, "-Q", "qw-mail")

    # The mail worker executed the routed step; the steps before and after it ran where the
    # run is driven, on the default queue's worker (the mail worker offered the last back).
    assert await pyworkflow.get_workflow_result(run_id, timeout=30) == [
        default.pid,
        mail.pid,
        default.pid,
    ]
    events = await pyworkflow.get_workflow_events(run_id)
    completed = [e.data["step_id"] for e in events if e.type.value == "step_completed"]
    assert completed == ["whoami#1", "qw_send#1", "whoami#2"]


async def test_a_step_of_a_queue_whose_worker_is_killed_runs_again_on_another_at_once(
    any_client: str, worker_processes: WorkerProcesses, tmp_path: Path
) -> None:
    from queueflows import qw_mailer

    default = start_worker(worker_processes)
    doomed = start_worker(worker_processes, "-Q", "qw-mail")
    hold = tmp_path / "hold"
    hold.touch()
    run_id = await pyworkflow.start(qw_mailer, str(hold))
    await until(lambda: Path(f"{hold}.{doomed.pid}").exists(), within=30)

    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait(timeout=10)
    spare = start_worker(worker_processes, "-Q", "qw-mail")
    # Seen dead through its lock file, not after its lease (15 s) lapses.
    await until(lambda: Path(f"{hold}.{spare.pid}").exists(), within=10)
    hold.unlink()

    result = await pyworkflow.get_workflow_result(run_id, timeout=30)
    assert result == [default.pid, spare.pid, default.pid]
    started = sorted(name for name in os.listdir(tmp_path) if name.startswith("hold."))
    assert started == sorted([f"hold.{doomed.pid}", f"hold.{spare.pid}"])
    events = await pyworkflow.get_workflow_events(run_id)
    sends = [e for e in events if e.data.get("step_id") == "qw_send#1"]
    assert [e.type.value for e in sends][-1] == "step_completed"
    assert sum(e.type.value == "step_completed" for e in sends) == 1


async def until_true(check: Callable[[], Awaitable[bool]], *, within: float) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"not within {within} s"
        await asyncio.sleep(0.05)


async def until(check: Callable[[], bool], *, within: float) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"not within {within} s"
        await asyncio.sleep(0.05)


def test_a_bad_queue_option_is_one_line_and_exit_2(
    tmp_path: Path, worker_env: dict[str, str]
) -> None:
    (tmp_path / "queueflows.py").write_text(textwrap.dedent(MODULE))
    args = ["worker", "run", "-m", "queueflows", "--storage", "sqlite:///w.db", "-Q", "a,,b"]
    done = subprocess.run(
        cli(*args), cwd=tmp_path, env=worker_env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "--queues" in done.stderr
    assert "'a,,b'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "w.db").exists()
