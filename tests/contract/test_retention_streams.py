"""The storage contract of retention for stream runs: they go with the run that drives them.

Each test runs against every backend (conftest.py). A stream run belongs to the run driving it
(``StreamRunRecord.run_id``): pruning that run deletes the stream run with its subscriptions,
signals and deliveries in the same call (one transaction), and leaves every other stream run as
it was, rows and all. A driver that continued as new hands its stream runs to its successor
(the successor's first step adopts them): pruning the driver before that step ran hands them
over instead of deleting them, and they go when the successor goes.
"""

from __future__ import annotations

from storage_calls import T0, end, new_run, run_of, start
from test_retention import ended

from pyworkflow.events import RunStatus, StreamStepStatus
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.streams import (
    NewSignal,
    StreamStore,
    SubscriptionOutcome,
    SubscriptionSpec,
)

WATCHER = SubscriptionSpec("watcher", "ops", ("alert",))


async def flowing(storage: Storage, stream_run_id: str, run_id: str) -> StreamStore:
    """A stream run driven by ``run_id``: two signals delivered, the first refused there."""
    assert isinstance(storage, StreamStore)
    await storage.open_stream_run(
        stream_run_id, stream="ops", run_id=run_id, subscriptions=[WATCHER], now=T0
    )
    await storage.take_stream_batch(stream_run_id, batch=1, outcomes=[], now=T0)
    for n in (1, 2):
        signal_id = f"{stream_run_id}-{n}"
        await storage.emit_signal(NewSignal(stream_run_id, "ops", "alert", {"n": n}, signal_id, T0))
    waiting = SubscriptionOutcome("watcher", StreamStepStatus.WAITING)
    await storage.take_stream_batch(stream_run_id, batch=2, outcomes=[waiting], now=T0)
    refused = SubscriptionOutcome("watcher", StreamStepStatus.WAITING, refused=True)
    await storage.take_stream_batch(stream_run_id, batch=3, outcomes=[refused], now=T0)
    return storage


async def rows(store: StreamStore, stream_run_id: str) -> tuple[object, ...]:
    """Every row of the stream run, as the protocol reads them."""
    return (
        await store.get_stream_run(stream_run_id),
        await store.list_subscriptions(stream_run_id),
        await store.list_signals(stream_run_id),
        await store.list_deliveries(stream_run_id),
    )


async def test_a_pruned_run_takes_its_stream_runs_and_nothing_else(storage: Storage) -> None:
    await ended(storage, "old", T0)
    await ended(storage, "recent", T0 + 30)
    await start(storage, "live", now=T0 - 10)
    store = await flowing(storage, "old-a", "old")
    await flowing(storage, "old-b", "old")
    await flowing(storage, "recent-s", "recent")
    await flowing(storage, "live-s", "live")
    kept = {i: await rows(store, i) for i in ("recent-s", "live-s")}
    assert len((await rows(store, "old-a"))[3]) == 3  # the start and two signals

    assert await storage.delete_ended_runs(ended_before=T0 + 25, limit=10) == ["old"]

    for gone in ("old-a", "old-b"):
        assert await rows(store, gone) == (None, [], [], []), gone
    assert {i: await rows(store, i) for i in kept} == kept
    assert sorted(r.stream_run_id for r in await store.list_stream_runs()) == sorted(kept)


async def test_a_pruned_stream_runs_id_can_be_opened_again(storage: Storage) -> None:
    await ended(storage, "old", T0)
    store = await flowing(storage, "job-7", "old")
    await storage.delete_ended_runs(ended_before=T0 + 1, limit=10)
    await start(storage, "new", now=T0 + 2)
    record, created = await store.open_stream_run(
        "job-7", stream="ops", run_id="new", subscriptions=[WATCHER], now=T0 + 2
    )
    assert (created, record.run_id, record.last_seq) == (True, "new", 0)
    assert await store.list_signals("job-7") == []


async def continued(storage: Storage, stream_run_id: str) -> StreamStore:
    """``a`` drives ``stream_run_id`` and continued as ``b`` at T0; ``b`` has not adopted it."""
    await start(storage, "a", now=T0 - 5)
    streams = await flowing(storage, stream_run_id, "a")
    await end(
        storage, "a", RunStatus.CONTINUED_AS_NEW, now=T0,
        new_runs=[new_run("b", continued_from="a", now=T0)],
    )  # fmt: skip
    assert (await run_of(storage, "a")).continued_to == "b"
    return streams


async def test_a_continued_drivers_stream_runs_go_to_its_successor(storage: Storage) -> None:
    store = await continued(storage, "long")
    before = await rows(store, "long")

    assert await storage.delete_ended_runs(ended_before=T0 + 1, limit=10) == ["a"]

    record, *others = await rows(store, "long")
    assert record is not None
    assert record.run_id == "b"
    assert others == list(before[1:])
    # The successor's first step adopts it as ever; then it goes when the successor goes.
    assert await store.adopt_stream_run("long", previous_run_id="a", run_id="b", now=T0 + 2)
    await end(storage, "b", now=T0 + 3)
    assert await storage.delete_ended_runs(ended_before=T0 + 4, limit=10) == ["b"]
    assert await rows(store, "long") == (None, [], [], [])


async def test_a_continued_driver_pruned_with_its_successor_takes_its_stream_runs(
    storage: Storage,
) -> None:
    store = await continued(storage, "long")
    await end(storage, "b", now=T0 + 1)  # ended before its first step adopted the stream run

    assert sorted(await storage.delete_ended_runs(ended_before=T0 + 2, limit=10)) == ["a", "b"]

    assert await rows(store, "long") == (None, [], [], [])
