"""B3 replay: the cost of resuming a run with a long history after a restart.

A run of ``b3_steps(n)`` (n no-op steps, then ``await sleep("1h")``) is built with n = 1k, 10k
and 100k logged steps (2n + 2 events: WORKFLOW_STARTED, n STEP_STARTED/STEP_COMPLETED pairs,
SLEEP_STARTED). The 1k and 10k logs are built by actually running the workflow with the real
engine until it suspends; the 100k log is written through the storage API in big appends
(5,000 events each) with the same payloads the engine writes, which the script checks by
building a 1k log that way too and comparing it event by event with the real one.

Then, in a FRESH process (a subprocess, imports done before the clock starts), it times the
resume the way a driver does it: open ``SQLiteStorage``, ``get_run``, ``load_events``, decode
the arguments, ``WorkflowActivation(...).replay(events)``, until the replay has caught up (the
workflow waits on the logged sleep, nothing diverged). In the same process it times the floor:
decoding the same events' payloads from JSON (``json.loads`` of each payload text, read raw
from the events table with ``sqlite3``; median of 3). Several fresh processes per size; medians.

Targets: the cost grows linearly with history (the exponent of t(10n)/t(n) stays near 1), and
a 10k-step resume (~20k events) costs < 10x the JSON decode of its payloads.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import sqlite3
import subprocess
import sys
import time
import uuid

import pyworkflow
from pyworkflow import sleep, start, step, workflow
from pyworkflow._engine.activation import WorkflowActivation
from pyworkflow._engine.clock import SystemClock
from pyworkflow._engine.event_kinds import EVENT_FORMAT
from pyworkflow.events import EventType, RunStatus
from pyworkflow.serialization import Codec
from pyworkflow.storage.records import AppendWrite, NewEvent, NewRun
from pyworkflow.storage.sqlite import SQLiteStorage

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(__file__))
    import _baseline as base
else:
    from . import _baseline as base

TARGET = 10.0
CHUNK = 5000


@step()
async def b3_noop(i: int) -> int:
    return i


@workflow()
async def b3_steps(n: int) -> int:
    for i in range(n):
        await b3_noop(i)
    await sleep("1h")
    return n


# --- building the logs ---------------------------------------------------------------------------


async def build_by_running(url: str, n: int) -> str:
    """Run the workflow for real until it suspends on its sleep; returns the run id."""
    pyworkflow.configure(storage=url)
    try:
        run_id = await start(b3_steps, n)
        while True:
            status = (await pyworkflow.get_workflow_run(run_id)).status
            if status is RunStatus.SUSPENDED:
                return run_id
            if status.is_terminal:
                raise RuntimeError(f"run {run_id} ended {status.value} while building")
            await asyncio.sleep(0.05)
    finally:
        await pyworkflow.shutdown()


async def build_by_appends(url: str, n: int) -> str:
    """Write the same log through the storage API in appends of CHUNK events."""
    codec = Codec()
    storage = SQLiteStorage(url)
    await storage.open()
    try:
        now = time.time()
        owner = "b3-builder"
        run_id = f"run_{uuid.uuid4().hex}"
        encoded = codec.encode({"args": [n], "kwargs": {}})
        await storage.create_run(
            NewRun(
                run_id=run_id,
                workflow_name=b3_steps.name,
                args=encoded,
                started_payload={
                    "v": EVENT_FORMAT,
                    "workflow": b3_steps.name,
                    "args": encoded,
                    "idempotency_key": None,
                },
                now=now,
                lease_owner=owner,
                lease_expires_at=now + 3600,
            )
        )

        def events() -> list[NewEvent]:
            out = []
            for i in range(n):
                step_id = f"{b3_noop.__name__}#{i + 1}"
                out.append(
                    NewEvent(
                        EventType.STEP_STARTED,
                        {
                            "v": EVENT_FORMAT,
                            "step_id": step_id,
                            "name": b3_noop.__name__,
                            "attempt": 1,
                            "args": codec.encode({"args": [i], "kwargs": {}}),
                        },
                    )
                )
                out.append(
                    NewEvent(
                        EventType.STEP_COMPLETED,
                        {"v": EVENT_FORMAT, "step_id": step_id, "result": codec.encode(i)},
                    )
                )
            out.append(
                NewEvent(
                    EventType.SLEEP_STARTED,
                    {"v": EVENT_FORMAT, "sleep_id": "sleep#1", "wake_at": now + 3600},
                )
            )
            return out

        todo = events()
        seq = 1
        for at in range(0, len(todo), CHUNK):
            chunk = todo[at : at + CHUNK]
            last = at + CHUNK >= len(todo)
            result = await storage.append(
                AppendWrite(
                    run_id=run_id,
                    owner=owner,
                    expected_seq=seq,
                    events=chunk,
                    now=now,
                    status=RunStatus.SUSPENDED if last else RunStatus.RUNNING,
                    wake_at=now + 3600,
                    lease_expires_at=None if last else now + 3600,
                    progressed=True,
                )
            )
            seq = result.last_seq
        return run_id
    finally:
        await storage.close()


def log_of(path: str, run_id: str) -> list[tuple[int, str, object]]:
    """(seq, type, payload) of a run, without wake times (they differ between builds)."""
    con = sqlite3.connect(path)
    try:
        rows = con.execute(
            "SELECT seq, type, payload FROM events WHERE run_id = ? ORDER BY seq", (run_id,)
        ).fetchall()
    finally:
        con.close()
    out = []
    for seq, type_, text in rows:
        payload = json.loads(text)
        payload.pop("wake_at", None)
        out.append((seq, type_, payload))
    return out


# --- the fresh process --------------------------------------------------------------------------


async def resume(url: str, run_id: str) -> dict[str, float]:
    codec, clock = Codec(), SystemClock()
    t0 = time.perf_counter()
    storage = SQLiteStorage(url, create=False)
    await storage.open()
    run = await storage.get_run(run_id)
    assert run is not None
    events = await storage.load_events(run_id)
    t1 = time.perf_counter()
    call = codec.decode(run.args)
    activation = WorkflowActivation(
        run_id=run_id,
        workflow=b3_steps,
        args=tuple(call["args"]),
        kwargs=dict(call["kwargs"]),
        codec=codec,
        clock=clock,
    )
    turn = activation.replay(events)
    t2 = time.perf_counter()
    assert activation.divergence is None, activation.divergence
    # caught up: waits on the logged sleep
    assert not turn.events, turn
    assert not turn.finished, turn
    assert [c.kind for c in turn.launch] == ["sleep"], turn.launch
    activation.close()
    await storage.close()
    return {"events": len(events), "load": t1 - t0, "replay": t2 - t1, "total": t2 - t0}


def child(path: str, run_id: str) -> None:
    m = asyncio.run(resume(f"sqlite:///{path}", run_id))
    con = sqlite3.connect(path)
    texts = [
        r[0]
        for r in con.execute("SELECT payload FROM events WHERE run_id = ? ORDER BY seq", (run_id,))
    ]
    con.close()
    decodes = []
    for _ in range(3):
        t = time.perf_counter()
        for text in texts:
            json.loads(text)
        decodes.append(time.perf_counter() - t)
    m["json"] = base.median(decodes)
    print(json.dumps(m), flush=True)


def fresh(path: str, run_id: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", path, run_id],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# --- the benchmark -------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("DB", "RUN_ID"), help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="1000,10000,100000")
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    rows: dict[int, dict[str, float]] = {}
    with base.workdir("b3") as directory:
        path = os.path.join(directory, "b3.db")
        url = f"sqlite:///{path}"
        # The big-append builder writes what the engine writes: check it on a 1k log.
        real = asyncio.run(build_by_running(url, 1000))
        synthetic = asyncio.run(build_by_appends(url, 1000))
        assert log_of(path, real) == log_of(path, synthetic), "the builders' logs differ"
        run_ids: dict[int, tuple[str, str]] = {}
        for n in sizes:
            if n == 1000:
                run_ids[n] = (real, "run")
            elif n <= 10000:
                t = time.perf_counter()
                run_ids[n] = (asyncio.run(build_by_running(url, n)), "run")
                print(
                    f"  built {n:,} steps by running them: {time.perf_counter() - t:.1f} s",
                    flush=True,
                )
            else:
                t = time.perf_counter()
                run_ids[n] = (asyncio.run(build_by_appends(url, n)), "appends")
                print(
                    f"  built {n:,} steps by storage appends: {time.perf_counter() - t:.1f} s",
                    flush=True,
                )
        samples: dict[int, list[dict[str, float]]] = {n: [] for n in sizes}
        for _ in range(args.rounds):  # interleave the sizes across rounds
            for n in sizes:
                samples[n].append(fresh(path, run_ids[n][0]))
    for n in sizes:
        got = samples[n]
        rows[n] = {k: base.median([g[k] for g in got]) for k in ("load", "replay", "total", "json")}
        rows[n]["events"] = got[0]["events"]
        rows[n]["ratio"] = base.median([g["total"] / g["json"] for g in got])
    print(f"B3 replay after restart, fresh process, {args.rounds} rounds (medians)")
    print(
        f"  {'steps':>8} {'events':>8} {'built by':>8} {'load':>9} {'replay':>9} {'total':>9} "
        f"{'us/event':>9} {'json':>9} {'ratio':>7}"
    )
    for n in sizes:
        r = rows[n]
        print(
            f"  {n:>8,} {int(r['events']):>8,} {run_ids[n][1]:>8} {r['load'] * 1e3:>7.1f}ms "
            f"{r['replay'] * 1e3:>7.1f}ms {r['total'] * 1e3:>7.1f}ms "
            f"{r['total'] / r['events'] * 1e6:>9.1f} {r['json'] * 1e3:>7.1f}ms "
            f"{r['ratio']:>6.1f}x"
        )
    growth = {}
    for a, b in itertools.pairwise(sizes):
        growth[f"{a}->{b}"] = math.log(rows[b]["total"] / rows[a]["total"]) / math.log(b / a)
        print(f"  growth exponent {a:,} -> {b:,}: {growth[f'{a}->{b}']:.2f} (1.00 = linear)")
    linear = all(g < 1.15 for g in growth.values())
    ten = rows.get(10000)
    ok = ten is not None and ten["ratio"] < TARGET
    if ten is not None:
        print(
            f"  10k-step resume = {ten['ratio']:.1f}x the JSON decode; target < {TARGET:g}x: "
            f"{'MET' if ok else 'MISSED'}"
        )
    print(f"  linear growth (exponents < 1.15): {'MET' if linear else 'MISSED'}")
    base.emit(
        {
            "bench": "B3",
            "rows": {str(n): rows[n] for n in sizes},
            "growth": growth,
            "ratio": None if ten is None else ten["ratio"],
            "target": f"< {TARGET:g}x",
            "linear": linear,
            "met": ok and linear,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
