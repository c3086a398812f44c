"""The storage contract of a stream run's end: cancelled or failed with its driver, then closed.

Each test runs against every backend (conftest.py). ``end_stream_run`` is what the driving run
calls when it is cancelled or fails: the stream run's status becomes ``cancelled`` or
``failed``, every subscription that has not ended becomes ``cancelled`` (its reason as its
detail), and from then on an emit is refused with ``StreamRunEndedError``, writing nothing; a
completed stream run refuses emits too. Only the run that drives the stream run can end it, and
only once.
"""

from __future__ import annotations

import pytest
from storage_calls import NESTED, T0, hook_of, new_hook, token_hash, waiting_on

from pyworkflow.events import HookStatus, StreamStepStatus
from pyworkflow.exceptions import InputError, StreamRunEndedError
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.streams import (
    NewSignal,
    StreamStore,
    SubscriptionOutcome,
    SubscriptionSpec,
)

WORKER = SubscriptionSpec("worker", "agent", ("task.assigned",))
PLANNER = SubscriptionSpec("planner", "agent", ("task.done",))


async def opened(storage: Storage, stream_run_id: str = "s1", run_id: str = "r1") -> StreamStore:
    assert isinstance(storage, StreamStore)
    await storage.open_stream_run(
        stream_run_id, stream="agent", run_id=run_id, subscriptions=[WORKER, PLANNER], now=T0
    )
    return storage


def signal(signal_type: str, *, key: str | None = None, run: str = "s1") -> NewSignal:
    return NewSignal(run, "agent", signal_type, {"t": signal_type}, "sig", T0 + 1, "r0", key)


async def test_a_cancelled_stream_run_ends_its_open_subscriptions(storage: Storage) -> None:
    store = await opened(storage)
    await store.take_stream_batch("s1", batch=1, outcomes=[], now=T0)
    worker_done = SubscriptionOutcome(
        "worker", StreamStepStatus.TERMINATED, result=NESTED, set_result=True
    )
    waiting = SubscriptionOutcome("planner", StreamStepStatus.WAITING)
    await store.take_stream_batch("s1", batch=2, outcomes=[worker_done, waiting], now=T0)
    assert await store.end_stream_run(
        "s1", run_id="r1", status="cancelled", detail="parent cancelled", now=T0 + 5
    )
    run = await store.get_stream_run("s1")
    assert run is not None
    assert (run.status, run.updated_at) == ("cancelled", T0 + 5)
    subs = {s.step_name: s for s in await store.list_subscriptions("s1")}
    assert (subs["planner"].status, subs["planner"].detail) == (
        StreamStepStatus.CANCELLED,
        "parent cancelled",
    )
    # A step that had ended keeps its own end and its result.
    assert (subs["worker"].status, subs["worker"].result) == (StreamStepStatus.TERMINATED, NESTED)


async def test_a_failed_driver_fails_the_stream_run(storage: Storage) -> None:
    store = await opened(storage)  # never taken: both subscriptions still pending
    assert await store.end_stream_run(
        "s1", run_id="r1", status="failed", detail="ValueError: boom", now=T0
    )
    run = await store.get_stream_run("s1")
    assert run is not None
    assert run.status == "failed"
    assert [(s.status, s.detail) for s in await store.list_subscriptions("s1")] == [
        (StreamStepStatus.CANCELLED, "ValueError: boom")
    ] * 2


async def test_an_ended_stream_run_refuses_emits_and_writes_nothing(storage: Storage) -> None:
    store = await opened(storage)
    kept = await store.emit_signal(signal("task.assigned", key="step#1:emit#1"))
    await store.end_stream_run("s1", run_id="r1", status="cancelled", detail="stop", now=T0)
    with pytest.raises(StreamRunEndedError, match="cancelled") as refused:
        await store.emit_signal(signal("task.assigned"))
    assert (refused.value.stream_run_id, refused.value.status) == ("s1", "cancelled")
    with pytest.raises(StreamRunEndedError):
        await store.emit_signal(signal("task.done", key="step#2:emit#1"))
    # An emit stored before the end, retried with its key, gets its record back.
    assert await store.emit_signal(signal("task.assigned", key="step#1:emit#1")) == kept
    assert [s.seq for s in await store.list_signals("s1")] == [1]
    run = await store.get_stream_run("s1")
    assert run is not None
    assert run.last_seq == 1


async def test_a_completed_stream_run_refuses_emits(storage: Storage) -> None:
    store = await opened(storage)
    await store.take_stream_batch("s1", batch=1, outcomes=[], now=T0)
    ended = [
        SubscriptionOutcome("planner", StreamStepStatus.TERMINATED),
        SubscriptionOutcome("worker", StreamStepStatus.TERMINATED),
    ]
    assert (await store.take_stream_batch("s1", batch=2, outcomes=ended, now=T0)).status == (
        "completed"
    )
    with pytest.raises(StreamRunEndedError, match="completed"):
        await store.emit_signal(signal("task.done"))
    assert await store.list_signals("s1") == []
    # A completed stream run keeps its end: there is nothing left to cancel.
    assert not await store.end_stream_run(
        "s1", run_id="r1", status="cancelled", detail="late", now=T0
    )
    run = await store.get_stream_run("s1")
    assert run is not None
    assert run.status == "completed"


async def test_only_its_driver_ends_a_stream_run_and_only_once(storage: Storage) -> None:
    store = await opened(storage)
    assert not await store.end_stream_run(
        "s1", run_id="r2", status="failed", detail="not mine", now=T0
    )
    assert not await store.end_stream_run(
        "nowhere", run_id="r1", status="failed", detail="never opened", now=T0
    )
    run = await store.get_stream_run("s1")
    assert run is not None
    assert run.status == "running"
    assert await store.end_stream_run("s1", run_id="r1", status="cancelled", detail="a", now=T0)
    assert not await store.end_stream_run(
        "s1", run_id="r1", status="failed", detail="b", now=T0 + 1
    )
    run = await store.get_stream_run("s1")
    assert run is not None
    assert (run.status, run.updated_at) == ("cancelled", T0)
    assert {s.detail for s in await store.list_subscriptions("s1")} == {"a"}


async def test_an_end_with_another_status_is_refused(storage: Storage) -> None:
    store = await opened(storage)
    with pytest.raises(InputError, match="'completed'"):
        await store.end_stream_run("s1", run_id="r1", status="completed", detail="x", now=T0)
    run = await store.get_stream_run("s1")
    assert run is not None
    assert run.status == "running"
    assert {s.status for s in await store.list_subscriptions("s1")} == {StreamStepStatus.PENDING}


async def test_an_armed_waiter_is_not_woken_after_the_end(storage: Storage) -> None:
    await waiting_on(storage, "r1", new_hook("w1"))
    store = await opened(storage)
    assert not await store.arm_stream_wait("s1", token_hash=token_hash("w1"), seen_seq=0, now=T0)
    await store.end_stream_run("s1", run_id="r1", status="cancelled", detail="stop", now=T0)
    with pytest.raises(StreamRunEndedError):
        await store.emit_signal(signal("task.assigned"))
    assert (await hook_of(storage, "w1")).status is HookStatus.WAITING


async def test_ending_one_stream_run_leaves_the_others(storage: Storage) -> None:
    store = await opened(storage, "s1", "r1")
    await opened(storage, "s2", "r2")
    await store.end_stream_run("s1", run_id="r1", status="cancelled", detail="stop", now=T0)
    assert (await store.emit_signal(signal("task.assigned", run="s2"))).seq == 1
    other = await store.get_stream_run("s2")
    assert other is not None
    assert other.status == "running"
    assert {s.status for s in await store.list_subscriptions("s2")} == {StreamStepStatus.PENDING}
