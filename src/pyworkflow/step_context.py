"""Step context: typed, immutable values that workflow code sets and its steps read.

A workflow declares its context's type, ``@workflow(context_class=OrderContext)``, with
``OrderContext`` a subclass of :class:`StepContext` whose fields are class annotations with
defaults (it becomes a frozen, keyword-only dataclass). Workflow code sets a value with
``await set_step_context(ctx)``; each step it calls afterwards reads that value with
``get_step_context()``, wherever it runs. Setting is recorded in the run's log (a
``side_effect_recorded`` event of kind ``step_context``), so a replay after a crash sets the
same value at the same point, and a step executed by another process (a Celery worker) reads
the value that was in force when the workflow called it. Steps cannot change it: a context is
immutable, and ``set_step_context`` inside a step is an error, so parallel steps never race on
it. Use ``ctx.with_updates(field=value)`` in workflow code for a changed copy.

``get_step_context()`` in a step also carries what the step knows about itself, as before:
``run_id``, ``workflow_name``, ``step_id``, ``step_name``, ``attempt``, ``interrupted`` and
``idempotency_key``. In a run without a context these are all it has (a bare ``StepContext``).
A field of your own with one of those names hides the property of the same name.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib
import inspect
from collections.abc import Sequence
from typing import Any, Self, TypeVar

from pyworkflow._engine.context import StepInfo, current_activation, current_step
from pyworkflow.events import EventType
from pyworkflow.exceptions import InputError, NotInWorkflowError
from pyworkflow.storage.records import EventRecord

__all__ = [
    "CONTEXT_KIND",
    "StepContext",
    "context_before",
    "get_step_context",
    "has_step_context",
    "set_step_context",
]

CONTEXT_KIND = "step_context"
"""The ``kind`` of the side effect that records ``set_step_context`` in the log."""

_C = TypeVar("_C", bound="StepContext")
_STEP = "_pyworkflow_step"


@dataclasses.dataclass(frozen=True)
class StepContext:
    """Base class of a workflow's step context; a subclass declares the fields.

    Example:
        >>> class OrderContext(StepContext):
        ...     workspace_id: str = ""
        ...     priority: str = "normal"
        >>> ctx = OrderContext(workspace_id="ws-1")
        >>> ctx.with_updates(priority="high").to_dict()
        {'workspace_id': 'ws-1', 'priority': 'high'}

    Field values must be what pyworkflow stores as JSON (str, numbers, bools, None, lists and
    dicts of them, datetimes ...): the value is written to the run's log.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A mutable default (`flags: dict[str, bool] = {}`, as the pyworkflow documentation's
        # pydantic-style contexts write it): each instance gets a copy of its own.
        for name in inspect.get_annotations(cls):
            default = cls.__dict__.get(name)
            if isinstance(default, dict | list | set):
                factory = functools.partial(copy.deepcopy, default)
                setattr(cls, name, dataclasses.field(default_factory=factory))
        # Each subclass becomes a frozen keyword-only dataclass of its annotated fields.
        dataclasses.dataclass(frozen=True, kw_only=True)(cls)

    def with_updates(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied (the context itself never changes).

        Raises:
            InputError: a name that is not a field of this context.
        """
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise InputError(
                f"{type(self).__qualname__} has no field {', '.join(map(repr, unknown))}; "
                f"its fields: {', '.join(sorted(names)) or '(none)'}"
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The fields and their values."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Rebuild a context from ``to_dict()``'s output (fields it does not know are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    # --- what the step knows about itself (read inside a step) ------------------------------

    def _info(self) -> StepInfo:
        info: StepInfo | None = self.__dict__.get(_STEP)
        if info is None:
            raise NotInWorkflowError(
                "run information (run_id, step_id, attempt, idempotency_key ...) is known only "
                "to a context returned by get_step_context() inside a running step"
            )
        return info

    @property
    def run_id(self) -> str:
        """The run the step belongs to."""
        return self._info().run_id

    @property
    def workflow_name(self) -> str:
        """The run's workflow."""
        return self._info().workflow_name

    @property
    def step_id(self) -> str:
        """The step's position id, ``name#n``."""
        return self._info().step_id

    @property
    def step_name(self) -> str:
        """The step's registered name."""
        return self._info().step_name

    @property
    def attempt(self) -> int:
        """1 for the first attempt, 2 for the next (a retry, or a re-run after a crash) ..."""
        return self._info().attempt

    @property
    def interrupted(self) -> int:
        """How many of this step's attempts a crash or a hand-over cut short."""
        return self._info().interrupted

    @property
    def idempotency_key(self) -> str:
        """``"{run_id}:{step_id}"``: the same for every attempt and after every recovery."""
        return self._info().idempotency_key

    @property
    def children_started(self) -> dict[str, int]:
        """Children this attempt started, per workflow (their idempotency keys count them)."""
        return self._info().children_started


def _bound(context: StepContext, info: StepInfo) -> StepContext:
    copy = dataclasses.replace(context)
    object.__setattr__(copy, _STEP, info)
    return copy


def get_step_context() -> Any:
    """The step context: in a step, its value plus the step's run information.

    In a step: the context the workflow had set when it called the step (a bare
    ``StepContext`` when it set none), with ``run_id``, ``step_id``, ``attempt`` and
    ``idempotency_key`` of the step. In workflow code: the context set last.

    Example:
        >>> @step()
        ... async def charge(amount: int) -> str:
        ...     ctx = get_step_context()
        ...     return await payments.charge(amount, idempotency_key=ctx.idempotency_key)

    Raises:
        NotInWorkflowError: outside a step and outside workflow code, or in workflow code
            that has set no context yet.
    """
    info = current_step.get()
    if info is not None:
        user = info.user_context
        return _bound(user if user is not None else StepContext(), info)
    activation = current_activation.get()
    if activation is None:
        raise NotInWorkflowError("get_step_context() can only be called inside a running step")
    if activation.step_context is None:
        raise NotInWorkflowError(
            f"workflow {activation.workflow.name!r} has set no step context yet; "
            "call set_step_context() first (has_step_context() tells)"
        )
    return activation.step_context


def has_step_context() -> bool:
    """True where a step context was set.

    That is: in workflow code after ``set_step_context``, and in the steps it called after it.
    """
    info = current_step.get()
    if info is not None:
        return info.user_context is not None
    activation = current_activation.get()
    return activation is not None and activation.step_context is not None


async def set_step_context(context: StepContext) -> None:
    """Set the step context for the steps this workflow calls from now on (workflow code only).

    Recorded in the run's log, so a replay and a step run by another process see it.

    Raises:
        NotInWorkflowError: called in a step (the context is read-only there) or outside a
            workflow.
        InputError: not an instance of the workflow's ``context_class`` (or of StepContext).
        SerializationError: a field value that cannot be stored (naming it).
    """
    if current_step.get() is not None:
        raise NotInWorkflowError(
            "set_step_context() is for workflow code: in a step the context is read-only "
            "(parallel steps would race on it); set it in the workflow before calling the step"
        )
    activation = current_activation.get()
    if activation is None:
        raise NotInWorkflowError("set_step_context() can only be called in workflow code")
    expected = activation.workflow.context_class or StepContext
    if not isinstance(context, expected):
        raise InputError(
            f"workflow {activation.workflow.name!r} takes a {expected.__qualname__} as its step "
            f"context (its context_class), not {context!r}"
        )
    value = {"type": f"{type(context).__module__}:{type(context).__qualname__}"}
    value["fields"] = context.to_dict()  # type: ignore[assignment]
    activation.side_effect(CONTEXT_KIND, lambda: value)
    activation.step_context = context


def rebuild(value: dict[str, Any]) -> StepContext:
    """A context from its logged value (``{"type": "module:Class", "fields": {...}}``).

    Raises:
        InputError: its class cannot be imported here.
    """
    module, _, name = str(value.get("type", "")).partition(":")
    try:
        found: Any = importlib.import_module(module)
        for part in name.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise InputError(
            f"step context class {value.get('type')!r} cannot be imported here"
        ) from exc
    if not (isinstance(found, type) and issubclass(found, StepContext)):
        raise InputError(f"{value.get('type')!r} is not a StepContext class")
    return found.from_dict(dict(value.get("fields") or {}))


def context_before(events: Sequence[EventRecord], step_id: str, codec: Any) -> StepContext | None:
    """The context in force when the code called step ``step_id``: the last one set before it.

    For a step executed elsewhere (a Celery worker), which has the log, not the workflow code.
    """
    found: dict[str, Any] | None = None
    for event in events:
        payload = event.payload
        if event.type is EventType.STEP_STARTED and payload.get("step_id") == step_id:
            break
        if event.type is EventType.SIDE_EFFECT_RECORDED and payload.get("kind") == CONTEXT_KIND:
            found = codec.decode(payload.get("value"))
    return None if found is None else rebuild(found)
