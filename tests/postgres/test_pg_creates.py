"""Runs started at once share one statement on PostgreSQL (``postgres/_creates``), each start still
getting its own answer: created, the existing run of its idempotency key, or its own error."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest

from postgres_server import PostgresServer
from pyworkflow.events import EventType, RunStatus
from pyworkflow.exceptions import IdempotencyConflictError
from pyworkflow.storage.postgres import PostgresStorage
from pyworkflow.storage.postgres import _creates as pg_creates
from pyworkflow.storage.records import NewEvent, NewRun, RunRecord


class Counting:
    """A stand-in for the batch statement that records how many runs each call carried."""

    def __init__(self, query: Any) -> None:
        self.query, self.sizes = query, []

    async def fetch(self, conn: asyncpg.Connection, params: dict[str, Any]) -> list[Any]:
        self.sizes.append(len(json.loads(params["b_runs"])))
        return await self.query.fetch(conn, params)  # type: ignore[no-any-return]


def new(run_id: str, workflow: str = "wf", key: str | None = None, **options: Any) -> NewRun:
    return NewRun(run_id, workflow, [run_id], {"v": 1}, now=1.0, idempotency_key=key, **options)


async def test_a_burst_of_starts_shares_statements_and_each_gets_its_own_answer(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One connection: the first start goes alone, the others queue into batches.
    storage = PostgresStorage(postgres_server.fresh_url(pool_size="1"))
    batches = Counting(pg_creates._CREATE_RUN_BATCH)
    monkeypatch.setattr(pg_creates, "_CREATE_RUN_BATCH", batches)
    await storage.open()
    try:
        await storage.create_run(new("old", key="k"))
        step = NewEvent(EventType.STEP_STARTED, {"v": 1, "step_id": "s#1"})
        burst = [
            *(new(f"r{i}", lease_owner="w", lease_expires_at=99.0, first_events=(step,))
              for i in range(30)),
            *(new(f"again{i}", key="k") for i in range(3)),  # the key of a stored run
            new("other", workflow="wf2", key="k"),  # ... held by another workflow
            *(new(f"same{i}", key="n") for i in range(4)),  # one key started 4 times at once
        ]  # fmt: skip
        results = await asyncio.gather(
            *(storage.create_run(run) for run in burst), return_exceptions=True
        )
        assert max(batches.sizes) > 1, batches.sizes  # the burst did share statements

        def answer(i: int) -> tuple[RunRecord, bool]:
            result = results[i]
            assert not isinstance(result, BaseException), result
            return result

        for i in range(30):
            record, created = answer(i)
            assert (record.run_id, created) == (f"r{i}", True)
            stored = await storage.get_run(f"r{i}")
            assert stored is not None
            assert (stored.lease_owner, stored.args, stored.last_seq) == ("w", [f"r{i}"], 2)
            events = await storage.load_events(f"r{i}")
            assert [(e.seq, e.type) for e in events] == [
                (1, EventType.WORKFLOW_STARTED),
                (2, EventType.STEP_STARTED),
            ]
        for i in range(30, 33):
            record, created = answer(i)
            assert (record.run_id, created) == ("old", False)
        assert isinstance(results[33], IdempotencyConflictError)
        same = [answer(i) for i in range(34, 38)]
        assert sum(created for _, created in same) == 1
        winner = next(record.run_id for record, created in same if created)
        assert {record.run_id for record, _ in same} == {winner}
        for loser in {f"same{i}" for i in range(4)} - {winner}:
            assert await storage.get_run(loser) is None
            assert await storage.load_events(loser) == []
        assert await storage.get_run("other") is None
        pending = await storage.get_run(winner)
        assert pending is not None
        assert pending.status is RunStatus.PENDING
    finally:
        await storage.close()


async def test_unleased_runs_started_together_each_wake_a_worker(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.fresh_url(pool_size="1")
    storage, listener = PostgresStorage(url), PostgresStorage(url)
    heard: list[tuple[str, str]] = []
    listener.subscribe(lambda kind, run_id: heard.append((kind, run_id)))
    await storage.open()
    await listener.open()
    try:
        await asyncio.sleep(0.2)  # the listener is listening
        leased = [new(f"l{i}", lease_owner="w", lease_expires_at=99.0) for i in range(5)]
        free = [new(f"f{i}") for i in range(5)]
        await asyncio.gather(*(storage.create_run(run) for run in [*leased, *free]))
        for _ in range(100):
            if len(heard) >= 5:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # and no more come
        assert sorted(heard) == [("runnable", f"f{i}") for i in range(5)]
    finally:
        await listener.close()
        await storage.close()


async def test_starts_made_while_one_is_under_way_leave_together_not_one_per_connection(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ten connections: room for ten statements at once, yet the starts of one pass of the
    # event loop need only one (each statement is a commit the server pays for).
    storage = PostgresStorage(postgres_server.fresh_url(pool_size="10"))
    batches = Counting(pg_creates._CREATE_RUN_BATCH)
    monkeypatch.setattr(pg_creates, "_CREATE_RUN_BATCH", batches)
    await storage.open()
    try:
        results = await asyncio.gather(*(storage.create_run(new(f"r{i}")) for i in range(50)))
        assert all(created for _, created in results)
        assert batches.sizes == [49]  # the first went alone, the other 49 in one statement
        assert len(await storage.list_runs(limit=100)) == 50
    finally:
        await storage.close()
