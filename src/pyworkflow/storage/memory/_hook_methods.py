"""The hook methods of MemoryStorage: finding, listing, delivering and expiring hooks.

A part of :class:`~pyworkflow.storage.memory.MemoryStorage` (a base of it), kept apart so that
each module holds one concern. The hooks' rows are a ``HookTable`` (``_hooks.py``); a delivery
also signals the hook's run, as every outside writer does.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pyworkflow.events import HookStatus
from pyworkflow.storage.memory._family import signalled
from pyworkflow.storage.memory._hooks import HookTable
from pyworkflow.storage.records import HookRecord, RunRecord

__all__ = ["MemoryHookMethods"]


class MemoryHookMethods:
    """The hook methods of the Storage protocol in memory (a base of MemoryStorage)."""

    _runs: dict[str, RunRecord]
    _hooks: HookTable

    async def get_hook(self, token_hash: str) -> HookRecord | None:
        """The hook whose token hashes to ``token_hash``, or None."""
        return self._hooks.get(token_hash)

    async def list_hooks(
        self,
        *,
        run_id: str | None = None,
        status: HookStatus | None = None,
        limit: int = 100,
        hook_ids: Collection[str] | None = None,
    ) -> list[HookRecord]:
        """Hooks newest first (by ``created_at``), of one run and/or in one status."""
        wanted = None if hook_ids is None else set(hook_ids)
        return self._hooks.select(run_id=run_id, status=status, limit=limit, hook_ids=wanted)

    async def deliver_hook(self, token_hash: str, payload: Any, *, now: float) -> HookRecord:
        """Store a waiting hook's payload, bump its run's ``signal_seq`` and make it due.

        Raises HookNotFoundError, HookAlreadyReceivedError or HookExpiredError, writing
        nothing (see ``Storage.deliver_hook``).
        """
        run_id = self._hooks.run_of(token_hash)
        run = None if run_id is None else self._runs.get(run_id)
        received = self._hooks.deliver(token_hash, payload, now, run)
        assert run is not None  # deliver() raised otherwise
        self._runs[run.run_id] = signalled(run, now)
        return received

    async def expire_hook(self, run_id: str, hook_id: str, *, now: float) -> HookRecord:
        """Turn a waiting hook expired; returns it as it stands (a delivery may have won).

        Raises HookNotFoundError if the run has no such hook.
        """
        return self._hooks.expire(run_id, hook_id)
