"""The step lease methods of SqlStorage: one attempt of a step executed once, and offers.

A part of :class:`~pyworkflow.storage.sql.SqlStorage` (a base of it), kept apart so that each
module holds one concern, as MemoryStorage's are. Each method runs one script of
``_scripts/step_leases.py``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from pyworkflow.storage.records import StepLease, StepOffer
from pyworkflow.storage.sql._script_runner import ScriptRunner
from pyworkflow.storage.sql._scripts import step_leases

__all__ = ["SqlStepMethods"]


class SqlStepMethods(ScriptRunner):
    """The step lease methods of the Storage protocol on SQL (a base of SqlStorage)."""

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
        return await self._run(
            lambda db: step_leases.acquire_step(
                db,
                run_id,
                step_id,
                attempt=attempt,
                owner=owner,
                now=now,
                lease_expires_at=lease_expires_at,
            ),
            writes=True,
        )

    async def renew_step(
        self, run_id: str, step_id: str, *, owner: str, now: float, lease_expires_at: float
    ) -> bool:
        """Extend ``owner``'s step lease; False when the row is gone or held by another."""
        return await self._run(
            lambda db: step_leases.renew_step(
                db, run_id, step_id, owner=owner, lease_expires_at=lease_expires_at
            ),
            writes=True,
        )

    async def release_step(self, run_id: str, step_id: str, *, owner: str) -> None:
        """Delete the step's lease row if ``owner`` holds it."""
        await self._run(
            lambda db: step_leases.release_step(db, run_id, step_id, owner=owner), writes=True
        )

    async def list_step_leases(self, run_id: str) -> list[StepLease]:
        """The run's step lease rows, by ``step_id``."""
        return await self._run(lambda db: step_leases.list_step_leases(db, run_id), writes=False)

    async def offer_steps(self, run_id: str, offers: Sequence[StepOffer], *, now: float) -> None:
        """Offer attempts to the local workers of their queues; see ``Storage.offer_steps``."""
        if offers:
            await self._run(
                lambda db: step_leases.offer_steps(db, run_id, offers, now=now), writes=True
            )

    async def list_offered_steps(
        self,
        *,
        queues: Collection[str] | None,
        workflow_names: Collection[str],
        now: float,
        limit: int,
    ) -> list[StepLease]:
        """Offered attempts free to take; see ``Storage.list_offered_steps``."""
        return await self._run(
            lambda db: step_leases.list_offered_steps(
                db, queues=queues, workflow_names=workflow_names, now=now, limit=limit
            ),
            writes=False,
        )
