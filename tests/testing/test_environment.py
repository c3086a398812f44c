"""WorkflowEnvironment: weeks of sleeps in milliseconds, advance(), fakes, isolation, SQLite."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import pyworkflow
from pyworkflow import (
    ConfigurationError,
    EventType,
    InputError,
    InvalidDurationError,
    RetryableError,
    RunNotFoundError,
    RunStatus,
    WorkflowCancelledError,
    WorkflowFailedError,
    sleep,
    step,
    workflow,
)
from pyworkflow.storage import MemoryStorage, SQLiteStorage
from pyworkflow.storage.protocol import Storage
from pyworkflow.testing import WorkflowEnvironment

CALLS: Counter[str] = Counter()
START = datetime(2030, 1, 1, tzinfo=UTC)


@step(name="tt_add_one")
async def add_one(i: int) -> int:
    CALLS["add_one"] += 1
    return i + 1


@workflow(name="tt_weekly")
async def weekly(steps: int) -> int:
    CALLS["weekly_body"] += 1  # counts replays: the body starts once per replay
    total = 0
    for i in range(steps):
        total += await add_one(i)
        await sleep("7d")
    return total


@step(name="tt_send_email")
async def send_email(to: str, subject: str) -> dict[str, str]:
    CALLS["send_email"] += 1
    raise AssertionError("the real send_email must not run under the fake")


@workflow(name="tt_welcome")
async def welcome(to: str) -> list[str]:
    first = await send_email(to, "welcome")
    await sleep("1d")
    second = await send_email(to, "tips")
    return [first["id"], second["id"]]


@step(name="tt_flaky", max_retries=3, retry_delay="1h")
async def flaky() -> str:
    return "real"


@workflow(name="tt_uses_flaky")
async def uses_flaky() -> str:
    return await flaky()


@workflow(name="tt_clock_reader")
async def clock_reader() -> list[datetime]:
    before = pyworkflow.now()
    await sleep("7d")
    return [before, pyworkflow.now()]


GATE: dict[str, asyncio.Event] = {}


@step(name="tt_gated")
async def gated(key: str) -> str:
    await GATE[key].wait()
    return key


@workflow(name="tt_gated_then_sleep")
async def gated_then_sleep(key: str) -> str:
    value = await gated(key)
    await sleep("7d")
    return await gated(key) + value


@pytest.fixture(params=["memory", "sqlite"])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> WorkflowEnvironment:
    storage: Storage = (
        MemoryStorage() if request.param == "memory" else SQLiteStorage(str(tmp_path / "env.db"))
    )
    async with WorkflowEnvironment(storage, start_time=START) as environment:
        yield environment
    await storage.close()


async def test_hundred_steps_with_a_week_between_each_finish_in_moments(
    env: WorkflowEnvironment,
) -> None:
    CALLS.clear()
    began = time.perf_counter()
    run_id = await env.start(weekly, 100)
    result = await env.result(run_id)
    elapsed = time.perf_counter() - began
    assert result == sum(range(1, 101))
    assert env.now() - START == timedelta(days=700)  # time does not pass while steps work
    assert elapsed < 10, f"100 virtual weeks took {elapsed:.1f}s of wall time"
    # Every step ran once, and the coroutine was kept across each skip: no replay.
    assert Counter({"add_one": 100, "weekly_body": 1}) == CALLS
    events = await env.events(run_id)
    assert Counter(e.type for e in events)[EventType.SLEEP_COMPLETED] == 100
    last_sleep = [e for e in events if e.type is EventType.SLEEP_COMPLETED][-1]
    assert last_sleep.timestamp == START + timedelta(days=700)


async def test_workflow_time_is_virtual(env: WorkflowEnvironment) -> None:
    before, after = await env.run(clock_reader)
    assert before == START
    assert after - before == timedelta(days=7)


async def test_advance_lets_a_test_look_in_between(env: WorkflowEnvironment) -> None:
    GATE["look"] = asyncio.Event()
    run_id = await env.start(gated_then_sleep, "look")
    assert (await env.get_run(run_id)).status is RunStatus.RUNNING  # the step is under way
    GATE["look"].set()
    await env.advance("1h")
    run = await env.get_run(run_id)
    assert run.status is RunStatus.SUSPENDED
    assert [e.type for e in await env.events(run_id)] == [
        EventType.WORKFLOW_STARTED,
        EventType.STEP_STARTED,
        EventType.STEP_COMPLETED,
        EventType.SLEEP_STARTED,
    ]
    await env.advance(timedelta(days=6))
    assert (await env.get_run(run_id)).status is RunStatus.SUSPENDED
    assert env.now() == START + timedelta(days=6, hours=1)
    await env.advance("23h")  # exactly when the sleep ends: it fires, the last step runs
    assert (await env.get_run(run_id)).status is RunStatus.COMPLETED
    assert await env.result(run_id) == "looklook"
    assert env.now() == START + timedelta(days=7)


async def test_advance_to_a_datetime_and_by_zero(env: WorkflowEnvironment) -> None:
    await env.advance(START + timedelta(days=2))
    assert env.now() == START + timedelta(days=2)
    await env.advance(START)  # in the past: nothing moves
    await env.advance(0)
    assert env.now() == START + timedelta(days=2)


async def test_override_step_runs_the_fake_and_keeps_the_log(env: WorkflowEnvironment) -> None:
    CALLS.clear()
    sent: list[tuple[str, str]] = []

    def fake(to: str, subject: str) -> dict[str, str]:  # a plain function is fine
        sent.append((to, subject))
        return {"id": f"fake-{len(sent)}"}

    env.override_step(send_email, fake)
    run_id = await env.start(welcome, "ada@example.com")
    assert await env.result(run_id) == ["fake-1", "fake-2"]
    assert sent == [("ada@example.com", "welcome"), ("ada@example.com", "tips")]
    assert CALLS["send_email"] == 0
    completed = [e for e in await env.events(run_id) if e.type is EventType.STEP_COMPLETED]
    assert [e.data["step_id"] for e in completed] == ["tt_send_email#1", "tt_send_email#2"]


async def test_an_overridden_step_keeps_its_retries(env: WorkflowEnvironment) -> None:
    attempts: list[int] = []

    async def fails_twice() -> str:
        attempts.append(len(attempts) + 1)
        if len(attempts) < 3:
            raise RetryableError("not yet")
        return "fake"

    env.override_step(flaky, fails_twice)
    run_id = await env.start(uses_flaky)
    assert await env.result(run_id) == "fake"
    assert attempts == [1, 2, 3]
    types = [e.type for e in await env.events(run_id)]
    assert types.count(EventType.STEP_RETRYING) == 2
    assert env.now() - START == timedelta(hours=2)  # two retry delays of 1h, skipped


async def test_an_overridden_step_that_always_fails_fails_the_run(
    env: WorkflowEnvironment,
) -> None:
    async def broken() -> str:
        raise RuntimeError("smtp down")

    env.override_step(flaky, broken)
    with pytest.raises(WorkflowFailedError, match="smtp down"):
        await env.run(uses_flaky)
    assert env.now() - START == timedelta(hours=3)  # 4 attempts, 3 delays


async def test_override_step_refuses_what_is_not_a_step_or_not_callable() -> None:
    env = WorkflowEnvironment()

    async def plain() -> None: ...

    with pytest.raises(InputError, match="is not a step"):
        env.override_step(plain, plain)
    with pytest.raises(InputError, match="must be callable"):
        env.override_step(send_email, "nope")


async def test_bad_input_is_refused_and_moves_nothing(env: WorkflowEnvironment) -> None:
    with pytest.raises(InvalidDurationError, match="5 parsecs"):
        await env.advance("5 parsecs")
    with pytest.raises(InvalidDurationError):
        await env.advance("-1s")
    with pytest.raises(InvalidDurationError, match="naive"):
        await env.advance(datetime(2031, 1, 1))
    assert env.now() == START
    assert await pyworkflow.list_workflow_runs() == []


async def test_an_environment_must_be_open_and_its_options_valid() -> None:
    env = WorkflowEnvironment()
    with pytest.raises(ConfigurationError, match="not open"):
        await env.start(weekly, 1)
    with pytest.raises(ConfigurationError, match="not open"):
        await env.advance("1h")
    with pytest.raises(InputError, match="naive"):
        WorkflowEnvironment(start_time=datetime(2030, 1, 1))
    with pytest.raises(ConfigurationError, match="bogus"):
        WorkflowEnvironment(storage="bogus://x")


async def test_the_public_api_uses_the_environment_only_inside_it(
    pw_memory: Storage,
) -> None:
    outside = await pyworkflow.start(clock_reader)
    async with WorkflowEnvironment(start_time=START) as env:
        inside = await pyworkflow.start(clock_reader)
        before, after = await pyworkflow.get_workflow_result(inside)
        assert after - before == timedelta(days=7)
        assert await env.storage.get_run(inside) is not None
        assert await env.storage.get_run(outside) is None
        with pytest.raises(RunNotFoundError):
            await pyworkflow.get_workflow_run(outside)
    # Back outside: the process's own configuration again, and its run still waiting there.
    assert (await pyworkflow.get_workflow_run(outside)).status is RunStatus.SUSPENDED
    with pytest.raises(RunNotFoundError):
        await pyworkflow.get_workflow_run(inside)
    assert await pw_memory.get_run(inside) is None


async def test_a_run_left_waiting_in_a_sqlite_file_resumes_in_the_next_environment(
    tmp_path: Path,
) -> None:
    CALLS.clear()
    url = f"sqlite:///{tmp_path / 'restart.db'}"
    async with WorkflowEnvironment(url, start_time=START) as first:
        run_id = await first.start(weekly, 2)
        await first.advance("1d")
        assert (await first.get_run(run_id)).status is RunStatus.SUSPENDED
    async with WorkflowEnvironment(url, start_time=START + timedelta(days=1)) as second:
        assert await second.result(run_id) == 3
        assert second.now() == START + timedelta(days=14)
    assert CALLS["add_one"] == 2  # the step logged before the restart did not run again
    assert CALLS["weekly_body"] == 2  # one replay, at the take-over


async def test_a_cancelled_sleeping_run_ends_cancelled(env: WorkflowEnvironment) -> None:
    run_id = await env.start(weekly, 3)
    await env.advance("1d")
    assert await pyworkflow.cancel_workflow(run_id, reason="no longer needed")
    with pytest.raises(WorkflowCancelledError):
        await env.result(run_id)
    assert env.now() == START + timedelta(days=1)  # the cancel did not wait for the timer
    types = [e.type for e in await env.events(run_id)]
    assert types[-1] is EventType.WORKFLOW_CANCELLED
