"""Two real schedulers on one database, one killed with kill -9: every slot starts exactly once.

Two `pyworkflow worker run` processes (each fires schedules beside its claim loop) share an
SQLite file or a PostgreSQL schema, with an every-second schedule (ALLOW_ALL, so that no slot
is refused by the policy: each one must start). After a few seconds one is killed with
SIGKILL (by pid); the other goes on alone. Then the schedule is paused and the runs are read
back: one run per slot, no slot missing between the first and the last, none skipped, the
schedule's own count equal to the runs stored, and every run completed (the runs the dead
worker held are taken over).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from pyworkflow.events import RunStatus
from pyworkflow.storage import storage_from_url
from workers import WorkerProcesses, cli

pytestmark = pytest.mark.slow

WORKFLOW_MODULE = """
from pyworkflow import workflow


@workflow()
async def schedwf_tick() -> str:
    return "tick"
"""

BOTH_SECONDS = 6.0  # both schedulers fire the schedule
ALONE_SECONDS = 6.0  # the survivor fires it alone


@pytest.fixture(params=["sqlite", "postgres"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.db'}"
    return str(request.getfixturevalue("postgres_server").fresh_url())


def pyworkflow(tmp_path: Path, env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        cli(*args), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


async def settled_runs(url: str, deadline: float) -> list:  # type: ignore[type-arg]
    """The schedule's runs once all have ended (the dead worker's are taken over)."""
    storage = storage_from_url(url)
    await storage.open()
    try:
        while True:
            runs = await storage.list_runs(schedule_id="every-second", limit=10_000)
            if all(r.status.is_terminal for r in runs) or time.monotonic() > deadline:
                schedule = await storage.get_schedule("every-second")
                return [runs, schedule]
            await asyncio.sleep(0.2)
    finally:
        await storage.close()


def test_two_schedulers_and_a_kill_start_each_slot_once(
    tmp_path: Path,
    storage_url: str,
    worker_env: dict[str, str],
    worker_processes: WorkerProcesses,
) -> None:
    (tmp_path / "schedwf.py").write_text(textwrap.dedent(WORKFLOW_MODULE))
    log = tmp_path / "workers.log"
    pyworkflow(tmp_path, worker_env, "db", "upgrade", "--storage", storage_url)
    first = worker_processes.start_marked("schedwf", storage_url, log=log, since=time.monotonic())
    second = worker_processes.start_marked("schedwf", storage_url, log=log, since=time.monotonic())
    pyworkflow(
        tmp_path, worker_env,
        "schedules", "create", "schedwf_tick", "--interval", "1s", "--id", "every-second",
        "--overlap", "allow_all", "--catchup-window", "1m",
        "-m", "schedwf", "--storage", storage_url,
    )  # fmt: skip
    time.sleep(BOTH_SECONDS)
    os.kill(first.pid, signal.SIGKILL)  # mid-stream: it may hold runs, or be mid-fire
    first.wait()
    time.sleep(ALONE_SECONDS)
    assert second.poll() is None, log.read_text()[-3000:]
    pyworkflow(tmp_path, worker_env, "schedules", "pause", "every-second", "--storage", storage_url)
    runs, schedule = asyncio.run(settled_runs(storage_url, time.monotonic() + 30))
    slots = sorted(r.schedule_slot_at for r in runs)
    offsets = [round(s - slots[0], 3) for s in slots]
    expected = BOTH_SECONDS + ALONE_SECONDS
    print(f"{len(runs)} runs over {expected:g}s; first slot {slots[0]:.3f}")
    assert offsets == [float(i) for i in range(len(slots))]  # none twice, none missing
    assert len(slots) >= expected - 2  # every second of the test had its run
    assert (schedule.total_runs, schedule.skipped_runs) == (len(runs), 0)
    assert [r.status for r in runs] == [RunStatus.COMPLETED] * len(runs), log.read_text()[-3000:]
    assert len({r.run_id for r in runs}) == len(runs)
