"""The sweeper: a thread in each Celery worker's main process that looks at storage.

Storage, not the broker, is the truth (DESIGN §2.5). Durable timers are stored wake-up times,
never ETA messages (which Redis delivers again after its visibility timeout and which vanish
with a purged queue), and a message can be lost with a broker restarted without persistence.
So the sweeper asks storage, every ``PYWORKFLOW_SWEEP_INTERVAL`` seconds (default 1) or at
once when PostgreSQL notifies it, which runs came due, and sends ``advance`` for each.
``Storage.take_due_runs`` hands each due run to one sweeper only, and makes it due again after
the executor's dispatch grace should that message be lost too.

It runs in the main process, after the pool has forked, on its own event loop and storage
connection, which no pool process uses. Should storage fail it (a database still starting when
the worker does, an error the sweep did not expect), the sweeper starts again after a pause
rather than leave the worker running without it: timers and lost messages would wait forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

from celery import bootsteps

from pyworkflow import config
from pyworkflow._backoff import Backoff
from pyworkflow._engine.periodic import PeriodicWork

__all__ = ["SweeperStep"]

_log = logging.getLogger("pyworkflow.celery")

_FIRST_PAUSE = 0.5
_LONGEST_PAUSE = 10.0


class SweeperStep(bootsteps.StartStopStep):  # type: ignore[misc]  # celery is untyped
    """A worker bootstep that runs ``CeleryExecutor.serve`` in a thread."""

    requires = ("celery.worker.components:Pool",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._interval = config.sweep_interval()

    def start(self, parent: Any) -> None:
        """Start the sweeper thread (not when ``PYWORKFLOW_SWEEP_INTERVAL`` is 0)."""
        if self._interval <= 0:
            _log.info("sweeper off (PYWORKFLOW_SWEEP_INTERVAL=0)")
            return
        app = parent.app
        self._thread = threading.Thread(
            target=self._run, args=(app,), name="pyworkflow-sweeper", daemon=True
        )
        self._thread.start()

    def stop(self, parent: Any) -> None:
        """Cancel the sweep and wait a little for the thread to close its storage."""
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self, app: Any) -> None:
        self._loop = loop = asyncio.new_event_loop()
        try:
            self._task = loop.create_task(self._sweep_until_stopped(app))
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(self._task)
        except Exception:
            _log.exception("the sweeper stopped")
        finally:
            loop.close()

    async def _sweep_until_stopped(self, app: Any) -> None:
        """Sweep; after a failure (storage unreachable, say) start again, with backoff."""
        pauses = Backoff(_FIRST_PAUSE, _LONGEST_PAUSE)
        while True:
            pause = pauses.next()
            try:
                await self._sweep(app)
            except Exception as exc:  # anything: a dead sweeper would fail silently
                _log.warning(
                    "the sweeper failed (%s: %s); starting it again in %gs",
                    type(exc).__name__,
                    exc,
                    pause,
                )
            await asyncio.sleep(pause)

    async def _sweep(self, app: Any) -> None:
        from pyworkflow.executors.celery.executor import CeleryExecutor

        storage = config.build_storage()
        try:
            await storage.open()
            executor = CeleryExecutor(
                storage,
                config.build_codec(),
                app,
                settings=config.engine_settings(),
                dispatch_grace=config.dispatch_grace(),
                sweep_interval=self._interval,
            )
            _log.info("sweeper serving %s every %gs", storage.url, self._interval)
            await _store_declared_schedules(executor)
            periodic = PeriodicWork(executor.engine, retention=config.retention())
            beside = asyncio.create_task(periodic.run_forever()) if periodic.has_work else None
            try:
                await executor.serve()
            finally:
                if beside is not None:
                    beside.cancel()
                await executor.shutdown()
        finally:
            await storage.close()


async def _store_declared_schedules(executor: Any) -> None:
    """Store what ``@scheduled_workflow`` declared here, as ``pyworkflow worker run`` does.

    So a Celery deployment fires the schedules its modules declare with no other process
    (their documentation's ``worker run --beat``). Through the public call, on this thread's
    storage and executor; a failure is logged and the sweep goes on (the schedules already
    stored still fire).
    """
    from pyworkflow.runtime import Runtime, use_runtime
    from pyworkflow.schedules import activate_scheduled_workflows

    runtime = Runtime(
        storage=executor.engine.storage,
        codec=executor.engine.codec,
        executor=executor,
        loop=asyncio.get_running_loop(),
    )
    try:
        with use_runtime(runtime):
            declared = await activate_scheduled_workflows()
    except Exception as exc:  # e.g. two workers storing one schedule at once
        _log.warning("storing the declared schedules failed (%s: %s)", type(exc).__name__, exc)
        return
    if declared:
        _log.info("schedules declared here: %s", ", ".join(declared))
