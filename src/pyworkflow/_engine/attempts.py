"""Executing one attempt of a step, and deciding what its failure means.

An attempt runs the user's function in a fresh context holding only the step's ``StepInfo``
(so primitives inside it behave as step code), under the step's timeout. Its outcome is plain
data for the driver: a value to log, or an error with the decision whether to retry and when.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyworkflow._engine import tracing
from pyworkflow._engine.context import StepInfo, current_activation, current_step
from pyworkflow._engine.failures import error_record
from pyworkflow.durations import parse_duration
from pyworkflow.exceptions import (
    CancellationError,
    FatalError,
    InvalidDurationError,
    RetryableError,
    SerializationError,
    StepTimeoutError,
)
from pyworkflow.logging import run_logger

if TYPE_CHECKING:
    from pyworkflow.retries import RetryPolicy
    from pyworkflow.serialization import Codec
    from pyworkflow.step import StepDefinition

__all__ = ["AttemptResult", "attempt_context", "retry_delay", "run_attempt"]

_log = logging.getLogger("pyworkflow.run")


@dataclass(slots=True)
class AttemptResult:
    """How one attempt ended.

    ``encoded`` is the logged form of the value on success. On failure ``retry_in`` is the
    delay before the next attempt, or None when the step has failed for good.
    """

    ok: bool
    value: Any = None
    encoded: Any = None
    error: BaseException | None = None
    record: dict[str, Any] | None = None
    retry_in: float | None = None


def _retry_delay(definition: StepDefinition, context: StepInfo, exc: BaseException) -> float | None:
    # Attempts a crash or a hand-over cut short ran again, but they did not fail: no retry spent.
    return retry_delay(definition.retry, context.attempt - context.interrupted, exc)


def retry_delay(retry: RetryPolicy, attempt: int, exc: BaseException) -> float | None:
    """Seconds until the retry of failed attempt ``attempt`` (1, 2, ...), or None for none.

    None for an error no retry can mend (FatalError, SerializationError) and once the policy's
    attempts are spent; a RetryableError's ``retry_after`` overrides the policy's delay.
    """
    if isinstance(exc, FatalError | SerializationError):
        return None
    if attempt >= retry.max_attempts:
        return None
    if isinstance(exc, RetryableError) and exc.retry_after is not None:
        try:
            return parse_duration(exc.retry_after)
        except InvalidDurationError:
            pass  # a bad retry_after falls back to the step's own policy
    return retry.delay_for(attempt)


def attempt_context(context: StepInfo) -> contextvars.Context:
    """A context for an attempt's task: step code, not workflow code."""
    step_context = contextvars.Context()
    step_context.run(current_activation.set, None)
    step_context.run(current_step.set, context)
    if tracing.current is not None:
        tracing.current.carry(step_context)
    return step_context


async def run_attempt(
    definition: StepDefinition,
    context: StepInfo,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    codec: Codec,
) -> AttemptResult:
    """Run attempt ``context.attempt`` of a step and classify its outcome.

    Run it in a task made with ``attempt_context(context)``.
    """
    if _log.isEnabledFor(logging.DEBUG):
        run_logger(
            context.run_id, context.workflow_name, step_id=context.step_id, attempt=context.attempt
        ).debug("step %s attempt %d started", context.step_id, context.attempt)
    tracer = tracing.current
    if tracer is None:
        return await _execute(definition, context, args, kwargs, codec)
    with tracer.attempt(context) as trace:
        result = await _execute(definition, context, args, kwargs, codec)
        trace.finished(result.error, result.retry_in)
        return result


async def _execute(
    definition: StepDefinition,
    context: StepInfo,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    codec: Codec,
) -> AttemptResult:
    try:
        if definition.timeout is None:
            value = await definition.fn(*args, **kwargs)
        else:
            deadline = asyncio.timeout(definition.timeout)
            try:
                async with deadline:
                    value = await definition.fn(*args, **kwargs)
            except TimeoutError as exc:
                if not deadline.expired():
                    raise  # the step's own TimeoutError, not our deadline
                raise StepTimeoutError(definition.name, definition.timeout) from exc
        encoded = codec.encode(value, path=f"result of step {context.step_id!r}", result=True)
    except Exception as exc:
        return AttemptResult(
            ok=False,
            error=exc,
            record=error_record(exc),
            retry_in=_retry_delay(definition, context, exc),
        )
    except CancellationError as exc:
        # The step saw its run's cancel request (get_context().check_cancellation()): it
        # fails at once, and the workflow sees CancellationError at the step's call.
        return AttemptResult(ok=False, error=exc, record=error_record(exc), retry_in=None)
    return AttemptResult(ok=True, value=value, encoded=encoded)
