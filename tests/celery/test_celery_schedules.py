"""Schedules on Celery: each worker's sweeper fires them; a worker killed mid-stream loses none.

Two Celery workers on one PostgreSQL schema (Redis broker) both fire an every-second
schedule (ALLOW_ALL, a catch-up window of a minute) from their sweepers, through the same
engine call as the local executor (``_engine/periodic.py``). One is killed with SIGKILL (its
pool too, by pid); the other goes on. Then: one run per slot, no slot missing between the first
and the last, none skipped, and every run completed by the workers.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from celery_slots import assert_each_slot_once, fire_through_a_kill
from celery_workers import Deployment

pytestmark = pytest.mark.slow


async def test_two_celery_workers_and_a_kill_start_each_slot_once(
    deployment: Callable[..., Deployment], client: Callable[..., None]
) -> None:
    deployed = deployment(storage="postgres", broker="redis")
    first = deployed.workers.start(name="first")
    deployed.workers.start(name="second")
    client(deployed)
    runs = await fire_through_a_kill(
        deployed,
        "celery-every-second",
        lambda: deployed.workers.kill(first),
        before=5,
        after=5,
    )
    await assert_each_slot_once(deployed, "celery-every-second", runs, at_least=8)
