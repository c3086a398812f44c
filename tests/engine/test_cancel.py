"""cancel_workflow: of a run whose step is running, of a sleeping run, of a finished run.

A step running at the cancel finishes and the next never starts; a sleeping run is cancelled
without waiting for its timer (on the virtual clock: no time passes); a run that already ended
is left as it was.
"""

from __future__ import annotations

import asyncio
import time

import pytest

import pyworkflow
from pyworkflow import EventType, RunStatus, WorkflowCancelledError, sleep, step, workflow
from pyworkflow.testing import WorkflowEnvironment

from .recording import double, token, two_steps
from .run_log import assert_well_formed, events_of, types, wait_status
from .waits import wait_suspended

started: list[str] = []
# Each step runs until the test sets its gate (made afresh on each test's event loop).
gates: dict[str, asyncio.Event] = {}


@step()
async def tc_slow(name: str) -> str:
    started.append(name)
    await gates[name].wait()
    return name


@workflow()
async def tc_two_steps() -> list[str]:
    done = [await tc_slow("first")]
    done.append(await tc_slow("second"))
    return done


@workflow(name="tw_long_sleep")
async def long_sleep(tok: str, seconds: float) -> str:
    await double(tok, 1)
    await sleep(seconds)
    return "woke"


async def cancel_during_the_first_step() -> str:
    """Start tc_two_steps, cancel it while its first step runs, wait for the end."""
    started.clear()
    gates.update(first=asyncio.Event(), second=asyncio.Event())
    run_id = await pyworkflow.start(tc_two_steps)
    deadline = time.monotonic() + 5
    while not started:
        assert time.monotonic() < deadline, "the first step never started"
        await asyncio.sleep(0.005)
    # The request reaches the run's driver while the step still runs (cancel_workflow wakes
    # it before returning); only then may the step end.
    assert await pyworkflow.cancel_workflow(run_id, reason="stop") is True
    for gate in gates.values():
        gate.set()
    with pytest.raises(pyworkflow.WorkflowCancelledError, match="stop"):
        await pyworkflow.get_workflow_result(run_id, timeout=10)
    return run_id


async def test_cancel_while_a_step_runs(env: WorkflowEnvironment) -> None:
    run_id = await cancel_during_the_first_step()
    assert started == ["first"], "a step not yet started is not started after a cancel"
    kinds = [e.type for e in await pyworkflow.get_workflow_events(run_id)]
    assert kinds[-3:] == [
        EventType.CANCELLATION_REQUESTED,  # logged as soon as the lease holder sees it
        EventType.STEP_COMPLETED,  # the running step finished and its result is logged
        EventType.WORKFLOW_CANCELLED,  # the workflow saw CancellationError at its next step
    ]


@pytest.mark.parametrize("seconds", [60.0, 2.0], ids=["suspended", "in-process"])
async def test_cancel_a_sleeping_run(env: WorkflowEnvironment, seconds: float) -> None:
    tok = token()
    run_id = await pyworkflow.start(long_sleep, tok, seconds)
    if seconds > 5:
        await wait_suspended(env, run_id)
    else:
        deadline = time.monotonic() + 5
        while EventType.SLEEP_STARTED not in types(await events_of(run_id)):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.005)
    began = env.clock.now()
    assert await pyworkflow.cancel_workflow(run_id, reason="customer left") is True
    with pytest.raises(WorkflowCancelledError) as info:
        await pyworkflow.get_workflow_result(run_id, timeout=10)
    assert env.clock.now() - began < seconds, "cancelling waits for no timer"
    assert info.value.run_id == run_id
    assert info.value.reason == "customer left"
    run = await pyworkflow.get_workflow_run(run_id)
    assert run.status is RunStatus.CANCELLED
    events = await events_of(run_id)
    assert_well_formed(events)
    assert EventType.CANCELLATION_REQUESTED in types(events)
    assert types(events)[-1] is EventType.WORKFLOW_CANCELLED
    assert EventType.SLEEP_COMPLETED not in types(events)
    assert await pyworkflow.cancel_workflow(run_id) is False
    assert await events_of(run_id) == events


async def test_cancel_of_a_completed_run_returns_false(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(two_steps, tok, 1)
    await pyworkflow.get_workflow_result(run_id, timeout=10)
    events = await events_of(run_id)
    assert await pyworkflow.cancel_workflow(run_id) is False
    assert (await pyworkflow.get_workflow_run(run_id)).status is RunStatus.COMPLETED
    assert await events_of(run_id) == events


async def test_a_cancelled_runs_log_replays_to_the_same_end(env: WorkflowEnvironment) -> None:
    # Replay (a take-over, the replay checker) must reach the same end from the log alone.
    from pyworkflow._engine.activation import WorkflowActivation
    from pyworkflow.serialization import Codec

    run_id = await cancel_during_the_first_step()
    log = await env.storage.load_events(run_id)

    class Clock:
        def now(self) -> float:
            return 0.0

        async def sleep_until(self, deadline: float) -> None:
            raise AssertionError("replay needs no timer")

    activation = WorkflowActivation(
        run_id=run_id, workflow=tc_two_steps, args=(), kwargs={}, codec=Codec(), clock=Clock()
    )
    try:
        turn = activation.replay(log)
        assert activation.divergence is None
        assert turn.finished
        assert turn.cancelled
        assert turn.events == [], "everything the code did is already in the log"
    finally:
        activation.close()


@workflow(name="tc_sleeps_at_once")
async def sleeps_at_once() -> str:
    await sleep(60)  # in the first turn: stored with the run, leased, then let go
    return "woke"


async def test_a_cancel_landing_while_the_run_is_let_go(env: WorkflowEnvironment) -> None:
    run_id = await pyworkflow.start(sleeps_at_once)
    await wait_status(run_id, RunStatus.SUSPENDED)  # the first turn's status, still leased
    assert await pyworkflow.cancel_workflow(run_id, reason="at once") is True
    with pytest.raises(WorkflowCancelledError):
        await pyworkflow.get_workflow_result(run_id, timeout=0.5)
