"""The statements of lease owners: announcing one, listing them, and freeing a dead one's leases.

A dead owner's run leases lapse at once (``lease_expires_at`` and a later ``wake_at`` set to
now), so the next claim takes its runs over as recoveries, exactly as if their leases had run
out: the recovery count and the previous owner are the claim's, written once. Its step leases
(a Celery delivery's owner is ``<owner>/<task id>``) lapse too, and their runs come due, so
that a driver replays them and sends the lost attempts again (``remote.plan_redispatch``).
"""

from __future__ import annotations

import sqlalchemy as sa

from pyworkflow.storage.sql._terms import param
from pyworkflow.storage.sql.schema import owners, runs, step_leases

__all__ = [
    "ADD_OWNER",
    "DELETE_OWNER",
    "EXPIRE_RUN_LEASES",
    "EXPIRE_STEP_LEASES",
    "LIST_OWNERS",
    "OWNER_STARTS",
    "WAKE_STEP_RUNS",
]

ADD_OWNER = sa.insert(owners).values(
    owner=param("b_owner", sa.String),
    host=param("b_host", sa.String),
    pid=param("b_pid", sa.Integer),
    lock_key=param("b_lock_key", sa.BigInteger),
    started_at=param("b_now", sa.Float),
)

DELETE_OWNER = sa.delete(owners).where(owners.c.owner == param("b_owner", sa.String))

LIST_OWNERS = sa.select(owners.c.owner, owners.c.host, owners.c.pid, owners.c.lock_key)

OWNER_STARTS = sa.select(owners.c.owner, owners.c.started_at)


def _held_by_owner() -> sa.ColumnElement[bool]:
    """A step lease of ``b_owner`` itself or of one of its deliveries (``b_owner/...``)."""
    prefix = param("b_prefix", sa.String)
    # substr, not LIKE: an owner's name may hold LIKE's wildcards (a host name's "_").
    return sa.or_(
        step_leases.c.owner == param("b_owner", sa.String),
        sa.func.substr(step_leases.c.owner, 1, sa.func.length(prefix)) == prefix,
    )


EXPIRE_RUN_LEASES = (
    sa.update(runs)
    .where(
        runs.c.wake_at.is_not(None),  # live runs only: walks the wake_at index
        runs.c.lease_owner == param("b_owner", sa.String),
    )
    .values(
        lease_expires_at=param("b_now", sa.Float),
        wake_at=sa.case(
            (runs.c.wake_at > param("b_now", sa.Float), param("b_now", sa.Float)),
            else_=runs.c.wake_at,
        ),
    )
)
"""Let the leases of a dead owner lapse now; its runs are due now (then claimed as recoveries)."""

WAKE_STEP_RUNS = (
    sa.update(runs)
    .where(
        runs.c.wake_at > param("b_now", sa.Float),
        runs.c.run_id.in_(sa.select(step_leases.c.run_id).where(_held_by_owner())),
    )
    .values(wake_at=param("b_now", sa.Float))
)
"""Make due the runs whose step attempts a dead owner was executing: a driver sends them again."""

EXPIRE_STEP_LEASES = (
    sa.update(step_leases)
    .where(_held_by_owner(), step_leases.c.lease_expires_at > param("b_now", sa.Float))
    .values(lease_expires_at=param("b_now", sa.Float))
)
"""Let a dead owner's step leases lapse now (their deliveries take them over at once)."""
