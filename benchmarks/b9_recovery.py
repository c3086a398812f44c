"""B9 recovery: a worker killed with 100 runs inside a 2 s step, and started again.

Each round stores 100 runs of a one-step workflow whose step takes 2 s, starts a
``pyworkflow worker run`` process on them, waits until every run is inside its step, kills the
process with SIGKILL and starts a new one at once. The figure is the time from the new
process saying it serves (its imports and storage opened) to the last run completed: the
redone step (2 s) and whatever the process waited before taking the runs over; the time from
its spawn is printed too. The baseline, in the same round, is 100 fresh runs under a fresh
process: the same work with nothing to take over.

Before issue 16 the new process waited for the dead one's leases to lapse (default 15 s): 16.5 s
on SQLite and on PostgreSQL. It now sees the dead process dead (its lock file on SQLite, its
session's advisory lock on PostgreSQL) and takes the runs over at once.

Target: all complete within 1.25x the redone step (2.5 s) after the restart, with the default
lease, on SQLite and on PostgreSQL.

Run: ``.venv/bin/python benchmarks/b9_recovery.py [--rounds 2] [--runs 100]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg

import pyworkflow
from pyworkflow.runtime import get_runtime

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
import _baseline as base  # noqa: E402
from _recovery_workflows import STEP_SECONDS, b9_one_long_step  # noqa: E402

PG = os.environ.get("PYWORKFLOW_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1/pyworkflow_bench")
TARGET = 1.25 * STEP_SECONDS

Count = Callable[[str], Awaitable[int]]


async def store_runs(url: str, runs: int) -> None:
    pyworkflow.configure(storage=url)
    try:
        executor = (await get_runtime()).executor
        executor.max_concurrent_runs = 0  # type: ignore[attr-defined]  # store, do not drive
        await asyncio.gather(*[pyworkflow.start(b9_one_long_step, i) for i in range(runs)])
    finally:
        await pyworkflow.shutdown()


def worker(url: str, log: str, step_seconds: float = STEP_SECONDS) -> subprocess.Popen[bytes]:
    """A worker process, its log (info: it says when it serves) written to ``log``."""
    env = {**os.environ, "PYTHONPATH": HERE, "PYWORKFLOW_STORAGE": url}
    env["B9_STEP_SECONDS"] = str(step_seconds)
    command = [sys.executable, "-m", "pyworkflow.cli", "--log-level", "info", "worker", "run"]
    command += ["--module", "_recovery_workflows"]
    with open(log, "wb") as out:
        return subprocess.Popen(command, env=env, cwd=HERE, stdout=out, stderr=subprocess.STDOUT)


async def serving(log: str, within: float = 60) -> float:
    """When the worker writing ``log`` said it serves (its start-up and storage are done)."""
    deadline = time.monotonic() + within
    while True:
        with open(log, "rb") as text:  # noqa: ASYNC230 (a tiny file, polled)
            if b" serving " in text.read():
                return time.perf_counter()
        assert time.monotonic() < deadline, f"the worker did not start within {within}s"
        await asyncio.sleep(0.002)


async def wait_for(count: Count, status: str, n: int, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while await count(status) < n:
        assert time.monotonic() < deadline, f"fewer than {n} runs {status} after {within}s"
        await asyncio.sleep(0.01)


async def one_round(url: str, count: Count, runs: int, logs: str) -> dict[str, float]:
    """Seconds to complete from a fresh start and after a kill -9, from spawn and from serving."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        await store_runs(url, runs)
        began = time.perf_counter()
        procs.append(worker(url, f"{logs}/fresh.log"))
        ready = await serving(f"{logs}/fresh.log")
        await wait_for(count, "completed", runs)
        fresh, fresh_served = time.perf_counter() - began, time.perf_counter() - ready
        procs[-1].send_signal(signal.SIGTERM)  # or it would take the killed one's runs over
        procs[-1].wait()

        await store_runs(url, runs)
        procs.append(worker(url, f"{logs}/killed.log", step_seconds=3600))
        await wait_for(count, "running", runs)
        await asyncio.sleep(0.3)  # every step has begun
        procs[-1].send_signal(signal.SIGKILL)
        procs[-1].wait()
        began = time.perf_counter()
        procs.append(worker(url, f"{logs}/restarted.log"))
        ready = await serving(f"{logs}/restarted.log")
        await wait_for(count, "completed", 2 * runs)
        recovered, served = time.perf_counter() - began, time.perf_counter() - ready
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    return {
        "fresh": fresh,
        "fresh_served": fresh_served,
        "recovered": recovered,
        "served": served,
    }


async def sqlite_round(runs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "b9.db")

        async def count(status: str) -> int:
            with sqlite3.connect(path) as db:
                row = db.execute("SELECT count(*) FROM runs WHERE status = ?", (status,))
                return int(row.fetchone()[0])

        return await one_round(f"sqlite:///{path}", count, runs, tmp)


async def postgres_round(runs: int) -> dict[str, float]:
    schema = f"recovery_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG)

    async def count(status: str) -> int:
        sql = f'SELECT count(*) FROM "{schema}".runs WHERE status = $1'
        return int(await conn.fetchval(sql, status))

    try:
        with tempfile.TemporaryDirectory() as tmp:
            return await one_round(f"{PG}?schema={schema}", count, runs, tmp)
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    print(f"B9 recovery: {args.runs} runs in a {STEP_SECONDS:g} s step, kill -9, restart")
    results: dict[str, float] = {}
    met = True
    for name, one in (("sqlite", sqlite_round), ("postgres", postgres_round)):
        rounds = [asyncio.run(one(args.runs)) for _ in range(args.rounds)]
        medians = {key: base.median([r[key] for r in rounds]) for key in rounds[0]}
        served = medians["served"]
        each = ", ".join(f"{r['served']:.2f}" for r in rounds)
        ok = served <= TARGET
        met = met and ok
        print(
            f"  {name:9s} after kill -9: {served:.2f} s from the new worker serving "
            f"(rounds {each}), {medians['recovered']:.2f} s from its spawn; a fresh start of "
            f"the same runs: {medians['fresh_served']:.2f} s / {medians['fresh']:.2f} s; "
            f"target <= {TARGET:g} s: {'MET' if ok else 'MISSED'}"
        )
        results.update({f"{name}_{key}": value for key, value in medians.items()})
    base.emit({"bench": "B9", **results, "met": met})
    return 0


if __name__ == "__main__":
    sys.exit(main())
