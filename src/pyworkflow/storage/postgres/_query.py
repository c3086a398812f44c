"""Core statements compiled once for asyncpg and run on its connections.

Why not SQLAlchemy's async engine: it costs a greenlet switch and ~25 us of Python per
statement, and its transactions cost a round trip each for BEGIN and COMMIT (B0 measures 3.2x a
raw commit for a 3-statement transaction). Here a statement is compiled once with the
``postgresql+asyncpg`` dialect, and a call lays out its parameters and hands SQL text and values
to asyncpg, which keeps a prepared statement per SQL text and connection.

Parameters named ``b_*`` are the caller's; every other bound value in a statement is a literal
of the statement itself (the 0 of a CASE, a fixed list of statuses) and is taken from the
compiled form.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.asyncpg import dialect as _AsyncpgDialect

__all__ = ["PgQuery", "compile_once_off"]

_DIALECT = _AsyncpgDialect()  # type: ignore[no-untyped-call]


class PgQuery:
    """A fixed-shape Core statement compiled for asyncpg.

    Example:
        >>> GET = PgQuery(sa.select(runs).where(runs.c.run_id == sa.bindparam("b_run_id")))
        >>> row = await GET.fetchrow(conn, {"b_run_id": "r1"})  # doctest: +SKIP
    """

    __slots__ = ("_names", "_slots", "sql")

    def __init__(self, stmt: sa.Executable) -> None:
        compiled: Any = stmt.compile(dialect=_DIALECT)  # type: ignore[attr-defined]
        self.sql: str = compiled.string
        self._names: tuple[str, ...] = tuple(compiled.positiontup)
        # For each position: the caller's parameter name, or the statement's own literal.
        self._slots: list[tuple[str | None, Any]] = [
            (name, None) if name.startswith("b_") else (None, compiled.binds[name].value)
            for name in self._names
        ]

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        """The positional values for ``params`` (a missing ``b_*`` name is a KeyError)."""
        return [params[name] if name is not None else value for name, value in self._slots]

    async def fetch(self, conn: asyncpg.Connection, params: Mapping[str, Any]) -> list[Any]:
        """Every row, as asyncpg Records (mapping access by column name)."""
        return list(await conn.fetch(self.sql, *self.args(params)))

    async def fetchrow(self, conn: asyncpg.Connection, params: Mapping[str, Any]) -> Any:
        """The first row, or None."""
        return await conn.fetchrow(self.sql, *self.args(params))

    async def fetchval(self, conn: asyncpg.Connection, params: Mapping[str, Any]) -> Any:
        """The first column of the first row, or None."""
        return await conn.fetchval(self.sql, *self.args(params))

    async def execute(self, conn: asyncpg.Connection, params: Mapping[str, Any]) -> int:
        """Run it; the number of rows it changed."""
        status: str = await conn.execute(self.sql, *self.args(params))
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0


def compile_once_off(stmt: sa.Executable) -> tuple[str, Sequence[Any]]:
    """SQL text and values of a statement whose every value is already in it (``list_runs``).

    For statements built per call, off the hot path; their text varies with their filters.
    """
    compiled: Any = stmt.compile(  # type: ignore[attr-defined]
        dialect=_DIALECT, compile_kwargs={"render_postcompile": True}
    )
    values = compiled.construct_params()
    return compiled.string, [values[name] for name in compiled.positiontup]
