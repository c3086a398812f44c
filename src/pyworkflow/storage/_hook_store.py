"""The hook store: the hooks a run waits on, delivered from outside.

A part of :class:`~pyworkflow.storage.protocol.Storage` (a base of it), kept apart so that each
module holds one concern. Hooks belong to a run: created only by the run's appends
(``AppendWrite.hooks``), delivered by outside callers (``deliver_hook``), expired by the lease
holder (``expire_hook``). A token is stored only as its hash.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol

from pyworkflow.events import HookStatus
from pyworkflow.storage.records import HookRecord

__all__ = ["HookStore"]


class HookStore(Protocol):
    """What hooks need: find one by its token's hash, list them, deliver, expire."""

    async def get_hook(self, token_hash: str) -> HookRecord | None:
        """The hook whose token hashes to ``token_hash``, or None."""

    async def list_hooks(
        self,
        *,
        run_id: str | None = None,
        status: HookStatus | None = None,
        limit: int = 100,
        hook_ids: Collection[str] | None = None,
    ) -> list[HookRecord]:
        """Hooks newest first, of one run and/or in one status; ``hook_ids``: those alone.

        A run waiting on a few hooks reads just those (the engine, at each wake), not all
        the hooks it ever received.
        """

    async def deliver_hook(self, token_hash: str, payload: Any, *, now: float) -> HookRecord:
        """Store a hook's payload and signal its run, atomically; returns the updated hook.

        Only a hook that is ``waiting``, not past ``expires_at`` (``now < expires_at``), of a run
        that has not ended, takes a payload; of concurrent calls exactly one succeeds. The run
        gets ``signal_seq + 1`` and is due at once.

        Raises (writing nothing):
            HookNotFoundError: no such hook, or its run has ended.
            HookAlreadyReceivedError: it already has a payload.
            HookExpiredError: it expired, or ``now`` is past its ``expires_at``.
        """

    async def expire_hook(self, run_id: str, hook_id: str, *, now: float) -> HookRecord:
        """The lease holder's timeout of a hook: ``waiting`` becomes ``expired``.

        Returns the hook as it now stands: ``expired`` (also if it already was), or
        ``received`` when a delivery won the race (log that payload instead).

        Raises:
            HookNotFoundError: the run has no such hook.
        """
