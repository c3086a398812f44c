"""PostgreSQL's hook methods: reading hooks, delivering a payload, expiring a hook.

A part of :class:`~pyworkflow.storage.postgres.PostgresStorage`, kept apart so that each module
holds one concept. The statements are the shared ones of ``statements.py``; a delivery is one
statement (``_pg_statements.DELIVER_HOOK_NOTIFYING``): the conditional UPDATE of the hook
decides between concurrent callers, its run is signalled and a worker woken in the same commit.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from pyworkflow.events import HookStatus
from pyworkflow.exceptions import StorageError
from pyworkflow.storage.postgres import _effects as effects
from pyworkflow.storage.postgres._connections import PgConnections
from pyworkflow.storage.postgres._query import PgQuery, compile_once_off
from pyworkflow.storage.postgres._settings import PgSettings
from pyworkflow.storage.records import HookRecord
from pyworkflow.storage.sql._decoding import hook_from_row
from pyworkflow.storage.sql._rows import encode, hook_not_found, hook_refused
from pyworkflow.storage.sql._statements import (
    EXPIRE_HOOK,
    GET_HOOK,
    GET_HOOK_OF_RUN,
    HOOK_STATE,
    list_hooks_statement,
)

__all__ = ["PgHookMethods"]

_DELIVER = PgQuery(effects.DELIVER_HOOK_NOTIFYING)
_HOOK_STATE = PgQuery(HOOK_STATE)
_GET_HOOK = PgQuery(GET_HOOK)
_GET_HOOK_OF_RUN = PgQuery(GET_HOOK_OF_RUN)
_EXPIRE = PgQuery(EXPIRE_HOOK)

# A refused delivery whose hook then looks deliverable (its failed run was resumed in between)
# is tried again, this many times in all.
_DELIVERY_ATTEMPTS = 3


class PgHookMethods:
    """The hook methods of the Storage protocol on PostgreSQL (a base of PostgresStorage)."""

    settings: PgSettings
    _db: PgConnections

    async def get_hook(self, token_hash: str) -> HookRecord | None:
        """The hook whose token hashes to ``token_hash``, or None."""

        async def get(conn: asyncpg.Connection, _retried: bool) -> HookRecord | None:
            row = await _GET_HOOK.fetchrow(conn, {"b_token_hash": token_hash})
            return None if row is None else hook_from_row(row)

        return await self._db.run(get)

    async def list_hooks(
        self, *, run_id: str | None = None, status: HookStatus | None = None, limit: int = 100
    ) -> list[HookRecord]:
        """Hooks newest first, of one run and/or in one status."""
        if limit <= 0:
            return []
        sql, args = compile_once_off(
            list_hooks_statement(run_id=run_id, status=status, limit=limit)
        )

        async def list_(conn: asyncpg.Connection, _retried: bool) -> list[HookRecord]:
            return [hook_from_row(row) for row in await conn.fetch(sql, *args)]

        return await self._db.run(list_)

    async def deliver_hook(self, token_hash: str, payload: Any, *, now: float) -> HookRecord:
        """Store a waiting hook's payload, signal its run and wake a worker, in one statement.

        See ``Storage.deliver_hook``. A retry after a lost connection that finds the hook
        received with this very payload at this ``now`` reports the first attempt's success.
        """
        params = {
            "b_token_hash": token_hash,
            "b_payload": encode(payload),
            "b_now": now,
            "b_channel": self.settings.channel,
        }

        async def deliver(conn: asyncpg.Connection, retried: bool) -> HookRecord:
            for _ in range(_DELIVERY_ATTEMPTS):
                row = await _DELIVER.fetchrow(conn, params)
                if row is not None:
                    return hook_from_row(tuple(row)[:-1])  # without the notification's column
                state = await _HOOK_STATE.fetchrow(conn, {"b_token_hash": token_hash})
                if retried and state is not None and _delivered_by_us(state, params):
                    return hook_from_row(tuple(state)[:-1])
                error = hook_refused(token_hash, now, state)
                if error is not None:
                    raise error
            raise StorageError(f"hook {token_hash[:8]!r}...: delivery kept being refused")

        return await self._db.run(deliver)

    async def expire_hook(self, run_id: str, hook_id: str, *, now: float) -> HookRecord:
        """Turn a waiting hook expired; returns it as it stands (a delivery may have won)."""
        params = {"b_run_id": run_id, "b_hook_id": hook_id}

        async def expire(conn: asyncpg.Connection, _retried: bool) -> HookRecord:
            row = await _EXPIRE.fetchrow(conn, params)
            if row is None:  # not waiting: read it as it stands now (a new snapshot)
                row = await _GET_HOOK_OF_RUN.fetchrow(conn, params)
                if row is None:
                    raise hook_not_found(run_id, hook_id)
            return hook_from_row(row)

        return await self._db.run(expire)


def _delivered_by_us(state: Any, params: dict[str, Any]) -> bool:
    """Whether a ``HOOK_STATE`` row shows the delivery ``params`` describe as done."""
    return bool(
        state["status"] == HookStatus.RECEIVED.value
        and state["payload"] == params["b_payload"]
        and state["received_at"] == params["b_now"]
    )
