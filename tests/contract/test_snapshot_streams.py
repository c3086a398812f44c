"""The storage contract of whole runs, for the stream runs a run drives (``RunSnapshot.streams``).

Each test runs against every backend (conftest.py), copying between two storages of it. A stream
run belongs to the run that drives it: a snapshot of that run carries it whole (row, armed
waiter, subscriptions with results and checkpoints, signals with their keys, deliveries), the
destination reads it back equal and goes on from where it was (the next signal gets the next
seq and wakes the waiting driver; the next batch is the next number), and a copy that would
take a stream run id already used there writes nothing.
"""

from __future__ import annotations

import pytest
from storage_calls import T0, new_hook, start, token_hash, waiting_on
from test_retention_streams import WATCHER, flowing, rows
from test_snapshots import pair  # noqa: F401 - the fixture of two storages of one backend

from pyworkflow.events import HookStatus, StreamStepStatus
from pyworkflow.exceptions import CopyConflictError
from pyworkflow.storage.copying import for_destination
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.streams import NewSignal, StreamStore, SubscriptionOutcome


def store(storage: Storage) -> StreamStore:
    assert isinstance(storage, StreamStore)
    return storage


async def mid_flight(storage: Storage) -> None:
    """``drv`` waits on its hook, armed on its stream run ``s1``; ``other`` drives ``s2``."""
    await waiting_on(storage, "drv", new_hook("tok-wait"))
    streams = await flowing(storage, "s1", "drv")
    keyed = NewSignal("s1", "ops", "alert", {"n": 3}, "s1-3", T0 + 1, "drv", "key-3")
    await streams.emit_signal(keyed)
    decided = SubscriptionOutcome(
        "watcher", StreamStepStatus.WAITING, result=[1], set_result=True,
        checkpoint={"seen": 2}, set_checkpoint=True,
    )  # fmt: skip
    await streams.take_stream_batch("s1", batch=4, outcomes=[decided], now=T0 + 1)
    await streams.take_stream_batch("s1", batch=5, outcomes=[decided], now=T0 + 1)
    assert not await streams.arm_stream_wait(
        "s1", token_hash=token_hash("tok-wait"), seen_seq=3, now=T0 + 1
    )
    await start(storage, "other")
    await flowing(storage, "s2", "other")


async def test_a_driving_run_carries_its_stream_runs_whole(pair: tuple[Storage, Storage]) -> None:  # noqa: F811
    source, destination = pair
    await mid_flight(source)
    snapshots = await source.read_run_snapshots(["drv", "other"])
    assert [[s.record.stream_run_id for s in snap.streams] for snap in snapshots] == [
        ["s1"],
        ["s2"],
    ]
    (s1,) = snapshots[0].streams
    assert (s1.record.last_seq, s1.record.last_batch, len(s1.signals)) == (3, 5, 3)
    assert s1.wait_hook == token_hash("tok-wait")
    assert [(d.batch, d.seq, d.refused) for d in s1.deliveries] == [
        (1, None, False), (2, 1, True), (3, 2, False), (4, 3, False)
    ]  # fmt: skip
    await destination.write_run_snapshots([for_destination(s) for s in snapshots])
    assert await destination.read_run_snapshots(["drv", "other"]) == snapshots
    for stream_run_id in ("s1", "s2"):
        assert await rows(store(destination), stream_run_id) == await rows(
            store(source), stream_run_id
        )


async def test_a_copied_stream_run_goes_on_where_it_was(pair: tuple[Storage, Storage]) -> None:  # noqa: F811
    source, destination = pair
    await mid_flight(source)
    await destination.write_run_snapshots(
        [for_destination(s) for s in await source.read_run_snapshots(["drv", "other"])]
    )
    streams = store(destination)
    again = NewSignal("s1", "ops", "alert", {"n": 3}, "s1-3b", T0 + 2, "drv", "key-3")
    assert (await streams.emit_signal(again)).seq == 3  # its key is known there too
    fresh = await streams.emit_signal(NewSignal("s1", "ops", "alert", {"n": 4}, "s1-4", T0 + 2))
    assert (fresh.seq, fresh.woke) == (4, True)  # the driver's armed hook was copied
    hook = await destination.get_hook(token_hash("tok-wait"))
    assert hook is not None
    assert hook.status is HookStatus.RECEIVED
    waiting = SubscriptionOutcome("watcher", StreamStepStatus.WAITING)
    batch = await streams.take_stream_batch("s1", batch=6, outcomes=[waiting], now=T0 + 2)
    assert [(d.step_name, d.seq) for d, _ in batch.deliveries] == [("watcher", 4)]
    (watcher,) = batch.subscriptions
    assert (watcher.result, watcher.checkpoint, watcher.refused) == ([1], {"seen": 2}, 1)


async def test_a_stream_run_id_used_there_refuses_the_whole_write(
    pair: tuple[Storage, Storage],  # noqa: F811
) -> None:
    source, destination = pair
    await mid_flight(source)
    await start(destination, "someone")
    await store(destination).open_stream_run(
        "s1", stream="ops", run_id="someone", subscriptions=[WATCHER], now=T0
    )
    before = await destination.read_run_snapshots(["someone", "drv", "other"])
    with pytest.raises(CopyConflictError) as refused:
        await destination.write_run_snapshots(await source.read_run_snapshots(["drv", "other"]))
    assert refused.value.run_ids == ["drv"]
    assert "stream run" in str(refused.value)
    assert await destination.read_run_snapshots(["someone", "drv", "other"]) == before


async def test_replacing_a_run_takes_its_stream_runs_back(pair: tuple[Storage, Storage]) -> None:  # noqa: F811
    source, destination = pair
    await mid_flight(source)
    (drv,) = await source.read_run_snapshots(["drv"])
    await destination.write_run_snapshots([drv])
    await destination.write_run_snapshots([], replacing=[drv.run])
    assert await rows(store(destination), "s1") == (None, [], [], [])
    await destination.write_run_snapshots([drv])  # its stream run id is free again
    assert await destination.read_run_snapshots(["drv"]) == [drv]


def test_a_sql_snapshot_holds_every_stream_table() -> None:
    # A new stream table must be copied and pruned with its stream run's driving run.
    from pyworkflow.storage.sql._statements.stream_rows import (
        DELETE_STREAM_ROWS,
        STREAM_COPY_INSERTS,
        STREAM_ROW_TABLES,
    )
    from pyworkflow.storage.sql.schema import metadata

    stream_tables = {t for t in metadata.tables.values() if t.name.startswith("stream_")}
    assert {insert.table for insert in STREAM_COPY_INSERTS} == stream_tables
    assert {delete.table for delete in DELETE_STREAM_ROWS} == set(STREAM_ROW_TABLES)
    assert set(STREAM_ROW_TABLES) == stream_tables
