"""What ``workflows list`` and ``workflows info`` say about a registered workflow.

Its signature and parameters come from the function. Its steps are not declared anywhere, so
they are found the way a reader finds them: the names its own code refers to (nested functions
included) that are ``@step`` functions in its module. Steps reached only through other helper
functions, or passed in as values, are not listed.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Iterator
from typing import Any

from pyworkflow.step import StepDefinition
from pyworkflow.workflow import Workflow

__all__ = ["describe_workflow", "steps_called"]


def _names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    yield from code.co_freevars
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


def steps_called(definition: Workflow[..., Any]) -> list[StepDefinition]:
    """The ``@step`` functions the workflow's own code names, in first-mention order."""
    fn = inspect.unwrap(definition.fn)
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
    if value is inspect.Parameter.empty:
        return None
    # With `from __future__ import annotations` they are already the source text.
    return value if isinstance(value, str) else inspect.formatannotation(value)


def _parameter(param: inspect.Parameter) -> dict[str, Any]:
    required = param.default is inspect.Parameter.empty and param.kind not in (
        inspect.Parameter.VAR_POSITIONAL,
        inspect.Parameter.VAR_KEYWORD,
    )
    return {
        "name": param.name,
        "kind": param.kind.name.lower(),
        "annotation": _annotation(param.annotation),
        "required": required,
        "default": None if param.default is inspect.Parameter.empty else repr(param.default),
    }


def _step(definition: StepDefinition) -> dict[str, Any]:
    delay = definition.retry.retry_delay
    return {
        "name": definition.name,
        "max_retries": definition.retry.max_retries,
        "retry_delay": list(delay) if isinstance(delay, tuple) else delay,
        "timeout": definition.timeout,
        "force_local": definition.force_local,
    }


def describe_workflow(definition: Workflow[..., Any]) -> dict[str, Any]:
    """The workflow's JSON shape (keys documented in ``cli/json_output.py``)."""
    fn = definition.fn
    return {
        "name": definition.name,
        "function": f"{fn.__module__}.{fn.__qualname__}",
        "signature": str(definition.signature),
        "parameters": [_parameter(p) for p in definition.signature.parameters.values()],
        "max_duration": definition.max_duration,
        "steps": [_step(s) for s in steps_called(definition)],
        "doc": inspect.cleandoc(fn.__doc__) if fn.__doc__ else None,
    }
