"""The workflow B9's worker processes run (imported by ``--module``): one step of 2 seconds
(``B9_STEP_SECONDS`` in the environment: another length)."""

from __future__ import annotations

import asyncio
import os

from pyworkflow import step, workflow

STEP_SECONDS = 2.0


@step()
async def b9_two_seconds(i: int) -> int:
    # The killed worker's steps never end on their own: the kill always lands inside them.
    await asyncio.sleep(float(os.environ.get("B9_STEP_SECONDS", STEP_SECONDS)))
    return i


@workflow()
async def b9_one_long_step(i: int) -> int:
    return await b9_two_seconds(i)
