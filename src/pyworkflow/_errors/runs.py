"""What a run's execution raises: a step's failure or timeout, a run's end, a divergence."""

from __future__ import annotations

from pyworkflow._errors.base import PyWorkflowError

__all__ = [
    "ChildWorkflowCancelledError",
    "ChildWorkflowFailedError",
    "HookExpiredError",
    "NonDeterminismError",
    "StepFailedError",
    "StepTimeoutError",
    "WorkflowCancelledError",
    "WorkflowFailedError",
    "WorkflowTimeoutError",
]


class StepFailedError(PyWorkflowError):
    """A step failed and its original exception class could not be rebuilt.

    Attributes:
        step_id: the step's position id (``name#n``).
        error_type: qualified name of the original exception class.
        error_message: its message.
    """

    def __init__(self, step_id: str, error_type: str, error_message: str) -> None:
        self.step_id = step_id
        self.error_type = error_type
        self.error_message = error_message
        super().__init__(f"step {step_id!r} failed: {error_type}: {error_message}")


class StepTimeoutError(PyWorkflowError, TimeoutError):
    """A step attempt ran longer than the step's ``timeout``; the attempt counts as failed."""

    def __init__(self, step_name: str, timeout: float) -> None:
        self.step_name = step_name
        self.timeout = timeout
        super().__init__(f"step {step_name!r} exceeded its timeout of {timeout:g}s")


class HookExpiredError(PyWorkflowError, TimeoutError):
    """The hook's timeout passed: the workflow sees this error, and ``resume_hook`` is refused.

    Attributes:
        run_id: the hook's run.
        hook_id: the hook's id in that run.
    """

    def __init__(self, run_id: str, hook_id: str) -> None:
        self.run_id, self.hook_id = run_id, hook_id
        super().__init__(f"hook {hook_id!r} of run {run_id!r} expired before a payload arrived")


class WorkflowFailedError(PyWorkflowError):
    """The run ended failed; raised to callers of ``run`` and ``get_workflow_result``.

    Attributes:
        run_id: the failed run.
        error_type: qualified name of the exception that ended it.
        error_message: its message.
        traceback: the formatted traceback recorded when it failed.
    """

    def __init__(
        self, run_id: str, error_type: str, error_message: str, traceback: str = ""
    ) -> None:
        self.run_id = run_id
        self.error_type = error_type
        self.error_message = error_message
        self.traceback = traceback
        super().__init__(f"workflow run {run_id!r} failed: {error_type}: {error_message}")


class WorkflowCancelledError(PyWorkflowError):
    """The run ended cancelled; raised to callers waiting for its result."""

    def __init__(self, run_id: str, reason: str | None = None) -> None:
        self.run_id = run_id
        self.reason = reason
        suffix = f": {reason}" if reason else ""
        super().__init__(f"workflow run {run_id!r} was cancelled{suffix}")


class WorkflowTimeoutError(PyWorkflowError, TimeoutError):
    """A run overran its workflow's ``max_duration`` and was failed.

    Attributes:
        run_id: the run.
        max_duration: the limit, in seconds.
    """

    def __init__(self, run_id: str, max_duration: float) -> None:
        self.run_id, self.max_duration = run_id, max_duration
        super().__init__(f"workflow run {run_id!r} exceeded its max_duration of {max_duration:g}s")


class ChildWorkflowFailedError(PyWorkflowError):
    """A child run failed; raised in the parent where it waits for the child.

    Attributes:
        child_run_id: the child run (the last of its continue-as-new chain).
        workflow_name: the child's workflow.
        error_type: qualified name of the exception that ended the child.
        error_message: its message.
    """

    def __init__(
        self, child_run_id: str, workflow_name: str, error_type: str, error_message: str
    ) -> None:
        self.child_run_id, self.workflow_name = child_run_id, workflow_name
        self.error_type, self.error_message = error_type, error_message
        super().__init__(
            f"child workflow {workflow_name!r} (run {child_run_id!r}) failed: "
            f"{error_type}: {error_message}"
        )

    @property
    def child_workflow_name(self) -> str:
        """``workflow_name``, by the name the pyworkflow documentation uses."""
        return self.workflow_name

    @property
    def error(self) -> str:
        """``error_message``, by the name the pyworkflow documentation uses."""
        return self.error_message


class ChildWorkflowCancelledError(ChildWorkflowFailedError):
    """A child run was cancelled; a ``ChildWorkflowFailedError`` with ``error_type`` Cancelled."""

    def __init__(self, child_run_id: str, workflow_name: str, reason: str | None = None) -> None:
        super().__init__(child_run_id, workflow_name, "Cancelled", reason or "cancelled")
        self.reason = reason


class NonDeterminismError(PyWorkflowError):
    """Replaying a run's log with today's code issued a different command than the log holds.

    Attributes:
        run_id: the run.
        position: the index of the command in the run's sequence of commands (0-based).
        logged: the command in the log, e.g. ``"step 'charge#1'"``, or None past the log's end.
        issued: the command the code issued instead, or None if it issued none.
    """

    def __init__(self, run_id: str, position: int, logged: str | None, issued: str | None) -> None:
        self.run_id = run_id
        self.position = position
        self.logged = logged
        self.issued = issued
        super().__init__(
            f"run {run_id!r} diverged from its log at command {position}: the log has "
            f"{logged or 'nothing'}, the code now issues {issued or 'nothing'}"
        )


# Their public home: type paths in logged errors, reprs and pickles name it, as before the split.
for _name in __all__:
    globals()[_name].__module__ = "pyworkflow.exceptions"
