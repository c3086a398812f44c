"""Workflows the dashboard tests run: one completes, one fails until fixed, one waits on a
hook, one sleeps for an hour; a tagged one, a continue-as-new countdown, a fan-out of children,
one of many steps. Importable as ``dash_flows`` (tests/dashboard on the path) by this process
and by the ``pyworkflow worker`` / ``pyworkflow dashboard`` processes the browser tests start.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pyworkflow
from pyworkflow import continue_as_new, start_child_workflow, step, workflow


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
