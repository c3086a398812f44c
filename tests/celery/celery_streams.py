"""Stream workflows the Celery stream tests run; the workers import this module too.

A planner hands three tasks to a worker step through signals and terminates when all are done;
a review loop suspends for a human until a later signal from outside resumes it.
"""

from __future__ import annotations

from typing import Any

from pyworkflow import emit, stream_step, stream_workflow, workflow
from pyworkflow.streams import (
    get_checkpoint,
    get_current_signal,
    run_stream_workflow,
    save_checkpoint,
    set_result,
    suspend,
    terminate,
)


@stream_workflow(name="cs_planning")
async def cs_planning() -> None:
    await emit("cs_planning", "plan.requested", {"tasks": ["a", "b", "c"]})


@stream_step(stream="cs_planning", signals=["plan.requested", "task.done"])
async def cs_planner() -> None:
    signal = await get_current_signal()
    if signal is None:
        return
    state = (await get_checkpoint()) or {"open": [], "done": []}
    if signal.signal_type == "plan.requested":
        state["open"] = signal.payload["tasks"]
        for task in state["open"]:
            await emit("cs_planning", "task.assigned", {"task_id": task})
    else:
        state["done"].append(signal.payload["task_id"])
        if sorted(state["done"]) == sorted(state["open"]):
            await set_result(sorted(state["done"]))
            await terminate()
    await save_checkpoint(state)


@stream_step(stream="cs_planning", signals=["task.assigned"])
async def cs_worker() -> None:
    signal = await get_current_signal()
    if signal is None:
        return
    await emit("cs_planning", "task.done", {"task_id": signal.payload["task_id"]})
    done = ((await get_checkpoint()) or 0) + 1
    await save_checkpoint(done)
    if done == 3:
        await set_result(done)
        await terminate()


@workflow(name="cs_run_planning")
async def cs_run_planning(stream_run_id: str) -> dict[str, Any]:
    result = await run_stream_workflow(cs_planning, stream_run_id=stream_run_id)
    return result.step_results


@stream_workflow(name="cs_reviews")
async def cs_reviews() -> None:
    """Reviews come from outside."""


@stream_step(stream="cs_reviews", signals=["review.submitted", "human.approved"])
async def cs_review_loop() -> None:
    signal = await get_current_signal()
    if signal is None:
        return
    if signal.signal_type == "review.submitted":
        await suspend(reason="hitl", resume_signals=["human.approved"])
        return
    await set_result({"approved_by": signal.payload["by"]})
    await terminate()


@workflow(name="cs_run_reviews")
async def cs_run_reviews(stream_run_id: str) -> Any:
    result = await run_stream_workflow(cs_reviews, stream_run_id=stream_run_id)
    return result.get_result("cs_review_loop")
