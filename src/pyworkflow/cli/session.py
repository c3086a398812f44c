"""A command's connection to pyworkflow: the user's modules, the storage, and what it may drive.

Every command but ``worker run`` and ``db upgrade`` goes through :func:`session`. It finds the
user's modules relative to the working directory (as ``worker run`` does), refuses a SQLite
file that does not exist instead of creating an empty one (a mistyped ``--storage`` would
otherwise show "no runs" and leave a stray file), and limits how many runs this process drives:
none for commands that only look or write a request (``runs cancel`` must not start executing
the run it cancels), one for ``workflows run``, so that the command does not become a worker for
every due run in the database.

A command that only reads (the default) opens the storage as it finds it: it creates no
database, file or schema and migrates none, so a typo in ``--storage`` is an error naming the
database and ``pyworkflow db upgrade --storage URL`` is how one is made. Commands that write
(``writes=True``) open it as they always have.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Protocol, runtime_checkable

from pyworkflow import registry
from pyworkflow.cli.bridge import fail
from pyworkflow.config import configure, configured_modules, storage_url
from pyworkflow.exceptions import RunNotFoundError
from pyworkflow.executors.local import LocalExecutor
from pyworkflow.runtime import Runtime, get_runtime, shutdown
from pyworkflow.storage import SQLiteStorage, Storage, storage_from_url

__all__ = ["SchemaOwner", "import_workflows", "missing_runs_explained", "session"]


@runtime_checkable
class SchemaOwner(Storage, Protocol):
    """A storage with a schema, as SQLite and PostgreSQL have (asyncpg is optional: no import)."""

    create: bool
    auto_upgrade: bool


def _modules(given: Sequence[str]) -> list[str]:
    # PYWORKFLOW_MODULE (singular) is the name the users know; configure() reads the
    # plural one itself.
    single = os.environ.get("PYWORKFLOW_MODULE", "")
    extra = [m.strip() for m in single.split(",") if m.strip()]
    return [*given, *(m for m in extra if m not in given)]


def import_workflows(modules: Sequence[str], *, required: bool = True) -> list[str]:
    """Import ``--module``/``PYWORKFLOW_MODULE(S)`` and return the registered workflow names.

    Args:
        modules: the ``--module`` values.
        required: fail (exit 2) when no workflow ends up registered.

    Raises:
        ConfigurationError: a module cannot be imported (the message names it).
    """
    # Like other Python tools, find the user's modules relative to where the command starts,
    # also when launched through the console script (whose sys.path lacks the cwd).
    cwd = os.getcwd()
    if "" not in sys.path and cwd not in sys.path:
        sys.path.insert(0, cwd)
    configure(modules=_modules(modules) or None)
    registry.import_modules(configured_modules())
    names = registry.workflow_names()
    if required and not names:
        fail(
            "no workflows found: pass --module MODULE (or set PYWORKFLOW_MODULES) naming the "
            "modules that define them"
        )
    return names


def _storage(url: str | None, *, create: bool, writes: bool) -> Storage:
    """The storage ``url`` names, unopened.

    A missing SQLite file is an error unless ``create``; unless ``writes``, opening it creates
    and migrates nothing (a PostgreSQL database or schema included).
    """
    store = storage_from_url(storage_url(url))
    if isinstance(store, SQLiteStorage) and store.path != ":memory:":
        if not create and not os.path.exists(store.path):
            fail(
                f"no database at {store.url!r}: check --storage or PYWORKFLOW_STORAGE; create "
                f"one with `pyworkflow db upgrade --storage {store.url}` (a worker or "
                "`pyworkflow workflows run` creates it too)"
            )
        store.create = create
    if not writes and isinstance(store, SchemaOwner):
        store.create = store.auto_upgrade = False
    return store


@asynccontextmanager
async def session(
    storage: str | None,
    modules: Sequence[str] = (),
    *,
    writes: bool = False,
    create: bool = False,
    drive: int = 0,
) -> AsyncIterator[Runtime]:
    """Configure pyworkflow for one command, yield its runtime, then shut it down.

    Args:
        storage: ``--storage`` (else ``PYWORKFLOW_STORAGE``, else ``sqlite:///pyworkflow.db``).
        modules: ``--module`` values; none is fine for commands that only read runs.
        writes: the command changes runs (cancel, resume, deliver a payload, start); without
            it nothing is created or migrated, and a missing database is an error.
        create: create a missing SQLite file (only commands that start runs do; implies
            ``writes``).
        drive: how many runs this process may execute at once.

    Raises:
        ConfigurationError: a bad storage URL or an unimportable module.
    """
    store = _storage(storage, create=create, writes=writes or create)
    import_workflows(modules, required=False)
    configure(storage=store)
    try:
        runtime = await get_runtime()
        if isinstance(runtime.executor, LocalExecutor):
            runtime.executor.max_concurrent_runs = drive
            # PYWORKFLOW_RETENTION is for workers: looking at runs must never delete any.
            runtime.executor.retention = None
        yield runtime
    finally:
        await shutdown()


@contextmanager
def missing_runs_explained(
    runtime: Runtime, notes: Mapping[str, str] | None = None
) -> Iterator[None]:
    """Turn a ``RunNotFoundError`` inside into exit 2 with a line saying where to look.

    Args:
        runtime: the session's runtime (its storage is named in the line).
        notes: how the user gave an id, when not as the command's RUN_ID, by id (e.g.
            ``{before: "given as --before"}``).
    """
    try:
        yield
    except RunNotFoundError as exc:
        note = (notes or {}).get(exc.run_id)
        given = f" ({note})" if note else ""
        fail(
            f"no workflow run with id {exc.run_id!r}{given} in {runtime.storage.url}; check the "
            "id and --storage (`pyworkflow runs list` shows the runs there)"
        )
