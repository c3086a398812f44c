"""What every executor answers from its engine: its lease owner id, its clock, and changes.

Changes: a storage that pushes them (PostgreSQL's LISTEN/NOTIFY, ``ChangeNotifier``) calls the
executor's ``_on_change(kind, run_id)`` once subscribed; other storages are polled.
"""

from __future__ import annotations

from pyworkflow._engine.engine import Engine
from pyworkflow.storage.protocol import ChangeNotifier

__all__ = ["EngineBacked"]


class EngineBacked:
    """Base of the executors: ``owner``, ``now`` and ``lease_until`` read ``self.engine``."""

    engine: Engine
    _subscribed: bool = False

    @property
    def owner(self) -> str:
        """The lease owner id runs are claimed under (``host:pid:random``)."""
        return self.engine.owner

    def now(self) -> float:
        """The executor's clock."""
        return self.engine.clock.now()

    def lease_until(self) -> float:
        """The expiry of a lease taken now."""
        return self.engine.lease_until()

    def _on_change(self, kind: str, run_id: str) -> None:
        """A change pushed by storage: ``"runnable"`` or ``"ended"`` of ``run_id``."""

    def _subscribe(self) -> None:
        """Hear from storages that push changes; idempotent."""
        storage = self.engine.storage
        if not self._subscribed and isinstance(storage, ChangeNotifier):
            storage.subscribe(self._on_change)
            self._subscribed = True

    def _unsubscribe(self) -> None:
        """Stop hearing changes; idempotent."""
        storage = self.engine.storage
        if self._subscribed and isinstance(storage, ChangeNotifier):
            storage.unsubscribe(self._on_change)
            self._subscribed = False
