"""Storage is the truth: runs complete when the broker loses their messages (DESIGN §2.5).

A Redis database flushed with ``FLUSHDB`` is a broker restarted without persistence: every
queued message is gone. The runs are in storage all the same, and the sweeper of a worker
finds them, due at once or once the dispatch grace of the messages it lost has passed (2 s
here), and sends their work again: runs started while no worker ran, a step message lost
mid-run, stored timers (a sleep and a retry delay) whose worker was killed meanwhile, a run
started while the broker was unreachable, and a worker whose storage was not ready when it
started (its sweeper tries again).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import pytest
from celery_flows import mail, nap, parent_waits, retry_later, sequence
from celery_runs import events, run_record, wait_for
from celery_workers import Deployment, flush_redis, queued

import pyworkflow
from pyworkflow import EventType
from pyworkflow.storage.records import EventRecord

pytestmark = pytest.mark.slow

GRACE = 2.0


def started_attempts(history: list[EventRecord]) -> list[tuple[str, int]]:
    return [
        (e.payload["step_id"], e.payload["attempt"])
        for e in history
        if e.type is EventType.STEP_STARTED
    ]


async def test_runs_started_while_no_worker_runs_survive_a_flushed_broker(
    deployment: Callable[..., Deployment], client: Callable[..., None]
) -> None:
    deployed = deployment(
        storage="postgres", broker="redis", env={"PYWORKFLOW_DISPATCH_GRACE": str(GRACE)}
    )
    client(deployed, dispatch_grace=GRACE)
    # One run whose first turn only sends a step (the client sends it), one whose first
    # turn starts a child (the client sends ``advance``).
    steps_first = await pyworkflow.start(sequence, 1)
    child_first = await pyworkflow.start(parent_waits, 2)
    assert queued(deployed.broker, "pyworkflow") == 2
    flush_redis(deployed.broker)
    assert queued(deployed.broker, "pyworkflow") == 0

    deployed.workers.start()
    assert await pyworkflow.get_workflow_result(steps_first, timeout=30) == [2, 12, 112]
    assert await pyworkflow.get_workflow_result(child_first, timeout=30) == 1003

    # Sent again, not started again: each step has one attempt in the log.
    history = await events(steps_first)
    assert started_attempts(history) == [("cf_add#1", 1), ("cf_add#2", 1), ("cf_add#3", 1)]
    assert "sending again 1 steps" in deployed.context()


async def test_a_step_message_lost_mid_run_is_sent_again(
    deployment: Callable[..., Deployment], client: Callable[..., None]
) -> None:
    deployed = deployment(
        storage="postgres", broker="redis", env={"PYWORKFLOW_DISPATCH_GRACE": str(GRACE)}
    )
    deployed.workers.start(queues="pyworkflow", name="main")
    client(deployed, dispatch_grace=GRACE)
    run_id = await pyworkflow.start(mail, "bo@example.com")

    # The run's first step is done; its email step waits in the "emails" queue, which no
    # worker consumes yet. Then the broker loses it.
    async def email_queued() -> int:
        return queued(deployed.broker, "emails")

    assert await wait_for(email_queued, 20, deployed.context) == 1
    flush_redis(deployed.broker)
    assert queued(deployed.broker, "emails") == 0

    mailer = deployed.workers.start(queues="emails", name="mailer")
    before, sent, after = await pyworkflow.get_workflow_result(run_id, timeout=30)

    assert sent["to"] == "bo@example.com"
    assert sent["pid"] in mailer.pool_pids()
    assert (before["tag"], after["tag"]) == ("before", "after")
    assert started_attempts(await events(run_id)) == [
        ("cf_where#1", 1),
        ("cf_send_email#1", 1),
        ("cf_where#2", 1),
    ]
    assert "sending again 1 steps" in deployed.context()
    assert not deployed.unexpected_errors(), deployed.context()


async def test_stored_timers_survive_their_worker_and_its_messages(
    deployment: Callable[..., Deployment], client: Callable[..., None]
) -> None:
    """A sleep and a retry delay past the horizon are wake-up times in storage, not messages
    or coroutines: a worker killed meanwhile and a flushed broker lose nothing."""
    deployed = deployment(
        storage="postgres", broker="redis", env={"PYWORKFLOW_DISPATCH_GRACE": str(GRACE)}
    )
    worker = deployed.workers.start()
    client(deployed, dispatch_grace=GRACE)
    sleeper = await pyworkflow.start(nap, 6.0)  # longer than any executor's horizon (5 s)
    retrier = await pyworkflow.start(retry_later)  # its retry delay is 5.5 s

    async def waiting(run_id: str, on: EventType) -> bool:
        record = await run_record(run_id)
        return (
            record.lease_owner is None
            and record.wake_at is not None
            and on in [e.type for e in await events(run_id)]
        )

    await wait_for(lambda: waiting(sleeper, EventType.SLEEP_STARTED), 20, deployed.context)
    await wait_for(lambda: waiting(retrier, EventType.STEP_RETRYING), 20, deployed.context)
    deployed.workers.kill(worker)
    flush_redis(deployed.broker)
    deployed.workers.start()

    assert await pyworkflow.get_workflow_result(sleeper, timeout=30) >= 6.0
    history = [e.type for e in await events(sleeper)]
    assert history.count(EventType.SLEEP_COMPLETED) == 1
    assert await pyworkflow.get_workflow_result(retrier, timeout=30) == 2
    assert started_attempts(await events(retrier)) == [
        ("cf_flaky_slowly#1", 1),
        ("cf_flaky_slowly#1", 2),
    ]


async def test_a_worker_started_before_its_storage_is_ready_still_sweeps(
    deployment: Callable[..., Deployment], client: Callable[..., None]
) -> None:
    """The sweeper starts again when storage could not be opened (a database still starting).

    Worker ``sweeper`` is told ``create=false`` on a PostgreSQL schema that does not exist yet
    (and consumes only the ``emails`` queue); this process then creates the schema and starts
    a run whose message the broker loses. Worker ``runner`` executes tasks but sweeps nothing
    (``PYWORKFLOW_SWEEP_INTERVAL=0``): only the first one's sweeper can find the run.
    """
    deployed = deployment(
        storage="postgres", broker="redis", env={"PYWORKFLOW_DISPATCH_GRACE": str(GRACE)}
    )
    not_yet = f"{deployed.storage}&create=false"
    sweeper = deployed.workers.start(
        name="sweeper", queues="emails", env={"PYWORKFLOW_STORAGE": not_yet}
    )

    async def sweeper_failed() -> bool:  # it could not open storage
        text = sweeper.output()
        return "the sweeper failed" in text or "the sweeper stopped" in text

    await wait_for(sweeper_failed, 20, deployed.context)
    client(deployed, dispatch_grace=GRACE)  # opening storage here creates the schema
    run_id = await pyworkflow.start(sequence, 7)
    flush_redis(deployed.broker)
    assert queued(deployed.broker, "pyworkflow") == 0
    runner = deployed.workers.start(name="runner", env={"PYWORKFLOW_SWEEP_INTERVAL": "0"})

    assert await pyworkflow.get_workflow_result(run_id, timeout=30) == [8, 18, 118]
    assert "sweeper serving" in sweeper.output()
    assert "sweeper off" in runner.output()


async def test_a_run_started_while_the_broker_is_unreachable_still_runs(
    deployment: Callable[..., Deployment], client: Callable[..., None]
) -> None:
    """``start`` stores the run although it cannot send anything; a sweeper sends it later."""
    deployed = deployment(
        storage="postgres", broker="redis", env={"PYWORKFLOW_DISPATCH_GRACE": str(GRACE)}
    )
    deployed.workers.start()
    unreachable = dataclasses.replace(deployed, broker="redis://127.0.0.1:1/0")  # nothing there
    client(unreachable, dispatch_grace=GRACE)

    began = time.monotonic()
    run_id = await pyworkflow.start(sequence, 3)
    assert time.monotonic() - began < 10, "start() hung on the unreachable broker"
    assert await pyworkflow.get_workflow_result(run_id, timeout=30) == [4, 14, 114]
