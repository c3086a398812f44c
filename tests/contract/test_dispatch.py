"""The storage contract of runs sent through a broker: ``take_due_runs`` and ``due_only=False``.

Each test runs against every backend (conftest.py). A sweeper that does not run workflows itself
takes the due runs (``take_due_runs``), pushing their ``wake_at`` to a watchdog time, and sends
one message per run; the task that receives it claims that run although its ``wake_at`` is
still ahead (``claim_runs(run_ids=[...], due_only=False)``).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from storage_calls import LEASE, T0, claim, end, ids_claimable, run_of, start, turn

from pyworkflow.events import RunStatus
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import RunRecord

UNTIL = T0 + 60


async def sleeping(
    storage: Storage, run_id: str, until: float | None, now: float = T0
) -> RunRecord:
    """Start ``run_id`` and suspend it: unleased, due at ``until`` (None: on a signal only)."""
    await start(storage, run_id, now=now)
    await claim(storage, run_id, now=now)
    await turn(
        storage, run_id, now=now, status=RunStatus.SUSPENDED, wake_at=until, keep_lease=False
    )
    return await run_of(storage, run_id)


async def claim_sent(
    storage: Storage, run_id: str, owner: str = "w2", now: float = T0 + 1
) -> list[RunRecord]:
    """What a task sent for ``run_id`` claims: the run, due or not."""
    return await storage.claim_runs(
        owner=owner,
        now=now,
        lease_expires_at=now + LEASE,
        limit=1,
        run_ids=[run_id],
        due_only=False,
    )


# --- claim_runs(due_only=False) ------------------------------------------------------------------


async def test_due_only_false_claims_a_live_run_that_is_not_due_yet(storage: Storage) -> None:
    before = await sleeping(storage, "r1", until=T0 + 100)
    assert await ids_claimable(storage, T0 + 1) == [], "not due: the default claim skips it"

    (claimed,) = await claim_sent(storage, "r1")

    assert (claimed.lease_owner, claimed.lease_expires_at) == ("w2", T0 + 1 + LEASE)
    assert claimed.recovery_count == 0
    assert (claimed.wake_at, claimed.status) == (before.wake_at, before.status)
    assert claimed == await run_of(storage, "r1")


async def test_due_only_false_never_claims_an_ended_run(storage: Storage) -> None:
    await start(storage, "r1")
    await end(storage, "r1")
    before = await run_of(storage, "r1")
    assert await claim_sent(storage, "r1", now=T0 + 5) == []
    assert await run_of(storage, "r1") == before


async def test_due_only_false_never_claims_a_run_with_a_live_lease(storage: Storage) -> None:
    await start(storage, "r1")
    await claim(storage, "r1", "w1")
    before = await run_of(storage, "r1")
    assert await claim_sent(storage, "r1", now=T0 + LEASE - 1) == []
    assert await run_of(storage, "r1") == before


async def test_due_only_false_takes_a_lapsed_lease_as_a_recovery(storage: Storage) -> None:
    await start(storage, "r1")
    await claim(storage, "r1", "w1")
    await turn(storage, "r1", "w1", wake_at=T0 + 500)  # keeps the lease, wakes much later
    (claimed,) = await claim_sent(storage, "r1", now=T0 + LEASE)
    assert (claimed.lease_owner, claimed.recovery_count) == ("w2", 1)


async def test_due_only_false_leaves_a_run_waiting_only_on_a_signal(storage: Storage) -> None:
    # Chosen semantics: "live" is told by a wake-up time, as in every runnable-runs query; a
    # run suspended without one has nothing to do until an outside signal makes it due.
    await sleeping(storage, "r1", until=None)
    assert (await run_of(storage, "r1")).wake_at is None
    assert await claim_sent(storage, "r1") == []


async def test_due_only_false_claims_only_the_listed_runs(storage: Storage) -> None:
    for run_id in ["r1", "r2", "r3"]:
        await sleeping(storage, run_id, until=T0 + 100)
    claimed = await storage.claim_runs(
        owner="w2",
        now=T0 + 1,
        lease_expires_at=T0 + 1 + LEASE,
        limit=10,
        run_ids=["r3", "r1"],
        due_only=False,
    )
    assert sorted(r.run_id for r in claimed) == ["r1", "r3"]
    assert (await run_of(storage, "r2")).lease_owner is None


# --- take_due_runs -------------------------------------------------------------------------------


async def test_take_due_runs_takes_the_due_runs_earliest_first(storage: Storage) -> None:
    await sleeping(storage, "late", until=T0 + 3)
    await sleeping(storage, "early", until=T0 + 1)
    await sleeping(storage, "mid", until=T0 + 2)
    await sleeping(storage, "future", until=T0 + 50)
    before = {r: await run_of(storage, r) for r in ["late", "early", "mid", "future"]}

    taken = await storage.take_due_runs(now=T0 + 10, until=UNTIL, limit=10)

    assert taken == ["early", "mid", "late"]
    for run_id in taken:
        # Only wake_at moves: lease, status, recovery count and the rest stay.
        assert await run_of(storage, run_id) == replace(before[run_id], wake_at=UNTIL)
    assert await run_of(storage, "future") == before["future"]


async def test_take_due_runs_respects_limit_and_workflow_names(storage: Storage) -> None:
    await start(storage, "a1", workflow="a", now=T0)
    await start(storage, "b1", workflow="b", now=T0 + 1)
    await start(storage, "a2", workflow="a", now=T0 + 2)
    await start(storage, "a3", workflow="a", now=T0 + 3)

    assert await storage.take_due_runs(now=T0 + 5, until=UNTIL, limit=0) == []
    assert await storage.take_due_runs(now=T0 + 5, until=UNTIL, limit=5, workflow_names=[]) == []
    assert await storage.take_due_runs(now=T0 + 5, until=UNTIL, limit=2, workflow_names=["a"]) == [
        "a1",
        "a2",
    ]
    assert await storage.take_due_runs(now=T0 + 5, until=UNTIL, limit=5) == ["b1", "a3"]


async def test_a_taken_run_is_not_due_again_before_until(storage: Storage) -> None:
    await start(storage, "r1")
    assert await storage.take_due_runs(now=T0, until=UNTIL, limit=10) == ["r1"]

    assert await storage.take_due_runs(now=UNTIL - 1, until=UNTIL + 60, limit=10) == []
    assert await ids_claimable(storage, UNTIL - 1) == []
    assert await storage.next_wake_at() == UNTIL

    # The message was lost: at ``until`` the run is due again, and sent again.
    assert await storage.take_due_runs(now=UNTIL, until=UNTIL + 60, limit=10) == ["r1"]
    assert (await run_of(storage, "r1")).wake_at == UNTIL + 60


async def test_a_taken_run_is_claimed_by_the_task_sent_for_it(storage: Storage) -> None:
    await start(storage, "r1")
    await storage.take_due_runs(now=T0, until=UNTIL, limit=10)
    (claimed,) = await claim_sent(storage, "r1", now=T0 + 1)
    assert (claimed.lease_owner, claimed.wake_at, claimed.recovery_count) == ("w2", UNTIL, 0)


async def test_take_due_runs_skips_live_leases_and_takes_lapsed_ones(storage: Storage) -> None:
    await start(storage, "held")
    await claim(storage, "held", "w1", now=T0)
    await start(storage, "lapsed", now=T0 - LEASE)
    await claim(storage, "lapsed", "w1", now=T0 - LEASE)  # its lease lapses at T0
    await start(storage, "ended")
    await end(storage, "ended")
    lapsed_before = await run_of(storage, "lapsed")

    assert await storage.take_due_runs(now=T0 + 1, until=UNTIL, limit=10) == ["lapsed"]

    lapsed = await run_of(storage, "lapsed")
    assert (lapsed.lease_owner, lapsed.lease_expires_at, lapsed.recovery_count) == (
        lapsed_before.lease_owner,
        lapsed_before.lease_expires_at,
        0,
    )
    assert lapsed.wake_at == UNTIL
    # Claiming it (the task sent for it) is what counts the recovery.
    (claimed,) = await claim_sent(storage, "lapsed", now=T0 + 2)
    assert claimed.recovery_count == 1


async def test_concurrent_takers_split_the_runs_without_overlap(sharing: list[Storage]) -> None:
    run_ids = [f"r{i:02}" for i in range(30)]
    for i, run_id in enumerate(run_ids):
        await start(sharing[0], run_id, now=T0 + i / 100)

    batches = await asyncio.gather(
        *(store.take_due_runs(now=T0 + 1, until=UNTIL, limit=8) for store in sharing)
    )

    taken = [run_id for batch in batches for run_id in batch]
    assert len(taken) == len(set(taken)), batches
    assert all(len(batch) <= 8 for batch in batches)
    rest = await sharing[0].take_due_runs(now=T0 + 1, until=UNTIL, limit=100)
    assert sorted(taken + rest) == run_ids
    for store in sharing[:2]:
        assert await store.take_due_runs(now=T0 + 1, until=UNTIL, limit=100) == []
