"""The root of the error tree and its families (``pyworkflow.exceptions`` draws the tree)."""

from __future__ import annotations

from typing import Any

__all__ = [
    "CancellationError",
    "ConfigurationError",
    "DefinitionError",
    "FatalError",
    "InputError",
    "PyWorkflowError",
    "RetryableError",
    "StepDefinitionError",
    "StepError",
    "WorkflowDefinitionError",
]


class PyWorkflowError(Exception):
    """Root of every error pyworkflow raises on purpose."""


class DefinitionError(PyWorkflowError):
    """A decorator refused the function it was given; raised at import time."""


class WorkflowDefinitionError(DefinitionError):
    """``@workflow`` was applied to something that cannot be a workflow."""


class StepDefinitionError(DefinitionError):
    """``@step`` was applied to something that cannot be a step, or with bad options."""


class InputError(PyWorkflowError, ValueError):
    """A caller passed a value pyworkflow cannot accept; nothing was written to storage."""


class StepError(PyWorkflowError):
    """Base of the errors a step raises to steer its retries."""


class FatalError(StepError):
    """Raise in a step to fail it at once, without retrying.

    Example:
        >>> @step()
        ... async def validate(data: dict) -> dict:
        ...     if "email" not in data:
        ...         raise FatalError("email is required")
        ...     return data
    """


class RetryableError(StepError):
    """Raise in a step to retry it, after ``retry_after`` when given.

    Args:
        message: what went wrong.
        retry_after: a duration (``"30s"``, seconds, timedelta) overriding the step's retry_delay.
    """

    def __init__(self, message: str = "", retry_after: Any = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class ConfigurationError(PyWorkflowError):
    """A configure() argument or PYWORKFLOW_* variable that cannot be used."""


class CancellationError(BaseException):
    """Raised in workflow code at its next primitive after ``cancel_workflow``.

    Derives from BaseException so that ``except Exception:`` around a step does not swallow it;
    catch it by name to clean up.
    """

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason
        super().__init__(reason or "workflow cancelled")


# Their public home: type paths in logged errors, reprs and pickles name it, as before the split.
for _name in __all__:
    globals()[_name].__module__ = "pyworkflow.exceptions"
