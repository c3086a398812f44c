"""The local executor: runs workflows in this process, on its asyncio loop.

It drives the runs this process starts at once, and in the background claims runs that are
due in storage: runs started by other processes, runs whose timer came due, runs whose lease
expired because their process died. A heartbeat renews the leases of the runs it drives, so a
long step keeps its run; a run whose lease it lost is dropped at once. On shutdown (or when
``asyncio.run`` cancels its tasks) every driven run is handed back, so another process takes it
over immediately instead of waiting for the lease to expire.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import logging
import math
import os
import socket
import uuid
from datetime import UTC, datetime

from pyworkflow import registry, retention
from pyworkflow._engine.clock import Clock, SystemClock
from pyworkflow._engine.context import current_activation, current_step
from pyworkflow._engine.driver import RunDriver
from pyworkflow._engine.engine import Engine, EngineSettings
from pyworkflow._engine.events import EventType, RunStatus
from pyworkflow.exceptions import PyWorkflowError
from pyworkflow.executors._endings import Endings
from pyworkflow.executors._engine_backed import EngineBacked
from pyworkflow.logging import run_logger
from pyworkflow.serialization import Codec
from pyworkflow.storage.protocol import EventRecord, NewRun, RunRecord, Storage

__all__ = ["LocalExecutor"]

_log = logging.getLogger("pyworkflow.executor")


class LocalExecutor(EngineBacked):
    """Runs workflow turns in this process.

    Args:
        storage: where runs live.
        codec: how values are encoded.
        clock: where time comes from (the test toolkit passes a virtual one).
        settings: lease, horizon and recovery limits.
        poll_interval: the longest the claim loop sleeps between two looks at storage
            (``math.inf``: only when woken or when storage says a run comes due).
        max_concurrent_runs: how many runs this process drives at once.
        retention: seconds; when set, runs that ended longer ago than this are deleted in the
            background (``pyworkflow.retention``), at start and then every
            ``retention_interval`` seconds. None keeps every run.
        retention_interval: seconds between two background prunes.
    """

    def __init__(
        self,
        storage: Storage,
        codec: Codec,
        *,
        clock: Clock | None = None,
        settings: EngineSettings | None = None,
        poll_interval: float = 1.0,
        max_concurrent_runs: int = 1000,
        retention: float | None = None,
        retention_interval: float = 3600.0,
    ) -> None:
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.engine = Engine(
            storage=storage,
            codec=codec,
            clock=clock or SystemClock(),
            owner=owner,
            settings=settings or EngineSettings(),
            on_finished=self._finished,
            on_new_runs=lambda run_ids: self._wake.set(),
        )
        self.poll_interval = poll_interval
        self.max_concurrent_runs = max_concurrent_runs
        self.retention = retention
        self.retention_interval = retention_interval
        self._drivers: dict[str, asyncio.Task[None]] = {}
        self._driver_objects: dict[str, RunDriver] = {}
        self._endings = Endings()
        self._background: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._unknown_logged: set[str] = set()
        self._stopping = False

    # --- driving runs ----------------------------------------------------------------------------

    async def create_run(self, new: NewRun) -> tuple[RunRecord, bool]:
        """Store a new run and, room permitting, drive it here at once.

        The workflow's first turn runs before the run is stored, and the commands it issues
        go into the transaction that creates the run: a start costs no commit of its own.
        Past ``max_concurrent_runs`` the run is stored unleased and the claim loop takes it
        when a slot frees. Returns the stored run and whether it was created (False: the
        idempotency key named an existing run).
        """
        storage = self.engine.storage
        workflow = registry.get_workflow(new.workflow_name)
        if not self.has_capacity():
            record, created = await storage.create_run(new)
            self.wake()
            return record, created
        leased = dataclasses.replace(
            new, lease_owner=self.owner, lease_expires_at=self.lease_until()
        )
        driver = RunDriver(self.engine, leased.initial_record(), workflow)
        started = EventRecord(
            new.run_id, 1, EventType.WORKFLOW_STARTED, new.started_payload, new.now
        )
        first = driver.begin_new(started)
        if first:
            leased = dataclasses.replace(leased, first_events=first, status=driver.status)
        try:
            record, created = await storage.create_run(leased)
        except BaseException:
            driver.discard()
            raise
        if created:
            self._adopt(run_id=record.run_id, driver=driver)
        else:
            driver.discard()
            self.wake()
        return record, created

    def _adopt(self, run_id: str, driver: RunDriver) -> None:
        self._ensure_background()
        self._endings.forget(run_id)
        self._driver_objects[run_id] = driver
        # The caller's context minus any step it runs in (a step may start a child run): the
        # driver's own steps and workflow code set their own. A variable is set only when it
        # is not None already: each set gives the context new mapping objects, kept by the run.
        context = contextvars.copy_context()
        if current_step.get() is not None:
            context.run(current_step.set, None)
        if current_activation.get() is not None:
            context.run(current_activation.set, None)
        task = asyncio.get_running_loop().create_task(driver.drive(), name=run_id, context=context)
        self._drivers[run_id] = task
        # A partial, not a lambda: fewer objects per run in flight than a closure and its cells.
        task.add_done_callback(functools.partial(self._driver_done, run_id))

    def wake(self, run_id: str | None = None) -> None:
        """Look at storage now rather than at the next poll (a run became due or changed)."""
        self._ensure_background()
        if run_id is not None:
            self._endings.forget(run_id)  # e.g. resumed: it has not ended now
        driver = self._driver_objects.get(run_id) if run_id else None
        if driver is not None:
            driver.poke()
        self._wake.set()

    async def wait_finished(self, run_id: str, within: float | None) -> None:
        """Wait up to ``within`` seconds (None: no limit) for the run to end or its driver to stop.

        Returns at once if the run ended here a moment ago; callers read storage afterwards.
        """
        if run_id in self._endings:
            await asyncio.sleep(0)  # still a yield point for callers that loop on this
            return
        self._subscribe()  # so that a run ending in another process wakes this waiter
        await self._endings.wait(run_id, within)

    def ended_here(self, run_id: str) -> RunRecord | None:
        """The row of a run that ended here a moment ago, as committed; None otherwise.

        Spares the caller of ``get_workflow_result`` a read of what this process just wrote.
        """
        return self._endings.get(run_id)

    def has_capacity(self) -> bool:
        """True while this process drives fewer runs than ``max_concurrent_runs``."""
        return len(self._drivers) < self.max_concurrent_runs

    def is_driving(self, run_id: str) -> bool:
        """True if this process currently drives the run."""
        return run_id in self._drivers

    async def serve(self) -> None:
        """Work until cancelled: claim due runs, drive them, renew their leases.

        Runs of workflows not registered here are never claimed: they wait for a worker that
        has them. Each such workflow is logged once, at start.
        """
        self._ensure_background()
        await self._log_foreign_runs()
        await asyncio.gather(*self._background)

    async def _log_foreign_runs(self) -> None:
        active = [RunStatus.PENDING, RunStatus.RUNNING, RunStatus.SUSPENDED]
        try:
            runs = await self.engine.storage.list_runs(statuses=active, limit=1000)
        except PyWorkflowError as exc:
            _log.warning("could not list waiting runs: %s", exc)
            return
        known = set(registry.workflow_names())
        for run in runs:
            if run.workflow_name not in known:
                self._log_unknown(run.workflow_name)

    async def shutdown(self) -> None:
        """Stop claiming, hand every driven run back, and wait for the drivers to stop."""
        self._stopping = True
        self._unsubscribe()
        for task in self._background:
            task.cancel()
        held = list(self._drivers)
        drivers = list(self._drivers.values())
        for task in drivers:
            task.cancel()
        await asyncio.gather(*self._background, *drivers, return_exceptions=True)
        self._background.clear()
        if held:
            # A driver cancelled before its first step never reached its own hand-back: give
            # back whatever this process still holds (release_runs skips runs it no longer
            # owns), so the runs are taken over at once, not after their leases lapse.
            try:
                await self.engine.storage.release_runs(
                    owner=self.owner, run_ids=held, now=self.now()
                )
            except PyWorkflowError as exc:
                _log.warning("could not hand runs back at shutdown (leases will lapse): %s", exc)

    # --- background loops ----------------------------------------------------------------------

    def _ensure_background(self) -> None:
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
                self._heartbeat_loop(), name="pyworkflow-heartbeat", context=contextvars.Context()
            ),
        ]
        if self.retention is not None:
            pruning = self._retention_loop(self.retention)
            self._background.append(
                loop.create_task(pruning, name="pyworkflow-prune", context=contextvars.Context())
            )

    async def _claim_loop(self) -> None:
        engine = self.engine
        while True:
            try:
                await self._claim_once()
                next_wake = await engine.storage.next_wake_at(
                    workflow_names=registry.workflow_names()
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
            await self._wait_woken(deadline)

    async def _wait_woken(self, deadline: float) -> None:
        """Wait for ``wake()`` or for the clock to pass ``deadline`` (infinite: no timer).

        The deadline goes through the engine's clock, not an asyncio timeout, so that a virtual
        clock (the test toolkit's) sees it. Not asyncio.wait_for: on 3.11 it can swallow a
        cancellation that arrives together with the wake-up, and shutdown would wait forever.
        """
        if not math.isfinite(deadline):
            await self._wake.wait()
            return
        clock, wake = self.engine.clock, self._wake

        async def ring() -> None:
            await clock.sleep_until(deadline)
            wake.set()

        timer = asyncio.get_running_loop().create_task(ring(), name="pyworkflow-claim-timer")
        try:
            await wake.wait()
        finally:
            timer.cancel()

    async def _claim_once(self) -> None:
        free = self.max_concurrent_runs - len(self._drivers)
        names = registry.workflow_names()
        if free <= 0 or not names:
            return
        engine = self.engine
        claimed = await engine.storage.claim_runs(
            owner=engine.owner,
            now=engine.clock.now(),
            lease_expires_at=engine.lease_until(),
            limit=free,
            workflow_names=names,
        )
        for run in claimed:
            if run.recovery_count:
                run_logger(run.run_id, run.workflow_name, name=_log.name).warning(
                    "taking over run from a dead worker (recovery %d)", run.recovery_count
                )
            # Claims only name workflows registered here, so the lookup cannot miss.
            workflow = registry.get_workflow(run.workflow_name)
            self._adopt(run.run_id, RunDriver(self.engine, run, workflow))

    async def _heartbeat_loop(self) -> None:
        engine = self.engine
        while True:
            await engine.clock.sleep_until(engine.clock.now() + engine.settings.lease_seconds / 3)
            held = list(self._drivers)
            if not held:
                continue
            try:
                kept = await engine.storage.renew_leases(
                    owner=engine.owner,
                    run_ids=held,
                    now=engine.clock.now(),
                    lease_expires_at=engine.lease_until(),
                )
            except PyWorkflowError as exc:
                _log.warning("renewing leases failed: %s", exc)
                continue
            for run_id in set(held) - kept:
                task = self._drivers.get(run_id)
                driver = self._driver_objects.get(run_id)
                if driver is not None and not driver.holds_lease:
                    continue  # it released the lease itself, with its last commit
                if task is not None:
                    workflow = driver.workflow_name if driver is not None else None
                    run_logger(run_id, workflow, name=_log.name).warning(
                        "lost the lease of the run; dropping it"
                    )
                    task.cancel()

    async def _retention_loop(self, keep: float) -> None:
        """Delete the runs that ended more than ``keep`` seconds ago, now and then."""
        clock = self.engine.clock
        while True:
            bound = clock.now() - keep
            try:
                deleted = await retention.delete_ended_runs(self.engine.storage, ended_before=bound)
            except PyWorkflowError as exc:
                _log.warning("pruning ended runs failed, trying again later: %s", exc)
            else:
                if deleted:
                    before = datetime.fromtimestamp(bound, UTC).isoformat(timespec="seconds")
                    _log.info("retention: deleted %d runs that ended before %s", deleted, before)
            await clock.sleep_until(clock.now() + self.retention_interval)

    # --- notifications from storage -------------------------------------------------------------

    def _on_change(self, kind: str, run_id: str) -> None:
        if kind == "ended":
            self._endings.release(run_id)  # they read the run's end from storage
            return
        driver = self._driver_objects.get(run_id)
        if driver is not None:
            driver.poke()  # an outside writer touched a run driven here: a cancel, a hook ...
        self._wake.set()  # a run became due: claim it now, not at the next poll

    # --- bookkeeping -----------------------------------------------------------------------------

    def _log_unknown(self, name: str) -> None:
        if name not in self._unknown_logged:
            self._unknown_logged.add(name)
            _log.warning(
                "workflow %r is not registered here; leaving its runs to a worker that has it",
                name,
                extra={"workflow": name},
            )

    def _driver_done(self, run_id: str, task: asyncio.Task[None]) -> None:
        if self._drivers.get(run_id) is not task:
            # The run was claimed again (e.g. a child's end woke it) before this callback ran:
            # the newer driver owns the bookkeeping now.
            return
        del self._drivers[run_id]
        driver = self._driver_objects.pop(run_id, None)
        self._endings.release(run_id)  # suspended or lost: waiters look at storage again
        if not task.cancelled() and task.exception() is not None:
            workflow = driver.workflow_name if driver is not None else None
            run_logger(run_id, workflow, name=_log.name).error(
                "the run's driver crashed", exc_info=task.exception()
            )
        # The claim loop looks again when this run may need it (it let go of a live run: a
        # timer to wake for, or a hand-back) or when a full executor has a slot again. A run
        # that simply ended needs nothing, and sparing the look saves two queries per run.
        ended = run_id in self._endings
        if not ended or len(self._drivers) + 1 >= self.max_concurrent_runs:
            self._wake.set()

    def _finished(self, record: RunRecord) -> None:
        self._endings.ended(record)
        if record.parent_run_id is not None:
            # Storage made the parent due with this end; look now, not at the next poll.
            self.wake(record.parent_run_id)
