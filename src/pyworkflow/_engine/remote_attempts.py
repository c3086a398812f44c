"""One attempt of a step executed away from its run's driver, and the turn that logs its outcome.

The step-lease protocol of any executor that runs steps elsewhere (Celery's step task is one
call of ``execute``, and so is a local worker's take of a step offered to its queue). The
order is what keeps DESIGN §2.1 under duplicate and redelivered messages:

1. Take the attempt's *step lease* (``Storage.acquire_step``). A delivery that finds another
   delivery executing the attempt exits; so does one whose run has ended.
2. Read the log *after* taking the lease. An attempt whose outcome is logged (a duplicate
   message that came late), or that the log has moved past, is not executed.
3. Execute the attempt while a heartbeat renews the step lease; should the lease be lost or
   storage stop answering, the attempt is cancelled (another delivery may take it over). A
   delivery taken more than
   ``max_recoveries`` times (its worker keeps dying) is not executed: its attempt fails for good
   with the reason, a count kept in storage.
4. Take the run's lease and drive the run with the outcome known: that turn logs the outcome
   and sends the next step. The run's one-writer rule (DESIGN §2.3) makes the first outcome
   logged the only one; a second delivery's is dropped on replay.
5. Drop the step lease.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import TYPE_CHECKING, Any

from pyworkflow import registry
from pyworkflow._backoff import Backoff
from pyworkflow._engine.attempts import AttemptResult, attempt_context, run_attempt
from pyworkflow._engine.context import StepInfo
from pyworkflow._engine.engine import Engine
from pyworkflow._engine.heartbeat import keep_leases
from pyworkflow._engine.leased import drive_leased
from pyworkflow._engine.presence import take_over_dead_owners
from pyworkflow._engine.remote import FinishedAttempt
from pyworkflow.events import EventType
from pyworkflow.exceptions import PyWorkflowError
from pyworkflow.logging import run_logger
from pyworkflow.step_context import context_before

if TYPE_CHECKING:
    from pyworkflow.storage.records import EventRecord, StepLease

__all__ = ["execute"]

_log = logging.getLogger("pyworkflow.celery")

_LOOK_AGAIN = 1.0
"""Seconds between two looks for a dead holder while waiting for a step lease."""

_OUTCOMES = frozenset({EventType.STEP_COMPLETED, EventType.STEP_FAILED, EventType.STEP_RETRYING})


def _open_attempt(events: list[EventRecord], step_id: str, attempt: int) -> tuple[str, Any] | None:
    """The step's name and encoded call if ``attempt`` is started and has no outcome yet."""
    name: str | None = None
    call: Any = None
    latest, settled = 0, False
    for event in events:
        payload = event.payload
        if payload.get("step_id") != step_id:
            continue
        if event.type is EventType.STEP_STARTED:
            if name is None:  # the command: the first attempt's event carries the call
                name, call = payload["name"], payload.get("args")
            latest, settled = payload["attempt"], False
        elif event.type in _OUTCOMES:
            settled = True
    if name is None or latest != attempt or settled:
        return None
    return name, call


def _interrupted_before(events: list[EventRecord], step_id: str) -> int:
    """How many attempts of the step the log records as cut short (WORKFLOW_INTERRUPTED)."""
    return sum(
        1
        for event in events
        if event.type is EventType.WORKFLOW_INTERRUPTED
        for cut in event.payload.get("steps", ())
        if cut.get("step_id") == step_id
    )


async def execute(
    engine: Engine,
    run_id: str,
    step_id: str,
    attempt: int,
    delivery: str,
    *,
    wait_for_holder: bool = True,
) -> None:
    """Execute attempt ``attempt`` of ``step_id`` of ``run_id`` and log its outcome.

    Args:
        engine: this process's engine.
        run_id: the run, as the message names it.
        step_id: the step's id in its run.
        attempt: the attempt the message names.
        delivery: this delivery's step-lease owner id (a redelivered message is another).
        wait_for_holder: wait a while for another delivery's live lease to lapse (a message
            redelivered after its worker died); False stands back at once (a local worker
            that lost the race for an offered step: its claim loop looks again).
    """
    storage, settings = engine.storage, engine.settings
    log = run_logger(run_id, None, step_id=step_id, attempt=attempt)
    patience = 2 * settings.lease_seconds if wait_for_holder else 0.0
    lease = await _acquire(engine, run_id, step_id, attempt, delivery, patience)
    if lease is None:
        log.debug("attempt %d of step %s runs elsewhere, or its run ended", attempt, step_id)
        return
    loop = asyncio.get_running_loop()
    running: list[asyncio.Task[AttemptResult]] = []  # the attempt, once it runs

    def lost(_ids: list[str], why: str) -> None:
        log.warning("step lease: %s", why)
        for task in running:
            task.cancel()

    async def renew(ids: list[str], expiry: float) -> set[str]:
        now = engine.clock.now()
        kept = await storage.renew_step(
            run_id, step_id, owner=delivery, now=now, lease_expires_at=expiry
        )
        return set(ids) if kept else set()

    beat = loop.create_task(
        keep_leases(
            clock=engine.clock,
            lease_seconds=settings.lease_seconds,
            held=lambda: [step_id],
            renew=renew,
            lost=lost,
            log=log,
        )
    )
    try:
        events = await storage.load_events(run_id)
        found = _open_attempt(events, step_id, attempt)
        if found is None:
            log.debug("step %s attempt %d is settled already; not executed", step_id, attempt)
            return
        name, call = found
        workflow_name = events[0].payload.get("workflow", "?") if events else "?"
        # Earlier deliveries of this attempt took its lease and died mid-execution: this one
        # runs as the next attempt, which the turn logging its outcome records (interruptions).
        cut = lease.deliveries - 1
        context = StepInfo(
            run_id,
            workflow_name,
            step_id,
            name,
            attempt + cut,
            _interrupted_before(events, step_id) + cut,
            user_context=context_before(events, step_id, engine.codec),
        )
        if lease.deliveries > settings.max_recoveries:
            result = _delivery_limit(step_id, lease.deliveries)
            log.error("%s", result.record and result.record["message"])
        else:
            try:
                definition = registry.get_step(name)
            except PyWorkflowError as exc:
                # Another worker may have the step's module: leave it to the watchdog.
                log.error("cannot execute step %s here: %s", step_id, exc)
                return
            if engine.resolve_step is not None:
                definition = engine.resolve_step(definition)
            decoded = engine.codec.decode(call) if call is not None else {}
            args, kwargs = tuple(decoded.get("args", ())), dict(decoded.get("kwargs", {}))
            running.append(
                loop.create_task(
                    run_attempt(definition, context, args, kwargs, engine.codec),
                    context=attempt_context(context),
                )
            )
            await asyncio.wait(running)
            if running[0].cancelled():
                return  # its lease was lost: the delivery that took it over logs the outcome
            result = running[0].result()
        finished = FinishedAttempt(step_id, attempt, result, cut_short=cut)
        await _log_outcome(engine, run_id, finished, events)
    finally:
        beat.cancel()
        for task in running:
            task.cancel()  # only when this task itself is cancelled mid-attempt
        try:
            await storage.release_step(run_id, step_id, owner=delivery)
        except PyWorkflowError as exc:  # it lapses on its own; the log is what counts
            log.warning("could not drop the step lease: %s", exc)


async def _acquire(
    engine: Engine, run_id: str, step_id: str, attempt: int, delivery: str, patience: float
) -> StepLease | None:
    """Take the attempt's step lease, waiting up to ``patience`` for another delivery's.

    A message delivered again after its worker was killed mid-step finds that worker's lease
    still live: waiting for it to lapse (the holder, if alive, renews it meanwhile) makes
    the recovery take at most ``lease_seconds`` rather than the run's
    watchdog (``dispatch_grace``); a holder known dead (``presence``) frees it at once. A
    holder still renewing after two lease periods (``execute``'s patience) is alive: this
    delivery is a duplicate and ends.
    """
    storage, clock, lease_seconds = engine.storage, engine.clock, engine.settings.lease_seconds
    give_up = clock.now() + patience
    while True:
        now = clock.now()
        lease = await storage.acquire_step(
            run_id,
            step_id,
            attempt=attempt,
            owner=delivery,
            now=now,
            lease_expires_at=now + lease_seconds,
        )
        if lease is not None:
            return lease
        held = {row.step_id: row for row in await storage.list_step_leases(run_id)}.get(step_id)
        if held is None or held.attempt != attempt or held.lease_expires_at is None:
            return None  # the run ended, or the attempt was settled and its row dropped
        if await take_over_dead_owners(engine):
            continue  # its holder may have been one of them: its lease lapsed just now
        wait = held.lease_expires_at - clock.now() + 0.05
        if clock.now() + wait > give_up:
            return None
        await asyncio.sleep(max(min(wait, _LOOK_AGAIN), 0.05))


def _delivery_limit(step_id: str, deliveries: int) -> AttemptResult:
    message = (
        f"step {step_id!r} was delivered {deliveries} times without finishing: the worker "
        "executing it keeps dying (killed, out of memory?); it is not tried again"
    )
    record = {"type": "RecoveryLimitExceeded", "message": message, "traceback": ""}
    return AttemptResult(ok=False, record=record, error=RuntimeError(message), retry_in=None)


async def _log_outcome(
    engine: Engine, run_id: str, finished: FinishedAttempt, events: list[EventRecord]
) -> None:
    """Take the run's lease, waiting while another task holds it, and drive the next turn.

    Another holder is a short turn of the same run (a sibling step's outcome, a timer) or a
    ``force_local`` step, which may run long: the outcome waits for it rather than be dropped
    (which would execute the step again). A holder that died lets its lease lapse within
    ``lease_seconds``, and the claim then takes the run over.
    """
    storage, clock = engine.storage, engine.clock
    told = clock.now() + engine.settings.lease_seconds
    pauses = Backoff(0.005, 0.5)
    while True:
        claimed = await storage.claim_runs(
            owner=engine.owner,
            now=clock.now(),
            lease_expires_at=engine.lease_until(),
            limit=1,
            run_ids=[run_id],
            due_only=False,
        )
        if claimed:
            break
        run = await storage.get_run(run_id)
        if run is None or run.status.is_terminal:
            return
        if clock.now() > told:
            told = math.inf
            run_logger(run_id, run.workflow_name, step_id=finished.step_id).info(
                "step %s finished; waiting for %s, which holds the run (a force_local step?), "
                "to log its outcome",
                finished.step_id,
                run.lease_owner,
            )
        await asyncio.sleep(pauses.next())
    run = claimed[0]
    last = events[-1].seq if events else 0
    if run.last_seq != last:
        events = events + await storage.load_events(run_id, after_seq=last)
    await drive_leased(engine, run, finished=finished, history=events)
