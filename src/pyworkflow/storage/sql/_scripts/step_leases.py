"""The scripts of step leases: taking, renewing, releasing and listing the leases of attempts."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from pyworkflow.storage.records import StepLease, StepOffer
from pyworkflow.storage.sql._decoding import step_lease_from_row
from pyworkflow.storage.sql._session import Session
from pyworkflow.storage.sql._statements.step_leases import (
    LIST_STEP_LEASES,
    RELEASE_STEP,
    RENEW_STEP,
    STEP_LEASE,
    acquire_step_statement,
    offer_step_statement,
    offered_steps_statement,
)

__all__ = [
    "acquire_step",
    "list_offered_steps",
    "list_step_leases",
    "offer_steps",
    "release_step",
    "renew_step",
]


async def acquire_step(
    db: Session,
    run_id: str,
    step_id: str,
    *,
    attempt: int,
    owner: str,
    now: float,
    lease_expires_at: float,
) -> StepLease | None:
    """Take the lease of an attempt of a step; None (nothing written) when refused.

    A retry after a lost connection that finds this very lease stored (this owner, attempt and
    expiry) reports the first attempt's success instead of counting a second delivery.
    """
    params = {
        "b_run_id": run_id,
        "b_step_id": step_id,
        "b_attempt": attempt,
        "b_owner": owner,
        "b_now": now,
        "b_lease_expires_at": lease_expires_at,
    }
    if db.retried:
        row = await db.first(STEP_LEASE, params)
        if row is not None:
            stored = step_lease_from_row(row)
            if (stored.owner, stored.attempt, stored.lease_expires_at) == (
                owner,
                attempt,
                lease_expires_at,
            ):
                return stored
    row = await db.first(acquire_step_statement(db.dialect), params)
    return None if row is None else step_lease_from_row(row)


async def renew_step(
    db: Session, run_id: str, step_id: str, *, owner: str, lease_expires_at: float
) -> bool:
    """Extend ``owner``'s step lease; False when the row is gone or another owner holds it."""
    params = {
        "b_run_id": run_id,
        "b_step_id": step_id,
        "b_owner": owner,
        "b_lease_expires_at": lease_expires_at,
    }
    return await db.first(RENEW_STEP, params) is not None


async def release_step(db: Session, run_id: str, step_id: str, *, owner: str) -> None:
    """Delete the step's lease row if ``owner`` holds it."""
    await db.execute(RELEASE_STEP, {"b_run_id": run_id, "b_step_id": step_id, "b_owner": owner})


async def list_step_leases(db: Session, run_id: str) -> list[StepLease]:
    """The run's step lease rows, by ``step_id``."""
    return [
        step_lease_from_row(row) for row in await db.all(LIST_STEP_LEASES, {"b_run_id": run_id})
    ]


async def offer_steps(db: Session, run_id: str, offers: Sequence[StepOffer], *, now: float) -> None:
    """Offer attempts of the run's steps to the local workers of their queues."""
    statement = offer_step_statement(db.dialect)
    for offer in offers:
        params = {
            "b_run_id": run_id,
            "b_step_id": offer.step_id,
            "b_attempt": offer.attempt,
            "b_queue": offer.queue,
            "b_now": now,
        }
        await db.execute(statement, params)
    if offers:
        await db.announce(run_id)


async def list_offered_steps(
    db: Session,
    *,
    queues: Collection[str] | None,
    workflow_names: Collection[str],
    now: float,
    limit: int,
) -> list[StepLease]:
    """Offered attempts free to take, oldest offer first (see ``Storage.list_offered_steps``)."""
    if not workflow_names or limit <= 0 or (queues is not None and not queues):
        return []
    params = {"b_names": list(workflow_names), "b_now": now, "b_limit": limit}
    if queues is not None:
        params["b_queues"] = list(queues)
    statement = offered_steps_statement(by_queues=queues is not None)
    return [step_lease_from_row(row) for row in await db.all(statement, params)]
