"""The Storage protocol: the narrow set of async methods every backend implements.

The engine and the executors talk to storage only through this protocol (DESIGN §2.8). Times are
float seconds since the epoch, always passed in by the caller from the executor's clock, so a
virtual clock drives the same queries. Values (arguments, results, event payloads) arrive already
encoded as JSON-compatible trees; storage stores and returns them without interpreting them.
The records the methods take and return are the dataclasses of ``records.py``.

``Storage`` combines one protocol per concern, each in its own module with the rules every
backend keeps for it (the contract suite in tests/contract checks each):

- ``RunStore`` (``_run_store.py``): runs and their event logs; appends all or nothing and
  optimistic, outside writers that signal instead of appending, a run's end reaching its
  children and parent, retention, runs moved between storages whole.
- ``LeaseStore`` (``_lease_store.py``): when a run is runnable, who holds it, step leases and
  offers, and the liveness of lease owners.
- ``HookStore`` (``_hook_store.py``): hooks, created by a run's appends, delivered from outside.
- ``ScheduleStore`` (``_schedule_store.py``): schedules, written by version, fired with their
  runs in one transaction.

A backend implements them all; code that needs storage takes a ``Storage``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from pyworkflow.storage._hook_store import HookStore
from pyworkflow.storage._lease_store import LeaseStore
from pyworkflow.storage._run_store import RunStore
from pyworkflow.storage._schedule_store import ScheduleStore

__all__ = ["ChangeNotifier", "Storage"]


@runtime_checkable
class Storage(RunStore, LeaseStore, HookStore, ScheduleStore, Protocol):
    """What the engine needs from a database: every concern's protocol, and a lifecycle.

    See the module docstring for where each concern's rules are written.
    """

    url: str
    """Where the data lives, password masked, for messages and logs."""

    async def open(self) -> None:
        """Connect and create or check the schema. Idempotent."""

    async def close(self) -> None:
        """Release connections and threads. Idempotent."""


@runtime_checkable
class ChangeNotifier(Protocol):
    """What a storage that can push changes offers besides ``Storage`` (PostgreSQL does).

    Executors subscribe to wake at once instead of at their next poll: ``("runnable", run_id)``
    when an outside writer made a run due (claim it), ``("ended", run_id)`` when a run reached
    a terminal status (its waiters can read the result), and ``("runnable", "*")`` when
    notifications may have been missed (look at storage). Notifications only wake: storage
    stays the truth and polling stays the fallback.
    """

    def subscribe(self, callback: Callable[[str, str], None]) -> None:
        """Call ``callback(kind, run_id)`` for each change, on this event loop."""

    def unsubscribe(self, callback: Callable[[str, str], None]) -> None:
        """Stop calling ``callback``."""
