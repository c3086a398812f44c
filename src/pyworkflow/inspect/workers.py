"""The live workers of a storage and what they hold, and the queues' unfinished runs.

Every process that executes runs announces itself in storage (``Storage.list_owners``: its
row, with a lock that dies with the process), so any reader can tell which are alive now and,
from the runs' leases, how many runs each holds. A queue's unfinished runs are held by a
worker, due and waiting for one, or waiting for a timer, a hook or a child. Nothing is written.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from pyworkflow.events import RunStatus
from pyworkflow.inspect.values import iso
from pyworkflow.storage import RunCursor, RunRecord, Storage

__all__ = ["QueueView", "WorkerView", "live_workers", "queue_views"]

_UNFINISHED = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.SUSPENDED)
_SCAN = 1000


@dataclass(frozen=True, slots=True)
class WorkerView:
    """A live worker (or a process executing runs).

    Attributes:
        owner: its owner name, the ``lease_owner`` of the runs it holds.
        host, pid: where it runs.
        started_at: when it announced itself (epoch seconds), None where not kept.
        runs_held: how many unfinished runs it holds a lease on now.
    """

    owner: str
    host: str
    pid: int
    started_at: float | None
    runs_held: int

    def to_json(self) -> dict[str, Any]:
        """``owner``, ``host``, ``pid``, ``started_at`` (ISO 8601, UTC), ``runs_held``."""
        return {
            "owner": self.owner,
            "host": self.host,
            "pid": self.pid,
            "started_at": iso(self.started_at),
            "runs_held": self.runs_held,
        }


@dataclass(frozen=True, slots=True)
class QueueView:
    """A queue's unfinished runs: ``held`` by a worker, ``waiting_for_worker``, ``later``."""

    queue: str
    held: int
    waiting_for_worker: int
    later: int

    def to_json(self) -> dict[str, Any]:
        """``queue``, ``held``, ``waiting_for_worker``, ``later``."""
        return {
            "queue": self.queue,
            "held": self.held,
            "waiting_for_worker": self.waiting_for_worker,
            "later": self.later,
        }


async def _unfinished(storage: Storage) -> list[RunRecord]:
    found: list[RunRecord] = []
    cursor = None
    while True:
        page = await storage.list_runs(statuses=_UNFINISHED, limit=_SCAN, before=cursor)
        found += page
        if len(page) < _SCAN:
            return found
        cursor = RunCursor(page[-1].created_at, page[-1].run_id)


def _leased(run: RunRecord, now: float) -> bool:
    return run.lease_owner is not None and (run.lease_expires_at or 0.0) > now


async def live_workers(storage: Storage, now: float | None = None) -> list[WorkerView]:
    """The workers storage sees alive now, each with the number of runs it holds."""
    now = time.time() if now is None else now
    owners = await storage.list_owners()
    held = Counter(r.lease_owner for r in await _unfinished(storage) if _leased(r, now))
    return [
        WorkerView(o.owner, o.host, o.pid, o.started_at, held.get(o.owner, 0))
        for o in owners
        if o.alive
    ]


async def queue_views(storage: Storage, now: float | None = None) -> list[QueueView]:
    """Per queue (by name), its unfinished runs: held, due and waiting for a worker, later."""
    now = time.time() if now is None else now
    counts: dict[str, list[int]] = {}
    for run in await _unfinished(storage):
        row = counts.setdefault(run.queue, [0, 0, 0])
        if _leased(run, now):
            row[0] += 1
        elif run.wake_at is not None and run.wake_at <= now:
            row[1] += 1
        else:
            row[2] += 1
    return [QueueView(q, *counts[q]) for q in sorted(counts)]
