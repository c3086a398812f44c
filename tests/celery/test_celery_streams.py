"""Stream workflows on real Celery workers, on PostgreSQL with Redis and on SQLite with RabbitMQ.

The driving run's steps (open, batch, arm, emit) are force-local, inline in the worker that
drives it, and a batch step runs its executions there; an execution that raised runs again as
an ordinary step (``stream:<name>``), sent to the queue. What a user checks: a planner and its
worker exchange signals until both terminate; a review loop suspends for a human, the parent
waits holding no worker, and a signal emitted later from outside (this process) resumes it;
each signal is delivered once; a job whose first execution raised is done by its retry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from celery_runs import storage
from celery_streams import cs_run_jobs, cs_run_planning, cs_run_reviews
from celery_workers import FLOWS, Deployment

import pyworkflow
from pyworkflow import EventType, RunStatus, emit
from pyworkflow.storage import StreamStore

pytestmark = pytest.mark.slow

WITHIN = 60


@pytest.fixture(
    params=[("postgres", "redis"), ("sqlite", "rabbitmq")], ids=["pg-redis", "sqlite-amqp"]
)
def on(
    request: pytest.FixtureRequest,
    deployment: Callable[..., Deployment],
    client: Callable[[Deployment], None],
) -> Deployment:
    store, broker = request.param
    deployed = deployment(
        storage=store, broker=broker, env={"PYWORKFLOW_MODULES": f"{FLOWS},celery_streams"}
    )
    deployed.workers.start()
    client(deployed)
    return deployed


async def _stream_store() -> StreamStore:
    store = await storage()
    assert isinstance(store, StreamStore)
    return store


async def _waiting(stream_run_id: str, status: str, context: Callable[[], str]) -> None:
    store = await _stream_store()
    deadline = time.monotonic() + WITHIN
    while True:
        record = await store.get_stream_run(stream_run_id)
        if record is not None and record.status == status:
            run = await store.get_run(record.run_id)
            if run is not None and run.status is RunStatus.SUSPENDED:
                return
        assert time.monotonic() < deadline, f"stream run never {status}; {context()}"
        await asyncio.sleep(0.1)


async def test_planner_and_worker_on_celery_workers(on: Deployment) -> None:
    run_id = await pyworkflow.start(cs_run_planning, "cs-plan-1")
    result = await pyworkflow.get_workflow_result(run_id, timeout=WITHIN)
    assert result == {"cs_planner": ["a", "b", "c"], "cs_worker": 3}
    store = await _stream_store()
    deliveries = await store.list_deliveries("cs-plan-1")
    per_step: dict[str, list[int | None]] = {}
    for delivery in deliveries:
        per_step.setdefault(delivery.step_name, []).append(delivery.seq)
    # 1 request, 3 assignments, 3 done: each delivered once, in seq order, to its step.
    assert per_step["cs_worker"][0] is None
    assert per_step["cs_planner"][0] is None
    got = sorted(s for seqs in per_step.values() for s in seqs if s is not None)
    assert got == list(range(1, 8))
    assert per_step["cs_worker"][1:] == sorted(per_step["cs_worker"][1:])


async def test_a_review_suspends_until_a_later_signal_from_outside(on: Deployment) -> None:
    run_id = await pyworkflow.start(cs_run_reviews, "cs-rev-1")
    await _waiting("cs-rev-1", "running", on.context)
    await emit("cs_reviews", "review.submitted", {"n": 1}, stream_run_id="cs-rev-1")
    await _waiting("cs-rev-1", "suspended", on.context)
    parent = await pyworkflow.get_workflow_run(run_id)
    assert parent.status is RunStatus.SUSPENDED  # waiting on its stream run, holding no worker
    await emit("cs_reviews", "human.approved", {"by": "ana"}, stream_run_id="cs-rev-1")
    result = await pyworkflow.get_workflow_result(run_id, timeout=WITHIN)
    assert result == {"approved_by": "ana"}


async def test_an_execution_that_raised_is_retried_as_a_step_on_the_queue(
    on: Deployment, tmp_path: Path
) -> None:
    log, marker = tmp_path / "executions.log", tmp_path / "first-failed"
    run_id = await pyworkflow.start(cs_run_jobs, "cs-jobs-1")
    await _waiting("cs-jobs-1", "running", on.context)
    job = {"log": str(log), "marker": str(marker)}
    await emit("cs_jobs", "job", job, stream_run_id="cs-jobs-1")
    result = await pyworkflow.get_workflow_result(run_id, timeout=WITHIN)
    assert result == {"done": 1, "attempt": 2}
    # The first execution ran in the driving run's batch step, the second as its own step:
    # one execution id for both, attempts 1 and 2.
    executions = [line.split() for line in log.read_text().splitlines()]
    assert [(attempt, step_id) for _, attempt, step_id in executions] == [
        ("1", executions[0][2]),
        ("2", executions[0][2]),
    ]
    assert executions[0][2].startswith("stream:cs_flaky@")
    store = await _stream_store()
    record = await store.get_stream_run("cs-jobs-1")
    assert record is not None
    started = [
        e.data["step_id"]
        for e in await pyworkflow.get_workflow_events(record.run_id)
        if e.type is EventType.STEP_STARTED
    ]
    assert [s for s in started if s.startswith("stream:")] == ["stream:cs_flaky#1"]
    deliveries = [d.seq for d in await store.list_deliveries("cs-jobs-1") if d.seq is not None]
    assert deliveries == [1]
