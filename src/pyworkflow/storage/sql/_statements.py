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
every live run than walk the index. Their workflow term is wrapped by ``_sql_terms.unindexed``:
without statistics SQLite's planner would otherwise pick the workflow index and sort, reading
every run of those workflows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection
from typing import Any

import sqlalchemy as sa

from pyworkflow.events import HookStatus, RunStatus
from pyworkflow.storage.records import SUSPECT_RECOVERIES, RunCursor
from pyworkflow.storage.sql._prepared import PreparedStatement
from pyworkflow.storage.sql._terms import in_list, unindexed
from pyworkflow.storage.sql.schema import events, hooks, runs, step_leases

__all__ = [
    "APPEND",
    "APPEND_FIELDS",
    "APPEND_WITH_EFFECTS",
    "CANCEL_CHILDREN",
    "CLAIM_BY_IDS",
    "DELETE_ENDED_RUNS",
    "DELETE_RUN_ROWS",
    "DELIVER_HOOK",
    "ENDED_RUNS",
    "EXPIRE_HOOK",
    "GET_HOOK",
    "GET_HOOK_OF_RUN",
    "GET_RUN",
    "GET_RUN_BY_KEY",
    "HOOK_STATE",
    "INSERT_EVENT",
    "INSERT_HOOK",
    "INSERT_RUN",
    "LOAD_EVENTS",
    "RELEASE_RUNS",
    "RENEW_LEASES",
    "REOPEN_FAILED_RUN",
    "REQUEST_CANCEL",
    "RUN_OWNED_TABLES",
    "RUN_STATE",
    "SIGNAL_RUN",
    "append_update",
    "cancelled_with_parent",
    "claim_candidates_statement",
    "claim_runs_statement",
    "list_hooks_statement",
    "list_runs_statement",
    "next_wake_at_statements",
    "outside_write",
    "runnable_runs",
    "suspect_runs",
    "take_due_statements",
]

_LIVE = sorted(s.value for s in RunStatus if not s.is_terminal)
_ENDED = sorted(s.value for s in RunStatus if s.is_terminal)


def _p(name: str, type_: sa.types.TypeEngine[Any] | type[sa.types.TypeEngine[Any]]) -> Any:
    """A typed bound parameter (typed so PostgreSQL drivers know what they bind)."""
    return sa.bindparam(name, type_=type_)


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


def append_update(value: Callable[[str], Any], *, continues: bool = False) -> sa.Update:
    """The UPDATE of an append, with ``value(name)`` the SQL for each of :data:`APPEND_FIELDS`.

    Written once for every shape: one write's bound parameters (:data:`APPEND`), or a column of
    a batch of writes (PostgreSQL's group commit, ``_pg_statements.APPEND_BATCH``). With
    ``continues`` it also sets ``continued_to`` from ``value("continued_to")`` (NULL keeps it),
    for the appends that start a run (:data:`APPEND_WITH_EFFECTS`); plain appends leave that
    column alone, so their statement stays as small as it was.
    """
    # Invariant (DESIGN §2.3): the append is refused unless the writer saw the run's last seq
    # and holds its lease; one conditional UPDATE decides, so two writers cannot both pass.
    update = (
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
    if continues:
        update = update.values(
            continued_to=sa.func.coalesce(value("continued_to"), runs.c.continued_to)
        )
    return update


APPEND = PreparedStatement(
    append_update(lambda name: _p(f"b_{name}", APPEND_FIELDS[name])).returning(
        runs.c.signal_seq, runs.c.cancel_requested
    )
)

APPEND_WITH_EFFECTS = PreparedStatement(
    append_update(
        lambda name: _p(f"b_{name}", APPEND_FIELDS.get(name, sa.String)), continues=True
    ).returning(runs.c.signal_seq, runs.c.cancel_requested, runs.c.parent_run_id)
)
""":data:`APPEND` for an append that creates hooks or runs or ends its run (``rows.py``'s
``plain_append`` tells): it also sets ``continued_to`` (``b_continued_to``) and returns the
run's ``parent_run_id``, for the side effects its end has (``sql.append_txn``)."""

# Why a write was refused (a cold path): the run's seq, lease holder and status.
RUN_STATE = sa.select(runs.c.last_seq, runs.c.lease_owner, runs.c.status).where(
    runs.c.run_id == _p("b_run_id", sa.String)
)

RENEW_LEASES = (
    sa.update(runs)
    .where(
        in_list(runs.c.run_id, "b_ids"),
        runs.c.lease_owner == _p("b_owner", sa.String),
    )
    .values(lease_expires_at=_p("b_lease_expires_at", sa.Float), updated_at=_p("b_now", sa.Float))
    .returning(runs.c.run_id)
)

RELEASE_RUNS = (
    sa.update(runs)
    .where(
        in_list(runs.c.run_id, "b_ids"),
        runs.c.lease_owner == _p("b_owner", sa.String),
    )
    .values(
        lease_owner=None,
        lease_expires_at=None,
        wake_at=_p("b_now", sa.Float),
        updated_at=_p("b_now", sa.Float),
    )
)


def outside_write(
    which: sa.ColumnElement[bool], *, now: Any = None, signals: Any = 1, **changes: Any
) -> sa.Update:
    """An outside writer's UPDATE of the live runs ``which`` picks (DESIGN §7).

    ``changes``, ``signal_seq + signals`` and due at ``now`` (default: ``b_now``): the lease
    holder, if any, sees the new ``signal_seq`` in its next AppendResult or leaves the run due
    when it lets go. A run that has ended is never touched: its ``wake_at`` stays NULL (module
    docstring).
    """
    at = _p("b_now", sa.Float) if now is None else now
    return (
        sa.update(runs)
        .where(which, in_list(runs.c.status, values=_LIVE))
        .values(**changes, signal_seq=runs.c.signal_seq + signals, wake_at=at, updated_at=at)
    )


def _first_reason(reason: Any) -> sa.ColumnElement[Any]:
    """``reason`` for a run's first cancel request; a later one keeps the first's reason."""
    return sa.case((runs.c.cancel_requested, runs.c.cancel_reason), else_=reason)


REQUEST_CANCEL = outside_write(
    runs.c.run_id == _p("b_run_id", sa.String),
    cancel_requested=True,
    cancel_reason=_first_reason(_p("b_reason", sa.Text)),
)

SIGNAL_RUN = outside_write(runs.c.run_id == _p("b_run_id", sa.String))
"""Wake run ``b_run_id``: a hook of it was delivered, or a child of it ended."""


def cancelled_with_parent(policy: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """Whether a child of this ``parent_close_policy`` goes when its parent ends.

    It does for ``"cancel"`` and for NULL (the default policy), not for ``"abandon"``.
    """
    return sa.or_(policy.is_(None), policy == "cancel")


CANCEL_CHILDREN = outside_write(
    sa.and_(
        runs.c.parent_run_id == _p("b_run_id", sa.String),
        cancelled_with_parent(runs.c.parent_close_policy),
    ),
    cancel_requested=True,
    cancel_reason=_first_reason(_p("b_cancel_reason", sa.Text)),
)
"""What the end of run ``b_run_id`` does to its live children of policy ``"cancel"``: what
:data:`REQUEST_CANCEL` does, with the reason ``b_cancel_reason``."""

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


# --- hooks --------------------------------------------------------------------------------------

INSERT_HOOK = PreparedStatement(sa.insert(hooks))
GET_HOOK = sa.select(hooks).where(hooks.c.token_hash == _p("b_token_hash", sa.String))
GET_HOOK_OF_RUN = sa.select(hooks).where(
    hooks.c.run_id == _p("b_run_id", sa.String), hooks.c.hook_id == _p("b_hook_id", sa.String)
)

DELIVER_HOOK = (
    sa.update(hooks)
    .where(
        hooks.c.token_hash == _p("b_token_hash", sa.String),
        hooks.c.status == HookStatus.WAITING.value,
        sa.or_(hooks.c.expires_at.is_(None), hooks.c.expires_at > _p("b_now", sa.Float)),
        sa.select(runs.c.run_id)
        .where(runs.c.run_id == hooks.c.run_id, in_list(runs.c.status, values=_LIVE))
        .exists(),
    )
    .values(
        status=HookStatus.RECEIVED.value,
        payload=_p("b_payload", sa.Text),
        received_at=_p("b_now", sa.Float),
    )
    .returning(*hooks.c)
)
"""Store a payload in hook ``b_token_hash`` if it is waiting, not expired, of a live run.

One conditional UPDATE decides between concurrent deliveries (PostgreSQL re-checks the row's
status after waiting for its lock), so exactly one wins; then :data:`SIGNAL_RUN` wakes the run.
No row back: nothing was written, and :data:`HOOK_STATE` says why."""

HOOK_STATE = (
    sa.select(hooks, runs.c.status.label("run_status"))
    .select_from(hooks.outerjoin(runs, runs.c.run_id == hooks.c.run_id))
    .where(hooks.c.token_hash == _p("b_token_hash", sa.String))
)
"""Why a delivery was refused (a cold path): the hook's row and its run's status."""

EXPIRE_HOOK = (
    sa.update(hooks)
    .where(
        hooks.c.run_id == _p("b_run_id", sa.String),
        hooks.c.hook_id == _p("b_hook_id", sa.String),
        hooks.c.status == HookStatus.WAITING.value,
    )
    .values(status=HookStatus.EXPIRED.value)
    .returning(*hooks.c)
)
"""Expire a waiting hook; no row back when it was not waiting (then read it: a delivery may
have won) or does not exist."""


# --- retention: deleting ended runs -------------------------------------------------------------

RUN_OWNED_TABLES: tuple[sa.Table, ...] = (events, hooks, step_leases)
"""Tables whose rows belong to one run (a ``run_id`` column): a pruned run's rows go from each.

Both backends build their deletes from this tuple, so a new per-run table is one more entry here
and nothing else."""

ENDED_RUNS = (
    sa.select(runs.c.run_id)
    .where(
        in_list(runs.c.status, values=_ENDED),
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
    sa.delete(table).where(in_list(table.c.run_id, "b_ids")) for table in RUN_OWNED_TABLES
)
"""For each of :data:`RUN_OWNED_TABLES`: delete the rows of the runs listed in ``b_ids``."""

# --- statements whose shape depends on the call, built once per shape --------------------------


def suspect_runs() -> sa.ColumnElement[bool]:
    """Runs a claim now would take over for at least the ``SUSPECT_RECOVERIES``-th time in a row.

    A candidate's lease is free or lapsed, so a lease owner still set means a lapsed lease: the
    claim counts one more recovery (``claim_runs_statement``).
    """
    recoveries = runs.c.recovery_count + sa.case((runs.c.lease_owner.is_(None), 0), else_=1)
    return recoveries >= SUSPECT_RECOVERIES


def runnable_runs(
    *columns: sa.ColumnElement[Any],
    by_names: bool,
    by_ids: bool = False,
    skip_locked: bool = False,
    due_only: bool = True,
    suspects: bool | None = None,
) -> sa.Select[Any]:
    """``columns`` of up to ``b_limit`` runnable runs, earliest ``wake_at`` first.

    Runnable: due by ``b_now`` (any ``wake_at`` at all when not ``due_only``) with a free lease
    or one that lapsed by ``b_now``. What :func:`claim_runs_statement` leases and
    :func:`take_due_statements` takes.

    Args:
        columns: what to select of each run.
        by_names: only runs of the workflows in ``b_names``.
        by_ids: only the runs in ``b_ids``.
        skip_locked: lock candidates with ``FOR UPDATE SKIP LOCKED``.
        due_only: only runs whose ``wake_at`` has come.
        suspects: True: only suspect runs (:func:`suspect_runs`); False: none of them; None:
            either.
    """
    now = _p("b_now", sa.Float)
    # Invariant (DESIGN §2.5): due timers and expired leases are found by this indexed query.
    # ``wake_at`` is set only on live runs (module docstring): ``IS NOT NULL`` means live.
    wakes = runs.c.wake_at <= now if due_only else runs.c.wake_at.is_not(None)
    candidates = (
        sa.select(*columns)
        .where(wakes, sa.or_(runs.c.lease_owner.is_(None), runs.c.lease_expires_at <= now))
        .order_by(runs.c.wake_at)
        .limit(_p("b_limit", sa.Integer))
    )
    if by_names:
        candidates = candidates.where(in_list(unindexed(runs.c.workflow_name), "b_names"))
    if by_ids:
        candidates = candidates.where(in_list(runs.c.run_id, "b_ids"))
    if suspects is not None:
        candidates = candidates.where(suspect_runs() if suspects else sa.not_(suspect_runs()))
    if skip_locked:
        candidates = candidates.with_for_update(skip_locked=True)
    return candidates


def _claim_values() -> dict[str, Any]:
    """What a claim sets on each run it takes (the values read are the row's before it)."""
    return {
        # A lease still set here has expired: its holder died or stalled, one recovery.
        "recovery_count": runs.c.recovery_count
        + sa.case((runs.c.lease_owner.is_(None), 0), else_=1),
        "lease_owner": _p("b_owner", sa.String),
        "lease_expires_at": _p("b_lease_expires_at", sa.Float),
        "updated_at": _p("b_now", sa.Float),
    }


@functools.cache
def claim_runs_statement(
    by_names: bool, by_ids: bool, due_only: bool = True, suspects: bool | None = None
) -> sa.Update:
    """Lease up to ``b_limit`` runnable runs in one statement, returning their rows.

    Each row comes back with one more column, ``previous_owner``: the owner of the lapsed
    lease the claim took over (NULL when the lease was free). Candidates are locked with
    ``FOR UPDATE SKIP LOCKED``, so concurrent claimers split the runs; ``UPDATE ... FROM``
    lets RETURNING name a value of the row as it was. For PostgreSQL (SQLite's RETURNING sees
    only the updated table: :data:`CLAIM_BY_IDS`).

    Args:
        by_names: only runs of the workflows in ``b_names``.
        by_ids: only the runs in ``b_ids``.
        due_only: only runs whose ``wake_at`` has come (see ``Storage.claim_runs``).
        suspects: only suspects, none of them, or either (see :func:`runnable_runs`).
    """
    candidates = runnable_runs(
        runs.c.run_id,
        runs.c.lease_owner.label("previous_owner"),
        by_names=by_names,
        by_ids=by_ids,
        skip_locked=True,
        due_only=due_only,
        suspects=suspects,
    ).subquery("candidates")
    return (
        sa.update(runs)
        .where(runs.c.run_id == candidates.c.run_id)
        .values(**_claim_values())
        .returning(*runs.c, candidates.c.previous_owner)
    )


@functools.cache
def claim_candidates_statement(
    by_names: bool, by_ids: bool, due_only: bool = True, suspects: bool | None = None
) -> sa.Select[Any]:
    """``run_id, lease_owner`` of the runs a claim takes (then :data:`CLAIM_BY_IDS`), for SQLite.

    Arguments as for :func:`claim_runs_statement`.
    """
    return runnable_runs(
        runs.c.run_id,
        runs.c.lease_owner,
        by_names=by_names,
        by_ids=by_ids,
        due_only=due_only,
        suspects=suspects,
    )


CLAIM_BY_IDS = (
    sa.update(runs)
    .where(in_list(runs.c.run_id, "b_ids"))
    .values(**_claim_values())
    .returning(*runs.c)
)
"""Lease the runs in ``b_ids``, returning their rows: the second half of a claim on a backend
that serialises its writers (SQLite), after :func:`runnable_runs` picked the candidates (and
their previous owners) in the same write transaction."""


@functools.cache
def take_due_statements(by_names: bool) -> tuple[sa.Select[Any], sa.Update]:
    """``take_due_runs`` in two statements, for a backend that serialises its writers (SQLite).

    The first selects ``run_id, wake_at`` of up to ``b_limit`` runnable runs (``b_now``,
    ``b_names``), earliest first; the second sets ``wake_at = b_until`` on the runs in
    ``b_ids``. Run in one write transaction, nothing comes between them. (PostgreSQL runs them
    as one statement that locks its candidates: ``_pg_statements.take_due_one_trip``.)
    """
    due = runnable_runs(runs.c.run_id, runs.c.wake_at, by_names=by_names)
    # Only wake_at moves: the lease, status and recovery count are the claimer's business.
    take = (
        sa.update(runs)
        .where(in_list(runs.c.run_id, "b_ids"))
        .values(wake_at=_p("b_until", sa.Float))
    )
    return due, take


@functools.cache
def next_wake_at_statements(by_names: bool) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """The earliest ``wake_at`` of a free live run, then the earliest claimable leased one.

    The second is bounded by ``b_bound``, the first's answer (infinity when there is none).
    """
    live_due: list[sa.ColumnElement[bool]] = [runs.c.wake_at.is_not(None)]  # live runs only
    if by_names:
        names = in_list(unindexed(runs.c.workflow_name), "b_names")
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
    parent_run_id: str | None = None,
) -> sa.Select[Any]:
    """Runs newest first (``created_at``, then ``run_id``, descending), keyset-paged.

    Built per call: its shape depends on the filters and it is off the hot path.
    """
    stmt = sa.select(runs)
    if parent_run_id is not None:
        stmt = stmt.where(runs.c.parent_run_id == parent_run_id)
    if statuses is not None:
        stmt = stmt.where(runs.c.status.in_(sorted(RunStatus(s).value for s in statuses)))
    if workflow_name is not None:
        stmt = stmt.where(runs.c.workflow_name == workflow_name)
    if before is not None:
        key = sa.tuple_(runs.c.created_at, runs.c.run_id)
        stmt = stmt.where(key < sa.tuple_(sa.literal(before.created_at), sa.literal(before.run_id)))
    return stmt.order_by(runs.c.created_at.desc(), runs.c.run_id.desc()).limit(limit)


def list_hooks_statement(
    *, run_id: str | None, status: HookStatus | None, limit: int
) -> sa.Select[Any]:
    """Hooks newest first (``created_at``, then ``token_hash``, descending), filtered.

    Built per call, like :func:`list_runs_statement`.
    """
    stmt = sa.select(hooks)
    if run_id is not None:
        stmt = stmt.where(hooks.c.run_id == run_id)
    if status is not None:
        stmt = stmt.where(hooks.c.status == HookStatus(status).value)
    return stmt.order_by(hooks.c.created_at.desc(), hooks.c.token_hash.desc()).limit(limit)
