"""Determinism rules for workflow code, and the replay-safe helpers that keep them.

Workflow code is replayed from the log after a restart, so it must issue the same commands in
the same order every time it runs with the same log:

1. All I/O goes in steps. Workflow code awaits only steps, ``sleep``, and ``asyncio.gather``
   of coroutines that do the same. The client (``start``, ``get_workflow_run``,
   ``resume_hook`` ...) is I/O too: in workflow code it raises ``ClientCallInWorkflowError``;
   the primitives (``start_child_workflow`` and its handle, ``hook``) do what it would.
2. Clock, randomness and ids come from ``now()``, ``random()`` and ``uuid4()`` here: the first
   run records each value, replays return the recorded one.
3. Allowed concurrency: ``asyncio.gather`` (and ``create_task`` awaited later). Its branches
   start in argument order and outcomes are replayed in the order they were logged, so they
   interleave as they did the first time. Not allowed: ``asyncio.wait``, ``as_completed``,
   ``wait_for`` and ``asyncio.sleep``: they depend on timers that do not exist in workflow
   code (the workflow loop refuses them with a clear error).
4. Do not branch on mutable global state, environment variables or wall-clock time read
   directly; if a value may change between deploys, read it in a step.
5. To change the commands a deployed workflow issues while runs of it are in flight, branch
   on ``patched("change-id")``: runs recorded by the old code keep taking the old branch,
   new runs take the new one. Once no old run is left, keep only the new branch behind
   ``deprecate_patch("change-id")``; once no run that saw the patch is left, drop that too.

A replay that issues a different command (kind or name) than the log holds at the same position
raises ``NonDeterminismError`` before anything executes.

Outside workflow code the helpers simply return fresh values.
"""

from __future__ import annotations

import inspect
import random as _random
import uuid as _uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pyworkflow._engine.context import current_activation, current_step
from pyworkflow.exceptions import (
    ClientCallInWorkflowError,
    InvalidChangeIdError,
    NotInWorkflowError,
)

if TYPE_CHECKING:
    from pyworkflow._engine.activation import WorkflowActivation

__all__ = ["deprecate_patch", "in_workflow", "now", "patched", "random", "uuid4"]


def in_workflow() -> bool:
    """True when called from workflow code (not from a step, not from plain code)."""
    return current_activation.get() is not None and current_step.get() is None


def now() -> datetime:
    """The current time as an aware UTC datetime, recorded in workflow code.

    Example:
        >>> deadline = now() + timedelta(days=7)
    """
    activation = current_activation.get()
    if activation is None or current_step.get() is not None:
        return datetime.now(UTC)
    clock_now = activation.now
    return activation.side_effect("now", lambda: datetime.fromtimestamp(clock_now(), UTC))


def uuid4() -> _uuid.UUID:
    """A random UUID, recorded in workflow code."""
    activation = current_activation.get()
    if activation is None or current_step.get() is not None:
        return _uuid.uuid4()
    return activation.side_effect("uuid4", _uuid.uuid4)


def random() -> float:
    """A float in [0, 1), recorded in workflow code."""
    activation = current_activation.get()
    if activation is None or current_step.get() is not None:
        return _random.random()
    return activation.side_effect("random", _random.random)


def patched(change_id: str) -> bool:
    """Whether this run takes the new branch of a code change (versioning of running workflows).

    True for a run that reaches the call under code that has the change: a marker is
    recorded, so the run keeps getting True on every replay. False for a run whose history
    was recorded by code from before the change (its log goes on, at this point, with what
    the old code did): it keeps taking the old branch and its log still replays. The answer
    holds for the rest of the run: a later ``patched`` with the same id returns the same.

    Example:
        >>> @workflow()
        ... async def checkout(order_id: str) -> str:
        ...     order = await load_order(order_id)
        ...     if patched("fraud-check"):
        ...         await check_fraud(order)    # runs started after the deploy
        ...     return await charge(order)      # both kinds of run

    Raises:
        NotInWorkflowError: called outside workflow code (e.g. in a step).
        InvalidChangeIdError: ``change_id`` is not a non-empty string.
    """
    return _workflow_activation("patched", change_id).patched(change_id)


def deprecate_patch(change_id: str) -> None:
    """Mark where ``patched(change_id)`` was, once every run that took the old branch ended.

    The code keeps only the new branch; runs that recorded the patch's marker still replay
    (the marker is consumed here), and so do runs started after the deploy (they record
    nothing). Remove the call once no run that saw the patch is left.

    Example:
        >>> @workflow()
        ... async def checkout(order_id: str) -> str:
        ...     order = await load_order(order_id)
        ...     deprecate_patch("fraud-check")
        ...     await check_fraud(order)
        ...     return await charge(order)

    Raises:
        NotInWorkflowError: called outside workflow code (e.g. in a step).
        InvalidChangeIdError: ``change_id`` is not a non-empty string.
    """
    _workflow_activation("deprecate_patch", change_id).deprecate_patch(change_id)


def _workflow_activation(function: str, change_id: object) -> WorkflowActivation:
    if not isinstance(change_id, str) or not change_id.strip():
        raise InvalidChangeIdError(change_id)
    activation = current_activation.get()
    if activation is None or current_step.get() is not None:
        where = "in a step" if current_step.get() is not None else "outside a workflow"
        raise NotInWorkflowError(
            f"{function}({change_id!r}) was called {where}; it only has a meaning in workflow "
            "code, where it decides which branch a run's history takes"
        )
    return activation


_INSTEAD = {
    "start": "start a child with start_child_workflow(wf, ..., wait_for_completion=False)",
    "run": "await start_child_workflow(wf, ...)",
    "get_workflow_result": "await the child's result (start_child_workflow, handle.result())",
    "get_workflow_run": "ask the ChildWorkflowHandle of a child (handle.get_status())",
    "get_workflow_chain": "ask the ChildWorkflowHandle of a child (handle.get_status())",
    "cancel_workflow": "cancel a child through its ChildWorkflowHandle (handle.cancel())",
}
_USE_PRIMITIVES = "use the workflow primitives (start_child_workflow and its handle, hook, sleep)"
_OWN_HANDLE = (
    "call it on the handle that start_child_workflow(..., wait_for_completion=False) "
    "returned in this run (this handle's child was not started here)"
)


def refuse_client_call() -> None:
    """Raise ClientCallInWorkflowError when workflow code (not a step) calls the client.

    Called where every client call gets its runtime: there, workflow code would read or write
    storage from the workflow's own loop, which runs no I/O (SQLite's thread would call back
    into it and wait forever), and replay could not repeat the answer.
    """
    if not in_workflow():
        return
    call = _client_call()
    if call.startswith("ChildWorkflowHandle."):
        instead = _OWN_HANDLE
    else:
        instead = _INSTEAD.get(call, _USE_PRIMITIVES)
    raise ClientCallInWorkflowError(f"{call}()", instead)


def _client_call() -> str:
    """The pyworkflow function the user's code called: the outermost pyworkflow frame.

    Found from the stack, on this error path only, so the message names what the user wrote
    (``run()``, not the ``start()`` it calls) for every client function, present and future.
    """
    name = "get_runtime"
    frame = inspect.currentframe()
    frame = frame.f_back if frame is not None else None
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module != "pyworkflow" and not module.startswith("pyworkflow."):
            break
        name = frame.f_code.co_qualname
        frame = frame.f_back
    return name
