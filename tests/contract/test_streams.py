"""The storage contract of stream runs: signals numbered per stream run, batches taken once.

Each test runs against every backend (conftest.py). The rules are those of
``pyworkflow/storage/streams.py``: a signal's seq is unique and gap-free per stream run under
racing emitters; batch n is taken once whoever asks for it, so a signal reaches a subscription
at most once; the driver's waiting hook is delivered by the first signal after it was armed,
or at once when one came before, with the next batch taken in that transaction as its
payload; two stream runs never see each other's rows.
"""

from __future__ import annotations

import asyncio

import pytest
from storage_calls import NESTED, T0, hook_of, new_hook, run_of, token_hash, waiting_on

from pyworkflow.events import HookStatus, StreamStepStatus
from pyworkflow.exceptions import StorageError, StreamRunConflictError, StreamRunNotFoundError
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.streams import (
    DeliveryBatch,
    NewSignal,
    StreamStore,
    SubscriptionOutcome,
    SubscriptionSpec,
)

WORKER = SubscriptionSpec("worker", "agent", ("task.assigned",))
PLANNER = SubscriptionSpec("planner", "agent", ("task.done", "plan.requested"))


def streams(storage: Storage) -> StreamStore:
    assert isinstance(storage, StreamStore)
    return storage


async def opened(storage: Storage, stream_run_id: str = "s1", run_id: str = "r1") -> StreamStore:
    store = streams(storage)
    _, created = await store.open_stream_run(
        stream_run_id, stream="agent", run_id=run_id, subscriptions=[WORKER, PLANNER], now=T0
    )
    assert created
    return store


def signal(
    signal_type: str, payload: object = None, *, key: str | None = None, run: str = "s1"
) -> NewSignal:
    return NewSignal(run, "agent", signal_type, payload, f"sig-{signal_type}", T0 + 1, "r0", key)


def delivered(batch: DeliveryBatch) -> dict[str, int | None]:
    return {d.step_name: d.seq for d, _ in batch.deliveries}


def done(step: str, status: StreamStepStatus = StreamStepStatus.WAITING) -> SubscriptionOutcome:
    return SubscriptionOutcome(step, status)


async def test_open_creates_pending_subscriptions_and_is_idempotent(storage: Storage) -> None:
    store = await opened(storage)
    again, created = await store.open_stream_run(
        "s1", stream="agent", run_id="r1", subscriptions=[WORKER, PLANNER], now=T0 + 5
    )
    assert not created
    assert (again.stream, again.run_id, again.last_seq, again.status) == (
        "agent",
        "r1",
        0,
        "running",
    )
    subs = await store.list_subscriptions("s1")
    assert [(s.step_name, s.status, s.cursor, s.signal_types) for s in subs] == [
        ("planner", StreamStepStatus.PENDING, 0, ("task.done", "plan.requested")),
        ("worker", StreamStepStatus.PENDING, 0, ("task.assigned",)),
    ]


async def test_open_refuses_an_id_of_another_stream_or_driver(storage: Storage) -> None:
    store = await opened(storage)
    with pytest.raises(StreamRunConflictError, match="s1"):
        await store.open_stream_run("s1", stream="other", run_id="r1", subscriptions=[], now=T0)
    with pytest.raises(StreamRunConflictError, match="r1"):
        await store.open_stream_run("s1", stream="agent", run_id="r2", subscriptions=[], now=T0)
    assert [s.step_name for s in await store.list_subscriptions("s1")] == ["planner", "worker"]


async def test_signals_are_numbered_per_stream_run_and_read_back_whole(storage: Storage) -> None:
    store = await opened(storage, "s1")
    await store.open_stream_run("s2", stream="agent", run_id="r2", subscriptions=[], now=T0)
    first = await store.emit_signal(signal("task.assigned", NESTED))
    await store.emit_signal(signal("task.assigned", {"n": 1}, run="s2"))
    second = await store.emit_signal(signal("task.done", [1, 2]))
    assert (first.seq, second.seq) == (1, 2)
    assert await store.list_signals("s1") == [first, second]
    assert [s.payload for s in await store.list_signals("s2")] == [{"n": 1}]
    assert (await store.list_signals("s1"))[0].payload == NESTED
    assert await store.list_signals("s1", after_seq=1, limit=5) == [second]
    run = await store.get_stream_run("s1")
    assert run is not None
    assert run.last_seq == 2


async def test_emit_to_an_unknown_stream_run_is_refused(storage: Storage) -> None:
    store = streams(storage)
    with pytest.raises(StreamRunNotFoundError, match="nowhere"):
        await store.emit_signal(signal("task.assigned", run="nowhere"))
    with pytest.raises(StreamRunNotFoundError):
        await store.emit_signal(signal("task.assigned", key="k", run="nowhere"))
    assert await store.list_signals("nowhere") == []


async def test_a_signal_with_a_used_key_is_stored_once(storage: Storage) -> None:
    store = await opened(storage)
    first = await store.emit_signal(signal("task.assigned", {"a": 1}, key="step#1:emit#1"))
    again = await store.emit_signal(signal("task.assigned", {"a": 1}, key="step#1:emit#1"))
    other = await store.emit_signal(signal("task.assigned", {"a": 2}, key="step#1:emit#2"))
    assert again == first
    assert [s.seq for s in await store.list_signals("s1")] == [1, 2]
    assert other.seq == 2


async def test_racing_emitters_get_unique_gap_free_seqs(sharing: list[Storage]) -> None:
    store = await opened(sharing[0])
    emitted = await asyncio.gather(
        *(streams(sharing[i % 5]).emit_signal(signal("task.assigned", {"i": i})) for i in range(40))
    )
    assert sorted(s.seq for s in emitted) == list(range(1, 41))
    stored = await store.list_signals("s1", limit=100)
    assert sorted(s.payload["i"] for s in stored) == list(range(40))


async def test_the_first_batch_starts_every_subscription(storage: Storage) -> None:
    store = await opened(storage)
    await store.emit_signal(signal("task.assigned", {"task": 1}))
    batch = await store.take_stream_batch("s1", batch=1, outcomes=[], now=T0 + 2)
    assert delivered(batch) == {"planner": None, "worker": None}
    assert [s.status for s in batch.subscriptions] == [StreamStepStatus.RUNNING] * 2
    assert batch.status == "running"


async def test_each_subscription_gets_its_matching_signals_one_by_one_in_order(
    storage: Storage,
) -> None:
    store = await opened(storage)
    await store.take_stream_batch("s1", batch=1, outcomes=[], now=T0)
    for n in range(3):
        await store.emit_signal(signal("task.assigned", {"n": n}))
    await store.emit_signal(signal("task.done", {"n": 9}))
    started = [done("planner"), done("worker")]
    b2 = await store.take_stream_batch("s1", batch=2, outcomes=started, now=T0)
    assert delivered(b2) == {"planner": 4, "worker": 1}
    worker_signal = b2.deliveries[1][1]
    assert worker_signal is not None
    assert worker_signal.payload == {"n": 0}
    b3 = await store.take_stream_batch("s1", batch=3, outcomes=started, now=T0)
    assert delivered(b3) == {"worker": 2}
    b4 = await store.take_stream_batch("s1", batch=4, outcomes=[done("worker")], now=T0)
    assert delivered(b4) == {"worker": 3}
    b5 = await store.take_stream_batch("s1", batch=5, outcomes=[done("worker")], now=T0)
    assert delivered(b5) == {}
    seqs = [(d.batch, d.step_name, d.seq) for d in await store.list_deliveries("s1")]
    assert seqs == [
        (1, "planner", None),
        (1, "worker", None),
        (2, "planner", 4),
        (2, "worker", 1),
        (3, "worker", 2),
        (4, "worker", 3),
    ]


async def test_a_batch_taken_again_is_the_same_and_writes_nothing(storage: Storage) -> None:
    store = await opened(storage)
    first = await store.take_stream_batch("s1", batch=1, outcomes=[], now=T0)
    await store.emit_signal(signal("task.assigned"))
    again = await store.take_stream_batch("s1", batch=1, outcomes=[], now=T0 + 9)
    assert delivered(again) == delivered(first)
    assert (await store.list_subscriptions("s1")) == again.subscriptions
    with pytest.raises(StorageError, match="batch 3"):
        await store.take_stream_batch("s1", batch=3, outcomes=[], now=T0)


async def test_racing_takers_of_one_batch_deliver_each_signal_once(
    sharing: list[Storage],
) -> None:
    store = await opened(sharing[0])
    await store.take_stream_batch("s1", batch=1, outcomes=[], now=T0)
    for n in range(5):
        await store.emit_signal(signal("task.assigned", {"n": n}))
    outcomes = [done("planner"), done("worker")]
    batches = await asyncio.gather(
        *(streams(s).take_stream_batch("s1", batch=2, outcomes=outcomes, now=T0) for s in sharing)
    )
    assert all(delivered(b) == {"worker": 1} for b in batches)
    deliveries = await store.list_deliveries("s1")
    assert [(d.batch, d.seq) for d in deliveries if d.step_name == "worker"] == [(1, None), (2, 1)]


async def test_outcomes_store_results_checkpoints_and_terminal_states(storage: Storage) -> None:
    store = await opened(storage)
    await store.take_stream_batch("s1", batch=1, outcomes=[], now=T0)
    outcomes = [
        SubscriptionOutcome("worker", StreamStepStatus.TERMINATED, result=NESTED, set_result=True),
        SubscriptionOutcome(
            "planner",
            StreamStepStatus.SUSPENDED,
            detail="hitl:needs_review",
            resume_signals=("human.approved",),
            checkpoint={"submissions": 3},
            set_checkpoint=True,
        ),
    ]
    batch = await store.take_stream_batch("s1", batch=2, outcomes=outcomes, now=T0 + 3)
    planner, worker = batch.subscriptions
    assert (worker.status, worker.result, worker.has_result) == (
        StreamStepStatus.TERMINATED,
        NESTED,
        True,
    )
    assert (planner.status, planner.detail, planner.checkpoint, planner.resume_signals) == (
        StreamStepStatus.SUSPENDED,
        "hitl:needs_review",
        {"submissions": 3},
        ("human.approved",),
    )
    assert batch.status == "suspended"
    # While suspended, only its resume signals reach it; the others are passed over.
    await store.emit_signal(signal("task.done"))
    await store.emit_signal(NewSignal("s1", "agent", "human.approved", {"ok": True}, "h", T0))
    b3 = await store.take_stream_batch("s1", batch=3, outcomes=[], now=T0)
    assert delivered(b3) == {"planner": 2}
    b4 = await store.take_stream_batch(
        "s1", batch=4, outcomes=[done("planner", StreamStepStatus.CANCELLED)], now=T0
    )
    assert b4.status == "completed"
    run = await store.get_stream_run("s1")
    assert run is not None
    assert run.status == "completed"


async def test_a_refused_delivery_is_counted_and_marked(storage: Storage) -> None:
    store = await opened(storage)
    await store.take_stream_batch("s1", batch=1, outcomes=[], now=T0)
    await store.emit_signal(signal("task.assigned", {"bad": True}))
    await store.take_stream_batch("s1", batch=2, outcomes=[done("worker"), done("planner")], now=T0)
    refusal = SubscriptionOutcome("worker", StreamStepStatus.WAITING, refused=True)
    b3 = await store.take_stream_batch("s1", batch=3, outcomes=[refusal], now=T0)
    worker = next(s for s in b3.subscriptions if s.step_name == "worker")
    assert (worker.status, worker.refused, worker.deliveries) == (StreamStepStatus.WAITING, 1, 2)
    marks = [(d.batch, d.step_name, d.seq, d.refused) for d in await store.list_deliveries("s1")]
    assert (2, "worker", 1, True) in marks
    assert (1, "worker", None, False) in marks


async def test_a_continued_driver_adopts_the_stream_run_once(storage: Storage) -> None:
    store = await opened(storage)  # driven by r1
    assert await store.adopt_stream_run("s1", previous_run_id="r1", run_id="r2", now=T0)
    assert await store.adopt_stream_run("s1", previous_run_id="r1", run_id="r2", now=T0)  # again
    assert not await store.adopt_stream_run("s1", previous_run_id="r1", run_id="r3", now=T0)
    run = await store.get_stream_run("s1")
    assert run is not None
    assert run.run_id == "r2"
    with pytest.raises(StreamRunNotFoundError):
        await store.adopt_stream_run("nowhere", previous_run_id="r1", run_id="r2", now=T0)


async def idle(storage: Storage) -> StreamStore:
    """Stream run s1 driven by r1, its starts taken and run, r1 waiting on hook w1 (armed)."""
    await waiting_on(storage, "r1", new_hook("w1", expires_at=T0 + 60))
    store = await opened(storage)
    await store.take_stream_batch("s1", batch=1, outcomes=[], now=T0)
    empty = await store.take_stream_batch(
        "s1", batch=2, outcomes=[done("planner"), done("worker")], now=T0
    )
    assert delivered(empty) == {}
    return store


def handed_over(payload: dict[str, object]) -> tuple[object, ...]:
    """What a hook's payload hands the driver: batch, deliveries (step, seq, type), status."""
    deliveries = payload["deliveries"]
    assert isinstance(deliveries, list)
    return (
        payload["batch"],
        [(d["step"], d["signal"]["seq"], d["signal"]["signal_type"]) for d in deliveries],
        payload["status"],
        payload["driver"],
    )


async def test_an_emit_wakes_the_armed_waiter_once_with_the_batch_it_took(
    storage: Storage,
) -> None:
    store = await idle(storage)
    assert not await store.arm_stream_wait("s1", token_hash=token_hash("w1"), seen_seq=0, now=T0)
    assert (await hook_of(storage, "w1")).status is HookStatus.WAITING
    emitted = await store.emit_signal(signal("task.assigned", {"task_id": "t1"}))
    assert (emitted.woke, emitted.driver) == (True, "r1")
    hook = await hook_of(storage, "w1")
    assert hook.status is HookStatus.RECEIVED
    assert handed_over(hook.payload) == (3, [("worker", 1, "task.assigned")], "running", "r1")
    assert hook.payload["deliveries"][0]["signal"]["payload"] == {"task_id": "t1"}
    assert (await run_of(storage, "r1")).wake_at == T0 + 1
    # The batch is taken once: the driver asking for it again reads the same, writes nothing.
    again = await store.take_stream_batch("s1", batch=3, outcomes=[], now=T0 + 2)
    assert delivered(again) == {"worker": 1}
    assert [(d.batch, d.seq) for d in await store.list_deliveries("s1") if d.seq] == [(3, 1)]
    second = await store.emit_signal(signal("task.assigned"))  # nobody waits: wakes nobody
    assert (second.woke, second.driver) == (False, None)
    assert [s.seq for s in await store.list_signals("s1")] == [1, 2]
    assert (await store.get_stream_run("s1")).last_batch == 3  # type: ignore[union-attr]


async def test_arming_after_an_unseen_signal_wakes_at_once_with_the_batch(
    storage: Storage,
) -> None:
    store = await idle(storage)
    await store.emit_signal(signal("plan.requested"))
    assert await store.arm_stream_wait("s1", token_hash=token_hash("w1"), seen_seq=0, now=T0 + 2)
    hook = await hook_of(storage, "w1")
    assert hook.status is HookStatus.RECEIVED
    assert handed_over(hook.payload) == (3, [("planner", 1, "plan.requested")], "running", "r1")


async def test_an_emit_to_a_waiter_whose_hook_expired_takes_no_batch(storage: Storage) -> None:
    store = await idle(storage)
    assert not await store.arm_stream_wait("s1", token_hash=token_hash("w1"), seen_seq=0, now=T0)
    late = await store.emit_signal(
        NewSignal("s1", "agent", "task.assigned", None, "sig-late", T0 + 61, "r0", None)
    )
    assert not late.woke
    assert (await hook_of(storage, "w1")).status is HookStatus.WAITING  # its timeout ends it
    record = await store.get_stream_run("s1")
    assert record is not None
    assert (record.last_seq, record.last_batch) == (1, 2)  # the driver takes batch 3 itself
    taken = await store.take_stream_batch("s1", batch=3, outcomes=[], now=T0 + 62)
    assert delivered(taken) == {"worker": 1}


async def test_two_stream_runs_share_nothing(storage: Storage) -> None:
    store = await opened(storage, "s1", "r1")
    await opened(storage, "s2", "r2")
    await store.emit_signal(signal("task.assigned", {"for": "s1"}))
    await store.take_stream_batch("s1", batch=1, outcomes=[], now=T0)
    b2 = await store.take_stream_batch("s2", batch=1, outcomes=[], now=T0)
    b2 = await store.take_stream_batch(
        "s2", batch=2, outcomes=[done("planner"), done("worker")], now=T0
    )
    assert delivered(b2) == {}
    assert await store.list_signals("s2") == []
    assert [s.cursor for s in await store.list_subscriptions("s2")] == [0, 0]
    assert [r.stream_run_id for r in await store.list_stream_runs(stream="agent")] == ["s2", "s1"]
