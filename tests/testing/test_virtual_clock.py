"""VirtualClock: moves only by hand or when nothing works; races resolve the same every time."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import pyworkflow
from pyworkflow import EventType, sleep, step, workflow
from pyworkflow.testing import VirtualClock, WorkflowEnvironment, _clock

START = datetime(2030, 1, 1, tzinfo=UTC)


async def test_advance_fires_deadlines_in_order_and_stops_at_the_target() -> None:
    clock = VirtualClock(start=1000.0)
    woken: list[tuple[str, float]] = []

    async def sleeper(name: str, deadline: float) -> None:
        await clock.sleep_until(deadline)
        woken.append((name, clock.now()))

    tasks = [
        asyncio.create_task(sleeper("late", 1030.0)),
        asyncio.create_task(sleeper("early", 1010.0)),
        asyncio.create_task(sleeper("beyond", 1100.0)),
    ]
    await clock.advance(60)
    assert woken == [("early", 1010.0), ("late", 1030.0)]
    assert clock.now() == 1060.0
    assert not tasks[2].done()
    await clock.advance(40)
    assert woken[-1] == ("beyond", 1100.0)
    await clock.aclose()


async def test_time_skips_only_while_someone_waits_and_nothing_works() -> None:
    clock = VirtualClock(start=0.0)
    sleeper = asyncio.create_task(clock.sleep_until(3600.0))
    await asyncio.sleep(0.02)  # real time passes; virtual time does not skip on its own
    assert clock.now() == 0.0
    assert not sleeper.done()

    release = asyncio.Event()

    async def work() -> None:
        with clock.working():
            await release.wait()

    worker = asyncio.create_task(work())
    with clock.autojumping():
        await asyncio.sleep(0.02)
        assert clock.now() == 0.0  # someone waits, but a unit of work is still under way
        release.set()
        await sleeper
    assert clock.now() == 3600.0
    await worker
    await clock.aclose()


async def test_far_and_infinite_deadlines_are_not_skipped_to() -> None:
    clock = VirtualClock(start=0.0, max_skip=100.0)
    far = asyncio.create_task(clock.sleep_until(1000.0))
    never = asyncio.create_task(clock.sleep_until(math.inf))
    with clock.autojumping():
        await asyncio.sleep(0.02)
    assert clock.now() == 0.0
    await clock.advance(1000)
    assert far.done()
    assert not never.done()
    never.cancel()
    await clock.aclose()


# --- races inside workflows --------------------------------------------------------------------


@step(name="tt_slow_step")
async def slow_step() -> str:
    await asyncio.sleep(0.03)  # real time: the virtual clock must not move meanwhile
    return "step"


@workflow(name="tt_race")
async def race() -> list[str]:
    order: list[str] = []

    async def work() -> None:
        order.append(await slow_step())

    async def nap() -> None:
        await sleep("1ms")
        order.append("sleep")

    await asyncio.gather(work(), nap())
    return order


@workflow(name="tt_nap")
async def nap_for(days: int) -> datetime:
    await sleep(timedelta(days=days))
    return pyworkflow.now()


def _history(events: list[Any]) -> list[tuple[Any, ...]]:
    return [(e.seq, e.type, e.timestamp, e.data) for e in events]


@workflow(name="tt_slow_then_now")
async def slow_then_now() -> datetime:
    await slow_step()
    return pyworkflow.now()


@pytest.mark.parametrize("storage", ["memory", "sqlite"])
async def test_a_step_racing_a_sleep_resolves_the_same_way_every_time(
    storage: str, tmp_path: Path
) -> None:
    histories = []
    for attempt in range(3):
        url = "memory://" if storage == "memory" else f"sqlite:///{tmp_path}/race{attempt}.db"
        async with WorkflowEnvironment(url, start_time=START) as env:
            run_id = await env.start(race)
            # A 1 ms sleep against a 30 ms step: time stands still while the step works.
            assert await env.result(run_id) == ["step", "sleep"]
            histories.append(_history(await env.events(run_id)))
    assert histories[0] == histories[1] == histories[2]
    types = [entry[1] for entry in histories[0]]
    assert types.index(EventType.STEP_COMPLETED) < types.index(EventType.SLEEP_COMPLETED)


async def test_many_runs_sleeping_different_lengths_each_wake_on_time() -> None:
    async with WorkflowEnvironment(start_time=START) as env:
        woke = await asyncio.gather(*(env.run(nap_for, days) for days in (9, 2, 5, 2, 30)))
        assert woke == [START + timedelta(days=d) for d in (9, 2, 5, 2, 30)]
        assert env.now() == START + timedelta(days=30)


async def test_time_does_not_skip_while_another_run_works() -> None:
    async with WorkflowEnvironment(start_time=START) as env:
        working, sleeping = await asyncio.gather(env.run(slow_then_now), env.run(nap_for, 1))
        assert working == START  # no skip to the other run's timer during the 30 ms step
        assert sleeping == START + timedelta(days=1)


async def test_without_a_readable_run_queue_the_clock_still_skips(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As on an event loop that hides its run queue (uvloop): idle means many quiet passes.
    monkeypatch.setattr(_clock, "_ready_callbacks", lambda loop, besides=(): None)
    async with WorkflowEnvironment(start_time=START) as env:
        assert await env.run(race) == ["step", "sleep"]
        began = env.now()
        woke = await asyncio.gather(*(env.run(nap_for, days) for days in (3, 1)))
        assert woke == [began + timedelta(days=3), began + timedelta(days=1)]


@workflow(name="tt_twins")
async def twins() -> list[str]:
    order: list[str] = []

    async def nap(name: str) -> None:
        await sleep("1h")
        order.append(name)

    await asyncio.gather(nap("a"), nap("b"))
    return order


async def test_simultaneous_timers_fire_in_the_same_order_skipped_or_advanced() -> None:
    async with WorkflowEnvironment(start_time=START) as env:
        skipped = await env.start(twins)
        assert await env.result(skipped) == ["a", "b"]
        skipped_history = _history(await env.events(skipped))
    async with WorkflowEnvironment(start_time=START) as env:
        advanced = await env.start(twins)
        await env.advance("1h")
        assert await env.result(advanced) == ["a", "b"]
        assert _history(await env.events(advanced)) == skipped_history
