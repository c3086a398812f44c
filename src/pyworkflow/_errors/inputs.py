"""Input errors: a caller passed something pyworkflow cannot accept, and nothing was written."""

from __future__ import annotations

from pyworkflow._errors.base import InputError

__all__ = [
    "ClientCallInWorkflowError",
    "HookAlreadyReceivedError",
    "HookNotFoundError",
    "IdempotencyConflictError",
    "InvalidChangeIdError",
    "InvalidDurationError",
    "InvalidHookPayloadError",
    "InvalidRunStateError",
    "MaxNestingDepthError",
    "NotInWorkflowError",
    "PayloadTooLargeError",
    "RunNotFoundError",
    "SerializationError",
    "StepNotFoundError",
    "TransientRunError",
    "WorkflowCalledDirectlyError",
    "WorkflowNotFoundError",
]


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


class PayloadTooLargeError(SerializationError):
    """A value whose encoded form is longer than the codec's ``max_payload_size``.

    Refused before anything is written: a start's arguments, a hook's payload, a step's or a
    workflow's result (the step then fails at once, as for any value that cannot be encoded).
    A database refuses such a value anyway (SQLite at 1 GB by default, PostgreSQL at 1 GB), and
    far below that a value held in every turn's memory hurts; store it elsewhere and pass a
    reference.

    Attributes:
        size: characters of its JSON text.
        limit: the codec's ``max_payload_size``.
    """

    def __init__(self, path: str, type_name: str, size: int, limit: int) -> None:
        self.size, self.limit = size, limit
        super().__init__(
            f"{path} ({type_name}) is {size:,} characters encoded, over the limit of "
            f"{limit:,} (PYWORKFLOW_MAX_PAYLOAD_SIZE); store large data elsewhere (a file, an "
            "object store) and pass a reference",
            path=path,
            type_name=type_name,
        )


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


class NotInWorkflowError(InputError, RuntimeError):
    """A workflow-only primitive was used outside workflow code (e.g. in a step).

    Also a ``RuntimeError``: the pyworkflow documentation says ``set_step_context`` in a step
    raises one, and code written for it catches that.
    """


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


class MaxNestingDepthError(InputError):
    """A child workflow would be nested deeper than ``MAX_DEPTH`` below its root run.

    The root run is depth 0, its children 1, grandchildren 2, great-grandchildren 3: a run at
    depth 3 cannot start children. Raised where the child is started (workflow code or a step),
    before anything is written.

    Attributes:
        run_id: the run that tried to start the child.
        depth: that run's depth.
    """

    MAX_DEPTH = 3

    def __init__(self, run_id: str, depth: int) -> None:
        self.run_id, self.depth = run_id, depth
        super().__init__(
            f"run {run_id!r} is at nesting depth {depth}: child workflows nest at most "
            f"{self.MAX_DEPTH} levels below their root run"
        )


class TransientRunError(InputError):
    """A call that needs a durable run was made in a transient one (``durable=False``).

    Attributes:
        what: the call refused.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(
            f"{what} needs a durable run: a transient run (durable=False) lives only in its "
            "process and stores nothing another process could resume; declare the workflow "
            "@workflow(durable=True)"
        )


# Their public home: type paths in logged errors, reprs and pickles name it, as before the split.
for _name in __all__:
    globals()[_name].__module__ = "pyworkflow.exceptions"
