"""The storage contract of step offers: a step of a queue handed to the local workers serving it.

Each test runs against every backend (conftest.py). A driver that cannot execute a step here
(``@step(queue=...)`` of a queue this process does not serve) offers its attempt
(``offer_steps``); a worker of that queue lists the offers free to take
(``list_offered_steps``) and takes one with ``acquire_step``, as a Celery step task does.
"""

from __future__ import annotations

from storage_calls import LEASE, T0, end, start

from pyworkflow.events import RunStatus
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import StepLease, StepOffer

NAMES = ["wf"]


async def offered(
    storage: Storage,
    queues: list[str] | None = None,
    *,
    now: float = T0,
    names: list[str] | None = None,
    limit: int = 10,
) -> list[tuple[str, str, int, str | None]]:
    rows = await storage.list_offered_steps(
        queues=queues, workflow_names=NAMES if names is None else names, now=now, limit=limit
    )
    return [(row.run_id, row.step_id, row.attempt, row.queue) for row in rows]


async def test_an_offer_is_a_row_without_owner_listed_for_its_queue(storage: Storage) -> None:
    await start(storage, "r1")
    await storage.offer_steps("r1", [StepOffer("mail#1", 1, "email")], now=T0)

    assert await storage.list_step_leases("r1") == [
        StepLease("r1", "mail#1", 1, None, None, 0, "email", T0)
    ]
    assert await offered(storage, ["email"]) == [("r1", "mail#1", 1, "email")]
    assert await offered(storage) == [("r1", "mail#1", 1, "email")]  # a worker of every queue
    assert await offered(storage, ["billing"]) == []
    assert await offered(storage, []) == []
    # Only workers that have the run's workflow drive the turn that logs the outcome.
    assert await offered(storage, ["email"], names=["other"]) == []


async def test_taking_an_offer_counts_the_first_delivery_and_keeps_its_queue(
    storage: Storage,
) -> None:
    await start(storage, "r1")
    await storage.offer_steps("r1", [StepOffer("mail#1", 1, "email")], now=T0)

    taken = await storage.acquire_step(
        "r1", "mail#1", attempt=1, owner="w/1", now=T0 + 1, lease_expires_at=T0 + 1 + LEASE
    )

    assert taken == StepLease("r1", "mail#1", 1, "w/1", T0 + 1 + LEASE, 1, "email", T0)
    assert await offered(storage, ["email"], now=T0 + 2) == []  # taken, its lease live
    # Its worker died: the lapsed lease is offered again, and the next taker counts delivery 2.
    assert await offered(storage, ["email"], now=T0 + 1 + LEASE) == [("r1", "mail#1", 1, "email")]
    again = await storage.acquire_step(
        "r1", "mail#1", attempt=1, owner="v/1", now=T0 + 1 + LEASE, lease_expires_at=T0 + 99
    )
    assert again is not None
    assert (again.deliveries, again.queue) == (2, "email")


async def test_offering_again_leaves_an_offer_or_a_lease_of_the_same_attempt_alone(
    storage: Storage,
) -> None:
    await start(storage, "r1")
    await storage.offer_steps("r1", [StepOffer("mail#1", 1, "email")], now=T0)
    held = await storage.acquire_step(
        "r1", "mail#1", attempt=1, owner="w/1", now=T0, lease_expires_at=T0 + LEASE
    )

    await storage.offer_steps("r1", [StepOffer("mail#1", 1, "email")], now=T0 + 5)

    assert await storage.list_step_leases("r1") == [held]


async def test_an_offer_of_the_next_attempt_replaces_a_row_of_the_last(storage: Storage) -> None:
    await start(storage, "r1")
    await storage.offer_steps("r1", [StepOffer("mail#1", 1, "email")], now=T0)
    await storage.acquire_step(
        "r1", "mail#1", attempt=1, owner="w/1", now=T0, lease_expires_at=T0 + LEASE
    )

    await storage.offer_steps("r1", [StepOffer("mail#1", 2, "email")], now=T0 + 5)

    assert await storage.list_step_leases("r1") == [
        StepLease("r1", "mail#1", 2, None, None, 0, "email", T0 + 5)
    ]
    # The holder of attempt 1 drops nothing of attempt 2 when it is done.
    await storage.release_step("r1", "mail#1", owner="w/1")
    assert await offered(storage, ["email"], now=T0 + 5) == [("r1", "mail#1", 2, "email")]


async def test_offers_are_listed_oldest_first_up_to_the_limit(storage: Storage) -> None:
    for run_id in ("r1", "r2", "r3"):
        await start(storage, run_id)
    await storage.offer_steps("r2", [StepOffer("a#1", 1, "q"), StepOffer("b#1", 1, "q")], now=T0)
    await storage.offer_steps("r1", [StepOffer("a#1", 1, "q")], now=T0 + 1)
    await storage.offer_steps("r3", [StepOffer("a#1", 1, "other")], now=T0 - 1)

    assert await offered(storage, ["q"], limit=2) == [("r2", "a#1", 1, "q"), ("r2", "b#1", 1, "q")]
    assert await offered(storage, ["q", "other"], limit=0) == []
    assert [row[0] for row in await offered(storage, ["q", "other"])] == ["r3", "r2", "r2", "r1"]


async def test_no_offer_of_an_ended_or_unknown_run(storage: Storage) -> None:
    await start(storage, "r1")
    await start(storage, "r2")
    await storage.offer_steps("r1", [StepOffer("mail#1", 1, "email")], now=T0)
    await end(storage, "r1", RunStatus.CANCELLED)

    await storage.offer_steps("r2-unknown", [StepOffer("mail#1", 1, "email")], now=T0)
    await storage.offer_steps("r1", [StepOffer("mail#2", 1, "email")], now=T0)

    assert await offered(storage, ["email"]) == []
    assert await storage.list_step_leases("r2-unknown") == []
    assert [row.step_id for row in await storage.list_step_leases("r1")] in (["mail#1"], [])


async def test_a_celery_step_lease_is_no_offer(storage: Storage) -> None:
    await start(storage, "r1")
    await storage.acquire_step(
        "r1", "charge#1", attempt=1, owner="celery/1", now=T0, lease_expires_at=T0 + 1
    )

    assert await offered(storage, now=T0 + 5) == []


async def test_a_dead_owners_offered_step_is_free_at_once(sharing: list[Storage]) -> None:
    mine, theirs = sharing[0], sharing[1]
    await mine.announce_owner("host:1:ab", now=T0)
    await start(mine, "r1")
    await mine.offer_steps("r1", [StepOffer("mail#1", 1, "email")], now=T0)
    await mine.acquire_step(
        "r1", "mail#1", attempt=1, owner="host:1:ab/xyz", now=T0, lease_expires_at=T0 + LEASE
    )
    assert await offered(theirs, ["email"], now=T0 + 1) == []

    await mine.withdraw_owner("host:1:ab")  # stands for its death (see test_owners.py)
    assert await theirs.take_over_dead_owners(now=T0 + 1) == ["host:1:ab"]

    assert await offered(theirs, ["email"], now=T0 + 1) == [("r1", "mail#1", 1, "email")]


async def test_taking_another_attempt_than_the_one_offered_is_no_offer_any_more(
    storage: Storage,
) -> None:
    await start(storage, "r1")
    await storage.offer_steps("r1", [StepOffer("mail#1", 1, "email")], now=T0)

    taken = await storage.acquire_step(
        "r1", "mail#1", attempt=2, owner="c/1", now=T0, lease_expires_at=T0 + 1
    )

    assert taken == StepLease("r1", "mail#1", 2, "c/1", T0 + 1, 1)
    assert await offered(storage, ["email"], now=T0 + 5) == []
