"""EXPLAIN (ANALYZE) of the PostgreSQL storage's hot statements, on a schema of 20,000 runs.

Fills a fresh schema through the storage API (20,000 runs of 8 events; 9 in 10 completed, the
rest suspended with wake-up times spread over the next 1,000 s), runs ``ANALYZE``, then prints
the plan of each hot query as the PostgreSQL storage sends it: claiming due runs (rolled back), the
next wake-up, a run's events, a run, and listing by status, by workflow and by keyset page.

Run: ``.venv/bin/python benchmarks/pg_explain.py`` (``$PYWORKFLOW_BENCH_POSTGRES`` as in b6).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

import asyncpg

from pyworkflow.events import EventType, RunStatus
from pyworkflow.queues import DEFAULT_QUEUE
from pyworkflow.storage.postgres import PostgresStorage
from pyworkflow.storage.postgres._one_trip import claim_one_trip
from pyworkflow.storage.postgres._query import PgQuery, compile_once_off
from pyworkflow.storage.postgres._session import compiled
from pyworkflow.storage.records import AppendWrite, NewEvent, NewRun, RunCursor
from pyworkflow.storage.sql._statements.leases import next_wake_at_statements
from pyworkflow.storage.sql._statements.runs import GET_RUN, LOAD_EVENTS, list_runs_statement

URL = os.environ.get(
    "PYWORKFLOW_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1/pyworkflow_bench"
)
RUNS = 20_000
EXPLAIN = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "


async def fill(storage: PostgresStorage, now: float) -> None:
    limit = asyncio.Semaphore(20)

    async def one(i: int) -> None:
        async with limit:
            run_id = f"run_{i:06d}"
            new = NewRun(run_id, f"wf{i % 5}", {}, {"v": 1}, now - RUNS + i, lease_owner="w",
                         lease_expires_at=now + 60)  # fmt: skip
            await storage.create_run(new)
            done = i % 10 != 0
            events = [NewEvent(EventType.STEP_COMPLETED, {"v": 1, "result": i})] * 8
            await storage.append(
                AppendWrite(run_id, "w", 1, events, now,
                            status=RunStatus.COMPLETED if done else RunStatus.SUSPENDED,
                            wake_at=None if done else now + i % 1000, result=1 if done else None)
            )  # fmt: skip

    await asyncio.gather(*[one(i) for i in range(RUNS)])


async def show(conn: asyncpg.Connection, title: str, sql: str, args: list[Any]) -> None:
    print(f"--- {title}")
    for row in await conn.fetch(EXPLAIN + sql, *args):
        print("   ", row[0])


async def main() -> None:
    schema = f"explain_{uuid.uuid4().hex[:8]}"
    storage = PostgresStorage(f"{URL}?schema={schema}")
    await storage.open()
    conn = await asyncpg.connect(URL, server_settings={"search_path": schema})
    try:
        now = time.time()
        await fill(storage, now)
        await conn.execute("ANALYZE")
        names = [f"wf{i}" for i in range(5)]
        queues = [DEFAULT_QUEUE]  # a local worker's claim names its queues (issue 16)
        claim: PgQuery = compiled(claim_one_trip(True, False, by_queues=True))
        params = {"b_now": now + 50, "b_limit": 100, "b_owner": "x",
                  "b_lease_expires_at": now + 100, "b_names": names,
                  "b_queues": queues}  # fmt: skip
        claiming = conn.transaction()  # EXPLAIN ANALYZE runs the UPDATE: roll it back
        await claiming.start()
        await show(conn, "claim due runs", claim.sql, claim.args(params))
        await claiming.rollback()
        free, leased = map(compiled, next_wake_at_statements(True, True))
        served = {"b_names": names, "b_queues": queues}
        await show(conn, "next wake-up: first free run", free.sql, free.args(served))
        bound = {**served, "b_bound": now + 5}
        await show(conn, "next wake-up: leased runs", leased.sql, leased.args(bound))
        one = {"b_run_id": "run_000123", "b_after": 0}
        events, run = compiled(LOAD_EVENTS), compiled(GET_RUN)
        await show(conn, "events of a run", events.sql, events.args(one))
        await show(conn, "a run", run.sql, run.args(one))
        for title, stmt in [
            ("list by status", list_runs_statement(
                statuses=[RunStatus.SUSPENDED], workflow_name=None, limit=50, before=None)),
            ("list by workflow", list_runs_statement(
                statuses=None, workflow_name="wf3", limit=50, before=None)),
            ("list all, keyset page", list_runs_statement(
                statuses=None, workflow_name=None, limit=50,
                before=RunCursor(now - RUNS / 2, "run_010000"))),
        ]:  # fmt: skip
            sql, args = compile_once_off(stmt)
            await show(conn, title, sql, list(args))
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()
        await storage.close()


if __name__ == "__main__":
    asyncio.run(main())
