"""The terms that pyworkflow's statements (``_statements/``) are built of.

:func:`param` is a typed bound parameter, named ``b_*`` by the statements so that it never
collides with a column name in an ``UPDATE ... SET``. :func:`in_list` is ``column IN`` a list:
``IN (?, ?, ...)`` on SQLite, ``= ANY($n)`` with one array parameter on PostgreSQL (so the SQL
text does not change with the list's length and asyncpg's prepared-statement cache keeps
serving it). :func:`unindexed` is a column's value that no index serves, which steers a planner
off an index it would wrongly prefer. :func:`upsert` is the INSERT of a dialect that can take
``ON CONFLICT``, which Core has no dialect-neutral form of.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import visitors

from pyworkflow.events import RunStatus

__all__ = ["ENDED", "LIVE", "in_list", "param", "unindexed", "upsert"]

LIVE = tuple(sorted(s.value for s in RunStatus if not s.is_terminal))
"""The statuses of a run that has not ended."""

ENDED = tuple(sorted(s.value for s in RunStatus if s.is_terminal))
"""The statuses of a run that has ended."""

# Each dialect's INSERT with ``on_conflict_do_nothing`` and ``on_conflict_do_update``; both take
# the same arguments. A dialect without ``ON CONFLICT`` overrides the steps that use them.
_UPSERTS: dict[str, Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def param(name: str, type_: Any) -> Any:
    """A typed bound parameter (typed so PostgreSQL drivers know what they bind)."""
    return sa.bindparam(name, type_=type_)


def upsert(dialect: str, table: sa.Table) -> Any:
    """``INSERT INTO table`` that can take ``ON CONFLICT``, in ``dialect``'s construct.

    Args:
        dialect: ``"sqlite"`` or ``"postgresql"``.
        table: the table to insert into.
    """
    return _UPSERTS[dialect](table)


def unindexed(column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    """``column || ''``: the same value, but no index serves it (SQLite's unary ``+``, portably).

    So the planner walks ``ix_runs_wake_at`` in order instead of another index and a sort.
    """
    return column.op("||", return_type=sa.String)(sa.literal_column("''"))


class _InList(sa.ColumnElement[bool]):
    """``column IN`` a list, rendered the way each dialect wants.

    The list is either bound at execution as the parameter ``name`` or fixed in the statement
    (``values``). SQLite gets ``IN (?, ?, ...)``; PostgreSQL gets ``column = ANY($n)`` with one
    array parameter, so the SQL text does not change with the list's length and asyncpg's
    prepared-statement cache keeps serving it.
    """

    type = sa.Boolean()
    # A comparison, not a boolean column: otherwise SQLite gets ``IN (...) = 1``, which no
    # index serves (every lease renewal and pruned run's delete would scan its table).
    _is_implicitly_boolean = True
    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy's declaration, read as a class attribute)
        ("column", visitors.InternalTraversal.dp_clauseelement),
        ("name", visitors.InternalTraversal.dp_string),
        ("values", visitors.InternalTraversal.dp_plain_obj),
    ]

    def __init__(
        self, column: sa.ColumnElement[Any], name: str | None, values: tuple[str, ...] | None
    ) -> None:
        self.column, self.name, self.values = column, name, values


@compiles(_InList)
def _in_list_default(element: _InList, compiler: Any, **kw: Any) -> str:
    if element.values is not None:
        # Written into the text (they are the statement's own constants, statuses say): a
        # fixed statement then needs no expanding parameter, so it can be a PreparedStatement.
        fixed = element.column.in_(element.values)
        return str(compiler.process(fixed, **{**kw, "literal_binds": True}))
    listed = element.column.in_(sa.bindparam(element.name, expanding=True))
    return str(compiler.process(listed, **kw))


@compiles(_InList, "postgresql")
def _in_list_postgresql(element: _InList, compiler: Any, **kw: Any) -> str:
    array_type = postgresql.ARRAY(element.column.type)
    if element.values is not None:
        array = sa.bindparam(None, list(element.values), type_=array_type, unique=True)
    else:
        array = sa.bindparam(element.name, type_=array_type)
    return str(compiler.process(element.column == sa.any_(array), **kw))


def in_list(
    column: sa.ColumnElement[Any], name: str | None = None, *, values: Collection[str] = ()
) -> sa.ColumnElement[bool]:
    """``column`` is one of the list bound as ``name``, or of ``values`` (see :class:`_InList`)."""
    return _InList(column, name, None if name is not None else tuple(values))
