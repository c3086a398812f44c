"""The storage contract for lease owners: announce, withdraw, list_owners, take_over_dead_owners.

Each test runs against every backend, on several storage objects of one database where the
test is about another process (``sharing``; on memory the objects are one). An owner that
withdrew stands for one that died: the backends' own signs of death (a process's lock file,
its PostgreSQL session) are killed for real in tests/executors/test_dead_owners.py.
"""

from __future__ import annotations

import os
import socket

from storage_calls import LEASE, T0, claim, ids_claimable, run_of, start, turn

from pyworkflow.events import RunStatus
from pyworkflow.storage.protocol import Storage


async def test_a_dead_owners_runs_are_claimable_at_once_as_recoveries(
    sharing: list[Storage],
) -> None:
    mine, theirs = sharing[0], sharing[1]
    await mine.announce_owner("a", now=T0)
    await start(mine, "r1")
    await claim(mine, "r1", owner="a")
    await turn(mine, "r1", owner="a", status=RunStatus.RUNNING, wake_at=T0 + 100)
    await start(mine, "other")
    await claim(mine, "other", owner="b")  # never announced: left to its lease

    assert await theirs.take_over_dead_owners(now=T0 + 1) == []  # "a" is alive
    assert await ids_claimable(theirs, T0 + 1) == []

    await mine.withdraw_owner("a")
    assert await theirs.take_over_dead_owners(now=T0 + 2) == ["a"]
    taken = await theirs.claim_runs(
        owner="c", now=T0 + 2, lease_expires_at=T0 + 2 + LEASE, limit=10
    )
    assert [(r.run_id, r.recovery_count, r.previous_owner) for r in taken] == [("r1", 1, "a")]
    assert (await run_of(theirs, "other")).lease_owner == "b"
    # Taken over once: the next look finds nobody more.
    assert await theirs.take_over_dead_owners(now=T0 + 3) == []


async def test_taking_over_leaves_a_dead_owners_ended_and_sleeping_runs_as_they_are(
    storage: Storage,
) -> None:
    await storage.announce_owner("a", now=T0)
    await start(storage, "sleeps")
    await claim(storage, "sleeps", owner="a")
    await turn(storage, "sleeps", owner="a", keep_lease=False, wake_at=T0 + 500)
    await storage.withdraw_owner("a")
    assert await storage.take_over_dead_owners(now=T0 + 1) == ["a"]
    record = await run_of(storage, "sleeps")
    assert (record.lease_owner, record.wake_at) == (None, T0 + 500)


async def test_a_dead_owners_step_leases_lapse_and_their_runs_come_due(
    sharing: list[Storage],
) -> None:
    mine, theirs = sharing[0], sharing[1]
    await mine.announce_owner("host_1:9", now=T0)
    await start(mine, "r1")
    await claim(mine, "r1", owner="driver")
    await turn(mine, "r1", owner="driver", keep_lease=False, wake_at=T0 + 60)  # the watchdog
    await mine.acquire_step(
        "r1", "s#1", attempt=1, owner="host_1:9/task-1", now=T0, lease_expires_at=T0 + LEASE
    )
    # LIKE would read "_" as any character: this delivery belongs to another, live owner.
    await mine.acquire_step(
        "r1", "s#2", attempt=1, owner="hostX1:9/task-2", now=T0, lease_expires_at=T0 + LEASE
    )
    await mine.withdraw_owner("host_1:9")

    assert await theirs.take_over_dead_owners(now=T0 + 1) == ["host_1:9"]

    leases = {lease.step_id: lease for lease in await theirs.list_step_leases("r1")}
    assert leases["s#1"].lease_expires_at == T0 + 1
    assert leases["s#2"].lease_expires_at == T0 + LEASE
    assert (await run_of(theirs, "r1")).wake_at == T0 + 1
    retaken = await theirs.acquire_step(
        "r1", "s#1", attempt=1, owner="w2/task-1", now=T0 + 1, lease_expires_at=T0 + 1 + LEASE
    )
    assert retaken is not None
    assert retaken.deliveries == 2


async def test_an_owner_announced_again_is_alive_again(sharing: list[Storage]) -> None:
    mine, theirs = sharing[0], sharing[1]
    await mine.announce_owner("a", now=T0)
    await mine.withdraw_owner("a")
    await mine.announce_owner("a", now=T0 + 1)
    await start(mine, "r1")
    await claim(mine, "r1", owner="a", now=T0 + 1)
    assert await theirs.take_over_dead_owners(now=T0 + 2) == []
    assert (await run_of(theirs, "r1")).lease_expires_at == T0 + 1 + LEASE


async def test_list_owners_shows_who_announced_and_whether_alive(
    sharing: list[Storage],
) -> None:
    # Owner names as executors make them (host:pid:id); host and pid are the announcing
    # process's (``worker status`` shows them).
    here = f"{socket.gethostname()}:{os.getpid()}"
    first, second = f"{here}:one", f"{here}:two"
    mine, theirs = sharing[0], sharing[1]
    assert await theirs.list_owners() == []
    await mine.announce_owner(first, now=T0)
    await mine.announce_owner(second, now=T0 + 1)
    await start(mine, "r1")
    await claim(mine, "r1", owner=first)

    listed = {o.owner: o for o in await theirs.list_owners()}
    assert set(listed) == {first, second}
    for owner in listed.values():
        assert (owner.host, owner.pid, owner.alive) == (socket.gethostname(), os.getpid(), True)
    # Where a backend keeps when an owner announced itself, it is the announcement's time.
    assert listed[first].started_at in (None, T0)
    assert listed[second].started_at in (None, T0 + 1)

    await mine.withdraw_owner(first)
    alive = {o.owner: o.alive for o in await theirs.list_owners()}
    assert alive == {first: False, second: True}
    # Listing writes nothing: the dead owner's lease still stands, and it is still there to
    # be taken over (once).
    assert len(await theirs.list_owners()) == 2
    assert (await run_of(theirs, "r1")).lease_owner == first
    assert await theirs.take_over_dead_owners(now=T0 + 2) == [first]
    assert [o.owner for o in await theirs.list_owners()] == [second]
    await mine.withdraw_owner(second)
    assert await theirs.take_over_dead_owners(now=T0 + 3) == [second]
    assert await theirs.list_owners() == []
