"""Which step is which: step ids of repeated calls, gather order, step context, force_local."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import pyworkflow
from pyworkflow import EventType, NotInWorkflowError, get_step_context, step, workflow
from pyworkflow.testing import WorkflowEnvironment

from .recording import CALLS, double, token
from .run_log import events_of, of_type

CONTEXTS: dict[str, list[dict[str, Any]]] = {}


@step(name="tw_napping")
async def napping(tok: str, label: str, seconds: float) -> str:
    CALLS[tok, label] += 1
    await asyncio.sleep(seconds)
    return label


@step(name="tw_ctx", max_retries=3, retry_delay=0.01)
async def ctx_step(tok: str) -> str:
    ctx = get_step_context()
    CONTEXTS.setdefault(tok, []).append(
        {
            "run_id": ctx.run_id,
            "step_id": ctx.step_id,
            "attempt": ctx.attempt,
            "key": ctx.idempotency_key,
            "workflow": ctx.workflow_name,
            "name": ctx.step_name,
        }
    )
    if ctx.attempt < 3:
        raise ValueError("again")
    return ctx.idempotency_key


@step(name="tw_local", force_local=True)
async def local_step(tok: str, x: int) -> int:
    CALLS[tok, "local"] += 1
    return x + 100


@workflow(name="tw_same_step_twice")
async def same_step_twice(tok: str) -> list[int]:
    return [await double(tok, 5), await double(tok, 5)]


async def _branch(tok: str, label: str, delays: tuple[float, float]) -> list[str]:
    first = await napping(tok, label, delays[0])
    second = await napping(tok, label, delays[1])
    return [first, second]


@workflow(name="tw_gather")
async def gather_workflow(tok: str) -> list[Any]:
    # Branch "a" finishes its steps late, "b" early: completion order differs from call order.
    return list(
        await asyncio.gather(
            _branch(tok, "a", (0.06, 0.0)),
            _branch(tok, "b", (0.0, 0.01)),
            napping(tok, "c", 0.03),
        )
    )


@workflow(name="tw_ctx_wf")
async def ctx_workflow(tok: str) -> str:
    return await ctx_step(tok)


@workflow(name="tw_local_wf")
async def local_workflow(tok: str) -> int:
    return await local_step(tok, 1) + await double(tok, 1)


async def test_same_step_same_args_runs_twice(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(same_step_twice, tok)
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == [10, 10]
    assert CALLS[tok, "double"] == 2
    events = await events_of(run_id)
    assert [e.data["step_id"] for e in of_type(events, EventType.STEP_STARTED)] == [
        "tw_double#1",
        "tw_double#2",
    ]
    assert [e.data["step_id"] for e in of_type(events, EventType.STEP_COMPLETED)] == [
        "tw_double#1",
        "tw_double#2",
    ]


async def test_gather_of_steps_is_deterministic(env: WorkflowEnvironment) -> None:
    orders = []
    for _ in range(2):
        tok = token()
        run_id = await pyworkflow.start(gather_workflow, tok)
        assert await pyworkflow.get_workflow_result(run_id, timeout=10) == [
            ["a", "a"],
            ["b", "b"],
            "c",
        ]
        events = await events_of(run_id)
        started = [e.data["step_id"] for e in of_type(events, EventType.STEP_STARTED)]
        completed = [e.data["step_id"] for e in of_type(events, EventType.STEP_COMPLETED)]
        # First commands in argument order; each branch's second step after its first ends.
        assert started[:3] == ["tw_napping#1", "tw_napping#2", "tw_napping#3"]
        assert sorted(started) == sorted(completed)
        assert len(started) == 5
        orders.append(started[:3])
        assert CALLS[tok, "a"] == 2
        assert CALLS[tok, "b"] == 2
        assert CALLS[tok, "c"] == 1
    assert orders[0] == orders[1]


async def test_step_context_is_stable_across_retries(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(ctx_workflow, tok)
    key = await pyworkflow.get_workflow_result(run_id, timeout=10)
    seen = CONTEXTS[tok]
    assert [c["attempt"] for c in seen] == [1, 2, 3]
    assert {c["run_id"] for c in seen} == {run_id}
    assert {c["step_id"] for c in seen} == {"tw_ctx#1"}
    assert {c["name"] for c in seen} == {"tw_ctx"}
    assert {c["workflow"] for c in seen} == {"tw_ctx_wf"}
    assert {c["key"] for c in seen} == {key} == {f"{run_id}:tw_ctx#1"}
    with pytest.raises(NotInWorkflowError):
        get_step_context()


async def test_force_local_step_is_logged_like_any_other(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(local_workflow, tok)
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == 103
    events = await events_of(run_id)
    assert [(e.type, e.data.get("step_id")) for e in events[1:-1]] == [
        (EventType.STEP_STARTED, "tw_local#1"),
        (EventType.STEP_COMPLETED, "tw_local#1"),
        (EventType.STEP_STARTED, "tw_double#1"),
        (EventType.STEP_COMPLETED, "tw_double#1"),
    ]
