"""Workflows the dashboard tests run: one completes, one fails until fixed, one waits on a
hook, one sleeps for an hour; a tagged one, a continue-as-new countdown, a fan-out of children,
one of many steps; a stream run summing readings (``dash_sensors``). Importable as
``dash_flows`` (tests/dashboard on the path) by this process and by the ``pyworkflow worker`` /
``pyworkflow dashboard`` processes the browser tests start.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import pyworkflow
from pyworkflow import (
    continue_as_new,
    emit,
    run_stream_workflow,
    start_child_workflow,
    step,
    stream_step,
    stream_workflow,
    workflow,
)
from pyworkflow.streams import get_checkpoint, get_current_signal, save_checkpoint, set_result
from pyworkflow.streams import terminate as terminate_step


@step()
async def shout(text: str) -> str:
    return text.upper()


@workflow(name="dash_greet")
async def greet(name: str) -> dict[str, Any]:
    return {"greeting": await shout(f"hello {name}")}


@step(max_retries=0)
async def fragile(marker: str) -> str:
    # Fails until the marker file exists: a test creates it, then resumes the run.
    if not await asyncio.to_thread(Path(marker).exists):
        raise RuntimeError(f"no marker at {marker}")
    return "fixed"


@workflow(name="dash_fragile")
async def fragile_flow(marker: str) -> str:
    return await fragile(marker)


@workflow(name="dash_approval")
async def approval(request: str) -> dict[str, Any]:
    decision = await pyworkflow.hook("approval")
    return {"request": request, "decision": decision}


@workflow(name="dash_nap")
async def nap(seconds: int) -> str:
    await pyworkflow.sleep(seconds)
    return "rested"


@workflow(name="dash_big")
async def big(size: int) -> str:
    return "x" * size


@workflow(name="dash_tagged", tags=["billing", "eu"])
async def tagged(x: int) -> int:
    return x


@workflow(name="dash_countdown")
async def countdown(n: int) -> str:
    if n > 0:
        continue_as_new(n - 1)
    return "liftoff"


@workflow(name="dash_fanout")
async def fanout(children: int) -> int:
    for i in range(children):
        await start_child_workflow(
            greet, f"child {i}", wait_for_completion=False, parent_close_policy="abandon"
        )
    return children


@workflow(name="dash_steps")
async def many_steps(n: int) -> int:
    for i in range(n):
        await shout(str(i))
    return n


class Reading(BaseModel):
    value: int


@stream_workflow(name="dash_sensors")
async def sensors() -> None:
    await emit("dash_sensors", "reading", {"value": 1})


@stream_step(stream="dash_sensors", signals={"reading": Reading})
async def dash_summer() -> None:
    # Sums the readings; a reading of 0 ends it.
    signal = await get_current_signal()
    if signal is None:
        return
    total = (await get_checkpoint() or 0) + signal.payload["value"]
    await save_checkpoint(total)
    await set_result(total)
    if signal.payload["value"] == 0:
        await terminate_step()


@workflow(name="dash_sensor_job")
async def sensor_job(job: str) -> Any:
    result = await run_stream_workflow(sensors, stream_run_id=f"sensors-{job}")
    return result.get_result("dash_summer")
