"""The scripts of hooks: reading and listing them, delivering a payload, expiring one."""

from __future__ import annotations

from typing import Any

from pyworkflow.events import HookStatus
from pyworkflow.exceptions import StorageError
from pyworkflow.storage.records import HookRecord
from pyworkflow.storage.sql._decoding import hook_from_row
from pyworkflow.storage.sql._params import encode
from pyworkflow.storage.sql._refusals import delivered_by_us, hook_not_found, hook_refused
from pyworkflow.storage.sql._session import Session
from pyworkflow.storage.sql._statements.hooks import (
    EXPIRE_HOOK,
    GET_HOOK,
    GET_HOOK_OF_RUN,
    HOOK_STATE,
    RECEIVED_OF_RUN,
    list_hooks_statement,
)

__all__ = ["deliver_hook", "expire_hook", "get_hook", "list_hooks"]

# A refused delivery whose hook then looks deliverable (its failed run was resumed in between,
# on a dialect whose statements see each other's commits) is tried again, this many times in all.
_DELIVERY_ATTEMPTS = 3


async def get_hook(db: Session, token_hash: str) -> HookRecord | None:
    """The hook whose token hashes to ``token_hash``, or None."""
    row = await db.first(GET_HOOK, {"b_token_hash": token_hash})
    return None if row is None else hook_from_row(row)


async def list_hooks(
    db: Session,
    *,
    run_id: str | None,
    status: HookStatus | None,
    limit: int,
    hook_ids: list[str] | None = None,
) -> list[HookRecord]:
    """Hooks newest first, of one run and/or in one status; ``hook_ids``: those alone."""
    if limit <= 0 or hook_ids == []:
        return []
    if hook_ids is not None and run_id is not None and status is HookStatus.RECEIVED:
        params = {"b_run_id": run_id, "b_hook_ids": hook_ids}
        return [hook_from_row(row) for row in await db.all(RECEIVED_OF_RUN, params)][:limit]
    statement = list_hooks_statement(run_id=run_id, status=status, limit=limit, hook_ids=hook_ids)
    return [hook_from_row(row) for row in await db.query(statement)]


async def deliver_hook(db: Session, token_hash: str, payload: Any, *, now: float) -> HookRecord:
    """Store a waiting hook's payload and signal its run; see ``Storage.deliver_hook``.

    A retry after a lost connection that finds the hook received with this very payload at
    this ``now`` reports the first attempt's success.

    Raises (having written nothing):
        HookNotFoundError, HookAlreadyReceivedError, HookExpiredError: see
            ``_refusals.hook_refused``.
    """
    params = {"b_token_hash": token_hash, "b_payload": encode(payload), "b_now": now}
    for _ in range(_DELIVERY_ATTEMPTS):
        row = await db.deliver(params)
        if row is not None:
            return hook_from_row(row)
        state = await db.first(HOOK_STATE, {"b_token_hash": token_hash})  # a cold path: why
        if db.retried and state is not None and delivered_by_us(state, params):
            return hook_from_row(state[:-1])  # without the run's status
        error = hook_refused(token_hash, now, state)
        if error is not None:
            raise error
    raise StorageError(f"hook {token_hash[:8]!r}...: delivery kept being refused")


async def expire_hook(db: Session, run_id: str, hook_id: str) -> HookRecord:
    """Turn a waiting hook expired; returns it as it stands (a delivery may have won).

    Raises:
        HookNotFoundError: the run has no such hook.
    """
    params = {"b_run_id": run_id, "b_hook_id": hook_id}
    row = await db.first(EXPIRE_HOOK, params)
    if row is None:  # not waiting: read it as it stands now
        row = await db.first(GET_HOOK_OF_RUN, params)
        if row is None:
            raise hook_not_found(run_id, hook_id)
    return hook_from_row(row)
