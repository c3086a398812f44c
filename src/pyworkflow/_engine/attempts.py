"""Executing one attempt of a step, and deciding what its failure means.

An attempt runs the user's function in a fresh context holding only the step's ``StepContext``
(so primitives inside it behave as step code), under the step's timeout. Its outcome is plain
data for the driver: a value to log, or an error with the decision whether to retry and when.
"""

from __future__ import annotations

import asyncio
import contextvars
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyworkflow._engine.context import StepContext, current_activation, current_step
from pyworkflow._engine.failures import error_record
from pyworkflow.durations import parse_duration
from pyworkflow.exceptions import (
    FatalError,
    InvalidDurationError,
    RetryableError,
    SerializationError,
    StepTimeoutError,
)

if TYPE_CHECKING:
    from pyworkflow.serialization import Codec
    from pyworkflow.step import StepDefinition

__all__ = ["AttemptResult", "attempt_context", "run_attempt"]


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


def _retry_delay(definition: StepDefinition, attempt: int, exc: BaseException) -> float | None:
    if isinstance(exc, FatalError | SerializationError):
        return None
    if attempt >= definition.retry.max_attempts:
        return None
    if isinstance(exc, RetryableError) and exc.retry_after is not None:
        try:
            return parse_duration(exc.retry_after)
        except InvalidDurationError:
            pass  # a bad retry_after falls back to the step's own policy
    return definition.retry.delay_for(attempt)


def attempt_context(context: StepContext) -> contextvars.Context:
    """A context for an attempt's task: step code, not workflow code."""
    step_context = contextvars.Context()
    step_context.run(current_activation.set, None)
    step_context.run(current_step.set, context)
    return step_context


async def run_attempt(
    definition: StepDefinition,
    context: StepContext,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    codec: Codec,
) -> AttemptResult:
    """Run attempt ``context.attempt`` of a step and classify its outcome.

    Run it in a task made with ``attempt_context(context)``.
    """
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
        encoded = codec.encode(value, path=f"result of step {context.step_id!r}")
    except Exception as exc:
        return AttemptResult(
            ok=False,
            error=exc,
            record=error_record(exc),
            retry_in=_retry_delay(definition, context.attempt, exc),
        )
    return AttemptResult(ok=True, value=value, encoded=encoded)
