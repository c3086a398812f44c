"""Durable sleep: timers in the log, suspension past the horizon, recorded side effects.

On the virtual clock (tests/engine/conftest.py): a timer's wake-up time and when it fired are
checked exactly, and a sleep of a second takes none.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import pyworkflow
from pyworkflow import EventType, RunStatus, sleep, step, workflow
from pyworkflow.serialization import Codec
from pyworkflow.testing import WorkflowEnvironment

from .recording import CALLS, double, token
from .run_log import assert_well_formed, events_of, of_type, types
from .waits import set_horizon, wait_suspended


@step(name="tw_step_sleeper")
async def step_sleeper(tok: str) -> str:
    CALLS[tok, "step_sleeper"] += 1
    started = time.monotonic()
    await sleep(0.02)
    await sleep("10ms")
    return f"{time.monotonic() - started:.3f}"


@workflow(name="tw_sleeper")
async def sleeper(tok: str, seconds: float) -> str:
    before = await double(tok, 1)
    await sleep(seconds)
    after = await double(tok, 2)
    return f"{before}-{after}"


@workflow(name="tw_step_sleeps")
async def step_sleeps(tok: str) -> str:
    return await step_sleeper(tok)


@workflow(name="tw_side_effects")
async def side_effects(tok: str, nap: float) -> list[Any]:
    stamp = pyworkflow.now()
    ident = pyworkflow.uuid4()
    draw = pyworkflow.random()
    await sleep(nap)
    return [stamp, ident, draw]


@workflow(name="tw_swallower")
async def swallower(tok: str, nap: float) -> str:
    try:
        await sleep(nap)
    except Exception:
        return "sleep swallowed"
    try:
        value = await double(tok, 4)
    except Exception:
        return "step swallowed"
    return f"slept, then {value}"


async def test_sleep_in_a_workflow_logs_a_durable_timer(env: WorkflowEnvironment) -> None:
    tok = token()
    began = env.clock.now()  # the step before the sleep takes no virtual time
    run_id = await pyworkflow.start(sleeper, tok, 0.05)
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == "2-4"
    events = await events_of(run_id)
    assert_well_formed(events)
    (started,) = of_type(events, EventType.SLEEP_STARTED)
    (completed,) = of_type(events, EventType.SLEEP_COMPLETED)
    assert started.data["sleep_id"] == completed.data["sleep_id"] == "sleep#1"
    assert started.data["wake_at"] == pytest.approx(began + 0.05, abs=1e-6), "stored, absolute"
    # (The environment fires a timer nothing else races in the turn that sets it: both events
    # are logged in one append, stamped with the time it fired.)
    assert completed.timestamp.timestamp() >= started.data["wake_at"] - 1e-6
    assert started.seq < completed.seq


async def test_sleep_past_the_horizon_suspends_and_frees_the_run(env: WorkflowEnvironment) -> None:
    await set_horizon(0.1)
    tok = token()
    began = env.clock.now()
    run_id = await pyworkflow.start(sleeper, tok, 1.0)
    run = await wait_suspended(env, run_id)
    assert run.wake_at is not None
    # Suspended first (its first turn is stored with the run, leased), then let go: the driver
    # sees the timer is past the horizon and releases the run in its next commit.
    deadline = time.monotonic() + 5
    while (record := await env.storage.get_run(run_id)) is not None and record.lease_owner:
        assert time.monotonic() < deadline, "the suspended run kept its lease"
        await asyncio.sleep(0.005)
    assert record is not None
    assert record.status is RunStatus.SUSPENDED
    assert record.lease_expires_at is None
    assert record.wake_at == pytest.approx(run.wake_at.timestamp())
    assert env.clock.now() == began, "released before its timer, not by waiting for it"
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == "2-4"
    assert env.clock.now() - began >= 1.0
    assert CALLS[tok, "double"] == 2, "replay after the suspension does not rerun a step"
    events = await events_of(run_id)
    assert_well_formed(events)
    assert types(events).count(EventType.SLEEP_COMPLETED) == 1


async def test_sleep_in_a_step_is_asyncio_sleep(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(step_sleeps, tok)
    elapsed = float(await pyworkflow.get_workflow_result(run_id, timeout=10))
    assert elapsed >= 0.029  # real seconds: a step's sleep is not the virtual clock's
    events = await events_of(run_id)
    assert of_type(events, EventType.SLEEP_STARTED) == []
    assert of_type(events, EventType.SLEEP_COMPLETED) == []


async def test_sleep_until_a_datetime_outside_workflow_code_waits_until_then() -> None:
    # As in a step: an aware datetime is a wall-clock instant, not one of the loop's clock.
    when = datetime.now(UTC) + timedelta(milliseconds=50)
    started = time.monotonic()
    await asyncio.wait_for(sleep(when), timeout=5)
    assert datetime.now(UTC) >= when
    assert time.monotonic() - started < 2


async def test_now_uuid_random_are_recorded_and_replayed(env: WorkflowEnvironment) -> None:
    await set_horizon(0.1)
    tok = token()
    # The sleep outlives the horizon, so the result is computed by a replay from the log.
    run_id = await pyworkflow.start(side_effects, tok, 0.3)
    stamp, ident, draw = await pyworkflow.get_workflow_result(run_id, timeout=10)
    events = await events_of(run_id)
    recorded = of_type(events, EventType.SIDE_EFFECT_RECORDED)
    assert [e.data["kind"] for e in recorded] == ["now", "uuid4", "random"]
    codec = Codec()
    assert [codec.decode(e.data["value"]) for e in recorded] == [stamp, ident, draw]
    assert stamp.tzinfo is not None
    assert isinstance(ident, uuid.UUID)
    assert 0.0 <= draw < 1.0


async def test_except_exception_does_not_break_suspension(env: WorkflowEnvironment) -> None:
    await set_horizon(0.1)
    tok = token()
    run_id = await pyworkflow.start(swallower, tok, 0.4)
    await wait_suspended(env, run_id)
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == "slept, then 8"
    events = await events_of(run_id)
    assert types(events).count(EventType.SLEEP_STARTED) == 1
    assert types(events).count(EventType.SLEEP_COMPLETED) == 1
