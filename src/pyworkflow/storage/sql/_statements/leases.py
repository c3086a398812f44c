"""The statements of run leases: runnable runs, claiming them, renewing and releasing leases.

The queries for runnable runs walk the ``wake_at`` index in order and stop after ``limit``
rows (a terminal run has ``wake_at`` NULL: see the package docstring). They carry no status
term on purpose: PostgreSQL's planner, guessing at its selectivity, would rather sort every
live run than walk the index. Their workflow term is wrapped by ``_terms.unindexed``: without
statistics SQLite's planner would otherwise pick the workflow index and sort, reading every run
of those workflows.

Their queue term (``b_queues``, the queues the claiming worker serves) is a filter on that same
walk, not a key of the index: most workers serve one queue or a few, due runs are few in the
index's front, and an index on ``(queue, wake_at)`` would cost every append (each moves
``wake_at``) a second index update while a worker of several queues could not read it in
``wake_at`` order anyway. What it costs instead: a backlog of due runs of a queue nobody serves
is walked past by each claim of the other queues, as runs of workflows no worker has are today.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa

from pyworkflow.storage.records import SUSPECT_RECOVERIES
from pyworkflow.storage.sql._terms import in_list, param, unindexed
from pyworkflow.storage.sql.schema import runs

__all__ = [
    "CLAIM_BY_IDS",
    "RELEASE_RUNS",
    "RENEW_LEASES",
    "claim_candidates_statement",
    "claim_values",
    "next_wake_at_statements",
    "runnable_runs",
    "suspect_runs",
    "take_due_statements",
]

RENEW_LEASES = (
    sa.update(runs)
    .where(
        in_list(runs.c.run_id, "b_ids"),
        runs.c.lease_owner == param("b_owner", sa.String),
    )
    .values(
        lease_expires_at=param("b_lease_expires_at", sa.Float), updated_at=param("b_now", sa.Float)
    )
    .returning(runs.c.run_id)
)
"""Extend the leases that ``b_owner`` holds on the runs in ``b_ids``; their ids come back."""

RELEASE_RUNS = (
    sa.update(runs)
    .where(
        in_list(runs.c.run_id, "b_ids"),
        runs.c.lease_owner == param("b_owner", sa.String),
    )
    .values(
        lease_owner=None,
        lease_expires_at=None,
        wake_at=param("b_now", sa.Float),
        updated_at=param("b_now", sa.Float),
    )
)
"""Drop ``b_owner``'s leases on the runs in ``b_ids`` and make them due at ``b_now``."""


def suspect_runs() -> sa.ColumnElement[bool]:
    """Runs a claim now would take over for at least the ``SUSPECT_RECOVERIES``-th time in a row.

    A candidate's lease is free or lapsed, so a lease owner still set means a lapsed lease: the
    claim counts one more recovery (:func:`claim_values`).
    """
    recoveries = runs.c.recovery_count + sa.case((runs.c.lease_owner.is_(None), 0), else_=1)
    return recoveries >= SUSPECT_RECOVERIES


def runnable_runs(
    *columns: sa.ColumnElement[Any],
    by_names: bool,
    by_queues: bool = False,
    by_ids: bool = False,
    skip_locked: bool = False,
    due_only: bool = True,
    suspects: bool | None = None,
) -> sa.Select[Any]:
    """``columns`` of up to ``b_limit`` runnable runs, earliest ``wake_at`` first.

    Runnable: due by ``b_now`` (any ``wake_at`` at all when not ``due_only``) with a free lease
    or one that lapsed by ``b_now``. What a claim leases and ``take_due_runs`` takes.

    Args:
        columns: what to select of each run.
        by_names: only runs of the workflows in ``b_names``.
        by_queues: only runs of the queues in ``b_queues``.
        by_ids: only the runs in ``b_ids``.
        skip_locked: lock candidates with ``FOR UPDATE SKIP LOCKED``.
        due_only: only runs whose ``wake_at`` has come.
        suspects: True: only suspect runs (:func:`suspect_runs`); False: none of them; None:
            either.
    """
    now = param("b_now", sa.Float)
    # Invariant (DESIGN §2.5): due timers and expired leases are found by this indexed query.
    # ``wake_at`` is set only on live runs (module docstring): ``IS NOT NULL`` means live.
    wakes = runs.c.wake_at <= now if due_only else runs.c.wake_at.is_not(None)
    candidates = (
        sa.select(*columns)
        .where(wakes, sa.or_(runs.c.lease_owner.is_(None), runs.c.lease_expires_at <= now))
        .order_by(runs.c.wake_at)
        .limit(param("b_limit", sa.Integer))
    )
    if by_names:
        candidates = candidates.where(in_list(unindexed(runs.c.workflow_name), "b_names"))
    if by_queues:
        candidates = candidates.where(in_list(runs.c.queue, "b_queues"))
    if by_ids:
        candidates = candidates.where(in_list(runs.c.run_id, "b_ids"))
    if suspects is not None:
        candidates = candidates.where(suspect_runs() if suspects else sa.not_(suspect_runs()))
    if skip_locked:
        candidates = candidates.with_for_update(skip_locked=True)
    return candidates


def claim_values() -> dict[str, Any]:
    """What a claim sets on each run it takes (the values read are the row's before it)."""
    return {
        # A lease still set here has expired: its holder died or stalled, one recovery.
        "recovery_count": runs.c.recovery_count
        + sa.case((runs.c.lease_owner.is_(None), 0), else_=1),
        "lease_owner": param("b_owner", sa.String),
        "lease_expires_at": param("b_lease_expires_at", sa.Float),
        "updated_at": param("b_now", sa.Float),
    }


@functools.cache
def claim_candidates_statement(
    by_names: bool,
    by_ids: bool,
    due_only: bool = True,
    suspects: bool | None = None,
    by_queues: bool = False,
) -> sa.Select[Any]:
    """``run_id, lease_owner`` of the runs a claim takes (then :data:`CLAIM_BY_IDS`).

    Args:
        by_names: only runs of the workflows in ``b_names``.
        by_queues: only runs of the queues in ``b_queues``.
        by_ids: only the runs in ``b_ids``.
        due_only: only runs whose ``wake_at`` has come (see ``Storage.claim_runs``).
        suspects: only suspects, none of them, or either (see :func:`runnable_runs`).
    """
    return runnable_runs(
        runs.c.run_id,
        runs.c.lease_owner,
        by_names=by_names,
        by_queues=by_queues,
        by_ids=by_ids,
        due_only=due_only,
        suspects=suspects,
    )


CLAIM_BY_IDS = (
    sa.update(runs)
    .where(in_list(runs.c.run_id, "b_ids"))
    .values(**claim_values())
    .returning(*runs.c)
)
"""Lease the runs in ``b_ids``, returning their rows: the second half of a claim in a write
transaction that nothing comes between (``Session.claim``), after
:func:`claim_candidates_statement` picked the candidates and their previous owners."""


@functools.cache
def take_due_statements(by_names: bool) -> tuple[sa.Select[Any], sa.Update]:
    """``take_due_runs`` in two statements, for a write transaction nothing comes between.

    The first selects ``run_id, wake_at`` of up to ``b_limit`` runnable runs (``b_now``,
    ``b_names``), earliest first; the second sets ``wake_at = b_until`` on the runs in
    ``b_ids`` (``Session.take_due``).
    """
    due = runnable_runs(runs.c.run_id, runs.c.wake_at, by_names=by_names)
    # Only wake_at moves: the lease, status and recovery count are the claimer's business.
    take = (
        sa.update(runs)
        .where(in_list(runs.c.run_id, "b_ids"))
        .values(wake_at=param("b_until", sa.Float))
    )
    return due, take


@functools.cache
def next_wake_at_statements(
    by_names: bool, by_queues: bool = False
) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """The earliest ``wake_at`` of a free live run, then the earliest claimable leased one.

    The second is bounded by ``b_bound``, the first's answer (infinity when there is none).
    ``by_names``/``by_queues``: only runs of the workflows in ``b_names`` / queues in
    ``b_queues``.
    """
    live_due: list[sa.ColumnElement[bool]] = [runs.c.wake_at.is_not(None)]  # live runs only
    if by_names:
        names = in_list(unindexed(runs.c.workflow_name), "b_names")
        live_due.append(names)
    if by_queues:
        live_due.append(in_list(runs.c.queue, "b_queues"))
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
        runs.c.wake_at <= param("b_bound", sa.Float),
    )
    return free, leased
