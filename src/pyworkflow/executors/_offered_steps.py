"""Steps of a queue on the local executor: offered in storage, taken by a worker of that queue.

A run is driven by a worker of its queue; a step with ``@step(queue=...)`` of a queue that
worker does not serve is not executed there. Its driver logs the STEP_STARTED, then offers the
attempt in storage (``Storage.offer_steps``, a step lease row with the queue) and lets the run
go, as a Celery driver sends a step task. A worker serving the queue lists the offers free to
take (``list_offered_steps``) beside its claim of runs, and executes each with the step-lease
protocol any remote step follows (``_engine.remote_attempts``): take the attempt's lease, read
the log, execute while renewing it, then take the run's lease and log the outcome in a turn
of the run. A step without a queue follows its run: a worker that logs an outcome but does
not serve the run's queue offers the run's next steps to that queue rather than run them.

Nothing depends on a message arriving: an offer is a row. A worker killed mid-step leaves its
lease to lapse (at once, when its death is seen: ``presence``) and the offer is listed again;
a worker shutting down offers again what it cancels.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from pyworkflow import registry
from pyworkflow._engine import remote_attempts
from pyworkflow._engine.engine import Engine
from pyworkflow._engine.remote import RemoteStep, StepSender
from pyworkflow.exceptions import PyWorkflowError
from pyworkflow.executors._serving import Serving
from pyworkflow.step import StepDefinition
from pyworkflow.storage.records import StepLease, StepOffer

__all__ = ["OfferedSteps", "QueueSender"]

_log = logging.getLogger("pyworkflow.executor")

_WATCHDOG = 60.0
"""Seconds before a run whose step waits on its queue is looked at again (``dispatch_grace``).

An offer cannot get lost as a broker message can: the look only notices a worker that died
holding the attempt, which the offer's own listing notices sooner. So it is rare, not eager.
"""


@dataclass(frozen=True, slots=True)
class QueueSender:
    """The ``StepSender`` of the local executor, bound to the queue of the run being driven."""

    steps: OfferedSteps
    run_queue: str

    @property
    def dispatch_grace(self) -> float:
        """Seconds an offered step may wait before its run is looked at again."""
        return _WATCHDOG

    def is_remote(self, definition: StepDefinition) -> bool:
        """A step whose queue (its own, else its run's) this process does not serve."""
        if definition.force_local:
            return False
        return not self.steps.serving.serves(definition.queue or self.run_queue)

    async def send(self, run_id: str, steps: Sequence[RemoteStep]) -> None:
        """Offer the attempts to the workers of their queues."""
        offers = [
            StepOffer(s.step_id, s.attempt, registry.get_step(s.name).queue or self.run_queue)
            for s in steps
        ]
        engine = self.steps.engine
        await engine.storage.offer_steps(run_id, offers, now=engine.clock.now())


class OfferedSteps:
    """The local executor's side of step queues: what it offers and what it takes.

    Its engine's ``remote`` (a ``StepRouter``): a run's driver gets a ``QueueSender`` when
    some of the run's steps are executed elsewhere.

    Args:
        engine: this process's engine.
        serving: the queues this process serves.
    """

    def __init__(self, engine: Engine, serving: Serving) -> None:
        self.engine = engine
        self.serving = serving
        self.tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self.tasks)

    # --- the StepSender's side --------------------------------------------------------------------

    def for_run(self, queue: str) -> StepSender | None:
        """The sender for a run of ``queue``; None when all its steps are executed here.

        Every step is executed here by a process serving every queue, and by a worker of the
        run's queue when no registered step names a queue it does not serve: the drivers of
        those runs work as without step queues at all.
        """
        serving = self.serving
        if serving.queues is None and not serving.client_only:
            return None  # spares every driver a look at the registry
        if serving.serves(queue) and all(serving.serves(q) for q in _step_queues()):
            return None
        return QueueSender(self, queue)

    # --- the worker's side ------------------------------------------------------------------------

    async def take(self, free: int) -> int:
        """Start executing up to ``free`` offers of the queues served here; how many it started.

        Does nothing (not even a query) unless a registered step names a queue: only then can
        any process with this code offer a step.
        """
        if free <= 0 or self.serving.client_only or not _step_queues():
            return 0
        engine = self.engine
        offers = await engine.storage.list_offered_steps(
            queues=self.serving.queues,
            workflow_names=registry.workflow_names(),
            now=engine.clock.now(),
            limit=free,
        )
        loop = asyncio.get_running_loop()
        for offer in offers:
            task = loop.create_task(
                self._execute(offer),
                name=f"pyworkflow-step {offer.run_id} {offer.step_id}",
                context=contextvars.Context(),
            )
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return len(offers)

    async def _execute(self, offer: StepLease) -> None:
        delivery = f"{self.engine.owner}/{uuid.uuid4().hex[:12]}"
        try:
            await remote_attempts.execute(
                self.engine,
                offer.run_id,
                offer.step_id,
                offer.attempt,
                delivery,
                wait_for_holder=False,
            )
        except asyncio.CancelledError:
            await self._offer_again(offer)  # shutting down: another worker takes it now
            raise
        except Exception:
            _log.exception("offered step %s of run %s failed", offer.step_id, offer.run_id)

    async def _offer_again(self, offer: StepLease) -> None:
        assert offer.queue is not None  # listed offers have one
        again = StepOffer(offer.step_id, offer.attempt, offer.queue)
        try:
            await self.engine.storage.offer_steps(
                offer.run_id, [again], now=self.engine.clock.now()
            )
        except PyWorkflowError as exc:  # its run's watchdog offers it again later
            _log.warning("could not offer step %s again: %s", offer.step_id, exc)


def _step_queues() -> set[str]:
    """The queues that registered steps name."""
    return {q for name in registry.step_names() if (q := registry.get_step(name).queue)}
