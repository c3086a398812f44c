"""Registered workflows as readers describe them: signature, parameters, the steps they call.

Read from the code, not from storage: a workflow's signature and parameters come from its
function. Its steps are not declared anywhere, so they are found the way a reader finds them:
the names its own code refers to (nested functions included) that are ``@step`` functions in
its module. Steps reached only through other helper functions, or passed in as values, are not
listed.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from dataclasses import dataclass
from inspect import Parameter, cleandoc, formatannotation, unwrap
from typing import Any

from pyworkflow.step import StepDefinition
from pyworkflow.workflow import Workflow

__all__ = ["ParameterView", "StepView", "WorkflowView", "describe_workflow", "steps_called"]


@dataclass(frozen=True, slots=True)
class ParameterView:
    """One parameter of a workflow.

    Attributes:
        name: its name.
        kind: ``positional_or_keyword``, ``keyword_only``, ``var_positional`` ...
        annotation: its annotation as source text, or None.
        required: True when a call must pass it.
        default: the ``repr`` of its default, or None.
    """

    name: str
    kind: str
    annotation: str | None
    required: bool
    default: str | None

    def to_json(self) -> dict[str, Any]:
        """``name``, ``kind``, ``annotation``, ``required``, ``default``."""
        return {
            "name": self.name,
            "kind": self.kind,
            "annotation": self.annotation,
            "required": self.required,
            "default": self.default,
        }


@dataclass(frozen=True, slots=True)
class StepView:
    """One step a workflow calls, with its options.

    Attributes:
        name: the step's name.
        max_retries: retries after the first attempt.
        retry_delay: ``"exponential"``, fixed seconds, or a list of seconds per attempt.
        timeout: seconds one attempt may take, or None.
        force_local: it runs inline in the orchestrating process.
    """

    name: str
    max_retries: int
    retry_delay: str | float | list[float]
    timeout: float | None
    force_local: bool

    def to_json(self) -> dict[str, Any]:
        """``name``, ``max_retries``, ``retry_delay``, ``timeout``, ``force_local``."""
        return {
            "name": self.name,
            "max_retries": self.max_retries,
            "retry_delay": self.retry_delay,
            "timeout": self.timeout,
            "force_local": self.force_local,
        }


@dataclass(frozen=True, slots=True)
class WorkflowView:
    """A registered workflow.

    Attributes:
        name: its registered name.
        function: ``module.qualname`` of its function.
        signature: ``"(user_id: str) -> dict"``.
        parameters: its parameters, in order.
        max_duration: seconds a run may take, or None.
        steps: the steps its own code calls, in first-mention order (module docstring).
        doc: its function's docstring, cleaned, or None.
    """

    name: str
    function: str
    signature: str
    parameters: list[ParameterView]
    max_duration: float | None
    steps: list[StepView]
    doc: str | None

    def to_json(self) -> dict[str, Any]:
        """``name``, ``function``, ``signature``, ``parameters``, ``max_duration``, ...

        ... ``steps`` and ``doc`` (parameters: ``ParameterView``; steps: ``StepView``).
        """
        return {
            "name": self.name,
            "function": self.function,
            "signature": self.signature,
            "parameters": [p.to_json() for p in self.parameters],
            "max_duration": self.max_duration,
            "steps": [s.to_json() for s in self.steps],
            "doc": self.doc,
        }


def _names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    yield from code.co_freevars
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


def steps_called(definition: Workflow[..., Any]) -> list[StepDefinition]:
    """The ``@step`` functions the workflow's own code names, in first-mention order."""
    fn = unwrap(definition.fn)
    code = getattr(fn, "__code__", None)
    if code is None:
        return []
    scope: dict[str, Any] = dict(getattr(fn, "__globals__", {}))
    closure = getattr(fn, "__closure__", None) or ()
    for name, cell in zip(code.co_freevars, closure, strict=False):
        try:
            scope[name] = cell.cell_contents
        except ValueError:  # an empty cell: the variable is not bound yet
            continue
    found: dict[str, StepDefinition] = {}
    for name in _names(code):
        step = getattr(scope.get(name), "__pyworkflow_step__", None)
        if isinstance(step, StepDefinition):
            found.setdefault(step.name, step)
    return list(found.values())


def _annotation(value: Any) -> str | None:
    if value is Parameter.empty:
        return None
    # With `from __future__ import annotations` they are already the source text.
    return value if isinstance(value, str) else formatannotation(value)


def _parameter(param: Parameter) -> ParameterView:
    required = param.default is Parameter.empty and param.kind not in (
        Parameter.VAR_POSITIONAL,
        Parameter.VAR_KEYWORD,
    )
    return ParameterView(
        name=param.name,
        kind=param.kind.name.lower(),
        annotation=_annotation(param.annotation),
        required=required,
        default=None if param.default is Parameter.empty else repr(param.default),
    )


def _step(definition: StepDefinition) -> StepView:
    delay = definition.retry.retry_delay
    return StepView(
        name=definition.name,
        max_retries=definition.retry.max_retries,
        retry_delay=list(delay) if isinstance(delay, tuple) else delay,
        timeout=definition.timeout,
        force_local=definition.force_local,
    )


def describe_workflow(definition: Workflow[..., Any]) -> WorkflowView:
    """What a registered workflow is: its signature, parameters and the steps it calls.

    Example:
        >>> view = describe_workflow(registry.get_workflow("onboarding"))
        >>> view.signature, [s.name for s in view.steps]
        ('(user_id: str) -> dict', ['fetch_user', 'send_email'])
    """
    fn = definition.fn
    return WorkflowView(
        name=definition.name,
        function=f"{fn.__module__}.{fn.__qualname__}",
        signature=str(definition.signature),
        parameters=[_parameter(p) for p in definition.signature.parameters.values()],
        max_duration=definition.max_duration,
        steps=[_step(s) for s in steps_called(definition)],
        doc=cleandoc(fn.__doc__) if fn.__doc__ else None,
    )
