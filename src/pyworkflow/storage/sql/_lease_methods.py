"""The lease methods of SqlStorage: claiming runnable runs, renewing and releasing leases.

A part of :class:`~pyworkflow.storage.sql.SqlStorage` (a base of it), kept apart so that each
module holds one concern, as MemoryStorage's are: who may drive a run, and when it is due. Each
method runs one script of ``_scripts/leases.py``.
"""

from __future__ import annotations

from collections.abc import Collection

from pyworkflow.storage.records import RunRecord
from pyworkflow.storage.sql._script_runner import ScriptRunner
from pyworkflow.storage.sql._scripts import leases

__all__ = ["SqlLeaseMethods"]


class SqlLeaseMethods(ScriptRunner):
    """The lease methods of the Storage protocol on SQL (a base of SqlStorage)."""

    async def claim_runs(
        self,
        *,
        owner: str,
        now: float,
        lease_expires_at: float,
        limit: int,
        workflow_names: Collection[str] | None = None,
        run_ids: Collection[str] | None = None,
        due_only: bool = True,
        suspects: bool | None = None,
        queues: Collection[str] | None = None,
    ) -> list[RunRecord]:
        """Lease up to ``limit`` runnable runs, earliest ``wake_at`` first."""
        return await self._run(
            lambda db: leases.claim_runs(
                db,
                owner=owner,
                now=now,
                lease_expires_at=lease_expires_at,
                limit=limit,
                workflow_names=workflow_names,
                run_ids=run_ids,
                due_only=due_only,
                suspects=suspects,
                queues=queues,
            ),
            writes=True,
        )

    async def take_due_runs(
        self,
        *,
        now: float,
        until: float,
        limit: int,
        workflow_names: Collection[str] | None = None,
    ) -> list[str]:
        """Set ``wake_at = until`` on up to ``limit`` runnable runs; their ids, earliest first."""
        return await self._run(
            lambda db: leases.take_due_runs(
                db, now=now, until=until, limit=limit, workflow_names=workflow_names
            ),
            writes=True,
        )

    async def renew_leases(
        self, *, owner: str, run_ids: Collection[str], now: float, lease_expires_at: float
    ) -> set[str]:
        """Extend the leases ``owner`` still holds; returns the ids it still holds."""
        return await self._run(
            lambda db: leases.renew_leases(
                db, owner=owner, run_ids=run_ids, now=now, lease_expires_at=lease_expires_at
            ),
            writes=True,
        )

    async def release_runs(self, *, owner: str, run_ids: Collection[str], now: float) -> None:
        """Drop the leases and make the runs due at once."""
        await self._run(
            lambda db: leases.release_runs(db, owner=owner, run_ids=run_ids, now=now), writes=True
        )

    async def next_wake_at(
        self,
        *,
        workflow_names: Collection[str] | None = None,
        queues: Collection[str] | None = None,
    ) -> float | None:
        """When the next run becomes claimable, or None; see ``Storage.next_wake_at``."""
        return await self._run(
            lambda db: leases.next_wake_at(db, workflow_names=workflow_names, queues=queues),
            writes=False,
        )
