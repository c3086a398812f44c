"""A step with ``queue="emails"`` is executed only by a worker consuming that queue.

Worker ``main`` consumes the default queue (``-Q pyworkflow``) only. The run's other steps
execute there; its ``send_email`` step waits in the broker's ``emails`` queue (its STEP_STARTED
is logged, nothing executes it) until worker ``mailer`` (``-Q emails``) starts, which executes
it and nothing else: each step returns the process it ran in. On Redis with PostgreSQL and on
RabbitMQ with SQLite (where the queue must exist before anyone consumes it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from celery_flows import mail
from celery_runs import events, run_record, wait_for
from celery_workers import Deployment, queued

import pyworkflow
from pyworkflow import EventType

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("broker", "storage"), [("redis", "postgres"), ("rabbitmq", "sqlite")])
async def test_a_step_routed_to_a_queue_runs_only_on_a_worker_consuming_it(
    deployment: Callable[..., Deployment],
    client: Callable[[Deployment], None],
    broker: str,
    storage: str,
) -> None:
    deployed = deployment(storage=storage, broker=broker)
    main = deployed.workers.start(queues="pyworkflow", name="main")
    client(deployed)

    run_id = await pyworkflow.start(mail, "ana@example.com")

    async def email_waiting() -> int:
        return queued(deployed.broker, "emails")

    assert await wait_for(email_waiting, 20, deployed.context) == 1
    await asyncio.sleep(1.5)  # main has all the time it needs to (wrongly) take it
    assert queued(deployed.broker, "emails") == 1, "a worker not consuming 'emails' took it"
    history = [e.type for e in await events(run_id)]
    assert history[-1] is EventType.STEP_STARTED, history
    assert not (await run_record(run_id)).status.is_terminal

    mailer = deployed.workers.start(queues="emails", name="mailer")
    before, sent, after = await pyworkflow.get_workflow_result(run_id, timeout=30)

    assert sent["to"] == "ana@example.com"
    assert sent["pid"] in mailer.pool_pids(), deployed.context()
    for other in (before, after):
        assert other["pid"] in main.pool_pids(), deployed.context()
    assert "cf_send_email" not in main.output().replace("step cf_send_email#1", "")
    assert not deployed.unexpected_errors(), deployed.context()
