"""Fixtures shared by the test suites; none is autouse, so other test dirs are untouched.

``pw_memory`` / ``pw_sqlite`` configure the process-wide pyworkflow runtime on a fresh storage
and shut it down afterwards (``pw_postgres`` on a fresh schema of the session's PostgreSQL
database); ``pw`` is the same, parametrised over every backend (tests/backends.py). Each yields
the storage object so a test can look at it directly.

``configure()`` keeps settings across calls, so each fixture saves the settings it found and puts
them back on teardown. A test that wants other engine knobs (``horizon_seconds``,
``allow_pickle`` ...) calls ``pyworkflow.configure(...)`` itself before its first ``start``: the
runtime is built lazily, on first use, and the fixture restores everything afterwards.

``worker_processes`` starts real ``pyworkflow`` processes in ``tmp_path`` with ``worker_env`` (the
environment, ``tmp_path`` importable: add to it before a start) and kills, on teardown, only the
processes it started; tests/workers.py holds it and the helpers that create and read their runs.

``--record-golden`` makes tests/golden rewrite its recorded histories instead of checking them.

The README's ``pytest -q`` runs the tests on pytest-xdist workers (``-n auto --dist
loadscope`` in pyproject.toml), two per core: most tests wait on processes and databases rather
than compute. Each worker is a process of its own, so it has its own PostgreSQL database
(postgres_server.py), its own ``tmp_path``s and its own module state (the runtime of
``pyworkflow.config``). A unit of work is a test module, whose module-scoped fixtures (a private
PostgreSQL server, seeded databases, agent processes) are then set up once; and tests/celery as
a whole, one module after the other on one worker, as its deployments flush the same Redis
databases and purge the same RabbitMQ queues (``pytest_xdist_make_scheduler`` below).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import pyworkflow
from backends import BACKENDS, fresh_storages
from postgres_server import PostgresServer
from pyworkflow import config
from pyworkflow.storage import MemoryStorage, SQLiteStorage
from pyworkflow.storage.protocol import Storage
from workers import WorkerProcesses, subprocess_env

# Hook tokens made without a secret_key use this machine's key file (hook_tokens.py): the suite
# keeps its own, shared with the worker processes it starts, and leaves ~/.pyworkflow alone.
os.environ.setdefault("PYWORKFLOW_HOME", tempfile.mkdtemp(prefix="pyworkflow-home-"))

MAX_WORKERS = 8
"""Each worker's storages hold PostgreSQL connections (pools of up to 10): the server has 100."""
TERMINAL_SIZE = ("COLUMNS", "LINES")
CELERY_TESTS = "tests/celery/"
"""The test ids of tests/celery begin so (ids are relative to the project's root)."""

# Short enough that a test never waits on them, long enough that no run is taken over while its
# worker is alive.
LEASE_SECONDS = 10.0
HORIZON_SECONDS = 5.0
# A test that stops its executor while a step still runs waits this long for it (a drain).
DRAIN_SECONDS = 0.5


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Hand each xdist worker this process's ``COLUMNS`` and ``LINES``, set or not."""
    node.workerinput["terminal_size"] = {name: os.environ.get(name) for name in TERMINAL_SIZE}


def pytest_configure(config: pytest.Config) -> None:
    """In an xdist worker, ``COLUMNS`` and ``LINES`` as in the pytest process that started it.

    GNU readline, which pytest imports at start-up, exports a size of its own (80x24) when its
    input is no terminal, as a worker's is not; the CLI lays out its tables by ``COLUMNS``.
    """
    given = getattr(config, "workerinput", {}).get("terminal_size")
    for name, value in (given or {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: two workers per core, as they mostly wait, and at most ``MAX_WORKERS``.

    ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still wins.
    """
    chosen = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS")
    return int(chosen) if chosen else min(MAX_WORKERS, 2 * (os.cpu_count() or 1))


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadscope``, with tests/celery one unit of work: see the module docstring.

    (Not ``--dist loadgroup`` and ``xdist_group`` marks: pytest-xdist 3.8 marks a group in
    the test's id, which pytest 9.2 no longer lets it change, so the groups are silently
    ignored: pytest-dev/pytest-xdist#1386.)
    """
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class CeleryApart(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith(CELERY_TESTS):
                return CELERY_TESTS
            return super()._split_scope(nodeid)

    return CeleryApart(config, log)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record-golden",
        action="store_true",
        default=False,
        help="re-record tests/golden/*.json from today's engine instead of checking them",
    )


async def _configured(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Storage]:
    # Put back whatever settings were there before: configure() merges into them.
    monkeypatch.setattr(config, "_settings", config._settings)
    pyworkflow.configure(
        storage=storage,
        lease_seconds=LEASE_SECONDS,
        horizon_seconds=HORIZON_SECONDS,
        drain_seconds=DRAIN_SECONDS,
    )
    try:
        yield storage
    finally:
        await pyworkflow.shutdown()
        # Also when the runtime never opened it (a test that used the storage directly).
        await storage.close()


@pytest.fixture
async def pw_memory(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Storage]:
    """pyworkflow configured on a fresh MemoryStorage."""
    async for storage in _configured(MemoryStorage(), monkeypatch):
        yield storage


@pytest.fixture
async def pw_sqlite(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[Storage]:
    """pyworkflow configured on a fresh SQLite file under ``tmp_path``."""
    async for storage in _configured(SQLiteStorage(str(tmp_path / "pw.db")), monkeypatch):
        yield storage


@pytest.fixture(params=BACKENDS)
async def pw(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[Storage]:
    """pyworkflow configured on each backend in turn (tests/backends.py), a fresh database."""
    storage = fresh_storages(request.param, tmp_path, request)()
    async for configured in _configured(storage, monkeypatch):
        yield configured


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The local PostgreSQL server, with a database made for this session and dropped after."""
    server = PostgresServer()
    server.create()
    yield server
    server.drop()


@pytest.fixture
async def pw_postgres(
    monkeypatch: pytest.MonkeyPatch, postgres_server: PostgresServer
) -> AsyncIterator[Storage]:
    """pyworkflow configured on a fresh schema of the session's PostgreSQL database."""
    from pyworkflow.storage.postgres import PostgresStorage

    async for storage in _configured(PostgresStorage(postgres_server.fresh_url()), monkeypatch):
        yield storage


@pytest.fixture
def worker_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a subprocess: no ``PYWORKFLOW_*`` settings, modules in tmp_path."""
    return subprocess_env(tmp_path)


@pytest.fixture
def worker_processes(tmp_path: Path, worker_env: dict[str, str]) -> Iterator[WorkerProcesses]:
    """Starts processes in tmp_path with ``worker_env``; kills only those, by pid, afterwards."""
    processes = WorkerProcesses(tmp_path, worker_env)
    yield processes
    processes.kill_started()
