"""Work a process does now and then besides driving runs: retention and schedules.

Both executors start it the same way, on the engine's clock: the local executor beside its
claim loop, the Celery sweeper beside its sweep. What a round does is the engine's to say;
where and when it runs is the executor's. A round that fails is logged and tried again at the
next one: periodic work never stops the process that does it.

The two keep their own cadences: retention once every ``every`` seconds (an hour), schedules
at each schedule's due time (``_engine/scheduler``), looking at storage at least every
``schedule_poll`` seconds for schedules that other processes created or changed, and at once
when poked (a schedule was created or changed in this process).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from pyworkflow import retention
from pyworkflow._engine.clock import until_set
from pyworkflow._engine.engine import Engine
from pyworkflow._engine.scheduler import Scheduler
from pyworkflow.exceptions import PyWorkflowError

__all__ = ["PeriodicWork"]

_log = logging.getLogger("pyworkflow.executor")

# After a tick that left something due (a fire lost to a concurrent writer), look again this
# soon, not at once: a schedule that cannot fire must not make the loop spin.
_AGAIN = 0.05


class PeriodicWork:
    """The rounds of periodic work of one process.

    Args:
        engine: this process's engine (its storage and clock).
        retention: seconds; runs that ended longer ago than this are deleted, with their rows
            (``pyworkflow.retention``). None keeps every run.
        every: seconds between two retention rounds.
        schedules: fire the due schedules of the workflows registered here.
        schedule_poll: the longest the scheduler waits between two looks at storage
            (``math.inf``: only at due times and when poked: a process alone with its storage,
            as the test environment is).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        retention: float | None,
        every: float = 3600.0,
        schedules: bool = True,
        schedule_poll: float = 1.0,
    ) -> None:
        self.engine = engine
        self.retention = retention
        self.every = every
        self.schedules = schedules
        self.schedule_poll = schedule_poll
        self.scheduler = Scheduler(engine)
        self._poke = asyncio.Event()

    @property
    def has_work(self) -> bool:
        """False when a round would do nothing (no retention, no schedules): no need to run it."""
        return self.retention is not None or self.schedules

    def poke(self) -> None:
        """Look at the schedules now: one was created, changed or triggered in this process."""
        self._poke.set()

    async def run_forever(self) -> None:
        """Retention and schedules, each at its own cadence, until cancelled."""
        loops = []
        if self.retention is not None:
            loops.append(self._retention_forever())
        if self.schedules:
            loops.append(self._schedules_forever())
        await asyncio.gather(*loops)

    async def _retention_forever(self) -> None:
        clock = self.engine.clock
        while True:
            await self.run_once()
            await clock.sleep_until(clock.now() + self.every)

    async def _schedules_forever(self) -> None:
        clock = self.engine.clock
        while True:
            self._poke.clear()
            try:
                next_due = await self.scheduler.tick()
            except PyWorkflowError as exc:
                _log.warning("firing schedules failed, trying again: %s", exc)
                next_due = None
            except Exception:
                # A bug, or a value storage could not read: a dead scheduler would fire no
                # schedule again. Log it whole and go on.
                _log.exception("firing schedules failed unexpectedly, trying again")
                next_due = None
            now = clock.now()
            deadline = now + self.schedule_poll
            if next_due is not None:
                deadline = min(deadline, next_due if next_due > now else now + _AGAIN)
            await until_set(clock, self._poke, deadline)

    async def run_once(self) -> None:
        """One retention round: delete the runs past retention."""
        if self.retention is None:
            return
        bound = self.engine.clock.now() - self.retention
        try:
            deleted = await retention.delete_ended_runs(self.engine.storage, ended_before=bound)
        except PyWorkflowError as exc:
            _log.warning("pruning ended runs failed, trying again later: %s", exc)
            return
        if deleted:
            before = datetime.fromtimestamp(bound, UTC).isoformat(timespec="seconds")
            _log.info("retention: deleted %d runs that ended before %s", deleted, before)
