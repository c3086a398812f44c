"""Running the executions of a batch: each first in the batch's step, again as a step of its own.

A delivery (one signal, or the start, for one stream step) is run by :func:`first_attempts`
inside the driver's batch step, concurrently with the batch's others: its outcome is logged
with the batch, a commit for the whole batch. One that raised comes back marked ``raised``
(with the delay its retry policy gives, or None for none); the driver's workflow code then
waits that long, durably, and runs it again as the step ``stream:<name>`` with the retries it
has left (:func:`retried`). Logs written before batches ran their executions run every one
as that step (:func:`as_step`).

An outcome is a plain dict (``StepState.outcome()`` and the step name), stored on the
subscription by the driver's next take.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pyworkflow._engine.attempts import retry_delay
from pyworkflow._streams.definitions import StreamStepDefinition, execution_of, runner_of
from pyworkflow._streams.signals import validate_payload
from pyworkflow.exceptions import InvalidSignalPayloadError
from pyworkflow.primitives import sleep
from pyworkflow.runtime import get_runtime

__all__ = ["as_step", "first_attempts", "retried"]

Steps = dict[str, StreamStepDefinition]


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


def _failed(delivery: dict[str, Any], detail: str) -> dict[str, Any]:
    failed = _unchanged(delivery)
    failed.update(status="failed", detail=detail, resume_signals=None)
    return failed


def _prepared(
    steps: Steps, delivery: dict[str, Any]
) -> tuple[StreamStepDefinition | None, dict[str, Any]]:
    """(Its stream step, the delivery with its payload validated), or (None, its outcome).

    The delivery is copied, never changed. None when it is not to run: no such stream step
    here (failed), or a payload its schema refuses (refused).
    """
    definition = steps.get(delivery["step"])
    if definition is None:
        return None, _failed(delivery, f"no stream step {delivery['step']!r} here")
    signal = delivery["signal"]
    schema = None if signal is None else definition.schemas.get(signal["signal_type"])
    if schema is None:
        return definition, delivery
    try:
        payload = validate_payload(
            definition.stream, signal["signal_type"], schema, signal["payload"]
        )
    except InvalidSignalPayloadError:
        refused = _unchanged(delivery)  # the step is not run for it
        refused["refused"] = True
        return None, refused
    return definition, {**delivery, "signal": {**signal, "payload": payload}}


def _arguments(stream_run_id: str, delivery: dict[str, Any]) -> tuple[Any, ...]:
    """What an execution is called with (``step_state.execution``), in a batch or as a step."""
    return stream_run_id, delivery["signal"], delivery["checkpoint"], delivery["before"]


async def _first(stream_run_id: str, steps: Steps, delivery: dict[str, Any]) -> dict[str, Any]:
    definition, prepared = _prepared(steps, delivery)
    if definition is None:
        return prepared
    try:
        outcome: dict[str, Any] = await execution_of(definition.name)(
            *_arguments(stream_run_id, prepared)
        )
        # What the batch's result cannot hold would fail the batch, and every delivery in it:
        # refused here, it fails this execution alone (its retry refuses it again).
        codec = (await get_runtime()).codec
        for value, kept in (("result", "set_result"), ("checkpoint", "set_checkpoint")):
            if outcome[kept]:
                codec.encode(outcome[value], path=f"{value} of stream step {definition.name!r}")
    except Exception as exc:
        return {
            "step": definition.name,
            "raised": f"{type(exc).__name__}: {exc}",
            "retry_in": retry_delay(definition.retry, 1, exc),
            "delivery": delivery,
        }
    return {"step": definition.name, **outcome}


async def first_attempts(
    stream_run_id: str, steps: Steps, deliveries: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Run each delivery once, concurrently (step code: the batch step's); their outcomes."""
    if len(deliveries) == 1:  # the common case: no task
        return [await _first(stream_run_id, steps, deliveries[0])]
    return list(await asyncio.gather(*(_first(stream_run_id, steps, d) for d in deliveries)))


async def as_step(stream_run_id: str, steps: Steps, delivery: dict[str, Any]) -> dict[str, Any]:
    """Run one delivery as the step ``stream:<name>`` (workflow code); its outcome."""
    definition, prepared = _prepared(steps, delivery)
    if definition is None:
        return prepared
    try:
        outcome: dict[str, Any] = await runner_of(definition.name)(
            *_arguments(stream_run_id, prepared)
        )
    except Exception as exc:  # the execution failed after its retries: the step has failed
        return _failed(delivery, f"{type(exc).__name__}: {exc}")
    return {"step": definition.name, **outcome}


async def _again(stream_run_id: str, steps: Steps, raised: dict[str, Any]) -> dict[str, Any]:
    delivery, delay = raised["delivery"], raised["retry_in"]
    if delay is None:  # not to be retried (FatalError, no retries): failed now
        return _failed(delivery, raised["raised"])
    if delay > 0:
        await sleep(delay)
    return await as_step(stream_run_id, steps, delivery)


async def retried(
    stream_run_id: str, steps: Steps, outcomes: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The batch's outcomes, each execution that raised run again (workflow code)."""
    if not any("raised" in o for o in outcomes):
        return outcomes

    async def settled(outcome: dict[str, Any]) -> dict[str, Any]:
        return await _again(stream_run_id, steps, outcome) if "raised" in outcome else outcome

    return list(await asyncio.gather(*(settled(o) for o in outcomes)))
