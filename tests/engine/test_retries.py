"""Step failures: retries and their delays, timeouts, FatalError, RetryableError, failed runs.

On the virtual clock (tests/engine/conftest.py): retry delays, exponential ones included, are
checked exactly and take no time. A step's timeout is real time (the step runs for real).
"""

from __future__ import annotations

import time

import pytest

import pyworkflow
from pyworkflow import (
    EventType,
    FatalError,
    RetryableError,
    RunStatus,
    WorkflowEvent,
    sleep,
    step,
    workflow,
)
from pyworkflow.testing import WorkflowEnvironment

from .recording import CALLS, call_always_fails, double, token
from .run_log import assert_well_formed, events_of, failure_of, of_type, run_to_failure, types


class InventoryError(Exception):
    """A user exception defined in workflow code's module: rebuilt by import path."""


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


async def test_max_retries_3_means_4_attempts(env: WorkflowEnvironment) -> None:
    tok = token()
    err = await run_to_failure(call_always_fails, tok)
    assert CALLS[tok, "always_fails"] == 4
    assert err.error_type == "ValueError"
    assert err.error_message == f"attempt 4 of {tok} failed"
    events = await events_of(err.run_id)
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
            assert event.timestamp.timestamp() >= retry_at - 1e-6
            retry_at = None


@pytest.mark.parametrize(
    ("which", "expected"),
    [("fixed", [0.05, 0.05]), ("list", [0.02, 0.08, 0.08]), ("exponential", [1.0, 2.0])],
)
async def test_retry_delay_spacing(
    env: WorkflowEnvironment, which: str, expected: list[float]
) -> None:
    tok = token()
    run_id = await pyworkflow.start(retry_delays, tok, which)
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == "ok"
    events = await events_of(run_id)
    delays = _delays(events)
    assert len(delays) == len(expected)
    for got, want in zip(delays, expected, strict=True):
        assert got == pytest.approx(want, abs=1e-6)
    _assert_waited(events)


async def test_fatal_error_stops_at_once(env: WorkflowEnvironment) -> None:
    tok = token()
    err = await run_to_failure(call_fatal, tok)
    assert CALLS[tok, "fatal"] == 1
    assert err.error_type == "pyworkflow.exceptions.FatalError"
    assert tok in err.error_message
    events = await events_of(err.run_id)
    assert of_type(events, EventType.STEP_RETRYING) == []
    assert len(of_type(events, EventType.STEP_FAILED)) == 1


async def test_retryable_error_retry_after_overrides_the_delay(env: WorkflowEnvironment) -> None:
    tok = token()
    began = env.clock.now()
    run_id = await pyworkflow.start(call_retry_after, tok)
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == "through"
    took = env.clock.now() - began
    assert took < 1.0, "retry_after='50ms' must override retry_delay='1h'"
    events = await events_of(run_id)
    (retrying,) = of_type(events, EventType.STEP_RETRYING)
    assert retrying.data["error"]["type"] == "pyworkflow.exceptions.RetryableError"
    assert _delays(events) == [pytest.approx(0.05, abs=1e-6)]
    _assert_waited(events)


async def test_timeout_fails_the_attempt_and_retries(env: WorkflowEnvironment) -> None:
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


async def test_exhausted_retries_raise_the_original_class_in_the_workflow(
    env: WorkflowEnvironment,
) -> None:
    tok = token()
    result = await pyworkflow.run(catch_inventory, tok)
    assert result == "caught InventoryError: out of stock: sku-1; then 42"
    assert CALLS[tok, "stock"] == 2


async def test_uncaught_step_failure_fails_the_run_with_type_message_traceback(
    env: WorkflowEnvironment,
) -> None:
    tok = token()
    run_id = await pyworkflow.start(uncaught_inventory, tok)
    err = await failure_of(run_id)
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
