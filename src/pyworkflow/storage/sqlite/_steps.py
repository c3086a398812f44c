"""SQLite's step-lease methods: taking, renewing, releasing and listing the leases of step attempts.

A part of :class:`~pyworkflow.storage.sqlite.SQLiteStorage`, kept apart so that each module
holds one concept. The ``_txn`` functions bind values to the statements of
``_step_statements.py`` and run inside the write transaction of the database thread (as
``sql.py``'s do); ``BEGIN IMMEDIATE`` serialises every writer of the file, so of concurrent
``acquire_step`` calls, in this process or another, one takes the lease and the others see it
taken. Semantics are the ones in ``protocol.py``'s docstrings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import sqlalchemy as sa

from pyworkflow.storage.records import StepLease
from pyworkflow.storage.sql._rows import step_lease_from_row
from pyworkflow.storage.sql._step_statements import (
    LIST_STEP_LEASES,
    RELEASE_STEP,
    RENEW_STEP,
    acquire_step_statement,
)
from pyworkflow.storage.sqlite._thread import Job

__all__ = [
    "SQLiteStepMethods",
    "acquire_step_txn",
    "list_step_leases",
    "release_step_txn",
    "renew_step_txn",
]

_T = TypeVar("_T")


def acquire_step_txn(
    conn: sa.Connection,
    run_id: str,
    step_id: str,
    *,
    attempt: int,
    owner: str,
    now: float,
    lease_expires_at: float,
) -> StepLease | None:
    """Take the lease of an attempt of a step; None (nothing written) when refused."""
    params = {
        "b_run_id": run_id,
        "b_step_id": step_id,
        "b_attempt": attempt,
        "b_owner": owner,
        "b_now": now,
        "b_lease_expires_at": lease_expires_at,
    }
    row = conn.execute(acquire_step_statement("sqlite"), params).first()
    return None if row is None else step_lease_from_row(row)


def renew_step_txn(
    conn: sa.Connection, run_id: str, step_id: str, *, owner: str, lease_expires_at: float
) -> bool:
    """Extend ``owner``'s step lease; False when the row is gone or another owner holds it."""
    params = {
        "b_run_id": run_id,
        "b_step_id": step_id,
        "b_owner": owner,
        "b_lease_expires_at": lease_expires_at,
    }
    return conn.execute(RENEW_STEP, params).first() is not None


def release_step_txn(conn: sa.Connection, run_id: str, step_id: str, *, owner: str) -> None:
    """Delete the step's lease row if ``owner`` holds it."""
    conn.execute(RELEASE_STEP, {"b_run_id": run_id, "b_step_id": step_id, "b_owner": owner})


def list_step_leases(conn: sa.Connection, run_id: str) -> list[StepLease]:
    """The run's step lease rows, by ``step_id``."""
    rows = conn.execute(LIST_STEP_LEASES, {"b_run_id": run_id})
    return [step_lease_from_row(row) for row in rows]


class SQLiteStepMethods:
    """The step-lease methods of the Storage protocol on SQLite (a base of SQLiteStorage)."""

    if TYPE_CHECKING:

        async def _call(self, fn: Callable[[sa.Connection], _T], kind: int) -> _T:
            """Run ``fn`` on the database thread (``SQLiteStorage._call``)."""

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
        """Take the lease of an attempt of a step; see ``Storage.acquire_step``."""
        return await self._call(
            lambda c: acquire_step_txn(
                c,
                run_id,
                step_id,
                attempt=attempt,
                owner=owner,
                now=now,
                lease_expires_at=lease_expires_at,
            ),
            Job.WRITE,
        )

    async def renew_step(
        self, run_id: str, step_id: str, *, owner: str, now: float, lease_expires_at: float
    ) -> bool:
        """Extend ``owner``'s step lease; False when the row is gone or held by another."""
        return await self._call(
            lambda c: renew_step_txn(
                c, run_id, step_id, owner=owner, lease_expires_at=lease_expires_at
            ),
            Job.WRITE,
        )

    async def release_step(self, run_id: str, step_id: str, *, owner: str) -> None:
        """Delete the step's lease row if ``owner`` holds it."""
        await self._call(lambda c: release_step_txn(c, run_id, step_id, owner=owner), Job.WRITE)

    async def list_step_leases(self, run_id: str) -> list[StepLease]:
        """The run's step lease rows, by ``step_id``."""
        return await self._call(lambda c: list_step_leases(c, run_id), Job.READ)
