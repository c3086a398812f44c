"""SQLite's session: the statements of a script run on the database thread's connection.

Scripts are ``async`` functions written once for every dialect, but SQLite runs them on its
database thread, inside the batch's ``BEGIN IMMEDIATE`` transaction (``_batch.py``), where no
event loop runs and nothing may wait. So every method here answers at once, and
:func:`run_to_end` drives a script to its end in one go: each ``await`` of it completes
without suspending. A whole transaction thus still crosses to the thread once.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

import sqlalchemy as sa

from pyworkflow.storage.sql import Row, Session
from pyworkflow.storage.sqlite._prepared import prepared

__all__ = ["SessionCache", "SqliteSession", "run_to_end"]

_T = TypeVar("_T")


def run_to_end(script: Coroutine[Any, Any, _T]) -> _T:
    """Run a script on SQLite's session, whose awaits never suspend; what it returns or raises."""
    try:
        script.send(None)
    except StopIteration as done:
        result: _T = done.value
        return result
    script.close()
    raise RuntimeError("a storage script waited on SQLite's database thread")


class SqliteSession(Session):
    """The connection of SQLite's database thread, inside the transaction of a batch.

    Fixed-shape statements go straight to the DBAPI cursor (``_prepared.py``); statements with
    an expanding ``IN`` list, and those built for one call, through ``Connection.execute``.
    """

    dialect = "sqlite"

    __slots__ = ("_conn", "_driver")

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn
        self._driver: Any = conn.connection.dbapi_connection

    @property
    def connection(self) -> sa.Connection:
        """The SQLAlchemy connection this session runs on."""
        return self._conn

    async def first(self, statement: sa.Executable, params: Mapping[str, Any]) -> Row | None:
        """The first row of a statement, or None."""
        compiled = prepared(statement, self._conn.dialect)
        if compiled is None:
            result = self._conn.execute(statement, dict(params))
            return result.first() if result.returns_rows else None
        cursor = self._driver.cursor()
        try:
            cursor.execute(compiled.text, compiled.args(params))
            row: Row | None = cursor.fetchone() if cursor.description else None
            return row
        finally:
            cursor.close()

    async def all(self, statement: sa.Executable, params: Mapping[str, Any]) -> list[Row]:
        """Every row of a statement."""
        compiled = prepared(statement, self._conn.dialect)
        if compiled is None:
            result = self._conn.execute(statement, dict(params))
            return list(result.all()) if result.returns_rows else []
        cursor = self._driver.cursor()
        try:
            cursor.execute(compiled.text, compiled.args(params))
            return list(cursor.fetchall())
        finally:
            cursor.close()

    async def execute(self, statement: sa.Executable, params: Mapping[str, Any]) -> int:
        """Run a statement that returns no rows; how many rows it changed."""
        compiled = prepared(statement, self._conn.dialect)
        if compiled is None:
            changed: int = self._conn.execute(statement, dict(params)).rowcount
            return changed
        cursor = self._driver.cursor()
        try:
            cursor.execute(compiled.text, compiled.args(params))
            changed = cursor.rowcount
            return changed
        finally:
            cursor.close()

    async def insert(self, statement: sa.Executable, rows: list[dict[str, Any]]) -> None:
        """Run an INSERT once per row, in one ``executemany``."""
        compiled = prepared(statement, self._conn.dialect)
        if compiled is None:
            self._conn.execute(statement, rows)
            return
        cursor = self._driver.cursor()
        try:
            cursor.executemany(compiled.text, [compiled.args(row) for row in rows])
        finally:
            cursor.close()

    async def execute_many(self, statement: sa.Executable, rows: list[dict[str, Any]]) -> int:
        """Run a statement once per row, in one ``executemany``; how many rows it changed."""
        compiled = prepared(statement, self._conn.dialect)
        if compiled is None:
            changed: int = self._conn.execute(statement, rows).rowcount
            return changed
        cursor = self._driver.cursor()
        try:
            cursor.executemany(compiled.text, [compiled.args(row) for row in rows])
            changed = cursor.rowcount
            return changed
        finally:
            cursor.close()

    async def query(self, statement: sa.Executable) -> list[Row]:
        """Every row of a statement built for one call."""
        return list(self._conn.execute(statement).all())


class SessionCache:
    """The session of the database thread's connection, made once rather than per script.

    Only the database thread reads it. A storage reopened gets a new thread and connection,
    and so a new session.
    """

    __slots__ = ("_session",)

    def __init__(self) -> None:
        self._session: SqliteSession | None = None

    def of(self, conn: sa.Connection) -> SqliteSession:
        """The session of ``conn``."""
        session = self._session
        if session is None or session.connection is not conn:
            session = self._session = SqliteSession(conn)
        return session
