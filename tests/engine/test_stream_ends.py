"""How a stream run ends when its parent or its driving run is cancelled, or its driver fails.

What a Temporal or DBOS user expects, checked on the virtual clock: cancelling the parent
cancels the stream run with it (a child with the default ``parent_close_policy``); cancelling
the driving run itself (``pyworkflow runs cancel``) cancels the stream run and the parent sees
``ChildWorkflowCancelledError``; a stream workflow whose body raises fails the stream run. In
each case the stream run's record reads ``cancelled`` or ``failed``, its open subscriptions
end ``cancelled`` with the reason, and an ``emit`` into it is refused with
``StreamRunEndedError`` and stores nothing, as it is once a stream run has completed.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest

import pyworkflow
from pyworkflow import (
    EventType,
    RunStatus,
    StreamRunEndedError,
    WorkflowCancelledError,
    WorkflowFailedError,
    emit,
    stream_step,
    stream_workflow,
    workflow,
)
from pyworkflow._streams.driver import DRIVER_NAME as DRIVER
from pyworkflow.storage.streams import StreamStore
from pyworkflow.streams import get_current_signal, run_stream_workflow, set_result, terminate
from pyworkflow.testing import WorkflowEnvironment
from workers import add_unleased_run

from .run_log import wait_status
from .stream_definitions import run_alarms, run_planning, run_reviews
from .test_streams import settled_stream

# --- a stream workflow whose body fails ----------------------------------------------------------


@stream_workflow(name="te_broken")
async def broken() -> None:
    await emit("te_broken", "plan.requested", {"tasks": []})
    raise ValueError("no plan to follow")


@stream_step(stream="te_broken", signals=["plan.requested"])
async def te_listener() -> None:
    await get_current_signal()


@workflow(name="te_run_broken")
async def run_broken(stream_run_id: str) -> str:
    return (await run_stream_workflow(broken, stream_run_id=stream_run_id)).status


@workflow(name="te_late_emitter")
async def late_emitter(stream_run_id: str) -> list[str]:
    """Workflow code emitting into a stream run that has ended: the typed error, at once."""
    try:
        await emit("ts_reviews", "review.submitted", {"n": 9}, stream_run_id=stream_run_id)
    except StreamRunEndedError as refused:
        return [type(refused).__name__, refused.stream_run_id, refused.status]
    return ["stored"]


# --- a stream step that holds its execution until the test lets it go ---------------------------

HELD: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
RAN: dict[str, int] = defaultdict(int)


@stream_workflow(name="te_held")
async def held() -> None:
    """Jobs come from outside."""


@stream_step(stream="te_held", signals=["job"])
async def te_holder() -> None:
    signal = await get_current_signal()
    if signal is None:
        return
    RAN[signal.stream_run_id] += 1
    await HELD[signal.stream_run_id].wait()
    await set_result("done")
    await terminate()


@workflow(name="te_run_held")
async def run_held(stream_run_id: str) -> str:
    return (await run_stream_workflow(held, stream_run_id=stream_run_id)).status


def streams_of(env: WorkflowEnvironment) -> StreamStore:
    store = env.storage
    assert isinstance(store, StreamStore)
    return store


async def ended(env: WorkflowEnvironment, stream_run_id: str) -> dict[str, tuple[str, str | None]]:
    """Each subscription's final (status, detail)."""
    return {
        s.step_name: (s.status.value, s.detail)
        for s in await streams_of(env).list_subscriptions(stream_run_id)
    }


async def assert_emit_refused(env: WorkflowEnvironment, stream_run_id: str, status: str) -> None:
    store = streams_of(env)
    before = await store.list_signals(stream_run_id)
    with pytest.raises(StreamRunEndedError, match=status) as refused:
        await emit("ts_reviews", "review.submitted", {"n": 9}, stream_run_id=stream_run_id)
    assert (refused.value.stream_run_id, refused.value.status) == (stream_run_id, status)
    assert await store.list_signals(stream_run_id) == before  # nothing written


async def test_cancelling_the_parent_cancels_its_stream_run(env: WorkflowEnvironment) -> None:
    parent = await env.start(run_reviews, "end-parent")
    await settled_stream(env, "end-parent")
    await emit("ts_reviews", "review.submitted", {"n": 1}, stream_run_id="end-parent")
    record = await settled_stream(env, "end-parent")
    assert await pyworkflow.cancel_workflow(parent, reason="job withdrawn") is True
    with pytest.raises(WorkflowCancelledError):
        await env.result(parent)
    # The driving run is a child with the default policy: it goes with its parent.
    await wait_status(record.run_id, RunStatus.CANCELLED, within=5)
    stream = await streams_of(env).get_stream_run("end-parent")
    assert stream is not None
    assert stream.status == "cancelled"
    [(status, detail)] = (await ended(env, "end-parent")).values()
    assert status == "cancelled"
    assert detail is not None
    assert parent in detail  # the reason names the parent that was cancelled
    await assert_emit_refused(env, "end-parent", "cancelled")


async def test_cancelling_the_driving_run_cancels_the_stream_run_and_its_parent_sees_it(
    env: WorkflowEnvironment,
) -> None:
    parent = await env.start(run_reviews, "end-driver")
    record = await settled_stream(env, "end-driver")
    assert await pyworkflow.cancel_workflow(record.run_id, reason="operator stop") is True
    with pytest.raises(WorkflowFailedError) as failed:
        await env.result(parent)
    assert failed.value.error_type.endswith("ChildWorkflowCancelledError")
    assert (await pyworkflow.get_workflow_run(record.run_id)).status is RunStatus.CANCELLED
    stream = await streams_of(env).get_stream_run("end-driver")
    assert stream is not None
    assert stream.status == "cancelled"
    assert await ended(env, "end-driver") == {
        "ts_review_loop": ("cancelled", "stream run cancelled: operator stop")
    }
    await assert_emit_refused(env, "end-driver", "cancelled")


async def test_a_failing_stream_workflow_body_fails_its_stream_run(
    env: WorkflowEnvironment,
) -> None:
    parent = await env.start(run_broken, "end-broken")
    with pytest.raises(WorkflowFailedError, match="no plan to follow"):
        await env.result(parent)
    stream = await streams_of(env).get_stream_run("end-broken")
    assert stream is not None
    assert stream.status == "failed"
    driver = await pyworkflow.get_workflow_run(stream.run_id)
    assert driver.status is RunStatus.FAILED
    assert await ended(env, "end-broken") == {
        "te_listener": ("cancelled", "stream run failed: ValueError: no plan to follow")
    }
    await assert_emit_refused(env, "end-broken", "failed")


async def test_a_completed_stream_run_refuses_emits_from_outside_and_from_workflow_code(
    env: WorkflowEnvironment,
) -> None:
    assert (await env.run(run_planning, "end-done"))["status"] == "completed"
    stream = await streams_of(env).get_stream_run("end-done")
    assert stream is not None
    assert stream.status == "completed"
    await assert_emit_refused(env, "end-done", "completed")
    began = env.now()
    late = await env.start(late_emitter, "end-done")
    assert await env.result(late) == ["StreamRunEndedError", "end-done", "completed"]
    assert env.now() == began  # refused at once: no retries of the recorded emit
    assert not [e for e in await env.events(late) if e.type is EventType.STEP_RETRYING]


async def test_a_second_driver_for_a_taken_id_leaves_the_first_stream_run_alone(
    env: WorkflowEnvironment,
) -> None:
    await env.start(run_reviews, "end-taken")
    first = await settled_stream(env, "end-taken")
    second = await env.start(run_reviews, "end-taken")
    with pytest.raises(WorkflowFailedError, match="end-taken"):
        await env.result(second)
    stream = await streams_of(env).get_stream_run("end-taken")
    assert stream is not None
    assert (stream.run_id, stream.status) == (first.run_id, "running")
    assert (await emit("ts_reviews", "review.submitted", {"n": 1}, stream_run_id="end-taken")) == 1


async def test_a_signal_scheduled_into_a_cancelled_stream_run_is_dropped_quietly(
    env: WorkflowEnvironment,
) -> None:
    parent = await env.start(run_alarms, "end-alarm")
    record = await settled_stream(env, "end-alarm")
    assert await pyworkflow.cancel_workflow(record.run_id, reason="no more alarms") is True
    with pytest.raises(WorkflowFailedError):
        await env.result(parent)
    timers = "pyworkflow.stream.scheduled_signal"
    [timer] = await pyworkflow.list_workflow_runs(workflow_name=timers)
    assert timer.status is not RunStatus.COMPLETED
    # The timer comes due an hour later, after its stream run ended: it completes, stores
    # nothing.
    await asyncio.wait_for(env.advance("1h"), 10)
    assert (await pyworkflow.get_workflow_run(timer.run_id)).status is RunStatus.COMPLETED
    assert await env.result(timer.run_id) is None
    assert await streams_of(env).list_signals("end-alarm") == []


async def test_a_cancel_waits_for_the_execution_in_flight_and_ends_the_stream_run(
    env: WorkflowEnvironment,
) -> None:
    parent = await env.start(run_held, "end-held")
    record = await settled_stream(env, "end-held")
    await emit("te_held", "job", {}, stream_run_id="end-held")
    for _ in range(200):  # until the execution runs (and holds)
        if RAN["end-held"]:
            break
        await asyncio.sleep(0.005)
    assert await pyworkflow.cancel_workflow(parent, reason="enough") is True
    HELD["end-held"].set()  # a running step is never interrupted: it finishes first
    with pytest.raises(WorkflowCancelledError):
        await env.result(parent)
    await wait_status(record.run_id, RunStatus.CANCELLED, within=5)
    assert RAN["end-held"] == 1  # it ran once, and its completion was logged
    stream = await streams_of(env).get_stream_run("end-held")
    assert stream is not None
    assert stream.status == "cancelled"
    # Its decision (terminate, with a result) came too late: the stream run had ended.
    [(status, detail)] = (await ended(env, "end-held")).values()
    assert status == "cancelled"
    assert detail is not None
    assert detail.startswith("stream run cancelled: ")
    [sub] = await streams_of(env).list_subscriptions("end-held")
    assert not sub.has_result
    await assert_emit_refused(env, "end-held", "cancelled")


async def test_a_continued_driver_cancelled_before_it_took_over_still_ends_the_stream_run(
    env: WorkflowEnvironment,
) -> None:
    """The successor of a driver that continued as new, cancelled before its first step.

    Stored here with the arguments ``continue_as_new`` gives it, and its cancel requested
    before any worker runs it (no await in between yields to the executor): its ``adopt``
    never ran, yet the stream run must end with it.
    """
    await env.start(run_reviews, "end-chain")
    first = await settled_stream(env, "end-chain")
    call = (first.last_batch, [], first.run_id)
    successor = await add_unleased_run(env.storage, DRIVER, "ts_reviews", "end-chain", *call)
    assert await env.storage.request_cancel(successor, now=env.clock.now(), reason="stop")
    with pytest.raises(WorkflowCancelledError):
        await env.result(successor)
    stream = await streams_of(env).get_stream_run("end-chain")
    assert stream is not None
    assert (stream.run_id, stream.status) == (successor, "cancelled")
    await assert_emit_refused(env, "end-chain", "cancelled")
