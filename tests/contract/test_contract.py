"""The storage contract: every method of the Storage protocol, every rule of its docstrings.

Each test runs against every backend (see conftest.py). Times are plain floats from a fake clock
starting at T0 (storage_calls.py); no test sleeps. The optional ChangeNotifier protocol has its
own file, test_notifications.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from storage_calls import (
    LEASE,
    NESTED,
    T0,
    claim,
    ids_claimable,
    new_run,
    run_of,
    start,
    step_events,
    turn,
)

from pyworkflow.events import EventType, RunStatus
from pyworkflow.exceptions import (
    ConcurrencyConflictError,
    IdempotencyConflictError,
    InvalidRunStateError,
    PyWorkflowError,
    RunNotFoundError,
)
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import (
    AppendResult,
    AppendWrite,
    EventRecord,
    NewEvent,
    NewRun,
    RunCursor,
    RunRecord,
)

# --- the protocol itself -------------------------------------------------------------------------


async def test_is_a_storage_with_a_url(storage: Storage) -> None:
    assert isinstance(storage, Storage)
    assert isinstance(storage.url, str)
    assert storage.url


async def test_open_and_close_are_idempotent(make_storage: Any) -> None:
    store = make_storage()
    await store.open()
    await store.open()
    await start(store, "r1")
    assert await store.get_run("r1") is not None
    await store.close()
    await store.close()


# --- create_run / get_run ----------------------------------------------------------------------


async def test_create_run_makes_a_pending_due_run(storage: Storage) -> None:
    record, created = await storage.create_run(
        new_run("r1", args={"x": [1, "ü"]}, key="k1", parent="p0")
    )
    assert created
    assert record == RunRecord(
        run_id="r1",
        workflow_name="wf",
        status=RunStatus.PENDING,
        args={"x": [1, "ü"]},
        result=None,
        error=None,
        idempotency_key="k1",
        parent_run_id="p0",
        created_at=T0,
        updated_at=T0,
        completed_at=None,
        wake_at=T0,
        lease_owner=None,
        lease_expires_at=None,
        recovery_count=0,
        last_seq=1,
        signal_seq=0,
        cancel_requested=False,
        cancel_reason=None,
    )
    assert isinstance(record.status, RunStatus)
    assert await storage.get_run("r1") == record


async def test_create_run_writes_workflow_started_at_seq_1(storage: Storage) -> None:
    await start(storage, "r1", payload=NESTED)
    events = await storage.load_events("r1")
    assert events == [EventRecord("r1", 1, EventType.WORKFLOW_STARTED, NESTED, T0)]
    assert isinstance(events[0].type, EventType)


async def test_get_run_of_unknown_id_is_none(storage: Storage) -> None:
    assert await storage.get_run("nope") is None


async def test_create_run_with_a_lease_holds_it(storage: Storage) -> None:
    record = await start(storage, "r1", owner="starter", lease_expires_at=T0 + LEASE)
    assert (record.lease_owner, record.lease_expires_at) == ("starter", T0 + LEASE)
    assert record.status is RunStatus.PENDING
    assert await ids_claimable(storage, T0 + 1) == []
    result = await turn(storage, "r1", "starter", events=step_events(1), status=RunStatus.RUNNING)
    assert result.last_seq == 2


async def test_create_run_with_a_lease_is_recovered_when_the_starter_dies(
    storage: Storage,
) -> None:
    await start(storage, "r1", owner="starter", lease_expires_at=T0 + LEASE)
    assert (
        await storage.claim_runs(
            owner="w2", now=T0 + LEASE - 1, lease_expires_at=T0 + 2 * LEASE, limit=10
        )
        == []
    )
    claimed = await storage.claim_runs(
        owner="w2", now=T0 + LEASE + 1, lease_expires_at=T0 + 3 * LEASE, limit=10
    )
    assert [(r.run_id, r.lease_owner, r.recovery_count) for r in claimed] == [("r1", "w2", 1)]


async def test_create_run_with_a_lease_is_due_when_the_lease_lapses(storage: Storage) -> None:
    # Chosen semantics (protocol.py leaves it open): a run leased at creation gets
    # wake_at = lease_expires_at, so it is recovered if its starter never appends.
    record = await start(storage, "r1", owner="starter", lease_expires_at=T0 + LEASE)
    assert record.wake_at == T0 + LEASE
    assert await storage.next_wake_at() == T0 + LEASE


async def test_idempotency_key_of_the_same_workflow_returns_the_existing_run(
    storage: Storage,
) -> None:
    first = await start(storage, "r1", key="order-7")
    again, created = await storage.create_run(new_run("r2", key="order-7", now=T0 + 5))
    assert not created
    assert again == first
    assert await storage.get_run("r2") is None
    assert await storage.load_events("r2") == []
    assert len(await storage.load_events("r1")) == 1
    assert [r.run_id for r in await storage.list_runs()] == ["r1"]


async def test_idempotency_key_of_another_workflow_raises_and_writes_nothing(
    storage: Storage,
) -> None:
    first = await start(storage, "r1", key="order-7", workflow="charge")
    with pytest.raises(IdempotencyConflictError) as info:
        await storage.create_run(new_run("r2", key="order-7", workflow="refund"))
    assert info.value.idempotency_key == "order-7"
    assert info.value.existing_workflow == "charge"
    assert info.value.requested_workflow == "refund"
    assert await storage.get_run("r2") is None
    assert await storage.load_events("r2") == []
    assert await storage.get_run("r1") == first
    assert [r.run_id for r in await storage.list_runs()] == ["r1"]


async def test_concurrent_starts_with_one_idempotency_key_make_one_run(storage: Storage) -> None:
    outcomes = await asyncio.gather(
        *(storage.create_run(new_run(f"r{i}", key="once", now=T0 + i)) for i in range(10))
    )
    assert sum(created for _, created in outcomes) == 1
    (winner,) = {record.run_id for record, _ in outcomes}
    assert [r.run_id for r in await storage.list_runs()] == [winner]
    assert len(await storage.load_events(winner)) == 1
    for i in range(10):
        if f"r{i}" != winner:
            assert await storage.get_run(f"r{i}") is None
            assert await storage.load_events(f"r{i}") == []


async def test_runs_without_idempotency_key_never_collide(storage: Storage) -> None:
    await start(storage, "r1")
    await start(storage, "r2")
    assert {r.run_id for r in await storage.list_runs()} == {"r1", "r2"}


async def test_values_are_copied_in_and_out(storage: Storage) -> None:
    args = {"items": [1, 2]}
    payload = {"v": 1, "deep": {"k": [1]}}
    record, _ = await storage.create_run(new_run("r1", args=args, payload=payload))
    args["items"].append(3)
    payload["deep"]["k"].append(2)
    record.args["items"].append(4)
    (await storage.load_events("r1"))[0].payload["deep"]["k"].append(5)
    assert (await run_of(storage, "r1")).args == {"items": [1, 2]}
    assert (await storage.load_events("r1"))[0].payload == {"v": 1, "deep": {"k": [1]}}


# --- load_events / append ----------------------------------------------------------------------


async def test_events_are_gap_free_and_round_trip(storage: Storage) -> None:
    await start(storage, "r1")
    await claim(storage, "r1")
    first = [
        NewEvent(EventType.STEP_STARTED, {"v": 1, "step": "a#1"}),
        NewEvent(EventType.STEP_COMPLETED, NESTED),
        NewEvent(EventType.SIDE_EFFECT_RECORDED, {"v": 1, "value": "ü🚀", "n": None}),
    ]
    result = await turn(storage, "r1", events=first, now=T0 + 1)
    assert result == AppendResult(last_seq=4, signal_seq=0, cancel_requested=False)
    second = step_events(2)
    result = await turn(storage, "r1", events=second, now=T0 + 2)
    assert result.last_seq == 6

    events = await storage.load_events("r1")
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6]
    assert [(e.type, e.payload) for e in events[1:]] == [
        (e.type, e.payload) for e in first + second
    ]
    assert [e.created_at for e in events] == [T0, T0 + 1, T0 + 1, T0 + 1, T0 + 2, T0 + 2]
    assert all(e.run_id == "r1" and isinstance(e.type, EventType) for e in events)
    assert await storage.load_events("r1", after_seq=4) == events[4:]
    assert await storage.load_events("r1", after_seq=6) == []
    assert (await run_of(storage, "r1")).last_seq == 6


async def test_load_events_of_unknown_run_is_empty(storage: Storage) -> None:
    assert await storage.load_events("nope") == []


async def test_event_payloads_are_copied_in(storage: Storage) -> None:
    await start(storage, "r1")
    await claim(storage, "r1")
    payload: dict[str, Any] = {"v": 1, "result": [1]}
    await turn(storage, "r1", events=[NewEvent(EventType.STEP_COMPLETED, payload)])
    payload["result"].append(2)
    assert (await storage.load_events("r1", after_seq=1))[0].payload == {"v": 1, "result": [1]}


async def test_append_updates_the_row(storage: Storage) -> None:
    await start(storage, "r1")
    await claim(storage, "r1")
    await turn(
        storage, "r1", now=T0 + 3, events=step_events(1), status=RunStatus.RUNNING, wake_at=T0 + 9
    )
    record = await run_of(storage, "r1")
    assert record.status is RunStatus.RUNNING
    assert record.last_seq == 2
    assert (record.wake_at, record.updated_at) == (T0 + 9, T0 + 3)
    assert (record.lease_owner, record.lease_expires_at) == ("w1", T0 + 3 + LEASE)
    assert record.completed_at is None


async def test_append_without_events_only_updates_the_row(storage: Storage) -> None:
    await start(storage, "r1")
    await claim(storage, "r1")
    result = await turn(storage, "r1", now=T0 + 1, status=RunStatus.RUNNING)
    assert result.last_seq == 1
    assert (await run_of(storage, "r1")).status is RunStatus.RUNNING
    assert len(await storage.load_events("r1")) == 1


async def test_append_without_status_keeps_it(storage: Storage) -> None:
    await start(storage, "r1")
    await claim(storage, "r1")
    await turn(storage, "r1", status=RunStatus.RUNNING)
    await turn(storage, "r1", events=step_events(1))
    assert (await run_of(storage, "r1")).status is RunStatus.RUNNING


@pytest.mark.parametrize("expected_seq", [0, 2, 5])
async def test_append_with_a_stale_seq_conflicts_and_writes_nothing(
    storage: Storage, expected_seq: int
) -> None:
    await start(storage, "r1")
    await claim(storage, "r1")
    before = await run_of(storage, "r1")
    with pytest.raises(ConcurrencyConflictError) as info:
        await turn(
            storage,
            "r1",
            now=T0 + 1,
            expected_seq=expected_seq,
            events=step_events(2),
            status=RunStatus.COMPLETED,
            result="done",
        )
    assert (info.value.run_id, info.value.expected_seq) == ("r1", expected_seq)
    assert await run_of(storage, "r1") == before
    assert len(await storage.load_events("r1")) == 1


async def test_append_by_another_owner_conflicts_and_writes_nothing(storage: Storage) -> None:
    await start(storage, "r1")
    await claim(storage, "r1", owner="w1")
    before = await run_of(storage, "r1")
    with pytest.raises(ConcurrencyConflictError):
        await turn(storage, "r1", "w2", now=T0 + 1, events=step_events(1), keep_lease=False)
    assert await run_of(storage, "r1") == before
    assert len(await storage.load_events("r1")) == 1


async def test_append_to_an_unleased_run_conflicts(storage: Storage) -> None:
    await start(storage, "r1")
    with pytest.raises(ConcurrencyConflictError):
        await turn(storage, "r1", "w1", events=step_events(1))
    await claim(storage, "r1")
    await turn(storage, "r1", keep_lease=False, status=RunStatus.SUSPENDED, wake_at=T0 + 50)
    with pytest.raises(ConcurrencyConflictError):
        await turn(storage, "r1", "w1", events=step_events(1))
    assert len(await storage.load_events("r1")) == 1


async def test_append_to_an_unknown_run_raises_run_not_found(storage: Storage) -> None:
    write = AppendWrite(run_id="nope", owner="w1", expected_seq=1, events=step_events(1), now=T0)
    with pytest.raises(RunNotFoundError) as info:
        await storage.append(write)
    assert info.value.run_id == "nope"
    assert await storage.load_events("nope") == []
    assert await storage.get_run("nope") is None


async def test_append_without_result_or_error_keeps_the_stored_ones(storage: Storage) -> None:
    # Protocol: "result/error of None leave the stored ones unchanged".
    await start(storage, "r1")
    await claim(storage, "r1")
    error = {"type": "ValueError", "message": "first attempt"}
    await turn(storage, "r1", events=step_events(1), result={"partial": [1]}, error=error)
    await turn(storage, "r1", events=step_events(1, "t"), status=RunStatus.RUNNING)
    record = await run_of(storage, "r1")
    assert (record.result, record.error) == ({"partial": [1]}, error)
    await turn(storage, "r1", status=RunStatus.COMPLETED, result={"total": 2})
    record = await run_of(storage, "r1")
    assert (record.result, record.error) == ({"total": 2}, error)


async def test_a_worker_whose_lease_expired_cannot_write_after_its_successor(
    storage: Storage,
) -> None:
    await start(storage, "r1")
    await claim(storage, "r1", owner="w1", now=T0)
    later = T0 + LEASE + 1
    successor = await claim(storage, "r1", owner="w2", now=later)
    assert successor.recovery_count == 1
    with pytest.raises(ConcurrencyConflictError):
        await turn(storage, "r1", "w1", now=later, expected_seq=1, events=step_events(1))
    await turn(storage, "r1", "w2", now=later, expected_seq=1, events=step_events(1, "w2"))
    events = await storage.load_events("r1")
    assert [e.payload.get("step") for e in events] == [None, "w2#0"]


async def test_an_expired_lease_nobody_took_may_still_append(storage: Storage) -> None:
    # Chosen semantics: "holds the lease" means lease_owner == owner, expired or not.
    await start(storage, "r1")
    await claim(storage, "r1", owner="w1", now=T0)
    result = await turn(storage, "r1", "w1", now=T0 + 2 * LEASE, events=step_events(1))
    assert result.last_seq == 2


async def test_concurrent_appends_of_different_runs_fail_on_their_own(storage: Storage) -> None:
    for run_id in ("a", "b", "c"):
        await start(storage, run_id)
        await claim(storage, run_id)

    def write(run_id: str, expected_seq: int) -> AppendWrite:
        return AppendWrite(
            run_id=run_id,
            owner="w1",
            expected_seq=expected_seq,
            events=step_events(1, run_id),
            now=T0 + 1,
            lease_expires_at=T0 + LEASE,
        )

    outcomes = await asyncio.gather(
        storage.append(write("a", 1)),
        storage.append(write("b", 7)),
        storage.append(write("c", 1)),
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], AppendResult)
    assert isinstance(outcomes[1], ConcurrencyConflictError)
    assert isinstance(outcomes[2], AppendResult)
    assert [len(await storage.load_events(r)) for r in ("a", "b", "c")] == [2, 1, 2]


@pytest.mark.parametrize(
    "status",
    [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.CONTINUED_AS_NEW],
)
async def test_a_terminal_status_clears_wake_at_and_the_lease(
    storage: Storage, status: RunStatus
) -> None:
    await start(storage, "r1")
    await claim(storage, "r1")
    await turn(storage, "r1", now=T0 + 4, status=status, wake_at=T0 + 5, keep_lease=True)
    record = await run_of(storage, "r1")
    assert record.status is status
    assert (record.wake_at, record.lease_owner, record.lease_expires_at) == (None, None, None)
    assert record.completed_at == T0 + 4
    assert await ids_claimable(storage, T0 + 1000) == []
    assert await storage.next_wake_at() is None


async def test_completed_result_and_failed_error_round_trip(storage: Storage) -> None:
    await start(storage, "ok")
    await start(storage, "bad")
    await claim(storage, "ok")
    await claim(storage, "bad")
    await turn(storage, "ok", status=RunStatus.COMPLETED, result=NESTED)
    error = {"type": "builtins.ValueError", "message": "nö", "traceback": "Traceback...\n"}
    await turn(storage, "bad", status=RunStatus.FAILED, error=error)
    assert (await run_of(storage, "ok")).result == NESTED
    assert (await run_of(storage, "ok")).error is None
    assert (await run_of(storage, "bad")).error == error
    assert (await run_of(storage, "bad")).result is None


async def test_releasing_with_a_wake_up_time_makes_the_run_due_then(storage: Storage) -> None:
    await start(storage, "r1")
    await claim(storage, "r1")
    await turn(storage, "r1", status=RunStatus.SUSPENDED, wake_at=T0 + 60, keep_lease=False)
    record = await run_of(storage, "r1")
    assert (record.lease_owner, record.lease_expires_at, record.wake_at) == (None, None, T0 + 60)
    assert await ids_claimable(storage, T0 + 59) == []
    claimed = await storage.claim_runs(owner="w2", now=T0 + 60, lease_expires_at=T0 + 90, limit=10)
    assert [(r.run_id, r.recovery_count, r.status) for r in claimed] == [
        ("r1", 0, RunStatus.SUSPENDED)
    ]


async def test_releasing_without_a_wake_up_time_waits_for_a_signal(storage: Storage) -> None:
    await start(storage, "r1")
    await claim(storage, "r1")
    await turn(storage, "r1", status=RunStatus.SUSPENDED, wake_at=None, keep_lease=False)
    assert (await run_of(storage, "r1")).wake_at is None
    assert await ids_claimable(storage, T0 + 10**6) == []
    assert await storage.next_wake_at() is None
    assert await storage.request_cancel("r1", now=T0 + 7, reason="stop")
    assert await ids_claimable(storage, T0 + 7) == ["r1"]


async def test_progressed_resets_the_recovery_count(storage: Storage) -> None:
    await start(storage, "r1")
    now = T0
    for owner in ("w1", "w2", "w3"):
        await claim(storage, "r1", owner=owner, now=now)
        now += LEASE + 1
    assert (await run_of(storage, "r1")).recovery_count == 2
    await turn(storage, "r1", "w3", now=now, events=step_events(1), progressed=False)
    assert (await run_of(storage, "r1")).recovery_count == 2
    await turn(storage, "r1", "w3", now=now, events=step_events(1), progressed=True)
    assert (await run_of(storage, "r1")).recovery_count == 0


# --- outside signals -----------------------------------------------------------------------------


async def test_a_cancel_during_a_turn_leaves_the_run_due(storage: Storage) -> None:
    await start(storage, "r1")
    await claim(storage, "r1", now=T0)
    assert await storage.request_cancel("r1", now=T0 + 1, reason="user")
    record = await run_of(storage, "r1")
    assert (record.cancel_requested, record.cancel_reason, record.signal_seq) == (True, "user", 1)
    assert record.lease_owner == "w1"  # the lease stays with its holder
    assert await ids_claimable(storage, T0 + 2) == []

    # The holder ends its turn without having seen the signal: the run must stay due.
    result = await turn(
        storage,
        "r1",
        now=T0 + 2,
        events=step_events(1),
        status=RunStatus.SUSPENDED,
        wake_at=None,
        keep_lease=False,
        signals_seen=0,
    )
    assert result == AppendResult(last_seq=2, signal_seq=1, cancel_requested=True)
    record = await run_of(storage, "r1")
    assert record.lease_owner is None
    assert record.wake_at is not None
    assert record.wake_at <= T0 + 2
    assert await storage.next_wake_at() == record.wake_at
    claimed = await storage.claim_runs(owner="w2", now=T0 + 2, lease_expires_at=T0 + 40, limit=5)
    assert [(r.run_id, r.recovery_count, r.cancel_requested) for r in claimed] == [("r1", 0, True)]
    assert len(await storage.load_events("r1")) == 2  # outside writers append no events


async def test_a_seen_signal_does_not_wake_the_run_again(storage: Storage) -> None:
    await start(storage, "r1")
    await claim(storage, "r1")
    await storage.request_cancel("r1", now=T0 + 1, reason=None)
    await turn(
        storage,
        "r1",
        now=T0 + 2,
        status=RunStatus.SUSPENDED,
        wake_at=None,
        keep_lease=False,
        signals_seen=1,
    )
    assert (await run_of(storage, "r1")).wake_at is None


async def test_an_append_that_keeps_the_lease_reports_unseen_signals(storage: Storage) -> None:
    await start(storage, "r1")
    await claim(storage, "r1")
    await storage.request_cancel("r1", now=T0 + 1, reason="r")
    result = await turn(storage, "r1", now=T0 + 2, events=step_events(1), wake_at=T0 + 2)
    assert result == AppendResult(last_seq=2, signal_seq=1, cancel_requested=True)
    assert (await run_of(storage, "r1")).lease_owner == "w1"


async def test_request_cancel(storage: Storage) -> None:
    assert not await storage.request_cancel("nope", now=T0, reason=None)
    await start(storage, "r1")
    assert await storage.request_cancel("r1", now=T0 + 3, reason="no longer needed")
    record = await run_of(storage, "r1")
    assert record.cancel_requested
    assert record.cancel_reason == "no longer needed"
    assert record.signal_seq == 1
    assert record.wake_at == T0 + 3
    assert record.status is RunStatus.PENDING
    assert len(await storage.load_events("r1")) == 1
    assert await storage.request_cancel("r1", now=T0 + 4, reason="again")
    assert (await run_of(storage, "r1")).signal_seq == 2


async def test_request_cancel_of_an_ended_run_is_false_and_writes_nothing(
    storage: Storage,
) -> None:
    await start(storage, "r1")
    await claim(storage, "r1")
    await turn(storage, "r1", status=RunStatus.COMPLETED, result=1)
    before = await run_of(storage, "r1")
    assert not await storage.request_cancel("r1", now=T0 + 1, reason="late")
    assert await run_of(storage, "r1") == before


# --- claim_runs ----------------------------------------------------------------------------------


async def test_claim_takes_the_earliest_wake_at_first_up_to_limit(storage: Storage) -> None:
    # run ids sort the other way round from their wake-up times
    for offset, run_id in [(3, "a"), (1, "c"), (2, "b"), (0, "d")]:
        await start(storage, run_id, now=T0 + offset)
    first = await storage.claim_runs(owner="w1", now=T0 + 10, lease_expires_at=T0 + 40, limit=2)
    assert [r.run_id for r in first] == ["d", "c"]
    assert all((r.lease_owner, r.lease_expires_at) == ("w1", T0 + 40) for r in first)
    assert all(r.status is RunStatus.PENDING and r.recovery_count == 0 for r in first)
    assert (await run_of(storage, "d")).lease_owner == "w1"
    rest = await storage.claim_runs(owner="w2", now=T0 + 10, lease_expires_at=T0 + 40, limit=5)
    assert [r.run_id for r in rest] == ["b", "a"]
    assert (
        await storage.claim_runs(owner="w3", now=T0 + 10, lease_expires_at=T0 + 40, limit=0) == []
    )


async def test_claim_skips_runs_not_yet_due(storage: Storage) -> None:
    await start(storage, "early", now=T0)
    await start(storage, "late", now=T0 + 5)
    assert await ids_claimable(storage, T0 + 1) == ["early"]
    assert await ids_claimable(storage, T0 + 5, owner="other") == ["late"]


async def test_claim_filters_by_workflow_names(storage: Storage) -> None:
    await start(storage, "a1", workflow="a")
    await start(storage, "b1", workflow="b")
    await start(storage, "c1", workflow="c")
    assert (
        await storage.claim_runs(
            owner="w1", now=T0, lease_expires_at=T0 + 9, limit=10, workflow_names=[]
        )
        == []
    )
    claimed = await storage.claim_runs(
        owner="w1", now=T0, lease_expires_at=T0 + 9, limit=10, workflow_names={"a", "c", "zz"}
    )
    assert sorted(r.run_id for r in claimed) == ["a1", "c1"]
    assert (await run_of(storage, "b1")).lease_owner is None


async def test_claim_filters_by_run_ids(storage: Storage) -> None:
    for run_id in ("r1", "r2", "r3"):
        await start(storage, run_id)
    assert (
        await storage.claim_runs(owner="w1", now=T0, lease_expires_at=T0 + 9, limit=10, run_ids=[])
        == []
    )
    claimed = await storage.claim_runs(
        owner="w1", now=T0, lease_expires_at=T0 + 9, limit=10, run_ids=("r3", "r1", "nope")
    )
    assert sorted(r.run_id for r in claimed) == ["r1", "r3"]
    claimed = await storage.claim_runs(
        owner="w1",
        now=T0,
        lease_expires_at=T0 + 9,
        limit=10,
        run_ids=["r1", "r2"],
        workflow_names=["wf"],
    )
    assert [r.run_id for r in claimed] == ["r2"]


async def test_a_run_is_never_claimed_twice(storage: Storage) -> None:
    for i in range(12):
        await start(storage, f"r{i:02}")
    batches = await asyncio.gather(
        *(
            storage.claim_runs(owner=f"w{n}", now=T0, lease_expires_at=T0 + 9, limit=5)
            for n in range(4)
        )
    )
    claimed = [r.run_id for batch in batches for r in batch]
    assert sorted(claimed) == [f"r{i:02}" for i in range(12)]
    for n, batch in enumerate(batches):
        for r in batch:
            assert (await run_of(storage, r.run_id)).lease_owner == f"w{n}"
    assert await ids_claimable(storage, T0 + 8) == []


async def test_claim_skips_ended_runs(storage: Storage) -> None:
    await start(storage, "r1")
    await claim(storage, "r1")
    await turn(storage, "r1", status=RunStatus.FAILED, error={"type": "E", "message": "m"})
    assert await ids_claimable(storage, T0 + 10**6) == []


async def test_a_lease_expiring_exactly_now_is_claimable(storage: Storage) -> None:
    # Chosen semantics: a lease is held while now < lease_expires_at.
    await start(storage, "r1")
    await claim(storage, "r1", owner="w1", now=T0)
    assert await ids_claimable(storage, T0 + LEASE - 0.5) == []
    assert await ids_claimable(storage, T0 + LEASE) == ["r1"]


async def test_an_expired_lease_lets_another_owner_claim_and_counts_a_recovery(
    storage: Storage,
) -> None:
    await start(storage, "r1")
    await claim(storage, "r1", owner="w1", now=T0)
    assert await ids_claimable(storage, T0 + LEASE - 1) == []
    later = T0 + LEASE + 1
    record = await claim(storage, "r1", owner="w2", now=later)
    assert (record.lease_owner, record.lease_expires_at) == ("w2", later + LEASE)
    assert record.recovery_count == 1
    assert record.previous_owner == "w1", "a take-over names whose lease lapsed"
    assert record.status is RunStatus.PENDING
    assert await run_of(storage, "r1") == dataclasses.replace(record, previous_owner=None)


# --- renew_leases / release_runs -----------------------------------------------------------------


async def test_renew_extends_only_the_leases_the_owner_holds(storage: Storage) -> None:
    for run_id in ("r1", "r2", "r3", "r4"):
        await start(storage, run_id)
    await claim(storage, "r1", owner="w1")
    await claim(storage, "r2", owner="w1")
    await claim(storage, "r3", owner="w2")
    held = await storage.renew_leases(
        owner="w1", run_ids=["r1", "r2", "r3", "r4", "nope"], now=T0 + 10, lease_expires_at=T0 + 99
    )
    assert held == {"r1", "r2"}
    assert (await run_of(storage, "r1")).lease_expires_at == T0 + 99
    assert (await run_of(storage, "r2")).lease_expires_at == T0 + 99
    assert (await run_of(storage, "r3")).lease_expires_at == T0 + LEASE
    assert (await run_of(storage, "r4")).lease_owner is None
    assert await ids_claimable(storage, T0 + LEASE + 1) == ["r3", "r4"]


async def test_renew_after_a_takeover_returns_nothing(storage: Storage) -> None:
    await start(storage, "r1")
    await claim(storage, "r1", owner="w1", now=T0)
    await claim(storage, "r1", owner="w2", now=T0 + LEASE + 1)
    held = await storage.renew_leases(
        owner="w1", run_ids=["r1"], now=T0 + LEASE + 2, lease_expires_at=T0 + 500
    )
    assert held == set()
    assert (await run_of(storage, "r1")).lease_expires_at == T0 + 2 * LEASE + 1


async def test_renew_of_an_expired_lease_nobody_took_succeeds(storage: Storage) -> None:
    # Chosen semantics: the owner still holds a lapsed lease until someone else claims the run.
    await start(storage, "r1")
    await claim(storage, "r1", owner="w1", now=T0)
    held = await storage.renew_leases(
        owner="w1", run_ids=["r1"], now=T0 + 2 * LEASE, lease_expires_at=T0 + 3 * LEASE
    )
    assert held == {"r1"}
    assert await ids_claimable(storage, T0 + 2 * LEASE + 1) == []


async def test_renew_of_a_released_run_returns_nothing(storage: Storage) -> None:
    await start(storage, "r1")
    await claim(storage, "r1", owner="w1")
    await storage.release_runs(owner="w1", run_ids=["r1"], now=T0 + 1)
    assert (
        await storage.renew_leases(owner="w1", run_ids=["r1"], now=T0 + 2, lease_expires_at=T0 + 50)
        == set()
    )


async def test_release_drops_the_lease_and_makes_the_run_due(storage: Storage) -> None:
    await start(storage, "r1")
    await start(storage, "r2")
    await claim(storage, "r1", owner="w1")
    await claim(storage, "r2", owner="w1")
    await turn(storage, "r1", "w1", status=RunStatus.SUSPENDED, wake_at=T0 + 1000)
    await storage.release_runs(owner="w1", run_ids=["r1", "nope"], now=T0 + 5)
    record = await run_of(storage, "r1")
    assert (record.lease_owner, record.lease_expires_at, record.wake_at) == (None, None, T0 + 5)
    assert record.status is RunStatus.SUSPENDED
    assert (await run_of(storage, "r2")).lease_owner == "w1"
    claimed = await storage.claim_runs(owner="w2", now=T0 + 5, lease_expires_at=T0 + 9, limit=9)
    assert [(r.run_id, r.recovery_count) for r in claimed] == [("r1", 0)]


async def test_release_ignores_runs_held_by_others(storage: Storage) -> None:
    await start(storage, "r1")
    await claim(storage, "r1", owner="w1")
    before = await run_of(storage, "r1")
    await storage.release_runs(owner="w2", run_ids=["r1"], now=T0 + 5)
    assert await run_of(storage, "r1") == before


# --- reopen_failed_run ---------------------------------------------------------------------------


async def fail(storage: Storage, run_id: str, owner: str = "w1", now: float = T0) -> None:
    await turn(
        storage,
        run_id,
        owner,
        now=now,
        events=[NewEvent(EventType.WORKFLOW_FAILED, {"v": 1, "error": "boom"})],
        status=RunStatus.FAILED,
        error={"type": "RuntimeError", "message": "boom"},
    )


async def test_reopen_failed_run(storage: Storage) -> None:
    await start(storage, "r1")
    await claim(storage, "r1", owner="w1", now=T0)
    await claim(storage, "r1", owner="w2", now=T0 + LEASE + 1)  # one recovery
    await fail(storage, "r1", "w2", now=T0 + LEASE + 2)
    failed = await run_of(storage, "r1")
    assert (failed.status, failed.recovery_count, failed.last_seq) == (RunStatus.FAILED, 1, 2)

    now = T0 + 100
    record = await storage.reopen_failed_run("r1", now=now, payload={"v": 1, "by": "ádmin"})
    assert record.status is RunStatus.PENDING
    assert (record.error, record.completed_at, record.recovery_count) == (None, None, 0)
    assert (record.wake_at, record.lease_owner, record.lease_expires_at) == (now, None, None)
    assert record.last_seq == 3
    assert await run_of(storage, "r1") == record
    events = await storage.load_events("r1")
    assert events[-1] == EventRecord(
        "r1", 3, EventType.WORKFLOW_RESUMED, {"v": 1, "by": "ádmin"}, now
    )
    assert [e.seq for e in events] == [1, 2, 3]
    assert await ids_claimable(storage, now) == ["r1"]


async def test_reopen_of_an_unknown_run_raises(storage: Storage) -> None:
    with pytest.raises(RunNotFoundError) as info:
        await storage.reopen_failed_run("nope", now=T0, payload={"v": 1})
    assert info.value.run_id == "nope"
    assert await storage.load_events("nope") == []


@pytest.mark.parametrize("status", [RunStatus.COMPLETED, RunStatus.CANCELLED, None])
async def test_reopen_of_a_run_that_has_not_failed_raises_and_writes_nothing(
    storage: Storage, status: RunStatus | None
) -> None:
    await start(storage, "r1")
    if status is not None:
        await claim(storage, "r1")
        await turn(storage, "r1", status=status)
    before = await run_of(storage, "r1")
    with pytest.raises(InvalidRunStateError) as info:
        await storage.reopen_failed_run("r1", now=T0 + 1, payload={"v": 1})
    assert isinstance(info.value, PyWorkflowError)
    assert info.value.run_id == "r1"
    assert await run_of(storage, "r1") == before
    assert len(await storage.load_events("r1")) == before.last_seq


# --- list_runs -----------------------------------------------------------------------------------


async def test_list_runs_newest_first_with_filters(storage: Storage) -> None:
    await start(storage, "p1", workflow="pay", now=T0 + 1)
    await start(storage, "p2", workflow="pay", now=T0 + 2)
    await start(storage, "s1", workflow="ship", now=T0 + 3)
    await start(storage, "s2", workflow="ship", now=T0 + 4)
    await claim(storage, "p2", now=T0 + 5)
    await turn(storage, "p2", now=T0 + 5, status=RunStatus.COMPLETED, result=True)
    await claim(storage, "s1", now=T0 + 5)
    await turn(storage, "s1", now=T0 + 5, status=RunStatus.RUNNING)

    def ids(records: list[RunRecord]) -> list[str]:
        return [r.run_id for r in records]

    assert ids(await storage.list_runs()) == ["s2", "s1", "p2", "p1"]
    assert ids(await storage.list_runs(limit=2)) == ["s2", "s1"]
    assert ids(await storage.list_runs(workflow_name="pay")) == ["p2", "p1"]
    assert ids(await storage.list_runs(statuses=[RunStatus.PENDING])) == ["s2", "p1"]
    assert ids(await storage.list_runs(statuses={RunStatus.COMPLETED, RunStatus.RUNNING})) == [
        "s1",
        "p2",
    ]
    assert ids(await storage.list_runs(statuses=[RunStatus.PENDING], workflow_name="ship")) == [
        "s2"
    ]
    assert ids(await storage.list_runs(statuses=[])) == []
    assert ids(await storage.list_runs(limit=0)) == []
    assert ids(await storage.list_runs(workflow_name="nope")) == []
    assert (await storage.list_runs(workflow_name="pay"))[0] == await run_of(storage, "p2")


async def test_list_runs_pages_by_keyset_without_duplicates_or_gaps(storage: Storage) -> None:
    # three runs share each created_at, so the run id breaks ties
    created = {f"r{i:02}": T0 + (i * 7 % 25) // 3 for i in range(25)}
    for run_id, now in created.items():
        await start(storage, run_id, now=now)
    expected = sorted(created, key=lambda r: (created[r], r), reverse=True)

    pages: list[list[str]] = []
    cursor: RunCursor | None = None
    while True:
        page = await storage.list_runs(limit=10, before=cursor)
        if not page:
            break
        pages.append([r.run_id for r in page])
        cursor = RunCursor(created_at=page[-1].created_at, run_id=page[-1].run_id)
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [r for p in pages for r in p] == expected


async def test_list_runs_pages_within_a_filter(storage: Storage) -> None:
    for i in range(6):
        await start(storage, f"r{i}", workflow="even" if i % 2 == 0 else "odd", now=T0 + i)
    page = await storage.list_runs(workflow_name="even", limit=2)
    assert [r.run_id for r in page] == ["r4", "r2"]
    rest = await storage.list_runs(
        workflow_name="even", limit=2, before=RunCursor(page[-1].created_at, page[-1].run_id)
    )
    assert [r.run_id for r in rest] == ["r0"]


# --- next_wake_at --------------------------------------------------------------------------------


async def test_next_wake_at(storage: Storage) -> None:
    assert await storage.next_wake_at() is None
    await start(storage, "a1", workflow="a", now=T0 + 20)
    await start(storage, "b1", workflow="b", now=T0 + 10)
    assert await storage.next_wake_at() == T0 + 10
    assert await storage.next_wake_at(workflow_names=["a"]) == T0 + 20
    assert await storage.next_wake_at(workflow_names={"a", "b"}) == T0 + 10
    assert await storage.next_wake_at(workflow_names=["zz"]) is None
    assert await storage.next_wake_at(workflow_names=[]) is None

    # b1 suspends until later; then it ends: only a1 remains
    await claim(storage, "b1", now=T0 + 10)
    await turn(
        storage, "b1", now=T0 + 11, status=RunStatus.SUSPENDED, wake_at=T0 + 50, keep_lease=False
    )
    assert await storage.next_wake_at() == T0 + 20
    assert await storage.next_wake_at(workflow_names=["b"]) == T0 + 50
    await claim(storage, "b1", now=T0 + 50)
    await turn(storage, "b1", now=T0 + 51, status=RunStatus.COMPLETED, result=None)
    assert await storage.next_wake_at(workflow_names=["b"]) is None
    assert await storage.next_wake_at() == T0 + 20


async def test_next_wake_at_counts_a_leased_run_from_when_it_can_be_recovered(
    storage: Storage,
) -> None:
    # Chosen semantics (next_wake_at takes no ``now`` to tell a lapsed lease): a leased run
    # counts at the later of its wake_at and its lease's expiry.
    await start(storage, "r1", now=T0)
    await claim(storage, "r1", owner="w1", now=T0)
    assert await storage.next_wake_at() == T0 + LEASE
    await storage.renew_leases(owner="w1", run_ids=["r1"], now=T0 + 1, lease_expires_at=T0 + 99)
    assert await storage.next_wake_at() == T0 + 99
    await turn(storage, "r1", now=T0 + 2, wake_at=T0 + 200, status=RunStatus.RUNNING)
    assert await storage.next_wake_at() == T0 + 200  # lease ends at T0 + 32, wake_at later
    await start(storage, "r2", now=T0 + 150)
    assert await storage.next_wake_at() == T0 + 150
    assert await storage.next_wake_at(workflow_names=["wf"]) == T0 + 150


async def test_create_run_stores_the_first_turns_events_with_it(storage: Storage) -> None:
    first = (
        NewEvent(EventType.STEP_STARTED, {"v": 1, "step_id": "a#1", "attempt": 1}),
        NewEvent(EventType.STEP_STARTED, {"v": 1, "step_id": "b#1", "attempt": 1}),
    )
    run = NewRun(
        "first",
        "wf",
        [],
        {"v": 1},
        now=100.0,
        lease_owner="w1",
        lease_expires_at=130.0,
        first_events=first,
        status=RunStatus.RUNNING,
    )
    record, created = await storage.create_run(run)
    assert created
    assert (record.last_seq, record.status) == (3, RunStatus.RUNNING)
    stored = await storage.get_run("first")
    assert stored == record
    events = await storage.load_events("first")
    assert [(e.seq, e.type) for e in events] == [
        (1, EventType.WORKFLOW_STARTED),
        (2, EventType.STEP_STARTED),
        (3, EventType.STEP_STARTED),
    ]
    assert events[2].payload == {"v": 1, "step_id": "b#1", "attempt": 1}
    result = await storage.append(
        AppendWrite("first", "w1", 3, [], now=101.0, lease_expires_at=131.0)
    )
    assert result.last_seq == 3


async def test_a_second_cancel_request_keeps_the_first_reason(storage: Storage) -> None:
    # Cancelling twice is harmless: the run ends with the reason it was first given.
    await start(storage, "r")
    assert await storage.request_cancel("r", now=T0, reason="first") is True
    assert await storage.request_cancel("r", now=T0 + 1, reason="second") is True
    record = await run_of(storage, "r")
    assert (record.cancel_requested, record.cancel_reason, record.signal_seq) == (True, "first", 2)
