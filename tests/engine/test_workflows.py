"""User-visible behaviour of workflows and steps, through the public API, on every backend.

Every workflow and step is defined at module level under a ``tw_`` name (the registry refuses two
functions under one name). Side effects are counted in ``CALLS``, outside the engine, keyed by a
per-test token so the memory and SQLite runs of a test do not mix.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from typing import Any

import pytest

import pyworkflow
from pyworkflow import (
    EventType,
    FatalError,
    IdempotencyConflictError,
    NotInWorkflowError,
    RetryableError,
    RunStatus,
    WorkflowCancelledError,
    WorkflowEvent,
    WorkflowFailedError,
    WorkflowNotFoundError,
    get_step_context,
    sleep,
    step,
    workflow,
)
from pyworkflow.serialization import Codec
from pyworkflow.storage.protocol import NewRun, Storage

CALLS: Counter[tuple[str, str]] = Counter()
CONTEXTS: dict[str, list[dict[str, Any]]] = {}
FLAGS: dict[str, bool] = {}


def token() -> str:
    return uuid.uuid4().hex


class InventoryError(Exception):
    """A user exception defined in workflow code's module: rebuilt by import path."""


# --- steps ---------------------------------------------------------------------------------------


@step(name="tw_double")
async def double(tok: str, x: int) -> int:
    CALLS[tok, "double"] += 1
    return x * 2


@step(name="tw_add", max_retries=0)
async def add(tok: str, x: int, y: int) -> int:
    CALLS[tok, "add"] += 1
    return x + y


@step(name="tw_always_fails", max_retries=3, retry_delay=0.01)
async def always_fails(tok: str) -> None:
    CALLS[tok, "always_fails"] += 1
    raise ValueError(f"attempt {CALLS[tok, 'always_fails']} of {tok} failed")


@step(name="tw_fails_twice_fixed", max_retries=3, retry_delay=0.05)
async def fails_twice_fixed(tok: str) -> str:
    CALLS[tok, "fixed"] += 1
    if CALLS[tok, "fixed"] <= 2:
        raise ValueError("not yet")
    return "ok"


@step(name="tw_fails_thrice_list", max_retries=3, retry_delay=[0.02, "80ms"])
async def fails_thrice_list(tok: str) -> str:
    CALLS[tok, "list"] += 1
    if CALLS[tok, "list"] <= 3:
        raise ValueError("not yet")
    return "ok"


@step(name="tw_fails_twice_exp", max_retries=2, retry_delay="exponential")
async def fails_twice_exp(tok: str) -> str:
    CALLS[tok, "exp"] += 1
    if CALLS[tok, "exp"] <= 2:
        raise ValueError("not yet")
    return "ok"


@step(name="tw_fatal", max_retries=5, retry_delay=0.01)
async def fatal_step(tok: str) -> None:
    CALLS[tok, "fatal"] += 1
    raise FatalError(f"card {tok} declined")


@step(name="tw_retry_after", max_retries=2, retry_delay="1h")
async def retry_after_step(tok: str) -> str:
    CALLS[tok, "retry_after"] += 1
    if CALLS[tok, "retry_after"] == 1:
        raise RetryableError("rate limited", retry_after="50ms")
    return "through"


@step(name="tw_slow_once", max_retries=1, retry_delay=0.01, timeout=0.1)
async def slow_once(tok: str) -> str:
    CALLS[tok, "slow"] += 1
    if CALLS[tok, "slow"] == 1:
        await sleep(5)  # in a step: a plain asyncio.sleep, cut short by the timeout
    return "fast enough"


@step(name="tw_out_of_stock", max_retries=1, retry_delay=0.01)
async def out_of_stock(tok: str, sku: str) -> None:
    CALLS[tok, "stock"] += 1
    raise InventoryError(f"out of stock: {sku}")


@step(name="tw_napping")
async def napping(tok: str, label: str, seconds: float) -> str:
    CALLS[tok, label] += 1
    await asyncio.sleep(seconds)
    return label


@step(name="tw_ctx", max_retries=3, retry_delay=0.01)
async def ctx_step(tok: str) -> str:
    ctx = get_step_context()
    CONTEXTS.setdefault(tok, []).append({
        "run_id": ctx.run_id, "step_id": ctx.step_id, "attempt": ctx.attempt,
        "key": ctx.idempotency_key, "workflow": ctx.workflow_name, "name": ctx.step_name,
    })
    if ctx.attempt < 3:
        raise ValueError("again")
    return ctx.idempotency_key


@step(name="tw_local", force_local=True)
async def local_step(tok: str, x: int) -> int:
    CALLS[tok, "local"] += 1
    return x + 100


@step(name="tw_step_sleeper")
async def step_sleeper(tok: str) -> str:
    CALLS[tok, "step_sleeper"] += 1
    started = time.monotonic()
    await sleep(0.02)
    await sleep("10ms")
    return f"{time.monotonic() - started:.3f}"


@step(name="tw_flagged", max_retries=1, retry_delay=0.01)
async def flagged(tok: str) -> str:
    CALLS[tok, "flagged"] += 1
    if not FLAGS.get(tok):
        raise ValueError(f"flag {tok} is down")
    return "flag up"


# --- workflows -----------------------------------------------------------------------------------


@workflow(name="tw_two_steps")
async def two_steps(tok: str, x: int) -> int:
    a = await double(tok, x)
    return await add(tok, a, 1)


@workflow(name="tw_other")
async def other_workflow(tok: str) -> str:
    return tok


@workflow(name="tw_call_always_fails")
async def call_always_fails(tok: str) -> None:
    await always_fails(tok)


@workflow(name="tw_retry_delays")
async def retry_delays(tok: str, which: str) -> str:
    if which == "fixed":
        return await fails_twice_fixed(tok)
    if which == "list":
        return await fails_thrice_list(tok)
    return await fails_twice_exp(tok)


@workflow(name="tw_call_fatal")
async def call_fatal(tok: str) -> None:
    await fatal_step(tok)


@workflow(name="tw_call_retry_after")
async def call_retry_after(tok: str) -> str:
    return await retry_after_step(tok)


@workflow(name="tw_call_slow_once")
async def call_slow_once(tok: str) -> str:
    return await slow_once(tok)


@workflow(name="tw_catch_inventory")
async def catch_inventory(tok: str) -> str:
    try:
        await out_of_stock(tok, "sku-1")
    except InventoryError as exc:
        note = f"caught {type(exc).__name__}: {exc}"
    else:
        note = "not raised"
    return f"{note}; then {await double(tok, 21)}"


@workflow(name="tw_uncaught_inventory")
async def uncaught_inventory(tok: str) -> None:
    await out_of_stock(tok, "sku-2")


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
    return list(await asyncio.gather(
        _branch(tok, "a", (0.06, 0.0)),
        _branch(tok, "b", (0.0, 0.01)),
        napping(tok, "c", 0.03),
    ))


@workflow(name="tw_ctx_wf")
async def ctx_workflow(tok: str) -> str:
    return await ctx_step(tok)


@workflow(name="tw_local_wf")
async def local_workflow(tok: str) -> int:
    return await local_step(tok, 1) + await double(tok, 1)


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


@workflow(name="tw_resumable")
async def resumable(tok: str) -> str:
    first = await double(tok, 3)
    return f"{first} {await flagged(tok)}"


@workflow(name="tw_long_sleep")
async def long_sleep(tok: str, seconds: float) -> str:
    await double(tok, 1)
    await sleep(seconds)
    return "woke"


# --- helpers -------------------------------------------------------------------------------------


async def events_of(run_id: str) -> list[WorkflowEvent]:
    return await pyworkflow.get_workflow_events(run_id)


def types(events: list[WorkflowEvent]) -> list[EventType]:
    return [e.type for e in events]


def of_type(events: list[WorkflowEvent], kind: EventType) -> list[WorkflowEvent]:
    return [e for e in events if e.type is kind]


async def wait_status(
    run_id: str, wanted: RunStatus, within: float = 3.0
) -> pyworkflow.WorkflowRun:
    deadline = time.monotonic() + within
    while True:
        run = await pyworkflow.get_workflow_run(run_id)
        if run.status is wanted:
            return run
        assert time.monotonic() < deadline, f"run stayed {run.status}, never {wanted}"
        await asyncio.sleep(0.01)


def assert_well_formed(events: list[WorkflowEvent]) -> None:
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].type is EventType.WORKFLOW_STARTED
    assert all(e.data.get("v") == 1 for e in events), [e.data for e in events]


# --- run / start / queries -----------------------------------------------------------------------


async def test_run_returns_the_result_and_logs_each_step(pw: Storage) -> None:
    tok = token()
    assert await pyworkflow.run(two_steps, tok, 20) == 41
    (record,) = await pyworkflow.list_workflow_runs(workflow_name="tw_two_steps")
    events = await events_of(record.run_id)
    assert_well_formed(events)
    assert types(events) == [
        EventType.WORKFLOW_STARTED,
        EventType.STEP_STARTED, EventType.STEP_COMPLETED,
        EventType.STEP_STARTED, EventType.STEP_COMPLETED,
        EventType.WORKFLOW_COMPLETED,
    ]
    started = of_type(events, EventType.STEP_STARTED)
    assert [e.data["step_id"] for e in started] == ["tw_double#1", "tw_add#1"]
    assert [e.data["attempt"] for e in started] == [1, 1]
    assert events[-1].data["result"] == 41
    assert CALLS[tok, "double"] == 1
    assert CALLS[tok, "add"] == 1


async def test_start_then_get_result_and_run(pw: Storage) -> None:
    tok = token()
    run_id = await pyworkflow.start(two_steps, tok, x=1)
    assert run_id.startswith("run_")
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == 3
    run = await pyworkflow.get_workflow_run(run_id)
    assert run.run_id == run_id
    assert run.workflow_name == "tw_two_steps"
    assert run.status is RunStatus.COMPLETED
    assert run.result == 3
    assert run.error is None
    assert run.completed_at is not None
    assert run.created_at <= run.completed_at
    assert run.wake_at is None
    # by name, too
    assert await pyworkflow.run(two_steps, tok, 2) == 5
    run_id2 = await pyworkflow.start("tw_two_steps", tok, 3)
    assert await pyworkflow.get_workflow_result(run_id2) == 7


async def test_list_workflow_runs_filters_and_pages(pw: Storage) -> None:
    tok = token()
    ids = [await pyworkflow.start(two_steps, tok, i) for i in range(5)]
    failed = await pyworkflow.start(call_always_fails, tok)
    other = await pyworkflow.start(other_workflow, tok)
    for run_id in ids:
        await pyworkflow.get_workflow_result(run_id, timeout=10)
    with pytest.raises(WorkflowFailedError):
        await pyworkflow.get_workflow_result(failed, timeout=10)
    await pyworkflow.get_workflow_result(other, timeout=10)

    everything = await pyworkflow.list_workflow_runs()
    assert {r.run_id for r in everything} == {*ids, failed, other}
    keys = [(r.created_at, r.run_id) for r in everything]
    assert keys == sorted(keys, reverse=True), "newest first"

    only_failed = await pyworkflow.list_workflow_runs(status="failed")
    assert [r.run_id for r in only_failed] == [failed]
    assert only_failed[0].error is not None
    assert only_failed[0].error["type"] == "ValueError"
    done = await pyworkflow.list_workflow_runs(status=[RunStatus.COMPLETED])
    assert {r.run_id for r in done} == {*ids, other}
    by_name = await pyworkflow.list_workflow_runs(workflow_name="tw_two_steps")
    assert {r.run_id for r in by_name} == set(ids)
    assert {r.result for r in by_name} == {1, 3, 5, 7, 9}
    both = await pyworkflow.list_workflow_runs(workflow_name="tw_two_steps", status="failed")
    assert both == []

    pages: list[list[str]] = []
    before = None
    while True:
        page = await pyworkflow.list_workflow_runs(limit=2, before=before)
        if not page:
            break
        pages.append([r.run_id for r in page])
        before = page[-1].run_id
    assert [len(p) for p in pages] == [2, 2, 2, 1]
    assert [i for p in pages for i in p] == [r.run_id for r in everything]

    named_pages: list[str] = []
    before = None
    while page := await pyworkflow.list_workflow_runs(
        workflow_name="tw_two_steps", limit=3, before=before
    ):
        named_pages += [r.run_id for r in page]
        before = page[-1].run_id
    assert named_pages == [r.run_id for r in by_name]


async def test_idempotency_key_returns_the_same_run(pw: Storage) -> None:
    tok = token()
    key = f"order-{tok}"
    first = await pyworkflow.start(two_steps, tok, 1, idempotency_key=key)
    again = await pyworkflow.start(two_steps, tok, 1, idempotency_key=key)
    assert again == first
    assert await pyworkflow.get_workflow_result(first, timeout=10) == 3
    events = await events_of(first)
    after_end = await pyworkflow.start(two_steps, tok, 99, idempotency_key=key)
    assert after_end == first
    assert await pyworkflow.get_workflow_result(after_end) == 3
    assert await events_of(first) == events
    assert CALLS[tok, "double"] == 1
    run = await pyworkflow.get_workflow_run(first)
    assert run.idempotency_key == key
    assert len(await pyworkflow.list_workflow_runs()) == 1

    with pytest.raises(IdempotencyConflictError) as info:
        await pyworkflow.start(other_workflow, tok, idempotency_key=key)
    assert info.value.idempotency_key == key
    assert key in str(info.value)
    assert "tw_two_steps" in str(info.value)
    assert "tw_other" in str(info.value)
    assert len(await pyworkflow.list_workflow_runs()) == 1
    assert await pyworkflow.list_workflow_runs(workflow_name="tw_other") == []
    assert await events_of(first) == events


# --- retries -------------------------------------------------------------------------------------


async def test_max_retries_3_means_4_attempts(pw: Storage) -> None:
    tok = token()
    with pytest.raises(WorkflowFailedError) as info:
        await pyworkflow.run(call_always_fails, tok)
    assert CALLS[tok, "always_fails"] == 4
    assert info.value.error_type == "ValueError"
    assert info.value.error_message == f"attempt 4 of {tok} failed"
    events = await events_of(info.value.run_id)
    assert_well_formed(events)
    assert [e.data["attempt"] for e in of_type(events, EventType.STEP_STARTED)] == [1, 2, 3, 4]
    retrying = of_type(events, EventType.STEP_RETRYING)
    assert [e.data["attempt"] for e in retrying] == [1, 2, 3]
    assert [e.data["error"]["message"] for e in retrying] == [
        f"attempt {n} of {tok} failed" for n in (1, 2, 3)
    ]
    (failed,) = of_type(events, EventType.STEP_FAILED)
    assert failed.data["step_id"] == "tw_always_fails#1"
    assert failed.data["error"]["type"] == "ValueError"
    assert types(events)[-1] is EventType.WORKFLOW_FAILED


def _delays(events: list[WorkflowEvent]) -> list[float]:
    """Seconds between each failure being logged and the retry it scheduled."""
    retrying = of_type(events, EventType.STEP_RETRYING)
    return [e.data["retry_at"] - e.timestamp.timestamp() for e in retrying]


def _assert_waited(events: list[WorkflowEvent]) -> None:
    """Each retry attempt started no earlier than the retry_at logged before it."""
    retry_at = None
    for event in events:
        if event.type is EventType.STEP_RETRYING:
            retry_at = event.data["retry_at"]
        elif event.type is EventType.STEP_STARTED and retry_at is not None:
            assert event.timestamp.timestamp() >= retry_at - 0.002
            retry_at = None


@pytest.mark.parametrize(
    ("which", "expected"),
    [("fixed", [0.05, 0.05]), ("list", [0.02, 0.08, 0.08]), ("exponential", [1.0, 2.0])],
)
async def test_retry_delay_spacing(pw: Storage, which: str, expected: list[float]) -> None:
    tok = token()
    run_id = await pyworkflow.start(retry_delays, tok, which)
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == "ok"
    events = await events_of(run_id)
    delays = _delays(events)
    assert len(delays) == len(expected)
    for got, want in zip(delays, expected, strict=True):
        assert got == pytest.approx(want, abs=0.03)
    _assert_waited(events)


async def test_fatal_error_stops_at_once(pw: Storage) -> None:
    tok = token()
    with pytest.raises(WorkflowFailedError) as info:
        await pyworkflow.run(call_fatal, tok)
    assert CALLS[tok, "fatal"] == 1
    assert info.value.error_type == "pyworkflow.exceptions.FatalError"
    assert tok in info.value.error_message
    events = await events_of(info.value.run_id)
    assert of_type(events, EventType.STEP_RETRYING) == []
    assert len(of_type(events, EventType.STEP_FAILED)) == 1


async def test_retryable_error_retry_after_overrides_the_delay(pw: Storage) -> None:
    tok = token()
    started = time.monotonic()
    run_id = await pyworkflow.start(call_retry_after, tok)
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == "through"
    assert time.monotonic() - started < 5, "retry_after='50ms' must override retry_delay='1h'"
    events = await events_of(run_id)
    (retrying,) = of_type(events, EventType.STEP_RETRYING)
    assert retrying.data["error"]["type"] == "pyworkflow.exceptions.RetryableError"
    assert _delays(events) == [pytest.approx(0.05, abs=0.03)]
    _assert_waited(events)


async def test_timeout_fails_the_attempt_and_retries(pw: Storage) -> None:
    tok = token()
    started = time.monotonic()
    run_id = await pyworkflow.start(call_slow_once, tok)
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == "fast enough"
    assert time.monotonic() - started < 3
    assert CALLS[tok, "slow"] == 2
    events = await events_of(run_id)
    (retrying,) = of_type(events, EventType.STEP_RETRYING)
    assert retrying.data["error"]["type"] == "pyworkflow.exceptions.StepTimeoutError"
    assert "tw_slow_once" in retrying.data["error"]["message"]
    # sleep inside a step is asyncio.sleep: no timer events
    assert of_type(events, EventType.SLEEP_STARTED) == []


async def test_exhausted_retries_raise_the_original_class_in_the_workflow(pw: Storage) -> None:
    tok = token()
    result = await pyworkflow.run(catch_inventory, tok)
    assert result == "caught InventoryError: out of stock: sku-1; then 42"
    assert CALLS[tok, "stock"] == 2


async def test_uncaught_step_failure_fails_the_run_with_type_message_traceback(pw: Storage) -> None:
    tok = token()
    run_id = await pyworkflow.start(uncaught_inventory, tok)
    with pytest.raises(WorkflowFailedError) as info:
        await pyworkflow.get_workflow_result(run_id, timeout=10)
    err = info.value
    assert err.run_id == run_id
    assert err.error_type == f"{InventoryError.__module__}.InventoryError"
    assert err.error_message == "out of stock: sku-2"
    assert "Traceback" in err.traceback
    assert "uncaught_inventory" in err.traceback
    assert "out_of_stock" in err.traceback, "the step's own traceback travels with the error"
    run = await pyworkflow.get_workflow_run(run_id)
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error["type"] == err.error_type
    assert run.error["message"] == err.error_message
    events = await events_of(run_id)
    assert events[-1].type is EventType.WORKFLOW_FAILED
    assert events[-1].data["error"]["type"] == err.error_type


# --- identity and concurrency --------------------------------------------------------------------


async def test_same_step_same_args_runs_twice(pw: Storage) -> None:
    tok = token()
    run_id = await pyworkflow.start(same_step_twice, tok)
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == [10, 10]
    assert CALLS[tok, "double"] == 2
    events = await events_of(run_id)
    assert [e.data["step_id"] for e in of_type(events, EventType.STEP_STARTED)] == [
        "tw_double#1", "tw_double#2",
    ]
    assert [e.data["step_id"] for e in of_type(events, EventType.STEP_COMPLETED)] == [
        "tw_double#1", "tw_double#2",
    ]


async def test_gather_of_steps_is_deterministic(pw: Storage) -> None:
    orders = []
    for _ in range(2):
        tok = token()
        run_id = await pyworkflow.start(gather_workflow, tok)
        assert await pyworkflow.get_workflow_result(run_id, timeout=10) == [
            ["a", "a"], ["b", "b"], "c",
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


async def test_step_context_is_stable_across_retries(pw: Storage) -> None:
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


async def test_force_local_step_is_logged_like_any_other(pw: Storage) -> None:
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


# --- sleep ---------------------------------------------------------------------------------------


async def test_sleep_in_a_workflow_logs_a_durable_timer(pw: Storage) -> None:
    tok = token()
    run_id = await pyworkflow.start(sleeper, tok, 0.05)
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == "2-4"
    events = await events_of(run_id)
    assert_well_formed(events)
    (started,) = of_type(events, EventType.SLEEP_STARTED)
    (completed,) = of_type(events, EventType.SLEEP_COMPLETED)
    assert started.data["sleep_id"] == completed.data["sleep_id"] == "sleep#1"
    assert started.data["wake_at"] == pytest.approx(started.timestamp.timestamp() + 0.05, abs=0.03)
    assert completed.timestamp.timestamp() >= started.data["wake_at"] - 0.002
    assert started.seq < completed.seq


async def test_sleep_past_the_horizon_suspends_and_frees_the_run(pw: Storage) -> None:
    pyworkflow.configure(horizon_seconds=0.1)
    tok = token()
    began = time.monotonic()
    run_id = await pyworkflow.start(sleeper, tok, 1.0)
    run = await wait_status(run_id, RunStatus.SUSPENDED)
    assert run.wake_at is not None
    record = await pw.get_run(run_id)
    assert record is not None
    assert record.lease_owner is None
    assert record.lease_expires_at is None
    assert record.wake_at == pytest.approx(run.wake_at.timestamp())
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == "2-4"
    assert time.monotonic() - began >= 0.95
    assert CALLS[tok, "double"] == 2, "replay after the suspension does not rerun a step"
    events = await events_of(run_id)
    assert_well_formed(events)
    assert types(events).count(EventType.SLEEP_COMPLETED) == 1


async def test_sleep_in_a_step_is_asyncio_sleep(pw: Storage) -> None:
    tok = token()
    run_id = await pyworkflow.start(step_sleeps, tok)
    elapsed = float(await pyworkflow.get_workflow_result(run_id, timeout=10))
    assert elapsed >= 0.029
    events = await events_of(run_id)
    assert of_type(events, EventType.SLEEP_STARTED) == []
    assert of_type(events, EventType.SLEEP_COMPLETED) == []


async def test_now_uuid_random_are_recorded_and_replayed(pw: Storage) -> None:
    pyworkflow.configure(horizon_seconds=0.1)
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


async def test_except_exception_does_not_break_suspension(pw: Storage) -> None:
    pyworkflow.configure(horizon_seconds=0.1)
    tok = token()
    run_id = await pyworkflow.start(swallower, tok, 0.4)
    await wait_status(run_id, RunStatus.SUSPENDED)
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == "slept, then 8"
    events = await events_of(run_id)
    assert types(events).count(EventType.SLEEP_STARTED) == 1
    assert types(events).count(EventType.SLEEP_COMPLETED) == 1


# --- resume and cancel ---------------------------------------------------------------------------


async def test_resume_a_failed_run_retries_the_step_with_a_fresh_budget(pw: Storage) -> None:
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


async def test_resume_of_an_unregistered_workflow_raises(pw: Storage) -> None:
    await pyworkflow.list_workflow_runs()  # builds the runtime and opens the storage
    record, _ = await pw.create_run(NewRun(
        run_id=f"run_ghost_{token()}", workflow_name="tw_ghost_not_registered",
        args={"args": [], "kwargs": {}}, started_payload={"v": 1}, now=time.time()))
    before = await pw.load_events(record.run_id)
    with pytest.raises(WorkflowNotFoundError) as info:
        await pyworkflow.resume(record.run_id)
    assert "tw_ghost_not_registered" in str(info.value)
    assert await pw.load_events(record.run_id) == before


@pytest.mark.parametrize("seconds", [60.0, 2.0], ids=["suspended", "in-process"])
async def test_cancel_a_sleeping_run(pw: Storage, seconds: float) -> None:
    tok = token()
    run_id = await pyworkflow.start(long_sleep, tok, seconds)
    if seconds > 5:
        await wait_status(run_id, RunStatus.SUSPENDED)
    else:
        deadline = time.monotonic() + 3
        while EventType.SLEEP_STARTED not in types(await events_of(run_id)):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
    began = time.monotonic()
    assert await pyworkflow.cancel_workflow(run_id, reason="customer left") is True
    with pytest.raises(WorkflowCancelledError) as info:
        await pyworkflow.get_workflow_result(run_id, timeout=10)
    assert time.monotonic() - began < 1.9, "cancellation does not wait for the timer"
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


async def test_cancel_of_a_completed_run_returns_false(pw: Storage) -> None:
    tok = token()
    run_id = await pyworkflow.start(two_steps, tok, 1)
    await pyworkflow.get_workflow_result(run_id, timeout=10)
    events = await events_of(run_id)
    assert await pyworkflow.cancel_workflow(run_id) is False
    assert (await pyworkflow.get_workflow_run(run_id)).status is RunStatus.COMPLETED
    assert await events_of(run_id) == events


async def test_resume_logs_the_fresh_attempt(pw: Storage) -> None:
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
