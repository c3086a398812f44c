"""Prepared statements: a Core statement compiled once per dialect, run on the DBAPI cursor.

Why this exists: ``Connection.execute`` spends ~25 us of Python per statement (parameter and
result processing) where the driver needs ~5 us, and an append runs two statements per step. So
the statements on that hot path (``statements.APPEND``, ``statements.INSERT_EVENT``) are wrapped
in :class:`PreparedStatement`, which compiles them once per dialect and paramstyle and then hands
SQL text and laid-out parameters straight to the driver's cursor.

What to watch for: only statements of a fixed shape qualify (no expanding ``IN`` lists), rows come
back as plain tuples, and driver errors surface unwrapped (the backend translates them at its
boundary either way).
"""

from __future__ import annotations

import collections
from typing import Any

import sqlalchemy as sa

__all__ = ["PreparedStatement"]


class PreparedStatement:
    """A fixed-shape Core statement, compiled once per dialect and run on the DBAPI cursor.

    Example:
        >>> insert_event = PreparedStatement(sa.insert(events))  # doctest: +SKIP
        >>> insert_event.many(conn, [row])  # doctest: +SKIP
    """

    __slots__ = ("_by_dialect", "stmt")

    def __init__(self, stmt: sa.Executable) -> None:
        self.stmt = stmt
        self._by_dialect: dict[tuple[Any, ...], _Compiled] = {}

    def _compiled(self, conn: sa.Connection) -> _Compiled:
        dialect = conn.dialect
        key = (type(dialect), dialect.paramstyle)
        found = self._by_dialect.get(key)
        if found is None:
            compiled: Any = self.stmt.compile(dialect=dialect)  # type: ignore[attr-defined]
            # Literals in the statement (the 0 of a CASE, say) became anonymous parameters.
            literals = {k: bp.value for k, bp in compiled.binds.items() if bp.value is not None}
            names = tuple(compiled.positiontup) if compiled.positional else None
            procs = dict(getattr(compiled, "_bind_processors", {}))
            found = self._by_dialect[key] = _Compiled(compiled.string, names, literals, procs)
        return found

    def first(self, conn: sa.Connection, params: dict[str, Any]) -> Any:
        """Execute with one set of parameters; the first row as a plain tuple, or None."""
        compiled = self._compiled(conn)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(compiled.text, compiled.args(params))
            return cursor.fetchone() if cursor.description else None
        finally:
            cursor.close()

    def first_named(self, conn: sa.Connection, params: dict[str, Any]) -> Any:
        """Like :meth:`first`, but the row's columns are attributes (a named tuple)."""
        compiled = self._compiled(conn)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(compiled.text, compiled.args(params))
            row = cursor.fetchone()
            if row is None:
                return None
            if compiled.row_type is None:
                names = [column[0] for column in cursor.description]
                compiled.row_type = collections.namedtuple("Row", names)  # type: ignore[misc]
            return compiled.row_type._make(row)
        finally:
            cursor.close()

    def all(self, conn: sa.Connection, params: dict[str, Any]) -> list[Any]:
        """Execute with one set of parameters; every row as a plain tuple."""
        compiled = self._compiled(conn)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(compiled.text, compiled.args(params))
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def many(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        """Execute once per parameter set (one ``executemany``)."""
        compiled = self._compiled(conn)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(compiled.text, [compiled.args(row) for row in rows])
        finally:
            cursor.close()


class _Compiled:
    """One dialect's SQL text of a :class:`PreparedStatement`, and how to lay out its parameters."""

    __slots__ = ("literals", "names", "procs", "row_type", "text")

    def __init__(
        self,
        text: str,
        names: tuple[str, ...] | None,
        literals: dict[str, Any],
        procs: dict[str, Any],
    ) -> None:
        self.text, self.names, self.literals, self.procs = text, names, literals, procs
        self.row_type: Any = None  # the named tuple of a SELECT's rows, made on first use

    def args(self, params: dict[str, Any]) -> Any:
        """The driver's parameters: a tuple for positional paramstyles, else a dict."""
        values = {**self.literals, **params} if self.literals else params
        if self.procs:
            procs = self.procs
            values = {
                k: v if v is None or k not in procs else procs[k](v) for k, v in values.items()
            }
        return values if self.names is None else tuple(values[name] for name in self.names)
