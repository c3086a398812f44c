"""The storage contract for runs: create_run, get_run, list_runs, reopen_failed_run.

Each test runs against every backend (see conftest.py). Times are plain floats from a fake clock
starting at T0 (storage_calls.py); no test sleeps. Appends, leases and outside signals have files
of their own (test_appends.py, test_leases.py, test_signals.py); the optional ChangeNotifier
protocol is in test_notifications.py.
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
    new_run,
    run_of,
    start,
    step_events,
    turn,
)

from pyworkflow.events import EventType, RunStatus
from pyworkflow.exceptions import (
    IdempotencyConflictError,
    InvalidRunStateError,
    PyWorkflowError,
    RunNotFoundError,
)
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import (
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


async def test_list_runs_by_run_id_prefix(storage: Storage) -> None:
    for i, run_id in enumerate(["ab1", "ab2", "ac1", "b", "a", "ab\uffff", "A"]):
        await start(storage, run_id, now=T0 + i)

    async def ids(prefix: str, **more: Any) -> list[str]:
        return [r.run_id for r in await storage.list_runs(run_id_prefix=prefix, **more)]

    assert await ids("ab") == ["ab\uffff", "ab2", "ab1"]
    assert await ids("a") == ["ab\uffff", "a", "ac1", "ab2", "ab1"]  # case-sensitive
    assert await ids("ab2") == ["ab2"]
    assert await ids("zz") == []
    assert await ids("ab", limit=1, before=RunCursor(T0 + 1, "ab2")) == ["ab1"]
    # Characters that LIKE would treat as wildcards are plain text here.
    await start(storage, "x%_1", now=T0 + 9)
    await start(storage, "xab", now=T0 + 10)
    assert await ids("x%") == ["x%_1"]
    assert await ids("x_") == []


async def test_list_runs_by_tags_keeps_runs_carrying_every_one(storage: Storage) -> None:
    await start(storage, "eu", now=T0 + 1, tags=("billing", "eu"))
    await start(storage, "us", now=T0 + 2, tags=("billing", "us_1%"))
    await start(storage, "plain", now=T0 + 3)
    await start(storage, "sub", workflow="other", now=T0 + 4, tags=("bill", "eu\\x"))
    assert (await run_of(storage, "eu")).tags == ("billing", "eu")
    assert (await run_of(storage, "plain")).tags == ()

    async def ids(*tags: str, **more: Any) -> list[str]:
        return [r.run_id for r in await storage.list_runs(tags=tags, **more)]

    assert await ids("billing") == ["us", "eu"]
    assert await ids("billing", "eu") == ["eu"]
    assert await ids("eu", "billing") == ["eu"]
    assert await ids("eu", "nope") == []
    assert await ids() == ["sub", "plain", "us", "eu"]  # no tag given: every run
    # Whole tags only: neither a part of one nor LIKE's wildcards and escape match more.
    assert await ids("bil") == []
    assert await ids("us_1") == []
    assert await ids("us_1%") == ["us"]
    assert await ids("us%") == []
    assert await ids("b_ll") == []
    assert await ids("eu\\x") == ["sub"]
    assert await ids("eu\\") == []
    # With the other filters and paging.
    assert await ids("billing", statuses=[RunStatus.PENDING], limit=1) == ["us"]
    assert await ids("billing", before=RunCursor(T0 + 2, "us")) == ["eu"]
    assert await ids("eu", workflow_name="other") == []
    assert await ids("bill", workflow_name="other") == ["sub"]


async def test_count_runs_per_status_and_per_workflow(storage: Storage) -> None:
    assert await storage.count_runs() == {}
    assert await storage.count_workflow_runs() == {}
    await start(storage, "p1", workflow="pay", now=T0 + 1)
    await start(storage, "p2", workflow="pay", now=T0 + 2)
    await start(storage, "s1", workflow="ship", now=T0 + 3)
    await claim(storage, "p2", now=T0 + 5)
    await turn(storage, "p2", now=T0 + 5, status=RunStatus.FAILED)
    assert await storage.count_runs() == {RunStatus.PENDING: 2, RunStatus.FAILED: 1}
    assert await storage.count_runs(workflow_name="pay") == {
        RunStatus.PENDING: 1,
        RunStatus.FAILED: 1,
    }
    assert await storage.count_runs(workflow_name="nope") == {}
    # since: by creation time, inclusive.
    assert await storage.count_runs(since=T0 + 2) == {RunStatus.PENDING: 1, RunStatus.FAILED: 1}
    assert await storage.count_runs(workflow_name="pay", since=T0 + 2) == {RunStatus.FAILED: 1}
    assert await storage.count_runs(since=T0 + 4) == {}
    assert await storage.count_workflow_runs() == {"pay": 2, "ship": 1}
    assert await storage.count_workflow_runs(since=T0 + 2) == {"pay": 1, "ship": 1}
    assert await storage.count_workflow_runs(since=T0 + 4) == {}


async def test_list_runs_pages_within_a_filter(storage: Storage) -> None:
    for i in range(6):
        await start(storage, f"r{i}", workflow="even" if i % 2 == 0 else "odd", now=T0 + i)
    page = await storage.list_runs(workflow_name="even", limit=2)
    assert [r.run_id for r in page] == ["r4", "r2"]
    rest = await storage.list_runs(
        workflow_name="even", limit=2, before=RunCursor(page[-1].created_at, page[-1].run_id)
    )
    assert [r.run_id for r in rest] == ["r0"]
