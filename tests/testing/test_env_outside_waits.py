"""WorkflowEnvironment with hooks and children: resume_hook by name, timeouts on the virtual
clock, a step waiting on a child that sleeps, an on_created that calls a step."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

import pyworkflow
from pyworkflow import (
    EventType,
    HookExpiredError,
    InputError,
    RunStatus,
    hook,
    sleep,
    start_child_workflow,
    step,
    workflow,
)
from pyworkflow.testing import WorkflowEnvironment

CALLS: Counter[str] = Counter()
START = datetime(2030, 1, 1, tzinfo=UTC)


@step(name="tow_mail")
async def mail(token: str) -> str:
    CALLS["mail"] += 1
    return token[:3]


@workflow(name="tow_approval")
async def approval() -> list[str]:
    async def ask(token: str) -> None:
        await mail(token)  # a step: its result replays from the log

    answer = await hook("approve", timeout="7d", on_created=ask)
    return ["approved", answer]


@workflow(name="tow_late_approval")
async def late_approval() -> str:
    try:
        await hook("approve", timeout="2d")
    except HookExpiredError:
        await sleep("5d")  # still running, so a late payload hears "expired", not "not found"
        return "expired"
    return "answered"


@workflow(name="tow_parses_answer")
async def parses_answer() -> str:
    try:
        try:
            answer = await hook("approve", timeout="2d")
            return f"approved {int(answer)}"
        except ValueError:  # meant for int(): a payload that is not a number
            return "not a number"
    except HookExpiredError:
        return "expired"


@workflow(name="tow_napping_child")
async def napping_child(x: int) -> int:
    await sleep("3h")
    return x * 2


@step(name="tow_step_waits_for_child")
async def step_waits_for_child(x: int) -> int:
    value: int = await start_child_workflow(napping_child, x)
    return value


@workflow(name="tow_parent")
async def parent(x: int) -> int:
    return await step_waits_for_child(x)


async def test_resume_hook_by_run_and_name_after_on_created_called_a_step() -> None:
    CALLS.clear()
    async with WorkflowEnvironment(start_time=START) as env:
        run_id = await env.start(approval)
        await env.advance("1d")
        await env.resume_hook(run_id, "approve", "yes")
        assert await env.result(run_id) == ["approved", "yes"]
        types = [e.type for e in await env.events(run_id)]
    assert types == [
        EventType.WORKFLOW_STARTED,
        EventType.HOOK_CREATED,
        EventType.STEP_STARTED,
        EventType.STEP_COMPLETED,
        EventType.HOOK_RECEIVED,
        EventType.WORKFLOW_COMPLETED,
    ]
    assert CALLS["mail"] == 1


async def test_a_hook_times_out_on_the_virtual_clock_and_then_refuses_payloads() -> None:
    async with WorkflowEnvironment(start_time=START) as env:
        run_id = await env.start(late_approval)
        token = await env.hook_token(run_id, "approve")
        await env.advance("3d")
        with pytest.raises(HookExpiredError):
            await pyworkflow.resume_hook(token, "too late")
        with pytest.raises(InputError, match="no hook named 'approve' waiting"):
            await env.hook_token(run_id, "approve")
        assert await env.result(run_id) == "expired"
        with pytest.raises(pyworkflow.HookNotFoundError, match="has ended"):
            await pyworkflow.resume_hook(token, "later still")


async def test_except_value_error_does_not_swallow_a_hook_timeout() -> None:
    async with WorkflowEnvironment(start_time=START) as env:
        answered = await env.start(parses_answer)
        await env.resume_hook(answered, "approve", "yes")
        assert await env.result(answered) == "not a number"
        assert await env.run(parses_answer) == "expired"
        # A payload that comes too late is refused by the same error, no ValueError either.
        late = await env.start(late_approval)
        token = await env.hook_token(late, "approve")
        await env.advance("3d")
        with pytest.raises(HookExpiredError) as refused:
            await pyworkflow.resume_hook(token, "too late")
    assert not isinstance(refused.value, ValueError)


async def test_a_step_waiting_on_a_sleeping_child_lets_time_skip() -> None:
    async with WorkflowEnvironment(start_time=START) as env:
        run_id = await env.start(parent, 21)
        assert await env.result(run_id, timeout=10) == 42
        (child,) = await env.storage.list_runs(parent_run_id=run_id)
        assert child.status is RunStatus.COMPLETED
        assert env.now() >= START.replace(hour=3)


@workflow(name="tow_limited", max_duration="1d")
async def limited(answer_after: str) -> str:
    return str(await hook("answer", timeout=answer_after))


async def test_resuming_a_run_that_overran_max_duration_gives_it_the_limit_afresh() -> None:
    async with WorkflowEnvironment(start_time=START) as env:
        run_id = await env.start(limited, "30d")
        await env.advance("2d")
        failed = await env.get_run(run_id)
        assert failed.status is RunStatus.FAILED
        assert "WorkflowTimeoutError" in (failed.error or {}).get("type", "")
        await pyworkflow.resume(run_id)
        await env.advance("1h")  # within the new limit: waiting again, not failed at once
        assert (await env.get_run(run_id)).status is RunStatus.SUSPENDED
        await env.resume_hook(run_id, "answer", "late but in time")
        assert await env.result(run_id) == "late but in time"


@workflow(name="tow_waiting_child")
async def waiting_child() -> str:
    return str(await hook("never"))


@workflow(name="tow_leaves_a_child")
async def leaves_a_child() -> str:
    await start_child_workflow(waiting_child, wait_for_completion=False)
    await hook("stop")
    return "stopped"  # its child, still waiting, is cancelled (parent_close_policy="cancel")


async def test_a_waiting_child_is_cancelled_when_its_parent_ends() -> None:
    async with WorkflowEnvironment(start_time=START) as env:
        run_id = await env.start(leaves_a_child)
        await env.resume_hook(run_id, "stop")
        assert await env.result(run_id, timeout=10) == "stopped"
        (child,) = await env.storage.list_runs(parent_run_id=run_id)
        with pytest.raises(pyworkflow.WorkflowCancelledError):
            await env.result(child.run_id, timeout=0.5)
