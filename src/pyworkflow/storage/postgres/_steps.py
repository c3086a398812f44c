"""PostgreSQL's step-lease methods: taking, renewing, releasing and listing the leases of attempts.

A part of :class:`~pyworkflow.storage.postgres.PostgresStorage`, kept apart so that each module
holds one concept. Each call is one statement of ``_step_statements.py``, one round trip: taking
a lease is an ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` whose ``WHERE`` PostgreSQL evaluates
on the row as a concurrent taker left it, so of concurrent takers exactly one gets the row back.
"""

from __future__ import annotations

import asyncpg

from pyworkflow.storage.postgres._connections import PgConnections
from pyworkflow.storage.postgres._query import PgQuery
from pyworkflow.storage.records import StepLease
from pyworkflow.storage.sql._rows import step_lease_from_row
from pyworkflow.storage.sql._step_statements import (
    LIST_STEP_LEASES,
    RELEASE_STEP,
    RENEW_STEP,
    STEP_LEASE,
    acquire_step_statement,
)

__all__ = ["PgStepMethods"]

_ACQUIRE = PgQuery(acquire_step_statement("postgresql"))
_STEP_LEASE = PgQuery(STEP_LEASE)
_RENEW = PgQuery(RENEW_STEP)
_RELEASE = PgQuery(RELEASE_STEP)
_LIST = PgQuery(LIST_STEP_LEASES)


class PgStepMethods:
    """The step-lease methods of the Storage protocol on PostgreSQL (a base of PostgresStorage)."""

    _db: PgConnections

    async def acquire_step(
        self,
        run_id: str,
        step_id: str,
        *,
        attempt: int,
        owner: str,
        now: float,
        lease_expires_at: float,
    ) -> StepLease | None:
        """Take the lease of an attempt of a step in one statement; see ``Storage.acquire_step``.

        A retry after a lost connection that finds this very lease stored (this owner, attempt
        and expiry) reports the first attempt's success instead of counting a second delivery.
        """
        params = {
            "b_run_id": run_id,
            "b_step_id": step_id,
            "b_attempt": attempt,
            "b_owner": owner,
            "b_now": now,
            "b_lease_expires_at": lease_expires_at,
        }

        async def acquire(conn: asyncpg.Connection, retried: bool) -> StepLease | None:
            if retried:
                row = await _STEP_LEASE.fetchrow(conn, params)
                if row is not None:
                    stored = step_lease_from_row(row)
                    if (stored.owner, stored.attempt, stored.lease_expires_at) == (
                        owner,
                        attempt,
                        lease_expires_at,
                    ):
                        return stored
            row = await _ACQUIRE.fetchrow(conn, params)
            return None if row is None else step_lease_from_row(row)

        return await self._db.run(acquire)

    async def renew_step(
        self, run_id: str, step_id: str, *, owner: str, now: float, lease_expires_at: float
    ) -> bool:
        """Extend ``owner``'s step lease; False when the row is gone or held by another."""
        params = {
            "b_run_id": run_id,
            "b_step_id": step_id,
            "b_owner": owner,
            "b_lease_expires_at": lease_expires_at,
        }

        async def renew(conn: asyncpg.Connection, _retried: bool) -> bool:
            return await _RENEW.fetchrow(conn, params) is not None

        return await self._db.run(renew)

    async def release_step(self, run_id: str, step_id: str, *, owner: str) -> None:
        """Delete the step's lease row if ``owner`` holds it."""
        params = {"b_run_id": run_id, "b_step_id": step_id, "b_owner": owner}

        async def release(conn: asyncpg.Connection, _retried: bool) -> None:
            await _RELEASE.execute(conn, params)

        await self._db.run(release)

    async def list_step_leases(self, run_id: str) -> list[StepLease]:
        """The run's step lease rows, by ``step_id``."""

        async def list_(conn: asyncpg.Connection, _retried: bool) -> list[StepLease]:
            rows = await _LIST.fetch(conn, {"b_run_id": run_id})
            return [step_lease_from_row(row) for row in rows]

        return await self._db.run(list_)
