"""B1 sequential: the cost of one step of one run, against one raw durable commit.

One workflow of 10 no-op steps, run 200 times one after the other (``await pyworkflow.run(wf)``)
on ``sqlite:///<tmpdir>/b1.db`` (default settings: WAL, synchronous=FULL, local executor).
Time per step = the whole batch's wall time / 2,000 steps, so a run's start and completion are
spread over its steps. Each round measures the raw sqlite3 floor and the aiosqlite baseline
right before the batch, on the same disk; the figures are medians over the rounds.

Target: <= 3x one raw sqlite3 INSERT+COMMIT per step.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import pyworkflow
from pyworkflow import step, workflow

if __package__ in (None, ""):
    sys.path.insert(0, __import__("os").path.dirname(__file__))
    import _baseline as base
else:
    from . import _baseline as base

STEPS = 10
TARGET = 3.0


@step()
async def b1_noop(i: int) -> int:
    return i


@workflow()
async def b1_ten_steps() -> int:
    total = 0
    for i in range(STEPS):
        total += await b1_noop(i)
    return total


async def batch(runs: int) -> float:
    """Seconds per step over ``runs`` sequential runs."""
    start = time.perf_counter()
    for _ in range(runs):
        assert await pyworkflow.run(b1_ten_steps) == sum(range(STEPS))
    return (time.perf_counter() - start) / (runs * STEPS)


async def measure(directory: str, rounds: int, runs: int) -> dict[str, float]:
    pyworkflow.configure(storage=f"sqlite:///{directory}/b1.db")
    try:
        await batch(5)  # warm up: open storage, create schema, compile statements
        floors, aios, steps = [], [], []
        for _ in range(rounds):
            floors.append(base.sqlite3_commit(directory))
            aios.append(await base.aiosqlite_commit(directory))
            steps.append(await batch(runs))
    finally:
        await pyworkflow.shutdown()
    ratios = [s / f for s, f in zip(steps, floors, strict=True)]
    return {
        "floor": base.median(floors),
        "aio": base.median(aios),
        "step": base.median(steps),
        "ratio": base.median(ratios),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    with base.workdir("b1") as directory:
        m = asyncio.run(measure(directory, args.rounds, args.runs))
    ok = m["ratio"] <= TARGET
    print(f"B1 sequential: {args.runs} runs x {STEPS} no-op steps, {args.rounds} rounds (medians)")
    print(f"  raw sqlite3 commit (floor): {base.us(m['floor'])}")
    print(f"  aiosqlite commit:           {base.us(m['aio'])} ({m['aio'] / m['floor']:.2f}x)")
    print(f"  per step:                   {base.us(m['step'])}")
    print(
        f"  ratio {m['ratio']:.2f}x the floor; target <= {TARGET:g}x: {'MET' if ok else 'MISSED'}"
    )
    base.emit(
        {
            "bench": "B1",
            "floor_us": m["floor"] * 1e6,
            "aiosqlite_us": m["aio"] * 1e6,
            "step_us": m["step"] * 1e6,
            "ratio": m["ratio"],
            "target": f"<= {TARGET:g}x",
            "met": ok,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
