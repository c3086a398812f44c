"""A step attempt cut short is visible: the history logs the interruption and the re-run.

The executor stops while a step runs (as on a clean exit: the run is handed back); the next
executor replays the run. The step must run again, as its next attempt, after a logged
WORKFLOW_INTERRUPTED naming the cut attempt, and the cut attempt spends none of the step's
retries. (The same after a kill -9, with the dead worker named: tests/executors.)
"""

from __future__ import annotations

import asyncio
import time

import pytest

import pyworkflow
from pyworkflow import EventType, get_step_context, step, workflow
from pyworkflow.testing import WorkflowEnvironment

from .recording import token
from .run_log import assert_well_formed, events_of, of_type, types
from .waits import restart

# (token, attempt, interrupted) of every execution, as the step saw its context.
SEEN: list[tuple[str, int, int]] = []


async def _cut_short_or_fail(tok: str) -> None:
    ctx = get_step_context()
    SEEN.append((tok, ctx.attempt, ctx.interrupted))
    if ctx.interrupted == 0:
        await asyncio.sleep(3600)  # still running when the executor stops (real time)
    raise ValueError(f"attempt {ctx.attempt} failed")


@step(name="ti_no_retry", max_retries=0)
async def no_retry(tok: str) -> None:
    await _cut_short_or_fail(tok)


@step(name="ti_one_retry", max_retries=1, retry_delay=0.01)
async def one_retry(tok: str) -> None:
    await _cut_short_or_fail(tok)


@workflow(name="ti_flow")
async def flow(tok: str, retries: int) -> str:
    try:
        await (no_retry(tok) if retries == 0 else one_retry(tok))
    except ValueError as exc:
        return str(exc)
    return "no error"


async def _first_execution(tok: str) -> None:
    deadline = time.monotonic() + 5
    while not any(seen[0] == tok for seen in SEEN):
        assert time.monotonic() < deadline, "the step never started"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("retries", [0, 1])
async def test_an_attempt_cut_short_runs_again_as_the_next_one(
    env: WorkflowEnvironment, retries: int
) -> None:
    tok = token()
    run_id = await pyworkflow.start(flow, tok, retries)
    await _first_execution(tok)
    await restart(env)  # hands the run back mid-step; a new executor takes it on

    last = 2 + retries
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == f"attempt {last} failed"
    executions = [(attempt, cut) for t, attempt, cut in SEEN if t == tok]
    # The cut attempt spent no retry: with max_retries=0 the re-run still ran, and failed
    # for good; with 1, one retry followed it.
    assert executions == [(1, 0), *((n, 1) for n in range(2, last + 1))]

    events = await events_of(run_id)
    assert_well_formed(events)
    (interrupted,) = of_type(events, EventType.WORKFLOW_INTERRUPTED)
    step_id = "ti_no_retry#1" if retries == 0 else "ti_one_retry#1"
    assert interrupted.data["steps"] == [{"step_id": step_id, "attempt": 1}]
    assert interrupted.data["owner"] is None, "handed back, not taken over from a dead worker"
    started = [e.data["attempt"] for e in of_type(events, EventType.STEP_STARTED)]
    assert started == list(range(1, last + 1)), "one STEP_STARTED per execution"
    kinds = types(events)
    assert kinds.index(EventType.WORKFLOW_INTERRUPTED) < kinds.index(EventType.STEP_FAILED)
    assert kinds.count(EventType.STEP_RETRYING) == retries
