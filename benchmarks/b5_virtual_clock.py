"""B5 virtual clock: 100 steps with a 7-day sleep between each, vs the same steps without sleeps.

Both workflows run in one ``WorkflowEnvironment`` (pyworkflow.testing) in the same process: the
subject does ``await step(i); await sleep("7d")`` 100 times (700 virtual days), the baseline
does the same 100 no-op steps with no sleep. Time per run = a batch's wall time / its runs;
batches of subject and baseline alternate over the rounds, and the figure is the median of the
per-round ratios. Storage: the environment's default, in memory (``--storage sqlite`` for a
SQLite file in a temporary directory, where each sleep adds a commit of its own).

Target: <= 1.5x: skipping a week costs about as much as a step.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import timedelta

from pyworkflow import Workflow, sleep, step, workflow
from pyworkflow.testing import WorkflowEnvironment

if __package__ in (None, ""):
    sys.path.insert(0, __import__("os").path.dirname(__file__))
    import _baseline as base
else:
    from . import _baseline as base

STEPS = 100
TARGET = 1.5


@step()
async def b5_noop(i: int) -> int:
    return i


@workflow()
async def b5_weekly() -> int:
    total = 0
    for i in range(STEPS):
        total += await b5_noop(i)
        await sleep("7d")
    return total


@workflow()
async def b5_instant() -> int:
    total = 0
    for i in range(STEPS):
        total += await b5_noop(i)
        await sleep(0)
    return total


@workflow()
async def b5_plain() -> int:
    total = 0
    for i in range(STEPS):
        total += await b5_noop(i)
    return total


async def batch(env: WorkflowEnvironment, wf: Workflow[[], int], runs: int) -> float:
    """Seconds per run over ``runs`` sequential runs of ``wf``."""
    start = time.perf_counter()
    for _ in range(runs):
        assert await env.run(wf) == sum(range(STEPS))
    return (time.perf_counter() - start) / runs


async def measure(storage: str, rounds: int, runs: int) -> dict[str, float]:
    async with WorkflowEnvironment(storage) as env:
        began = env.now()
        await batch(env, b5_weekly, 3)  # warm up: caches, statements, the clock's task
        await batch(env, b5_plain, 3)
        await batch(env, b5_instant, 3)
        skipped = env.now() - began
        assert skipped == timedelta(days=7 * STEPS * 3), skipped
        sleeping, plain, instant = [], [], []
        for _ in range(rounds):
            plain.append(await batch(env, b5_plain, runs))
            sleeping.append(await batch(env, b5_weekly, runs))
            instant.append(await batch(env, b5_instant, runs))
    return {
        "sleeping": base.median(sleeping),
        "plain": base.median(plain),
        "instant": base.median(instant),
        "ratio": base.median([s / p for s, p in zip(sleeping, plain, strict=True)]),
        "skip_ratio": base.median([s / i for s, i in zip(sleeping, instant, strict=True)]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--storage", choices=["memory", "sqlite"], default="memory")
    args = parser.parse_args()
    with base.workdir("b5") as directory:
        url = "memory://" if args.storage == "memory" else f"sqlite:///{directory}/b5.db"
        m = asyncio.run(measure(url, args.rounds, args.runs))
    ok = m["ratio"] <= TARGET
    print(
        f"B5 virtual clock: {args.runs} runs x {STEPS} steps per batch, {args.rounds} rounds "
        f"(medians), {args.storage} storage"
    )
    print(f"  run, 100 steps, no sleep:            {base.us(m['plain'])}")
    print(f"  run, 100 steps, 7-day sleep between: {base.us(m['sleeping'])} (700 virtual days)")
    print(f"  run, 100 steps, sleep(0) between:    {base.us(m['instant'])} (same events, no skip)")
    print(f"  ratio {m['ratio']:.2f}x no sleep; target <= {TARGET:g}x: {'MET' if ok else 'MISSED'}")
    print(f"  ratio {m['skip_ratio']:.2f}x sleep(0): what skipping the weeks itself costs")
    base.emit(
        {
            "bench": "B5",
            "storage": args.storage,
            "plain_us": m["plain"] * 1e6,
            "sleeping_us": m["sleeping"] * 1e6,
            "instant_us": m["instant"] * 1e6,
            "ratio": m["ratio"],
            "skip_ratio": m["skip_ratio"],
            "target": f"<= {TARGET:g}x",
            "met": ok,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
