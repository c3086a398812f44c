"""Child runs seen from outside the engine: the handle, and children started by steps.

A child started by workflow code is a durable command (``WorkflowActivation.start_child``);
its handle's ``result()`` awaited in workflow code waits on the logged outcome. Everywhere
else (a step, a script) the handle reads storage: ``result()`` waits with backoff from 1 s to
10 s, woken sooner when the executor hears the run end (a local run, or a storage that
notifies). A run that continued as new is followed to the end of its chain.

A step cannot log commands, so a child it starts is made idempotent instead: its key is the
step's idempotency key plus the child's position in the step, so a retried or recovered step
gets the same child back rather than a second one.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from pyworkflow._engine.events import RunStatus
from pyworkflow._engine.failures import type_path, unreadable_outcome
from pyworkflow._engine.starts import encode_call, new_run
from pyworkflow.config import get_runtime
from pyworkflow.exceptions import (
    ChildWorkflowCancelledError,
    ChildWorkflowFailedError,
    RunNotFoundError,
)

if TYPE_CHECKING:
    from pyworkflow._engine.context import StepContext
    from pyworkflow.storage.protocol import RunRecord
    from pyworkflow.workflow import Workflow

__all__ = ["ChildWorkflowHandle", "last_run_of_chain", "start_child_from_step"]

_FIRST_PAUSE, _LONGEST_PAUSE = 1.0, 10.0


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


class ChildWorkflowHandle:
    """A child run started with ``wait_for_completion=False``.

    Attributes:
        run_id: the child's run id (the first of its chain, if it continues as new).
        workflow_name: the child's workflow.
    """

    def __init__(
        self, run_id: str, workflow_name: str, *, outcome: asyncio.Future[Any] | None = None
    ) -> None:
        self.run_id = run_id
        self.workflow_name = workflow_name
        self._outcome = outcome

    def __repr__(self) -> str:
        return f"ChildWorkflowHandle({self.run_id!r}, {self.workflow_name!r})"

    async def get_status(self) -> RunStatus:
        """The status of the child (of the last run of its chain), read from storage now."""
        return (await last_run_of_chain(self.run_id)).status

    async def is_running(self) -> bool:
        """True while the child has not ended."""
        return not (await self.get_status()).is_terminal

    async def is_terminal(self) -> bool:
        """True once the child has ended."""
        return (await self.get_status()).is_terminal

    async def result(self, timeout: float | None = None) -> Any:  # noqa: ASYNC109 (documented name)
        """Wait for the child to end and return its result.

        In the workflow that started the child this is a durable wait (the outcome is logged);
        elsewhere it checks storage with backoff from 1 s to 10 s.

        Raises:
            ChildWorkflowFailedError: the child failed (``ChildWorkflowCancelledError``: it
                was cancelled).
            TimeoutError: ``timeout`` seconds passed first (not in workflow code).
        """
        if self._outcome is not None and not _in_other_loop(self._outcome):
            return await self._outcome
        return await wait_for_child(self.run_id, self.workflow_name, timeout)

    async def cancel(self, reason: str | None = None) -> bool:
        """Ask the child to stop; False if it has already ended."""
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
    pause = _FIRST_PAUSE
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
        wait = pause
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"child run {run_id!r} has not ended after {timeout}s")
            wait = min(wait, remaining)
        await runtime.executor.wait_finished(record.run_id, wait)
        pause = min(pause * 2, _LONGEST_PAUSE)


async def start_child_from_step(
    context: StepContext,
    wf: Workflow[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    wait: bool,
    policy: str,
) -> Any:
    """Start (or find again, after a retry) a child of the step's run."""
    runtime = await get_runtime()
    encoded = encode_call(wf, args, kwargs, runtime.codec)
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
        )
    )
    if not wait:
        return ChildWorkflowHandle(record.run_id, wf.name)
    return await wait_for_child(record.run_id, wf.name, None)
