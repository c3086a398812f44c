"""The statements of step leases: taking, renewing, releasing and listing them.

A step lease guards one attempt of a step executed away from its run's driver (a Celery step
task; ``records.StepLease``). Taking one is an upsert decided by one statement: ``INSERT ...
ON CONFLICT DO UPDATE ... WHERE`` creates the row or takes it over only when the ``WHERE``
allows, and only while the run is live, so of concurrent takers exactly one gets a row back
(PostgreSQL waits for a competing insert or update of the row and then evaluates the ``WHERE``
on the row as that one left it; SQLite serialises its writers). Core has no dialect-neutral
upsert, so :func:`acquire_step_statement` builds the one statement with a dialect's ``insert``
(``_terms.upsert``); everything it says is written here once.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa

from pyworkflow.storage.sql._terms import LIVE, in_list, param, upsert
from pyworkflow.storage.sql.schema import runs, step_leases

__all__ = [
    "LIST_STEP_LEASES",
    "RELEASE_STEP",
    "RENEW_STEP",
    "STEP_LEASE",
    "acquire_step_statement",
    "offer_step_statement",
    "offered_steps_statement",
]


def _this_step() -> sa.ColumnElement[bool]:
    return sa.and_(
        step_leases.c.run_id == param("b_run_id", sa.String),
        step_leases.c.step_id == param("b_step_id", sa.String),
    )


def _row_of_a_live_run(*rest: Any) -> sa.Select[Any]:
    """A SELECT of a new row (``b_run_id``, ``b_step_id``, ``b_attempt``, ``rest``).

    Empty unless the run is live: an unknown or ended run gets no row inserted, so none
    conflicts and none is updated either. (SQLite needs this WHERE anyway: an INSERT ...
    SELECT before ON CONFLICT must have one.)
    """
    live_run = (
        sa.select(runs.c.run_id)
        .where(runs.c.run_id == param("b_run_id", sa.String), in_list(runs.c.status, values=LIVE))
        .exists()
    )
    return sa.select(
        param("b_run_id", sa.String),
        param("b_step_id", sa.String),
        param("b_attempt", sa.Integer),
        *rest,
    ).where(live_run)


@functools.cache
def acquire_step_statement(dialect: str) -> Any:
    """Take the lease of attempt ``b_attempt`` of step ``b_step_id`` of run ``b_run_id``.

    For ``b_owner`` until ``b_lease_expires_at``, as of ``b_now``; the row comes back as
    stored, or no row when the lease was refused (see ``Storage.acquire_step``) and nothing
    was written.

    Args:
        dialect: whose ``INSERT ... ON CONFLICT`` to build (``_terms.upsert``).
    """
    new_row = _row_of_a_live_run(
        param("b_owner", sa.String),
        param("b_lease_expires_at", sa.Float),
        sa.literal(1, sa.Integer),
    )
    insert = upsert(dialect, step_leases).from_select(
        ["run_id", "step_id", "attempt", "owner", "lease_expires_at", "deliveries"], new_row
    )
    taken, stored = insert.excluded, step_leases.c
    return insert.on_conflict_do_update(
        index_elements=[stored.run_id, stored.step_id],
        set_={
            "attempt": taken.attempt,
            "owner": taken.owner,
            "lease_expires_at": taken.lease_expires_at,
            # Another attempt starts afresh; the same one counts one more delivery, and an
            # offered one keeps its queue (its lease lapsing offers it again).
            "deliveries": sa.case(
                (stored.attempt == taken.attempt, stored.deliveries + 1), else_=1
            ),
            "queue": sa.case((stored.attempt == taken.attempt, stored.queue), else_=sa.null()),
            "offered_at": sa.case(
                (stored.attempt == taken.attempt, stored.offered_at), else_=sa.null()
            ),
        },
        # One executor per attempt: a live lease of another owner on the same attempt refuses
        # (a duplicate broker message); anything else is taken.
        where=sa.or_(
            stored.owner.is_(None),
            stored.lease_expires_at <= param("b_now", sa.Float),
            stored.owner == taken.owner,
            stored.attempt != taken.attempt,
        ),
    ).returning(*step_leases.c)


@functools.cache
def offer_step_statement(dialect: str) -> Any:
    """Offer attempt ``b_attempt`` of step ``b_step_id`` of run ``b_run_id`` to queue ``b_queue``.

    Stored as a step lease row without owner, ``offered_at`` ``b_now``, only while the run is
    live. A row of the same attempt stays as it is (the attempt was offered already, or a
    worker executes it; a lapsed lease of it is listed as an offer anyway); a row of another
    attempt (its executor did not drop it) is replaced.

    Args:
        dialect: whose ``INSERT ... ON CONFLICT`` to build (``_terms.upsert``).
    """
    new_row = _row_of_a_live_run(
        sa.null(),
        sa.null(),
        sa.literal(0, sa.Integer),
        param("b_queue", sa.String),
        param("b_now", sa.Float),
    )
    insert = upsert(dialect, step_leases).from_select(
        [column.name for column in step_leases.c], new_row
    )
    offered, stored = insert.excluded, step_leases.c
    return insert.on_conflict_do_update(
        index_elements=[stored.run_id, stored.step_id],
        set_={
            "attempt": offered.attempt,
            "owner": sa.null(),
            "lease_expires_at": sa.null(),
            "deliveries": 0,
            "queue": offered.queue,
            "offered_at": offered.offered_at,
        },
        where=stored.attempt != offered.attempt,
    )


@functools.cache
def offered_steps_statement(*, by_queues: bool) -> Any:
    """Up to ``b_limit`` offered attempts free to take as of ``b_now``, oldest offer first.

    Offers of live runs of the workflows in ``b_names`` whose row has no owner or a lapsed
    lease; ``by_queues``: only of the queues in ``b_queues`` (otherwise of any queue).
    """
    stored = step_leases.c
    free = sa.or_(stored.owner.is_(None), stored.lease_expires_at <= param("b_now", sa.Float))
    queue = in_list(stored.queue, "b_queues") if by_queues else stored.queue.is_not(None)
    return (
        sa.select(step_leases)
        .join(runs, runs.c.run_id == stored.run_id)
        .where(
            queue,
            free,
            in_list(runs.c.status, values=LIVE),
            in_list(runs.c.workflow_name, "b_names"),
        )
        .order_by(stored.offered_at, stored.run_id, stored.step_id)
        .limit(param("b_limit", sa.Integer))
    )


STEP_LEASE = sa.select(step_leases).where(_this_step())
"""The lease row of step ``b_step_id`` of run ``b_run_id`` (a cold path: a retried acquire)."""

RENEW_STEP = (
    sa.update(step_leases)
    .where(_this_step(), step_leases.c.owner == param("b_owner", sa.String))
    .values(lease_expires_at=param("b_lease_expires_at", sa.Float))
    .returning(step_leases.c.run_id)
)
"""Extend the lease of ``b_owner`` (also one that lapsed: nobody else took it); no row back
when the row is gone or held by another owner."""

RELEASE_STEP = sa.delete(step_leases).where(
    _this_step(), step_leases.c.owner == param("b_owner", sa.String)
)
"""Delete the lease row if ``b_owner`` holds it."""

LIST_STEP_LEASES = (
    sa.select(step_leases)
    .where(step_leases.c.run_id == param("b_run_id", sa.String))
    .order_by(step_leases.c.step_id)
)
"""The step lease rows of run ``b_run_id``, by ``step_id``."""
