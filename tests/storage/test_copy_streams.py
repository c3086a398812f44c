"""``copy_runs`` and stream runs: a stream run handed on to a new driver while the copy runs.

A stream run's driver continues as new every 500 batches, handing the stream run to its
successor (``adopt_stream_run``). When that happens between two batches of a copy, the copy
wrote the stream run with its old driver and now reads it with the new one: it must move it
over (writing the old driver again in the same write), not refuse the id as taken.
"""

from __future__ import annotations

from collections.abc import Collection

from pyworkflow.storage import MemoryStorage, NewRun, copy_runs
from pyworkflow.storage.records import RunSnapshot
from pyworkflow.storage.streams import NewSignal, SubscriptionSpec

T0 = 1_900_000_000.0


class HandingOn(MemoryStorage):
    """A source whose stream run ``s1`` goes from run ``a`` to run ``b`` after the first read."""

    reads = 0

    async def read_run_snapshots(self, run_ids: Collection[str]) -> list[RunSnapshot]:
        self.reads += 1
        if self.reads == 2:  # the copy wrote ``a`` with ``s1``; now its driver continues as ``b``
            assert await self.adopt_stream_run("s1", previous_run_id="a", run_id="b", now=T0 + 2)
        return await super().read_run_snapshots(run_ids)


async def test_a_stream_run_handed_on_during_the_copy_arrives_with_its_new_driver() -> None:
    source, destination = HandingOn(), MemoryStorage()
    for n, run_id in enumerate(("a", "b")):
        await source.create_run(NewRun(run_id, "pyworkflow.stream", {"args": []}, {}, T0 + n))
    spec = SubscriptionSpec("watcher", "ops", ("alert",))
    await source.open_stream_run("s1", stream="ops", run_id="a", subscriptions=[spec], now=T0)
    await source.emit_signal(NewSignal("s1", "ops", "alert", {"n": 1}, "g1", T0))

    report = await copy_runs(source, destination, batch_size=1)

    assert (report.runs, report.stream_runs, report.signals) == (2, 1, 1)
    record = await destination.get_stream_run("s1")
    assert record is not None
    assert record.run_id == "b"
    assert [s.payload for s in await destination.list_signals("s1")] == [{"n": 1}]
    assert await destination.read_run_snapshots(["a", "b"]) == await source.read_run_snapshots(
        ["a", "b"]
    )
