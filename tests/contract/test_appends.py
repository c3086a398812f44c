"""The storage contract for appends: load_events and append, all or nothing and optimistic.

Each test runs against every backend (see conftest.py), on the fake clock of storage_calls.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from storage_calls import (
    LEASE,
    NESTED,
    T0,
    claim,
    ids_claimable,
    run_of,
    start,
    step_events,
    turn,
)

from pyworkflow.events import EventType, RunStatus
from pyworkflow.exceptions import (
    ConcurrencyConflictError,
    RunNotFoundError,
)
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import (
    AppendResult,
    AppendWrite,
    NewEvent,
)

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
