"""The Celery app and workflows of b8_celery.py; its workers run ``celery -A _celery_bench_app``.

One app carries both the raw baseline (``bench.noop``, a no-op task with a Redis result
backend, so a client can wait for its round trip) and pyworkflow's tasks, so both are measured
on the same broker and the same worker processes.
"""

from __future__ import annotations

import os

from pyworkflow import step, workflow
from pyworkflow.executors.celery import create_app

BROKER = os.environ.get("PYWORKFLOW_BROKER", "redis://127.0.0.1:6379/9")

app = create_app(BROKER)
app.conf.result_backend = BROKER


@app.task(name="bench.noop", ignore_result=False, acks_late=True)
def noop() -> None:
    """The raw Celery baseline: a task that does nothing."""


@step()
async def b8_noop(i: int) -> int:
    return i


@step(force_local=True)
async def b8_local(i: int) -> int:
    return i


@workflow()
async def b8_ten_steps() -> int:
    total = 0
    for i in range(10):
        total += await b8_noop(i)
    return total


@workflow()
async def b8_three_steps() -> int:
    total = 0
    for i in range(3):
        total += await b8_noop(i)
    return total


@workflow()
async def b8_local_steps(n: int) -> int:
    total = 0
    for i in range(n):
        total += await b8_local(i)
    return total
