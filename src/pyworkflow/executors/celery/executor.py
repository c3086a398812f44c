"""``CeleryExecutor``: runs' turns and steps happen in Celery tasks, wherever a worker takes them.

Two tasks carry everything, and their messages name ids only (DESIGN §2.5; payloads stay in
storage):

- ``pyworkflow.advance(run_id)``: take the run's lease and drive it as far as it goes here:
  replay, record, run ``force_local`` steps inline, send the other steps away, let it go.
- ``pyworkflow.step(run_id, step_id, attempt)``: execute one attempt of a step under a step
  lease, then take the run's lease and drive the turn that logs the outcome (and sends the
  next step). A step costs one broker hop.

The same class serves a client process (``start`` stores the run and sends ``advance``;
``get_workflow_result`` waits on storage, woken by notifications where storage has them) and
the sweeper (``serve``): storage, not the broker, is the truth, so a periodic look at storage
sends ``advance`` for every run that came due: a timer, a hook's payload, a child's end, a
lease that lapsed because a worker died, or a watchdog of steps whose messages were lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pyworkflow import registry
from pyworkflow._engine import remote_attempts
from pyworkflow._engine.clock import Clock, SystemClock
from pyworkflow._engine.engine import Engine, EngineSettings
from pyworkflow._engine.first_turn import first_turn
from pyworkflow._engine.leased import drive_leased
from pyworkflow._engine.presence import Presence
from pyworkflow._engine.remote import RemoteStep, StepSender, sent_away
from pyworkflow.events import RunStatus
from pyworkflow.exceptions import PyWorkflowError
from pyworkflow.executors._ended_runs import EndedRuns
from pyworkflow.executors._engine_backed import EngineBacked
from pyworkflow.queues import DEFAULT_QUEUE  # where both tasks go unless a step names its own
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import NewRun, RunRecord

if TYPE_CHECKING:
    from celery import Celery

    from pyworkflow.serialization import Codec
    from pyworkflow.step import StepDefinition

__all__ = ["ADVANCE_TASK", "DEFAULT_QUEUE", "STEP_TASK", "CeleryExecutor"]

_log = logging.getLogger("pyworkflow.celery")

ADVANCE_TASK = "pyworkflow.advance"
"""The orchestration task: ``(run_id)``."""
STEP_TASK = "pyworkflow.step"
"""The step task: ``(run_id, step_id, attempt)``."""

_SWEEP_BATCH = 500
_SHORTEST_PAUSE = 0.05


class CeleryExecutor(EngineBacked):
    """Runs workflows on Celery workers.

    Args:
        storage: where runs live; shared by every worker and client.
        codec: how values are encoded.
        app: the Celery app whose broker carries the tasks (``pyworkflow.celery.app``, or
            the user's own app after ``pyworkflow.executors.celery.install(app)``).
        clock: where time comes from.
        settings: lease, horizon and recovery limits (``lease_seconds`` is also the step
            lease: a worker that dies mid-step has the step sent again once it lapses).
        dispatch_grace: seconds a sent task may wait in the broker's queue before storage
            sends it again (a message lost with a restarted broker costs at most this).
        sweep_interval: the longest pause of ``serve`` between two looks at storage.
        client_only: True runs no workflow code at ``create_run`` (no first turn here): the
            run is stored and ``advance`` sent, and a worker takes its first turn.
    """

    def __init__(
        self,
        storage: Storage,
        codec: Codec,
        app: Celery,
        *,
        clock: Clock | None = None,
        settings: EngineSettings | None = None,
        dispatch_grace: float = 60.0,
        sweep_interval: float = 1.0,
        client_only: bool = False,
    ) -> None:
        owner = f"celery:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.app = app
        self.engine = Engine(
            storage=storage,
            codec=codec,
            clock=clock or SystemClock(),
            owner=owner,
            settings=settings or EngineSettings(),
            on_finished=self._finished,
            on_new_runs=self._new_runs,
            on_signalled=self.wake,
            remote=self,
        )
        self._dispatch_grace = dispatch_grace
        self.sweep_interval = sweep_interval
        self.client_only = client_only
        self._ended = EndedRuns()
        self._woken = asyncio.Event()
        # Shown by a worker's pool process at its first task (a client never takes leases);
        # a lost presence is shown again at the next task.
        self._presence = Presence(self.engine)

    # --- the Executor protocol (client side) -------------------------------------------------

    async def create_run(self, new: NewRun) -> tuple[RunRecord, bool]:
        """Store the run and send its first tasks.

        The workflow's first turn runs here, before the run is stored (as on the local
        executor). When that turn only issues steps executed on workers, the run is stored
        with their STEP_STARTED events and the step tasks are sent at once: no ``advance``
        hop. Otherwise the run is stored due and ``advance`` is sent. Should the broker be
        unreachable, the run is stored all the same and storage sends it again later (the
        sweeper, after ``dispatch_grace``). A client-only executor skips the first turn: the
        run is stored due and ``advance`` sent.
        """
        storage = self.engine.storage
        if self.client_only:
            record, created = await storage.create_run(new)
            if created:
                self.send_advance(record.run_id)
            return record, created
        driver, first = first_turn(self.engine, new, registry.get_workflow(new.workflow_name))
        launch = driver.prepared_launch
        driver.discard()
        sends = [RemoteStep(c.command_id, c.name, c.attempt) for c in launch if sent_away(self, c)]
        if first and sends and len(sends) == len(launch):
            new = dataclasses.replace(
                new,
                first_events=first,
                status=RunStatus.RUNNING,
                wake_at=new.now + self._dispatch_grace,  # the steps' watchdog
            )
        else:
            sends = []
        record, created = await storage.create_run(new)
        if created and sends:
            await self.send(record.run_id, sends)
        elif created:
            self.send_advance(record.run_id)
        return record, created

    def ended_here(self, run_id: str) -> RunRecord | None:
        """The row of a run that ended in this process a moment ago, if remembered."""
        return self._ended.get(run_id)

    def has_capacity(self) -> bool:
        """Always False: runs are driven by workers, never by the process that starts them."""
        return False

    def wake(self, run_id: str | None = None) -> None:
        """An outside writer made the run due (resume, cancel, a hook): send ``advance`` now."""
        if run_id is not None:
            self._ended.forget(run_id)
            self.send_advance(run_id)
        self._woken.set()

    async def wait_finished(self, run_id: str, within: float | None) -> None:
        """Wait up to ``within`` seconds for the run to end (woken early by notifications)."""
        self._subscribe()
        await self._ended.wait(run_id, within)

    def is_driving(self, run_id: str) -> bool:
        """Always False: a client process drives nothing."""
        return False

    async def settle(self, run_id: str) -> None:
        """At once: a Celery starter executes no step, so it has nothing to wait for."""

    async def serve(self) -> None:
        """Sweep until cancelled: send ``advance`` for each run that came due in storage."""
        self._subscribe()
        engine = self.engine
        while True:
            names = registry.workflow_names() or None
            now = engine.clock.now()
            next_wake: float | None = None
            try:
                await self._presence.look()  # the runs of dead workers come due at once
                due = await engine.storage.take_due_runs(
                    now=now,
                    until=now + self._dispatch_grace,
                    limit=_SWEEP_BATCH,
                    workflow_names=names,
                )
                for run_id in due:
                    self.send_advance(run_id)
                if len(due) == _SWEEP_BATCH:
                    continue  # more are due: no pause
                next_wake = await engine.storage.next_wake_at(workflow_names=names)
            except PyWorkflowError as exc:
                _log.warning("sweeping due runs failed, retrying: %s", exc)
            pause = self.sweep_interval
            if next_wake is not None:
                # Never a busy loop: a run due but not takeable yet is looked at again soon.
                pause = max(_SHORTEST_PAUSE, min(pause, next_wake - engine.clock.now()))
            self._woken.clear()
            try:
                async with asyncio.timeout(pause):
                    await self._woken.wait()
            except TimeoutError:
                pass

    async def shutdown(self) -> None:
        """Stop hearing notifications; nothing is driven here to hand back."""
        self._unsubscribe()

    # --- StepSender: where the driver's remote steps go --------------------------------------

    @property
    def dispatch_grace(self) -> float:
        """Seconds a sent step may wait for a worker before storage sends it again."""
        return self._dispatch_grace

    def is_remote(self, definition: StepDefinition) -> bool:
        """Every step but a ``force_local`` one runs in a step task."""
        return not definition.force_local

    def for_run(self, queue: str) -> StepSender:
        """This executor, for a run of any queue (``StepRouter``): a step's queue is its own."""
        return self

    async def send(self, run_id: str, steps: Sequence[RemoteStep]) -> None:
        """Send a step task for each attempt (its STEP_STARTED is committed)."""
        for step in steps:
            queue = registry.get_step(step.name).queue or DEFAULT_QUEUE
            self._send(STEP_TASK, (run_id, step.step_id, step.attempt), queue)

    # --- the worker side: what the tasks call -------------------------------------------------

    async def advance(self, run_id: str) -> None:
        """Take the run's lease and drive it here until it lets go; quietly nothing if taken.

        Only runs of workflows registered here are taken: one of another workflow is left to
        a worker that has it (the sweeper sends it again after ``dispatch_grace``).
        """
        engine = self.engine
        await self._presence.show()
        claimed = await engine.storage.claim_runs(
            owner=engine.owner,
            now=engine.clock.now(),
            lease_expires_at=engine.lease_until(),
            limit=1,
            run_ids=[run_id],
            due_only=False,
            workflow_names=registry.workflow_names(),
        )
        if not claimed:
            _log.debug(
                "run %s is held elsewhere, has ended, or is of a workflow not registered here",
                run_id,
                extra={"run_id": run_id},
            )
            return
        await self.drive(claimed[0])

    async def drive(self, run: RunRecord) -> None:
        """Drive a run this process has just leased, renewing the lease while it runs."""
        await drive_leased(self.engine, run)

    async def execute_step(self, run_id: str, step_id: str, attempt: int, delivery: str) -> None:
        """Execute one attempt of a step, then log its outcome (``_engine.remote_attempts``).

        ``delivery``: this delivery's step-lease owner, ``<this owner>/<task id>``, so that the
        delivery is known dead with this process.
        """
        await self._presence.show()
        await remote_attempts.execute(self.engine, run_id, step_id, attempt, delivery)

    # --- internals -------------------------------------------------------------------------------

    def send_advance(self, run_id: str) -> None:
        """Send the orchestration task for a run."""
        self._send(ADVANCE_TASK, (run_id,), DEFAULT_QUEUE)

    def _send(self, task: str, args: tuple[Any, ...], queue: str) -> None:
        try:
            self.app.send_task(task, args=args, queue=queue)
        except Exception as exc:  # kombu raises many kinds; storage keeps the truth anyway
            _log.warning(
                "could not send %s%r to the broker (%s: %s); the sweeper sends it again",
                task,
                args,
                type(exc).__name__,
                exc,
                extra={"run_id": args[0]},
            )

    def _finished(self, record: RunRecord) -> None:
        self._ended.ended(record)
        if record.parent_run_id is not None:
            # Storage made the parent due with this end: advance it now, not at the next sweep.
            self.send_advance(record.parent_run_id)

    def _new_runs(self, run_ids: list[str]) -> None:
        for run_id in run_ids:  # children and continuations are created due at once
            self.send_advance(run_id)

    def _on_change(self, kind: str, run_id: str) -> None:
        if kind == "ended":
            self._ended.release(run_id)
        else:
            self._woken.set()
