"""The durable run that drives one stream run: batches of deliveries, waits for signals.

``pyworkflow.stream`` is an ordinary durable workflow, started as a child by
``run_stream_workflow``. Its code, all replay-safe:

1. open the stream run (a step: its row and a ``pending`` subscription per stream step);
2. run the stream workflow's body (workflow code: its ``emit`` calls are recorded);
3. loop: a batch step takes batch n (storage applies the outcomes of batch n - 1 and picks at
   most one signal per subscription, in seq order, moving its cursor in the same
   transaction) and runs its executions, concurrently, once its own start is durable; its
   result is their outcomes. An execution that raised runs again as the stream step's own
   step (``stream:<name>``) after its retry delay (``executions.py``). With nothing to
   deliver, wait on a hook that the next emit delivers (armed by a step, so a signal emitted
   meanwhile is not missed); end when every stream step has ended. The emit that delivers the
   hook takes batch n + 1 in its own transaction and hands it over as the hook's payload; the
   next batch step runs it without a take.

Exactly-once per subscription comes from storage (batch n is taken once, whoever asks) and
from the log (a step whose completion is logged never runs again); a crash re-runs at most the
batch in flight, as for any step. The parent waits on this run as on any child: holding no
worker.

The batch step is an ``early_step``: its take starts alongside the commit that logs the
previous batch's outcomes and its own start, so on SQLite both are one transaction, and a
signal to a busy stream run costs one commit, as a step of a sequential run does. Its
executions (user code) wait for that commit (``start_logged``). Where the two are separate
transactions (PostgreSQL), the take may commit first; if the commit is then lost (a crash, a
lost lease), the batch runs again, and each subscription keeps the outcome the next take
applies: still one delivery per signal and subscription.

Logs from before (the open step logged no result) go on as they began: a take step a batch
(``pyworkflow.stream.take``) and a ``stream:<name>`` step an execution; older still, a take
after each wake (the hook's payload a seq).
"""

from __future__ import annotations

import asyncio
from typing import Any

from pyworkflow._engine.context import start_logged, step_info
from pyworkflow._engine.hook_tokens import hash_token
from pyworkflow._streams.definitions import (
    StreamStepDefinition,
    get_stream_workflow,
    steps_of_stream,
)
from pyworkflow._streams.emitting import current_stream_run, stream_store
from pyworkflow._streams.emitting import register as register_emits
from pyworkflow._streams.executions import as_step, first_attempts, retried
from pyworkflow._streams.step_state import BATCH_STEP
from pyworkflow.events import StreamStepStatus
from pyworkflow.exceptions import (
    CancellationError,
    FatalError,
    HookExpiredError,
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
        # Takes its batch like ``take``, then runs the batch's executions once their start is
        # durable (``start_logged``): a step, and so a commit, a batch (see the docstring).
        _registered["batch"] = early_step(BATCH_STEP)(_batch)
        _registered["driver"] = workflow(name=DRIVER_NAME, durable=True)(drive_to_an_end)
    driver: Workflow[..., dict[str, Any]] = _registered["driver"]
    return driver


async def _open(stream_run_id: str, stream: str, specs: list[list[Any]]) -> dict[str, Any]:
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
    # Logged: this stream run's executions run in batch steps. A log from before batches ran
    # them holds None here and replays as it ran, a step per execution.
    return {"batches": True}


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


async def _batch(
    stream_run_id: str,
    stream: str,
    batch: int,
    outcomes: list[dict[str, Any]],
    given: dict[str, Any] | None,
) -> dict[str, Any]:
    """Take batch ``batch`` (or run ``given``, which the waking emit took), run its executions.

    The result: the batch as taken, less its deliveries (``delivered``: how many), and the
    executions' outcomes, some marked ``raised`` (see ``executions.py``).
    """
    whole = given if given is not None else await _take(stream_run_id, batch, outcomes)
    # A copy: ``given`` is this step's argument, the same object at a retry of the step.
    taken = {key: value for key, value in whole.items() if key != "deliveries"}
    deliveries = whole["deliveries"]
    if not deliveries:
        return {"taken": taken, "delivered": 0, "outcomes": []}
    await start_logged()  # the take may run first; the executions only once this step's start
    steps = {s.name: s for s in steps_of_stream(stream)}
    ran = await first_attempts(stream_run_id, steps, deliveries)
    return {"taken": taken, "delivered": len(deliveries), "outcomes": ran}


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


async def drive_stream(
    stream: str,
    stream_run_id: str,
    after_batch: int = 0,
    carried: list[dict[str, Any]] | None = None,
    previous_run_id: str | None = None,
    batches: bool = False,
) -> dict[str, Any]:
    """Drive the stream run ``stream_run_id`` of stream ``stream`` until its steps end.

    A run that continued a driver (``continue_as_new`` every :data:`BATCHES_PER_RUN` batches,
    so the log of a long-lived stream run stays short) takes the stream run over from
    ``previous_run_id`` and goes on after batch ``after_batch`` with the ``carried`` outcomes;
    ``batches``: its executions run in batch steps (the open step said so).
    """
    definition = get_stream_workflow(stream)
    steps = {s.name: s for s in steps_of_stream(stream)}
    if previous_run_id is None:
        specs = [[s.name, s.stream, list(s.signal_types)] for s in steps.values()]
        opened = await _registered["open"](stream_run_id, stream, specs)
        batches = isinstance(opened, dict) and bool(opened.get("batches"))
        current_stream_run.set(stream_run_id)  # this run's own task: its body emits here
        await definition.fn()
    else:
        await _registered["adopt"](stream_run_id, previous_run_id)
    outcomes: list[dict[str, Any]] = list(carried or [])
    if batches:
        return await _drive_batches(stream, stream_run_id, steps, after_batch, outcomes)
    return await _drive_steps(stream, stream_run_id, steps, after_batch, outcomes)


def _ended(taken: dict[str, Any]) -> dict[str, Any]:
    return {"status": "completed", "step_states": taken["states"], "step_results": taken["results"]}


async def _drive_batches(
    stream: str,
    stream_run_id: str,
    steps: dict[str, StreamStepDefinition],
    after_batch: int,
    outcomes: list[dict[str, Any]],
) -> dict[str, Any]:
    """The driving loop: a batch step a batch, its executions inside it."""
    batch, warm = after_batch, True
    given: dict[str, Any] | None = None  # a batch the waking emit took
    while True:
        batch = batch + 1 if given is None else given["batch"]
        ran = await _registered["batch"](stream_run_id, stream, batch, outcomes, given)
        taken, outcomes, given = ran["taken"], ran["outcomes"], None
        if taken["status"] == "completed":
            return _ended(taken)
        if ran["delivered"]:
            warm = True
            outcomes = await retried(stream_run_id, steps, outcomes)
            if batch - after_batch >= BATCHES_PER_RUN:
                driver = taken["driver"]
                continue_as_new(stream, stream_run_id, batch, outcomes, driver, True)
            continue
        warm, woken = await _wait(stream_run_id, taken["last_seq"], warm=warm)
        if isinstance(woken, dict):  # else timed out: take the next batch
            given = woken


async def _drive_steps(
    stream: str,
    stream_run_id: str,
    steps: dict[str, StreamStepDefinition],
    after_batch: int,
    outcomes: list[dict[str, Any]],
) -> dict[str, Any]:
    """The driving loop of a log written before batch steps: a take step, a step a delivery."""
    batch, warm = after_batch, True
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
                return _ended(taken)
            warm = True
            outcomes = list(
                await asyncio.gather(
                    *(as_step(stream_run_id, steps, d) for d in taken["deliveries"])
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
    batches: bool = False,
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
        return await drive_stream(
            stream, stream_run_id, after_batch, carried, previous_run_id, batches
        )
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
