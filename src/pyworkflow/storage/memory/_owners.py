"""The lease-owner methods of MemoryStorage: announcing owners and freeing what dead ones held.

A memory storage lives in one process, so no other process can die holding its leases: an
owner is dead here once it withdrew (``withdraw_owner``), which keeps the semantics the SQL
backends have for an owner whose lock is gone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from pyworkflow.storage.memory._steps import StepLeaseTable
from pyworkflow.storage.records import OwnerRecord, RunRecord

__all__ = ["MemoryOwnerMethods"]


class MemoryOwnerMethods:
    """The lease-owner methods of the Storage protocol in memory (a base of MemoryStorage)."""

    _runs: dict[str, RunRecord]
    _steps: StepLeaseTable
    _owners: dict[str, bool]  # owner -> still present

    async def announce_owner(
        self, owner: str, *, now: float, on_lost: Callable[[], None] | None = None
    ) -> bool:
        """Record ``owner`` as present until it withdraws (no gap: nothing here drops it)."""
        self._owners[owner] = True
        return True

    async def withdraw_owner(self, owner: str) -> None:
        """``owner`` is gone: whatever it still holds is free for the next take-over."""
        if owner in self._owners:
            self._owners[owner] = False

    async def list_owners(self) -> list[OwnerRecord]:
        """Every announced owner; alive until it withdraws (one process holds this storage)."""
        found = []
        for owner, present in self._owners.items():
            host, _, rest = owner.partition(":")
            pid = rest.partition(":")[0]
            found.append(OwnerRecord(owner, host, int(pid) if pid.isdigit() else 0, None, present))
        return found

    async def take_over_dead_owners(self, *, now: float) -> list[str]:
        """Let the leases of withdrawn owners lapse now; their names."""
        dead = [owner for owner, present in self._owners.items() if not present]
        for owner in dead:
            woken = self._steps.expire_owner(owner, now)
            for run_id, record in list(self._runs.items()):
                wake_at = record.wake_at
                if wake_at is None:
                    continue  # ended
                if record.lease_owner == owner:
                    record = dataclasses.replace(
                        record, lease_expires_at=now, wake_at=min(wake_at, now)
                    )
                elif run_id in woken:
                    record = dataclasses.replace(record, wake_at=min(wake_at, now))
                else:
                    continue
                self._runs[run_id] = record
            del self._owners[owner]
        return dead
