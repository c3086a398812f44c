"""B2 concurrent: step throughput of many runs in one process, against the raw commit rate.

1,000 workflows of 3 no-op steps, started at once in one process
(``asyncio.gather(*[start(wf) ...])``), then every result awaited
(``asyncio.gather(*[get_workflow_result(id) ...])``). Throughput = 3,000 steps / the wall time
from the first start to the last result. Each round uses a fresh database file and measures the
raw sqlite3 floor (and aiosqlite) right before, on the same disk; medians over the rounds.

Target: >= 1x the raw sqlite3 commit rate (1 / floor): concurrent runs must share commits.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import pyworkflow
from pyworkflow import get_workflow_result, start, step, workflow

if __package__ in (None, ""):
    sys.path.insert(0, __import__("os").path.dirname(__file__))
    import _baseline as base
else:
    from . import _baseline as base

STEPS = 3
TARGET = 1.0


@step()
async def b2_noop(i: int) -> int:
    return i


@workflow()
async def b2_three_steps() -> int:
    total = 0
    for i in range(STEPS):
        total += await b2_noop(i)
    return total


async def burst(runs: int) -> float:
    """Steps per second for ``runs`` runs started at once."""
    begin = time.perf_counter()
    ids = await asyncio.gather(*[start(b2_three_steps) for _ in range(runs)])
    results = await asyncio.gather(*[get_workflow_result(i) for i in ids])
    elapsed = time.perf_counter() - begin
    assert results == [sum(range(STEPS))] * runs
    return runs * STEPS / elapsed


async def one_round(directory: str, index: int, runs: int) -> tuple[float, float, float]:
    floor = base.sqlite3_commit(directory)
    aio = await base.aiosqlite_commit(directory)
    pyworkflow.configure(storage=f"sqlite:///{directory}/b2-{index}.db")
    try:
        await pyworkflow.run(b2_three_steps)  # warm up: schema, statements, executor
        rate = await burst(runs)
    finally:
        await pyworkflow.shutdown()
    return floor, aio, rate


async def memory_round(runs: int) -> float:
    """The same burst on ``memory://``: what the engine alone can do, the ceiling of any storage."""
    pyworkflow.configure(storage="memory://")
    try:
        await pyworkflow.run(b2_three_steps)
        return await burst(runs)
    finally:
        await pyworkflow.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    floors, aios, rates = [], [], []
    with base.workdir("b2") as directory:
        for index in range(args.rounds):
            floor, aio, rate = asyncio.run(one_round(directory, index, args.runs))
            floors.append(floor)
            aios.append(aio)
            rates.append(rate)
    ratio = base.median([r * f for r, f in zip(rates, floors, strict=True)])
    floor, aio, rate = base.median(floors), base.median(aios), base.median(rates)
    ceiling = base.median([asyncio.run(memory_round(args.runs)) for _ in range(args.rounds)])
    ok = ratio >= TARGET
    print(
        f"B2 concurrent: {args.runs} runs x {STEPS} no-op steps at once, {args.rounds} rounds "
        "(medians)"
    )
    print(f"  raw sqlite3 commit (floor): {base.us(floor)} = {1 / floor:,.0f} commits/s")
    print(f"  aiosqlite commit:           {base.us(aio)} ({aio / floor:.2f}x)")
    print(f"  throughput:                 {rate:,.0f} steps/s")
    print(f"  engine ceiling (memory://): {ceiling:,.0f} steps/s (the same burst, no database)")
    print(
        f"  ratio {ratio:.2f}x the raw commit rate; target >= {TARGET:g}x: "
        f"{'MET' if ok else 'MISSED'}"
    )
    base.emit(
        {
            "bench": "B2",
            "floor_us": floor * 1e6,
            "aiosqlite_us": aio * 1e6,
            "steps_per_s": rate,
            "memory_steps_per_s": ceiling,
            "ratio": ratio,
            "target": f">= {TARGET:g}x",
            "met": ok,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
