"""The stream workflow whose driving run's log is kept as ``golden_stream_driver.json``.

Change it only together with a deliberate re-recording (``pytest tests/golden
--record-golden``): the log stands for stream runs in flight in users' databases, whose driving
run (``pyworkflow.stream``) today's code must still replay.
"""

from __future__ import annotations

from pyworkflow import emit, stream_step, stream_workflow, workflow
from pyworkflow.streams import (
    get_checkpoint,
    get_current_signal,
    run_stream_workflow,
    save_checkpoint,
    set_result,
    terminate,
)


@stream_workflow(name="golden_stream")
async def golden_stream() -> None:
    """The body emits the first task (a recorded emit)."""
    await emit("golden_stream", "task", {"n": 1})


_failed_once: set[int] = set()


@stream_step(stream="golden_stream", signals=["task", "stop"])
async def golden_stream_worker() -> None:
    """Counts the tasks it sees; on ``stop`` publishes the count and terminates.

    A task marked ``fail_once`` raises at its first execution (its retry, a step of its own,
    counts it).
    """
    signal = await get_current_signal()
    if signal is None:
        return
    if signal.payload and signal.payload.get("fail_once") and signal.sequence not in _failed_once:
        _failed_once.add(signal.sequence)
        raise RuntimeError("the first execution of this task fails")
    seen = (await get_checkpoint()) or []
    if signal.signal_type == "stop":
        await set_result({"tasks": seen})
        await terminate()
        return
    await save_checkpoint([*seen, signal.payload["n"]])


@workflow(name="golden_stream_parent")
async def golden_stream_parent(stream_run_id: str) -> dict[str, object]:
    """Runs the stream run to its end; its steps' results."""
    result = await run_stream_workflow(golden_stream, stream_run_id=stream_run_id)
    return dict(result.step_results)
