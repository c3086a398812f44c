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

from pyworkflow.children import ChildWorkflowHandle
from pyworkflow.client import (
    WorkflowEvent,
    WorkflowRun,
    cancel_workflow,
    get_workflow_chain,
    get_workflow_events,
    get_workflow_result,
    get_workflow_run,
    list_workflow_runs,
    prune_runs,
    resume,
    run,
    start,
)
from pyworkflow.config import configure
from pyworkflow.determinism import deprecate_patch, in_workflow, now, patched, random, uuid4
from pyworkflow.events import EventType, HookStatus, RunStatus
from pyworkflow.exceptions import (
    CancellationError,
    ChildWorkflowCancelledError,
    ChildWorkflowFailedError,
    ClientCallInWorkflowError,
    ConcurrencyConflictError,
    ConfigurationError,
    CorruptRecordError,
    DefinitionError,
    FatalError,
    HookAlreadyReceivedError,
    HookExpiredError,
    HookNotFoundError,
    IdempotencyConflictError,
    InputError,
    InvalidChangeIdError,
    InvalidDurationError,
    InvalidHookPayloadError,
    InvalidRunStateError,
    MaxNestingDepthError,
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
    StepNotFoundError,
    StepTimeoutError,
    StorageError,
    TransientRunError,
    WorkflowCalledDirectlyError,
    WorkflowCancelledError,
    WorkflowDefinitionError,
    WorkflowFailedError,
    WorkflowNotFoundError,
    WorkflowTimeoutError,
)
from pyworkflow.hooks import HookInfo, list_hooks, resume_hook
from pyworkflow.primitives import (
    TypedHook,
    continue_as_new,
    define_hook,
    hook,
    shield,
    sleep,
    start_child_workflow,
)
from pyworkflow.run_context import RunContext, get_context
from pyworkflow.runtime import shutdown
from pyworkflow.seed_compat import get_config, get_workflow_run_by_idempotency_key, reset_config
from pyworkflow.step import step
from pyworkflow.step_context import (
    StepContext,
    get_step_context,
    has_step_context,
    set_step_context,
)
from pyworkflow.workflow import Workflow, workflow

__version__ = "0.1.0"

__all__ = [
    "CancellationError",
    "ChildWorkflowCancelledError",
    "ChildWorkflowFailedError",
    "ChildWorkflowHandle",
    "ClientCallInWorkflowError",
    "ConcurrencyConflictError",
    "ConfigurationError",
    "CorruptRecordError",
    "DefinitionError",
    "EventType",
    "FatalError",
    "HookAlreadyReceivedError",
    "HookExpiredError",
    "HookInfo",
    "HookNotFoundError",
    "HookStatus",
    "IdempotencyConflictError",
    "InputError",
    "InvalidChangeIdError",
    "InvalidDurationError",
    "InvalidHookPayloadError",
    "InvalidRunStateError",
    "MaxNestingDepthError",
    "NonDeterminismError",
    "NotInWorkflowError",
    "PyWorkflowError",
    "RetryableError",
    "RunContext",
    "RunNotFoundError",
    "RunStatus",
    "SchemaVersionError",
    "SerializationError",
    "StepContext",
    "StepDefinitionError",
    "StepError",
    "StepFailedError",
    "StepNotFoundError",
    "StepTimeoutError",
    "StorageError",
    "TransientRunError",
    "TypedHook",
    "Workflow",
    "WorkflowCalledDirectlyError",
    "WorkflowCancelledError",
    "WorkflowDefinitionError",
    "WorkflowEvent",
    "WorkflowFailedError",
    "WorkflowNotFoundError",
    "WorkflowRun",
    "WorkflowTimeoutError",
    "cancel_workflow",
    "configure",
    "continue_as_new",
    "define_hook",
    "deprecate_patch",
    "get_config",
    "get_context",
    "get_step_context",
    "get_workflow_chain",
    "get_workflow_events",
    "get_workflow_result",
    "get_workflow_run",
    "get_workflow_run_by_idempotency_key",
    "has_step_context",
    "hook",
    "in_workflow",
    "list_hooks",
    "list_workflow_runs",
    "now",
    "patched",
    "prune_runs",
    "random",
    "reset_config",
    "resume",
    "resume_hook",
    "run",
    "set_step_context",
    "shield",
    "shutdown",
    "sleep",
    "start",
    "start_child_workflow",
    "step",
    "uuid4",
    "workflow",
]
