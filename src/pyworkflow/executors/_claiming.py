"""The background work of a local worker: the claim loop, the heartbeat, and hand-backs.

A base of :class:`~pyworkflow.executors.local.LocalExecutor`, kept apart so that each module
holds one concern: ``local.py`` is what callers use (start, wake, wait, serve, shut down);
this is how the process takes work from storage. The claim loop claims due runs (and offered
steps, ``_offered_steps``) up to ``max_concurrent_runs``, sleeping until woken, until storage
says a run comes due, or ``poll_interval``; the heartbeat renews the leases of the runs driven
here (``_driven_runs``); the presence (``_engine.presence``) shows this process alive and takes
over the runs of processes seen dead. A run this process cannot be sure to hold is handed back.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging

from pyworkflow import registry
from pyworkflow._engine.clock import until_set
from pyworkflow._engine.driver import RunDriver
from pyworkflow._engine.periodic import PeriodicWork
from pyworkflow._engine.presence import Presence
from pyworkflow.exceptions import PyWorkflowError
from pyworkflow.executors._driven_runs import DrivenRuns
from pyworkflow.executors._ended_runs import EndedRuns
from pyworkflow.executors._engine_backed import EngineBacked
from pyworkflow.executors._offered_steps import OfferedSteps
from pyworkflow.executors._serving import Serving

__all__ = ["HEARTBEAT_TASK", "ClaimingWorker"]

_log = logging.getLogger("pyworkflow.executor")  # the local executor's logger, as local.py's

HEARTBEAT_TASK = "pyworkflow-heartbeat"
"""The name of the heartbeat's task: shutdown keeps it running while steps drain."""


class ClaimingWorker(EngineBacked):
    """How LocalExecutor takes work from storage in the background (a base of it)."""

    serving: Serving
    poll_interval: float
    max_concurrent_runs: int
    retention: float | None
    retention_interval: float
    periodic: PeriodicWork
    _offers: OfferedSteps
    _driven: DrivenRuns
    _presence: Presence
    _ended: EndedRuns
    _background: list[asyncio.Task[None]]
    _wake: asyncio.Event
    _stopping: bool

    def serve_in_background(self) -> None:
        """Claim due runs and renew leases in background tasks, as ``serve`` does; idempotent.

        For a process that is a worker besides its own work (the test environment, a process
        that starts runs); ``serve`` itself waits until cancelled. Does nothing in a
        client-only process.
        """
        if self.serving.client_only:
            return
        self._stopping = False
        if self._background and not all(t.done() for t in self._background):
            return
        self._subscribe()
        loop = asyncio.get_running_loop()
        # A fresh context: runs claimed later must not inherit whatever the first caller had
        # set (its trace span above all, which would adopt every claimed turn).
        self._background = [
            loop.create_task(
                self._claim_loop(), name="pyworkflow-claim", context=contextvars.Context()
            ),
            loop.create_task(
                self._heartbeat_loop(), name=HEARTBEAT_TASK, context=contextvars.Context()
            ),
        ]
        periodic = self.periodic
        periodic.retention, periodic.every = self.retention, self.retention_interval
        if periodic.has_work:
            self._background.append(
                loop.create_task(
                    periodic.run_forever(),
                    name="pyworkflow-periodic",
                    context=contextvars.Context(),
                )
            )

    async def _claim_loop(self) -> None:
        engine, presence = self.engine, self._presence
        await presence.show()
        await presence.look(now_or_never=True)  # a restart takes its dead self's runs at once
        while True:
            try:
                await presence.show()  # again, after it was lost
                await presence.look()
                await self._claim_once()
                next_wake = await engine.storage.next_wake_at(
                    workflow_names=registry.workflow_names(), queues=self.serving.queues
                )
            except PyWorkflowError as exc:
                _log.warning("claiming runs failed, retrying: %s", exc)
                next_wake = None
            except Exception:
                # A bug, or a value storage could not read: if this loop ended, so would the
                # worker's serve() and every run it would claim. Log it whole and go on.
                _log.exception("claiming runs failed unexpectedly, retrying")
                next_wake = None
            deadline = engine.clock.now() + self.poll_interval
            if next_wake is not None:
                deadline = min(deadline, next_wake)
            self._wake.clear()
            if self._stopping:
                return
            await until_set(self.engine.clock, self._wake, deadline)

    async def _claim_once(self) -> None:
        free = self.max_concurrent_runs - len(self._driven) - len(self._offers)
        free -= await self._offers.take(free)
        names = registry.workflow_names()
        if free <= 0 or not names:
            return
        engine = self.engine
        claim = functools.partial(
            engine.storage.claim_runs,
            owner=engine.owner,
            now=engine.clock.now(),
            lease_expires_at=engine.lease_until(),
            workflow_names=names,
            queues=self.serving.queues,
        )
        # Suspects (runs taken over again and again without progress) one at a time: when one
        # kills this process, the runs beside it are charged a recovery once, as on any crash,
        # but it alone is charged each time, so it alone reaches the recovery limit.
        claimed = await claim(limit=free, suspects=False)
        if len(claimed) < free and not self._driven.any_suspect():
            claimed += await claim(limit=1, suspects=True)
        if claimed and not engine.lease_holds(claim.keywords["lease_expires_at"]):
            # Storage answered too late to be sure of the leases (an outage): hand them back.
            await self._hand_back([run.run_id for run in claimed], "claimed too late to drive")
            return
        for run in claimed:
            if run.run_id in self._driven:
                # Its driver here let it go a moment ago (or was given up) and still winds
                # down: the new claim is driven when that driver is done, never beside it.
                self._driven.defer(run)
                continue
            # Claims only name workflows registered here, so the lookup cannot miss.
            workflow = registry.get_workflow(run.workflow_name)
            self._adopt(run.run_id, RunDriver(self.engine, run, workflow))

    async def _heartbeat_loop(self) -> None:
        """Renew the leases of the runs driven here; give up any that may lapse (``heartbeat``)."""
        await self._driven.keep_leases(self.engine, _log)

    def _presence_lost(self) -> None:
        leased = self._driven.leased()
        self._driven.give_up(leased, "this worker may be taken for dead: run given up", _log)

    def _adopt(self, run_id: str, driver: RunDriver) -> None:
        self._ended.forget(run_id)
        self._driven.start(run_id, driver)

    async def _hand_back(self, run_ids: list[str], why: str) -> None:
        """Release these runs' leases (those still ours) so that they are due at once."""
        try:
            await self.engine.storage.release_runs(
                owner=self.owner, run_ids=run_ids, now=self.now()
            )
        except PyWorkflowError as exc:
            _log.warning(
                "could not hand %d runs back (%s); their leases will lapse: %s",
                len(run_ids),
                why,
                exc,
            )
