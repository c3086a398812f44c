"""kill -9 Celery workers again and again: every run still completes, no completed step twice.

PostgreSQL (a fresh schema) and Redis (visibility timeout 5 s), or SQLite and RabbitMQ; leases
of 2 s and a dispatch grace of 3 s, so that work a dead process held is sent again within
seconds. Each run is a ``cf_chain``: ``cf_work`` steps one after the other, a durable sleep,
then a remote step and a ``force_local`` one at once. Each step execution appends one fsync'ed
line (run, step, attempt, time, pid) to a side-effect file outside the engine, and a kill can
land after that line, before the step returns.

- pool processes killed just after a step recorded its execution (Celery forks new ones; the
  main process and its sweeper stay);
- the whole worker (main process and pool) killed at random moments, a new one started each
  time, new runs started while none runs;
- one of two workers killed for good: the other takes its runs over;
- a warm shutdown (SIGTERM) mid-step: nothing is lost and nothing runs twice.

At each kill the test reads the log's completed steps, then the execution counts (in that
order, so a step still running elsewhere cannot make a false alarm); a step completed then must
never run again (DESIGN §2.1). A step in flight at a kill may run again (at-least-once).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from collections.abc import Callable

import pytest
from celery_flows import chain, chain_result, chain_steps
from celery_runs import events, storage, wait_for
from celery_workers import Deployment, Worker

import pyworkflow
from pyworkflow import EventType, RunStatus
from workers import executions_in

pytestmark = pytest.mark.slow

STEPS = 4
GRACE = 3.0
LEASES = {
    "PYWORKFLOW_LEASE_SECONDS": "2",
    "PYWORKFLOW_DISPATCH_GRACE": str(GRACE),
    "PYWORKFLOW_VISIBILITY_TIMEOUT": "5",
}


class Chains:
    """The runs of a kill test and what the test saw of them."""

    def __init__(self, deployed: Deployment, seed: int) -> None:
        self.deployed = deployed
        self.seed = seed
        self.side_effects = deployed.workdir / "side_effects.log"
        self.runs: dict[str, int] = {}
        # Invariant (DESIGN §2.1): (run, step) completed in the log -> executions seen then.
        self.frozen: dict[tuple[str, str], int] = {}

    def context(self) -> str:
        return (
            f"seed={self.seed} (rerun with KILLTEST_SEED={self.seed}); "
            f"side effects:\n{self.executions()}\n{self.deployed.context()}"
        )

    def lines(self) -> list[str]:
        return self.side_effects.read_text().splitlines() if self.side_effects.exists() else []

    def executions(self) -> Counter[tuple[str, str]]:
        return executions_in(self.side_effects)

    async def start(self, numbers: list[int]) -> None:
        for n in numbers:
            self.runs[await pyworkflow.start(chain, n, STEPS)] = n

    async def completed(self) -> set[tuple[str, str]]:
        done = set()
        for run_id in self.runs:
            for event in await events(run_id):
                if event.type is EventType.STEP_COMPLETED:
                    done.add((run_id, event.payload["step_id"]))
        return done

    async def freeze(self) -> None:
        """Remember the executions of every step the log has completed (log read first)."""
        completed = await self.completed()
        executions = self.executions()
        for key in completed:
            self.frozen.setdefault(key, executions[key])

    async def wait_all_ended(self, within: float) -> None:
        store = await storage()
        deadline = time.monotonic() + within
        while True:
            records = [await store.get_run(run_id) for run_id in self.runs]
            if all(r is not None and r.status.is_terminal for r in records):
                return
            assert time.monotonic() < deadline, f"runs did not end: {records}\n{self.context()}"
            await asyncio.sleep(0.2)

    async def check(self, kills: int) -> None:
        for run_id, n in self.runs.items():
            result = await pyworkflow.get_workflow_result(run_id, timeout=5)
            assert result == chain_result(n, STEPS), self.context()
            history = await events(run_id)
            assert [e.seq for e in history] == list(range(1, len(history) + 1))
        executions = self.executions()
        completed = await self.completed()
        assert completed == {(r, step) for r in self.runs for step in chain_steps(STEPS)}
        assert set(executions) == completed, "a step ran that the log does not know"
        for key, count_then in self.frozen.items():
            assert executions[key] == count_then, (
                f"{key} was completed in the log at a kill with {count_then} executions, "
                f"then executed again ({executions[key]} in all); {self.context()}"
            )
        for key, count in executions.items():
            assert 1 <= count <= kills + 1, f"{key} executed {count} times; {self.context()}"
        assert self.frozen, f"no step had completed at any kill; {self.context()}"


def _seed() -> int:
    return int(os.environ.get("KILLTEST_SEED", time.time_ns() % 1_000_000))


async def _next_execution(chains: Chains, seen: int, within: float) -> list[str]:
    """Wait for the side-effect file to have more than ``seen`` lines; the newest, split."""
    deadline = time.monotonic() + within
    while True:
        lines = chains.lines()
        if len(lines) > seen:
            return lines[-1].split()
        assert time.monotonic() < deadline, f"no step executed; {chains.context()}"
        await asyncio.sleep(0.01)


@pytest.mark.timeout(150)
async def test_killing_pool_processes_mid_step(
    deployment: Callable[..., Deployment], client: Callable[..., None]
) -> None:
    seed = _seed()
    rng = random.Random(seed)
    began = time.monotonic()
    deployed = deployment(storage="postgres", broker="redis", env=LEASES)
    worker = deployed.workers.start()
    client(deployed, dispatch_grace=GRACE)  # it sends the runs' first steps
    chains = Chains(deployed, seed)
    await chains.start([0, 100, 200])

    kills = 0
    killed: list[int] = []
    while kills < 3:
        seen = len(chains.lines())
        _run, _step, _attempt, _at, pid = await _next_execution(chains, seen, 30)
        if rng.random() < 0.5:
            await asyncio.sleep(rng.uniform(0.0, 0.3))  # maybe in the turn after the step
        if int(pid) not in worker.pool_pids():
            continue  # that process is already gone (or the step finished and it moved on)
        if kills == 2 and not await chains.completed():
            continue  # the last kill comes after some step completed: "never twice" has a hold
        await chains.freeze()
        deployed.workers.kill_pool_process(worker, int(pid))
        killed.append(int(pid))
        kills += 1
        await asyncio.sleep(rng.uniform(0.0, 0.5))
    await chains.wait_all_ended(60)
    await chains.check(kills)

    assert worker.proc.poll() is None, "the main process died"
    text = worker.output()
    for pid in killed:
        assert f"pid:{pid} exited with 'signal 9 (SIGKILL)'" in text, chains.context()
    print(
        f"seed={seed} pool kills={kills} re-executions="
        f"{sum(c - 1 for c in chains.executions().values())} in {time.monotonic() - began:.1f}s"
    )


@pytest.mark.timeout(150)
async def test_killing_the_whole_worker_at_random_points(
    deployment: Callable[..., Deployment], client: Callable[..., None]
) -> None:
    seed = _seed()
    rng = random.Random(seed)
    began = time.monotonic()
    deployed = deployment(storage="postgres", broker="redis", env=LEASES)
    client(deployed, dispatch_grace=GRACE)  # it sends the runs' first steps
    chains = Chains(deployed, seed)
    await chains.start([0, 100, 200])

    kills = 0
    worker: Worker = deployed.workers.start(name="w", wait=False)
    while kills < 4:
        if kills % 2:
            deployed.workers.wait_ready(worker)  # this one lands while the worker works
            await asyncio.sleep(rng.uniform(0.1, 1.5))
        else:
            await asyncio.sleep(rng.uniform(0.3, 2.0))  # may land while it starts
        if kills == 3 and not chains.frozen:
            # The last kill comes after some step completed, so "never twice" has a hold.
            deadline = time.monotonic() + 30
            while not await chains.completed():
                assert time.monotonic() < deadline, f"no step completed; {chains.context()}"
                await asyncio.sleep(0.1)
        assert worker.proc.poll() is None, f"worker exited by itself; {chains.context()}"
        deployed.workers.kill(worker)
        kills += 1
        await chains.freeze()  # with no worker alive, nothing moves
        await chains.start([1000 * kills])  # runs started while no worker runs
        worker = deployed.workers.start(name="w", wait=False)

    await chains.wait_all_ended(90)
    await chains.check(kills)
    assert not [
        r for r in await pyworkflow.list_workflow_runs() if r.status is not RunStatus.COMPLETED
    ]
    print(
        f"seed={seed} worker kills={kills} runs={len(chains.runs)} re-executions="
        f"{sum(c - 1 for c in chains.executions().values())} in {time.monotonic() - began:.1f}s"
    )


async def test_a_warm_shutdown_mid_step_repeats_nothing(
    deployment: Callable[..., Deployment], client: Callable[..., None]
) -> None:
    """SIGTERM: Celery finishes the tasks running, puts back the rest, and exits 0."""
    seed = _seed()
    deployed = deployment(storage="postgres", broker="redis", env=LEASES)
    worker = deployed.workers.start(name="w")
    client(deployed, dispatch_grace=GRACE)
    chains = Chains(deployed, seed)
    await chains.start([0, 100])

    await _next_execution(chains, 2, 30)  # a few steps in, with steps in flight
    assert deployed.workers.stop(worker) == 0, deployed.context()
    await chains.freeze()
    deployed.workers.start(name="w")
    await chains.wait_all_ended(60)
    await chains.check(kills=0)
    assert "warm shutdown" in worker.output().lower(), deployed.context()
    assert not deployed.unexpected_errors(), deployed.context()


@pytest.mark.timeout(150)
async def test_a_surviving_worker_takes_over_a_killed_ones_runs(
    deployment: Callable[..., Deployment], client: Callable[..., None]
) -> None:
    """Two workers on RabbitMQ and SQLite; one is killed for good, the other finishes."""
    seed = _seed()
    began = time.monotonic()
    deployed = deployment(storage="sqlite", broker="rabbitmq", env=LEASES)
    doomed = deployed.workers.start(name="doomed")
    survivor = deployed.workers.start(name="survivor")
    client(deployed, dispatch_grace=GRACE)
    chains = Chains(deployed, seed)
    await chains.start([0, 100, 200, 300])

    async def doomed_is_busy() -> bool:
        # The kill lands mid-step in the doomed worker, once some step has completed.
        pool = doomed.pool_pids()
        busy = [line for line in chains.lines()[-2:] if int(line.split()[-1]) in pool]
        return bool(busy) and bool(await chains.completed())

    await wait_for(doomed_is_busy, 30, chains.context)
    await chains.freeze()
    deployed.workers.kill(doomed)
    killed_at = time.time()

    await chains.wait_all_ended(60)
    await chains.check(kills=1)
    after = [line.split() for line in chains.lines() if float(line.split()[3]) > killed_at]
    assert after, f"nothing ran after the kill; {chains.context()}"
    assert {int(fields[-1]) for fields in after} <= set(survivor.pool_pids()), chains.context()
    print(f"seed={seed} takeover in {time.monotonic() - began:.1f}s")
