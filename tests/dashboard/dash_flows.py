"""Workflows the dashboard tests run: one completes, one fails until fixed, one waits on a
hook, one sleeps for an hour. Importable as ``dash_flows`` (tests/dashboard on the path) by
this process and by the ``pyworkflow worker`` / ``pyworkflow dashboard`` processes the browser
tests start.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pyworkflow
from pyworkflow import step, workflow


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
