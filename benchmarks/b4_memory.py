"""B4 memory: what 10,000 sleeping runs cost a worker process.

In a subprocess (so nothing else lives in the heap): configure ``sqlite:///<tmpdir>/b4.db``,
open the runtime, start the executor (``executor.serve()`` in a task), run one warm-up
workflow, ``gc.collect()`` and read the idle RSS with psutil. Then start 10,000 runs of
``b4_sleeper`` (one no-op step, then ``await sleep("1h")``), wait until storage says all 10,000
are SUSPENDED (a ``count(*)`` on the runs table) and no driver is left, ``gc.collect()``, and
read the RSS again. Also reported: Python objects alive (``len(gc.get_objects())``) before and
after, to tell leaked objects from allocator high-water marks.

Target: <= 50 MB more RSS than the idle worker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import json
import os
import resource
import sqlite3
import subprocess
import sys
import time

import psutil

import pyworkflow
from pyworkflow import sleep, start, step, workflow
from pyworkflow.runtime import get_runtime

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(__file__))
    import _baseline as base
else:
    from . import _baseline as base

TARGET_MB = 50.0

# The runs are started in bursts of 1,000 (each burst's starts awaited, not the runs), so all
# 10,000 are in flight at the peak, as if started at once; one gather of 10,000 starts behaves
# the same but takes minutes today (see BENCHMARKS.md, B2's profile).


@step()
async def b4_noop() -> int:
    return 1


@workflow()
async def b4_sleeper() -> int:
    await b4_noop()
    await sleep("1h")
    return 1


@workflow()
async def b4_warmup() -> int:
    return await b4_noop()


def rss_mb() -> float:
    gc.collect()
    return float(psutil.Process().memory_info().rss) / 2**20


def suspended(path: str) -> int:
    con = sqlite3.connect(path)
    try:
        (count,) = con.execute(
            "SELECT count(*) FROM runs WHERE workflow_name = 'b4_sleeper' AND status = ?",
            ("suspended",),
        ).fetchone()
        return int(count)
    finally:
        con.close()


async def worker(directory: str, runs: int, waves: bool) -> dict[str, float]:
    path = os.path.join(directory, "b4.db")
    pyworkflow.configure(storage=f"sqlite:///{path}")
    runtime = await get_runtime()
    serving = asyncio.get_running_loop().create_task(runtime.executor.serve())
    try:
        await pyworkflow.run(b4_warmup)
        await asyncio.sleep(0.2)
        idle = rss_mb()
        idle_objects = len(gc.get_objects())
        begin = time.perf_counter()
        for at in range(0, runs, 1000):  # start in bursts of 1,000 so the starts share commits
            await asyncio.gather(*[start(b4_sleeper) for _ in range(min(1000, runs - at))])
            if waves:  # what-if: at most 1,000 runs in flight (see --waves)
                while suspended(path) < at + 1000 or runtime.executor._drivers:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
        deadline = time.monotonic() + 90
        while suspended(path) < runs or runtime.executor._drivers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {suspended(path)} of {runs} runs suspended in time")
            await asyncio.sleep(0.1)
        settle = time.perf_counter() - begin
        await asyncio.sleep(0.2)
        held = rss_mb()
        held_objects = len(gc.get_objects())
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        trimmed = held
        with contextlib.suppress(OSError, AttributeError):  # glibc only
            ctypes.CDLL("libc.so.6").malloc_trim(0)
            trimmed = rss_mb()
    finally:
        serving.cancel()
        await pyworkflow.shutdown()
    return {
        "idle": idle,
        "held": held,
        "delta": held - idle,
        "peak": peak,
        "trimmed_delta": trimmed - idle,
        "idle_objects": idle_objects,
        "held_objects": held_objects,
        "seconds": settle,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=10000)
    parser.add_argument(
        "--waves",
        action="store_true",
        help="what-if, not the benchmark: wait for each burst of 1,000 to "
        "suspend before starting the next (at most 1,000 runs in flight)",
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(worker(args.child, args.runs, args.waves))), flush=True)
        return 0
    with base.workdir("b4") as directory:
        out = subprocess.run(
            [
                sys.executable,
                os.path.abspath(__file__),
                "--child",
                directory,
                "--runs",
                str(args.runs),
                *(["--waves"] if args.waves else []),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    m = json.loads(out.stdout.strip().splitlines()[-1])
    ok = m["delta"] <= TARGET_MB
    trimmed = m["trimmed_delta"]
    print(
        f"B4 memory: a worker holding {args.runs:,} sleeping runs"
        + (" (what-if: --waves, at most 1,000 in flight)" if args.waves else "")
    )
    print(f"  idle worker RSS:          {m['idle']:.1f} MB ({m['idle_objects']:,} objects)")
    print(
        f"  with the runs suspended:  {m['held']:.1f} MB ({m['held_objects']:,} objects; all "
        f"suspended after {m['seconds']:.1f} s)"
    )
    print(
        f"  delta {m['delta']:.1f} MB ({m['delta'] * 2**20 / args.runs / 1024:.2f} KB per run);"
        f" target <= {TARGET_MB:g} MB: {'MET' if ok else 'MISSED'}"
    )
    print(
        f"  diagnostics: peak RSS {m['peak']:.1f} MB; delta after malloc_trim(0) "
        f"{trimmed:.1f} MB (memory the C allocator kept after the burst, not live objects)"
    )
    base.emit(
        {
            "bench": "B4",
            **m,
            "runs": args.runs,
            "ratio": m["delta"],
            "target": f"<= {TARGET_MB:g} MB",
            "met": ok,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
