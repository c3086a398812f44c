"""Real `pyworkflow worker run` processes for the CLI and executor tests, and runs for them.

Those tests run workers as a user would: the workflow module written to ``tmp_path``, the runs in
an SQLite file there. ``WorkerProcesses`` starts the processes and ends, at teardown, only the
ones it started, by pid (the ``worker_processes`` fixture in tests/conftest.py). Runs are created
straight through the storage API, the way ``client.start()`` stores them but with no lease, so
that only a worker executes them.

Importable as ``workers``: tests/conftest.py sits in a directory without ``__init__.py``, so
pytest (``prepend`` import mode) puts tests/ on ``sys.path`` before any test module is imported.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from pyworkflow._engine.event_kinds import EVENT_FORMAT
from pyworkflow.serialization import Codec
from pyworkflow.storage import NewRun, RunRecord, SQLiteStorage, Storage

T = TypeVar("T")


KILL_EFFECTS = Path(__file__).with_name("kill_effects.py")
"""The module the kill tests' workflows import; copy it next to them."""


def subprocess_env(importable: Path) -> dict[str, str]:
    """This process's environment without ``PYWORKFLOW_*`` settings, ``importable`` on the path.

    ``PYWORKFLOW_HOME`` stays: the suite's processes share one hook token key (conftest.py).
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PYWORKFLOW_") or k == "PYWORKFLOW_HOME"
    }
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(importable), env.get("PYTHONPATH")) if p)
    return env


def cli(*args: str) -> list[str]:
    """The command line of ``pyworkflow *args`` run by this interpreter."""
    return [sys.executable, "-m", "pyworkflow.cli", *args]


class WorkerProcesses:
    """Starts ``pyworkflow`` processes in ``cwd`` with ``env`` and remembers each one.

    ``env`` is read at each start, so a test may add variables to it before starting a process.
    """

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.env = env
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, log: Path) -> subprocess.Popen[bytes]:
        """``pyworkflow *args``, its stdout and stderr appended to ``log``."""
        with log.open("ab") as out:
            proc = subprocess.Popen(
                cli(*args), cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        self.started.append(proc)
        return proc

    def spawn(self, module: str, db: Path, *flags: str, log: Path) -> subprocess.Popen[bytes]:
        """``pyworkflow worker run`` for the workflows of ``module`` on the SQLite file ``db``."""
        return self.start(
            "worker", "run", "--module", module, "--storage", f"sqlite:///{db}", *flags, log=log
        )

    def start_marked(
        self, module: str, storage_url: str, *flags: str, log: Path, since: float
    ) -> subprocess.Popen[bytes]:
        """``pyworkflow worker run`` for ``module`` on ``storage_url``, polling every 0.2 s.

        A ``--- worker start at <t>s`` line (seconds since ``since``) goes into ``log`` first,
        so a test that restarts workers can show which one said what.
        """
        with log.open("ab") as out:
            out.write(f"--- worker start at {time.monotonic() - since:.2f}s\n".encode())
        return self.start(
            "worker", "run", "--module", module, "--storage", storage_url,
            "--poll-interval", "0.2", *flags, log=log,
        )  # fmt: skip

    def kill_started(self) -> None:
        """Kill (by pid) whichever of the started processes still runs, and reap them all."""
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


@asynccontextmanager
async def sqlite_storage(db: Path) -> AsyncIterator[SQLiteStorage]:
    """The SQLite storage in ``db``, opened, and closed on the way out."""
    storage = SQLiteStorage(str(db))
    await storage.open()
    try:
        yield storage
    finally:
        await storage.close()


def executions_in(side_effects: Path) -> Counter[tuple[str, str]]:
    """How often each ``(run_id, step_id)`` ran, from a log of ``run_id step_id ...`` lines."""
    counts: Counter[tuple[str, str]] = Counter()
    if side_effects.exists():
        for line in side_effects.read_text().splitlines():
            run_id, step_id, *_ = line.split()
            counts[run_id, step_id] += 1
    return counts


def on_sqlite(db: Path, use: Callable[[SQLiteStorage], Awaitable[T]]) -> T:
    """For sync tests: ``await use(storage)`` on the storage in ``db``, on a loop of its own."""

    async def go() -> T:
        async with sqlite_storage(db) as storage:
            return await use(storage)

    return asyncio.run(go())


async def add_unleased_run(
    storage: Storage, workflow: str, *args: object, call: dict[str, Any] | None = None
) -> str:
    """Create a run as ``client.start()`` stores it, but with no lease: only a worker runs it.

    ``call``: the encoded call to store instead of ``workflow(*args)``'s (a test of what a
    worker makes of a call it cannot decode).
    """
    encoded = call if call is not None else Codec().encode({"args": list(args), "kwargs": {}})
    record, _ = await storage.create_run(
        NewRun(
            run_id=f"run_{uuid.uuid4().hex}",
            workflow_name=workflow,
            args=encoded,
            started_payload={
                "v": EVENT_FORMAT,
                "workflow": workflow,
                "args": encoded,
                "idempotency_key": None,
            },
            now=time.time(),
        )
    )
    return record.run_id


def create_unleased_run(db: Path, workflow: str, *args: object) -> str:
    """``add_unleased_run`` for sync tests, on the SQLite file ``db``."""
    return on_sqlite(db, lambda storage: add_unleased_run(storage, workflow, *args))


def read_run(db: Path, run_id: str) -> RunRecord:
    record = on_sqlite(db, lambda storage: storage.get_run(run_id))
    assert record is not None, f"no run {run_id} in {db}"
    return record


def wait_for_run(
    db: Path, run_id: str, until: Callable[[RunRecord], bool], within: float
) -> RunRecord:
    """Poll the run until ``until(record)`` holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        record = read_run(db, run_id)
        if until(record):
            return record
        assert time.monotonic() < deadline, f"run still {record.status} after {within}s"
        time.sleep(0.05)
