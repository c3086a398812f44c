"""Every error pyworkflow raises, in one tree.

Each error keeps the offending value as an attribute and quotes it in its message, and carries
plain data only, so the event log records it as JSON and a caller can rebuild it without pickle.

    PyWorkflowError
    ├── DefinitionError                 a decorator refused a function (raised at import)
    │   ├── WorkflowDefinitionError     sync function, duplicate workflow name, bad option
    │   ├── StepDefinitionError         sync function, duplicate step name, bad retry option
    │   └── StreamDefinitionError       @stream_workflow / @stream_step refused a function
    ├── InputError                      a caller passed something we cannot accept; nothing written
    │   ├── InvalidDurationError        "5 parsecs", "-1s", NaN, a naive datetime
    │   ├── SerializationError          a value that cannot be encoded (names the argument)
    │   │   └── PayloadTooLargeError    one longer than the codec's max_payload_size (64 MiB)
    │   ├── WorkflowNotFoundError       no workflow registered under that name
    │   ├── StepNotFoundError           no step registered under that name (a Celery worker
    │   │                               that lacks the step's module)
    │   ├── RunNotFoundError            no run with that id
    │   ├── IdempotencyConflictError    an idempotency key already used by another workflow
    │   ├── WorkflowCalledDirectlyError a @workflow function awaited like a plain coroutine
    │   ├── NotInWorkflowError          a workflow primitive called outside workflow code
    │   │                               (also a RuntimeError, as the pyworkflow docs say)
    │   ├── ClientCallInWorkflowError   a client call (start, get_workflow_run ...) made by
    │   │                               workflow code: it belongs in a step
    │   ├── InvalidChangeIdError        patched() / deprecate_patch() given no usable change id
    │   ├── InvalidRunStateError        e.g. resume() of a run that has not failed
    │   ├── MaxNestingDepthError        a child nested deeper than MAX_DEPTH (3) below its root
    │   ├── TransientRunError           a durable-only call (hook) in a transient run
    │   ├── HookNotFoundError           resume_hook(): unknown token, or its run has ended
    │   ├── HookAlreadyReceivedError    resume_hook(): the hook already took a payload
    │   ├── InvalidHookPayloadError     resume_hook(): the payload does not fit the hook's type
    │   ├── InvalidScheduleError        a bad cron expression, interval, time zone or bound
    │   ├── ScheduleNotFoundError       no schedule with that id
    │   ├── ScheduleExistsError         create_schedule(): the id is taken
    │   ├── StreamRunNotFoundError      emit() to a stream run id that names none
    │   ├── StreamRunConflictError      a stream run id taken by another stream or driver
    │   ├── StreamRunEndedError         emit() to a stream run that has ended
    │   ├── InvalidSignalPayloadError   emit(): a payload that fails its step's schema
    │   └── NotInStreamStepError        set_result() ... called outside a @stream_step
    ├── StepError                       raised by user steps to steer retries
    │   ├── FatalError                  fail at once, no retry
    │   └── RetryableError              retry, optionally after ``retry_after``
    ├── StepFailedError                 a step failed and its exception class cannot be rebuilt
    ├── StepTimeoutError                a step attempt overran its ``timeout``
    ├── HookExpiredError                a hook timed out (at hook(), or a late resume_hook());
    │                                   a timeout, not bad input: ``except ValueError`` misses it
    ├── WorkflowFailedError             a run ended failed (caller side)
    ├── WorkflowCancelledError          a run ended cancelled (caller side)
    ├── WorkflowTimeoutError            a run overran its workflow's ``max_duration``
    ├── ChildWorkflowFailedError        a child run failed (raised in its parent)
    │   └── ChildWorkflowCancelledError a child run was cancelled
    ├── NonDeterminismError             replay diverged from the log
    ├── ConfigurationError              bad configure() / PYWORKFLOW_* value
    └── StorageError                    a storage backend failed; driver errors chained as cause
        ├── SchemaVersionError          database schema older or newer than this code
        ├── StorageUnavailableError     the database cannot be reached (down, restarting)
        ├── ConcurrencyConflictError    optimistic append lost (stale seq or lease)
        ├── CorruptRecordError          a stored cell that cannot be read back (names the
        │                               table, run and column)
        ├── CopyConflictError           a copy's destination already holds some of its runs
        └── RunsChangedDuringCopyError  runs kept changing in the source during a copy

    CancellationError (BaseException)   raised into workflow code after cancel_workflow(), so a
                                        user's ``except Exception:`` cannot swallow it

The classes are written by family in ``pyworkflow._errors`` (base, inputs, runs, storage);
this module is where they are imported from, and the module their type paths name.
"""

from __future__ import annotations

from pyworkflow._errors.base import (
    CancellationError,
    ConfigurationError,
    DefinitionError,
    FatalError,
    InputError,
    PyWorkflowError,
    RetryableError,
    StepDefinitionError,
    StepError,
    WorkflowDefinitionError,
)
from pyworkflow._errors.inputs import (
    ClientCallInWorkflowError,
    HookAlreadyReceivedError,
    HookNotFoundError,
    IdempotencyConflictError,
    InvalidChangeIdError,
    InvalidDurationError,
    InvalidHookPayloadError,
    InvalidRunStateError,
    MaxNestingDepthError,
    NotInWorkflowError,
    PayloadTooLargeError,
    RunNotFoundError,
    SerializationError,
    StepNotFoundError,
    TransientRunError,
    WorkflowCalledDirectlyError,
    WorkflowNotFoundError,
)
from pyworkflow._errors.runs import (
    ChildWorkflowCancelledError,
    ChildWorkflowFailedError,
    HookExpiredError,
    NonDeterminismError,
    StepFailedError,
    StepTimeoutError,
    WorkflowCancelledError,
    WorkflowFailedError,
    WorkflowTimeoutError,
)
from pyworkflow._errors.schedules import (
    InvalidScheduleError,
    ScheduleExistsError,
    ScheduleNotFoundError,
)
from pyworkflow._errors.storage import (
    ConcurrencyConflictError,
    CopyConflictError,
    CorruptRecordError,
    RunsChangedDuringCopyError,
    SchemaVersionError,
    StorageError,
    StorageUnavailableError,
)
from pyworkflow._errors.streams import (
    InvalidSignalPayloadError,
    NotInStreamStepError,
    StreamDefinitionError,
    StreamRunConflictError,
    StreamRunEndedError,
    StreamRunNotFoundError,
)

__all__ = [
    "CancellationError",
    "ChildWorkflowCancelledError",
    "ChildWorkflowFailedError",
    "ClientCallInWorkflowError",
    "ConcurrencyConflictError",
    "ConfigurationError",
    "CopyConflictError",
    "CorruptRecordError",
    "DefinitionError",
    "FatalError",
    "HookAlreadyReceivedError",
    "HookExpiredError",
    "HookNotFoundError",
    "IdempotencyConflictError",
    "InputError",
    "InvalidChangeIdError",
    "InvalidDurationError",
    "InvalidHookPayloadError",
    "InvalidRunStateError",
    "InvalidScheduleError",
    "InvalidSignalPayloadError",
    "MaxNestingDepthError",
    "NonDeterminismError",
    "NotInStreamStepError",
    "NotInWorkflowError",
    "PayloadTooLargeError",
    "PyWorkflowError",
    "RetryableError",
    "RunNotFoundError",
    "RunsChangedDuringCopyError",
    "ScheduleExistsError",
    "ScheduleNotFoundError",
    "SchemaVersionError",
    "SerializationError",
    "StepDefinitionError",
    "StepError",
    "StepFailedError",
    "StepNotFoundError",
    "StepTimeoutError",
    "StorageError",
    "StorageUnavailableError",
    "StreamDefinitionError",
    "StreamRunConflictError",
    "StreamRunEndedError",
    "StreamRunNotFoundError",
    "TransientRunError",
    "WorkflowCalledDirectlyError",
    "WorkflowCancelledError",
    "WorkflowDefinitionError",
    "WorkflowFailedError",
    "WorkflowNotFoundError",
    "WorkflowTimeoutError",
]
