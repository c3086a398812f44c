"""What ``copy_runs`` refuses, and runs that move while they are copied.

A destination that already holds one of the runs is refused before anything is written. A run
that changes in the source between the copy's read of it and its write (made deterministic by
a source that moves a run right after each read) is copied again, or, if it never stops
moving, the copy fails naming it and the destination is left as it was.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from pathlib import Path
from typing import Any

import pytest

from backends import fresh_storages
from pyworkflow.events import EventType, RunStatus
from pyworkflow.exceptions import CopyConflictError, RunsChangedDuringCopyError
from pyworkflow.storage import MemoryStorage, Storage, copy_runs
from pyworkflow.storage.records import AppendWrite, NewEvent, NewRun, RunSnapshot

T0 = 1_900_000_000.0


async def started(storage: Storage, *run_ids: str) -> None:
    for run_id in run_ids:
        run = NewRun(run_id, "wf", {"args": [run_id]}, {"v": 1}, T0, idempotency_key=run_id)
        assert (await storage.create_run(run))[1]


async def step_done(storage: Storage, run_id: str, now: float) -> None:
    """A worker's turn on the source: claim the run, log one step, let it go."""
    (claimed,) = await storage.claim_runs(
        owner="worker", now=now, lease_expires_at=now + 30, limit=1, run_ids=[run_id]
    )
    await storage.append(
        AppendWrite(
            run_id=run_id,
            owner="worker",
            expected_seq=claimed.last_seq,
            events=[NewEvent(EventType.STEP_COMPLETED, {"step_id": f"s#{claimed.last_seq}"})],
            now=now,
            status=RunStatus.SUSPENDED,
            wake_at=now,
        )
    )


class MovingSource:
    """A source whose run ``moving`` takes a step right after each read of it (``times`` reads)."""

    def __init__(self, inner: Storage, moving: str, times: int) -> None:
        self.inner, self.moving, self.times = inner, moving, times
        self.url = inner.url
        self.moves = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def read_run_snapshots(self, run_ids: Collection[str]) -> list[RunSnapshot]:
        snapshots = await self.inner.read_run_snapshots(run_ids)
        if self.moving in run_ids and self.times > 0:
            self.times -= 1
            self.moves += 1
            await step_done(self.inner, self.moving, T0 + self.moves)
        return snapshots


@pytest.fixture
async def destination(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Storage]:
    store = fresh_storages("sqlite", tmp_path, request)()
    await store.open()
    yield store
    await store.close()


async def everything(storage: Storage) -> list[RunSnapshot]:
    """Every run of the storage whole, by run id."""
    return await storage.read_run_snapshots(sorted(r.run_id for r in await storage.list_runs()))


async def test_a_destination_holding_a_run_id_is_refused_and_left_alone(
    destination: Storage,
) -> None:
    source = MemoryStorage()
    await started(source, "r1")
    await copy_runs(source, destination)
    await started(source, "r2", "r3")
    await step_done(source, "r1", T0 + 1)
    before = await everything(destination)
    with pytest.raises(CopyConflictError, match="'r1' already exist") as refused:
        await copy_runs(source, destination, batch_size=1)
    assert refused.value.run_ids == ["r1"]
    assert refused.value.url == destination.url
    assert await everything(destination) == before  # r2 and r3 not written either
    assert [s.run.run_id for s in before] == ["r1"]


async def test_a_run_that_moves_between_read_and_write_is_copied_again(
    destination: Storage,
) -> None:
    source = MemoryStorage()
    await started(source, "r1", "r2", "r3")
    moving = MovingSource(source, "r2", times=1)
    report = await copy_runs(moving, destination, batch_size=2)
    assert report.recopied == ("r2",)
    assert report.runs == 3
    copied = await everything(destination)
    assert copied == await everything(source)
    assert [e.type for e in copied[[s.run.run_id for s in copied].index("r2")].events] == [
        EventType.WORKFLOW_STARTED,
        EventType.STEP_COMPLETED,
    ]


async def test_a_run_that_keeps_moving_fails_the_copy_naming_it(destination: Storage) -> None:
    source = MemoryStorage()
    await started(source, "r1", "r2", "r3")
    moving = MovingSource(source, "r3", times=100)
    with pytest.raises(RunsChangedDuringCopyError, match="'r3'") as refused:
        await copy_runs(moving, destination, rounds=3)
    assert refused.value.run_ids == ["r3"]
    assert await destination.list_runs() == []  # the runs it did copy were taken back


async def test_runs_started_during_the_copy_are_copied_too(destination: Storage) -> None:
    source = MemoryStorage()
    await started(source, "r1")

    class Growing(MovingSource):
        async def read_run_snapshots(self, run_ids: Collection[str]) -> list[RunSnapshot]:
            snapshots = await self.inner.read_run_snapshots(run_ids)
            if self.times:
                self.times -= 1
                await started(self.inner, "late")
            return snapshots

    report = await copy_runs(Growing(source, "r1", times=1), destination)
    assert (report.runs, report.recopied) == (2, ())
    assert await everything(destination) == await everything(source)


async def test_a_lease_renewed_meanwhile_is_no_change(destination: Storage) -> None:
    source = MemoryStorage()
    await started(source, "r1", "r2")
    await source.claim_runs(owner="idle", now=T0, lease_expires_at=T0 + 30, limit=1, run_ids=["r1"])

    class Renewing(MovingSource):
        async def read_run_snapshots(self, run_ids: Collection[str]) -> list[RunSnapshot]:
            snapshots = await self.inner.read_run_snapshots(run_ids)
            self.moves += 1
            renewed = await self.inner.renew_leases(
                owner="idle", run_ids=["r1"], now=T0, lease_expires_at=T0 + 30 + self.moves
            )
            assert renewed == {"r1"}
            return snapshots

    report = await copy_runs(Renewing(source, "r1", times=0), destination)
    assert (report.runs, report.recopied, report.leases_dropped) == (2, (), 1)
    (copied,) = await destination.read_run_snapshots(["r1"])
    assert (copied.run.lease_owner, copied.run.lease_expires_at) == (None, None)


async def test_a_write_retried_after_it_committed_reports_success(destination: Storage) -> None:
    # PostgreSQL runs a script again when the connection broke mid-statement (Session.retried):
    # a copy's write whose first attempt did commit must not then refuse its own runs.
    from pyworkflow.storage.sql import SqlStorage
    from pyworkflow.storage.sql._scripts import snapshots

    assert isinstance(destination, SqlStorage)
    source = MemoryStorage()
    await started(source, "r1", "r2")
    copies = await source.read_run_snapshots(["r1", "r2"])
    await destination.write_run_snapshots(copies)

    async def again(db: Any) -> None:
        db.retried = True
        try:
            await snapshots.write_run_snapshots(db, destination.url, copies, ())
        finally:
            db.retried = False

    await destination._run_whole(again, writes=True)
    assert await everything(destination) == copies
    with pytest.raises(CopyConflictError):  # not a retry: the runs are taken
        await destination.write_run_snapshots(copies)
