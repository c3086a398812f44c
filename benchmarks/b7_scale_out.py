"""B7 scale-out: steps/s of two worker processes on one PostgreSQL database vs one.

Each round stores 600 runs of a 3-step no-op workflow (not driven by the process that stores
them), then starts 1 or 2 ``pyworkflow worker run`` processes on them and polls the database
until every run completed. Throughput is measured between 10% and 90% of the runs completed, so
process start-up is left out. The CPU seconds of each worker and of the PostgreSQL server are
reported (this machine has 2 cores, shared by the workers and the server).

Target: 2 workers >= 1.3x the steps/s of 1.

Run: ``.venv/bin/python benchmarks/b7_scale_out.py [--rounds 2] [--runs 600]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid

import asyncpg
import psutil

import pyworkflow
from pyworkflow.runtime import get_runtime

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
import _baseline as base  # noqa: E402
from _scale_workflows import STEPS, b7_three_steps  # noqa: E402

URL = os.environ.get(
    "PYWORKFLOW_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1/pyworkflow_bench"
)
TARGET = 1.3


async def store_runs(url: str, runs: int) -> None:
    pyworkflow.configure(storage=url)
    try:
        executor = (await get_runtime()).executor
        executor.max_concurrent_runs = 0  # type: ignore[attr-defined]  # store, do not drive
        await asyncio.gather(*[pyworkflow.start(b7_three_steps) for _ in range(runs)])
    finally:
        await pyworkflow.shutdown()


async def completed(conn: asyncpg.Connection, schema: str) -> int:
    sql = f"SELECT count(*) FROM \"{schema}\".runs WHERE status = 'completed'"
    return int(await conn.fetchval(sql))


async def one_round(workers: int, runs: int) -> dict[str, float]:
    schema = f"scale_{uuid.uuid4().hex[:8]}"
    url = f"{URL}?schema={schema}"
    await store_runs(url, runs)
    env = {**os.environ, "PYTHONPATH": HERE, "PYWORKFLOW_STORAGE": url}
    conn = await asyncpg.connect(URL)
    pg_before = base.postgres_cpu()
    command = [sys.executable, "-m", "pyworkflow.cli", "--log-level", "warning", "worker", "run"]
    command += ["--module", "_scale_workflows", "--concurrency", "200"]
    procs = [
        subprocess.Popen(  # noqa: ASYNC220 (started once, before the measured window)
            command, env=env, cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(workers)
    ]
    try:
        low, high = runs // 10, runs - runs // 10
        t_low = t_high = None
        deadline = time.monotonic() + 300
        while t_high is None and time.monotonic() < deadline:
            done = await completed(conn, schema)
            now = time.perf_counter()
            if t_low is None and done >= low:
                t_low, n_low = now, done
            if done >= high:
                t_high, n_high = now, done
            await asyncio.sleep(0.02)
        assert t_low is not None, "the runs did not complete"
        assert t_high is not None, "the runs did not complete"
        cpu = [sum(psutil.Process(p.pid).cpu_times()[:2]) for p in procs]
        pg_cpu = base.postgres_cpu() - pg_before
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()
    rate = (n_high - n_low) * STEPS / (t_high - t_low)
    return {"rate": rate, "cpu": cpu, "pg_cpu": pg_cpu}  # type: ignore[dict-item]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--runs", type=int, default=600)
    args = parser.parse_args()
    ones, twos = [], []
    for _ in range(args.rounds):
        ones.append(asyncio.run(one_round(1, args.runs)))
        twos.append(asyncio.run(one_round(2, args.runs)))
    ratio = base.median([t["rate"] / o["rate"] for o, t in zip(ones, twos, strict=True)])
    ok = ratio >= TARGET
    one, two = ones[-1], twos[-1]
    print(f"B7 scale-out on PostgreSQL: {args.runs} runs x {STEPS} steps, {args.rounds} rounds")
    print(f"  1 worker:  {base.median([o['rate'] for o in ones]):,.0f} steps/s; CPU s: worker "
          f"{one['cpu'][0]:.1f}, postgres {one['pg_cpu']:.1f}")  # fmt: skip
    print(f"  2 workers: {base.median([t['rate'] for t in twos]):,.0f} steps/s; CPU s: workers "
          f"{', '.join(f'{c:.1f}' for c in two['cpu'])}, postgres {two['pg_cpu']:.1f}")  # fmt: skip
    print(f"  ratio {ratio:.2f}x; target >= {TARGET:g}x: {'MET' if ok else 'MISSED'}")
    base.emit({"bench": "B7", "one_worker": base.median([o["rate"] for o in ones]),
               "two_workers": base.median([t["rate"] for t in twos]), "ratio": ratio,
               "met": ok})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
