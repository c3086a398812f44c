"""Damage one stored cell behind pyworkflow's back, as a flipped byte or a hand edit would.

SQLite cells are written through plain ``sqlite3`` on the database file, PostgreSQL cells through
a connection of asyncpg's own in the storage's schema: nothing of pyworkflow's touches the value.
Runs are created as ``client.start()`` stores them but with no lease, so that only a worker
executes them.

Importable as ``corrupt_cells`` (tests/ is on ``sys.path``, see tests/workers.py).
"""

from __future__ import annotations

import asyncio
import sqlite3

import asyncpg

from pyworkflow.storage import SQLiteStorage, Storage
from pyworkflow.storage.postgres import PostgresStorage
from workers import add_unleased_run

TRUNCATED_JSON = '{"args": [21], "kwar'
"""A JSON text cut short: what a torn write or a flipped byte leaves."""

WRONG_TYPE_JSON = '"12345"'
"""Parseable JSON of the wrong type: a string where an object belongs."""


add_run = add_unleased_run  # the workers' helper: it creates a run as start() stores it


async def set_cell(
    storage: Storage,
    table: str,
    column: str,
    value: object,
    *,
    run_id: str,
    seq: int | None = None,
) -> None:
    """Overwrite ``table.column`` of the run's row (of its event ``seq``) with ``value``."""
    where = "run_id = $1" if seq is None else "run_id = $1 AND seq = $2"
    params: list[object] = [run_id] if seq is None else [run_id, seq]
    if isinstance(storage, SQLiteStorage):
        sql = f"UPDATE {table} SET {column} = ? WHERE {where.replace('$1', '?').replace('$2', '?')}"
        await asyncio.to_thread(_sqlite_update, storage.path, sql, [value, *params])
    elif isinstance(storage, PostgresStorage):
        numbered = where.replace("$2", "$3").replace("$1", "$2")
        settings = storage.settings
        conn = await asyncpg.connect(settings.dsn, server_settings=settings.server_settings)
        try:
            done = await conn.execute(
                f"UPDATE {table} SET {column} = $1 WHERE {numbered}", value, *params
            )
        finally:
            await conn.close()
        assert done == "UPDATE 1", done
    else:
        raise AssertionError(f"{type(storage).__name__} holds no cells to damage")


def _sqlite_update(path: str, sql: str, params: list[object]) -> None:
    conn = sqlite3.connect(path)
    try:
        with conn:
            assert conn.execute(sql, params).rowcount == 1
    finally:
        conn.close()
