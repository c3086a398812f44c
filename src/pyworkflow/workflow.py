"""``@workflow``: register an async, deterministic orchestration function."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, ParamSpec, TypeVar, overload

from pyworkflow import registry
from pyworkflow.durations import parse_duration
from pyworkflow.exceptions import (
    InvalidDurationError,
    WorkflowCalledDirectlyError,
    WorkflowDefinitionError,
)
from pyworkflow.queues import DEFAULT_QUEUE, queue_problem

__all__ = ["MAX_TAG_LENGTH", "Workflow", "workflow"]

MAX_TAG_LENGTH = 100
"""The longest tag ``@workflow(tags=...)`` accepts."""

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
        durable: True or False as declared; None follows ``configure(default_durable=)``.
        tags: labels stored with each run; ``list_workflow_runs(tags=...)`` filters on them.
        recover_on_worker_loss: False fails a run whose worker died instead of taking it over.
        max_recovery_attempts: take-overs without progress before a run is failed, or None
            for the process's ``max_recoveries``.
        context_class: the ``StepContext`` subclass its runs set with ``set_step_context``.
    """

    fn: Callable[P, Coroutine[Any, Any, R]]
    name: str
    max_duration: float | None = None
    queue: str = DEFAULT_QUEUE
    durable: bool | None = None
    tags: tuple[str, ...] = ()
    recover_on_worker_loss: bool = True
    max_recovery_attempts: int | None = None
    context_class: type[Any] | None = None
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


@overload
def workflow(name: Callable[P, Coroutine[Any, Any, R]], /) -> Workflow[P, R]: ...
@overload
def workflow(
    name: str | None = None,
    *,
    max_duration: str | float | timedelta | None = None,
    queue: str | None = None,
    durable: bool | None = None,
    tags: Iterable[str] | None = None,
    recover_on_worker_loss: bool = True,
    max_recovery_attempts: int | None = None,
    context_class: type[Any] | None = None,
) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Workflow[P, R]]: ...
def workflow(
    name: Any = None,
    *,
    max_duration: str | float | timedelta | None = None,
    queue: str | None = None,
    durable: bool | None = None,
    tags: Iterable[str] | None = None,
    recover_on_worker_loss: bool = True,
    max_recovery_attempts: int | None = None,
    context_class: type[Any] | None = None,
) -> Any:
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
        durable: False makes its runs transient (``pyworkflow.transient``): executed in this
            process, nothing written to storage. None (the default) follows
            ``configure(default_durable=...)``, which is True unless changed.
        tags: labels stored with every run of it; ``list_workflow_runs(tags=[...])`` and
            ``pyworkflow runs list --tag`` filter on them.
        recover_on_worker_loss: False fails a run whose worker died (``kill -9``, the OOM
            killer) with ``WorkerLostError`` instead of taking it over elsewhere: for work
            that must not run twice.
        max_recovery_attempts: take-overs without progress before a run of it is failed with
            ``RecoveryLimitExceeded`` (default: the process's ``max_recoveries``, 5).
        context_class: the ``StepContext`` subclass that its workflow code sets with
            ``set_step_context()`` and its steps read with ``get_step_context()``.

    ``@workflow`` without parentheses is the same as ``@workflow()``.

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
            name=given_name or fn.__name__,
            max_duration=limit,
            queue=DEFAULT_QUEUE if queue is None else queue,
            durable=durable,
            tags=_check_tags(tags, where),
            recover_on_worker_loss=_check_flag(recover_on_worker_loss, where),
            max_recovery_attempts=_check_attempts(max_recovery_attempts, where),
            context_class=_check_context_class(context_class, where),
        )
        registry.register_workflow(definition)
        return definition

    if callable(name):  # bare @workflow
        given_name = None
        return decorate(name)
    if name is not None and not isinstance(name, str):
        raise WorkflowDefinitionError(f"@workflow(name=...) must be a string, not {name!r}")
    if durable is not None and not isinstance(durable, bool):
        raise WorkflowDefinitionError(f"@workflow(durable=...) must be True or False: {durable!r}")
    given_name = name
    return decorate


def _check_tags(tags: Iterable[str] | None, where: str) -> tuple[str, ...]:
    if tags is None:
        return ()
    if isinstance(tags, str):
        raise WorkflowDefinitionError(f"{where}: tags must be a list of strings, not {tags!r}")
    found = tuple(tags)
    for tag in found:
        if not isinstance(tag, str) or not tag.strip() or len(tag) > MAX_TAG_LENGTH or "," in tag:
            raise WorkflowDefinitionError(
                f"{where}: tag {tag!r} must be a non-empty string without commas, of at most "
                f"{MAX_TAG_LENGTH} characters"
            )
    return tuple(dict.fromkeys(found))  # declared order, duplicates once


def _check_flag(value: bool, where: str) -> bool:
    if not isinstance(value, bool):
        raise WorkflowDefinitionError(f"{where}: recover_on_worker_loss must be a bool: {value!r}")
    return value


def _check_attempts(value: int | None, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise WorkflowDefinitionError(
            f"{where}: max_recovery_attempts must be a whole number >= 0, not {value!r}"
        )
    return value


def _check_context_class(cls: type[Any] | None, where: str) -> type[Any] | None:
    # Imported here: step_context imports the engine's context, which the registry's users
    # import before workflow.py is complete.
    from pyworkflow.step_context import StepContext

    if cls is None:
        return None
    if not (isinstance(cls, type) and issubclass(cls, StepContext)):
        raise WorkflowDefinitionError(
            f"{where}: context_class must be a subclass of pyworkflow.StepContext, not {cls!r}"
        )
    return cls
