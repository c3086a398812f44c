"""Every SQL statement of pyworkflow, written once in dialect-neutral SQLAlchemy Core.

``sql.py`` binds values to these and turns rows into records; the backends run them. Keeping the
statements apart from the functions that run them lets a reader see each query whole, and builds
the hot ones once: fixed-shape statements are module constants and statements whose shape depends
on the call (which filters, ``SKIP LOCKED``) are cached per shape, with every value a bound
parameter, so a call only binds and executes (SQLAlchemy's compiled cache then skips compilation
too). Bound parameters are named ``b_*`` so they never collide with column names in ``UPDATE``
``SET`` clauses.

Invariant kept by every write (``sql.py`` and ``postgres.py``): a terminal run has ``wake_at``
NULL and no lease. So a ``wake_at`` that is set already means a live run, and the queries for
runnable runs walk the ``wake_at`` index in order and stop after ``limit`` rows. They carry no
status term on purpose: PostgreSQL's planner, guessing at its selectivity, would rather sort
every live run than walk the index. Their workflow term is wrapped by :func:`_unindexed`:
without statistics SQLite's planner would otherwise pick the workflow index and sort, reading
every run of those workflows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import visitors

from pyworkflow._engine.events import RunStatus
from pyworkflow.storage._prepared import PreparedStatement
from pyworkflow.storage.protocol import RunCursor
from pyworkflow.storage.schema import events, runs

__all__ = [
    "APPEND",
    "APPEND_FIELDS",
    "DELETE_ENDED_RUNS",
    "DELETE_RUN_ROWS",
    "ENDED_RUNS",
    "GET_RUN",
    "GET_RUN_BY_KEY",
    "INSERT_EVENT",
    "INSERT_RUN",
    "LOAD_EVENTS",
    "RELEASE_RUNS",
    "RENEW_LEASES",
    "REOPEN_FAILED_RUN",
    "REQUEST_CANCEL",
    "RUN_OWNED_TABLES",
    "RUN_STATE",
    "append_update",
    "claim_runs_statement",
    "list_runs_statement",
    "next_wake_at_statements",
]

_LIVE = sorted(s.value for s in RunStatus if not s.is_terminal)
_ENDED = sorted(s.value for s in RunStatus if s.is_terminal)


def _p(name: str, type_: sa.types.TypeEngine[Any] | type[sa.types.TypeEngine[Any]]) -> Any:
    """A typed bound parameter (typed so PostgreSQL drivers know what they bind)."""
    return sa.bindparam(name, type_=type_)


def _unindexed(column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
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
        return str(compiler.process(element.column.in_(element.values), **kw))
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


def _in(
    column: sa.ColumnElement[Any], name: str | None = None, *, values: Collection[str] = ()
) -> sa.ColumnElement[bool]:
    """``column`` is one of the list bound as ``name``, or of ``values`` (see :class:`_InList`)."""
    return _InList(column, name, None if name is not None else tuple(values))


# --- fixed-shape statements, built once ---------------------------------------------------------

GET_RUN = PreparedStatement(sa.select(runs).where(runs.c.run_id == _p("b_run_id", sa.String)))
GET_RUN_BY_KEY = sa.select(runs).where(runs.c.idempotency_key == _p("b_key", sa.String))
INSERT_RUN = PreparedStatement(sa.insert(runs))
INSERT_EVENT = PreparedStatement(sa.insert(events))
LOAD_EVENTS = PreparedStatement(
    sa.select(events.c.seq, events.c.type, events.c.payload, events.c.created_at)
    .where(events.c.run_id == _p("b_run_id", sa.String), events.c.seq > _p("b_after", sa.Integer))
    .order_by(events.c.seq)
)

APPEND_FIELDS: dict[str, Any] = {
    "run_id": sa.String,
    "expected": sa.Integer,
    "owner": sa.String,
    "last_seq": sa.Integer,
    "status": sa.String,
    "now": sa.Float,
    "check_signals": sa.Boolean,
    "signals_seen": sa.Integer,
    "wake_at": sa.Float,
    "new_owner": sa.String,
    "lease_expires_at": sa.Float,
    "result": sa.Text,
    "error": sa.Text,
    "completed_at": sa.Float,
    "progressed": sa.Boolean,
}
"""The values of one append (bound as ``b_<name>``; see ``rows.append_params``) and their types."""


def append_update(value: Callable[[str], Any]) -> sa.Update:
    """The UPDATE of an append, with ``value(name)`` the SQL for each of :data:`APPEND_FIELDS`.

    Written once for both shapes: one write's bound parameters (:data:`APPEND`), or a column of
    a batch of writes (PostgreSQL's group commit, ``_pg_statements.APPEND_BATCH``).
    """
    # Invariant (DESIGN §2.3): the append is refused unless the writer saw the run's last seq
    # and holds its lease; one conditional UPDATE decides, so two writers cannot both pass.
    return (
        sa.update(runs)
        .where(
            runs.c.run_id == value("run_id"),
            runs.c.last_seq == value("expected"),
            runs.c.lease_owner == value("owner"),
        )
        .values(
            last_seq=value("last_seq"),
            status=sa.func.coalesce(value("status"), runs.c.status),
            updated_at=value("now"),
            # A writer that lets go of the run without having seen the latest outside signal
            # leaves it due at once, so the signal is not lost to the race.
            wake_at=sa.case(
                (
                    sa.and_(value("check_signals"), runs.c.signal_seq > value("signals_seen")),
                    value("now"),
                ),
                else_=value("wake_at"),
            ),
            lease_owner=value("new_owner"),
            lease_expires_at=value("lease_expires_at"),
            result=sa.func.coalesce(value("result"), runs.c.result),
            error=sa.func.coalesce(value("error"), runs.c.error),
            completed_at=sa.func.coalesce(value("completed_at"), runs.c.completed_at),
            recovery_count=sa.case((value("progressed"), 0), else_=runs.c.recovery_count),
        )
    )


APPEND = PreparedStatement(
    append_update(lambda name: _p(f"b_{name}", APPEND_FIELDS[name])).returning(
        runs.c.signal_seq, runs.c.cancel_requested
    )
)

# Why a write was refused (a cold path): the run's seq, lease holder and status.
RUN_STATE = sa.select(runs.c.last_seq, runs.c.lease_owner, runs.c.status).where(
    runs.c.run_id == _p("b_run_id", sa.String)
)

RENEW_LEASES = (
    sa.update(runs)
    .where(
        _in(runs.c.run_id, "b_ids"),
        runs.c.lease_owner == _p("b_owner", sa.String),
    )
    .values(lease_expires_at=_p("b_lease_expires_at", sa.Float), updated_at=_p("b_now", sa.Float))
    .returning(runs.c.run_id)
)

RELEASE_RUNS = (
    sa.update(runs)
    .where(
        _in(runs.c.run_id, "b_ids"),
        runs.c.lease_owner == _p("b_owner", sa.String),
    )
    .values(
        lease_owner=None,
        lease_expires_at=None,
        wake_at=_p("b_now", sa.Float),
        updated_at=_p("b_now", sa.Float),
    )
)

REQUEST_CANCEL = (
    sa.update(runs)
    .where(runs.c.run_id == _p("b_run_id", sa.String), _in(runs.c.status, values=_LIVE))
    .values(
        cancel_requested=True,
        cancel_reason=_p("b_reason", sa.Text),
        signal_seq=runs.c.signal_seq + 1,
        wake_at=_p("b_now", sa.Float),
        updated_at=_p("b_now", sa.Float),
    )
)

REOPEN_FAILED_RUN = (
    sa.update(runs)
    .where(runs.c.run_id == _p("b_run_id", sa.String), runs.c.status == RunStatus.FAILED.value)
    .values(
        status=RunStatus.PENDING.value,
        last_seq=runs.c.last_seq + 1,
        wake_at=_p("b_now", sa.Float),
        updated_at=_p("b_now", sa.Float),
        completed_at=None,
        error=None,
        recovery_count=0,
    )
    .returning(*runs.c)
)


# --- retention: deleting ended runs -------------------------------------------------------------

RUN_OWNED_TABLES: tuple[sa.Table, ...] = (events,)
"""Tables whose rows belong to one run (a ``run_id`` column): a pruned run's rows go from each.

Both backends build their deletes from this tuple, so a new per-run table (issue 5's ``hooks``)
is one more entry here and nothing else."""

ENDED_RUNS = (
    sa.select(runs.c.run_id)
    .where(
        _in(runs.c.status, values=_ENDED),
        # Implied by the next term (a run ends after it starts), and what lets the scan be an
        # index range over the runs created before the bound (SQLite: ix_runs_status_created).
        runs.c.created_at < _p("b_ended_before", sa.Float),
        runs.c.completed_at < _p("b_ended_before", sa.Float),
    )
    # No ORDER BY: any qualifying runs will do, so the scan stops after ``b_limit`` of them.
    # (PostgreSQL adds one, see ``_pg_statements.PRUNE_ONE_TRIP``.)
    .limit(_p("b_limit", sa.Integer))
)
"""Up to ``b_limit`` ids of runs in a terminal status that ended before ``b_ended_before``."""

DELETE_ENDED_RUNS = (
    sa.delete(runs).where(runs.c.run_id.in_(ENDED_RUNS.scalar_subquery())).returning(runs.c.run_id)
)
"""Delete the rows of :data:`ENDED_RUNS`, returning their ids (then :data:`DELETE_RUN_ROWS`)."""

DELETE_RUN_ROWS = tuple(
    sa.delete(table).where(_in(table.c.run_id, "b_ids")) for table in RUN_OWNED_TABLES
)
"""For each of :data:`RUN_OWNED_TABLES`: delete the rows of the runs listed in ``b_ids``."""

# --- statements whose shape depends on the call, built once per shape --------------------------


@functools.cache
def claim_runs_statement(by_names: bool, by_ids: bool, skip_locked: bool) -> sa.Update:
    """Lease up to ``b_limit`` runnable runs, earliest ``wake_at`` first, returning their rows.

    Args:
        by_names: only runs of the workflows in ``b_names``.
        by_ids: only the runs in ``b_ids``.
        skip_locked: lock candidates with ``FOR UPDATE SKIP LOCKED``.
    """
    now = _p("b_now", sa.Float)
    # Invariant (DESIGN §2.5): due timers and expired leases are found by this indexed query.
    candidates = (
        sa.select(runs.c.run_id)
        .where(
            runs.c.wake_at <= now,  # set only on live runs (module docstring)
            sa.or_(runs.c.lease_owner.is_(None), runs.c.lease_expires_at <= now),
        )
        .order_by(runs.c.wake_at)
        .limit(_p("b_limit", sa.Integer))
    )
    if by_names:
        candidates = candidates.where(_in(_unindexed(runs.c.workflow_name), "b_names"))
    if by_ids:
        candidates = candidates.where(_in(runs.c.run_id, "b_ids"))
    if skip_locked:
        candidates = candidates.with_for_update(skip_locked=True)
    return (
        sa.update(runs)
        .where(runs.c.run_id.in_(candidates.scalar_subquery()))
        .values(
            # A lease still set here has expired: its holder died or stalled, one recovery.
            recovery_count=runs.c.recovery_count
            + sa.case((runs.c.lease_owner.is_(None), 0), else_=1),
            lease_owner=_p("b_owner", sa.String),
            lease_expires_at=_p("b_lease_expires_at", sa.Float),
            updated_at=now,
        )
        .returning(*runs.c)
    )


@functools.cache
def next_wake_at_statements(by_names: bool) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """The earliest ``wake_at`` of a free live run, then the earliest claimable leased one.

    The second is bounded by ``b_bound``, the first's answer (infinity when there is none).
    """
    live_due: list[sa.ColumnElement[bool]] = [runs.c.wake_at.is_not(None)]  # live runs only
    if by_names:
        names = _in(_unindexed(runs.c.workflow_name), "b_names")
        live_due.append(names)
    # The first unleased run in wake_at order: an index scan that stops at once.
    free = (
        sa.select(runs.c.wake_at)
        .where(*live_due, runs.c.lease_owner.is_(None))
        .order_by(runs.c.wake_at)
        .limit(1)
    )
    # Leased runs become claimable when their lease lapses too. Only those due before the first
    # free run can come earlier, and leased runs are few (the work in flight).
    leased_at = sa.case(
        (runs.c.lease_expires_at > runs.c.wake_at, runs.c.lease_expires_at),
        else_=runs.c.wake_at,
    )
    leased = sa.select(sa.func.min(leased_at)).where(
        *live_due,
        runs.c.lease_owner.is_not(None),
        runs.c.wake_at <= _p("b_bound", sa.Float),
    )
    return free, leased


def list_runs_statement(
    *,
    statuses: Collection[RunStatus] | None,
    workflow_name: str | None,
    limit: int,
    before: RunCursor | None,
) -> sa.Select[Any]:
    """Runs newest first (``created_at``, then ``run_id``, descending), keyset-paged.

    Built per call: its shape depends on the filters and it is off the hot path.
    """
    stmt = sa.select(runs)
    if statuses is not None:
        stmt = stmt.where(runs.c.status.in_(sorted(RunStatus(s).value for s in statuses)))
    if workflow_name is not None:
        stmt = stmt.where(runs.c.workflow_name == workflow_name)
    if before is not None:
        key = sa.tuple_(runs.c.created_at, runs.c.run_id)
        stmt = stmt.where(key < sa.tuple_(sa.literal(before.created_at), sa.literal(before.run_id)))
    return stmt.order_by(runs.c.created_at.desc(), runs.c.run_id.desc()).limit(limit)
