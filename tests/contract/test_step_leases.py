"""The storage contract of step leases: one attempt of a step executed away from its run's driver.

Each test runs against every backend (conftest.py). A Celery step task takes the lease of its
attempt before executing it (``acquire_step``), renews it while the step runs, and releases it
once the outcome is logged; duplicate broker messages find it taken, and ``deliveries`` counts
how often the attempt was taken so a step that keeps killing its worker can be bounded.
"""

from __future__ import annotations

import asyncio

from storage_calls import LEASE, T0, claim, end, run_of, start, turn

from pyworkflow.events import RunStatus
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import StepLease

STEP = "charge#1"


async def take(
    storage: Storage,
    owner: str,
    *,
    now: float = T0,
    attempt: int = 1,
    run_id: str = "r1",
    step_id: str = STEP,
) -> StepLease | None:
    """``owner`` takes the lease of ``attempt`` at ``now``, for ``LEASE`` seconds."""
    return await storage.acquire_step(
        run_id, step_id, attempt=attempt, owner=owner, now=now, lease_expires_at=now + LEASE
    )


def lease(
    owner: str | None, expires: float, deliveries: int, attempt: int = 1, step_id: str = STEP
) -> StepLease:
    return StepLease("r1", step_id, attempt, owner, expires, deliveries)


# --- acquire_step --------------------------------------------------------------------------------


async def test_acquire_creates_the_row_and_counts_one_delivery(storage: Storage) -> None:
    await start(storage, "r1")
    assert await storage.list_step_leases("r1") == []

    taken = await take(storage, "a")

    assert taken == lease("a", T0 + LEASE, 1)
    assert isinstance(taken, StepLease)
    assert await storage.list_step_leases("r1") == [taken]


async def test_acquire_leaves_the_run_alone(storage: Storage) -> None:
    await start(storage, "r1")
    await claim(storage, "r1")
    await turn(storage, "r1", status=RunStatus.RUNNING, wake_at=T0 + 100, keep_lease=False)
    before = await run_of(storage, "r1")
    await take(storage, "a", now=T0 + 1)
    assert await run_of(storage, "r1") == before


async def test_another_owner_is_refused_while_the_lease_lives(storage: Storage) -> None:
    await start(storage, "r1")
    first = await take(storage, "a")

    assert await take(storage, "b", now=T0 + LEASE - 1) is None
    assert await storage.list_step_leases("r1") == [first]


async def test_another_owner_takes_a_lapsed_lease_and_counts_a_second_delivery(
    storage: Storage,
) -> None:
    await start(storage, "r1")
    await take(storage, "a")

    # A lease expiring exactly now has lapsed.
    second = await take(storage, "b", now=T0 + LEASE)

    assert second == lease("b", T0 + 2 * LEASE, 2)
    assert await storage.list_step_leases("r1") == [second]
    assert await take(storage, "a", now=T0 + LEASE + 1) is None, "the first owner lost it"


async def test_the_holder_takes_its_lease_again(storage: Storage) -> None:
    await start(storage, "r1")
    await take(storage, "a")

    again = await take(storage, "a", now=T0 + 5)

    assert again == lease("a", T0 + 5 + LEASE, 2)
    assert await storage.list_step_leases("r1") == [again]


async def test_another_attempt_starts_afresh(storage: Storage) -> None:
    await start(storage, "r1")
    await take(storage, "a")
    await take(storage, "a", now=T0 + 1)

    # Attempt 1 is over (its failure was logged and a retry sent): attempt 2 is taken even
    # while attempt 1's lease would still live, and counts from one again.
    retry = await take(storage, "b", now=T0 + 2, attempt=2)

    assert retry == lease("b", T0 + 2 + LEASE, 1, attempt=2)
    assert await storage.list_step_leases("r1") == [retry]
    assert await take(storage, "a", now=T0 + 3, attempt=2) is None


async def test_a_released_attempt_is_taken_afresh(storage: Storage) -> None:
    await start(storage, "r1")
    await take(storage, "a")
    await storage.release_step("r1", STEP, owner="a")
    assert await take(storage, "b", now=T0 + 1) == lease("b", T0 + 1 + LEASE, 1)


async def test_acquire_on_an_unknown_run_is_none_and_writes_nothing(storage: Storage) -> None:
    assert await take(storage, "a", run_id="ghost") is None
    assert await storage.list_step_leases("ghost") == []
    assert await storage.get_run("ghost") is None


async def test_acquire_on_an_ended_run_is_none_and_writes_nothing(storage: Storage) -> None:
    await start(storage, "r1")
    held = await take(storage, "a", step_id="held#1")
    await end(storage, "r1", RunStatus.CANCELLED, now=T0 + 1)
    before = await run_of(storage, "r1")

    assert await take(storage, "b", now=T0 + 2, step_id="new#1") is None
    assert await take(storage, "a", now=T0 + 2, step_id="held#1") is None, "not even the holder"
    assert await take(storage, "b", now=T0 + 2 * LEASE, step_id="held#1") is None

    assert await storage.list_step_leases("r1") == [held]
    assert await run_of(storage, "r1") == before


async def test_a_failed_run_resumed_takes_leases_again(storage: Storage) -> None:
    await start(storage, "r1")
    await end(storage, "r1", RunStatus.FAILED)
    assert await take(storage, "a", now=T0 + 1) is None
    await storage.reopen_failed_run("r1", now=T0 + 2, payload={"v": 1})
    assert await take(storage, "a", now=T0 + 3) == lease("a", T0 + 3 + LEASE, 1)


async def test_leases_of_steps_and_runs_are_apart(storage: Storage) -> None:
    await start(storage, "r1")
    await start(storage, "r2")
    one = await take(storage, "a", step_id="s#1")
    two = await take(storage, "b", step_id="s#2")
    other_run = await take(storage, "c", run_id="r2", step_id="s#1")

    assert other_run == StepLease("r2", "s#1", 1, "c", T0 + LEASE, 1)
    assert await storage.list_step_leases("r1") == [one, two]
    assert await storage.list_step_leases("r2") == [other_run]


# --- renew_step ----------------------------------------------------------------------------------


async def test_renew_by_the_holder_extends_the_lease(storage: Storage) -> None:
    await start(storage, "r1")
    await take(storage, "a")

    assert await storage.renew_step("r1", STEP, owner="a", now=T0 + 10, lease_expires_at=T0 + 99)

    assert await storage.list_step_leases("r1") == [lease("a", T0 + 99, 1)]
    assert await take(storage, "b", now=T0 + LEASE + 1) is None, "renewed: still live"


async def test_renew_of_a_lapsed_lease_nobody_took_succeeds(storage: Storage) -> None:
    await start(storage, "r1")
    await take(storage, "a")
    later = T0 + 3 * LEASE
    assert await storage.renew_step("r1", STEP, owner="a", now=later, lease_expires_at=later + 5)
    assert await storage.list_step_leases("r1") == [lease("a", later + 5, 1)]


async def test_renew_by_a_stranger_is_false_and_writes_nothing(storage: Storage) -> None:
    await start(storage, "r1")
    held = await take(storage, "a")
    assert not await storage.renew_step("r1", STEP, owner="b", now=T0 + 1, lease_expires_at=T0 + 99)
    assert await storage.list_step_leases("r1") == [held]


async def test_renew_after_a_takeover_is_false(storage: Storage) -> None:
    await start(storage, "r1")
    await take(storage, "a")
    taken_over = await take(storage, "b", now=T0 + LEASE)
    assert not await storage.renew_step(
        "r1", STEP, owner="a", now=T0 + LEASE, lease_expires_at=T0 + 99
    )
    assert await storage.list_step_leases("r1") == [taken_over]


async def test_renew_after_release_or_of_no_row_is_false(storage: Storage) -> None:
    await start(storage, "r1")
    await take(storage, "a")
    await storage.release_step("r1", STEP, owner="a")
    assert not await storage.renew_step("r1", STEP, owner="a", now=T0, lease_expires_at=T0 + 9)
    assert not await storage.renew_step("r1", "x#1", owner="a", now=T0, lease_expires_at=T0 + 9)
    assert not await storage.renew_step("ghost", STEP, owner="a", now=T0, lease_expires_at=T0)
    assert await storage.list_step_leases("r1") == []


# --- release_step --------------------------------------------------------------------------------


async def test_release_by_the_holder_deletes_the_row(storage: Storage) -> None:
    await start(storage, "r1")
    await take(storage, "a", step_id="s#1")
    kept = await take(storage, "a", step_id="s#2")
    await storage.release_step("r1", "s#1", owner="a")
    assert await storage.list_step_leases("r1") == [kept]


async def test_release_by_a_stranger_is_a_no_op(storage: Storage) -> None:
    await start(storage, "r1")
    held = await take(storage, "a")
    await storage.release_step("r1", STEP, owner="b")
    await storage.release_step("r1", "other#1", owner="a")
    await storage.release_step("ghost", STEP, owner="a")
    assert await storage.list_step_leases("r1") == [held]


async def test_a_lapsed_lease_is_released_by_its_holder_only(storage: Storage) -> None:
    await start(storage, "r1")
    await take(storage, "a")
    taken_over = await take(storage, "b", now=T0 + LEASE)
    await storage.release_step("r1", STEP, owner="a")  # the first worker, back from a stall
    assert await storage.list_step_leases("r1") == [taken_over]


# --- list_step_leases and retention --------------------------------------------------------------


async def test_list_step_leases_by_step_id(storage: Storage) -> None:
    await start(storage, "r1")
    for step_id in ["c#1", "a#2", "b#1", "a#1"]:
        await take(storage, "w", step_id=step_id)
    listed = await storage.list_step_leases("r1")
    assert [s.step_id for s in listed] == ["a#1", "a#2", "b#1", "c#1"]
    assert await storage.list_step_leases("ghost") == []


async def test_retention_deletes_step_leases_with_their_run(storage: Storage) -> None:
    await start(storage, "old")
    await start(storage, "kept")
    await take(storage, "a", run_id="old", step_id="s#1")
    await take(storage, "a", run_id="old", step_id="s#2")
    kept = await take(storage, "a", run_id="kept", step_id="s#1")
    await end(storage, "old", now=T0 + 1)
    await end(storage, "kept", now=T0 + 200)

    assert await storage.delete_ended_runs(ended_before=T0 + 100, limit=10) == ["old"]

    assert await storage.list_step_leases("old") == []
    assert await storage.list_step_leases("kept") == [kept]
    # Nothing of the pruned run lingers: a new run of the same id starts without leases.
    await start(storage, "old", now=T0 + 300)
    assert await take(storage, "b", run_id="old", step_id="s#1", now=T0 + 300) == StepLease(
        "old", "s#1", 1, "b", T0 + 300 + LEASE, 1
    )


# --- races ---------------------------------------------------------------------------------------


async def test_of_20_concurrent_acquires_exactly_one_wins(sharing: list[Storage]) -> None:
    await start(sharing[0], "r1")
    outcomes = await asyncio.gather(
        *(
            take(sharing[i % len(sharing)], f"owner-{i}", now=T0 + 1, step_id=STEP)
            for i in range(20)
        )
    )
    won = [o for o in outcomes if o is not None]
    assert len(won) == 1, outcomes
    assert won[0] == lease(f"owner-{outcomes.index(won[0])}", T0 + 1 + LEASE, 1)
    assert await sharing[-1].list_step_leases("r1") == won


async def test_of_20_concurrent_takeovers_of_a_lapsed_lease_exactly_one_wins(
    sharing: list[Storage],
) -> None:
    await start(sharing[0], "r1")
    await take(sharing[0], "dead")
    now = T0 + LEASE + 1
    outcomes = await asyncio.gather(
        *(take(sharing[i % len(sharing)], f"owner-{i}", now=now) for i in range(20))
    )
    won = [o for o in outcomes if o is not None]
    assert len(won) == 1, outcomes
    assert won[0] == lease(f"owner-{outcomes.index(won[0])}", now + LEASE, 2)
    assert await sharing[-1].list_step_leases("r1") == won
