"""The runs this process drives: one driver task per run, never two.

The local executor decides which runs to drive; this table keeps their tasks and drivers
(and renews their leases), the runs claimed again while their previous driver here still
winds down (each is driven once that driver is done), and which of them are children of
which, so that a parent's end reaches the children it cancels.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Callable, Iterable

from pyworkflow._engine.context import current_activation, current_step
from pyworkflow._engine.driver import RunDriver
from pyworkflow._engine.engine import Engine
from pyworkflow._engine.heartbeat import keep_leases
from pyworkflow.logging import run_logger
from pyworkflow.storage.records import RunRecord

__all__ = ["DrivenRuns"]


class DrivenRuns:
    """Driver tasks by run id, with the runs waiting for theirs to wind down."""

    def __init__(self, on_done: Callable[[str, asyncio.Task[None]], None]) -> None:
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._drivers: dict[str, RunDriver] = {}
        self._claimed_meanwhile: dict[str, RunRecord] = {}
        self._children: dict[str, set[str]] = {}
        self._on_done = on_done

    def __len__(self) -> int:
        return len(self.tasks)

    def __contains__(self, run_id: str) -> bool:
        return run_id in self.tasks

    def driver(self, run_id: str | None) -> RunDriver | None:
        """The driver of ``run_id`` here, if any."""
        return self._drivers.get(run_id) if run_id is not None else None

    def any_suspect(self) -> bool:
        """True if a run driven here is a suspect (``RunDriver.suspect``)."""
        return any(d.suspect for d in self._drivers.values())

    def start(self, run_id: str, driver: RunDriver) -> None:
        """Drive the run in a task of its own; ``on_done`` is called when the task ends."""
        self._drivers[run_id] = driver
        if (parent := driver.parent_run_id) is not None:
            self._children.setdefault(parent, set()).add(run_id)
        # The caller's context minus any step it runs in (a step may start a child run): the
        # driver's own steps and workflow code set their own. A variable is set only when it
        # is not None already: each set gives the context new mapping objects, kept by the run.
        context = contextvars.copy_context()
        if current_step.get() is not None:
            context.run(current_step.set, None)
        if current_activation.get() is not None:
            context.run(current_activation.set, None)
        task = asyncio.get_running_loop().create_task(driver.drive(), name=run_id, context=context)
        self.tasks[run_id] = task
        # A partial, not a lambda: fewer objects per run in flight than a closure and its cells.
        task.add_done_callback(functools.partial(self._on_done, run_id))

    def defer(self, run: RunRecord) -> None:
        """Drive ``run`` (claimed again) once its driver here, which let it go, is done."""
        self._claimed_meanwhile[run.run_id] = run

    def finish(self, run_id: str, task: asyncio.Task[None]) -> tuple[RunDriver | None, bool]:
        """Forget the ended ``task``; its driver, and False if a newer driver owns the run.

        A stale task (the run was claimed again before this callback ran) changes nothing.
        """
        if self.tasks.get(run_id) is not task:
            return None, False
        del self.tasks[run_id]
        driver = self._drivers.pop(run_id, None)
        if driver is not None and (parent := driver.parent_run_id) is not None:
            siblings = self._children.get(parent)
            if siblings is not None:
                siblings.discard(run_id)
        return driver, True

    def take_deferred(self, run_id: str) -> RunRecord | None:
        """The claim of ``run_id`` that waited for its previous driver, if any."""
        return self._claimed_meanwhile.pop(run_id, None)

    def children_of(self, parent_run_id: str) -> Iterable[str]:
        """The children of an ended parent driven here (forgotten as such)."""
        return self._children.pop(parent_run_id, ())

    def leased(self) -> list[str]:
        """The runs whose drivers here hold their leases (for the heartbeat)."""
        return [run_id for run_id, d in self._drivers.items() if d.holds_lease]

    def drain(self) -> None:
        """Ask every driver to let its run go once its running steps have ended."""
        for driver in self._drivers.values():
            driver.drain()

    def held(self) -> list[str]:
        """Every run this process may still hold, deferred claims included (forgotten)."""
        held = [*self.tasks, *self._claimed_meanwhile]
        self._claimed_meanwhile.clear()
        return held

    async def keep_leases(self, engine: Engine, log: logging.Logger) -> None:
        """Renew the leases of the runs driven here until cancelled (``_engine.heartbeat``).

        Runs whose leases may lapse before a renewal gets through are given up.
        """

        async def renew(run_ids: list[str], expiry: float) -> set[str]:
            now = engine.clock.now()
            return await engine.storage.renew_leases(
                owner=engine.owner, run_ids=run_ids, now=now, lease_expires_at=expiry
            )

        await keep_leases(
            clock=engine.clock,
            lease_seconds=engine.settings.lease_seconds,
            held=self.leased,
            renew=renew,
            lost=lambda run_ids, why: self.give_up(run_ids, why, log),
            log=log,
        )

    def give_up(self, run_ids: Iterable[str], why: str, log: logging.Logger) -> None:
        """Stop driving these runs at once: their drivers and steps are cancelled."""
        for run_id in run_ids:
            task = self.tasks.get(run_id)
            driver = self._drivers.get(run_id)
            if task is None or task.done() or task.cancelling():
                continue
            if driver is not None and not driver.holds_lease:
                continue  # it released the lease itself, with its last commit
            workflow = driver.workflow_name if driver is not None else None
            run_logger(run_id, workflow, name=log.name).warning("%s", why)
            task.cancel()
