"""The statements of runs and their logs: create, read, list, reopen, and outside writers' updates.

An outside writer (``request_cancel``, a hook's delivery, a child's end) never appends to a
run's log: :func:`outside_write` sets its own columns, bumps ``signal_seq`` and makes the run
due, so only the lease holder turns the signal into events (DESIGN §7). Outside writes return
no rows (``Session.wake`` counts them); PostgreSQL adds a RETURNING to announce each run.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from pyworkflow.events import RunStatus
from pyworkflow.storage.records import RunCursor
from pyworkflow.storage.sql._terms import LIVE, in_list, param, upsert
from pyworkflow.storage.sql.schema import events, runs

__all__ = [
    "CANCEL_CHILDREN",
    "GET_RUN",
    "GET_RUN_BY_KEY",
    "INSERT_EVENT",
    "INSERT_RUN",
    "LOAD_EVENTS",
    "REOPEN_FAILED_RUN",
    "REQUEST_CANCEL",
    "RUN_STATE",
    "SIGNAL_RUN",
    "cancelled_with_parent",
    "count_runs_statement",
    "count_workflow_runs_statement",
    "insert_new_run",
    "list_runs_statement",
    "outside_write",
]

GET_RUN = sa.select(runs).where(runs.c.run_id == param("b_run_id", sa.String))
GET_RUN_BY_KEY = sa.select(runs).where(runs.c.idempotency_key == param("b_key", sa.String))
INSERT_RUN = sa.insert(runs)
INSERT_EVENT = sa.insert(events)
LOAD_EVENTS = (
    sa.select(events.c.seq, events.c.type, events.c.payload, events.c.created_at)
    .where(
        events.c.run_id == param("b_run_id", sa.String), events.c.seq > param("b_after", sa.Integer)
    )
    .order_by(events.c.seq)
)

RUN_STATE = sa.select(runs.c.last_seq, runs.c.lease_owner, runs.c.status).where(
    runs.c.run_id == param("b_run_id", sa.String)
)
"""Why a write was refused (a cold path): the run's seq, lease holder and status."""


@functools.cache
def insert_new_run(dialect: str) -> Any:
    """Insert a run's row (values keyed by column) unless its id or idempotency key is taken.

    It changes no row when one is taken: then nothing was written. Invariant (DESIGN §1): the
    unique idempotency key decides between concurrent starters; the loser reads the winner's
    run. (No RETURNING: on SQLite it costs a temporary table per statement.)

    Args:
        dialect: whose ``INSERT ... ON CONFLICT DO NOTHING`` to build (``_terms.upsert``).
    """
    return upsert(dialect, runs).on_conflict_do_nothing()


def outside_write(
    which: sa.ColumnElement[bool], *, now: Any = None, signals: Any = 1, **changes: Any
) -> sa.Update:
    """An outside writer's UPDATE of the live runs ``which`` picks (DESIGN §7).

    ``changes``, ``signal_seq + signals`` and due at ``now`` (default: ``b_now``): the lease
    holder, if any, sees the new ``signal_seq`` in its next AppendResult or leaves the run due
    when it lets go. A run that has ended is never touched: its ``wake_at`` stays NULL.
    """
    at = param("b_now", sa.Float) if now is None else now
    return (
        sa.update(runs)
        .where(which, in_list(runs.c.status, values=LIVE))
        .values(**changes, signal_seq=runs.c.signal_seq + signals, wake_at=at, updated_at=at)
    )


def _first_reason(reason: Any) -> sa.ColumnElement[Any]:
    """``reason`` for a run's first cancel request; a later one keeps the first's reason."""
    return sa.case((runs.c.cancel_requested, runs.c.cancel_reason), else_=reason)


REQUEST_CANCEL = outside_write(
    runs.c.run_id == param("b_run_id", sa.String),
    cancel_requested=True,
    cancel_reason=_first_reason(param("b_reason", sa.Text)),
)
"""Ask run ``b_run_id`` to cancel (reason ``b_reason``); it changes no row if the run ended."""

SIGNAL_RUN = outside_write(runs.c.run_id == param("b_run_id", sa.String))
"""Wake run ``b_run_id``: a hook of it was delivered, or a child of it ended."""


def cancelled_with_parent(policy: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """Whether a child of this ``parent_close_policy`` goes when its parent ends.

    It does for ``"cancel"`` and for NULL (the default policy), not for ``"abandon"``.
    """
    return sa.or_(policy.is_(None), policy == "cancel")


CANCEL_CHILDREN = outside_write(
    sa.and_(
        runs.c.parent_run_id == param("b_run_id", sa.String),
        cancelled_with_parent(runs.c.parent_close_policy),
    ),
    cancel_requested=True,
    cancel_reason=_first_reason(param("b_cancel_reason", sa.Text)),
)
"""What the end of run ``b_run_id`` does to its live children of policy ``"cancel"``: what
:data:`REQUEST_CANCEL` does, with the reason ``b_cancel_reason``."""

REOPEN_FAILED_RUN = (
    sa.update(runs)
    .where(runs.c.run_id == param("b_run_id", sa.String), runs.c.status == RunStatus.FAILED.value)
    .values(
        status=RunStatus.PENDING.value,
        last_seq=runs.c.last_seq + 1,
        wake_at=param("b_now", sa.Float),
        updated_at=param("b_now", sa.Float),
        completed_at=None,
        error=None,
        recovery_count=0,
    )
    .returning(*runs.c)
)
"""Make failed run ``b_run_id`` pending and due at ``b_now``, one seq further (its
WORKFLOW_RESUMED goes there); its new row comes back, or no row if it has not failed."""


def list_runs_statement(
    *,
    statuses: Collection[RunStatus] | None,
    workflow_name: str | None,
    limit: int,
    before: RunCursor | None,
    parent_run_id: str | None = None,
    schedule_id: str | None = None,
    run_id_prefix: str | None = None,
    tags: Collection[str] | None = None,
) -> sa.Select[Any]:
    """Runs newest first (``created_at``, then ``run_id``, descending), keyset-paged.

    Built per call, its values written into it: its shape depends on the filters and it is off
    the hot path.
    """
    stmt = sa.select(runs)
    if parent_run_id is not None:
        stmt = stmt.where(runs.c.parent_run_id == parent_run_id)
    if schedule_id is not None:
        stmt = stmt.where(runs.c.schedule_id == schedule_id)
    if statuses is not None:
        stmt = stmt.where(runs.c.status.in_(sorted(RunStatus(s).value for s in statuses)))
    if workflow_name is not None:
        stmt = stmt.where(runs.c.workflow_name == workflow_name)
    if run_id_prefix:
        # A range on the primary key rather than LIKE: both dialects walk the index with it,
        # and no character of the prefix needs escaping.
        stmt = stmt.where(runs.c.run_id >= run_id_prefix, runs.c.run_id < _past(run_id_prefix))
    for tag in tags or ():  # every tag given (``",a,b,"`` holds ``,a,``)
        escaped = tag.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(runs.c.tags.like(f"%,{escaped},%", escape="\\"))
    if before is not None:
        key = sa.tuple_(runs.c.created_at, runs.c.run_id)
        stmt = stmt.where(key < sa.tuple_(sa.literal(before.created_at), sa.literal(before.run_id)))
    return stmt.order_by(runs.c.created_at.desc(), runs.c.run_id.desc()).limit(limit)


def _past(prefix: str) -> str:
    """The least string greater than every string starting with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def count_runs_statement(workflow_name: str | None, since: float | None) -> sa.Select[Any]:
    """``(status, count)`` of the runs of ``workflow_name`` (None: all) created since ``since``.

    Without a workflow, the whole count reads ``ix_runs_status_created`` alone (it holds the
    status): no row of the table is visited. With one, ``ix_runs_workflow_status`` alone, only
    that workflow's entries, ``since`` included.
    """
    stmt = sa.select(runs.c.status, sa.func.count())
    if workflow_name is not None:
        stmt = stmt.where(runs.c.workflow_name == workflow_name)
    if since is not None:
        stmt = stmt.where(runs.c.created_at >= since)
    return stmt.group_by(runs.c.status)


def count_workflow_runs_statement(since: float | None) -> sa.Select[Any]:
    """``(workflow_name, count)`` of the runs created since ``since``.

    Without ``since`` it reads ``ix_runs_workflow_created`` alone.
    """
    stmt = sa.select(runs.c.workflow_name, sa.func.count())
    if since is not None:
        stmt = stmt.where(runs.c.created_at >= since)
    return stmt.group_by(runs.c.workflow_name)
