"""Celery beat's scheduler class for pyworkflow's schedules.

Every Celery worker's sweeper already fires the schedules of its workflows (``sweeper.py``), so
a deployment needs no beat process. This class serves those who run one anyway, as the
pyworkflow documentation shows::

    celery -A pyworkflow.celery beat --scheduler pyworkflow.celery.scheduler:PyWorkflowScheduler
    pyworkflow worker run --executor celery --beat    # a worker with beat embedded

Beat imports the workflows (``PYWORKFLOW_MODULES``), opens the storage (``PYWORKFLOW_STORAGE``),
stores the schedules ``@scheduled_workflow`` declared, and at each tick fires the due ones
through the same engine call as every other scheduler (``_engine/scheduler``), sending each new
run's ``advance`` to the workers. Exactly once holds as everywhere: a slot is consumed in the
transaction that creates its run, so beat and the sweepers may all fire at once and every slot
still starts one run.

It extends Celery's in-memory ``Scheduler``: the app's own ``beat_schedule`` entries still run.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from celery import beat

from pyworkflow import config, registry
from pyworkflow._engine.scheduler import Scheduler
from pyworkflow.exceptions import PyWorkflowError
from pyworkflow.runtime import get_runtime, shutdown
from pyworkflow.schedules import activate_scheduled_workflows

__all__ = ["BeatScheduler"]

_log = logging.getLogger("pyworkflow.celery")

# Never tick back to back: a schedule that stays due (its fire keeps failing) must not spin.
_LEAST_WAIT = 0.05


class BeatScheduler(beat.Scheduler):  # type: ignore[misc]  # celery is untyped
    """Fires pyworkflow's schedules from ``celery beat`` (``--scheduler`` this class).

    Attributes:
        poll_interval: the longest pause, in seconds, between two looks at storage, which is
            how soon beat sees a schedule created or changed by another process (default 1).
    """

    poll_interval = 1.0

    def __init__(self, app: Any, *args: Any, **kwargs: Any) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scheduler: Scheduler | None = None
        self._storage_url = ""
        super().__init__(app, *args, **kwargs)

    def setup_schedule(self) -> None:
        """The app's ``beat_schedule``, then pyworkflow's: storage opened, schedules stored."""
        super().setup_schedule()
        # One loop for beat's life: the storage's connections live on it (DESIGN §3's bridge).
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._open())

    async def _open(self) -> None:
        registry.import_modules(config.configured_modules())
        # A client of the workers: it stores runs and sends their tasks, executes nothing.
        config.configure(executor="celery", celery_app=self.app, client_only=True)
        runtime = await get_runtime()
        self._storage_url = runtime.storage.url
        self._scheduler = Scheduler(runtime.executor.engine)  # type: ignore[attr-defined]
        declared = await activate_scheduled_workflows()
        _log.info(
            "beat fires the schedules of %s in %s%s",
            ", ".join(registry.workflow_names()) or "no workflow (set PYWORKFLOW_MODULES)",
            self._storage_url,
            f"; declared here: {', '.join(declared)}" if declared else "",
        )

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """Celery's entries due now, then pyworkflow's; seconds until either needs a look."""
        theirs: float = super().tick(*args, **kwargs)
        return min(theirs, self._fire())

    def _fire(self) -> float:
        if self._loop is None or self._scheduler is None:  # set up lazily: nothing of ours yet
            return self.poll_interval
        try:
            next_due = self._loop.run_until_complete(self._scheduler.tick())
        except PyWorkflowError as exc:  # storage down, say: try again at the next poll
            _log.warning("firing schedules failed, trying again: %s", exc)
            return self.poll_interval
        if next_due is None:
            return self.poll_interval
        until = next_due - self._scheduler.engine.clock.now()
        return max(_LEAST_WAIT, min(self.poll_interval, until))

    def close(self) -> None:
        """Close Celery's side, then the storage and the loop."""
        super().close()
        loop, self._loop = self._loop, None
        if loop is not None and not loop.is_closed():
            loop.run_until_complete(shutdown())
            loop.close()

    @property
    def info(self) -> str:
        """What beat's banner shows for its scheduler."""
        return f"pyworkflow schedules in {self._storage_url or 'storage (not opened yet)'}"
