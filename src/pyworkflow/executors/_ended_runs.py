"""Runs that ended in this process a moment ago, and the callers waiting to hear of an end.

``get_workflow_result`` waits here rather than polling storage: the driver that ends a run
here (or a storage notification of an end elsewhere) releases its waiters, and the run's row,
as just committed, is kept for a while so the caller need not read back what was written.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from pyworkflow.storage.records import RunRecord

__all__ = ["EndedRuns"]

# How many ended runs are remembered, for callers that ask just after the end.
_REMEMBERED = 10_000


class EndedRuns:
    """Recently ended runs (their committed rows) and the futures of callers waiting."""

    def __init__(self) -> None:
        self._rows: OrderedDict[str, RunRecord] = OrderedDict()
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}

    def __contains__(self, run_id: str) -> bool:
        return run_id in self._rows

    def get(self, run_id: str) -> RunRecord | None:
        """The row of a run that ended here a moment ago, or None."""
        return self._rows.get(run_id)

    def forget(self, run_id: str) -> None:
        """The run lives again (resumed, driven anew): its end is no longer news."""
        self._rows.pop(run_id, None)

    def ended(self, record: RunRecord) -> None:
        """Remember the run's end and release its waiters."""
        self._rows[record.run_id] = record
        if len(self._rows) > _REMEMBERED:
            self._rows.popitem(last=False)
        self.release(record.run_id)

    def release(self, run_id: str) -> None:
        """Wake everyone waiting on the run (it ended, or its driver here stopped)."""
        for waiter in self._waiters.pop(run_id, []):
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, run_id: str, within: float | None) -> None:
        """Wait up to ``within`` seconds (None: no limit) for :meth:`release` of the run."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(run_id, []).append(waiter)
        try:
            if within is None:
                await waiter  # no timer armed: a burst of waiting callers costs none each
            else:
                async with asyncio.timeout(within):
                    await waiter
        except TimeoutError:
            pass
        finally:
            waiters = self._waiters.get(run_id, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._waiters.pop(run_id, None)
