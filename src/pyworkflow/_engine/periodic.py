"""Work a process does now and then besides driving runs: retention now, schedules next.

Both executors start it the same way, on the engine's clock: the local executor beside its
claim loop, the Celery sweeper beside its sweep. What a round does is the engine's to say;
where and when it runs is the executor's. A round that fails is logged and tried again at the
next one: periodic work never stops the process that does it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from pyworkflow import retention
from pyworkflow._engine.engine import Engine
from pyworkflow.exceptions import PyWorkflowError

__all__ = ["PeriodicWork"]

_log = logging.getLogger("pyworkflow.executor")


class PeriodicWork:
    """The rounds of periodic work of one process.

    Args:
        engine: this process's engine (its storage and clock).
        retention: seconds; runs that ended longer ago than this are deleted, with their rows
            (``pyworkflow.retention``). None keeps every run.
        every: seconds between two rounds.
    """

    def __init__(self, engine: Engine, *, retention: float | None, every: float = 3600.0) -> None:
        self.engine = engine
        self.retention = retention
        self.every = every

    @property
    def has_work(self) -> bool:
        """False when a round would do nothing (no retention configured): no need to run it."""
        return self.retention is not None

    async def run_forever(self) -> None:
        """A round now, then one every ``every`` seconds of the engine's clock, until cancelled."""
        clock = self.engine.clock
        while True:
            await self.run_once()
            await clock.sleep_until(clock.now() + self.every)

    async def run_once(self) -> None:
        """One round: delete the runs past retention."""
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
