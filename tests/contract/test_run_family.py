"""The storage contract of related runs: children, continue-as-new, and what a run's end does.

Each test runs against every backend (conftest.py). A run's append creates its children and its
continue-as-new successor (``AppendWrite.new_runs``); its end, in the same transaction, requests
cancellation of its ``"cancel"``-policy children and signals its parent. The checks are what the
engine relies on: nothing of this happens for a refused append, and nothing touches runs it
should not.
"""

from __future__ import annotations

import dataclasses

import pytest
from storage_calls import (
    LEASE,
    T0,
    claim,
    end,
    ids_claimable,
    new_run,
    run_of,
    start,
    step_events,
    turn,
)

from pyworkflow.events import TERMINAL_STATUSES, EventType, RunStatus
from pyworkflow.exceptions import ConcurrencyConflictError
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import EventRecord, NewEvent, RunCursor, RunRecord

ENDED = sorted(TERMINAL_STATUSES)
CHILD_ENDINGS = [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED]


def started(child_id: str) -> NewEvent:
    return NewEvent(EventType.CHILD_WORKFLOW_STARTED, {"v": 1, "child_run_id": child_id})


async def records(storage: Storage, *run_ids: str) -> dict[str, RunRecord]:
    return {r: await run_of(storage, r) for r in run_ids}


# --- new_runs ------------------------------------------------------------------------------------


async def test_an_append_creates_its_new_runs_unleased_and_due(storage: Storage) -> None:
    await start(storage, "p")
    await claim(storage, "p")
    first = NewEvent(EventType.STEP_STARTED, {"v": 1, "step": "s#0"})
    child = new_run(
        "c1",
        workflow="child",
        now=T0 + 2,
        args={"n": [1, "ü"]},
        payload={"v": 1, "input": "c1"},
        parent="p",
        policy="abandon",
        # A lease given here is ignored: the parent's worker does not hold its children.
        owner="w1",
        lease_expires_at=T0 + 2 + LEASE,
    )
    child = dataclasses.replace(child, first_events=(first,))

    await turn(storage, "p", now=T0 + 2, events=[started("c1")], new_runs=[child])

    record = await run_of(storage, "c1")
    assert record == RunRecord(
        run_id="c1",
        workflow_name="child",
        status=RunStatus.PENDING,
        args={"n": [1, "ü"]},
        result=None,
        error=None,
        idempotency_key=None,
        parent_run_id="p",
        created_at=T0 + 2,
        updated_at=T0 + 2,
        completed_at=None,
        wake_at=T0 + 2,
        lease_owner=None,
        lease_expires_at=None,
        recovery_count=0,
        last_seq=2,
        signal_seq=0,
        cancel_requested=False,
        cancel_reason=None,
        parent_close_policy="abandon",
        continued_from=None,
        continued_to=None,
    )
    assert await storage.load_events("c1") == [
        EventRecord("c1", 1, EventType.WORKFLOW_STARTED, {"v": 1, "input": "c1"}, T0 + 2),
        EventRecord("c1", 2, EventType.STEP_STARTED, {"v": 1, "step": "s#0"}, T0 + 2),
    ]
    assert [e.type for e in await storage.load_events("p")] == [
        EventType.WORKFLOW_STARTED,
        EventType.CHILD_WORKFLOW_STARTED,
    ]
    assert await ids_claimable(storage, T0 + 2) == ["c1"]


async def test_a_refused_append_creates_no_run(storage: Storage) -> None:
    await start(storage, "p")
    await claim(storage, "p")
    child = new_run("c1", parent="p", policy="cancel")
    with pytest.raises(ConcurrencyConflictError):
        await turn(storage, "p", "w2", events=[started("c1")], new_runs=[child])
    with pytest.raises(ConcurrencyConflictError):
        await turn(storage, "p", expected_seq=0, events=[started("c1")], new_runs=[child])
    assert await storage.get_run("c1") is None
    assert await storage.load_events("c1") == []
    assert [r.run_id for r in await storage.list_runs()] == ["p"]


async def test_continue_as_new_links_both_runs(storage: Storage) -> None:
    await start(storage, "gp")
    await start(storage, "r1", parent="gp", policy="abandon")
    successor = new_run("r2", now=T0 + 3, parent="gp", policy="abandon", continued_from="r1")

    await end(storage, "r1", RunStatus.CONTINUED_AS_NEW, now=T0 + 3, new_runs=[successor])

    old, new = await run_of(storage, "r1"), await run_of(storage, "r2")
    assert (old.status, old.continued_to, old.continued_from) == (
        RunStatus.CONTINUED_AS_NEW,
        "r2",
        None,
    )
    assert (new.status, new.continued_from, new.continued_to) == (RunStatus.PENDING, "r1", None)
    assert (new.parent_run_id, new.parent_close_policy) == ("gp", "abandon")
    assert (new.wake_at, new.lease_owner, new.cancel_requested) == (T0 + 3, None, False)
    gp = await run_of(storage, "gp")
    assert (gp.signal_seq, gp.updated_at) == (0, T0), "the chain goes on: the parent waits"


# --- a run's end reaches its children ------------------------------------------------------------


@pytest.mark.parametrize("status", ENDED)
async def test_an_ending_run_cancels_its_live_cancel_policy_children(
    storage: Storage, status: RunStatus
) -> None:
    await start(storage, "p")
    await start(storage, "c-cancel", parent="p", policy="cancel")
    await start(storage, "c-default", parent="p")  # no policy: cancelled like "cancel"
    await start(storage, "c-leased", parent="p", policy="cancel")
    await claim(storage, "c-leased", "w2")
    await start(storage, "c-abandon", parent="p", policy="abandon")
    await start(storage, "c-ended", parent="p", policy="cancel")
    await end(storage, "c-ended", now=T0 + 1, owner="w3")
    await start(storage, "other", parent="q", policy="cancel")
    untouched = await records(storage, "c-abandon", "c-ended", "other")

    await end(storage, "p", status, now=T0 + 5)

    for child_id in ["c-cancel", "c-default", "c-leased"]:
        child = await run_of(storage, child_id)
        assert (child.cancel_requested, child.cancel_reason) == (True, "parent run p ended")
        assert (child.signal_seq, child.wake_at, child.updated_at) == (1, T0 + 5, T0 + 5)
        assert not child.status.is_terminal, "the child's own worker ends it"
        assert len(await storage.load_events(child_id)) == 1
    assert (await run_of(storage, "c-leased")).lease_owner == "w2"
    assert await records(storage, "c-abandon", "c-ended", "other") == untouched
    assert sorted(await ids_claimable(storage, T0 + 5)) == [
        "c-abandon",
        "c-cancel",
        "c-default",
        "other",
    ]


async def test_a_refused_ending_append_cancels_no_child(storage: Storage) -> None:
    await start(storage, "p")
    await claim(storage, "p")
    await start(storage, "c1", parent="p", policy="cancel")
    before = await run_of(storage, "c1")
    with pytest.raises(ConcurrencyConflictError):
        await turn(storage, "p", expected_seq=0, status=RunStatus.COMPLETED, keep_lease=False)
    assert await run_of(storage, "c1") == before


async def test_a_run_that_does_not_end_cancels_no_child(storage: Storage) -> None:
    await start(storage, "p")
    await claim(storage, "p")
    await start(storage, "c1", parent="p", policy="cancel")
    before = await run_of(storage, "c1")
    await turn(storage, "p", events=step_events(1), status=RunStatus.SUSPENDED, keep_lease=False)
    assert await run_of(storage, "c1") == before


# --- a run's end reaches its parent --------------------------------------------------------------


async def suspended_parent(storage: Storage, run_id: str = "p") -> RunRecord:
    """A parent waiting for its children: unleased, woken only by a signal."""
    await start(storage, run_id)
    await claim(storage, run_id)
    await turn(
        storage,
        run_id,
        events=[started("c1")],
        status=RunStatus.SUSPENDED,
        wake_at=None,
        keep_lease=False,
        new_runs=[new_run("c1", parent=run_id, policy="cancel")],
    )
    return await run_of(storage, run_id)


@pytest.mark.parametrize("status", CHILD_ENDINGS)
async def test_an_ending_child_signals_its_live_parent(storage: Storage, status: RunStatus) -> None:
    before = await suspended_parent(storage)
    assert before.wake_at is None

    await end(storage, "c1", status, now=T0 + 7, owner="w2")

    parent = await run_of(storage, "p")
    assert (parent.signal_seq, parent.wake_at, parent.updated_at) == (1, T0 + 7, T0 + 7)
    assert (parent.status, parent.cancel_requested) == (RunStatus.SUSPENDED, False)
    assert parent.last_seq == before.last_seq, "the parent's holder logs the end, not the child"
    assert await ids_claimable(storage, T0 + 7) == ["p"]


async def test_a_child_that_continues_as_new_does_not_signal_its_parent(storage: Storage) -> None:
    before = await suspended_parent(storage)
    successor = new_run("c1b", now=T0 + 7, parent="p", policy="cancel", continued_from="c1")
    await end(storage, "c1", RunStatus.CONTINUED_AS_NEW, now=T0 + 7, new_runs=[successor])
    assert await run_of(storage, "p") == before

    await end(storage, "c1b", now=T0 + 8, owner="w2")  # the chain's last run ends: signal
    parent = await run_of(storage, "p")
    assert (parent.signal_seq, parent.wake_at) == (1, T0 + 8)


async def test_an_ending_child_leaves_an_ended_parent_alone(storage: Storage) -> None:
    await start(storage, "p")
    await start(storage, "c1", parent="p", policy="abandon")
    await end(storage, "p", now=T0 + 1)
    before = await run_of(storage, "p")
    await end(storage, "c1", now=T0 + 2, owner="w2")
    assert await run_of(storage, "p") == before


async def test_a_parents_holder_sees_the_childs_end_in_its_append(storage: Storage) -> None:
    await start(storage, "p")
    await claim(storage, "p")
    await turn(storage, "p", events=[started("c1")], new_runs=[new_run("c1", parent="p")])
    await end(storage, "c1", now=T0 + 1, owner="w2")
    assert (await run_of(storage, "p")).lease_owner == "w1", "the lease stays with its holder"
    result = await turn(storage, "p", now=T0 + 2, status=RunStatus.SUSPENDED, keep_lease=False)
    assert result.signal_seq == 1
    assert (await run_of(storage, "p")).wake_at == T0 + 2, "the unseen signal keeps it due"


# --- reading the family --------------------------------------------------------------------------


async def test_list_runs_by_parent(storage: Storage) -> None:
    await start(storage, "p", now=T0)
    for i in range(5):
        await start(storage, f"c{i}", now=T0 + 1 + i, parent="p", policy="cancel")
    await start(storage, "x", now=T0 + 10, parent="q")
    await start(storage, "c0-grandchild", now=T0 + 11, parent="c0")
    await end(storage, "c3", now=T0 + 12)

    def ids(runs: list[RunRecord]) -> list[str]:
        return [r.run_id for r in runs]

    assert ids(await storage.list_runs(parent_run_id="p")) == ["c4", "c3", "c2", "c1", "c0"]
    assert ids(await storage.list_runs(parent_run_id="p", statuses=[RunStatus.COMPLETED])) == ["c3"]
    page = await storage.list_runs(parent_run_id="p", limit=2)
    assert ids(page) == ["c4", "c3"]
    cursor = RunCursor(page[-1].created_at, page[-1].run_id)
    assert ids(await storage.list_runs(parent_run_id="p", before=cursor)) == ["c2", "c1", "c0"]
    assert ids(await storage.list_runs(parent_run_id="nope")) == []
    assert len(await storage.list_runs()) == 8


async def test_every_read_returns_the_family_fields(storage: Storage) -> None:
    await start(storage, "c1", parent="p", policy="abandon", continued_from="c0")
    expected = ("p", "abandon", "c0", None)

    def family(run: RunRecord) -> tuple[str | None, ...]:
        return (run.parent_run_id, run.parent_close_policy, run.continued_from, run.continued_to)

    assert family(await run_of(storage, "c1")) == expected
    (listed,) = await storage.list_runs(parent_run_id="p")
    assert family(listed) == expected
    claimed = await claim(storage, "c1")
    assert family(claimed) == expected
    successor = new_run("c2", parent="p", policy="abandon", continued_from="c1")
    await end(storage, "c1", RunStatus.CONTINUED_AS_NEW, new_runs=[successor])
    assert family(await run_of(storage, "c1")) == ("p", "abandon", "c0", "c2")
