"""B10 schedules: a scheduler's tick with 10,000 active schedules, and firing 1,000 due slots.

- Idle tick: 10,000 active schedules, none due. A scheduler's tick (``Scheduler.tick``: the
  due schedules, none, then the earliest ``due_at`` after now: two steps into
  ``ix_schedules_due_at``) is timed end to end, Python included, as the median of many ticks.
  Target: <= 2 ms. Beside it, in the same run, a point read of one run by id (``get_run``),
  the cheapest query there is.
- Firing: 1,000 of the 10,000 schedules come due at once; one tick fires them all (each slot's
  run created with the schedule's new state in one transaction). The benchmark moves their
  due times just before the tick; on PostgreSQL it then VACUUMs and ANALYZEs the table, as
  autovacuum would have done in the day since a real schedule's due time was set (``settle``). Baseline,
  alternated with it (A-B-B-A): storing 1,000 runs with ``start()`` in a client-only process
  (which only stores runs, as firing does; a process that executes them would also run their
  first turn). Target: firing <= 1.2x the baseline.

On SQLite (a file in $BENCH_DIR or the temp dir) and on PostgreSQL
(``$PYWORKFLOW_BENCH_POSTGRES``, default ``postgresql://postgres@127.0.0.1/pyworkflow_bench``,
a schema of its own, dropped afterwards; ``--no-postgres`` leaves it out).

Run: ``.venv/bin/python benchmarks/b10_schedules.py [--rounds 3] [--schedules 10000]``
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import sys
import time

import pyworkflow
from pyworkflow import start, workflow
from pyworkflow._engine.clock import SystemClock
from pyworkflow._engine.engine import Engine
from pyworkflow._engine.scheduler import Scheduler
from pyworkflow._schedules.specs import ScheduleSpec
from pyworkflow.events import ScheduleStatus
from pyworkflow.serialization import Codec
from pyworkflow.storage import Storage, storage_from_url
from pyworkflow.storage.records import ScheduleRecord

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(__file__))
    import _baseline as base
else:
    from . import _baseline as base

URL = os.environ.get(
    "PYWORKFLOW_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1/pyworkflow_bench"
)
TICK_TARGET_MS = 2.0
FIRE_TARGET = 1.2
DUE = 1000


@workflow(name="b10_job")
async def b10_job() -> int:
    return 1


def schedule(i: int, now: float, due: bool) -> ScheduleRecord:
    spec = ScheduleSpec(interval="1d").to_json()
    # Spread over the next day, none due; or due a second ago.
    slot = now - 1.0 if due else now + 60.0 + i * 8.0
    return ScheduleRecord(
        schedule_id=f"b10-{i:05d}",
        workflow_name="b10_job",
        spec=spec,
        args={"args": [], "kwargs": {}},
        overlap_policy="skip",
        catchup_window=None,
        status=ScheduleStatus.ACTIVE,
        next_slot_at=slot,
        due_at=slot,
        buffered=(),
        total_runs=0,
        skipped_runs=0,
        last_slot_at=None,
        last_run_id=None,
        created_at=now - 86400.0,
        updated_at=now,
    )


async def seed(storage: Storage, count: int) -> None:
    now = time.time()
    for begin in range(0, count, 500):
        await asyncio.gather(
            *(
                storage.create_schedule(schedule(i, now, due=False))
                for i in range(begin, min(count, begin + 500))
            )
        )


async def idle_tick_ms(scheduler: Scheduler, storage: Storage, ticks: int) -> tuple[float, float]:
    """Median ms of an idle tick, and of a point read (``get_run``) beside it."""
    for _ in range(20):  # warm: statements prepared, pages cached
        assert await scheduler.tick() is not None
    tick, read = [], []
    for _ in range(ticks):
        begin = time.perf_counter()
        next_due = await scheduler.tick()
        tick.append(time.perf_counter() - begin)
        assert next_due is not None
        assert next_due > time.time()
        begin = time.perf_counter()
        await storage.get_run("run_missing")
        read.append(time.perf_counter() - begin)
    return statistics.median(tick) * 1e3, statistics.median(read) * 1e3


async def make_due(storage: Storage, round_index: int) -> None:
    now = time.time()
    for begin in range(0, DUE, 250):
        ids = [f"b10-{round_index * DUE + i:05d}" for i in range(begin, begin + 250)]
        stored = await asyncio.gather(*(storage.get_schedule(s) for s in ids))
        await asyncio.gather(
            *(
                storage.update_schedule(
                    dataclasses.replace(s, next_slot_at=now - 1.0, due_at=now - 1.0)
                )
                for s in stored
                if s is not None
            )
        )


async def settle(url: str) -> None:
    """PostgreSQL: VACUUM ANALYZE the schedules, as autovacuum would have since they last moved.

    ``make_due`` moves 1,000 schedules' due times just before the tick, leaving their old index
    entries dead in the range a tick reads after firing. In life a schedule's due time was set
    when it last fired, long before, and autovacuum has removed such entries since, and has
    analyzed the table (without statistics the planner guesses a third of the schedules are
    due and scans them all for the first page).
    """
    if not url.startswith("postgresql"):
        return
    import asyncpg

    schema = url.partition("?schema=")[2]
    conn = await asyncpg.connect(URL)
    try:
        await conn.execute(f'VACUUM ANALYZE "{schema}".schedules')
    finally:
        await conn.close()


async def fire_seconds(scheduler: Scheduler, storage: Storage, round_index: int, url: str) -> float:
    await make_due(storage, round_index)
    await settle(url)
    begin = time.perf_counter()
    await scheduler.tick()
    elapsed = time.perf_counter() - begin
    ids = [f"b10-{round_index * DUE + i:05d}" for i in range(DUE)]
    live = await storage.live_schedule_runs(ids)
    assert sum(len(ids) for ids in live.values()) == DUE, live
    return elapsed


async def start_seconds(url: str) -> float:
    """Seconds to store ``DUE`` runs with ``start()`` in a client-only process on ``url``."""
    pyworkflow.configure(storage=url, client_only=True)
    try:
        await start(b10_job)  # warm: the storage opened, statements prepared
        begin = time.perf_counter()
        await asyncio.gather(*(start(b10_job) for _ in range(DUE)))
        return time.perf_counter() - begin
    finally:
        await pyworkflow.shutdown()


async def bench(url: str, schedules: int, rounds: int, ticks: int) -> dict[str, float]:
    storage = storage_from_url(url)
    await storage.open()
    try:
        begin = time.perf_counter()
        await seed(storage, schedules)
        seeded = time.perf_counter() - begin
        engine = Engine(storage=storage, codec=Codec(), clock=SystemClock(), owner="b10")
        scheduler = Scheduler(engine)
        tick_ms, read_ms = await idle_tick_ms(scheduler, storage, ticks)
        starts, fires = [], []
        for index in range(rounds):
            # A-B-B-A: the machine is shared, so neither side always goes first.
            if index % 2 == 0:
                starts.append(await start_seconds(url))
                fires.append(await fire_seconds(scheduler, storage, index, url))
            else:
                fires.append(await fire_seconds(scheduler, storage, index, url))
                starts.append(await start_seconds(url))
    finally:
        await storage.close()
    fire, started = statistics.median(fires), statistics.median(starts)
    return {
        "seed_s": seeded,
        "tick_ms": tick_ms,
        "read_ms": read_ms,
        "fire_ms": fire * 1e3,
        "start_ms": started * 1e3,
        "fire_ratio": statistics.median([f / s for f, s in zip(fires, starts, strict=True)]),
    }


def report(name: str, r: dict[str, float], schedules: int) -> bool:
    tick_ok = r["tick_ms"] <= TICK_TARGET_MS
    fire_ok = r["fire_ratio"] <= FIRE_TARGET
    print(f"B10 {name}: {schedules:,} active schedules (seeded in {r['seed_s']:.1f}s)")
    print(
        f"  idle tick: {r['tick_ms']:.3f} ms (point read beside it: {r['read_ms']:.3f} ms); "
        f"target <= {TICK_TARGET_MS:g} ms: {'MET' if tick_ok else 'MISSED'}"
    )
    print(
        f"  firing {DUE:,} due slots: {r['fire_ms']:.0f} ms; start() of {DUE:,} runs "
        f"(client only): {r['start_ms']:.0f} ms; ratio {r['fire_ratio']:.2f}x; target <= "
        f"{FIRE_TARGET:g}x: {'MET' if fire_ok else 'MISSED'}"
    )
    return tick_ok and fire_ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--ticks", type=int, default=300)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    assert args.rounds * DUE <= args.schedules
    results: dict[str, dict[str, float]] = {}
    with base.workdir("b10") as directory:
        url = f"sqlite:///{directory}/b10.db"
        results["sqlite"] = asyncio.run(bench(url, args.schedules, args.rounds, args.ticks))
    if not args.no_postgres:
        schema = f"b10_{os.getpid()}"
        try:
            results["postgres"] = asyncio.run(
                bench(f"{URL}?schema={schema}", args.schedules, args.rounds, args.ticks)
            )
        finally:
            asyncio.run(drop_schema(schema))
    reported = [report(name, r, args.schedules) for name, r in results.items()]
    met = all(reported)
    base.emit({"bench": "B10", **results, "met": met})
    return 0


async def drop_schema(schema: str) -> None:
    import asyncpg

    try:
        conn = await asyncpg.connect(URL)
    except (OSError, asyncpg.PostgresError):
        return
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


if __name__ == "__main__":
    sys.exit(main())
