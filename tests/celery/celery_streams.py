"""Stream workflows the Celery stream tests run; the workers import this module too.

A planner hands three tasks to a worker step through signals and terminates when all are done;
a review loop suspends for a human until a later signal from outside resumes it; a job's first
execution raises and its retry completes it; two tallies count ticks emitted from outside while
the test kills workers.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from kill_effects import append_line
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


@stream_workflow(name="cs_jobs")
async def cs_jobs() -> None:
    """Jobs come from outside."""


def _first_of(job: dict[str, str], line: str) -> bool:
    """Log the execution; True for the job's first (its marker did not exist yet)."""
    with open(job["log"], "a") as log:
        log.write(line + "\n")
    try:
        with open(job["marker"], "x"):
            return True
    except FileExistsError:
        return False


@stream_step(stream="cs_jobs", signals=["job"])
async def cs_flaky() -> None:
    """Raises at a job's first execution (a marker file tells); done at the next, then ends.

    Each execution appends ``<pid> <attempt> <step id>`` to the job's ``log`` file.
    """
    from pyworkflow.step_context import get_step_context

    signal = await get_current_signal()
    if signal is None:
        return
    context = get_step_context()
    if _first_of(signal.payload, f"{os.getpid()} {context.attempt} {context.step_id}"):
        raise RuntimeError("the first execution of a job fails")
    await set_result({"done": signal.sequence, "attempt": context.attempt})
    await terminate()


@workflow(name="cs_run_jobs")
async def cs_run_jobs(stream_run_id: str) -> Any:
    result = await run_stream_workflow(cs_jobs, stream_run_id=stream_run_id)
    return result.get_result("cs_flaky")


# --- signals flowing through kill -9 (test_celery_stream_kill.py) --------------------------------


def _record(step_name: str, signal: Any) -> None:
    """Append ``stream_run_id step:seq pid`` to KILLTEST_SIDE_EFFECTS, fsynced.

    The test's record of what really ran, outside the engine: it survives the worker's death
    (``workers.executions_in`` counts it by stream run and ``step:seq``).
    """
    append_line(
        f"{signal.stream_run_id} {step_name}:{signal.sequence} {time.time():.6f} {os.getpid()}"
    )


async def _tally(step_name: str) -> None:
    """Count ticks: record each execution, linger (where the test kills), checkpoint its seq."""
    signal = await get_current_signal()
    if signal is None:
        return
    if signal.signal_type == "stop":
        await set_result((await get_checkpoint()) or [])
        await terminate()
        return
    _record(step_name, signal)
    # A kill -9 lands here: recorded, not returned, so this execution must run again.
    await asyncio.sleep(signal.payload.get("linger", 0.0))
    await save_checkpoint([*((await get_checkpoint()) or []), signal.sequence])


@stream_workflow(name="cs_ticks")
async def cs_ticks() -> None:
    """Ticks come from outside."""


@stream_step(stream="cs_ticks", signals=["tick", "stop"])
async def cs_tally_a() -> None:
    await _tally("cs_tally_a")


@stream_step(stream="cs_ticks", signals=["tick", "stop"])
async def cs_tally_b() -> None:
    await _tally("cs_tally_b")


@workflow(name="cs_run_ticks")
async def cs_run_ticks(stream_run_id: str) -> dict[str, Any]:
    result = await run_stream_workflow(cs_ticks, stream_run_id=stream_run_id)
    return result.step_results
