"""The HTTP status each error answers with, for the API and the pages alike."""

from __future__ import annotations

from pyworkflow.exceptions import (
    HookAlreadyReceivedError,
    HookExpiredError,
    HookNotFoundError,
    InputError,
    InvalidRunStateError,
    PyWorkflowError,
    RunNotFoundError,
    ScheduleNotFoundError,
    StorageError,
    StreamRunNotFoundError,
    WorkflowNotFoundError,
)

__all__ = ["status_of"]


def status_of(exc: PyWorkflowError) -> int:
    """404 for what does not exist, 409 for a wrong state, 400 other bad input, 503 storage."""
    missing = (
        RunNotFoundError,
        HookNotFoundError,
        WorkflowNotFoundError,
        ScheduleNotFoundError,
        StreamRunNotFoundError,
    )
    if isinstance(exc, missing):
        return 404
    if isinstance(exc, InvalidRunStateError | HookAlreadyReceivedError | HookExpiredError):
        return 409
    if isinstance(exc, InputError):
        return 400
    if isinstance(exc, StorageError):
        return 503
    return 500
