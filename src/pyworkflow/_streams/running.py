"""``run_stream_workflow``: drive a stream run from a ``@workflow``; ``StreamWorkflowResult``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pyworkflow._engine.context import current_activation, current_step
from pyworkflow._streams.definitions import StreamWorkflow
from pyworkflow._streams.driver import register
from pyworkflow.exceptions import InputError, NotInWorkflowError
from pyworkflow.primitives import start_child_workflow

__all__ = ["StreamWorkflowResult", "run_stream_workflow"]


@dataclass(frozen=True)
class StreamWorkflowResult:
    """How a stream run ended: every stream step's final state and published result.

    Attributes:
        status: ``"completed"``: every stream step ended.
        step_states: stream step name -> its final status (``terminated``, ``cancelled``,
            ``failed``).
        step_results: stream step name -> the value it published with ``set_result`` (steps
            that published none are absent).
    """

    status: str
    step_states: dict[str, str] = field(default_factory=dict)
    step_results: dict[str, Any] = field(default_factory=dict)

    def get_result(self, step_name: str) -> Any:
        """The result stream step ``step_name`` published, or None."""
        return self.step_results.get(step_name)


async def run_stream_workflow(
    stream_workflow_func: StreamWorkflow,
    *,
    stream_run_id: str,
    init: Callable[[], Awaitable[Any]] | None = None,
    storage: Any = None,
) -> StreamWorkflowResult:
    """Run a stream workflow as the stream run ``stream_run_id``, from workflow code.

    ``init`` (workflow code: it may call steps) runs first. The stream run is then a child
    run of this one (``pyworkflow.stream``): this run waits for it holding no worker, while
    its stream steps react to signals, and goes on when every stream step has ended. A
    stream run whose steps are all suspended or ended keeps this run waiting until a resume
    signal comes.

    Example:
        >>> @workflow()
        ... async def run_agent(job_id: str) -> dict:
        ...     result = await run_stream_workflow(agent_comms, stream_run_id=f"job-{job_id}")
        ...     return result.step_results

    Raises:
        NotInWorkflowError: called outside workflow code.
        InputError: not a ``@stream_workflow``, or an empty ``stream_run_id``.
        ChildWorkflowFailedError: the stream run failed (e.g. its id is taken by another, or
            the stream workflow's body raised).
        ChildWorkflowCancelledError: its driving run was cancelled (``pyworkflow runs
            cancel``); the stream run reads ``cancelled``.

    ``storage``: accepted for code written for the pyworkflow documentation; the configured
    storage is used.
    """
    del storage
    if current_step.get() is not None or current_activation.get() is None:
        raise NotInWorkflowError("run_stream_workflow() can only be called in workflow code")
    if not isinstance(stream_workflow_func, StreamWorkflow):
        raise InputError(
            f"run_stream_workflow() needs a @stream_workflow function, not {stream_workflow_func!r}"
        )
    if not isinstance(stream_run_id, str) or not stream_run_id:
        raise InputError(f"stream_run_id must be a non-empty string, not {stream_run_id!r}")
    if init is not None:
        await init()
    ended: dict[str, Any] = await start_child_workflow(
        register(), stream_workflow_func.name, stream_run_id
    )
    return StreamWorkflowResult(
        status=ended["status"],
        step_states=dict(ended["step_states"]),
        step_results=dict(ended["step_results"]),
    )
