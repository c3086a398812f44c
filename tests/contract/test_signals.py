"""The storage contract for outside signals: request_cancel, and a turn that races a signal.

Outside writers never append: they bump ``signal_seq`` and make the run due, and a lease holder
that lets go without having seen the latest signal leaves the run due. Each test runs against
every backend (see conftest.py), on the fake clock of storage_calls.py.
"""

from __future__ import annotations

from storage_calls import (
    T0,
    claim,
    ids_claimable,
    run_of,
    start,
    step_events,
    turn,
)

from pyworkflow.events import RunStatus
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import (
    AppendResult,
)

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


async def test_a_second_cancel_request_keeps_the_first_reason(storage: Storage) -> None:
    # Cancelling twice is harmless: the run ends with the reason it was first given.
    await start(storage, "r")
    assert await storage.request_cancel("r", now=T0, reason="first") is True
    assert await storage.request_cancel("r", now=T0 + 1, reason="second") is True
    record = await run_of(storage, "r")
    assert (record.cancel_requested, record.cancel_reason, record.signal_seq) == (True, "first", 2)
