"""Workflow primitives: what workflow code awaits besides steps.

Each primitive checks where it runs: in workflow code it becomes a durable command; in a step
(or plain code) it does the ordinary, non-durable thing, or raises a typed error when there is
none (DESIGN §1).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, ParamSpec, TypeVar, overload

from pyworkflow import _payload_types, config, registry
from pyworkflow._engine import waits
from pyworkflow._engine.activation import WorkflowActivation
from pyworkflow._engine.context import current_activation, current_step, shielded
from pyworkflow._engine.new_runs import encode_call
from pyworkflow.children import ChildWorkflowHandle, start_child_from_step
from pyworkflow.durations import resolve_wake_time
from pyworkflow.exceptions import InputError, NotInWorkflowError, TransientRunError
from pyworkflow.workflow import Workflow

__all__ = [
    "TypedHook",
    "continue_as_new",
    "define_hook",
    "hook",
    "shield",
    "sleep",
    "start_child_workflow",
]

_P = TypeVar("_P")
_A = ParamSpec("_A")
_R = TypeVar("_R")
_POLICIES = ("cancel", "abandon")

OnCreated = Callable[[str], Awaitable[None] | None]
"""``on_created(token)``: sync or async, called with the hook's token once it is issued."""


def _workflow_activation(what: str) -> WorkflowActivation:
    """The activation of the workflow code calling ``what``, or a NotInWorkflowError."""
    activation = current_activation.get()
    if current_step.get() is not None:
        raise NotInWorkflowError(
            f"{what} cannot be called inside a step: a step cannot suspend to wait; "
            "move the call to workflow code"
        )
    if activation is None:
        raise NotInWorkflowError(f"{what} can only be called in workflow code")
    return activation


async def sleep(duration: str | float | timedelta | datetime) -> None:
    """Wait for a duration or until an aware datetime.

    In workflow code the wait is durable: the wake-up time is stored, the run suspends and holds
    no worker, and it wakes when due, also after a restart. In a step (or outside pyworkflow)
    it is ``asyncio.sleep``: the worker is held and a crash loses the wait.

    Example:
        >>> @workflow()
        ... async def reminder(user_id: str) -> None:
        ...     await sleep("3d")
        ...     await send_reminder(user_id)

    Raises:
        InvalidDurationError: ``"5 parsecs"``, ``"-1s"``, NaN, a naive datetime ...
    """
    activation = current_activation.get()
    if activation is not None and current_step.get() is None:
        await activation.sleep_until(resolve_wake_time(duration, activation.now()))
        return
    # The wall clock, not the loop's: an aware datetime names a wall-clock instant.
    now = time.time()
    await asyncio.sleep(max(0.0, resolve_wake_time(duration, now) - now))


async def _hook(
    name: str,
    timeout: str | float | timedelta | None,  # noqa: ASYNC109 (a durable timer, not a deadline)
    on_created: OnCreated | None,
    payload_type: Any,
) -> Any:
    activation = _workflow_activation("hook()")
    durable = activation.workflow.durable
    if durable is False or (durable is None and not config.default_durable()):
        raise TransientRunError(f"hook({name!r})")
    if not isinstance(name, str) or not name:
        raise InputError(f"a hook needs a non-empty name, not {name!r}")
    expires_at = None if timeout is None else resolve_wake_time(timeout, activation.now())
    path = None if payload_type is None else _payload_types.type_path(payload_type)
    return await waits.wait_hook(
        activation, name, expires_at=expires_at, payload_type=path, on_created=on_created
    )


async def hook(
    name: str,
    timeout: str | float | timedelta | None = None,  # noqa: ASYNC109 (the documented name)
    on_created: OnCreated | None = None,
) -> Any:
    """Suspend the run until ``resume_hook(token, payload)`` delivers a payload; return it.

    The token is handed to ``on_created(token)`` (send it by email, store it); it is the same
    on every replay, so ``on_created`` may call steps. With a ``timeout`` the wait is a stored
    timer: when it passes, ``HookExpiredError`` is raised here (catch it to go on).

    Example:
        >>> @workflow()
        ... async def expense(report_id: str) -> str:
        ...     async def ask(token: str) -> None:
        ...         await email_manager(report_id, approve_url=f"https://x/approve/{token}")
        ...     decision = await hook("approval", timeout="7d", on_created=ask)
        ...     return "approved" if decision["ok"] else "rejected"

    Raises:
        NotInWorkflowError: called in a step or outside workflow code.
        InvalidDurationError: a timeout that is not a duration.
        HookExpiredError: the timeout passed first.
        TransientRunError: the run is transient (``durable=False``).
    """
    return await _hook(name, timeout, on_created, None)


class TypedHook(Generic[_P]):
    """A hook whose payload has a declared type, made by :func:`define_hook`."""

    def __init__(self, name: str, payload_type: type[_P]) -> None:
        self.name = name
        self.payload_type = payload_type

    async def __call__(
        self,
        timeout: str | float | timedelta | None = None,  # noqa: ASYNC109 (the documented name)
        on_created: OnCreated | None = None,
    ) -> _P:
        """Wait for the payload, as :func:`hook` does; it arrives validated and typed."""
        value: _P = await _hook(self.name, timeout, on_created, self.payload_type)
        return value

    def __repr__(self) -> str:
        return f"TypedHook({self.name!r}, {_payload_types.type_path(self.payload_type)})"


def define_hook(name: str, payload_type: type[_P]) -> TypedHook[_P]:
    """Declare a typed hook: ``resume_hook`` validates its payload against ``payload_type``.

    ``payload_type`` is a dataclass, a TypedDict or a pydantic model, defined at module level:
    its import path is stored with the hook, so the process calling ``resume_hook`` validates
    without having imported the workflow, and refuses a bad payload naming the field.

    Example:
        >>> @dataclass
        ... class Approval:
        ...     approved: bool
        ...     reviewer: str
        >>> approval = define_hook("approval", Approval)
        >>> @workflow()
        ... async def expense(report_id: str) -> bool:
        ...     decision = await approval(timeout="7d")
        ...     return decision.approved

    Raises:
        NotInWorkflowError: called inside a step.
        InvalidHookPayloadError: an unsupported or unimportable payload type.
    """
    if current_step.get() is not None:
        raise NotInWorkflowError(
            "define_hook() cannot be called inside a step: hooks wait in workflow code; "
            "define the hook at module level and await it in the workflow"
        )
    _payload_types.check_payload_type(name, payload_type)
    return TypedHook(name, payload_type)


# Typed for users (py.typed): the child's result type, or a handle of it when
# wait_for_completion is False. Options cannot sit beside P.kwargs (PEP 612): only a call
# without them has its arguments checked against the child's signature.
@overload
async def start_child_workflow(wf: Workflow[_A, _R], *args: _A.args, **kwargs: _A.kwargs) -> _R: ...
@overload
async def start_child_workflow(
    wf: Workflow[..., _R],
    *args: Any,
    wait_for_completion: Literal[True] = ...,
    parent_close_policy: str,
    **kwargs: Any,
) -> _R: ...
@overload
async def start_child_workflow(
    wf: Workflow[..., _R],
    *args: Any,
    wait_for_completion: Literal[True],
    parent_close_policy: str = ...,
    **kwargs: Any,
) -> _R: ...
@overload
async def start_child_workflow(
    wf: Workflow[..., _R],
    *args: Any,
    wait_for_completion: Literal[False],
    parent_close_policy: str = ...,
    **kwargs: Any,
) -> ChildWorkflowHandle[_R]: ...
@overload
async def start_child_workflow(
    wf: Workflow[..., _R],
    *args: Any,
    wait_for_completion: bool,
    parent_close_policy: str = ...,
    **kwargs: Any,
) -> _R | ChildWorkflowHandle[_R]: ...
@overload
async def start_child_workflow(
    wf: str,
    *args: Any,
    wait_for_completion: bool = ...,
    parent_close_policy: str = ...,
    **kwargs: Any,
) -> Any: ...
async def start_child_workflow(  # type: ignore[misc]  # P.kwargs may not hold the options
    wf: Workflow[..., Any] | str,
    *args: Any,
    wait_for_completion: bool = True,
    parent_close_policy: str = "cancel",
    **kwargs: Any,
) -> Any:
    """Start a child run of ``wf``; wait for its result, or get a ``ChildWorkflowHandle``.

    In workflow code the child is created in the same transaction that logs it, so no crash
    or replay starts it twice, and waiting suspends the parent (holding no worker) until the
    child ends. From a step, ``wait_for_completion=True`` blocks the step, checking storage
    with backoff from 1 s to 10 s. When the parent ends, an unfinished child is cancelled,
    unless it was started with ``parent_close_policy="abandon"``.

    Example:
        >>> receipt = await start_child_workflow(charge_card, order_id)
        >>> audit = await start_child_workflow(
        ...     audit_trail, order_id, wait_for_completion=False, parent_close_policy="abandon"
        ... )

    Raises:
        ChildWorkflowFailedError: the child failed (``ChildWorkflowCancelledError``: it was
            cancelled); carries the child's error type and message.
        WorkflowNotFoundError / SerializationError / InputError: a bad workflow, argument or
            policy; nothing is started.
    """
    if parent_close_policy not in _POLICIES:
        raise InputError(
            f"parent_close_policy must be one of {_POLICIES}, not {parent_close_policy!r}"
        )
    definition = wf if isinstance(wf, Workflow) else registry.get_workflow(wf)
    step_context = current_step.get()
    if step_context is not None:
        return await start_child_from_step(
            step_context, definition, args, kwargs, wait_for_completion, parent_close_policy
        )
    activation = _workflow_activation("start_child_workflow()")
    encoded = encode_call(definition, args, kwargs, activation.codec)
    command = waits.start_child(
        activation, definition, encoded, wait=wait_for_completion, policy=parent_close_policy
    )
    if wait_for_completion:
        return await command.future
    assert command.target is not None
    handle: ChildWorkflowHandle[Any] = ChildWorkflowHandle(
        command.target, definition.name, started=command
    )
    return handle


def continue_as_new(*args: Any, **kwargs: Any) -> Any:
    """End this run and start a fresh one of the same workflow with these arguments.

    The end and the new run are one transaction; callers of ``get_workflow_result`` follow the
    chain to its last run, and ``get_workflow_chain(run_id)`` lists it. Use it to keep the
    history of a long-lived workflow short. Never returns.

    Example:
        >>> @workflow()
        ... async def poller(cursor: int) -> None:
        ...     cursor = await poll_once(cursor)
        ...     await sleep("1h")
        ...     continue_as_new(cursor)

    Raises:
        NotInWorkflowError: outside workflow code.
        SerializationError / InputError: arguments that cannot be encoded or do not fit.
    """
    activation = _workflow_activation("continue_as_new()")
    encoded = encode_call(activation.workflow, args, kwargs, activation.codec)
    raise activation.continue_as_new(encoded)


@asynccontextmanager
async def shield() -> AsyncIterator[None]:
    """Defer cancellation inside the block, for cleanup that must run to the end.

    After ``cancel_workflow`` the workflow's next primitive raises ``CancellationError``;
    inside ``async with shield():`` steps, sleeps and hooks work as usual, and the block is
    not interrupted. Outside workflow code it does nothing.

    Example:
        >>> try:
        ...     await sleep("30d")
        ... except CancellationError:
        ...     async with shield():
        ...         await release_reservation(order_id)
        ...     raise
    """
    token = shielded.set(True)
    try:
        yield
    finally:
        shielded.reset(token)
