"""The current run and the current step, each in a ContextVar.

Workflow code runs in a context whose ``current_activation`` is set (the root task copies it and
``gather``'s tasks inherit it); step code runs with ``current_step`` set. Primitives look here to
decide whether they are in a workflow, in a step, or in plain code.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyworkflow.exceptions import NotInWorkflowError

if TYPE_CHECKING:
    from pyworkflow._engine.activation import WorkflowActivation

__all__ = [
    "StepInfo",
    "current_activation",
    "current_step",
    "early_start",
    "shielded",
    "start_logged",
    "step_info",
]

current_activation: ContextVar[WorkflowActivation | None] = ContextVar(
    "pyworkflow_activation", default=None
)
current_step: ContextVar[StepInfo | None] = ContextVar("pyworkflow_step", default=None)
shielded: ContextVar[bool] = ContextVar("pyworkflow_shielded", default=False)
"""True inside ``async with shield():`` in workflow code (per task; ``gather`` branches inherit)."""
early_start: ContextVar[asyncio.Future[None] | None] = ContextVar(
    "pyworkflow_early_start", default=None
)
"""In an ``early_step``'s first attempt: done once the commit that logs its start is."""


async def start_logged() -> None:
    """Wait until the running step's start is durable (at once but in an ``early_step``).

    An early step starts alongside the commit that logs its start; what it must not do before
    that commit (run user code) comes after this. A run whose commit fails is let go, and the
    step's task is cancelled here.
    """
    logged = early_start.get()
    if logged is not None and not logged.done():
        await asyncio.shield(logged)  # one future for all the turn's early steps


@dataclass(frozen=True, slots=True)
class StepInfo:
    """What a running step knows about itself (the run information of ``get_step_context()``).

    Attributes:
        run_id: the workflow run the step belongs to.
        workflow_name: that run's workflow.
        step_id: the step's position id, ``name#n``.
        step_name: the step's registered name.
        attempt: 1 for the first attempt, 2 for the next, ...: a retry after a failure, or a
            re-run of an attempt that a crash or a hand-over cut short.
        interrupted: how many of this step's attempts were cut short that way (the run's
            history says when and why: WORKFLOW_INTERRUPTED); they spend none of its retries.
        idempotency_key: ``"{run_id}:{step_id}"``, the same for every attempt and after every
            recovery: pass it to outside systems so a re-executed step does not act twice.
    """

    run_id: str
    workflow_name: str
    step_id: str
    step_name: str
    attempt: int
    interrupted: int = 0
    children_started: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    """How many children of each workflow this attempt started (their idempotency keys)."""
    user_context: Any = field(default=None, compare=False, repr=False)
    """The ``StepContext`` the workflow code had set when it called the step, or None."""

    @property
    def idempotency_key(self) -> str:
        """Stable across retries and recoveries of this step."""
        return f"{self.run_id}:{self.step_id}"


def step_info() -> StepInfo:
    """The run information of the step being executed.

    Raises:
        NotInWorkflowError: outside a step executed by pyworkflow.
    """
    info = current_step.get()
    if info is None:
        raise NotInWorkflowError("get_step_context() can only be called inside a running step")
    return info
