"""The storage contract of retention: ``delete_ended_runs`` on every backend (see conftest.py).

A run "ends at" the time of the append that gave it a terminal status; the fake clock starts at
``T0`` (storage_calls.py). Each test checks what a user pruning a database would: the runs that
ended before the bound are gone with their events, and nothing else changed.
"""

from __future__ import annotations

from storage_calls import LEASE, T0, claim, new_run, run_of, start, step_events, turn

from pyworkflow.events import TERMINAL_STATUSES, EventType, RunStatus
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import EventRecord, NewEvent, RunRecord

ENDINGS = {
    RunStatus.COMPLETED: EventType.WORKFLOW_COMPLETED,
    RunStatus.FAILED: EventType.WORKFLOW_FAILED,
    RunStatus.CANCELLED: EventType.WORKFLOW_CANCELLED,
    RunStatus.CONTINUED_AS_NEW: EventType.WORKFLOW_CONTINUED_AS_NEW,
}


async def ended(
    storage: Storage,
    run_id: str,
    at: float,
    status: RunStatus = RunStatus.COMPLETED,
    *,
    started: float | None = None,
    key: str | None = None,
) -> None:
    """A run started at ``started`` (default: ``at - 5``) with three steps, ended at ``at``."""
    begun = at - 5 if started is None else started
    await start(storage, run_id, now=begun, key=key)
    await claim(storage, run_id, now=begun)
    await turn(storage, run_id, now=begun, events=step_events(3, run_id))
    await turn(
        storage,
        run_id,
        now=at,
        events=[NewEvent(ENDINGS[status], {"v": 1})],
        status=status,
        keep_lease=False,
    )
    assert (await run_of(storage, run_id)).completed_at == at


async def snapshot(
    storage: Storage, *run_ids: str
) -> dict[str, tuple[RunRecord, list[EventRecord]]]:
    return {r: (await run_of(storage, r), await storage.load_events(r)) for r in run_ids}


async def assert_gone(storage: Storage, *run_ids: str) -> None:
    for run_id in run_ids:
        assert await storage.get_run(run_id) is None, run_id
        assert await storage.load_events(run_id) == [], run_id


async def test_runs_that_ended_before_the_bound_go_with_their_events(storage: Storage) -> None:
    old, recent = [], []
    for i, status in enumerate(sorted(TERMINAL_STATUSES)):
        old.append(f"old-{status.value}")
        await ended(storage, old[-1], T0 + i, status)
        recent.append(f"recent-{status.value}")
        await ended(storage, recent[-1], T0 + 30 + i, status)
    kept = await snapshot(storage, *recent)

    gone = await storage.delete_ended_runs(ended_before=T0 + 25, limit=100)

    assert sorted(gone) == sorted(old)
    await assert_gone(storage, *old)
    assert await snapshot(storage, *recent) == kept
    assert all([e.seq for e in log] == [1, 2, 3, 4, 5] for _, log in kept.values())


async def test_the_bound_is_strict_and_counts_from_the_end_not_the_start(
    storage: Storage,
) -> None:
    await ended(storage, "at_bound", T0 + 50)
    # Started long before the bound, ended after it: a long-running run is kept.
    await ended(storage, "long", T0 + 60, started=T0 - 10_000)
    await ended(storage, "just_before", T0 + 49.5)
    gone = await storage.delete_ended_runs(ended_before=T0 + 50, limit=100)
    assert gone == ["just_before"]
    assert (await run_of(storage, "at_bound")).status is RunStatus.COMPLETED
    assert (await run_of(storage, "long")).status is RunStatus.COMPLETED


async def test_live_runs_are_never_deleted_however_old(storage: Storage) -> None:
    old = T0 - 100_000
    await start(storage, "pending", now=old)
    await start(storage, "leased", now=old, owner="w1", lease_expires_at=old + LEASE)
    await start(storage, "suspended", now=old)
    await claim(storage, "suspended", now=old)
    await turn(
        storage,
        "suspended",
        now=old,
        events=[NewEvent(EventType.SLEEP_STARTED, {"v": 1})],
        status=RunStatus.SUSPENDED,
        wake_at=old + 86400 * 365,
        keep_lease=False,
    )
    await start(storage, "running", now=old)
    await claim(storage, "running", now=old)
    await turn(storage, "running", now=old, status=RunStatus.RUNNING, events=step_events(2))
    # Failed long ago, then resumed by hand: live again, so it stays.
    await ended(storage, "resumed", old + 1, RunStatus.FAILED)
    await storage.reopen_failed_run("resumed", now=old + 2, payload={"v": 1})
    live = ["pending", "leased", "suspended", "running", "resumed"]
    before = await snapshot(storage, *live)

    assert await storage.delete_ended_runs(ended_before=T0 + 100_000, limit=100) == []
    assert await snapshot(storage, *live) == before


async def test_limit_bounds_each_call_and_repeated_calls_finish_the_job(
    storage: Storage,
) -> None:
    names = [f"r{i}" for i in range(7)]
    for i, name in enumerate(names):
        await ended(storage, name, T0 + i)
    await ended(storage, "young", T0 + 1000)

    assert await storage.delete_ended_runs(ended_before=T0 + 100, limit=0) == []
    batches = []
    while batch := await storage.delete_ended_runs(ended_before=T0 + 100, limit=3):
        assert len(batch) <= 3
        batches.append(batch)
    assert [len(b) for b in batches] == [3, 3, 1]
    assert sorted(r for b in batches for r in b) == names
    await assert_gone(storage, *names)
    assert (await run_of(storage, "young")).status is RunStatus.COMPLETED


async def test_deleting_again_changes_nothing(storage: Storage) -> None:
    await ended(storage, "old", T0)
    await ended(storage, "young", T0 + 1000)
    await start(storage, "live", now=T0 - 1000)
    assert await storage.delete_ended_runs(ended_before=T0 + 500, limit=10) == ["old"]
    after_first = await snapshot(storage, "young", "live")
    assert await storage.delete_ended_runs(ended_before=T0 + 500, limit=10) == []
    assert await storage.delete_ended_runs(ended_before=T0 + 500, limit=10) == []
    assert await snapshot(storage, "young", "live") == after_first
    await assert_gone(storage, "old")


async def test_a_deleted_runs_idempotency_key_starts_a_new_run(storage: Storage) -> None:
    await ended(storage, "first", T0, key="order-7")
    assert await storage.delete_ended_runs(ended_before=T0 + 1, limit=10) == ["first"]
    record, created = await storage.create_run(new_run("second", key="order-7", now=T0 + 2))
    assert created
    assert record.run_id == "second"


async def test_other_runs_keep_their_events_and_can_still_be_appended_to(
    storage: Storage,
) -> None:
    await ended(storage, "old", T0)
    await start(storage, "live", now=T0 - 10)
    await claim(storage, "live", now=T0 - 10)
    await turn(storage, "live", now=T0 - 10, events=step_events(2, "live"))
    await storage.delete_ended_runs(ended_before=T0 + 1, limit=10)
    await turn(storage, "live", now=T0 + 2, events=step_events(1, "more"))
    assert [e.seq for e in await storage.load_events("live")] == [1, 2, 3, 4]
