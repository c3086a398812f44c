"""The workflow the scale-out benchmark's worker processes run (imported by ``--module``)."""

from __future__ import annotations

from pyworkflow import step, workflow

STEPS = 3


@step()
async def b7_noop(i: int) -> int:
    return i


@workflow()
async def b7_three_steps() -> int:
    return sum([await b7_noop(i) for i in range(STEPS)])
