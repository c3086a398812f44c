"""The durable run that drives one stream run: batches of deliveries, waits for signals.

``pyworkflow.stream`` is an ordinary durable workflow, started as a child by
``run_stream_workflow``. Its code, all replay-safe:

1. open the stream run (a step: its row and a ``pending`` subscription per stream step);
2. run the stream workflow's body (workflow code: its ``emit`` calls are recorded);
3. loop: take batch n (a step; storage applies the outcomes of batch n - 1 and picks at most
   one signal per subscription, in seq order, moving its cursor in the same transaction),
   then run each delivery as the stream step's own step (``stream:<name>``), concurrently;
   with nothing to deliver, wait on a hook that the next emit delivers (armed by a step, so
   a signal emitted meanwhile is not missed); end when every stream step has ended. The
   emit that delivers the hook takes batch n + 1 in its own transaction and hands it over as
   the hook's payload, so a signal to an idle stream run costs no take step (a log from
   before that, whose payloads are seqs, replays as it ran: a take after each wake).

Exactly-once per subscription comes from storage (batch n is taken once, whoever asks) and
from the log (a step whose completion is logged never runs again); a crash re-runs at most the
execution in flight, as for any step. The parent waits on this run as on any child: holding no
worker.

The take is an ``early_step``: it starts alongside the commit that logs the deliveries'
outcomes and its own start, so on SQLite both are one transaction (group commit), a commit
less per signal. Where they are two (PostgreSQL), the take may commit first; if the commit of
the outcomes is then lost (a crash, a lost lease), the delivery in flight runs again, as any
step in flight does, and the subscription keeps the outcome of its first execution, which
the take applied: still one delivery per signal and subscription.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pyworkflow._engine.context import step_info
from pyworkflow._engine.hook_tokens import hash_token
from pyworkflow._streams.definitions import (
    StreamStepDefinition,
    get_stream_workflow,
    runner_of,
    steps_of_stream,
)
from pyworkflow._streams.emitting import current_stream_run, stream_store
from pyworkflow._streams.emitting import register as register_emits
from pyworkflow._streams.signals import validate_payload
from pyworkflow.events import StreamStepStatus
from pyworkflow.exceptions import (
    CancellationError,
    FatalError,
    HookExpiredError,
    InvalidSignalPayloadError,
    StreamRunConflictError,
)
from pyworkflow.primitives import continue_as_new, hook, shield
from pyworkflow.runtime import get_runtime
from pyworkflow.step import early_step, step
from pyworkflow.storage.streams import SubscriptionOutcome, SubscriptionSpec, batch_payload
from pyworkflow.workflow import Workflow, workflow

__all__ = [
    "BATCHES_PER_RUN",
    "DRIVER_NAME",
    "WARM_SECONDS",
    "drive_stream",
    "drive_to_an_end",
    "register",
]

DRIVER_NAME = "pyworkflow.stream"
_WAIT_HOOK = "pyworkflow.stream.signal"
BATCHES_PER_RUN = 500
"""A driving run continues as new after this many batches: its log, and so a replay, stays
bounded however long the stream run lives."""
WARM_SECONDS = 4.0
"""How long the driver waits for the next signal keeping its coroutine, after signals flowed
(below the local executor's default horizon of 5 s)."""
_registered: dict[str, Any] = {}


def register() -> Workflow[..., dict[str, Any]]:
    """Register the driving workflow and its steps, once; returns the workflow.

    The stream decorators call this: a process that defines no stream registers none of them,
    so its workers and listings show only its own workflows.
    """
    if not _registered:
        register_emits()
        steps = (("open", _open), ("arm", _arm), ("adopt", _adopt), ("end", _end_step))
        for name, fn in steps:
            _registered[name] = step(name=f"pyworkflow.stream.{name}", force_local=True)(fn)
        # Idempotent per batch (storage takes batch n once; a later call reads it back), so it
        # may start alongside the commit that logs its start: on SQLite both share one
        # transaction, a commit less per signal.
        _registered["take"] = early_step("pyworkflow.stream.take")(_take)
        _registered["driver"] = workflow(name=DRIVER_NAME, durable=True)(drive_to_an_end)
    driver: Workflow[..., dict[str, Any]] = _registered["driver"]
    return driver


async def _open(stream_run_id: str, stream: str, specs: list[list[Any]]) -> None:
    runtime = await get_runtime()
    subscriptions = [SubscriptionSpec(name, on, tuple(types)) for name, on, types in specs]
    try:
        await stream_store(runtime.storage).open_stream_run(
            stream_run_id,
            stream=stream,
            run_id=step_info().run_id,
            subscriptions=subscriptions,
            now=runtime.executor.now(),
        )
    except StreamRunConflictError as exc:
        raise FatalError(str(exc)) from exc


async def _take(stream_run_id: str, batch: int, outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    runtime = await get_runtime()
    codec = runtime.codec
    taken = await stream_store(runtime.storage).take_stream_batch(
        stream_run_id,
        batch=batch,
        outcomes=[
            SubscriptionOutcome(
                step_name=o["step"],
                status=StreamStepStatus(o["status"]),
                detail=o["detail"],
                resume_signals=None if o["resume_signals"] is None else tuple(o["resume_signals"]),
                result=codec.encode(o["result"]) if o["set_result"] else None,
                set_result=o["set_result"],
                checkpoint=codec.encode(o["checkpoint"]) if o["set_checkpoint"] else None,
                set_checkpoint=o["set_checkpoint"],
                refused=o.get("refused", False),
            )
            for o in outcomes
        ],
        now=runtime.executor.now(),
    )
    # The same shape as a batch an emit hands over in the waiting hook's payload.
    shape: dict[str, Any] = codec.decode(batch_payload(taken, step_info().run_id))
    return shape


async def _adopt(stream_run_id: str, previous_run_id: str) -> None:
    runtime = await get_runtime()
    adopted = await stream_store(runtime.storage).adopt_stream_run(
        stream_run_id,
        previous_run_id=previous_run_id,
        run_id=step_info().run_id,
        now=runtime.executor.now(),
    )
    if not adopted:
        raise FatalError(f"stream run {stream_run_id!r} is no longer driven by {previous_run_id!r}")


async def _end_step(stream_run_id: str, status: str, detail: str) -> bool:
    runtime = await get_runtime()
    return await stream_store(runtime.storage).end_stream_run(
        stream_run_id,
        run_id=step_info().run_id,
        status=status,
        detail=detail,
        now=runtime.executor.now(),
    )


async def _arm(stream_run_id: str, token_hash: str, seen_seq: int) -> bool:
    runtime = await get_runtime()
    return await stream_store(runtime.storage).arm_stream_wait(
        stream_run_id, token_hash=token_hash, seen_seq=seen_seq, now=runtime.executor.now()
    )


async def _wait(stream_run_id: str, seen_seq: int, *, warm: bool) -> tuple[bool, Any]:
    """Suspend until a signal after ``seen_seq`` is stored (at once if one already is).

    ``warm``: signals flowed just now, so wait at most ``WARM_SECONDS``: a wait that short
    keeps the run's coroutine (below the executor's horizon), so the next signal costs no
    replay of the run's history. Returns whether the next wait is warm too (False once a
    warm wait timed out: the stream went quiet, the next wait lets the run go) and the hook's
    payload: the batch the waking emit took (:func:`batch_payload`), or, in a log written
    before emits took batches, the signal's seq (None after a timeout).
    """

    async def arm(token: str) -> None:
        await _registered["arm"](stream_run_id, hash_token(token), seen_seq)

    try:
        payload = await hook(_WAIT_HOOK, timeout=WARM_SECONDS if warm else None, on_created=arm)
    except HookExpiredError:
        return False, None
    return True, payload


def _unchanged(delivery: dict[str, Any]) -> dict[str, Any]:
    """An outcome that leaves the subscription as it was before the delivery."""
    return {
        "step": delivery["step"],
        "status": delivery["before"],
        "detail": delivery["detail"],
        "resume_signals": delivery["resume_signals"],
        "result": None,
        "set_result": False,
        "checkpoint": None,
        "set_checkpoint": False,
    }


async def _deliver(
    stream_run_id: str, steps: dict[str, StreamStepDefinition], delivery: dict[str, Any]
) -> dict[str, Any]:
    """Run one delivery as its stream step's step; its outcome."""
    definition = steps.get(delivery["step"])
    signal = delivery["signal"]
    if definition is None:
        failed = _unchanged(delivery)
        failed.update(status="failed", detail=f"no stream step {delivery['step']!r} here")
        return failed
    if signal is not None:
        schema = definition.schemas.get(signal["signal_type"])
        if schema is not None:
            try:
                signal["payload"] = validate_payload(
                    definition.stream, signal["signal_type"], schema, signal["payload"]
                )
            except InvalidSignalPayloadError:
                refused = _unchanged(delivery)  # the step is not run for it
                refused["refused"] = True
                return refused
    try:
        outcome: dict[str, Any] = await runner_of(definition.name)(
            stream_run_id, signal, delivery["checkpoint"], delivery["before"]
        )
    except Exception as exc:  # the execution failed after its retries: the step has failed
        failed = _unchanged(delivery)
        failed.update(status="failed", detail=f"{type(exc).__name__}: {exc}", resume_signals=None)
        return failed
    return {"step": definition.name, **outcome}


async def drive_stream(
    stream: str,
    stream_run_id: str,
    after_batch: int = 0,
    carried: list[dict[str, Any]] | None = None,
    previous_run_id: str | None = None,
) -> dict[str, Any]:
    """Drive the stream run ``stream_run_id`` of stream ``stream`` until its steps end.

    A run that continued a driver (``continue_as_new`` every :data:`BATCHES_PER_RUN` batches,
    so the log of a long-lived stream run stays short) takes the stream run over from
    ``previous_run_id`` and goes on after batch ``after_batch`` with the ``carried`` outcomes.
    """
    definition = get_stream_workflow(stream)
    steps = {s.name: s for s in steps_of_stream(stream)}
    if previous_run_id is None:
        specs = [[s.name, s.stream, list(s.signal_types)] for s in steps.values()]
        await _registered["open"](stream_run_id, stream, specs)
        current_stream_run.set(stream_run_id)  # this run's own task: its body emits here
        await definition.fn()
    else:
        await _registered["adopt"](stream_run_id, previous_run_id)
    outcomes: list[dict[str, Any]] = list(carried or [])
    batch = after_batch
    warm = True
    while True:
        batch += 1
        taken: dict[str, Any] = await _registered["take"](stream_run_id, batch, outcomes)
        outcomes = []
        while taken["status"] != "completed" and not taken["deliveries"]:
            warm, woken = await _wait(stream_run_id, taken["last_seq"], warm=warm)
            if not isinstance(woken, dict):
                break  # a timeout, or a seq (a log from before emits took batches): take here
            # The emit that woke this run took the next batch for it. Which of the two it is
            # comes from the log (the hook's payload), so a replay goes the way the run went.
            taken, batch = woken, woken["batch"]
        else:
            if taken["status"] == "completed":
                return {
                    "status": "completed",
                    "step_states": taken["states"],
                    "step_results": taken["results"],
                }
            warm = True
            outcomes = list(
                await asyncio.gather(
                    *(_deliver(stream_run_id, steps, d) for d in taken["deliveries"])
                )
            )
            if batch - after_batch >= BATCHES_PER_RUN:
                continue_as_new(stream, stream_run_id, batch, outcomes, taken["driver"])


async def drive_to_an_end(
    stream: str,
    stream_run_id: str,
    after_batch: int = 0,
    carried: list[dict[str, Any]] | None = None,
    previous_run_id: str | None = None,
) -> dict[str, Any]:
    """:func:`drive_stream`, whose stream run ends with it when it is cancelled or fails.

    The driving run is a child of the run that called ``run_stream_workflow``, so it is
    cancelled with its parent (or by hand, ``pyworkflow runs cancel``), and it fails when the
    stream workflow's body or one of its own steps does. Either way the stream run must not
    read ``running`` with no one to drive it: a step records its end (``cancelled`` or
    ``failed``; its open subscriptions ``cancelled`` with the reason), so that ``emit`` refuses
    it with StreamRunEndedError rather than storing signals nobody will deliver. The step is
    shielded: it runs to the end after the cancel. A stream run driven by another run (an id
    taken, the reason this run fails) is left alone: storage ends only the driver's own.
    """
    try:
        return await drive_stream(stream, stream_run_id, after_batch, carried, previous_run_id)
    except CancellationError as exc:
        reason = "stream run cancelled" + (f": {exc.reason}" if exc.reason else "")
        await _end(stream_run_id, previous_run_id, "cancelled", reason)
        raise
    except Exception as exc:
        reason = f"stream run failed: {type(exc).__name__}: {exc}"
        await _end(stream_run_id, previous_run_id, "failed", reason)
        raise


async def _end(stream_run_id: str, previous_run_id: str | None, status: str, reason: str) -> None:
    """Record the stream run's end, shielded from the cancel that may have caused it."""
    async with shield():
        if previous_run_id is not None:
            # A continued driver cancelled before its first step had taken the stream run over
            # (``adopt``, idempotent): take it now, or its end would be refused as another's.
            try:
                await _registered["adopt"](stream_run_id, previous_run_id)
            except FatalError:
                return  # another run drives it: not ours to end
        await _registered["end"](stream_run_id, status, reason)
