"""The lease methods of MemoryStorage: claiming runnable runs, renewing and releasing leases.

A part of :class:`~pyworkflow.storage.memory.MemoryStorage` (a base of it), kept apart so that
each module holds one concept: who may drive a run, and when it is due. The rules are
``Storage.claim_runs`` and its neighbours, written as plainly as possible.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

from pyworkflow.storage.memory._copies import copy_tree
from pyworkflow.storage.records import SUSPECT_RECOVERIES, RunRecord

__all__ = ["MemoryLeaseMethods"]


def _suspect(record: RunRecord) -> bool:
    """Whether claiming the (runnable) run now makes it a suspect (``SUSPECT_RECOVERIES``)."""
    lapsed = record.lease_owner is not None
    return record.recovery_count + (1 if lapsed else 0) >= SUSPECT_RECOVERIES


class MemoryLeaseMethods:
    """The lease methods of the Storage protocol in memory (a base of MemoryStorage)."""

    _runs: dict[str, RunRecord]

    def _runnable(
        self,
        record: RunRecord,
        now: float,
        names: Collection[str] | None = None,
        *,
        due_only: bool = True,
    ) -> bool:
        """Whether ``claim_runs`` may take the run.

        Not terminal, due (with a wake-up time at all, unless ``due_only``), of one of
        ``names`` (None: any), and nobody holds an unexpired lease on it.
        """
        return (
            not record.status.is_terminal
            and record.wake_at is not None
            and (record.wake_at <= now or not due_only)
            and (record.lease_expires_at is None or record.lease_expires_at <= now)
            and (names is None or record.workflow_name in names)
        )

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
        """Lease up to ``limit`` runnable runs to ``owner``, earliest ``wake_at`` first.

        Args:
            owner: the claiming worker.
            now: the executor's clock.
            lease_expires_at: when the new leases lapse unless renewed.
            limit: the most runs to claim.
            workflow_names: claim only runs of these workflows (None: any).
            run_ids: claim only these runs (None: any).
            due_only: only runs whose ``wake_at`` has come; False also takes live runs whose
                ``wake_at`` is still ahead (see ``Storage.claim_runs``).
            suspects: only suspects, none of them, or either (see ``Storage.claim_runs``).
            queues: claim only runs of these queues (None: any).

        Returns:
            The claimed runs, leased to ``owner``; their status is left as it was. A run taken
            over from an expired lease has its ``recovery_count`` raised by one and names the
            lease's owner in ``previous_owner``.
        """
        names = None if workflow_names is None else set(workflow_names)
        ids = None if run_ids is None else set(run_ids)
        served = None if queues is None else set(queues)
        candidates = [
            r
            for r in self._runs.values()
            if self._runnable(r, now, names, due_only=due_only)
            and (ids is None or r.run_id in ids)
            and (served is None or r.queue in served)
            and (suspects is None or _suspect(r) is suspects)
        ]
        candidates.sort(key=lambda r: (r.wake_at, r.run_id))
        claimed = []
        for record in candidates[: max(limit, 0)]:
            recovered = record.lease_owner is not None  # its previous holder let the lease lapse
            updated = dataclasses.replace(
                record,
                lease_owner=owner,
                lease_expires_at=lease_expires_at,
                recovery_count=record.recovery_count + (1 if recovered else 0),
                updated_at=now,
            )
            self._runs[record.run_id] = updated
            claimed.append(
                dataclasses.replace(copy_tree(updated), previous_owner=record.lease_owner)
            )
        return claimed

    async def take_due_runs(
        self,
        *,
        now: float,
        until: float,
        limit: int,
        workflow_names: Collection[str] | None = None,
    ) -> list[str]:
        """Set ``wake_at = until`` on up to ``limit`` runnable runs; their ids, earliest first.

        The runs ``claim_runs`` would claim; nothing else about them changes.
        """
        names = None if workflow_names is None else set(workflow_names)
        due = sorted(
            (r.wake_at, run_id)
            for run_id, r in self._runs.items()
            if r.wake_at is not None and self._runnable(r, now, names)
        )
        taken = [run_id for _, run_id in due[: max(limit, 0)]]
        for run_id in taken:
            self._runs[run_id] = dataclasses.replace(self._runs[run_id], wake_at=until)
        return taken

    async def renew_leases(
        self, *, owner: str, run_ids: Collection[str], now: float, lease_expires_at: float
    ) -> set[str]:
        """Extend the leases ``owner`` still holds; returns the ids it still holds.

        A lease that lapsed but that nobody else claimed is still ``owner``'s and is renewed.
        """
        held = {
            run_id
            for run_id in set(run_ids)
            if run_id in self._runs and self._runs[run_id].lease_owner == owner
        }
        for run_id in held:
            self._runs[run_id] = dataclasses.replace(
                self._runs[run_id], lease_expires_at=lease_expires_at, updated_at=now
            )
        return held

    async def release_runs(self, *, owner: str, run_ids: Collection[str], now: float) -> None:
        """Hand back the runs ``owner`` holds (clean shutdown): drop the lease, make them due."""
        for run_id in set(run_ids):
            record = self._runs.get(run_id)
            if record is None or record.lease_owner != owner:
                continue
            self._runs[run_id] = dataclasses.replace(
                record,
                lease_owner=None,
                lease_expires_at=None,
                wake_at=None if record.status.is_terminal else now,
                updated_at=now,
            )

    async def next_wake_at(
        self,
        *,
        workflow_names: Collection[str] | None = None,
        queues: Collection[str] | None = None,
    ) -> float | None:
        """The earliest time at which a non-terminal run becomes claimable, or None.

        That is ``wake_at`` for a run nobody holds; for a leased run (the call takes no ``now``
        to tell whether its lease lapsed) the later of ``wake_at`` and the lease's expiry, the
        moment a crashed holder's run can be recovered. ``workflow_names`` and ``queues``
        count only runs of those workflows and queues (None: any).
        """
        names = None if workflow_names is None else set(workflow_names)
        served = None if queues is None else set(queues)
        times = [
            r.wake_at if r.lease_expires_at is None else max(r.wake_at, r.lease_expires_at)
            for r in self._runs.values()
            if not r.status.is_terminal
            and r.wake_at is not None
            and (names is None or r.workflow_name in names)
            and (served is None or r.queue in served)
        ]
        return min(times, default=None)
