"""B8 Celery: per-step latency, throughput and force_local steps on real Celery workers.

One Celery worker (``celery -A _celery_bench_app worker -c 2``: two pool processes) on the
local Redis serves both the raw baseline and pyworkflow; storage is a fresh PostgreSQL schema
per round. Measured, interleaved over the rounds:

- latency: a 10-step no-op workflow run end to end (``pyworkflow.run``), wall time / 10, vs a
  raw Celery no-op task's round trip (``noop.delay().get()``) on the same broker and worker.
  Target: <= 2x.
- throughput: 500 workflows x 3 no-op steps started at once, steps/s until all completed, vs
  raw no-op tasks/s (2,000 sent at once, all results awaited). Target: >= 0.35x.
- force_local: workflows of 5 and of 45 ``force_local`` steps on Celery (one advance task
  runs them all inline); the per-step latency is the slope, (T(45) - T(5)) / 40, so the run's
  fixed cost (a broker hop to start it, and the client hearing of its end) is left out and
  reported apart. The same on the local executor and the same storage. Target: <= 1.2x.

Also reported: the CPU seconds of the worker processes and of PostgreSQL during the
throughput round, and broker hops per step.

Run: ``.venv/bin/python benchmarks/b8_celery.py [--rounds 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

import psutil
import redis

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import _baseline as base  # noqa: E402
import _celery_bench_app as bench  # noqa: E402

import pyworkflow  # noqa: E402

PG = os.environ.get("PYWORKFLOW_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1/pyworkflow_bench")


def start_worker(storage: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": HERE,
        "PYWORKFLOW_STORAGE": storage,
        "PYWORKFLOW_MODULES": "_celery_bench_app",
        "PYWORKFLOW_BROKER": bench.BROKER,
    }
    log = open(os.path.join(tempfile.gettempdir(), "b8_worker.log"), "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "_celery_bench_app",
            "worker",
            "-c",
            "2",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=HERE,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 30
    while time.time() < deadline:  # ready when it answers a raw task
        try:
            bench.noop.delay().get(timeout=1)
            return proc
        except Exception:
            time.sleep(0.2)
    raise RuntimeError("the Celery worker did not come up; see b8_worker.log")


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.kill()


def worker_cpu(proc: subprocess.Popen[bytes]) -> float:
    parent = psutil.Process(proc.pid)
    total = 0.0
    for p in [parent, *parent.children(recursive=True)]:
        times = p.cpu_times()
        total += times.user + times.system
    return total


def raw_latency(n: int = 200) -> float:
    bench.noop.delay().get(timeout=10)
    start = time.perf_counter()
    for _ in range(n):
        bench.noop.delay().get(timeout=10)
    return (time.perf_counter() - start) / n


def raw_throughput(n: int = 2000) -> float:
    start = time.perf_counter()
    results = [bench.noop.delay() for _ in range(n)]
    for result in results:
        result.get(timeout=60)
    return n / (time.perf_counter() - start)


async def wf_latency(runs: int = 20) -> float:
    await pyworkflow.run(bench.b8_ten_steps)  # warm the connections
    start = time.perf_counter()
    for _ in range(runs):
        await pyworkflow.run(bench.b8_ten_steps)
    return (time.perf_counter() - start) / (runs * 10)


async def wf_throughput(runs: int = 500) -> float:
    start = time.perf_counter()
    ids = await asyncio.gather(*[pyworkflow.start(bench.b8_three_steps) for _ in range(runs)])
    for run_id in ids:
        await pyworkflow.get_workflow_result(run_id, timeout=300)
    return runs * 3 / (time.perf_counter() - start)


async def local_steps(runs: int = 20) -> tuple[float, float]:
    """Per-step slope and fixed cost per run of workflows of ``force_local`` steps."""
    await pyworkflow.run(bench.b8_local_steps, 5)
    times = {}
    for n in (5, 45):
        start = time.perf_counter()
        for _ in range(runs):
            await pyworkflow.run(bench.b8_local_steps, n)
        times[n] = (time.perf_counter() - start) / runs
    slope = (times[45] - times[5]) / 40
    return slope, times[5] - 5 * slope


async def with_runtime(body: Any, **settings: Any) -> Any:
    pyworkflow.configure(**settings)
    try:
        return await body
    finally:
        await pyworkflow.shutdown()


def one_round() -> dict[str, float]:
    redis.Redis.from_url(bench.BROKER).flushdb()
    storage = f"{PG}?schema=b8_{uuid.uuid4().hex[:8]}"
    celery = {"storage": storage, "executor": "celery", "celery_app": bench.app}
    asyncio.run(with_runtime(asyncio.sleep(0), **celery))  # create the schema first
    worker = start_worker(storage)
    try:
        out: dict[str, float] = {}
        out["raw_latency"] = raw_latency()
        out["wf_latency"] = asyncio.run(with_runtime(wf_latency(), **celery))
        out["raw_throughput"] = raw_throughput()
        cpu0, pg0 = worker_cpu(worker), base.postgres_cpu()
        out["wf_throughput"] = asyncio.run(with_runtime(wf_throughput(), **celery))
        out["worker_cpu"], out["pg_cpu"] = worker_cpu(worker) - cpu0, base.postgres_cpu() - pg0
        out["celery_local"], out["celery_fixed"] = asyncio.run(
            with_runtime(local_steps(), **celery)
        )
    finally:
        stop_worker(worker)
    out["local_local"], out["local_fixed"] = asyncio.run(
        with_runtime(local_steps(), storage=storage, executor="local")
    )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds = [one_round() for _ in range(args.rounds)]
    med = {k: base.median([r[k] for r in rounds]) for k in rounds[0]}
    latency = med["wf_latency"] / med["raw_latency"]
    throughput = med["wf_throughput"] / med["raw_throughput"]
    local = med["celery_local"] / med["local_local"]
    print(f"raw Celery no-op round trip       {base.us(med['raw_latency'])}")
    print(
        f"10-step workflow, per step        {base.us(med['wf_latency'])}  "
        f"= {latency:.2f}x  (target <= 2x)"
    )
    print(f"raw Celery no-op tasks/s          {med['raw_throughput']:.0f}")
    print(
        f"500 x 3-step workflows, steps/s   {med['wf_throughput']:.0f}  "
        f"= {throughput:.2f}x  (target >= 0.35x)"
    )
    print(
        f"  CPU s in that window: workers {med['worker_cpu']:.1f}, PostgreSQL {med['pg_cpu']:.1f}"
    )
    print(f"force_local per step, Celery      {base.us(med['celery_local'])}")
    print(
        f"force_local per step, local exec  {base.us(med['local_local'])}  "
        f"= {local:.2f}x  (target <= 1.2x)"
    )
    print(
        f"  fixed cost per run: Celery {base.us(med['celery_fixed'])}, "
        f"local {base.us(med['local_fixed'])}"
    )
    for i, r in enumerate(rounds):
        print(
            f"  round {i + 1}: latency {r['wf_latency'] / r['raw_latency']:.2f}x, "
            f"throughput {r['wf_throughput'] / r['raw_throughput']:.2f}x, "
            f"force_local {r['celery_local'] / r['local_local']:.2f}x"
        )
    base.emit(
        {
            "bench": "B8",
            "latency_ratio": latency,
            "throughput_ratio": throughput,
            "force_local_ratio": local,
            **med,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
