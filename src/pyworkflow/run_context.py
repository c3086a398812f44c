"""``get_context()``: the running workflow or step, and a cooperative cancellation check.

Code written for the pyworkflow documentation asks ``get_context()`` for the run it belongs to
and, in a long step, calls ``await ctx.check_cancellation()`` between chunks of work, so that a
``cancel_workflow`` reaches the step before it ends instead of after. In a step the check reads
the run's row (a cancel request is stored there); in workflow code it looks at what the run's
log has already delivered (workflow code does no I/O of its own), so it raises exactly where
the next primitive would.

A step that raises ``CancellationError`` this way fails at once, with no retry; the workflow
sees ``CancellationError`` at that step's call and the run ends cancelled (unless the code
catches it to clean up, as for any cancellation).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyworkflow._engine.context import StepInfo, current_activation, current_step, shielded
from pyworkflow.exceptions import CancellationError, NotInWorkflowError

__all__ = ["RunContext", "get_context"]


@dataclass(frozen=True, slots=True)
class RunContext:
    """The run that the calling workflow code or step belongs to.

    Attributes:
        run_id: the run.
        workflow_name: its workflow.
        step: in a step, what the step knows about itself (``get_step_context()`` has the
            same); None in workflow code.
    """

    run_id: str
    workflow_name: str
    step: StepInfo | None = None

    async def check_cancellation(self) -> None:
        """Raise ``CancellationError`` if the run has been asked to stop.

        Raises:
            CancellationError: ``cancel_workflow`` was called for the run (its reason kept).
        """
        if self.step is None:
            activation = current_activation.get()
            if activation is not None and activation.cancelled and not shielded.get():
                raise CancellationError(activation.cancel_reason)
            return
        # Imported here: the runtime builds executors, which import the engine this module
        # is imported by.
        from pyworkflow.runtime import get_runtime

        runtime = await get_runtime()
        record = await runtime.storage.get_run(self.run_id)
        if record is not None and record.cancel_requested:
            raise CancellationError(record.cancel_reason)


def get_context() -> RunContext:
    """The run the caller belongs to: in workflow code or in a step.

    Example:
        >>> @step()
        ... async def crunch(chunks: list[str]) -> int:
        ...     ctx = get_context()
        ...     for chunk in chunks:
        ...         await ctx.check_cancellation()  # a cancel_workflow stops it here
        ...         await work_on(chunk)
        ...     return len(chunks)

    Raises:
        NotInWorkflowError: outside workflow code and outside a step.
    """
    info = current_step.get()
    if info is not None:
        return RunContext(info.run_id, info.workflow_name, info)
    activation = current_activation.get()
    if activation is None:
        raise NotInWorkflowError("get_context() can only be called in workflow code or a step")
    return RunContext(activation.run_id, activation.workflow.name)
