"""``@workflow``: register an async, deterministic orchestration function."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, ParamSpec, TypeVar

from pyworkflow import registry
from pyworkflow.durations import parse_duration
from pyworkflow.exceptions import (
    InvalidDurationError,
    WorkflowCalledDirectlyError,
    WorkflowDefinitionError,
)
from pyworkflow.queues import DEFAULT_QUEUE, queue_problem

__all__ = ["Workflow", "workflow"]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, eq=False)
class Workflow(Generic[P, R]):
    """A registered workflow: pass it to ``run``/``start``; calling it directly is an error.

    Attributes:
        fn: the user's async function.
        name: the name runs are stored under (the function's name unless given).
        max_duration: seconds a run may take, or None.
        queue: the queue whose workers execute its runs (``pyworkflow.queues``).
    """

    fn: Callable[P, Coroutine[Any, Any, R]]
    name: str
    max_duration: float | None = None
    queue: str = DEFAULT_QUEUE
    signature: inspect.Signature = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Read once here: inspect.signature costs ~80 us, too much for every start().
        object.__setattr__(self, "signature", inspect.signature(self.fn))

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Refused: a workflow runs through the engine, never as a plain coroutine."""
        raise WorkflowCalledDirectlyError(self.name)

    @property
    def __name__(self) -> str:
        return self.name


def workflow(
    name: str | None = None,
    *,
    max_duration: str | float | timedelta | None = None,
    queue: str | None = None,
) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Workflow[P, R]]:
    """Register an async function as a durable workflow.

    Workflow code must be deterministic (see ``pyworkflow.determinism``): it awaits steps,
    ``sleep`` and ``asyncio.gather`` of them, and reads time and randomness only through
    ``now()``, ``uuid4()`` and ``random()``.

    Example:
        >>> @workflow()
        ... async def onboarding(user_id: str) -> dict:
        ...     user = await fetch_user(user_id)
        ...     await sleep("1h")
        ...     return await send_welcome(user)

        >>> @workflow(queue="billing")  # only workers started with -Q billing execute it
        ... async def charge(invoice_id: str) -> str: ...

    Args:
        name: the name runs are stored under; defaults to the function's ``__name__``.
        max_duration: a duration after which a run is failed (enforced by a later version;
            validated now so a bad value fails at import).
        queue: the queue its runs go to (default ``"pyworkflow"``, ``queues.DEFAULT_QUEUE``):
            only workers serving that queue (``pyworkflow worker run -Q billing``,
            ``configure(queues=...)``) execute them; a process that starts a run of a queue it
            does not serve stores it for such a worker. Its children and continuations go to
            their own workflow's queue.

    Raises:
        WorkflowDefinitionError: not an async function, a bad option, or a duplicate name.
    """

    def decorate(fn: Callable[P, Coroutine[Any, Any, R]]) -> Workflow[P, R]:
        where = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)!s}"
        if not inspect.iscoroutinefunction(fn):
            raise WorkflowDefinitionError(
                f"@workflow needs an `async def` function; {where} is not one"
            )
        limit = None
        if max_duration is not None:
            try:
                limit = parse_duration(max_duration)
            except InvalidDurationError as exc:
                raise WorkflowDefinitionError(f"{where}: max_duration: {exc}") from exc
        if queue is not None and (problem := queue_problem(queue)) is not None:
            raise WorkflowDefinitionError(f"{where}: queue: {problem}")
        definition = Workflow(
            fn=fn,
            name=name or fn.__name__,
            max_duration=limit,
            queue=DEFAULT_QUEUE if queue is None else queue,
        )
        registry.register_workflow(definition)
        return definition

    if callable(name):
        raise WorkflowDefinitionError(
            f"write @workflow() with parentheses (applied to {name.__qualname__})"
        )
    return decorate
