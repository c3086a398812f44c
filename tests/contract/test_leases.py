"""The storage contract for leases: claim_runs, renew_leases, release_runs, next_wake_at.

Each test runs against every backend (see conftest.py), on the fake clock of storage_calls.py.
Take-overs of suspects are in test_takeovers.py, broker-driven claims in test_dispatch.py.
"""

from __future__ import annotations

import asyncio
import dataclasses

from storage_calls import (
    LEASE,
    T0,
    claim,
    ids_claimable,
    run_of,
    start,
    turn,
)

from pyworkflow.events import RunStatus
from pyworkflow.storage.protocol import Storage

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
