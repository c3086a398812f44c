"""What the executor sees of a run's driver: its run, status and lease, and its next commit.

The executor decides from these which runs it drives, which it may take on and when a waiter
for a run's status should look again; only :class:`~pyworkflow._engine.driver.RunDriver`
(this class's one subclass) changes them, at its commits.
"""

from __future__ import annotations

import asyncio
import contextlib

from pyworkflow.events import RunStatus
from pyworkflow.storage.records import SUSPECT_RECOVERIES, RunRecord

__all__ = ["DriverView"]


class DriverView:
    """A driver's state as its executor reads it.

    Args:
        run: the run's row, as leased.
        turning: whether it starts out working on something (see :attr:`turning`).
    """

    def __init__(self, run: RunRecord, *, turning: bool) -> None:
        self._run = run
        self._status = run.status
        self._signals_seen = run.signal_seq
        self._holds_lease = True
        self._suspect = run.recovery_count >= SUSPECT_RECOVERIES
        self._turning = turning
        self._changed: asyncio.Event | None = None  # made by a status_changed() waiter

    @property
    def suspect(self) -> bool:
        """True while the run is a suspect (``SUSPECT_RECOVERIES``) that has made no progress.

        Taken over again and again without logging an outcome, it may be what kills its
        workers; the executor drives one such run at a time, so that a crash is charged to it
        and not to every run beside it.
        """
        return self._suspect

    @property
    def holds_lease(self) -> bool:
        """False once the driver's last commit released the run (it ended or suspended)."""
        return self._holds_lease

    @property
    def run_id(self) -> str:
        """The run this driver owns."""
        return self._run.run_id

    @property
    def workflow_name(self) -> str:
        """The workflow of the run this driver owns."""
        return self._run.workflow_name

    @property
    def parent_run_id(self) -> str | None:
        """The run that started this one as its child, if any."""
        return self._run.parent_run_id

    @property
    def status(self) -> RunStatus:
        """The run's status as this driver last wrote it (or will, for a run being created)."""
        return self._status

    @property
    def turning(self) -> bool:
        """True while it works on something that arrived (its status may be about to change)."""
        return self._turning

    @property
    def signals_seen(self) -> int:
        """The run row's ``signal_seq`` this driver has taken in (cancels, hooks, children)."""
        return self._signals_seen

    async def status_changed(self, within: float) -> None:
        """Wait up to ``within`` seconds for the next commit (or the driver's end)."""
        if self._changed is None:
            self._changed = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), within)

    def _status_moved(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()
