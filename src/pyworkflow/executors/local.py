"""The local executor: runs workflows in this process, on its asyncio loop.

It drives the runs this process starts at once, and in the background claims runs that are
due in storage (``_claiming``): runs started by other processes, runs whose timer came due,
runs whose process died (seen dead at once, ``_engine.presence``, or by a lapsed lease). A
heartbeat renews the leases of the runs it drives, so a long step keeps its run; a run whose
lease it lost is dropped at once. On shutdown (or when ``asyncio.run`` cancels its tasks) every
driven run is handed back, so another process takes it over immediately instead of waiting for
the lease to expire.

It claims only runs of the queues it serves (``queues``; a run's queue is its workflow's), and
the steps of those queues offered by other workers (``_offered_steps``); a process configured
client only (``client_only``) claims and drives nothing: it stores the runs it starts for a
worker (``_serving``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import uuid
from collections.abc import Collection

from pyworkflow import registry, unfinished
from pyworkflow._engine.clock import Clock, SystemClock
from pyworkflow._engine.driver import RunDriver
from pyworkflow._engine.engine import Engine, EngineSettings
from pyworkflow._engine.first_turn import first_turn
from pyworkflow._engine.periodic import PeriodicWork
from pyworkflow._engine.presence import Presence
from pyworkflow.exceptions import ConfigurationError
from pyworkflow.executors._claiming import HEARTBEAT_TASK, ClaimingWorker
from pyworkflow.executors._driven_runs import DrivenRuns
from pyworkflow.executors._ended_runs import EndedRuns
from pyworkflow.executors._offered_steps import OfferedSteps
from pyworkflow.executors._serving import Serving
from pyworkflow.executors._settling import settle
from pyworkflow.logging import run_logger
from pyworkflow.serialization import Codec
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import NewRun, RunRecord

__all__ = ["LocalExecutor"]

_log = logging.getLogger("pyworkflow.executor")


class LocalExecutor(ClaimingWorker):
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
        drain_seconds: at shutdown, how long the step attempts running then may take to end
            (their outcomes are logged, nothing new starts) before they are cancelled and their
            runs handed back; 0 hands back at once.
        queues: the queues whose runs and steps this process executes; None (the default)
            serves every queue. Runs of other queues that it starts are stored for their
            workers, and steps of other queues (``@step(queue=...)``) offered to theirs.
        client_only: True executes no run at all: no claim loop, and the runs it starts are
            stored for a worker (``run()`` and ``get_workflow_result`` wait for one).
        schedules: fire the due schedules of the workflows registered here (``pyworkflow
            .schedules``), beside the claim loop.
        schedule_poll: the longest the scheduler waits between two looks at storage for
            schedules other processes created (``math.inf``: only at due times, and when a
            schedule changes in this process).

    Raises:
        ConfigurationError: ``queues`` is empty or names a bad queue.
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
        drain_seconds: float = 10.0,
        queues: Collection[str] | None = None,
        client_only: bool = False,
        schedules: bool = True,
        schedule_poll: float = 1.0,
    ) -> None:
        self.serving = Serving.of(queues, client_only=client_only)
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.engine = Engine(
            storage=storage,
            codec=codec,
            clock=clock or SystemClock(),
            owner=owner,
            settings=settings or EngineSettings(),
            on_finished=self._finished,
            on_new_runs=lambda run_ids: self._wake.set(),
            on_signalled=self.wake,
        )
        self.poll_interval = poll_interval
        self.max_concurrent_runs = max_concurrent_runs
        self.retention = retention
        self.retention_interval = retention_interval
        self.drain_seconds = drain_seconds
        self._offers = self.engine.remote = OfferedSteps(self.engine, self.serving)
        self._driven = DrivenRuns(on_done=self._driver_done)
        self._presence = Presence(self.engine, on_lost=self._presence_lost)
        self._ended = EndedRuns()
        self._background: list[asyncio.Task[None]] = []
        self.periodic = PeriodicWork(
            # Retention and schedules (``_engine/periodic.py``), beside the claim loop.
            self.engine,
            retention=retention,
            every=retention_interval,
            schedules=schedules,
            schedule_poll=schedule_poll,
        )
        self._wake = asyncio.Event()
        self._stopping = False

    # --- driving runs ----------------------------------------------------------------------------

    async def create_run(self, new: NewRun) -> tuple[RunRecord, bool]:
        """Store a new run and, room permitting, drive it here at once.

        The workflow's first turn runs before the run is stored, and the commands it issues
        go into the transaction that creates the run: a start costs no commit of its own.
        Past ``max_concurrent_runs`` the run is stored unleased and the claim loop takes it
        when a slot frees. A run of a queue this process does not serve (any run, when it is
        client only) is stored unleased for a worker of that queue, its workflow code not run
        here. Returns the stored run and whether it was created (False: the idempotency key
        named an existing run).
        """
        storage = self.engine.storage
        workflow = registry.get_workflow(new.workflow_name)
        if not self.serving.client_only:
            self.serve_in_background()  # a process that starts runs executes them (DESIGN §3)
        if not self.serving.serves(new.queue):
            self.serving.note_stored_for_worker(new.queue, _log)
            return await storage.create_run(new)
        if not self.has_capacity():
            record, created = await storage.create_run(new)
            self.wake()
            return record, created
        leased = dataclasses.replace(
            new, lease_owner=self.owner, lease_expires_at=self.lease_until()
        )
        driver, first = first_turn(self.engine, leased, workflow)
        if first:
            leased = dataclasses.replace(leased, first_events=first, status=driver.status)
        try:
            record, created = await storage.create_run(leased)
        except BaseException:
            driver.discard()
            raise
        if not created:
            driver.discard()
            self.wake()
        elif not self.engine.lease_holds(leased.lease_expires_at or 0.0):
            # Storage answered too late to be sure of the lease (an outage): hand it back.
            driver.discard()
            await self._hand_back([record.run_id], "created too late to be sure of its lease")
        else:
            self._adopt(run_id=record.run_id, driver=driver)
        return record, created

    def wake(self, run_id: str | None = None) -> None:
        """Look at storage now rather than at the next poll (a run became due or changed).

        Only wakes what already works here: a process that merely writes from outside (a
        cancel, a resume, a hook's payload) does not become a worker by doing so; the process
        that drives the run, or a worker, takes it from storage. Without a run id the
        scheduler looks at the schedules too (one was created or changed here).
        """
        if run_id is not None:
            self._ended.forget(run_id)  # e.g. resumed: it has not ended now
        else:
            self.periodic.poke()  # a schedule may have changed here: look at it now
        driver = self._driven.driver(run_id)
        if driver is not None:
            driver.poke()
            if driver.holds_lease:
                # It looks at the run itself; a claim now would only queue an empty one ahead
                # of its reads (each emit to a waiting stream run wakes its driver). One that
                # lets the run go meanwhile makes the claim loop look when its task ends.
                return
        self._wake.set()

    async def wait_finished(self, run_id: str, within: float | None) -> None:
        """Wait up to ``within`` seconds (None: no limit) for the run to end or its driver to stop.

        Returns at once if the run ended here a moment ago; callers read storage afterwards.
        """
        if run_id in self._ended:
            await asyncio.sleep(0)  # still a yield point for callers that loop on this
            return
        self._subscribe()  # so that a run ending in another process wakes this waiter
        await self._ended.wait(run_id, within)

    def ended_here(self, run_id: str) -> RunRecord | None:
        """The row of a run that ended here a moment ago, as committed; None otherwise.

        Spares the caller of ``get_workflow_result`` a read of what this process just wrote.
        """
        return self._ended.get(run_id)

    def has_capacity(self) -> bool:
        """True while this process drives fewer runs than ``max_concurrent_runs``.

        Always False in a client-only process: it drives nothing.
        """
        return not self.serving.client_only and len(self._driven) < self.max_concurrent_runs

    def is_driving(self, run_id: str) -> bool:
        """True if this process currently drives the run."""
        return run_id in self._driven

    def driver_of(self, run_id: str) -> RunDriver | None:
        """The driver of a run driven here, or None."""
        return self._driven.driver(run_id)

    def serves(self, queue: str) -> bool:
        """True if this process executes runs of ``queue`` (never, when client only)."""
        return not self.serving.client_only and self.serving.serves(queue)

    async def settle(self, run_id: str) -> None:
        """Return once the run has ended or waits on nothing due now (``_settling``)."""
        await settle(self, run_id)

    async def serve(self) -> None:
        """Work until cancelled: claim due runs, drive them, renew their leases.

        Runs of workflows not registered here, or of queues not served here, are never
        claimed: they wait for a worker that has them. Each such workflow is logged once, at
        start.

        Raises:
            ConfigurationError: this executor is client only.
        """
        if self.serving.client_only:
            raise ConfigurationError(
                "this process is configured client only (configure(client_only=True) or "
                "PYWORKFLOW_CLIENT_ONLY=1): it executes no run, so it cannot serve"
            )
        self.serve_in_background()
        self.serving.warn_idle_queues(_log)
        await self.serving.log_foreign_runs(self.engine.storage, _log)
        await asyncio.gather(*self._background)

    async def shutdown(self) -> None:
        """Stop claiming, let running steps finish, hand every run back, and wait for the drivers.

        The step attempts running now get up to ``drain_seconds`` to end; their outcomes are
        logged (so they never run again elsewhere) and nothing new starts. Then every run is
        handed back, steps still running are cancelled (they run again elsewhere, as the
        history shows), and the drivers stop.
        """
        self._stopping = True
        heartbeat = [t for t in self._background if t.get_name() == HEARTBEAT_TASK]
        for task in self._background:
            if task not in heartbeat:  # leases are renewed while running steps finish
                task.cancel()
        drivers = [*self._driven.tasks.values(), *self._offers.tasks]
        if drivers and self.drain_seconds > 0:
            self._driven.drain()
            await asyncio.wait(drivers, timeout=self.drain_seconds)
        self._unsubscribe()
        held = self._driven.held()
        drivers = [*self._driven.tasks.values(), *self._offers.tasks]
        for task in [*drivers, *heartbeat]:
            task.cancel()
        await asyncio.gather(*self._background, *drivers, return_exceptions=True)
        self._background.clear()
        if held:
            # A driver cancelled before its first step never reached its own hand-back: give
            # back whatever this process still holds (release_runs skips runs it no longer
            # owns), so the runs are taken over at once, not after their leases lapse.
            await self._hand_back(held, "shutting down")
        await self._presence.withdraw()

    # --- notifications from storage -------------------------------------------------------------

    def _on_change(self, kind: str, run_id: str) -> None:
        if kind == "ended":
            self._ended.release(run_id)  # they read the run's end from storage
            return
        driver = self._driven.driver(run_id)
        if driver is not None:
            driver.poke()  # an outside writer touched a run driven here: a cancel, a hook ...
        self._wake.set()  # a run became due: claim it now, not at the next poll

    # --- bookkeeping -----------------------------------------------------------------------------

    def _driver_done(self, run_id: str, task: asyncio.Task[None]) -> None:
        driver, current = self._driven.finish(run_id, task)
        if not current:
            return  # claimed again before this callback ran: the newer driver owns it now
        self._ended.release(run_id)  # suspended or lost: waiters look at storage again
        if not task.cancelled() and task.exception() is not None:
            workflow = driver.workflow_name if driver is not None else None
            run_logger(run_id, workflow, name=_log.name).error(
                "the run's driver crashed", exc_info=task.exception()
            )
        claimed = self._driven.take_deferred(run_id)
        if claimed is not None:
            definition = registry.get_workflow(claimed.workflow_name)
            self._adopt(run_id, RunDriver(self.engine, claimed, definition))
            return
        # The claim loop looks again when this run may need it (it let go of a live run: a
        # timer to wake for, or a hand-back) or when a full executor has a slot again. A run
        # that simply ended needs nothing, and sparing the look saves two queries per run.
        ended = run_id in self._ended
        if not ended or len(self._driven) + 1 >= self.max_concurrent_runs:
            self._wake.set()

    def _finished(self, record: RunRecord) -> None:
        self._ended.ended(record)
        unfinished.forget(record.run_id)
        if record.parent_run_id is not None:
            # Storage made the parent due with this end; look now, not at the next poll.
            self.wake(record.parent_run_id)
        for child in self._driven.children_of(record.run_id):
            # The end requested the cancellation of its children; those driven here hear it
            # now (a storage that notifies would tell them too; memory and SQLite do not).
            self.wake(child)
