"""``@step``: an isolated, retryable unit of work whose result is logged.

Awaited inside workflow code, a step call becomes a command: the engine numbers it by position
(``name#n``), returns its logged outcome on replay, or records and executes it. Awaited anywhere
else (a unit test, another step) it simply runs as the coroutine it wraps.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Any, ParamSpec, TypeVar, cast, overload

from pyworkflow import registry
from pyworkflow._engine.context import current_activation, current_step
from pyworkflow.durations import parse_duration
from pyworkflow.exceptions import InvalidDurationError, StepDefinitionError
from pyworkflow.queues import queue_problem
from pyworkflow.retries import RetryPolicy

__all__ = ["StepDefinition", "step"]  # early_step: pyworkflow's own, not for users

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, eq=False)
class StepDefinition:
    """A registered step and its options.

    Attributes:
        fn: the user's async function.
        name: the name used in step ids (``name#n``) and in the log.
        retry: how often and how long to retry.
        timeout: seconds one attempt may take, or None.
        force_local: run inline in the orchestrating process (matters on Celery).
        queue: the queue whose workers execute its attempts (None: its run's worker on the
            local executor, the default queue on Celery).
        metadata: the user's labels for the step (``@step(metadata=...)``), read-only; the
            engine does not interpret them.
        early: started alongside the commit that logs its start instead of after it
            (:func:`early_step`: pyworkflow's own idempotent steps only).
    """

    fn: Callable[..., Coroutine[Any, Any, Any]]
    name: str
    retry: RetryPolicy
    timeout: float | None
    force_local: bool
    queue: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    early: bool = False


@overload
def step(name: Callable[P, Coroutine[Any, Any, R]], /) -> Callable[P, Coroutine[Any, Any, R]]: ...
@overload
def step(
    name: str | None = None,
    *,
    max_retries: int = 3,
    retry_delay: str | float | timedelta | list[Any] | tuple[Any, ...] = "exponential",
    timeout: str | float | timedelta | None = None,
    force_local: bool = False,
    queue: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Callable[P, Coroutine[Any, Any, R]]]: ...
def step(
    name: Any = None,
    *,
    max_retries: int = 3,
    retry_delay: str | float | timedelta | list[Any] | tuple[Any, ...] = "exponential",
    timeout: str | float | timedelta | None = None,
    force_local: bool = False,
    queue: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Any:
    """Register an async function as a step.

    Example:
        >>> @step(max_retries=3, retry_delay="exponential", timeout="30s")
        ... async def send_email(to: str, subject: str) -> dict:
        ...     ...

    Args:
        name: the step's name; defaults to the function's ``__name__``.
        max_retries: retries after the first attempt (3 means 4 attempts in all).
        retry_delay: ``"exponential"`` (1 s, 2 s, 4 s ... capped), a duration, or a list of
            durations, one per retry (the last repeats).
        timeout: a duration one attempt may take; an overrun fails that attempt.
        force_local: run inline in the orchestrating process, with the same durability.
        queue: the queue this step's attempts go to, so that only workers started with
            ``-Q <queue>`` execute it (e.g. the ones allowed to send email), on Celery and
            on local workers alike. Without one, a step runs with its run: on the worker
            that drives it (local), or on the default queue (Celery).
        metadata: labels of your own for the step (owner, cost centre ...), kept on its
            definition (``pyworkflow.registry.get_step(name).metadata``), read-only.

    ``@step`` without parentheses is the same as ``@step()``.

    Raises:
        StepDefinitionError: not an async function, or a bad option.
    """

    def decorate(fn: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        return _define(
            fn,
            given_name,
            max_retries=max_retries,
            retry_delay=retry_delay,
            timeout=timeout,
            force_local=force_local,
            queue=queue,
            metadata=metadata,
        )

    if callable(name):  # bare @step
        given_name = None
        return decorate(name)
    if name is not None and not isinstance(name, str):
        raise StepDefinitionError(f"@step(name=...) must be a string, not {name!r}")
    given_name = name
    return decorate


def _define(
    fn: Callable[P, Coroutine[Any, Any, R]],
    given_name: str | None,
    *,
    max_retries: int = 3,
    retry_delay: str | float | timedelta | list[Any] | tuple[Any, ...] = "exponential",
    timeout: str | float | timedelta | None = None,
    force_local: bool = False,
    queue: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    early: bool = False,
) -> Callable[P, Coroutine[Any, Any, R]]:
    """Validate, register and wrap ``fn`` as a step (``@step`` and :func:`early_step`)."""
    where = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)!s}"
    if not inspect.iscoroutinefunction(fn):
        raise StepDefinitionError(f"@step needs an `async def` function; {where} is not one")
    limit = None
    if timeout is not None:
        try:
            limit = parse_duration(timeout)
        except InvalidDurationError as exc:
            raise StepDefinitionError(f"{where}: timeout: {exc}") from exc
        if limit <= 0:
            raise StepDefinitionError(f"{where}: timeout must be positive, not {timeout!r}")
    if queue is not None and (problem := queue_problem(queue)) is not None:
        raise StepDefinitionError(f"{where}: queue: {problem}")
    if queue is not None and force_local:
        raise StepDefinitionError(
            f"{where}: a force_local step runs in the orchestrator; it cannot have a queue"
        )
    if metadata is not None and not isinstance(metadata, Mapping):
        raise StepDefinitionError(f"{where}: metadata must be a mapping, not {metadata!r}")
    definition = StepDefinition(
        fn=fn,
        name=given_name or fn.__name__,
        retry=RetryPolicy.from_options(max_retries, retry_delay, where=where),
        timeout=limit,
        force_local=force_local,
        queue=queue,
        metadata=MappingProxyType(dict(metadata or {})),
        early=early,
    )
    registry.register_step(definition)

    @functools.wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        activation = current_activation.get()
        if activation is None or current_step.get() is not None:
            return await fn(*args, **kwargs)
        return cast(R, await activation.call_step(definition, args, kwargs))

    call.__pyworkflow_step__ = definition  # type: ignore[attr-defined]
    return call


def early_step(
    name: str,
) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """A force-local step that starts alongside the commit logging its start: pyworkflow's own.

    Only for a step whose work before ``start_logged()`` (``pyworkflow._engine.context``) is
    idempotent in storage (running it again, or before its start is durable, returns the same
    outcome and writes nothing twice): the stream driver's take of a delivery batch, after
    which its batch step awaits ``start_logged()`` and runs the batch's executions. The driver
    then need not wait for one commit before the step's own transaction begins, so on a
    storage with group commit both share one (the B13 round trip). Its outcome is logged like
    any step's, after both.
    """

    def decorate(fn: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        return _define(fn, name, force_local=True, early=True)

    return decorate
