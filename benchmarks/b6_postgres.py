"""B6: B1 and B2 on PostgreSQL, against a raw asyncpg commit measured in the same run.

- floor: one raw asyncpg single-row ``INSERT`` (autocommit: one round trip, one commit) on one
  connection, in a table of its own in the same database.
- B1-PG: one workflow of 10 no-op steps, ``await pyworkflow.run(wf)`` 100 times in a row; wall
  time / 1,000 steps. Target <= 2.5x the floor.
- B2-PG: 500 workflows of 3 no-op steps started at once, every result awaited; steps/s vs the
  floor's commits/s on one connection. Target >= 2x (pooled connections share WAL flushes).

Each round measures the floor right before its subject; medians over rounds. Before its subject,
each round warms pyworkflow up with ``WARM_RUNS`` runs at once: that opens the pool's connections
and prepares their statements, as in a process that has been serving for a while (the floor's
connection is warm too). One run, as before December 2026, opened one connection, and B2 then
paid for opening the other nine. The database is
``$PYWORKFLOW_BENCH_POSTGRES`` (default ``postgresql://postgres@127.0.0.1/pyworkflow_bench``,
created if missing); every round uses a fresh schema in it, dropped afterwards.

Run: ``.venv/bin/python benchmarks/b6_postgres.py [--rounds 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid

import asyncpg

import pyworkflow
from pyworkflow import get_workflow_result, start, step, workflow
from pyworkflow.storage.postgres import PostgresStorage

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(__file__))
    import _baseline as base
else:
    from . import _baseline as base

URL = os.environ.get(
    "PYWORKFLOW_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1/pyworkflow_bench"
)
B1_STEPS, B2_STEPS = 10, 3
B1_TARGET, B2_TARGET = 2.5, 2.0
WARM_RUNS = 50  # more than the pool's 10 connections ever have in flight at once


@step()
async def b6_noop(i: int) -> int:
    return i


@workflow()
async def b6_ten_steps() -> int:
    return sum([await b6_noop(i) for i in range(B1_STEPS)])


@workflow()
async def b6_three_steps() -> int:
    return sum([await b6_noop(i) for i in range(B2_STEPS)])


async def asyncpg_commit(url: str, n: int = 500) -> float:
    """Seconds per raw asyncpg single-row INSERT (autocommit) on one connection."""
    conn = await asyncpg.connect(url)
    table = f"floor_{uuid.uuid4().hex[:8]}"
    try:
        await conn.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, v text NOT NULL)")
        for _ in range(20):
            await conn.execute(f"INSERT INTO {table} (v) VALUES ($1)", base.ROW)
        begin = time.perf_counter()
        for _ in range(n):
            await conn.execute(f"INSERT INTO {table} (v) VALUES ($1)", base.ROW)
        return (time.perf_counter() - begin) / n
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.close()


async def in_schema(body: object) -> float:
    """Run ``body()`` with pyworkflow on a fresh schema; drop the schema afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    storage = PostgresStorage(f"{URL}?schema={schema}")
    pyworkflow.configure(storage=storage)
    try:
        # Warm up: schema, every pooled connection, prepared statements.
        await asyncio.gather(*[pyworkflow.run(b6_three_steps) for _ in range(WARM_RUNS)])
        return await body()  # type: ignore[operator, no-any-return]
    finally:
        await pyworkflow.shutdown()
        conn = await asyncpg.connect(URL)
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


async def b1(runs: int) -> float:
    """Seconds per step over ``runs`` sequential runs."""
    begin = time.perf_counter()
    for _ in range(runs):
        assert await pyworkflow.run(b6_ten_steps) == sum(range(B1_STEPS))
    return (time.perf_counter() - begin) / (runs * B1_STEPS)


async def b2(runs: int) -> float:
    """Steps per second for ``runs`` runs started at once."""
    begin = time.perf_counter()
    ids = await asyncio.gather(*[start(b6_three_steps) for _ in range(runs)])
    results = await asyncio.gather(*[get_workflow_result(i) for i in ids])
    elapsed = time.perf_counter() - begin
    assert results == [sum(range(B2_STEPS))] * runs
    return runs * B2_STEPS / elapsed


async def ensure_database() -> None:
    await PostgresStorage(URL).open()  # creates the database and schema when missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--b1-runs", type=int, default=100)
    parser.add_argument("--b2-runs", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(ensure_database())
    floors1, steps, floors2, rates = [], [], [], []
    for _ in range(args.rounds):
        floors1.append(asyncio.run(asyncpg_commit(URL)))
        steps.append(asyncio.run(in_schema(lambda: b1(args.b1_runs))))
        floors2.append(asyncio.run(asyncpg_commit(URL)))
        rates.append(asyncio.run(in_schema(lambda: b2(args.b2_runs))))
    ratio1 = base.median([s / f for s, f in zip(steps, floors1, strict=True)])
    ratio2 = base.median([r * f for r, f in zip(rates, floors2, strict=True)])
    floor = base.median(floors1 + floors2)
    ok1, ok2 = ratio1 <= B1_TARGET, ratio2 >= B2_TARGET
    print(f"B6 PostgreSQL: {args.rounds} rounds (medians), {URL}")
    print(f"  raw asyncpg INSERT+COMMIT (floor): {base.us(floor)} ({1 / floor:,.0f} commits/s)")
    print(
        f"  B1-PG per step: {base.us(base.median(steps))} = {ratio1:.2f}x the floor; "
        f"target <= {B1_TARGET:g}x: {'MET' if ok1 else 'MISSED'}"
    )
    print(
        f"  B2-PG: {base.median(rates):,.0f} steps/s = {ratio2:.2f}x the floor's rate; "
        f"target >= {B2_TARGET:g}x: {'MET' if ok2 else 'MISSED'}"
    )
    base.emit(
        {
            "bench": "B6",
            "floor_us": floor * 1e6,
            "b1_step_us": base.median(steps) * 1e6,
            "b1_ratio": ratio1,
            "b2_steps_per_s": base.median(rates),
            "b2_ratio": ratio2,
            "met": ok1 and ok2,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
