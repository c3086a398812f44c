"""Stream workflows: long-lived, reactive stream steps on a named channel.

A ``@stream_workflow`` names a stream; each ``@stream_step(stream=..., signals=[...])``
subscribes to it. ``run_stream_workflow(wf, stream_run_id=...)``, awaited in a ``@workflow``,
starts a stream run: every stream step runs once, then again for each matching signal that
``emit`` puts on that stream run, until it calls ``terminate()``; the parent then gets a
``StreamWorkflowResult``. Each signal that matches a stream step is delivered to it exactly
once, in emit order, across crashes; two stream runs never see each other's signals. See
``docs/concepts/streams.md``.

Example:
    >>> @stream_workflow(name="agent_comms")
    ... async def agent_comms() -> None:
    ...     await emit("agent_comms", "agent.started", {})
    >>> @stream_step(stream="agent_comms", signals=["task.assigned"])
    ... async def worker() -> None:
    ...     signal = await get_current_signal()
    ...     if signal is not None:
    ...         await set_result({"task_id": signal.payload["task_id"]})
    ...         await terminate()
"""

from pyworkflow._streams.definitions import (
    StreamStepDefinition,
    StreamWorkflow,
    stream_step,
    stream_workflow,
)
from pyworkflow._streams.emitting import emit, schedule_signal
from pyworkflow._streams.running import StreamWorkflowResult, run_stream_workflow
from pyworkflow._streams.signals import Signal
from pyworkflow._streams.step_state import (
    StreamStepContext,
    get_checkpoint,
    get_current_signal,
    save_checkpoint,
    set_result,
    suspend,
    terminate,
)
from pyworkflow.events import StreamStepStatus

__all__ = [
    "Signal",
    "StreamStepContext",
    "StreamStepDefinition",
    "StreamStepStatus",
    "StreamWorkflow",
    "StreamWorkflowResult",
    "emit",
    "get_checkpoint",
    "get_current_signal",
    "run_stream_workflow",
    "save_checkpoint",
    "schedule_signal",
    "set_result",
    "stream_step",
    "stream_workflow",
    "suspend",
    "terminate",
]
