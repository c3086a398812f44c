"""Child runs seen from outside the engine: the handle, and children started by steps.

A child started by workflow code is a durable command (``waits.start_child``); in that
workflow its handle answers from the parent's log (``_engine/child_handles.py``): status,
a logged cancel, a durable ``result()``. Everywhere else (a step, a script) the handle reads
storage: ``result()`` waits with backoff from 1 s to 10 s, woken sooner when the executor
hears the run end (a local run, or a storage that notifies). A run that continued as new is
followed to the end of its chain.

A step cannot log commands, so a child it starts is made idempotent instead: its key is the
step's idempotency key plus the child's position in the step, so a retried or recovered step
gets the same child back rather than a second one.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pyworkflow._backoff import Backoff
from pyworkflow._engine import child_handles
from pyworkflow._engine.context import current_activation
from pyworkflow._engine.failures import type_path, unreadable_outcome
from pyworkflow._engine.new_runs import encode_call, new_run
from pyworkflow.determinism import in_workflow
from pyworkflow.events import RunStatus
from pyworkflow.exceptions import (
    ChildWorkflowCancelledError,
    ChildWorkflowFailedError,
    MaxNestingDepthError,
    RunNotFoundError,
)
from pyworkflow.runtime import get_runtime

if TYPE_CHECKING:
    from pyworkflow._engine.commands import Command
    from pyworkflow._engine.context import StepInfo
    from pyworkflow.storage.records import RunRecord
    from pyworkflow.workflow import Workflow

__all__ = ["ChildWorkflowHandle", "last_run_of_chain", "start_child_from_step"]

_FIRST_PAUSE, _LONGEST_PAUSE = 1.0, 10.0
_R = TypeVar("_R")


async def last_run_of_chain(run_id: str) -> RunRecord:
    """The run's row, or that of the last run its continue-as-new chain has reached."""
    runtime = await get_runtime()
    record = await runtime.storage.get_run(run_id)
    if record is None:
        raise RunNotFoundError(run_id)
    while record.status is RunStatus.CONTINUED_AS_NEW and record.continued_to:
        successor = await runtime.storage.get_run(record.continued_to)
        if successor is None:
            break
        record = successor
    return record


class ChildWorkflowHandle(Generic[_R]):
    """A child run started with ``wait_for_completion=False``; ``_R`` is its result's type.

    In the workflow code that started the child, the handle is replay-safe: it answers from
    the parent's log, never from a read of storage (whose answer a replay would not repeat).
    ``get_status()`` is ``running`` from the child's start until the parent logs its end, then
    ``completed``, ``failed`` or ``cancelled``; the parent logs the end of every child it
    started, awaited or not, at its first turn after the child ended (that end wakes it), and
    a replay gives each call the answer it got the first time. So poll with a durable wait
    between looks (``await sleep("1m")``), or simply await ``result()``. ``cancel()`` is a
    logged command; ``result()`` waits durably, holding no worker. Everywhere else (a step, a
    script) each method reads storage when called.

    Example:
        >>> audit = await start_child_workflow(audit_trail, order_id, wait_for_completion=False)
        >>> while await audit.is_running():
        ...     await sleep("10m")
        >>> if await audit.get_status() is RunStatus.FAILED:
        ...     await alert_ops(audit.run_id)

    Attributes:
        run_id: the child's run id (the first of its chain, if it continues as new).
        workflow_name: the child's workflow.
    """

    def __init__(self, run_id: str, workflow_name: str, *, started: Command | None = None) -> None:
        self.run_id = run_id
        self.workflow_name = workflow_name
        self._started = started  # the start command, when workflow code started the child

    @property
    def child_run_id(self) -> str:
        """``run_id``, by the name the pyworkflow documentation uses."""
        return self.run_id

    def __repr__(self) -> str:
        return f"ChildWorkflowHandle({self.run_id!r}, {self.workflow_name!r})"

    def _started_here(self) -> Command | None:
        """The child's start command, when called in the workflow code of the run that started it.

        None elsewhere: in a step, in plain code, or in workflow code that got a handle it did
        not start (which then reaches the client and is refused, ``ClientCallInWorkflowError``).
        """
        started = self._started
        if started is None or not in_workflow() or _in_other_loop(started.future):
            return None
        return started

    async def get_status(self) -> RunStatus:
        """The status of the child (of the last run of its chain).

        In the workflow that started it: ``running`` until the parent's log has the child's
        end, then ``completed``, ``failed`` or ``cancelled`` (the same on every replay).
        Elsewhere: the status stored now (``pending``, ``running``, ``suspended`` ...).
        """
        started = self._started_here()
        if started is not None:
            return child_handles.logged_status(started)
        return (await last_run_of_chain(self.run_id)).status

    async def is_running(self) -> bool:
        """True while the child has not ended (in workflow code: while its end is not logged)."""
        return not (await self.get_status()).is_terminal

    async def is_terminal(self) -> bool:
        """True once the child has ended (in workflow code: once its end is logged)."""
        return (await self.get_status()).is_terminal

    async def result(self, timeout: float | None = None) -> Any:  # noqa: ASYNC109 (documented name)
        """Wait for the child to end and return its result.

        In the workflow that started the child this is a durable wait, like awaiting
        ``start_child_workflow(...)``: the parent suspends until the child's end is logged
        (``timeout`` is not applied there: workflow code has no timers but durable ones).
        Elsewhere it checks storage with backoff from 1 s to 10 s.

        Raises:
            ChildWorkflowFailedError: the child failed (``ChildWorkflowCancelledError``: it
                was cancelled).
            TimeoutError: ``timeout`` seconds passed first (not in workflow code).
        """
        started = self._started_here()
        if started is not None:
            return await started.future
        return await wait_for_child(self.run_id, self.workflow_name, timeout)

    async def cancel(self, reason: str | None = None) -> bool:
        """Ask the child to stop; False if it has already ended.

        In the workflow that started the child this is a logged command
        (CHILD_WORKFLOW_CANCEL_REQUESTED): the request reaches the child once the parent's
        turn is committed, and a replay does not make it again. Its answer comes from the
        log: False, recording nothing, once the child's end is logged, else True (a child
        that ends first on its own keeps its own end). Await ``result()`` to see the child's
        end, ``ChildWorkflowCancelledError`` once the request took effect.
        """
        started = self._started_here()
        if started is not None:
            activation = current_activation.get()
            assert activation is not None
            return child_handles.cancel(activation, started, reason)
        from pyworkflow.client import cancel_workflow

        record = await last_run_of_chain(self.run_id)
        return await cancel_workflow(record.run_id, reason)


def _in_other_loop(future: asyncio.Future[Any]) -> bool:
    """True when ``future`` belongs to a workflow's loop other than the caller's."""
    return future.get_loop() is not asyncio.get_running_loop()


async def wait_for_child(run_id: str, workflow_name: str, timeout: float | None) -> Any:  # noqa: ASYNC109
    """Poll the child's chain until it ends; its result, or its failure as a child error."""
    runtime = await get_runtime()
    deadline = None if timeout is None else time.monotonic() + timeout
    pauses = Backoff(_FIRST_PAUSE, _LONGEST_PAUSE)
    while True:
        record = await last_run_of_chain(run_id)
        if (damage := unreadable_outcome(record)) is not None:
            # As its parent's log has it (outside.collect): failed, never a None result.
            error_type = type_path(type(damage))
            raise ChildWorkflowFailedError(
                record.run_id, workflow_name, error_type, str(damage)
            ) from damage
        if record.status is RunStatus.COMPLETED:
            return runtime.codec.decode(record.result)
        if record.status is RunStatus.FAILED:
            error = record.error or {}
            raise ChildWorkflowFailedError(
                record.run_id, workflow_name, error.get("type", "?"), error.get("message", "")
            )
        if record.status is RunStatus.CANCELLED:
            raise ChildWorkflowCancelledError(record.run_id, workflow_name, record.cancel_reason)
        wait = pauses.next()
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"child run {run_id!r} has not ended after {timeout}s")
            wait = min(wait, remaining)
        await runtime.executor.wait_finished(record.run_id, wait)


async def start_child_from_step(
    context: StepInfo,
    wf: Workflow[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    wait: bool,
    policy: str,
) -> Any:
    """Start (or find again, after a retry) a child of the step's run."""
    runtime = await get_runtime()
    encoded = encode_call(wf, args, kwargs, runtime.codec)
    first = await runtime.storage.load_events(context.run_id)
    depth = int(first[0].payload.get("nesting_depth", 0)) if first else 0
    if depth >= MaxNestingDepthError.MAX_DEPTH:
        raise MaxNestingDepthError(context.run_id, depth)
    n = context.children_started.get(wf.name, 0) + 1
    context.children_started[wf.name] = n
    executor = runtime.executor
    record, _ = await executor.create_run(
        new_run(
            wf,
            encoded,
            now=executor.now(),
            idempotency_key=f"{context.idempotency_key}:child:{wf.name}#{n}",
            parent_run_id=context.run_id,
            parent_close_policy=policy,
            nesting_depth=depth + 1,
        )
    )
    if not wait:
        return ChildWorkflowHandle(record.run_id, wf.name)
    return await wait_for_child(record.run_id, wf.name, None)
