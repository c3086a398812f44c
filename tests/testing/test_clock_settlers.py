"""Two tasks settling the clock at once both come back: ``advance`` after a result never hangs.

The autojump task settles (waits for an idle loop) before each skip, and can still be settling
when the caller it skipped for has its result; the caller's next ``advance`` settles too. Each
settler yields at every pass, so each used to find the other's wake-up queued, forever. Users
write exactly this: cancel a run (or await one), then ``advance``. Every wait is bounded by
``asyncio.wait_for`` so a regression fails naming the call that hung.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

import pyworkflow
from pyworkflow import RunStatus, WorkflowCancelledError, sleep, start_child_workflow, workflow
from pyworkflow.testing import VirtualClock, WorkflowEnvironment

START = datetime(2030, 1, 1, tzinfo=UTC)
HUNG = 10.0  # real seconds; each of these returns in milliseconds


async def test_advance_while_the_autojump_task_still_settles_for_a_caller_gone() -> None:
    clock = VirtualClock(start=0.0)
    sleeper = asyncio.create_task(clock.sleep_until(3600.0))
    release = asyncio.Event()

    async def work() -> None:
        with clock.working():
            await release.wait()

    worker = asyncio.create_task(work())
    await asyncio.sleep(0)
    with clock.autojumping():
        # The autojump task starts settling: it waits for the work to end.
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    release.set()  # the caller has gone; the autojump task is still settling
    await asyncio.wait_for(clock.advance(3600), HUNG)
    assert sleeper.done()
    assert clock.now() == 3600.0
    await worker
    await clock.aclose()


async def test_two_advances_at_once_both_return_and_fire_each_deadline_once() -> None:
    clock = VirtualClock(start=0.0)
    woken: list[float] = []

    async def sleeper(deadline: float) -> None:
        await clock.sleep_until(deadline)
        woken.append(clock.now())

    sleepers = [asyncio.create_task(sleeper(d)) for d in (30.0, 10.0)]
    await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(clock.advance(60), clock.advance(0)), HUNG)
    assert woken == [10.0, 30.0]
    assert clock.now() == 60.0
    await asyncio.gather(*sleepers)
    await clock.aclose()


@workflow(name="tcs_nap")
async def nap(hours: int) -> datetime:
    await sleep(timedelta(hours=hours))
    return pyworkflow.now()


@workflow(name="tcs_parent")
async def parent() -> datetime:
    return await start_child_workflow(nap, 1)  # type: ignore[no-any-return]


async def test_cancel_a_parent_whose_child_sleeps_then_advance() -> None:
    async with WorkflowEnvironment(start_time=START) as env:
        run_id = await env.start(parent)
        await env.advance(0)
        assert await pyworkflow.cancel_workflow(run_id, reason="withdrawn") is True
        with pytest.raises(WorkflowCancelledError):
            await env.result(run_id)
        # The child's hour-long timer was still pending when the result came back.
        await asyncio.wait_for(env.advance("1h"), HUNG)
        assert env.now() == START + timedelta(hours=1)
        [child] = await pyworkflow.list_workflow_runs(workflow_name="tcs_nap")
        assert child.status is RunStatus.CANCELLED


async def test_a_result_while_another_run_sleeps_then_advance_fires_its_timer_on_time() -> None:
    async with WorkflowEnvironment(start_time=START) as env:
        later = await env.start(nap, 2)
        sooner = await env.start(nap, 1)
        assert await env.result(sooner) == START + timedelta(hours=1)  # skipped to
        await asyncio.wait_for(env.advance("1h"), HUNG)
        assert env.now() == START + timedelta(hours=2)
        assert (await env.get_run(later)).status is RunStatus.COMPLETED
        assert await env.result(later) == START + timedelta(hours=2)
