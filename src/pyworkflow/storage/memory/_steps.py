"""The step-lease table of MemoryStorage: the lease of each step attempt run away from its driver.

A row guards one attempt of a step executed by a Celery step task: duplicate broker messages
find it taken, the executing worker renews it, and ``deliveries`` counts how often the attempt
was taken. The rules are ``protocol.Storage.acquire_step`` and its neighbours, written as
plainly as possible (this is the reference the SQL backends are checked against). Records are
frozen and hold only scalars, so they are handed out as they are, without copies.
:class:`MemoryStepMethods` holds the protocol's methods, a base of MemoryStorage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence

from pyworkflow.storage.records import RunRecord, StepLease, StepOffer

__all__ = ["MemoryStepMethods", "StepLeaseTable"]


class StepLeaseTable:
    """Step lease rows keyed by ``(run_id, step_id)``."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], StepLease] = {}

    def acquire(
        self,
        run: RunRecord | None,
        step_id: str,
        *,
        attempt: int,
        owner: str,
        now: float,
        lease_expires_at: float,
    ) -> StepLease | None:
        """Take the lease of attempt ``attempt`` of step ``step_id`` of ``run``.

        Args:
            run: the step's run as stored, or None when there is no such run.
            step_id: the step.
            attempt: the attempt to execute.
            owner: who takes it.
            now: the caller's clock: a lease with ``lease_expires_at <= now`` has lapsed.
            lease_expires_at: the new lease's expiry.

        Returns:
            The row as stored, or None (nothing written) when the run is unknown or ended, or
            another owner holds a live lease on the same attempt.
        """
        if run is None or run.status.is_terminal:
            return None
        key = (run.run_id, step_id)
        row = self._rows.get(key)
        deliveries, queue, offered_at = 0, None, None
        if row is not None and row.attempt == attempt:
            held_by_another = row.owner is not None and row.owner != owner
            lapsed = row.lease_expires_at is not None and row.lease_expires_at <= now
            if held_by_another and not lapsed:
                return None  # a duplicate message for an attempt being executed
            deliveries, queue, offered_at = row.deliveries, row.queue, row.offered_at
        # A missing row, or one of another attempt, starts afresh.
        taken = StepLease(
            run.run_id, step_id, attempt, owner, lease_expires_at, deliveries + 1, queue, offered_at
        )
        self._rows[key] = taken
        return taken

    def offer(self, run: RunRecord | None, offers: Sequence[StepOffer], now: float) -> None:
        """Offer attempts of ``run``'s steps to their queues (see ``Storage.offer_steps``)."""
        if run is None or run.status.is_terminal:
            return
        for offer in offers:
            row = self._rows.get((run.run_id, offer.step_id))
            if row is None or row.attempt != offer.attempt:
                self._rows[run.run_id, offer.step_id] = StepLease(
                    run.run_id, offer.step_id, offer.attempt, None, None, 0, offer.queue, now
                )

    def offered(
        self, runs: dict[str, RunRecord], queues: Collection[str] | None, names: Collection[str]
    ) -> list[StepLease]:
        """Every offer of a live run of ``names`` and ``queues`` (None: any), taken or not."""
        return [
            row
            for row in self._rows.values()
            if row.queue is not None
            and (queues is None or row.queue in queues)
            and (run := runs.get(row.run_id)) is not None
            and not run.status.is_terminal
            and run.workflow_name in names
        ]

    def renew(self, run_id: str, step_id: str, *, owner: str, lease_expires_at: float) -> bool:
        """Extend ``owner``'s lease (also a lapsed one); False when gone or held by another."""
        row = self._rows.get((run_id, step_id))
        if row is None or row.owner != owner:
            return False
        self._rows[run_id, step_id] = dataclasses.replace(row, lease_expires_at=lease_expires_at)
        return True

    def release(self, run_id: str, step_id: str, *, owner: str) -> None:
        """Delete the row if ``owner`` holds it; otherwise do nothing."""
        row = self._rows.get((run_id, step_id))
        if row is not None and row.owner == owner:
            del self._rows[run_id, step_id]

    def expire_owner(self, owner: str, now: float) -> set[str]:
        """Let the leases of ``owner`` and its deliveries (``owner/...``) lapse now; their runs."""
        runs: set[str] = set()
        for key, row in self._rows.items():
            held = row.owner is not None and (
                row.owner == owner or row.owner.startswith(owner + "/")
            )
            if held and (row.lease_expires_at is None or row.lease_expires_at > now):
                self._rows[key] = dataclasses.replace(row, lease_expires_at=now)
                runs.add(key[0])
        return runs

    def of_run(self, run_id: str) -> list[StepLease]:
        """The run's rows, by ``step_id``."""
        return sorted(
            (row for (rid, _), row in self._rows.items() if rid == run_id),
            key=lambda row: row.step_id,
        )

    def put(self, rows: list[StepLease] | tuple[StepLease, ...]) -> None:
        """Store rows exactly as given (a copied run's: ``write_run_snapshots``)."""
        for row in rows:
            self._rows[row.run_id, row.step_id] = row

    def delete_run(self, run_id: str) -> None:
        """Drop every row of ``run_id`` (retention)."""
        for key in [key for key in self._rows if key[0] == run_id]:
            del self._rows[key]


class MemoryStepMethods:
    """The step-lease methods of the Storage protocol in memory (a base of MemoryStorage)."""

    _runs: dict[str, RunRecord]
    _steps: StepLeaseTable

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
        return self._steps.acquire(
            self._runs.get(run_id),
            step_id,
            attempt=attempt,
            owner=owner,
            now=now,
            lease_expires_at=lease_expires_at,
        )

    async def renew_step(
        self, run_id: str, step_id: str, *, owner: str, now: float, lease_expires_at: float
    ) -> bool:
        """Extend ``owner``'s step lease; False when the row is gone or held by another."""
        return self._steps.renew(run_id, step_id, owner=owner, lease_expires_at=lease_expires_at)

    async def release_step(self, run_id: str, step_id: str, *, owner: str) -> None:
        """Delete the step's lease row if ``owner`` holds it."""
        self._steps.release(run_id, step_id, owner=owner)

    async def list_step_leases(self, run_id: str) -> list[StepLease]:
        """The run's step lease rows, by ``step_id``."""
        return self._steps.of_run(run_id)

    async def offer_steps(self, run_id: str, offers: Sequence[StepOffer], *, now: float) -> None:
        """Offer attempts to the local workers of their queues; see ``Storage.offer_steps``."""
        self._steps.offer(self._runs.get(run_id), offers, now)

    async def list_offered_steps(
        self,
        *,
        queues: Collection[str] | None,
        workflow_names: Collection[str],
        now: float,
        limit: int,
    ) -> list[StepLease]:
        """Offered attempts free to take, oldest first; see ``Storage.list_offered_steps``."""
        free = [
            row
            for row in self._steps.offered(self._runs, queues, workflow_names)
            if row.owner is None or (row.lease_expires_at or 0.0) <= now
        ]
        free.sort(key=lambda row: (row.offered_at or 0.0, row.run_id, row.step_id))
        return free[: max(limit, 0)]
