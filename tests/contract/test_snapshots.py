"""The storage contract of whole runs: read in one view, written all or nothing (a copy's halves).

Each test runs against every backend (conftest.py), copying between two storages of it (each a
database of its own). What a copy relies on: a run written whole reads back equal, row for row,
and answers the protocol's other methods as the source did (its hook by the old token, its
step leases, its place under its parent); a write that cannot go through writes nothing.
"""

from __future__ import annotations

import pytest
from storage_calls import (
    LEASE,
    NESTED,
    T0,
    claim,
    end,
    new_hook,
    new_run,
    run_of,
    start,
    step_events,
    token_hash,
    turn,
    waiting_on,
)

from backends import StorageFactory
from pyworkflow.events import HookStatus, RunStatus
from pyworkflow.exceptions import CopyConflictError
from pyworkflow.storage.copying import for_destination
from pyworkflow.storage.protocol import Storage


async def busy_source(storage: Storage) -> None:
    """Runs of every kind: ended, leased with a step lease, waiting on hooks, a child, a chain."""
    await start(storage, "done", key="key-done", args=NESTED)
    await claim(storage, "done")
    await turn(storage, "done", events=step_events(2))
    await end(storage, "done", now=T0 + 1)
    await start(storage, "leased", key="key-leased", queue="billing")  # kept by the copy
    await claim(storage, "leased", "w1")
    await turn(storage, "leased", events=step_events(1))
    assert await storage.acquire_step(
        "leased", "s#1", attempt=2, owner="celery-1", now=T0, lease_expires_at=T0 + LEASE
    )
    await waiting_on(storage, "hooked", new_hook("tok-a"), new_hook("tok-b", expires_at=T0 + 99))
    await storage.deliver_hook(token_hash("tok-a"), {"ok": True}, now=T0 + 2)
    await start(storage, "child", parent="hooked", policy="abandon")
    await claim(storage, "child", "w2")
    await end(
        storage,
        "child",
        RunStatus.CONTINUED_AS_NEW,
        owner="w2",
        new_runs=[new_run("child-2", parent="hooked", continued_from="child")],
    )


async def everything(storage: Storage, run_ids: list[str]) -> list[object]:
    """What the other protocol methods say of the runs: rows, logs, hooks, step leases."""
    seen: list[object] = []
    for run_id in run_ids:
        seen += [
            await storage.get_run(run_id),
            await storage.load_events(run_id),
            await storage.list_hooks(run_id=run_id),
            await storage.list_step_leases(run_id),
        ]
    return seen


IDS = ["done", "leased", "hooked", "child", "child-2"]


@pytest.fixture
async def pair(make_storage: StorageFactory) -> tuple[Storage, Storage]:
    source, destination = make_storage(), make_storage()
    await source.open()
    await destination.open()
    yield source, destination  # type: ignore[misc]
    await destination.close()
    await source.close()


async def test_runs_written_whole_read_back_equal(pair: tuple[Storage, Storage]) -> None:
    source, destination = pair
    await busy_source(source)
    snapshots = await source.read_run_snapshots(IDS)
    assert [s.run.run_id for s in snapshots] == IDS
    await destination.write_run_snapshots(snapshots)
    assert await destination.read_run_snapshots(IDS) == snapshots
    assert await everything(destination, IDS) == await everything(source, IDS)
    assert await destination.list_runs(parent_run_id="hooked") == await source.list_runs(
        parent_run_id="hooked"
    )


async def test_a_snapshot_holds_the_whole_run(pair: tuple[Storage, Storage]) -> None:
    source, _ = pair
    await busy_source(source)
    (leased, hooked) = await source.read_run_snapshots(["leased", "hooked"])
    assert leased.run == await run_of(source, "leased")
    assert [e.seq for e in leased.events] == list(range(1, leased.run.last_seq + 1))
    assert leased.step_leases == tuple(await source.list_step_leases("leased"))
    assert [h.hook_id for h in hooked.hooks] == ["hook:tok-a", "hook:tok-b"]
    assert [h.status for h in hooked.hooks] == [HookStatus.RECEIVED, HookStatus.WAITING]


async def test_reads_keep_the_order_asked_and_leave_unknown_ids_out(storage: Storage) -> None:
    for run_id in ("a", "b", "c"):
        await start(storage, run_id)
    got = await storage.read_run_snapshots(["c", "nope", "a", "c"])
    assert [s.run.run_id for s in got] == ["c", "a"]
    assert await storage.read_run_snapshots([]) == []


async def test_the_copy_answers_an_old_token_and_is_claimable(
    pair: tuple[Storage, Storage],
) -> None:
    source, destination = pair
    await busy_source(source)
    snapshots = await source.read_run_snapshots(IDS)
    freed = [for_destination(s) for s in snapshots]  # leases dropped, as a copy does
    await destination.write_run_snapshots(freed)
    received = await destination.deliver_hook(token_hash("tok-b"), "late", now=T0 + 3)
    assert (received.run_id, received.status) == ("hooked", HookStatus.RECEIVED)
    claimed = await destination.claim_runs(
        owner="new", now=T0 + 3, lease_expires_at=T0 + 30, limit=10
    )
    assert {r.run_id for r in claimed} >= {"leased", "hooked", "child-2"}
    # The step attempt a Celery worker of the source held is free here, its deliveries kept.
    taken = await destination.acquire_step(
        "leased", "s#1", attempt=2, owner="celery-new", now=T0 + 3, lease_expires_at=T0 + 60
    )
    assert taken is not None
    assert (taken.owner, taken.deliveries) == ("celery-new", 2)


@pytest.mark.parametrize("clash", ["id", "key", "token"])
async def test_a_taken_run_refuses_the_whole_write(
    pair: tuple[Storage, Storage], clash: str
) -> None:
    source, destination = pair
    await busy_source(source)
    if clash == "id":
        await start(destination, "hooked")
    elif clash == "key":
        await start(destination, "other", key="key-leased")
    else:
        await waiting_on(destination, "other", new_hook("tok-b"))
    before = await destination.read_run_snapshots(["other", *IDS])
    with pytest.raises(CopyConflictError) as refused:
        await destination.write_run_snapshots(await source.read_run_snapshots(IDS))
    assert refused.value.run_ids == [{"id": "hooked", "key": "leased", "token": "hooked"}[clash]]
    assert refused.value.url == destination.url
    assert await destination.read_run_snapshots(["other", *IDS]) == before


async def test_replacing_takes_a_copied_run_back_or_refreshes_it(
    pair: tuple[Storage, Storage],
) -> None:
    source, destination = pair
    await busy_source(source)
    (old,) = await source.read_run_snapshots(["hooked"])
    await destination.write_run_snapshots([old])
    await storage_moves_on(source)
    (new,) = await source.read_run_snapshots(["hooked"])
    await destination.write_run_snapshots([new], replacing=[old.run])
    assert await destination.read_run_snapshots(["hooked"]) == [new]
    await destination.write_run_snapshots([], replacing=[new.run])
    assert await destination.read_run_snapshots(["hooked"]) == []
    assert await destination.get_hook(token_hash("tok-b")) is None
    # Its hooks' tokens and its id are free again.
    await destination.write_run_snapshots([new])


async def storage_moves_on(storage: Storage) -> None:
    await claim(storage, "hooked", "w3", now=T0 + 5)
    await turn(storage, "hooked", "w3", now=T0 + 5, events=step_events(2, "more"))


async def test_replacing_refuses_a_run_that_moved_on_there(pair: tuple[Storage, Storage]) -> None:
    source, destination = pair
    await busy_source(source)
    snapshots = await source.read_run_snapshots(IDS)
    await destination.write_run_snapshots(snapshots)
    await storage_moves_on(destination)  # a worker on the destination already drives it
    before = await destination.read_run_snapshots(IDS)
    with pytest.raises(CopyConflictError) as refused:
        await destination.write_run_snapshots([], replacing=[s.run for s in snapshots])
    assert refused.value.run_ids == ["hooked"]
    assert await destination.read_run_snapshots(IDS) == before


async def test_an_empty_write_writes_nothing(storage: Storage) -> None:
    await storage.write_run_snapshots([])
    assert await storage.list_runs() == []


def test_a_sql_snapshot_holds_every_table_that_holds_rows_of_a_run() -> None:
    # A new per-run table joins RUN_OWNED_TABLES (retention deletes from it): a copy must
    # read and write it too, or a copied run would arrive without those rows.
    from pyworkflow.storage.sql._statements.retention import RUN_OWNED_TABLES
    from pyworkflow.storage.sql._statements.snapshots import COPY_INSERTS
    from pyworkflow.storage.sql.schema import runs

    assert [insert.table for insert in COPY_INSERTS] == [runs, *RUN_OWNED_TABLES]
