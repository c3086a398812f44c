"""Stream workflows on the engine (issue 20): the documented examples, on the virtual clock.

What a user checks: a planner and its worker exchange signals until both terminate and the
parent gets their results; a step that suspends for a human is resumed by a later signal, and
the parent waits meanwhile holding no worker; a payload that fails its schema is refused at
``emit``; two stream runs at once never see each other's signals.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

import pyworkflow
from pyworkflow import (
    EventType,
    InputError,
    InvalidSignalPayloadError,
    NotInStreamStepError,
    RunStatus,
    StreamDefinitionError,
    StreamRunNotFoundError,
    WorkflowFailedError,
    emit,
    schedule_signal,
    stream_step,
    stream_workflow,
)
from pyworkflow._streams import driver as stream_driver
from pyworkflow.storage.streams import NewSignal, StreamRunRecord, StreamStore
from pyworkflow.streams import get_current_signal, set_result
from pyworkflow.testing import WorkflowEnvironment

from .stream_definitions import (
    SEEN,
    run_alarms,
    run_orders,
    run_planning,
    run_reviews,
    supervise,
)
from .waits import restart


async def test_planner_and_worker_exchange_signals_until_both_terminate(
    env: WorkflowEnvironment,
) -> None:
    result = await env.run(run_planning, "plan-1")
    assert result == {
        "status": "completed",
        "states": {"ts_planner": "terminated", "ts_worker": "terminated"},
        "results": {
            "ts_planner": {"done": ["a", "b", "c"]},
            "ts_worker": {"worked": ["a", "b", "c"]},
        },
    }
    worker = [(t, p["task_id"]) for s, t, p, _ in SEEN["plan-1"] if s == "ts_worker"]
    assert worker == [("task.assigned", "a"), ("task.assigned", "b"), ("task.assigned", "c")]
    seqs = [seq for _, _, _, seq in SEEN["plan-1"]]
    assert sorted(seqs) == list(range(1, 8))  # 1 request, 3 assignments, 3 done: each once


async def settled_stream(env: WorkflowEnvironment, stream_run_id: str) -> StreamRunRecord:
    """The stream run once it exists and its driver has nothing left to do for now."""
    store = env.storage
    assert isinstance(store, StreamStore)
    for _ in range(200):
        await env.advance(0)
        record = await store.get_stream_run(stream_run_id)
        if record is not None:
            driver = await env.get_run(record.run_id)
            if driver.status is RunStatus.SUSPENDED:
                return record
        await asyncio.sleep(0.005)
    raise AssertionError(f"stream run {stream_run_id} never settled")


async def statuses(env: WorkflowEnvironment, stream_run_id: str) -> dict[str, str]:
    store = env.storage
    assert isinstance(store, StreamStore)
    return {s.step_name: s.status.value for s in await store.list_subscriptions(stream_run_id)}


async def test_a_suspended_step_is_resumed_by_a_later_signal_while_the_parent_waits(
    env: WorkflowEnvironment,
) -> None:
    parent = await env.start(run_reviews, "rev-1")
    await settled_stream(env, "rev-1")
    await emit("ts_reviews", "review.submitted", {"n": 1}, stream_run_id="rev-1")
    await emit("ts_reviews", "review.submitted", {"n": 2}, stream_run_id="rev-1")
    record = await settled_stream(env, "rev-1")
    assert record.status == "suspended"
    assert await statuses(env, "rev-1") == {"ts_review_loop": "suspended"}
    # The parent waits on the stream run as on a child: suspended, holding no worker.
    assert (await env.get_run(parent)).status is RunStatus.SUSPENDED
    # While suspended, a signal that is not a resume signal is passed over, never delivered.
    await emit("ts_reviews", "review.submitted", {"n": 3}, stream_run_id="rev-1")
    await settled_stream(env, "rev-1")
    await emit("ts_reviews", "human.approved", {"by": "ana"}, stream_run_id="rev-1")
    assert await env.result(parent) == {"approved": "ana", "submissions": 2}
    assert [(t, seq) for _, t, _, seq in SEEN["rev-1"]] == [
        ("review.submitted", 1),
        ("review.submitted", 2),
        ("human.approved", 4),
    ]


async def test_a_payload_failing_its_schema_is_refused_at_emit(env: WorkflowEnvironment) -> None:
    parent = await env.start(run_orders, "ord-1")
    await settled_stream(env, "ord-1")
    with pytest.raises(InvalidSignalPayloadError, match="quantity") as refused:
        await emit("ts_orders", "order.placed", {"order_id": "o1", "quantity": "many"},
                   stream_run_id="ord-1")  # fmt: skip
    assert (refused.value.signal_type, refused.value.field) == ("order.placed", "quantity")
    store = env.storage
    assert isinstance(store, StreamStore)
    assert await store.list_signals("ord-1") == []  # nothing written
    await emit(
        "ts_orders", "order.placed", {"order_id": "o2", "quantity": 2}, stream_run_id="ord-1"
    )
    await emit("ts_orders", "orders.closed", None, stream_run_id="ord-1")
    assert await env.result(parent) == ["o2"]


async def test_a_payload_stored_unchecked_is_refused_at_delivery(env: WorkflowEnvironment) -> None:
    """A signal written by a process without the schema (here: straight to storage)."""
    parent = await env.start(run_orders, "ord-2")
    await settled_stream(env, "ord-2")
    store = env.storage
    assert isinstance(store, StreamStore)
    bad = NewSignal("ord-2", "ts_orders", "order.placed", {"order_id": "o1"}, "x1", 0.0)
    await store.emit_signal(bad)
    await emit(
        "ts_orders", "order.placed", {"order_id": "o3", "quantity": 1}, stream_run_id="ord-2"
    )
    await emit("ts_orders", "orders.closed", None, stream_run_id="ord-2")
    assert await env.result(parent) == ["o3"]
    assert [p.get("order_id") for s, _, p, _ in SEEN["ord-2"] if p] == ["o3"]
    [taker] = await store.list_subscriptions("ord-2")
    assert taker.refused == 1  # recorded as refused, not run
    refused = [d.seq for d in await store.list_deliveries("ord-2") if d.refused]
    assert refused == [1]


async def test_concurrent_stream_runs_never_see_each_others_signals(
    env: WorkflowEnvironment,
) -> None:
    parents = {sid: await env.start(run_orders, sid) for sid in ("iso-a", "iso-b")}
    for sid in parents:
        await settled_stream(env, sid)
    for n in range(3):
        for sid in parents:
            await emit("ts_orders", "order.placed", {"order_id": f"{sid}-{n}", "quantity": n},
                       stream_run_id=sid)  # fmt: skip
    for sid in parents:
        await emit("ts_orders", "orders.closed", None, stream_run_id=sid)
    for sid, parent in parents.items():
        assert await env.result(parent) == [f"{sid}-{n}" for n in range(3)]
        assert [seq for _, _, _, seq in SEEN[sid]] == [1, 2, 3, 4]


async def test_a_stream_run_goes_on_from_storage_after_a_restart(env: WorkflowEnvironment) -> None:
    parent = await env.start(run_reviews, "rev-2")
    await settled_stream(env, "rev-2")
    await emit("ts_reviews", "review.submitted", {"n": 1}, stream_run_id="rev-2")
    await settled_stream(env, "rev-2")
    await restart(env)  # a new worker: the driver and the parent replay from their logs
    await emit("ts_reviews", "review.submitted", {"n": 2}, stream_run_id="rev-2")
    assert (await settled_stream(env, "rev-2")).status == "suspended"
    await restart(env)
    await emit("ts_reviews", "human.approved", {"by": "bo"}, stream_run_id="rev-2")
    assert await env.result(parent) == {"approved": "bo", "submissions": 2}
    assert [seq for _, _, _, seq in SEEN["rev-2"]] == [1, 2, 3]  # each delivered once


async def test_on_signal_gates_a_scheduled_signal_and_a_failing_step_ends_failed(
    env: WorkflowEnvironment,
) -> None:
    started = env.now()
    parent = await env.start(run_alarms, "alarm-1")
    await settled_stream(env, "alarm-1")
    # Low priority: acknowledged by on_signal, the step is not run for it.
    await emit("ts_alarms", "alarm.rang", {"priority": "low"}, stream_run_id="alarm-1")
    await settled_stream(env, "alarm-1")
    assert SEEN["alarm-1"] == []
    await env.advance("1h")  # the scheduled signal comes due: a durable timer, then an emit
    await settled_stream(env, "alarm-1")
    assert [(s, seq) for s, _, _, seq in SEEN["alarm-1"]] == [("ts_sleeper", 2)]
    assert env.now() - started >= timedelta(hours=1)
    await emit("ts_alarms", "stream.kill", {}, stream_run_id="alarm-1")
    result = await env.result(parent)
    assert result["states"] == {"ts_fragile": "failed", "ts_sleeper": "cancelled"}
    assert result["results"] == {"ts_sleeper": {"woke_at_seq": 2}}
    store = env.storage
    assert isinstance(store, StreamStore)
    details = {s.step_name: s.detail for s in await store.list_subscriptions("alarm-1")}
    assert details == {
        "ts_fragile": "RuntimeError: cannot handle alarm.rang",
        "ts_sleeper": "killed by signal",
    }


async def test_stream_primitives_outside_a_stream_step_are_typed_errors(
    env: WorkflowEnvironment,
) -> None:
    with pytest.raises(NotInStreamStepError, match=r"set_result\(\)"):
        await set_result(1)
    with pytest.raises(NotInStreamStepError, match=r"get_current_signal\(\)"):
        await get_current_signal()
    with pytest.raises(InputError, match="stream_run_id"):
        await emit("ts_orders", "orders.closed")
    with pytest.raises(StreamRunNotFoundError, match="nowhere"):
        await emit("ts_orders", "orders.closed", stream_run_id="nowhere")
    with pytest.raises(InputError, match="delay_seconds"):
        await schedule_signal("ts_alarms", "alarm.rang", delay_seconds=-1, stream_run_id="x")


def test_bad_stream_definitions_are_refused_at_decoration() -> None:
    with pytest.raises(StreamDefinitionError, match="async def"):
        stream_step(stream="ts_x", signals=["a"])(lambda: None)  # type: ignore[arg-type]

    async def body() -> None: ...

    with pytest.raises(StreamDefinitionError, match="at least one signal type"):
        stream_step(stream="ts_x", signals=[])(body)
    with pytest.raises(StreamDefinitionError, match="not the string"):
        stream_step(stream="ts_x", signals="a.b")(body)
    with pytest.raises(StreamDefinitionError, match="pydantic model"):
        stream_step(stream="ts_x", signals={"a": dict})(body)
    with pytest.raises(StreamDefinitionError, match="two stream workflows"):
        stream_workflow(name="ts_planning")(body)


async def test_a_second_driver_for_a_taken_stream_run_id_fails_naming_it(
    env: WorkflowEnvironment,
) -> None:
    first = await env.start(run_reviews, "taken-1")
    await settled_stream(env, "taken-1")
    second = await env.start(run_reviews, "taken-1")
    with pytest.raises(WorkflowFailedError, match="taken-1"):
        await env.result(second)
    assert (await env.get_run(first)).status is RunStatus.SUSPENDED


async def test_a_long_stream_run_continues_its_driver_as_new_and_loses_nothing(
    env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream_driver, "BATCHES_PER_RUN", 2)
    parent = await env.start(run_reviews, "rev-long")
    await settled_stream(env, "rev-long")
    for n in range(1, 6):  # each one a batch of its own: the driver continues twice or more
        await emit("ts_reviews", "review.submitted", {"n": n}, stream_run_id="rev-long")
        await settled_stream(env, "rev-long")
    await emit("ts_reviews", "human.approved", {"by": "cy"}, stream_run_id="rev-long")
    assert await env.result(parent) == {"approved": "cy", "submissions": 2}
    assert [seq for _, _, _, seq in SEEN["rev-long"]] == [1, 2, 6]  # 3-5 passed over
    store = env.storage
    assert isinstance(store, StreamStore)
    record = await store.get_stream_run("rev-long")
    assert record is not None
    chain = await pyworkflow.get_workflow_chain(record.run_id)
    assert len(chain) >= 3
    assert [s.seq for s in await store.list_deliveries("rev-long")] == [None, 1, 2, 6]


async def test_emits_from_a_parents_own_code_are_recorded_and_not_repeated(
    env: WorkflowEnvironment,
) -> None:
    parent = await env.start(supervise, "rev-self")
    assert await env.result(parent) == {"approved": "boss", "submissions": 2}
    store = env.storage
    assert isinstance(store, StreamStore)
    signals = await store.list_signals("rev-self")
    assert [(s.seq, s.signal_type, s.source_run_id) for s in signals] == [
        (1, "review.submitted", parent),
        (2, "review.submitted", parent),
        (3, "human.approved", parent),
    ]
    completed = [
        e.data.get("step_id", "")
        for e in await env.events(parent)
        if e.type is EventType.STEP_COMPLETED
    ]
    assert [s for s in completed if s.startswith("pyworkflow.stream.emit")] == [
        "pyworkflow.stream.emit#1",
        "pyworkflow.stream.emit#2",
        "pyworkflow.stream.emit#3",
    ]
