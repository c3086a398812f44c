"""Where workflows and steps are found by name.

Decorators register at import time; executors and the CLI look workflows up by the name stored
in a run. One name, one function: registering a different function under a taken name is a
definition error, while importing the same module twice (reloads, ``python -m``) is harmless.
"""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pyworkflow.exceptions import (
    ConfigurationError,
    StepDefinitionError,
    StepNotFoundError,
    WorkflowDefinitionError,
    WorkflowNotFoundError,
)

if TYPE_CHECKING:
    from pyworkflow.step import StepDefinition
    from pyworkflow.workflow import Workflow

__all__ = [
    "get_step",
    "get_workflow",
    "import_modules",
    "register_step",
    "register_workflow",
    "step_names",
    "workflow_names",
    "workflows_with_context",
]

_workflows: dict[str, Workflow[..., Any]] = {}
_steps: dict[str, StepDefinition] = {}


def _origin(obj: Workflow[..., Any] | StepDefinition) -> str:
    return f"{obj.fn.__module__}.{obj.fn.__qualname__}"


def register_workflow(definition: Workflow[..., Any]) -> None:
    """Register a workflow; a different function under a taken name is an error."""
    existing = _workflows.get(definition.name)
    if existing is not None and _origin(existing) != _origin(definition):
        raise WorkflowDefinitionError(
            f"two workflows are named {definition.name!r}: {_origin(existing)} and "
            f"{_origin(definition)}; pass @workflow(name=...) to tell them apart"
        )
    _workflows[definition.name] = definition


def register_step(definition: StepDefinition) -> None:
    """Register a step; a different function under a taken name is an error."""
    existing = _steps.get(definition.name)
    if existing is not None and _origin(existing) != _origin(definition):
        raise StepDefinitionError(
            f"two steps are named {definition.name!r}: {_origin(existing)} and "
            f"{_origin(definition)}; pass @step(name=...) to tell them apart"
        )
    _steps[definition.name] = definition


def get_workflow(name: str) -> Workflow[..., Any]:
    """The workflow registered under ``name``.

    Raises:
        WorkflowNotFoundError: nothing is registered under that name in this process.
    """
    try:
        return _workflows[name]
    except KeyError:
        raise WorkflowNotFoundError(name, known=list(_workflows)) from None


def get_step(name: str) -> StepDefinition:
    """The step registered under ``name``.

    Raises:
        StepNotFoundError: nothing is registered under that name in this process.
    """
    try:
        return _steps[name]
    except KeyError:
        raise StepNotFoundError(name, known=list(_steps)) from None


def workflows_with_context() -> set[str]:
    """Names of the registered workflows that declare a ``context_class``."""
    return {name for name, wf in _workflows.items() if wf.context_class is not None}


def workflow_names() -> list[str]:
    """Names of every workflow registered in this process."""
    return sorted(_workflows)


def step_names() -> list[str]:
    """Names of all registered steps, sorted."""
    return sorted(_steps)


def import_modules(modules: Iterable[str]) -> None:
    """Import the user's modules so their decorators register workflows and steps.

    Raises:
        ConfigurationError: a module cannot be imported (the message names it).
    """
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:  # a user module may fail to import in any way
            raise ConfigurationError(_import_failure(module, exc)) from exc


def _import_failure(module: str, exc: Exception) -> str:
    """Why ``module`` did not import: missing itself, or found and failing inside."""
    missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
    if missing is not None and (module == missing or module.startswith(missing + ".")):
        return (
            f"cannot import workflow module {module!r}: no module named {missing!r}; check "
            "--module / PYWORKFLOW_MODULES and that it is on sys.path (run from the project's "
            "directory, or set PYTHONPATH)"
        )
    # Found, but its code failed: say where, from the innermost frame of the traceback.
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""
    hint = (
        f"install {missing!r} in this environment"
        if missing is not None
        else "fix the error, or what it depends on"
    )
    return (
        f"workflow module {module!r} was found but failed to import: "
        f"{type(exc).__name__}: {exc}{where}; {hint}"
    )
