"""The storage class names of the pyworkflow documentation, mapped onto our backends.

Code written for that documentation builds its storage by class name and passes the object to
``configure(storage=...)``; these names make it run unchanged. Each is a thin subclass of one
of our backends, adding only ``get_children`` (which that code calls on the storage):

- ``InMemoryStorageBackend()`` -> :class:`MemoryStorage` (``memory://``);
- ``FileStorageBackend(base_path="dir")`` -> :class:`SQLiteStorage` on ``dir/pyworkflow.db``:
  we have no file-per-run backend; SQLite keeps the same promise (runs survive restarts, on
  one machine) in one file, readable with ``pyworkflow runs show --storage sqlite:///...``;
- ``SQLiteStorageBackend(db_path="x.db")`` -> :class:`SQLiteStorage`;
- ``PostgresStorageBackend(dsn=...)`` -> ``PostgresStorage`` (needs ``pyworkflow[postgres]``).

Code written for that documentation also expects its single-process runtime's ``start()``,
which returns once the run has settled (ended, or waiting on a timer or a hook): a storage
built from one of these names turns ``configure(start_waits=True)`` on (``start_waits`` is
its attribute; an explicit ``configure(start_waits=False)`` wins).

Their MySQL, Cassandra, DynamoDB and Citus backends have no counterpart here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from pyworkflow.events import RunStatus
from pyworkflow.storage.memory import MemoryStorage
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.sqlite import SQLiteStorage

__all__ = [
    "ChildRun",
    "FileStorageBackend",
    "InMemoryStorageBackend",
    "SQLiteStorageBackend",
    "postgres_storage_backend",
]

_MAX_CHILDREN = 10_000


@dataclass(frozen=True, slots=True)
class ChildRun:
    """A child run as ``get_children`` lists it.

    Attributes:
        run_id: the child's run id.
        workflow_name: its workflow.
        status: its status now.
        nesting_depth: 1 for a child of a root run, 2 for a grandchild ...
        parent_run_id: the run that started it.
    """

    run_id: str
    workflow_name: str
    status: RunStatus
    nesting_depth: int
    parent_run_id: str


async def _children(storage: Storage, run_id: str) -> list[ChildRun]:
    records = await storage.list_runs(parent_run_id=run_id, limit=_MAX_CHILDREN)
    found = []
    for record in sorted(records, key=lambda r: (r.created_at, r.run_id)):
        first = await storage.load_events(record.run_id)
        depth = int(first[0].payload.get("nesting_depth", 1)) if first else 1
        found.append(ChildRun(record.run_id, record.workflow_name, record.status, depth, run_id))
    return found


class InMemoryStorageBackend(MemoryStorage):
    """``memory://`` storage under the documentation's name (see the module docstring)."""

    start_waits = True

    async def get_children(self, run_id: str) -> list[ChildRun]:
        """The runs ``run_id`` started as children (also from its steps), oldest first."""
        return await _children(self, run_id)


class SQLiteStorageBackend(SQLiteStorage):
    """SQLite storage under the documentation's name; ``db_path`` is the database file."""

    start_waits = True

    def __init__(self, db_path: str = "pyworkflow.db", **options: Any) -> None:
        super().__init__(db_path, **options)

    async def get_children(self, run_id: str) -> list[ChildRun]:
        """The runs ``run_id`` started as children (also from its steps), oldest first."""
        return await _children(self, run_id)


class FileStorageBackend(SQLiteStorageBackend):
    """The documentation's file storage, kept in SQLite: ``base_path/pyworkflow.db``.

    Args:
        base_path: a directory (created if missing) holding the database file.
    """

    def __init__(self, base_path: str = "./workflow_data", **options: Any) -> None:
        os.makedirs(base_path, exist_ok=True)
        super().__init__(os.path.join(os.fspath(base_path), "pyworkflow.db"), **options)
        self.base_path = base_path


def postgres_storage_backend() -> type[Any]:
    """``PostgresStorageBackend``: PostgresStorage with ``get_children`` (needs asyncpg)."""
    from pyworkflow.storage.postgres import PostgresStorage

    class PostgresStorageBackend(PostgresStorage):
        """PostgreSQL storage under the documentation's name."""

        start_waits = True

        async def get_children(self, run_id: str) -> list[ChildRun]:
            """The runs ``run_id`` started as children (also from its steps), oldest first."""
            return await _children(self, run_id)

    return PostgresStorageBackend
