"""What PostgreSQL adds to the run-family contract: endings that share a statement or collide.

Concurrent appends share one statement (``postgres/_appends``), endings included: each ending still
cancels its children and signals its parent exactly once, also when relatives end in the same
batch. An ending append locks its own run's row and then its relatives'; a parent and its child
ending at the same moment lock the same two rows in opposite orders, PostgreSQL breaks the cycle
by rolling one statement back, and the storage runs that statement again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from postgres_server import PostgresServer
from pyworkflow.events import EventType, RunStatus
from pyworkflow.storage.postgres import PostgresStorage
from pyworkflow.storage.postgres import _appends as pg_batch
from pyworkflow.storage.records import AppendWrite, NewEvent, NewRun

LEASE = 1_000.0


@pytest.fixture
async def storage(postgres_server: PostgresServer) -> AsyncIterator[PostgresStorage]:
    store = PostgresStorage(postgres_server.fresh_url())
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def ending(run_id: str, owner: str) -> AppendWrite:
    done = NewEvent(EventType.WORKFLOW_COMPLETED, {"v": 1, "result": None})
    return AppendWrite(run_id, owner, 1, [done], now=5.0, status=RunStatus.COMPLETED)


async def test_an_ending_append_caught_in_a_lock_cycle_runs_again(
    postgres_server: PostgresServer, storage: PostgresStorage
) -> None:
    await storage.create_run(
        NewRun("parent", "wf", [], {}, now=1.0, lease_owner="w1", lease_expires_at=LEASE)
    )
    await storage.create_run(
        NewRun("child", "wf", [], {}, now=1.0, parent_run_id="parent", lease_owner="w2",
               lease_expires_at=LEASE)
    )  # fmt: skip
    # Another transaction plays the child's end: it holds the child's row, and it will want the
    # parent's. Its deadlock_timeout is long, so PostgreSQL picks the storage's statement.
    other = await asyncpg.connect(
        postgres_server.url,
        server_settings={"search_path": str(storage.settings.schema), "deadlock_timeout": "60s"},
    )
    try:
        await other.execute("BEGIN")
        await other.execute("UPDATE runs SET updated_at = 2 WHERE run_id = 'child'")
        parent_ends = asyncio.create_task(storage.append(ending("parent", "w1")))
        await waiting_for_a_lock(other)
        # The parent's statement holds the parent's row while it waits for the child's.
        takes_parent = asyncio.create_task(
            other.execute("UPDATE runs SET updated_at = 2 WHERE run_id = 'parent'")
        )
        done, _ = await asyncio.wait({takes_parent}, timeout=0.5)
        assert not done, "the parent's row was free: no lock cycle was made"
        await asyncio.wait_for(takes_parent, 30)  # the cycle was broken: the statement let go
        await other.execute("ROLLBACK")
        result = await asyncio.wait_for(parent_ends, 30)
    finally:
        await other.close()
    assert result.last_seq == 2
    parent, child = await storage.get_run("parent"), await storage.get_run("child")
    assert parent is not None
    assert child is not None
    assert parent.status is RunStatus.COMPLETED
    assert (child.cancel_requested, child.cancel_reason) == (True, "parent run parent ended")
    assert [e.type for e in await storage.load_events("parent")] == [
        EventType.WORKFLOW_STARTED,
        EventType.WORKFLOW_COMPLETED,
    ]


async def waiting_for_a_lock(conn: asyncpg.Connection) -> None:
    """Wait until a pyworkflow connection of this database waits for a row lock."""
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pyworkflow' "
        "AND wait_event_type = 'Lock' AND datname = current_database()"
    )
    for _ in range(500):
        if await conn.fetchval(query):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the append never waited for the child's row")


class Counting:
    """A stand-in for a compiled statement that records the batch size of each call."""

    def __init__(self, query: Any) -> None:
        self.query, self.sizes = query, []

    async def fetch(self, conn: asyncpg.Connection, params: dict[str, Any]) -> list[Any]:
        self.sizes.append(len(json.loads(params["b_writes"])))
        return await self.query.fetch(conn, params)  # type: ignore[no-any-return]


async def start(
    storage: PostgresStorage, run_id: str, parent: str | None = None, **options: Any
) -> None:
    """Create a run, leased to ``w`` unless ``leased=False``."""
    if options.pop("leased", True):
        options.update(lease_owner="w", lease_expires_at=LEASE)
    await storage.create_run(NewRun(run_id, "wf", [], {}, now=1.0, parent_run_id=parent, **options))


async def test_endings_that_share_a_statement_reach_every_relative_once(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One connection: the first append goes alone, all the others queue into one batch.
    url = postgres_server.fresh_url(pool_size="1")
    storage, listener = PostgresStorage(url), PostgresStorage(url)
    heard: list[tuple[str, str]] = []
    last_heard = asyncio.Event()

    def hear(kind: str, run_id: str) -> None:
        heard.append((kind, run_id))
        if (kind, run_id) == ("runnable", "g19"):
            last_heard.set()

    listener.subscribe(hear)
    batches = Counting(pg_batch._APPEND_BATCH_ENDING)
    monkeypatch.setattr(pg_batch, "_APPEND_BATCH_ENDING", batches)
    try:
        await storage.open()
        await listener.open()
        await start(storage, "p")  # stays live: its 20 children end together
        for i in range(20):
            await start(storage, f"c{i}", "p")
            await start(storage, f"g{i}", f"c{i}", leased=False)  # policy "cancel" (None)
            await start(storage, f"a{i}", f"c{i}", leased=False, parent_close_policy="abandon")
        # A parent and a child ending in the same batch, and a child's plain write beside its
        # parent's end: each pair cannot share one statement.
        await start(storage, "x")
        await start(storage, "y", "x")
        await start(storage, "q")
        await start(storage, "z", "q")
        await asyncio.sleep(0.2)  # the listener is listening
        heard.clear()
        step = NewEvent(EventType.STEP_COMPLETED, {"v": 1, "result": 1})
        plain = AppendWrite("z", "w", 1, [step], now=5.0, lease_expires_at=LEASE)
        endings = [ending(run_id, "w") for run_id in ("x", "y", "q", *(f"c{i}" for i in range(20)))]
        results = await asyncio.gather(*(storage.append(w) for w in [*endings, plain]))
        assert [r.last_seq for r in results] == [2] * len(results)
        assert max(batches.sizes) > 10, batches.sizes  # they did share statements

        parent = await storage.get_run("p")
        assert parent is not None
        assert (parent.signal_seq, parent.wake_at) == (20, 5.0)  # one signal per child's end
        for i in range(20):
            grandchild, abandoned = await storage.get_run(f"g{i}"), await storage.get_run(f"a{i}")
            assert grandchild is not None
            assert abandoned is not None
            assert (grandchild.cancel_requested, grandchild.signal_seq) == (True, 1)
            assert grandchild.cancel_reason == f"parent run c{i} ended"
            assert (abandoned.cancel_requested, abandoned.signal_seq) == (False, 0)
        for run_id in ("x", "y", "q", "c0"):
            record = await storage.get_run(run_id)
            assert record is not None
            assert record.status is RunStatus.COMPLETED
        child_of_q = await storage.get_run("z")
        assert child_of_q is not None
        assert child_of_q.last_seq == 2
        assert child_of_q.cancel_requested
        await asyncio.wait_for(last_heard.wait(), 10)
        assert ("runnable", "p") in heard
        assert ("ended", "c19") in heard
        assert ("runnable", "a0") not in heard
    finally:
        await storage.close()
        await listener.close()
