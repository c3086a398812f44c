"""The scripts of lease owners: announcing one, listing them, freeing what a dead one held."""

from __future__ import annotations

from collections.abc import Collection

from pyworkflow.storage.sql._session import Row, Session
from pyworkflow.storage.sql._statements.owners import (
    ADD_OWNER,
    DELETE_OWNER,
    EXPIRE_RUN_LEASES,
    EXPIRE_STEP_LEASES,
    LIST_OWNERS,
    OWNER_STARTS,
    WAKE_STEP_RUNS,
)

__all__ = ["add_owner", "list_owners", "owner_starts", "take_over"]


async def add_owner(
    db: Session, owner: str, *, host: str, pid: int, lock_key: int | None, now: float
) -> None:
    """Record ``owner`` as observable (its row replaced if it announced itself before)."""
    await db.execute(DELETE_OWNER, {"b_owner": owner})
    params = {"b_owner": owner, "b_host": host, "b_pid": pid, "b_lock_key": lock_key, "b_now": now}
    await db.execute(ADD_OWNER, params)


async def list_owners(db: Session) -> list[Row]:
    """``owner, host, pid, lock_key`` of every announced owner."""
    return await db.all(LIST_OWNERS, {})


async def owner_starts(db: Session) -> dict[str, float]:
    """When each announced owner announced itself."""
    return {owner: float(started) for owner, started in await db.all(OWNER_STARTS, {})}


async def take_over(db: Session, dead: Collection[str], now: float) -> None:
    """Free what the ``dead`` owners held (their leases lapse now) and forget them."""
    for owner in dead:
        params = {"b_owner": owner, "b_prefix": f"{owner}/", "b_now": now}
        await db.wake(EXPIRE_RUN_LEASES, {"b_owner": owner, "b_now": now})
        await db.wake(WAKE_STEP_RUNS, params)
        await db.execute(EXPIRE_STEP_LEASES, params)
        await db.execute(DELETE_OWNER, {"b_owner": owner})
