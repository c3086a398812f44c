"""Every error pyworkflow raises, in one tree.

Each error keeps the offending value as an attribute and quotes it in its message, and carries
plain data only, so the event log records it as JSON and a caller can rebuild it without pickle.

    PyWorkflowError
    ├── DefinitionError                 a decorator refused a function (raised at import)
    │   ├── WorkflowDefinitionError     sync function, duplicate workflow name, bad option
    │   └── StepDefinitionError         sync function, duplicate step name, bad retry option
    ├── InputError                      a caller passed something we cannot accept; nothing written
    │   ├── InvalidDurationError        "5 parsecs", "-1s", NaN, a naive datetime
    │   ├── SerializationError          a value that cannot be encoded (names the argument)
    │   ├── WorkflowNotFoundError       no workflow registered under that name
    │   ├── StepNotFoundError           no step registered under that name (a Celery worker
    │   │                               that lacks the step's module)
    │   ├── RunNotFoundError            no run with that id
    │   ├── IdempotencyConflictError    an idempotency key already used by another workflow
    │   ├── WorkflowCalledDirectlyError a @workflow function awaited like a plain coroutine
    │   ├── NotInWorkflowError          a workflow primitive called outside workflow code
    │   ├── ClientCallInWorkflowError   a client call (start, get_workflow_run ...) made by
    │   │                               workflow code: it belongs in a step
    │   ├── InvalidChangeIdError        patched() / deprecate_patch() given no usable change id
    │   ├── InvalidRunStateError        e.g. resume() of a run that has not failed
    │   ├── HookNotFoundError           resume_hook(): unknown token, or its run has ended
    │   ├── HookAlreadyReceivedError    resume_hook(): the hook already took a payload
    │   └── InvalidHookPayloadError     resume_hook(): the payload does not fit the hook's type
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
        └── CorruptRecordError          a stored cell that cannot be read back (names the
                                        table, run and column)

    CancellationError (BaseException)   raised into workflow code after cancel_workflow(), so a
                                        user's ``except Exception:`` cannot swallow it
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CancellationError",
    "ChildWorkflowCancelledError",
    "ChildWorkflowFailedError",
    "ClientCallInWorkflowError",
    "ConcurrencyConflictError",
    "ConfigurationError",
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
    "NonDeterminismError",
    "NotInWorkflowError",
    "PyWorkflowError",
    "RetryableError",
    "RunNotFoundError",
    "SchemaVersionError",
    "SerializationError",
    "StepDefinitionError",
    "StepError",
    "StepFailedError",
    "StepNotFoundError",
    "StepTimeoutError",
    "StorageError",
    "StorageUnavailableError",
    "WorkflowCalledDirectlyError",
    "WorkflowCancelledError",
    "WorkflowDefinitionError",
    "WorkflowFailedError",
    "WorkflowNotFoundError",
    "WorkflowTimeoutError",
]


class PyWorkflowError(Exception):
    """Root of every error pyworkflow raises on purpose."""


# --- definition errors -------------------------------------------------------------------------


class DefinitionError(PyWorkflowError):
    """A decorator refused the function it was given; raised at import time."""


class WorkflowDefinitionError(DefinitionError):
    """``@workflow`` was applied to something that cannot be a workflow."""


class StepDefinitionError(DefinitionError):
    """``@step`` was applied to something that cannot be a step, or with bad options."""


# --- input errors ------------------------------------------------------------------------------


class InputError(PyWorkflowError, ValueError):
    """A caller passed a value pyworkflow cannot accept; nothing was written to storage."""


class InvalidDurationError(InputError):
    """A duration or wake-up time that is not one.

    Attributes:
        value: the value as given.
        reason: why it is refused (``"negative"``, ``"a unit is required"``, ``"NaN"`` ...), or
            None.
    """

    def __init__(self, value: object, reason: str | None = None) -> None:
        self.value, self.reason = value, reason
        hint = "use '30s', '5m', '1h30m', a number of seconds or a timedelta"
        detail = f" ({reason})" if reason else ""
        super().__init__(f"{value!r} is not a duration{detail}; {hint}")


class SerializationError(InputError):
    """A value that cannot be encoded (or a payload that must not be decoded).

    Attributes:
        path: where the value sits, e.g. ``"argument 'callback'"`` or ``"result of step 'a#1'"``.
        type_name: the qualified name of the value's type.
    """

    def __init__(self, message: str, *, path: str = "", type_name: str = "") -> None:
        self.path = path
        self.type_name = type_name
        super().__init__(message)


def _registered(known: list[str] | None) -> str:
    """What a not-found error adds: the names registered here, and where to look."""
    if known is None:
        return ""
    listed = ", ".join(repr(k) for k in sorted(known)[:10]) or "none"
    return f"; registered here: {listed} (is the module in 'modules' / --module?)"


class WorkflowNotFoundError(InputError):
    """No workflow is registered under this name in this process.

    Attributes:
        name: the workflow name asked for.
    """

    def __init__(self, name: str, known: list[str] | None = None) -> None:
        self.name = name
        super().__init__(f"no workflow named {name!r} is registered{_registered(known)}")


class StepNotFoundError(InputError):
    """No step is registered under this name in this process.

    Attributes:
        name: the step name asked for.
    """

    def __init__(self, name: str, known: list[str] | None = None) -> None:
        self.name = name
        super().__init__(f"no step named {name!r} is registered{_registered(known)}")


class RunNotFoundError(InputError):
    """No run exists with this id.

    Attributes:
        run_id: the id asked for.
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"no workflow run with id {run_id!r}")


class IdempotencyConflictError(InputError):
    """The idempotency key already names a run of another workflow.

    Attributes:
        idempotency_key: the key.
        existing_workflow: the workflow of the run that owns the key.
        requested_workflow: the workflow the caller tried to start.
    """

    def __init__(self, key: str, existing_workflow: str, requested_workflow: str) -> None:
        self.idempotency_key = key
        self.existing_workflow = existing_workflow
        self.requested_workflow = requested_workflow
        super().__init__(
            f"idempotency key {key!r} already belongs to a run of {existing_workflow!r}, "
            f"not {requested_workflow!r}"
        )


class WorkflowCalledDirectlyError(InputError):
    """A ``@workflow`` function was called like a plain coroutine function."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"workflow {name!r} cannot be called directly; use "
            f"`await pyworkflow.run({name}, ...)` or `await pyworkflow.start({name}, ...)`"
        )


class NotInWorkflowError(InputError):
    """A workflow-only primitive was used outside workflow code (e.g. in a step)."""


class ClientCallInWorkflowError(InputError):
    """Workflow code called a client function, which reads or writes storage as it runs.

    Its answer would differ on replay, and the workflow's loop cannot wait on I/O: a step can
    make the call, and the workflow primitives cover what workflow code needs.

    Attributes:
        call: the call, e.g. ``"get_workflow_run()"``.
    """

    def __init__(self, call: str, instead: str) -> None:
        self.call = call
        super().__init__(
            f"{call} cannot be called in workflow code: it reads or writes storage now, which "
            f"a replay would not repeat; make the call in a step, or {instead}"
        )


class InvalidChangeIdError(InputError):
    """``patched`` or ``deprecate_patch`` was given something other than a non-empty string.

    Attributes:
        change_id: the value as given.
    """

    def __init__(self, change_id: object) -> None:
        self.change_id = change_id
        super().__init__(
            f"{change_id!r} is not a change id; pass a non-empty string naming the change, "
            "e.g. patched('fraud-check')"
        )


class InvalidRunStateError(InputError):
    """The run is not in a state that allows this operation.

    Attributes:
        run_id: the run.
        status: its current status.
    """

    def __init__(self, run_id: str, status: str, wanted: str) -> None:
        self.run_id = run_id
        self.status = status
        super().__init__(f"run {run_id!r} is {status}; {wanted}")


# --- errors raised by user steps ----------------------------------------------------------------


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


class HookNotFoundError(InputError):
    """No hook has this token, or the hook's run has ended.

    Attributes:
        token_hint: the first characters of the token, enough to tell tokens apart in a log.
    """

    def __init__(self, token_hint: str, detail: str = "no hook has this token") -> None:
        self.token_hint = token_hint
        self.detail = detail
        super().__init__(f"hook token {token_hint!r}...: {detail}")


class HookAlreadyReceivedError(InputError):
    """The hook already took a payload; a hook is delivered once.

    Attributes:
        run_id: the hook's run.
        hook_id: the hook's id in that run, e.g. ``"hook:approval#1"``.
    """

    def __init__(self, run_id: str, hook_id: str) -> None:
        self.run_id, self.hook_id = run_id, hook_id
        super().__init__(f"hook {hook_id!r} of run {run_id!r} has already received a payload")


class InvalidHookPayloadError(InputError):
    """A ``resume_hook`` payload does not fit the typed hook's payload type.

    Attributes:
        hook_name: the hook's name.
        field: the offending field (dotted path), or ``""`` for the payload as a whole.
    """

    def __init__(self, hook_name: str, field: str, detail: str) -> None:
        self.hook_name, self.field = hook_name, field
        where = f"field {field!r}" if field else "the payload"
        super().__init__(f"payload for hook {hook_name!r} refused: {where}: {detail}")


# --- runtime errors ----------------------------------------------------------------------------


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


class ConfigurationError(PyWorkflowError):
    """A configure() argument or PYWORKFLOW_* variable that cannot be used."""


class StorageError(PyWorkflowError):
    """A storage backend failed; the driver's exception is chained as ``__cause__``."""


class SchemaVersionError(StorageError):
    """The database schema is older or newer than this version of pyworkflow expects."""


class StorageUnavailableError(StorageError):
    """The database cannot be reached: refused, down, restarting, or the connection dropped.

    Raised after the storage's own reconnection attempts ran out; the message names the URL
    (password masked) and what to check.

    Attributes:
        url: the database, password masked.
    """

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(f"cannot reach the database at {url}: {detail}")
        self.url = url


class ConcurrencyConflictError(StorageError):
    """An append lost the optimistic check: another writer advanced the run or took its lease.

    Attributes:
        run_id: the run.
        expected_seq: the sequence number the writer expected to follow.
    """

    def __init__(self, run_id: str, expected_seq: int, reason: str) -> None:
        self.run_id = run_id
        self.expected_seq = expected_seq
        super().__init__(f"append to run {run_id!r} after seq {expected_seq} refused: {reason}")


class CorruptRecordError(StorageError):
    """A stored value that cannot be read back: not JSON, or not of the shape it must have.

    Damage done outside pyworkflow (a flipped byte, a torn write, a hand edit). A run whose
    record or log cannot be read is failed with this error as its reason, never retried.

    Attributes:
        table: the table, e.g. ``"runs"``, ``"events"``, ``"hooks"``.
        run_id: the run the row belongs to.
        column: the column, e.g. ``"args"``, ``"payload"``.
        value: the stored value, cut to its first 200 characters.
        seq: the event's ``seq``, for a row of ``events``; None otherwise.
    """

    def __init__(
        self,
        table: str,
        run_id: str,
        column: str,
        value: object,
        reason: str,
        *,
        seq: int | None = None,
    ) -> None:
        self.table, self.run_id, self.column, self.seq = table, run_id, column, seq
        text = value if isinstance(value, str) else repr(value)
        self.value = text if len(text) <= 200 else text[:200] + "..."
        where = "" if seq is None else f" (seq {seq})"
        super().__init__(
            f"corrupt {table}.{column} of run {run_id!r}{where}: {reason}; "
            f"stored value {_excerpt(text)}"
        )


def _excerpt(text: str) -> str:
    """The start of a stored value, quoted, short enough for a log line or a status line."""
    return repr(text) if len(text) <= 60 else repr(text[:60]) + "..."


class CancellationError(BaseException):
    """Raised in workflow code at its next primitive after ``cancel_workflow``.

    Derives from BaseException so that ``except Exception:`` around a step does not swallow it;
    catch it by name to clean up.
    """

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason
        super().__init__(reason or "workflow cancelled")
