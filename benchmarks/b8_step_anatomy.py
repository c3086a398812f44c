"""B8 anatomy: what one Celery step task costs without the broker, and its storage calls.

Drives ``CeleryExecutor`` in this process with the broker replaced by a queue in memory: each
``pyworkflow.step`` message is handed straight to ``execute_step``, as a worker would. Storage
is a fresh PostgreSQL schema. Prints the time per step and the storage calls per step, the part
of a Celery step that is ours (the rest is the broker hop; compare ``b8_celery.py``).

Run: ``.venv/bin/python benchmarks/b8_step_anatomy.py [--runs 300]``
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import sys
import time
import uuid
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import _celery_bench_app as bench  # noqa: E402

import pyworkflow  # noqa: E402
from pyworkflow import runtime as pw_runtime  # noqa: E402
from pyworkflow.executors.celery import CeleryExecutor  # noqa: E402

PG = os.environ.get("PYWORKFLOW_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1/pyworkflow_bench")
CALLS = ("acquire_step", "load_events", "claim_runs", "append", "release_step", "get_run")


class InMemoryBroker:
    """Stands in for the Celery app: keeps what would be sent."""

    def __init__(self) -> None:
        self.sent: collections.deque[tuple[str, tuple[Any, ...]]] = collections.deque()

    def send_task(self, name: str, args: tuple[Any, ...], queue: str) -> None:
        self.sent.append((name, args))


async def main(runs: int) -> None:
    broker = InMemoryBroker()
    url = f"{PG}?schema=anatomy_{uuid.uuid4().hex[:8]}"
    pyworkflow.configure(storage=url, executor="celery", celery_app=broker)
    runtime = await pw_runtime.get_runtime()
    executor = runtime.executor
    assert isinstance(executor, CeleryExecutor)
    calls: collections.Counter[str] = collections.Counter()
    for name in CALLS:
        original = getattr(runtime.storage, name)

        def counted(*a: Any, _f: Any = original, _n: str = name, **k: Any) -> Any:
            calls[_n] += 1
            return _f(*a, **k)

        setattr(runtime.storage, name, counted)
    try:
        for _ in range(runs):
            await pyworkflow.start(bench.b8_three_steps)
        calls.clear()
        steps = 0
        begin = time.perf_counter()
        while broker.sent:
            task, args = broker.sent.popleft()
            if task == "pyworkflow.step":
                await executor.execute_step(*args, delivery=f"d{steps}")
                steps += 1
            else:
                await executor.advance(*args)
        elapsed = time.perf_counter() - begin
    finally:
        await pyworkflow.shutdown()
    print(f"{steps} step tasks, one at a time: {elapsed / steps * 1e6:,.0f} us a step")
    print("storage calls a step: " + ", ".join(f"{n} {calls[n] / steps:.2f}" for n in CALLS))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="3-step workflows to drive")
    asyncio.run(main(parser.parse_args().runs))
