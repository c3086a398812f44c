"""resume() of a failed run: a fresh retry budget, completed steps not rerun, unknown workflows."""

from __future__ import annotations

import asyncio
import time

import pytest

import pyworkflow
from pyworkflow import (
    EventType,
    FatalError,
    RunStatus,
    WorkflowFailedError,
    WorkflowNotFoundError,
    step,
    workflow,
)
from pyworkflow.storage.records import NewRun
from pyworkflow.testing import WorkflowEnvironment

from .recording import CALLS, double, token
from .run_log import assert_well_formed, events_of, types

FLAGS: dict[str, bool] = {}


@step(name="tw_flagged", max_retries=1, retry_delay=0.01)
async def flagged(tok: str) -> str:
    CALLS[tok, "flagged"] += 1
    if not FLAGS.get(tok):
        raise ValueError(f"flag {tok} is down")
    return "flag up"


@workflow(name="tw_resumable")
async def resumable(tok: str) -> str:
    first = await double(tok, 3)
    return f"{first} {await flagged(tok)}"


async def test_resume_a_failed_run_retries_the_step_with_a_fresh_budget(
    env: WorkflowEnvironment,
) -> None:
    tok = token()
    run_id = await pyworkflow.start(resumable, tok)
    with pytest.raises(WorkflowFailedError):
        await pyworkflow.get_workflow_result(run_id, timeout=10)
    assert CALLS[tok, "flagged"] == 2

    # Resumed without fixing anything: a fresh budget of 2 attempts, then failed again.
    await pyworkflow.resume(run_id)
    with pytest.raises(WorkflowFailedError):
        await pyworkflow.get_workflow_result(run_id, timeout=10)
    assert CALLS[tok, "flagged"] == 4

    FLAGS[tok] = True
    await pyworkflow.resume(run_id)
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == "6 flag up"
    assert CALLS[tok, "flagged"] == 5
    assert CALLS[tok, "double"] == 1, "the step completed before the failure is not rerun"
    events = await events_of(run_id)
    assert_well_formed(events)
    assert types(events).count(EventType.WORKFLOW_RESUMED) == 2
    assert types(events).count(EventType.WORKFLOW_FAILED) == 2
    assert types(events)[-1] is EventType.WORKFLOW_COMPLETED
    run = await pyworkflow.get_workflow_run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert run.error is None


async def test_resume_of_an_unregistered_workflow_raises(env: WorkflowEnvironment) -> None:
    record, _ = await env.storage.create_run(
        NewRun(
            run_id=f"run_ghost_{token()}",
            workflow_name="tw_ghost_not_registered",
            args={"args": [], "kwargs": {}},
            started_payload={"v": 1},
            now=env.clock.now(),
        )
    )
    before = await env.storage.load_events(record.run_id)
    with pytest.raises(WorkflowNotFoundError) as info:
        await pyworkflow.resume(record.run_id)
    assert "tw_ghost_not_registered" in str(info.value)
    assert await env.storage.load_events(record.run_id) == before


async def test_resume_logs_the_fresh_attempt(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(resumable, tok)
    with pytest.raises(WorkflowFailedError):
        await pyworkflow.get_workflow_result(run_id, timeout=10)
    FLAGS[tok] = True
    await pyworkflow.resume(run_id)
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == "6 flag up"
    events = await events_of(run_id)
    resumed = types(events).index(EventType.WORKFLOW_RESUMED)
    after = [(e.type, e.data.get("step_id"), e.data.get("attempt")) for e in events[resumed:]]
    assert (EventType.STEP_STARTED, "tw_flagged#1", 1) in after


_attempts: list[str] = []
_gates: dict[str, asyncio.Event] = {}  # the step runs until the test sets its token's gate


@step(name="tr_slow_fatal", max_retries=0)
async def slow_fatal(tok: str) -> str:
    _attempts.append(tok)
    await _gates[tok].wait()
    raise FatalError("the step gives up")


@workflow(name="tr_cancel_then_fail")
async def cancel_then_fail(tok: str) -> str:
    return await slow_fatal(tok)


async def test_a_cancel_request_made_before_the_run_failed_stands_after_resume(
    env: WorkflowEnvironment,
) -> None:
    # The request reached the run while its step ran; the step then failed the run. Resuming
    # the failed run does not forget the request: the step is not run again, the run ends
    # cancelled (issue 5's decision for reopen_failed_run).
    tok = token()
    _gates[tok] = asyncio.Event()
    run_id = await pyworkflow.start(cancel_then_fail, tok)
    deadline = time.monotonic() + 5
    while tok not in _attempts:
        assert time.monotonic() < deadline, "the step never started"
        await asyncio.sleep(0.005)
    # cancel_workflow wakes the run's driver before it returns: the step ends after that.
    assert await pyworkflow.cancel_workflow(run_id, reason="stop") is True
    _gates[tok].set()
    with pytest.raises(pyworkflow.WorkflowFailedError):
        await pyworkflow.get_workflow_result(run_id, timeout=10)
    await pyworkflow.resume(run_id)
    with pytest.raises(pyworkflow.WorkflowCancelledError, match="stop"):
        await pyworkflow.get_workflow_result(run_id, timeout=10)
    assert _attempts.count(tok) == 1, "the cancelled run's step ran again"
    events = await events_of(run_id)
    assert_well_formed(events)
    assert types(events)[-1] is EventType.WORKFLOW_CANCELLED
