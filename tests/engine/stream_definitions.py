"""Stream workflows the stream tests run (module level: stream steps register by name).

Names start ``ts_`` so they clash with no other test module's. What each step saw is kept in
``SEEN`` (keyed by the stream run id), so a test can check deliveries: which signals, in which
order, how often.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from pydantic import BaseModel

from pyworkflow import emit, sleep, stream_step, stream_workflow, workflow
from pyworkflow.streams import (
    StreamStepContext,
    get_checkpoint,
    get_current_signal,
    run_stream_workflow,
    save_checkpoint,
    schedule_signal,
    set_result,
    suspend,
    terminate,
)

SEEN: dict[str, list[tuple[str, str, Any, int | None]]] = defaultdict(list)
"""stream run id -> (step, signal type, payload, sequence) for every signal run, in order."""


def saw(step: str, signal: Any) -> None:
    SEEN[signal.stream_run_id].append((step, signal.signal_type, signal.payload, signal.sequence))


# --- planner / worker ----------------------------------------------------------------------------


@stream_workflow(name="ts_planning")
async def planning() -> None:
    await emit("ts_planning", "plan.requested", {"tasks": ["a", "b", "c"]})


@stream_step(stream="ts_planning", signals=["plan.requested", "task.done"])
async def ts_planner() -> None:
    signal = await get_current_signal()
    if signal is None:
        return
    saw("ts_planner", signal)
    state = (await get_checkpoint()) or {"open": [], "done": []}
    if signal.signal_type == "plan.requested":
        for task in signal.payload["tasks"]:
            await emit("ts_planning", "task.assigned", {"task_id": task})
        state["open"] = list(signal.payload["tasks"])
    else:
        state["done"].append(signal.payload["task_id"])
        if sorted(state["done"]) == sorted(state["open"]):
            await set_result({"done": state["done"]})
            await terminate()
    await save_checkpoint(state)


@stream_step(stream="ts_planning", signals=["task.assigned"])
async def ts_worker() -> None:
    signal = await get_current_signal()
    if signal is None:
        return
    saw("ts_worker", signal)
    task = signal.payload["task_id"]
    done = ((await get_checkpoint()) or []) + [task]
    await save_checkpoint(done)
    await emit("ts_planning", "task.done", {"task_id": task})
    if len(done) == 3:
        await set_result({"worked": done})
        await terminate()


@workflow(name="ts_run_planning")
async def run_planning(stream_run_id: str) -> dict[str, Any]:
    result = await run_stream_workflow(planning, stream_run_id=stream_run_id)
    return {"status": result.status, "states": result.step_states, "results": result.step_results}


# --- human in the loop ---------------------------------------------------------------------------


@stream_workflow(name="ts_reviews")
async def reviews() -> None:
    """No opening signal: the reviews come from outside."""


@stream_step(stream="ts_reviews", signals=["review.submitted", "human.approved"])
async def ts_review_loop() -> None:
    signal = await get_current_signal()
    if signal is None:
        return
    saw("ts_review_loop", signal)
    state = (await get_checkpoint()) or {"submissions": 0}
    if signal.signal_type == "review.submitted":
        state["submissions"] += 1
        await save_checkpoint(state)
        if state["submissions"] >= 2:
            await suspend(reason="hitl:needs_review", resume_signals=["human.approved"])
        return
    await set_result({"approved": signal.payload["by"], "submissions": state["submissions"]})
    await terminate()


@workflow(name="ts_run_reviews")
async def run_reviews(stream_run_id: str) -> Any:
    result = await run_stream_workflow(reviews, stream_run_id=stream_run_id)
    return result.get_result("ts_review_loop")


# --- schemas -------------------------------------------------------------------------------------


class Order(BaseModel):
    order_id: str
    quantity: int


@stream_workflow(name="ts_orders")
async def orders() -> None:
    """Orders come from outside."""


@stream_step(stream="ts_orders", signals={"order.placed": Order, "orders.closed": None})
async def ts_order_taker() -> None:
    signal = await get_current_signal()
    if signal is None:
        return
    saw("ts_order_taker", signal)
    taken = (await get_checkpoint()) or []
    if signal.signal_type == "orders.closed":
        await set_result(taken)
        await terminate()
        return
    await save_checkpoint([*taken, signal.payload["order_id"]])


@workflow(name="ts_run_orders")
async def run_orders(stream_run_id: str) -> Any:
    result = await run_stream_workflow(orders, stream_run_id=stream_run_id)
    return result.get_result("ts_order_taker")


# --- on_signal, scheduled signals, failures ------------------------------------------------------


async def gate(signal: Any, ctx: StreamStepContext) -> None:
    if signal.signal_type == "stream.kill":
        await ctx.cancel(reason="killed by signal")
    elif signal.payload.get("priority") == "high":
        await ctx.resume()
    # anything else: acknowledged, the step is not run for it


@stream_workflow(name="ts_alarms")
async def alarms() -> None:
    await schedule_signal("ts_alarms", "alarm.rang", {"priority": "high"}, delay_seconds=3600)


@stream_step(stream="ts_alarms", signals=["alarm.rang", "stream.kill"], on_signal=gate)
async def ts_sleeper() -> None:
    signal = await get_current_signal()
    if signal is None:
        return
    saw("ts_sleeper", signal)
    await set_result({"woke_at_seq": signal.sequence})


@stream_step(stream="ts_alarms", signals=["alarm.rang"], max_retries=1)
async def ts_fragile() -> None:
    signal = await get_current_signal()
    if signal is None:
        return
    raise RuntimeError(f"cannot handle {signal.signal_type}")


@workflow(name="ts_run_alarms")
async def run_alarms(stream_run_id: str) -> dict[str, Any]:
    result = await run_stream_workflow(alarms, stream_run_id=stream_run_id)
    return {"states": result.step_states, "results": result.step_results}


@workflow(name="ts_supervise")
async def supervise(stream_run_id: str) -> Any:
    """A parent that reviews by itself: its own emits are recorded commands."""

    async def reviewer() -> None:
        for n in (1, 2):
            await sleep("1m")
            await emit("ts_reviews", "review.submitted", {"n": n}, stream_run_id=stream_run_id)
        await sleep("1h")
        await emit("ts_reviews", "human.approved", {"by": "boss"}, stream_run_id=stream_run_id)

    result, _ = await asyncio.gather(
        run_stream_workflow(reviews, stream_run_id=stream_run_id), reviewer()
    )
    return result.get_result("ts_review_loop")
