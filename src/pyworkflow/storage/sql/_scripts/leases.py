"""The scripts of run leases: claiming runnable runs, taking due ones, renewing, releasing."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pyworkflow.storage.records import RunRecord
from pyworkflow.storage.sql._decoding import earliest_wake, taken_ids
from pyworkflow.storage.sql._params import claim_params
from pyworkflow.storage.sql._session import Session
from pyworkflow.storage.sql._statements.leases import (
    RELEASE_RUNS,
    RENEW_LEASES,
    next_wake_at_statements,
)

__all__ = ["claim_runs", "next_wake_at", "release_runs", "renew_leases", "take_due_runs"]


async def claim_runs(
    db: Session,
    *,
    owner: str,
    now: float,
    lease_expires_at: float,
    limit: int,
    workflow_names: Collection[str] | None,
    run_ids: Collection[str] | None,
    due_only: bool,
    suspects: bool | None,
    queues: Collection[str] | None = None,
) -> list[RunRecord]:
    """Lease up to ``limit`` runnable runs, earliest ``wake_at`` first (``Session.claim``)."""
    params = claim_params(
        owner=owner,
        now=now,
        lease_expires_at=lease_expires_at,
        limit=limit,
        workflow_names=workflow_names,
        run_ids=run_ids,
        queues=queues,
    )
    if params is None:
        return []
    return await db.claim(params, due_only=due_only, suspects=suspects)


async def take_due_runs(
    db: Session,
    *,
    now: float,
    until: float,
    limit: int,
    workflow_names: Collection[str] | None,
) -> list[str]:
    """Set ``wake_at = until`` on up to ``limit`` runnable runs; their ids, earliest first."""
    if limit <= 0 or (workflow_names is not None and not workflow_names):
        return []
    params: dict[str, Any] = {"b_now": now, "b_until": until, "b_limit": limit}
    if workflow_names is not None:
        params["b_names"] = list(workflow_names)
    return taken_ids(await db.take_due(params))


async def renew_leases(
    db: Session, *, owner: str, run_ids: Collection[str], now: float, lease_expires_at: float
) -> set[str]:
    """Extend the leases ``owner`` still holds; returns their run ids."""
    if not run_ids:
        return set()
    params = {
        "b_ids": list(run_ids),
        "b_owner": owner,
        "b_now": now,
        "b_lease_expires_at": lease_expires_at,
    }
    return {row[0] for row in await db.all(RENEW_LEASES, params)}


async def release_runs(db: Session, *, owner: str, run_ids: Collection[str], now: float) -> None:
    """Drop ``owner``'s leases on these runs and make them due at once (waking other workers)."""
    if run_ids:
        await db.wake(RELEASE_RUNS, {"b_ids": list(run_ids), "b_owner": owner, "b_now": now})


async def next_wake_at(
    db: Session,
    *,
    workflow_names: Collection[str] | None,
    queues: Collection[str] | None = None,
) -> float | None:
    """The earliest time a live run becomes claimable, or None.

    That is ``wake_at`` for a run nobody holds; for a leased run (the call takes no ``now`` to
    tell whether its lease lapsed) the later of ``wake_at`` and the lease's expiry, the moment a
    crashed holder's run can be recovered.
    """
    if (workflow_names is not None and not workflow_names) or (queues is not None and not queues):
        return None
    free, leased = next_wake_at_statements(workflow_names is not None, queues is not None)
    params: dict[str, Any] = {} if workflow_names is None else {"b_names": list(workflow_names)}
    if queues is not None:
        params["b_queues"] = list(queues)
    first_free = await db.first(free, params)
    free_at = None if first_free is None else first_free[0]
    params["b_bound"] = float("inf") if free_at is None else free_at
    first_leased = await db.first(leased, params)
    return earliest_wake(free_at, None if first_leased is None else first_leased[0])
