"""Schedules in every storage: versioned writes, the tick's due query, and firing a slot.

Firing is the one that matters: the schedule's new state and its slot's run are written in one
transaction, so a slot is consumed exactly when its run exists, and of several schedulers that
read one version exactly one fires it.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from storage_calls import T0, end, new_run, run_of, start

from pyworkflow.events import EventType, RunStatus, ScheduleStatus
from pyworkflow.exceptions import ScheduleExistsError
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import NewRun, ScheduleFire, ScheduleRecord


def schedule(
    schedule_id: str = "s1",
    *,
    workflow: str = "wf",
    due_at: float | None = T0,
    status: ScheduleStatus = ScheduleStatus.ACTIVE,
) -> ScheduleRecord:
    return ScheduleRecord(
        schedule_id=schedule_id,
        workflow_name=workflow,
        spec={"cron": "0 9 * * 1-5", "timezone": "Europe/Prague", "ünïcode": "✓"},
        args={"args": [1], "kwargs": {"x": "y"}},
        overlap_policy="skip",
        catchup_window=None,
        status=status,
        next_slot_at=due_at,
        due_at=due_at,
        buffered=(),
        total_runs=0,
        skipped_runs=0,
        last_slot_at=None,
        last_run_id=None,
        created_at=T0 - 100,
        updated_at=T0 - 100,
    )


def slot_run(run_id: str, schedule_id: str, slot: float, *, workflow: str = "wf") -> NewRun:
    return dataclasses.replace(
        new_run(run_id, workflow=workflow, key=f"schedule:{schedule_id}:{slot}"),
        schedule_id=schedule_id,
        schedule_slot_at=slot,
    )


def fired(stored: ScheduleRecord, slot: float, run_id: str, *, next_slot: float) -> ScheduleFire:
    state = dataclasses.replace(
        stored,
        next_slot_at=next_slot,
        due_at=next_slot,
        last_slot_at=slot,
        updated_at=T0,
    )
    return ScheduleFire(state, runs=[slot_run(run_id, stored.schedule_id, slot)], now=T0)


async def test_a_schedule_reads_back_as_created(storage: Storage) -> None:
    created = await storage.create_schedule(dataclasses.replace(schedule(), version=7))
    assert created.version == 0
    assert await storage.get_schedule("s1") == created
    assert await storage.get_schedule("nope") is None


async def test_an_id_is_taken_until_its_schedule_is_deleted(storage: Storage) -> None:
    first = await storage.create_schedule(schedule())
    with pytest.raises(ScheduleExistsError, match="s1"):
        await storage.create_schedule(schedule(workflow="other"))
    assert await storage.get_schedule("s1") == first  # nothing written
    deleted = dataclasses.replace(first, status=ScheduleStatus.DELETED, due_at=None)
    assert await storage.update_schedule(deleted) is not None
    again = await storage.create_schedule(schedule(workflow="other"))
    assert (again.workflow_name, again.version) == ("other", 0)


async def test_listing_filters_and_leaves_deleted_ones_out(storage: Storage) -> None:
    await storage.create_schedule(schedule("b"))
    await storage.create_schedule(schedule("a", workflow="other"))
    await storage.create_schedule(schedule("c", status=ScheduleStatus.PAUSED, due_at=None))
    await storage.create_schedule(schedule("d", status=ScheduleStatus.DELETED, due_at=None))
    assert [s.schedule_id for s in await storage.list_schedules()] == ["a", "b", "c"]
    paused = await storage.list_schedules(status=ScheduleStatus.PAUSED)
    assert [s.schedule_id for s in paused] == ["c"]
    deleted = await storage.list_schedules(status=ScheduleStatus.DELETED)
    assert [s.schedule_id for s in deleted] == ["d"]
    assert [s.schedule_id for s in await storage.list_schedules(workflow_name="other")] == ["a"]
    assert [s.schedule_id for s in await storage.list_schedules(limit=2)] == ["a", "b"]


async def test_an_update_states_the_version_it_read(storage: Storage) -> None:
    stored = await storage.create_schedule(schedule())
    paused = dataclasses.replace(stored, status=ScheduleStatus.PAUSED, due_at=None)
    written = await storage.update_schedule(paused)
    assert written is not None
    assert written.version == 1
    # A second writer that read version 0 too writes nothing.
    assert await storage.update_schedule(dataclasses.replace(stored, total_runs=5)) is None
    assert await storage.get_schedule("s1") == written
    assert await storage.update_schedule(schedule("ghost")) is None


async def test_the_tick_sees_due_active_schedules_earliest_first(storage: Storage) -> None:
    await storage.create_schedule(schedule("late", due_at=T0 + 10))
    await storage.create_schedule(schedule("early", due_at=T0 - 5))
    await storage.create_schedule(schedule("now", due_at=T0))
    await storage.create_schedule(schedule("other", workflow="x", due_at=T0 - 9))
    await storage.create_schedule(schedule("paused", status=ScheduleStatus.PAUSED, due_at=None))
    due = await storage.due_schedules(now=T0, limit=10)
    assert [s.schedule_id for s in due] == ["other", "early", "now"]
    assert [s.schedule_id for s in await storage.due_schedules(now=T0, limit=1)] == ["other"]
    mine = await storage.due_schedules(now=T0, limit=10, workflow_names=["wf"])
    assert [s.schedule_id for s in mine] == ["early", "now"]
    assert await storage.due_schedules(now=T0, limit=10, workflow_names=[]) == []
    assert await storage.next_schedule_due_at() == T0 - 9
    assert await storage.next_schedule_due_at(workflow_names=["wf"]) == T0 - 5
    assert await storage.next_schedule_due_at(workflow_names=["none"]) is None
    # After firing what was due, a scheduler asks what comes after now.
    assert await storage.next_schedule_due_at(after=T0) == T0 + 10
    assert await storage.next_schedule_due_at(after=T0 - 9) == T0 - 5
    assert await storage.next_schedule_due_at(after=T0 + 10) is None
    assert await storage.next_schedule_due_at(workflow_names=["x"], after=T0 - 9) is None


async def test_the_tick_reads_what_is_due_a_page_at_a_time(storage: Storage) -> None:
    # Midnight: many schedules due at one moment, so the page boundary falls inside a tie.
    for name in ("d", "b", "e", "a", "c"):
        await storage.create_schedule(schedule(name, due_at=T0 - 1))
    await storage.create_schedule(schedule("earlier", due_at=T0 - 2))
    await storage.create_schedule(schedule("later", due_at=T0 + 1))
    await storage.create_schedule(schedule("theirs", workflow="x", due_at=T0 - 1))
    read, after, pages = [], None, 0
    while True:
        page = await storage.due_schedules(now=T0, limit=2, workflow_names=["wf"], after=after)
        pages += 1
        read += [s.schedule_id for s in page]
        if len(page) < 2:
            break
        assert page[-1].due_at is not None
        after = (page[-1].due_at, page[-1].schedule_id)
    assert read == ["earlier", "a", "b", "c", "d", "e"]
    assert pages == 4
    # A page may start inside a tie, and without the workflow filter it reads theirs too.
    rest = await storage.due_schedules(now=T0, limit=10, after=(T0 - 1, "b"))
    assert [s.schedule_id for s in rest] == ["c", "d", "e", "theirs"]


async def test_firing_stores_the_state_and_the_slots_run_together(storage: Storage) -> None:
    stored = await storage.create_schedule(schedule())
    run_ids = await storage.fire_schedule(fired(stored, T0, "r1", next_slot=T0 + 60))
    assert run_ids == ["r1"]
    run = await run_of(storage, "r1")
    assert (run.schedule_id, run.schedule_slot_at, run.idempotency_key) == (
        "s1",
        T0,
        f"schedule:s1:{T0}",
    )
    assert run.status is RunStatus.PENDING
    assert run.wake_at == T0
    after = await storage.get_schedule("s1")
    assert after is not None
    assert (after.version, after.due_at, after.total_runs, after.last_run_id) == (
        1,
        T0 + 60,
        1,
        "r1",
    )
    assert [r.run_id for r in await storage.list_runs(schedule_id="s1")] == ["r1"]
    assert await storage.list_runs(schedule_id="other") == []


async def test_a_stale_fire_writes_neither_state_nor_run(storage: Storage) -> None:
    stored = await storage.create_schedule(schedule())
    assert await storage.fire_schedule(fired(stored, T0, "r1", next_slot=T0 + 60)) == ["r1"]
    # Another scheduler read version 0 as well: it fires nothing, starts nothing.
    assert await storage.fire_schedule(fired(stored, T0, "r2", next_slot=T0 + 60)) is None
    assert await storage.get_run("r2") is None
    after = await storage.get_schedule("s1")
    assert after is not None
    assert after.version == 1
    assert after.total_runs == 1


async def test_a_slot_fired_again_finds_its_run(storage: Storage) -> None:
    """A scheduler that crashed after its fire committed fires the slot again (a new version
    read): the slot's key names the run that exists, and no second run starts."""
    stored = await storage.create_schedule(schedule())
    assert await storage.fire_schedule(fired(stored, T0, "r1", next_slot=T0 + 60)) == ["r1"]
    current = await storage.get_schedule("s1")
    assert current is not None
    assert await storage.fire_schedule(fired(current, T0, "r2", next_slot=T0 + 60)) == ["r1"]
    assert await storage.get_run("r2") is None
    again = await storage.get_schedule("s1")
    assert again is not None
    assert (again.version, again.total_runs, again.last_run_id) == (2, 1, "r1")  # found, not made
    assert [r.run_id for r in await storage.list_runs(schedule_id="s1")] == ["r1"]


async def test_firing_can_cancel_the_running_run(storage: Storage) -> None:
    stored = await storage.create_schedule(schedule())
    await storage.fire_schedule(fired(stored, T0, "r1", next_slot=T0 + 60))
    current = await storage.get_schedule("s1")
    assert current is not None
    fire = fired(current, T0 + 60, "r2", next_slot=T0 + 120)
    fire = dataclasses.replace(fire, cancel=["r1"], cancel_reason="replaced by r2", now=T0 + 60)
    assert await storage.fire_schedule(fire) == ["r2"]
    cancelled = await run_of(storage, "r1")
    assert (cancelled.cancel_requested, cancelled.cancel_reason) == (True, "replaced by r2")


async def test_live_runs_and_counts_of_a_schedule(storage: Storage) -> None:
    stored = await storage.create_schedule(schedule())
    await storage.fire_schedule(fired(stored, T0, "r1", next_slot=T0 + 60))
    current = await storage.get_schedule("s1")
    assert current is not None
    await storage.fire_schedule(fired(current, T0 + 60, "r2", next_slot=T0 + 120))
    await start(storage, "unrelated")
    assert await storage.live_schedule_runs(["s1", "s2"]) == {"s1": ["r1", "r2"]}
    await end(storage, "r1", RunStatus.FAILED, now=T0 + 61)
    assert await storage.live_schedule_runs(["s1"]) == {"s1": ["r2"]}
    assert await storage.count_schedule_runs("s1") == {RunStatus.FAILED: 1, RunStatus.PENDING: 1}
    assert await storage.count_schedule_runs("s2") == {}


async def test_racing_schedulers_fire_a_slot_once(sharing: list[Storage]) -> None:
    """Five processes read the schedule at one version and fire the same slot at once."""
    stored = await sharing[0].create_schedule(schedule())
    outcomes = await asyncio.gather(
        *(
            store.fire_schedule(fired(stored, T0, f"r{i}", next_slot=T0 + 60))
            for i, store in enumerate(sharing)
        )
    )
    winners = [o for o in outcomes if o is not None]
    assert len(winners) == 1
    runs = await sharing[0].list_runs(schedule_id="s1")
    assert [r.run_id for r in runs] == winners[0]
    after = await sharing[0].get_schedule("s1")
    assert after is not None
    assert (after.version, after.total_runs) == (1, 1)


async def test_a_batch_of_fires_that_all_win_writes_every_state_run_and_event(
    storage: Storage,
) -> None:
    """The common tick: every fire current, every slot new (SQLite writes it in bulk)."""
    stored = [await storage.create_schedule(schedule(f"s{i}")) for i in range(5)]
    fires = []
    for i, s in enumerate(stored):
        fire = fired(s, T0, f"r{i}a", next_slot=T0 + 120)
        second = slot_run(f"r{i}b", s.schedule_id, T0 + 60)  # a catch-up: two slots at once
        fires.append(dataclasses.replace(fire, runs=[*fire.runs, second]))
    outcomes = await storage.fire_schedules(fires)
    assert outcomes == [[f"r{i}a", f"r{i}b"] for i in range(5)]
    for i in range(5):
        state = await storage.get_schedule(f"s{i}")
        assert state is not None
        assert (state.version, state.total_runs, state.last_run_id) == (1, 2, f"r{i}b")
        assert (state.next_slot_at, state.due_at) == (T0 + 120, T0 + 120)
        for run_id, slot in ((f"r{i}a", T0), (f"r{i}b", T0 + 60)):
            run = await storage.get_run(run_id)
            assert run is not None
            assert (run.schedule_id, run.schedule_slot_at) == (f"s{i}", slot)
            (first,) = await storage.load_events(run_id)
            assert (first.seq, first.type) == (1, EventType.WORKFLOW_STARTED)
            assert first.payload == {"v": 1, "input": run_id}


async def test_a_batch_of_fires_stands_or_falls_fire_by_fire(storage: Storage) -> None:
    """A tick's fires in one call: the stale one writes nothing, the others all they should."""
    a = await storage.create_schedule(schedule("a"))
    b = await storage.create_schedule(schedule("b"))
    c = await storage.create_schedule(schedule("c"))
    assert await storage.fire_schedule(fired(b, T0, "b0", next_slot=T0 + 60)) == ["b0"]
    c_now = await storage.get_schedule("c")
    assert c_now is not None
    # c's slot T0 already has its run (a backfill, say): its fire finds it.
    assert await storage.fire_schedule(fired(c_now, T0, "c0", next_slot=T0)) == ["c0"]
    c_now = await storage.get_schedule("c")
    assert c_now is not None
    outcomes = await storage.fire_schedules(
        [
            fired(a, T0, "a1", next_slot=T0 + 60),
            fired(b, T0 + 60, "b1", next_slot=T0 + 120),  # b was read at version 0: stale
            fired(c_now, T0, "c1", next_slot=T0 + 60),
        ]
    )
    assert outcomes == [["a1"], None, ["c0"]]
    assert await storage.get_run("b1") is None
    assert await storage.get_run("c1") is None
    states = {s.schedule_id: s for s in await storage.list_schedules()}
    assert (states["a"].version, states["a"].total_runs, states["a"].last_run_id) == (1, 1, "a1")
    assert (states["b"].version, states["b"].total_runs) == (1, 1)
    assert (states["c"].version, states["c"].total_runs, states["c"].next_slot_at) == (
        2,
        1,
        T0 + 60,
    )
    assert c.version == 0
    assert await storage.fire_schedules([]) == []
