"""The lease-owner methods of SqlStorage: announcing owners and freeing what dead ones held.

A part of :class:`~pyworkflow.storage.sql.SqlStorage` (a base of it), kept apart so that each
module holds one concern, as MemoryStorage's are. An owner's liveness is the dialect's
(:attr:`SqlOwnerMethods._presences`, ``_presence.py``); its row, the scripts of
``_scripts/owners.py``.
"""

from __future__ import annotations

import abc
import os
import socket
from collections.abc import Callable

from pyworkflow.storage.records import OwnerRecord
from pyworkflow.storage.sql._presence import Presences
from pyworkflow.storage.sql._script_runner import ScriptRunner
from pyworkflow.storage.sql._scripts import owners

__all__ = ["SqlOwnerMethods"]


class SqlOwnerMethods(ScriptRunner):
    """The lease-owner methods of the Storage protocol on SQL (a base of SqlStorage)."""

    @property
    @abc.abstractmethod
    def _presences(self) -> Presences:
        """How this dialect makes a lease owner's liveness observable (``_presence.py``)."""

    async def announce_owner(
        self, owner: str, *, now: float, on_lost: Callable[[], None] | None = None
    ) -> bool:
        """Make ``owner``'s liveness observable; see ``Storage.announce_owner``."""
        presences = self._presences
        key, continuous = await presences.hold(owner, on_lost)
        host, pid = socket.gethostname(), os.getpid()
        try:
            await self._run(
                lambda db: owners.add_owner(db, owner, host=host, pid=pid, lock_key=key, now=now),
                writes=True,
            )
        except BaseException:
            await presences.drop(owner)
            raise
        return continuous

    async def withdraw_owner(self, owner: str) -> None:
        """Stop showing ``owner`` alive; see ``Storage.withdraw_owner``."""
        await self._presences.drop(owner)

    async def list_owners(self) -> list[OwnerRecord]:
        """Every announced owner and whether it is alive; see ``Storage.list_owners``."""
        rows = await self._run(owners.list_owners, writes=False)
        starts = await self._run(owners.owner_starts, writes=False)
        dead = set(await self._presences.dead_among(rows)) if rows else set()
        return [
            OwnerRecord(owner, host, pid, starts.get(owner), owner not in dead)
            for owner, host, pid, _key in rows
        ]

    async def take_over_dead_owners(self, *, now: float) -> list[str]:
        """Free what dead owners held; see ``Storage.take_over_dead_owners``."""
        rows = await self._run(owners.list_owners, writes=False)
        dead = await self._presences.dead_among(rows) if rows else []
        if dead:
            await self._run(lambda db: owners.take_over(db, dead, now), writes=True)
        return dead
