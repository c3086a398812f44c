"""B13 streams: a signal's round trip against a step's, and delivery cost as signals grow.

1. Round trip, on ``sqlite:///<tmpdir>`` with the local executor: a stream step that sets an
   ``asyncio.Event`` when it runs; outside code emits a signal and waits for the step to have
   run, 200 times in a row (each emit finds the driver busy with the one before). Baselines,
   in the same round on the same storage: a workflow of 200 sequential no-op steps, per step
   (the target's ratio: <= 2x), and a one-step workflow from ``run()`` to its result (a
   run's round trip, for scale). Then the idle round trip: 20 signals each emitted once the
   driver waits for it (its coroutine kept, the emit wakes it), timed alone.
2. Growth, on ``memory://`` (the engine and the delivery rule alone): 100 stream steps, each
   subscribed to a type of its own; N signals (N/100 per step, interleaved) emitted from
   outside into one stream run, timed from the first emit until every step has seen its share
   and the parent has its result. Per-signal cost at 1k, 10k, 100k; linear means the cost per
   signal stays flat (growth exponent ~1).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import tempfile
import time

import pyworkflow
from pyworkflow import emit, run_stream_workflow, step, stream_step, stream_workflow, workflow
from pyworkflow.streams import get_checkpoint, get_current_signal, save_checkpoint, terminate

ROUND_TRIPS = 200
IDLE_TRIPS = 20
SUBSCRIPTIONS = 100
ran: asyncio.Event | None = None  # made per round: an Event belongs to one event loop


@step()
async def b13_noop(i: int) -> int:
    return i


@workflow()
async def b13_steps(n: int) -> int:
    for i in range(n):
        await b13_noop(i)
    return n


@stream_workflow(name="b13_echo")
async def b13_echo() -> None:
    """No opening signal."""


@stream_step(stream="b13_echo", signals=["ping", "stop"])
async def b13_echoer() -> None:
    signal = await get_current_signal()
    if signal is not None and signal.signal_type == "stop":
        await terminate()
    elif signal is not None and ran is not None:
        ran.set()


@workflow()
async def b13_echo_parent(stream_run_id: str) -> str:
    return (await run_stream_workflow(b13_echo, stream_run_id=stream_run_id)).status


@stream_workflow(name="b13_fan")
async def b13_fan() -> None:
    """No opening signal."""


def _fan_step(k: int) -> None:
    async def fan() -> None:
        signal = await get_current_signal()
        if signal is None:
            return
        seen = ((await get_checkpoint()) or 0) + 1
        await save_checkpoint(seen)
        if seen == signal.payload["quota"]:
            await terminate()

    fan.__name__ = fan.__qualname__ = f"b13_fan_{k}"
    stream_step(stream="b13_fan", signals=[f"t{k}"])(fan)


for _k in range(SUBSCRIPTIONS):
    _fan_step(_k)


@workflow()
async def b13_fan_parent(stream_run_id: str) -> str:
    return (await run_stream_workflow(b13_fan, stream_run_id=stream_run_id)).status


async def _opened(stream_run_id: str) -> None:
    from pyworkflow.runtime import get_runtime

    storage = (await get_runtime()).storage
    for _ in range(10_000):  # polls storage: nothing here is told when the row appears
        if await storage.get_stream_run(stream_run_id) is not None:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.05)  # let the driver start its steps and wait


async def round_trip(directory: str, index: int) -> tuple[float, float, float, float]:
    """(per step, per one-step run, per signal, per idle signal) in s, on a fresh file."""
    global ran
    ran = event = asyncio.Event()
    pyworkflow.configure(storage=f"sqlite:///{directory}/b13-{index}.db")
    try:
        await pyworkflow.run(b13_steps, 5)  # warm up
        begin = time.perf_counter()
        await pyworkflow.run(b13_steps, ROUND_TRIPS)
        per_step = (time.perf_counter() - begin) / ROUND_TRIPS
        begin = time.perf_counter()
        for _ in range(ROUND_TRIPS // 4):
            await pyworkflow.run(b13_steps, 1)
        per_run = (time.perf_counter() - begin) / (ROUND_TRIPS // 4)
        sid = f"echo-{index}"
        parent = await pyworkflow.start(b13_echo_parent, sid)
        await _opened(sid)
        begin = time.perf_counter()
        for n in range(ROUND_TRIPS):
            event.clear()
            await emit("b13_echo", "ping", {"n": n}, stream_run_id=sid)
            await event.wait()
        per_signal = (time.perf_counter() - begin) / ROUND_TRIPS
        idle = 0.0
        for n in range(IDLE_TRIPS):
            await asyncio.sleep(0.05)  # the driver settles and waits (warm)
            event.clear()
            begin = time.perf_counter()
            await emit("b13_echo", "ping", {"n": n}, stream_run_id=sid)
            await event.wait()
            idle += time.perf_counter() - begin
        await emit("b13_echo", "stop", None, stream_run_id=sid)
        assert await pyworkflow.get_workflow_result(parent) == "completed"
    finally:
        await pyworkflow.shutdown()
    return per_step, per_run, per_signal, idle / IDLE_TRIPS


async def fan_out(signals: int) -> float:
    """Seconds per signal for ``signals`` signals to 100 subscriptions, on memory."""
    quota = signals // SUBSCRIPTIONS
    pyworkflow.configure(storage="memory://")
    try:
        sid = f"fan-{signals}"
        parent = await pyworkflow.start(b13_fan_parent, sid)
        await _opened(sid)
        begin = time.perf_counter()
        for n in range(quota * SUBSCRIPTIONS):
            k = n % SUBSCRIPTIONS
            await emit("b13_fan", f"t{k}", {"quota": quota}, stream_run_id=sid)
        assert await pyworkflow.get_workflow_result(parent) == "completed"
        return (time.perf_counter() - begin) / (quota * SUBSCRIPTIONS)
    finally:
        await pyworkflow.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="1000,10000,100000")
    args = parser.parse_args()
    pairs = []
    with tempfile.TemporaryDirectory() as directory:
        for i in range(args.rounds):
            pairs.append(asyncio.run(round_trip(directory, i)))
    per_step = statistics.median(p[0] for p in pairs)
    per_run = statistics.median(p[1] for p in pairs)
    per_signal = statistics.median(p[2] for p in pairs)
    idle = statistics.median(p[3] for p in pairs)
    ratio = per_signal / per_step
    print(f"B13 step in a sequential run (sqlite): {per_step * 1e6:,.0f} us per step")
    print(f"B13 one-step run, start to result (sqlite): {per_run * 1e6:,.0f} us per run")
    print(f"B13 signal round trip (sqlite): {per_signal * 1e6:,.0f} us per signal")
    print(f"B13 signal / step: {ratio:.2f}x (target <= 2x: {'met' if ratio <= 2 else 'NOT met'})")
    print(f"B13 signal / one-step run: {per_signal / per_run:.2f}x")
    print(f"B13 idle round trip (sqlite): {idle * 1e6:,.0f} us per signal, "
          f"{idle / per_step:.2f}x a step")  # fmt: skip
    sizes = [int(s) for s in args.sizes.split(",")]
    costs = []
    for size in sizes:
        cost = asyncio.run(fan_out(size))
        costs.append(cost)
        print(f"B13 {size:,} signals to {SUBSCRIPTIONS} subscriptions (memory): "
              f"{cost * size:.2f} s, {cost * 1e6:,.0f} us per signal")  # fmt: skip
        sys.stdout.flush()
    for i in range(1, len(sizes)):
        a, ca, b, cb = sizes[i - 1], costs[i - 1], sizes[i], costs[i]
        exponent = math.log((cb * b) / (ca * a)) / math.log(b / a)
        print(f"B13 growth exponent {a:,} -> {b:,}: {exponent:.2f} (1 = linear)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
