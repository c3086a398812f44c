"""pyworkflow: durable workflows as plain async Python.

Example:
    >>> from pyworkflow import workflow, step, sleep, run
    >>> @step()
    ... async def greet(name: str) -> str:
    ...     return f"hello {name}"
    >>> @workflow()
    ... async def hello(name: str) -> str:
    ...     await sleep("1s")
    ...     return await greet(name)
    >>> # asyncio.run(run(hello, "world")) -> "hello world"
"""

from pyworkflow._engine.context import StepContext, get_step_context
from pyworkflow._engine.events import EventType, RunStatus
from pyworkflow.client import (
    WorkflowEvent,
    WorkflowRun,
    cancel_workflow,
    get_workflow_events,
    get_workflow_result,
    get_workflow_run,
    list_workflow_runs,
    prune_runs,
    resume,
    run,
    start,
)
from pyworkflow.config import configure, shutdown
from pyworkflow.determinism import deprecate_patch, in_workflow, now, patched, random, uuid4
from pyworkflow.exceptions import (
    CancellationError,
    ConcurrencyConflictError,
    ConfigurationError,
    DefinitionError,
    FatalError,
    IdempotencyConflictError,
    InputError,
    InvalidChangeIdError,
    InvalidDurationError,
    InvalidRunStateError,
    NonDeterminismError,
    NotInWorkflowError,
    PyWorkflowError,
    RetryableError,
    RunNotFoundError,
    SchemaVersionError,
    SerializationError,
    StepDefinitionError,
    StepError,
    StepFailedError,
    StepTimeoutError,
    StorageError,
    WorkflowCalledDirectlyError,
    WorkflowCancelledError,
    WorkflowDefinitionError,
    WorkflowFailedError,
    WorkflowNotFoundError,
)
from pyworkflow.primitives import sleep
from pyworkflow.step import step
from pyworkflow.workflow import Workflow, workflow

__version__ = "0.1.0"

__all__ = [
    "CancellationError",
    "ConcurrencyConflictError",
    "ConfigurationError",
    "DefinitionError",
    "EventType",
    "FatalError",
    "IdempotencyConflictError",
    "InputError",
    "InvalidChangeIdError",
    "InvalidDurationError",
    "InvalidRunStateError",
    "NonDeterminismError",
    "NotInWorkflowError",
    "PyWorkflowError",
    "RetryableError",
    "RunNotFoundError",
    "RunStatus",
    "SchemaVersionError",
    "SerializationError",
    "StepContext",
    "StepDefinitionError",
    "StepError",
    "StepFailedError",
    "StepTimeoutError",
    "StorageError",
    "Workflow",
    "WorkflowCalledDirectlyError",
    "WorkflowCancelledError",
    "WorkflowDefinitionError",
    "WorkflowEvent",
    "WorkflowFailedError",
    "WorkflowNotFoundError",
    "WorkflowRun",
    "cancel_workflow",
    "configure",
    "deprecate_patch",
    "get_step_context",
    "get_workflow_events",
    "get_workflow_result",
    "get_workflow_run",
    "in_workflow",
    "list_workflow_runs",
    "now",
    "patched",
    "prune_runs",
    "random",
    "resume",
    "run",
    "shutdown",
    "sleep",
    "start",
    "step",
    "uuid4",
    "workflow",
]
