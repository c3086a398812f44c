"""The workflow mix of celery_matrix.py, imported by the soak process and by every worker.

Workers find it through ``PYWORKFLOW_MODULES=_soak_flows`` with benchmarks/soak on
``PYTHONPATH``, tests/ too: every step calls ``record_execution`` (tests/kill_effects.py) as
its first line, which appends ``run step attempt time pid`` to ``KILLTEST_SIDE_EFFECTS``,
fsynced, then takes its time, so a kill often lands after the record and before the step
returns. Recording first makes the line's time the execution's start: a line timed after the
soak saw the attempt's outcome in the log is an execution that began after it was logged.

Each workflow covers part of the mix (sequential steps, ``gather``, durable sleeps below and
above the 1 s horizon, a step that fails once and is retried, ``force_local`` steps, a child
workflow); ``MIX`` maps each name to it and to its expected result.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from kill_effects import record_execution
from pyworkflow import get_step_context, sleep, start_child_workflow, step, workflow

# --- steps ---------------------------------------------------------------------------------------


@step(name="soak_work")
async def work(n: int) -> int:
    record_execution()
    await asyncio.sleep(random.uniform(0.05, 0.4))
    return n * 2 + 1


@step(name="soak_flaky", max_retries=3, retry_delay="0.2s")
async def flaky(n: int) -> int:
    """Fails its first attempt on purpose; the retry returns."""
    record_execution()
    await asyncio.sleep(random.uniform(0.05, 0.2))
    if get_step_context().attempt == 1:
        raise RuntimeError("the first attempt fails on purpose")
    return n + 7


@step(name="soak_local_work", force_local=True)
async def local_work(n: int) -> int:
    """Inline in the task that advances the run: a kill there kills the run's driver."""
    record_execution()
    await asyncio.sleep(random.uniform(0.05, 0.3))
    return n * 3


# --- workflows -----------------------------------------------------------------------------------


@workflow(name="soak_sequence")
async def sequence(n: int) -> int:
    a = await work(n)
    b = await work(a)
    return await work(b)


@workflow(name="soak_fan_out")
async def fan_out(n: int) -> int:
    async def branch(i: int) -> int:
        return await work(await work(n + i))

    flat = await asyncio.gather(*(work(n + i) for i in range(3)))
    nested = await asyncio.gather(*(branch(i) for i in range(2)))
    return sum(flat) + sum(nested)


@workflow(name="soak_nap")
async def nap(n: int) -> int:
    """A sleep longer than the horizon: the run lets go and the sweeper wakes it."""
    a = await work(n)
    await sleep(1.5)
    return await work(a)


@workflow(name="soak_retrying")
async def retrying(n: int) -> int:
    return await work(await flaky(n))


@workflow(name="soak_local")
async def local(n: int) -> int:
    """A ``force_local`` step first (no remote step in the first turn), then one beside a remote."""
    a = await local_work(n)
    pair = await asyncio.gather(work(a), local_work(a))
    return sum(pair)


@workflow(name="soak_child")
async def child(n: int) -> int:
    await sleep(0.2)
    return await work(n) + 1000


@workflow(name="soak_parent")
async def parent(n: int) -> int:
    first = await work(n)
    kid: int = await start_child_workflow(child, first)
    return await local_work(kid)


@workflow(name="soak_mix")
async def mix(n: int) -> list[int]:
    """All of it in one run: sequence, gather of a remote and a local step, a short sleep
    (below the horizon: waited in-process), a retried step, a child."""
    a = await work(n)
    b = await work(a)
    pair = await asyncio.gather(work(b), local_work(b))
    await sleep(0.3)
    c = await flaky(a)
    kid: int = await start_child_workflow(child, c)
    return [a, b, *pair, c, kid]


def _w(n: int) -> int:
    return n * 2 + 1


def _mix(n: int) -> list[int]:
    a, c = _w(n), _w(n) + 7
    b = _w(a)
    return [a, b, _w(b), b * 3, c, _w(c) + 1000]


MIX: dict[str, tuple[Any, Callable[[int], Any]]] = {
    "soak_sequence": (sequence, lambda n: _w(_w(_w(n)))),
    "soak_fan_out": (
        fan_out,
        lambda n: sum(_w(n + i) for i in range(3)) + sum(_w(_w(n + i)) for i in range(2)),
    ),
    "soak_nap": (nap, lambda n: _w(_w(n))),
    "soak_retrying": (retrying, lambda n: _w(n + 7)),
    "soak_local": (local, lambda n: _w(n * 3) + n * 9),
    "soak_parent": (parent, lambda n: (_w(_w(n)) + 1000) * 3),
    "soak_mix": (mix, _mix),
}
"""Workflow name -> (the workflow, its expected result for an argument ``n``)."""
