"""Celery beat as the pyworkflow documentation spells it: the scheduler class, and ``--beat``.

The workers' sweepers are off (``PYWORKFLOW_SWEEP_INTERVAL=0``), so only beat fires. Two beats
fire one every-second schedule at once: ``pyworkflow worker run --executor celery --beat`` (beat
embedded in the worker) and ``celery -A pyworkflow.celery.app beat --scheduler
pyworkflow.celery.scheduler:PyWorkflowScheduler`` (a beat process of its own). The standalone
one is killed with SIGKILL half-way. Then: one run per slot, none missing, every run completed
by the worker.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from celery_slots import assert_each_slot_once, fire_through_a_kill
from celery_workers import Deployment

pytestmark = pytest.mark.slow


async def test_two_beats_and_a_kill_start_each_slot_once(
    deployment: Callable[..., Deployment], client: Callable[..., None]
) -> None:
    deployed = deployment(
        storage="postgres", broker="redis", env={"PYWORKFLOW_SWEEP_INTERVAL": "0"}
    )
    worker = deployed.workers.start(name="celery", via_cli=True, beat=True)
    standalone = deployed.workers.start_beat()
    client(deployed)
    runs = await fire_through_a_kill(
        deployed,
        "beat-every-second",
        lambda: deployed.workers.kill(standalone),
        before=4,
        after=4,
    )
    await assert_each_slot_once(deployed, "beat-every-second", runs, at_least=6)
    # Both beats ran beside each other (storage, not the beat, decides who fires a slot):
    # the embedded one logs in the worker's output, the other in its own.
    assert "beat fires the schedules of" in worker.output()
    assert "beat fires the schedules of" in standalone.output()
    assert not deployed.unexpected_errors(), deployed.context()
