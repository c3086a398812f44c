"""kill -9 of Celery workers while signals flow: each signal reaches each stream step once.

Real ``celery worker`` processes (PostgreSQL with Redis; SQLite with RabbitMQ), leases of 2 s
and a dispatch grace of 3 s. A stream run with two stream steps (``cs_tally_a``, ``cs_tally_b``,
both subscribed to ``tick``) receives ticks emitted from outside (this process) while the test
kills the worker (main process and pool, by pid) that is executing a stream step, twice,
starting a replacement each time. Each execution appends an fsync'ed line (stream run,
``step:seq``, time, pid) before it lingers, so the kill lands after that line and before the
execution returns: that execution must run again, on another worker.

At the end: the parent's result holds each step's checkpoint, the seqs whose executions were
logged, which must be exactly 1..N (none lost, none counted twice); storage's deliveries give
each step its start, every tick and the stop exactly once, in seq order; an execution ran more
than once only where a kill cut it short.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable
from functools import partial

import pytest
from celery_runs import storage, wait_for
from celery_streams import cs_run_ticks
from celery_workers import FLOWS, Deployment, Worker

import pyworkflow
from pyworkflow import emit
from pyworkflow.storage import StreamStore
from workers import executions_in

pytestmark = pytest.mark.slow

TICKS = 10
KILL_AT = (3, 7)
"""The ticks whose executions are killed mid-flight (they linger, the others do not)."""
LINGER = 1.5
STEPS = ("cs_tally_a", "cs_tally_b")
GRACE = 3.0
ENV = {
    "PYWORKFLOW_LEASE_SECONDS": "2",
    "PYWORKFLOW_DISPATCH_GRACE": str(GRACE),
    "PYWORKFLOW_VISIBILITY_TIMEOUT": "5",
    "PYWORKFLOW_MODULES": f"{FLOWS},celery_streams",
}


async def _streams() -> StreamStore:
    store = await storage()
    assert isinstance(store, StreamStore)
    return store


async def _recorded(lines: Callable[[], list[list[str]]], tick: int) -> list[str] | None:
    """The newest recorded execution of ``tick`` (by either step), or None yet."""
    return next((f for f in reversed(lines()) if f[1].endswith(f":{tick}")), None)


def _owner(workers: list[Worker], pid: int) -> Worker | None:
    return next((w for w in workers if pid in w.pool_pids()), None)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("store", "broker"),
    [("postgres", "redis"), ("sqlite", "rabbitmq")],
    ids=["pg-redis", "sqlite-amqp"],
)
async def test_signals_reach_each_stream_step_once_through_kill_9_of_celery_workers(
    deployment: Callable[..., Deployment], client: Callable[..., None], store: str, broker: str
) -> None:
    seed = int(os.environ.get("KILLTEST_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    began = time.monotonic()
    deployed = deployment(storage=store, broker=broker, env=ENV)
    workers = [deployed.workers.start(name="w1"), deployed.workers.start(name="w2")]
    client(deployed, dispatch_grace=GRACE)
    effects = deployed.workdir / "side_effects.log"
    sid = f"cs-kill-{store}"

    def context() -> str:
        lines = effects.read_text() if effects.exists() else ""
        return f"seed={seed}; side effects:\n{lines}\n{deployed.context()}"

    def lines() -> list[list[str]]:
        text = effects.read_text() if effects.exists() else ""
        return [line.split() for line in text.splitlines()]

    run_id = await pyworkflow.start(cs_run_ticks, sid)
    streams = await _streams()
    await wait_for(lambda: streams.get_stream_run(sid), 30, context)

    killed: list[tuple[str, int]] = []  # (step:seq, pid) of each execution cut short
    for tick in range(1, TICKS + 1):
        linger = LINGER if tick in KILL_AT else 0.0
        seq = await emit("cs_ticks", "tick", {"tick": tick, "linger": linger}, stream_run_id=sid)
        assert seq == tick
        if tick in KILL_AT:
            # Wait for an execution of this tick to be recorded, then kill its worker at once:
            # it lingers LINGER s before returning, so the kill lands mid-execution.
            _sid, what, _at, pid = await wait_for(partial(_recorded, lines, tick), 30, context)
            victim = _owner(workers, int(pid))
            assert victim is not None, f"pid {pid} is no pool process of a live worker; {context()}"
            deployed.workers.kill(victim)
            killed.append((what, int(pid)))
            workers.remove(victim)
            workers.append(deployed.workers.start(name=f"w{len(killed) + 2}"))
        else:
            await asyncio.sleep(rng.uniform(0.0, 0.15))
    await emit("cs_ticks", "stop", {}, stream_run_id=sid)

    result = await pyworkflow.get_workflow_result(run_id, timeout=60)
    # Each step's checkpoint: the ticks whose executions were logged, each once, in order.
    assert result == {step: list(range(1, TICKS + 1)) for step in STEPS}, context()
    per_step: dict[str, list[int | None]] = {}
    for delivery in await streams.list_deliveries(sid):
        per_step.setdefault(delivery.step_name, []).append(delivery.seq)
    # Storage delivered to each step its start, every tick and the stop, once each, in order.
    assert per_step == {step: [None, *range(1, TICKS + 2)] for step in STEPS}, context()
    executed = executions_in(effects)
    assert set(executed) == {(sid, f"{s}:{n}") for s in STEPS for n in range(1, TICKS + 1)}
    for what, pid in killed:
        # The execution the kill cut short ran again, in another process.
        assert executed[sid, what] >= 2, f"{what} killed in {pid} never ran again; {context()}"
        again = [f for f in lines() if f[1] == what and int(f[3]) != pid]
        assert again, context()
    # Only a kill explains a second execution: both steps' executions of a killed tick may
    # have been in flight in the dead worker, nothing else.
    rerun = {what for (_, what), count in executed.items() if count > 1}
    assert rerun <= {f"{s}:{n}" for s in STEPS for n in KILL_AT}, context()
    for what in rerun:
        assert executed[sid, what] <= 1 + len(killed), context()
    print(
        f"{store}+{broker}: seed={seed} kills={len(killed)} re-executions="
        f"{sum(c - 1 for c in executed.values())} in {time.monotonic() - began:.1f}s"
    )
