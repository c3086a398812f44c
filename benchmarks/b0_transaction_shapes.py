"""B0 transaction shapes: why the SQLite storage runs each transaction on a thread of its own.

The same 3-statement write transaction (an UPDATE of a run row and two event INSERTs: the
shape of one step's append) issued from asyncio in four ways, each against the floor (one raw
``sqlite3`` single-row INSERT + COMMIT, WAL, ``synchronous=FULL``), in the same directory:

- ``inline``: the same raw ``sqlite3`` transaction run on the event loop's thread (blocking
  it): what the transaction itself costs against the 1-row floor, with no thread crossing.
- ``one hop``: raw ``sqlite3`` on a dedicated database thread; the coroutine hands the whole
  transaction (BEGIN IMMEDIATE, 3 statements, COMMIT) over once and awaits one future
  (``loop.run_in_executor`` on a one-thread pool): the shape ``SQLiteStorage`` uses.
- ``the hop alone``: the same round trip to the thread with no SQL in it: what crossing
  threads costs on this machine (a futex wake-up there, a self-pipe wake-up back).
- ``aiosqlite``: ``await db.execute(...)`` three times, then ``await db.commit()``.
- ``SQLAlchemy async``: an ``AsyncConnection`` of ``create_async_engine("sqlite+aiosqlite://")``,
  ``await conn.execute(core_stmt)`` three times, then ``await conn.commit()``.
- ``pyworkflow append``: ``SQLiteStorage.append`` of one turn (UPDATE runs + 2 event INSERTs,
  lease and seq checked), one at a time: the real thing, without group commit's help.

Each round measures every shape (200 transactions each) right after the floor; the ratios are
medians of the per-round ratios. Transactions run one at a time: this is latency, not
throughput (B2 measures group commit).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import sqlite3
import sys
import time
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(__file__))
    import _baseline as base
else:
    from . import _baseline as base

ROW = base.ROW
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, run INTEGER, v TEXT NOT NULL)",
    "INSERT OR IGNORE INTO runs (id, n) VALUES (1, 0)",
)
UPDATE = "UPDATE runs SET n = n + 1 WHERE id = 1"
INSERT = "INSERT INTO events (run, v) VALUES (1, ?)"


def _prepare(directory: str, stem: str) -> str:
    path = base._fresh(directory, stem)
    con = base.open_raw(path)
    for sql in SCHEMA:
        con.execute(sql)
    con.commit()
    con.close()
    return path


async def inline(directory: str, n: int) -> float:
    path = _prepare(directory, "inline")
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA synchronous=FULL")
    try:

        def txn() -> None:
            con.execute("BEGIN IMMEDIATE")
            con.execute(UPDATE)
            con.execute(INSERT, (ROW,))
            con.execute(INSERT, (ROW,))
            con.execute("COMMIT")

        for _ in range(10):
            txn()
        start = time.perf_counter()
        for _ in range(n):
            txn()
        return (time.perf_counter() - start) / n
    finally:
        con.close()


async def one_hop(directory: str, n: int) -> float:
    path = _prepare(directory, "hop")
    pool = concurrent.futures.ThreadPoolExecutor(1)
    state: dict[str, sqlite3.Connection] = {}

    def connect() -> None:
        con = sqlite3.connect(path, isolation_level=None)  # we issue BEGIN/COMMIT ourselves
        con.execute("PRAGMA synchronous=FULL")
        state["con"] = con

    def txn() -> None:
        con = state["con"]
        con.execute("BEGIN IMMEDIATE")
        con.execute(UPDATE)
        con.execute(INSERT, (ROW,))
        con.execute(INSERT, (ROW,))
        con.execute("COMMIT")

    loop = asyncio.get_running_loop()
    await loop.run_in_executor(pool, connect)
    try:
        for _ in range(10):
            await loop.run_in_executor(pool, txn)
        start = time.perf_counter()
        for _ in range(n):
            await loop.run_in_executor(pool, txn)
        return (time.perf_counter() - start) / n
    finally:
        await loop.run_in_executor(pool, state["con"].close)
        pool.shutdown()


async def empty_hop(directory: str, n: int) -> float:
    pool = concurrent.futures.ThreadPoolExecutor(1)
    loop = asyncio.get_running_loop()
    try:
        for _ in range(10):
            await loop.run_in_executor(pool, int)
        start = time.perf_counter()
        for _ in range(n):
            await loop.run_in_executor(pool, int)
        return (time.perf_counter() - start) / n
    finally:
        pool.shutdown()


async def aiosqlite_awaits(directory: str, n: int) -> float:
    import aiosqlite

    path = _prepare(directory, "aio3")
    async with aiosqlite.connect(path) as db:
        await db.execute("PRAGMA synchronous=FULL")

        async def txn() -> None:
            await db.execute(UPDATE)
            await db.execute(INSERT, (ROW,))
            await db.execute(INSERT, (ROW,))
            await db.commit()

        for _ in range(10):
            await txn()
        start = time.perf_counter()
        for _ in range(n):
            await txn()
        return (time.perf_counter() - start) / n


async def sqlalchemy_async(directory: str, n: int) -> float:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    path = _prepare(directory, "sa")
    meta = sa.MetaData()
    runs = sa.Table(
        "runs", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("n", sa.Integer)
    )
    events = sa.Table(
        "events",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run", sa.Integer),
        sa.Column("v", sa.Text),
    )
    update = sa.update(runs).where(runs.c.id == 1).values(n=runs.c.n + 1)
    insert = sa.insert(events)
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA synchronous=FULL")
            await conn.commit()

            async def txn() -> None:
                await conn.execute(update)
                await conn.execute(insert, {"run": 1, "v": ROW})
                await conn.execute(insert, {"run": 1, "v": ROW})
                await conn.commit()

            for _ in range(10):
                await txn()
            start = time.perf_counter()
            for _ in range(n):
                await txn()
            return (time.perf_counter() - start) / n
    finally:
        await engine.dispose()


async def pyworkflow_append(directory: str, n: int) -> float:
    from pyworkflow._engine.event_kinds import EVENT_FORMAT
    from pyworkflow.events import EventType, RunStatus
    from pyworkflow.storage.records import AppendWrite, NewEvent, NewRun
    from pyworkflow.storage.sqlite import SQLiteStorage

    storage = SQLiteStorage(os.path.join(directory, f"pw-{time.perf_counter_ns()}.db"))
    await storage.open()
    try:
        now = time.time()
        args: dict[str, Any] = {"args": [], "kwargs": {}}
        record, _ = await storage.create_run(
            NewRun(
                run_id="run_b0",
                workflow_name="b0",
                args=args,
                started_payload={
                    "v": EVENT_FORMAT,
                    "workflow": "b0",
                    "args": args,
                    "idempotency_key": None,
                },
                now=now,
                lease_owner="b0",
                lease_expires_at=now + 3600,
            )
        )
        seq = record.last_seq

        async def txn(i: int) -> None:
            nonlocal seq
            events = [
                NewEvent(
                    EventType.STEP_COMPLETED,
                    {"v": EVENT_FORMAT, "step_id": f"noop#{i}", "result": i},
                ),
                NewEvent(
                    EventType.STEP_STARTED,
                    {
                        "v": EVENT_FORMAT,
                        "step_id": f"noop#{i + 1}",
                        "name": "noop",
                        "attempt": 1,
                        "args": {"args": [i + 1], "kwargs": {}},
                    },
                ),
            ]
            result = await storage.append(
                AppendWrite(
                    run_id="run_b0",
                    owner="b0",
                    expected_seq=seq,
                    events=events,
                    now=now,
                    status=RunStatus.RUNNING,
                    wake_at=now + 3600,
                    lease_expires_at=now + 3600,
                    progressed=True,
                )
            )
            seq = result.last_seq

        for i in range(10):
            await txn(i)
        start = time.perf_counter()
        for i in range(10, 10 + n):
            await txn(i)
        return (time.perf_counter() - start) / n
    finally:
        await storage.close()


SHAPES = {
    "raw sqlite3 3-stmt txn, inline (no hop)": inline,
    "one hop (raw sqlite3, db thread)": one_hop,
    "the hop alone (no SQL)": empty_hop,
    "aiosqlite, 3 awaits + commit": aiosqlite_awaits,
    "SQLAlchemy async, 3 stmts + commit": sqlalchemy_async,
    "pyworkflow SQLiteStorage.append": pyworkflow_append,
}


async def measure(directory: str, rounds: int, n: int) -> dict[str, Any]:
    floors: list[float] = []
    times: dict[str, list[float]] = {k: [] for k in SHAPES}
    ratios: dict[str, list[float]] = {k: [] for k in SHAPES}
    skipped: dict[str, str] = {}
    for _ in range(rounds):
        floor = base.sqlite3_commit(directory, n)
        floors.append(floor)
        for name, shape in SHAPES.items():
            if name in skipped:
                continue
            try:
                t = await shape(directory, n)
            except ImportError as exc:  # greenlet missing for the async engine, say
                skipped[name] = f"{type(exc).__name__}: {exc}"
                continue
            times[name].append(t)
            ratios[name].append(t / floor)
    return {
        "floor": base.median(floors),
        "shapes": {
            k: {"us": base.median(v) * 1e6, "ratio": base.median(ratios[k])}
            for k, v in times.items()
            if v
        },
        "skipped": skipped,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    with base.workdir("b0") as directory:
        m = asyncio.run(measure(directory, args.rounds, args.n))
    print(
        f"B0 transaction shapes: a 3-statement write transaction from asyncio, {args.rounds} "
        "rounds (medians)"
    )
    print(f"  {'floor: raw sqlite3 1-row INSERT+COMMIT':<40} {base.us(m['floor'] / 1):>10}  1.00x")
    for name, r in m["shapes"].items():
        print(f"  {name:<40} {r['us']:>7,.0f} us  {r['ratio']:.2f}x")
    for name, why in m["skipped"].items():
        print(f"  {name:<40} skipped ({why})")
    base.emit(
        {
            "bench": "B0",
            "floor_us": m["floor"] * 1e6,
            "shapes": m["shapes"],
            "skipped": m["skipped"],
            "met": None,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
