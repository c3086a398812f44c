"""B12 payload limits: what big step results and long histories cost, on SQLite and PostgreSQL.

Payloads: a workflow whose one step returns a string of S bytes (1 KB, 100 KB, 1 MB, 10 MB)
and which returns only its length, run with ``await pyworkflow.run(wf, S)``; the wall time
per run, median of several runs per size. The step's result is written once (in its
``STEP_COMPLETED`` event) and read back by nothing else while the run is live. Baseline, in
the same round, on the same database: a raw single-row INSERT + COMMIT of the same S bytes
(stdlib ``sqlite3`` in WAL with ``synchronous=FULL``; asyncpg in autocommit). The run of a
0-byte result gives the fixed cost of a run; "over empty" is what the payload itself adds.

History: a run of n no-op steps and then ``sleep("1h")`` has 2n + 2 events (WORKFLOW_STARTED,
n STEP_STARTED/STEP_COMPLETED pairs, SLEEP_STARTED): n = 4, 499, 4,999 give 10, 1,000 and
10,000 events. Each is built by running the workflow until it suspends; its resume is timed
as a driver does it after a restart: a fresh storage object opened, ``get_run``,
``load_events``, ``WorkflowActivation(...).replay(events)`` until it has caught up (waits on
the logged sleep, nothing diverged). Median of 5 resumes. A run of one 10 MB step result
resumed the same way shows what a big payload adds to every replay.

The limits of the databases themselves (PostgreSQL's 1 GB per value, SQLite's
``SQLITE_LIMIT_LENGTH`` read from the linked library) are printed, not provoked: a 1 GB value
needs several GB of memory here. pyworkflow enforces no size limit of its own.

Run: ``.venv/bin/python benchmarks/b12_payload_limits.py [--skip-postgres]`` (about 1-2 min).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sqlite3
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pyworkflow
from pyworkflow import sleep, start, step, unfinished, workflow
from pyworkflow._engine.activation import WorkflowActivation
from pyworkflow._engine.clock import SystemClock
from pyworkflow.events import RunStatus
from pyworkflow.serialization import Codec
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.sqlite import SQLiteStorage
from pyworkflow.workflow import Workflow

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(__file__))
    import _baseline as base
else:
    from . import _baseline as base

PG_URL = os.environ.get(
    "PYWORKFLOW_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1/pyworkflow_bench"
)
KB = 1024
SIZES = {"0": 0, "1 KB": KB, "100 KB": 100 * KB, "1 MB": KB * KB, "10 MB": 10 * KB * KB}
REPEATS = {0: 20, KB: 20, 100 * KB: 10, KB * KB: 5, 10 * KB * KB: 2}  # runs per round
ROUNDS = 3
HISTORY = {10: 4, 1000: 499, 10000: 4999}  # events -> steps
RESUMES = 5


@step()
async def b12_produce(size: int) -> str:
    return "x" * size


@workflow()
async def b12_payload(size: int) -> int:
    return len(await b12_produce(size))


@step()
async def b12_noop(i: int) -> int:
    return i


@workflow()
async def b12_history(n: int) -> int:
    for i in range(n):
        await b12_noop(i)
    await sleep("1h")
    return n


@workflow()
async def b12_big_then_sleep(size: int) -> int:
    result = await b12_produce(size)
    await sleep("1h")
    return len(result)


# --- baselines -----------------------------------------------------------------------------------


def sqlite_raw(directory: str, size: int, n: int) -> float:
    """Seconds per raw sqlite3 INSERT + COMMIT of ``size`` bytes (WAL, synchronous=FULL)."""
    con = base.open_raw(os.path.join(directory, f"raw-{uuid.uuid4().hex[:6]}.db"))
    value = "x" * size
    try:
        con.execute("INSERT INTO t (v) VALUES (?)", (value,))
        con.commit()
        begin = time.perf_counter()
        for _ in range(n):
            con.execute("INSERT INTO t (v) VALUES (?)", (value,))
            con.commit()
        return (time.perf_counter() - begin) / n
    finally:
        con.close()


async def pg_raw(size: int, n: int) -> float:
    """Seconds per raw asyncpg INSERT (autocommit) of ``size`` bytes on one connection."""
    import asyncpg

    conn = await asyncpg.connect(PG_URL)
    table = f"b12_raw_{uuid.uuid4().hex[:8]}"
    value = "x" * size
    try:
        await conn.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, v text NOT NULL)")
        await conn.execute(f"INSERT INTO {table} (v) VALUES ($1)", value)
        begin = time.perf_counter()
        for _ in range(n):
            await conn.execute(f"INSERT INTO {table} (v) VALUES ($1)", value)
        return (time.perf_counter() - begin) / n
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.close()


# --- subjects ------------------------------------------------------------------------------------


async def payload_runs(size: int, n: int) -> float:
    """Seconds per ``run(b12_payload, size)`` on the configured storage (after one warm-up)."""
    assert await pyworkflow.run(b12_payload, size) == size
    begin = time.perf_counter()
    for _ in range(n):
        assert await pyworkflow.run(b12_payload, size) == size
    return (time.perf_counter() - begin) / n


async def suspended(wf: Workflow[..., Any], arg: int) -> str:
    """Start ``wf(arg)`` and wait until it suspends on its sleep; its run id."""
    run_id = await start(wf, arg)
    while True:
        status = (await pyworkflow.get_workflow_run(run_id)).status
        if status is RunStatus.SUSPENDED:
            return run_id
        if status.is_terminal:
            raise RuntimeError(f"run {run_id} ended {status.value} while building")
        await asyncio.sleep(0.02)


async def resume(
    make: Callable[[], Storage], wf: Workflow[..., Any], run_id: str
) -> tuple[float, float]:
    """Seconds for a driver's resume: opening storage; reading the run and its log, replaying."""
    codec, clock = Codec(), SystemClock()
    begin = time.perf_counter()
    storage = make()
    await storage.open()
    opened = time.perf_counter()
    try:
        run = await storage.get_run(run_id)
        assert run is not None
        events = await storage.load_events(run_id)
        call = codec.decode(run.args)
        activation = WorkflowActivation(
            run_id=run_id,
            workflow=wf,
            args=tuple(call["args"]),
            kwargs=dict(call["kwargs"]),
            codec=codec,
            clock=clock,
        )
        turn = activation.replay(events)
        done = time.perf_counter()
        assert activation.divergence is None, activation.divergence
        assert [c.kind for c in turn.launch] == ["sleep"], turn.launch  # caught up
        activation.close()
        return opened - begin, done - opened
    finally:
        await storage.close()


async def histories(make: Callable[[], Storage]) -> dict[str, dict[str, float]]:
    """Median resume seconds (open; read + replay) of runs of 10, 1,000, 10,000 events and
    of one 10 MB result."""
    runs: dict[str, tuple[Workflow[..., Any], str]] = {}
    for events, steps in HISTORY.items():
        runs[f"{events:,} events"] = (b12_history, await suspended(b12_history, steps))
    runs["10 MB result"] = (b12_big_then_sleep, await suspended(b12_big_then_sleep, 10 * KB * KB))
    for _, run_id in runs.values():
        unfinished.forget(run_id)  # left suspended on purpose, in a database about to go
    await pyworkflow.shutdown()  # the builder's process is gone, as after a restart
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in runs}
    for _ in range(RESUMES):
        for label, (wf, run_id) in runs.items():
            times[label].append(await resume(make, wf, run_id))
    return {
        k: {"open": base.median([o for o, _ in v]), "replay": base.median([r for _, r in v])}
        for k, v in times.items()
    }


async def measure(
    configure: Callable[[], Storage],
    make: Callable[[], Storage],
    raw: Callable[[int, int], Awaitable[float]],
) -> dict[str, Any]:
    """Payload rows (run and raw seconds per size) and history rows on one backend."""
    samples: dict[str, list[tuple[float, float]]] = {label: [] for label in SIZES}
    pyworkflow.configure(storage=configure())
    try:
        for _ in range(ROUNDS):  # baseline and subject side by side, every size in each round
            for label, size in SIZES.items():
                n = REPEATS[size]
                floor = await raw(size, n)
                samples[label].append((await payload_runs(size, n), floor))
        replay = await histories(make)
    finally:
        await pyworkflow.shutdown()
    rows = {
        label: {
            "size": SIZES[label],
            "run": base.median([run for run, _ in got]),
            "raw": base.median([floor for _, floor in got]),
        }
        for label, got in samples.items()
    }
    return {"payload": rows, "replay": replay}


def report(name: str, found: dict[str, Any]) -> None:
    rows = found["payload"]
    empty = rows["0"]["run"]
    print(f"  {name}: a step returning S bytes, run() per run (median), vs a raw INSERT+COMMIT")
    print(f"    {'S':>7} {'run':>10} {'over empty':>11} {'raw':>10} {'ratio':>7} {'MB/s':>7}")
    for label, r in rows.items():
        over = r["run"] - empty
        rate = f"{r['size'] / over / 1e6:7.1f}" if r["size"] and over > 0 else f"{'-':>7}"
        print(
            f"    {label:>7} {r['run'] * 1e3:8.2f}ms {over * 1e3:9.2f}ms "
            f"{r['raw'] * 1e3:8.2f}ms {r['run'] / r['raw']:6.1f}x {rate}"
        )
    print(
        f"  {name}: resume after a restart (median): storage opened; get_run + load_events + replay"
    )
    for label, t in found["replay"].items():
        opened, replayed = t["open"] * 1e3, t["replay"] * 1e3
        print(f"    {label:>15} open {opened:6.1f} ms; read + replay {replayed:7.1f} ms")


def sqlite_length_limit() -> int:
    con = sqlite3.connect(":memory:")
    try:
        return con.getlimit(sqlite3.SQLITE_LIMIT_LENGTH)
    finally:
        con.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    began = time.perf_counter()
    results: dict[str, Any] = {}
    with base.workdir("b12") as directory:
        url = f"sqlite:///{os.path.join(directory, 'b12.db')}"

        async def raw_sqlite(size: int, n: int) -> float:
            return sqlite_raw(directory, size, n)

        results["sqlite"] = asyncio.run(
            measure(
                lambda: SQLiteStorage(url), lambda: SQLiteStorage(url, create=False), raw_sqlite
            )
        )
    if not args.skip_postgres:
        import asyncpg

        from pyworkflow.storage.postgres import PostgresStorage

        schema = f"b12_{uuid.uuid4().hex[:8]}"
        schema_url = f"{PG_URL}?schema={schema}"
        try:
            results["postgres"] = asyncio.run(
                measure(
                    lambda: PostgresStorage(schema_url),
                    lambda: PostgresStorage(schema_url, create=False),
                    pg_raw,
                )
            )
        finally:

            async def drop() -> None:
                conn = await asyncpg.connect(PG_URL)
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                await conn.close()

            asyncio.run(drop())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"B12 payload sizes and history length (load average {os.getloadavg()[0]:.2f})")
    for name, found in results.items():
        report(name, found)
    print(
        f"  limits of the databases: SQLite SQLITE_LIMIT_LENGTH {sqlite_length_limit():,} bytes "
        f"(this build); PostgreSQL 1 GB per text value; pyworkflow: none of its own"
    )
    print(f"  peak RSS of this process: {peak:,.0f} MB; {time.perf_counter() - began:.0f} s")
    base.emit({"bench": "B12", "results": results, "peak_rss_mb": peak})
    return 0


if __name__ == "__main__":
    sys.exit(main())
