"""The storage contract for queues: a run keeps its queue, and a claim takes only its queues'.

Each test runs against every backend (see conftest.py), on the fake clock of storage_calls.py.
"""

from __future__ import annotations

from storage_calls import LEASE, T0, claim, run_of, start, turn

from pyworkflow.events import RunStatus
from pyworkflow.queues import DEFAULT_QUEUE
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import NewRun


async def claimed_ids(storage: Storage, queues: list[str] | None, now: float = T0) -> list[str]:
    claimed = await storage.claim_runs(
        owner="w1", now=now, lease_expires_at=now + LEASE, limit=10, queues=queues
    )
    return sorted(r.run_id for r in claimed)


async def test_a_run_keeps_its_queue_and_defaults_to_the_default_queue(storage: Storage) -> None:
    await start(storage, "billed", queue="billing")
    await start(storage, "plain")
    assert (await run_of(storage, "billed")).queue == "billing"
    assert (await run_of(storage, "plain")).queue == DEFAULT_QUEUE == "pyworkflow"
    listed = {r.run_id: r.queue for r in await storage.list_runs()}
    assert listed == {"billed": "billing", "plain": "pyworkflow"}


async def test_a_claim_takes_only_runs_of_the_queues_it_names(storage: Storage) -> None:
    await start(storage, "b1", queue="billing")
    await start(storage, "r1", queue="reports")
    await start(storage, "p1")
    await start(storage, "b2", queue="billing", now=T0 - 1)
    assert await claimed_ids(storage, ["billing"]) == ["b1", "b2"]
    assert await claimed_ids(storage, ["nobody"]) == []
    assert await claimed_ids(storage, ["reports", DEFAULT_QUEUE]) == ["p1", "r1"]
    for run_id in ("b1", "b2", "r1", "p1"):
        assert (await run_of(storage, run_id)).lease_owner == "w1"


async def test_no_queue_claims_nothing_and_none_claims_every_queue(storage: Storage) -> None:
    await start(storage, "b1", queue="billing")
    await start(storage, "p1")
    assert await claimed_ids(storage, []) == []
    assert (await run_of(storage, "b1")).lease_owner is None
    assert await claimed_ids(storage, None) == ["b1", "p1"]


async def test_the_queue_filter_keeps_earliest_first_and_the_limit(storage: Storage) -> None:
    for offset, run_id, queue in [(3, "a", "q"), (1, "b", "other"), (2, "c", "q"), (0, "d", "q")]:
        await start(storage, run_id, now=T0 + offset, queue=queue)
    claimed = await storage.claim_runs(
        owner="w1", now=T0 + 10, lease_expires_at=T0 + 40, limit=2, queues=["q"]
    )
    assert [r.run_id for r in claimed] == ["d", "c"]


async def test_a_lapsed_lease_is_taken_over_only_by_a_worker_of_the_runs_queue(
    storage: Storage,
) -> None:
    await start(storage, "b1", queue="billing")
    await claim(storage, "b1", owner="dead")
    later = T0 + LEASE + 1
    assert await claimed_ids(storage, [DEFAULT_QUEUE], now=later) == []
    claimed = await storage.claim_runs(
        owner="w2", now=later, lease_expires_at=later + LEASE, limit=10, queues=["billing"]
    )
    assert [(r.run_id, r.previous_owner, r.recovery_count) for r in claimed] == [("b1", "dead", 1)]


async def test_next_wake_at_counts_only_the_queues_it_names(storage: Storage) -> None:
    await start(storage, "b1", queue="billing", now=T0 + 5)
    await start(storage, "p1", now=T0 + 9)
    assert await storage.next_wake_at(queues=["billing"]) == T0 + 5
    assert await storage.next_wake_at(queues=[DEFAULT_QUEUE]) == T0 + 9
    assert await storage.next_wake_at(queues=["nobody"]) is None
    assert await storage.next_wake_at(queues=[]) is None
    assert await storage.next_wake_at() == T0 + 5


async def test_turns_and_runs_started_by_an_append_keep_their_queues(storage: Storage) -> None:
    await start(storage, "parent", queue="billing")
    await claim(storage, "parent", owner="w1")
    child = NewRun(
        run_id="child",
        workflow_name="wf",
        args={"args": [], "kwargs": {}},
        started_payload={"v": 1},
        now=T0,
        parent_run_id="parent",
        queue="reports",
    )
    await turn(storage, "parent", "w1", new_runs=[child], status=RunStatus.SUSPENDED)
    assert (await run_of(storage, "parent")).queue == "billing"
    assert (await run_of(storage, "child")).queue == "reports"
    assert await claimed_ids(storage, ["reports"]) == ["child"]
