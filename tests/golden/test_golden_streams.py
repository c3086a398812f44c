"""Golden histories of a stream run's driving run (``pyworkflow.stream``), issue 20.

Each is the log of the run that drove the stream run of ``stream_workflows.golden_stream``:
the body's recorded emit, batches of deliveries, and waits for signals on a hook armed by a
``pyworkflow.stream.arm`` step, one of them warm (with a timeout) that expired, one cold.

- ``golden_stream_driver.json``: recorded by the driver of main at 71f17e4, where batches are
  taken by ``pyworkflow.stream.take`` steps, each delivery is a ``stream:golden_stream_worker``
  step, the hook's payload is the waking signal's seq and a take step follows each wake.
- ``golden_stream_driver_batches.json``: recorded at 545346c, where the waking emit hands the
  batch it took over as the hook's payload and the deliveries follow at once.
- ``golden_stream_driver_batch_steps.json``: recorded by today's driver, where a
  ``pyworkflow.stream.batch`` step takes each batch and runs its executions, and one execution
  that raised runs again, after its retry delay (a timer), as a ``stream:golden_stream_worker``
  step. ``pytest tests/golden --record-golden`` re-records this one only, and only on purpose.

Today's code cannot write the first two: they are never re-recorded.

Replaying each, and every prefix of each, against today's driver must not diverge: a change
to the driver that strands stream runs in flight at an upgrade fails here.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import pyworkflow
from pyworkflow._engine.event_kinds import EVENT_FORMAT
from pyworkflow._streams.driver import DRIVER_NAME, WARM_SECONDS
from pyworkflow.events import EventType
from pyworkflow.storage import MemoryStorage
from pyworkflow.storage.streams import StreamStore

from . import stream_workflows
from .test_golden import load, replays_every_prefix, replays_whole

HERE = Path(__file__).parent
OLDEST = "golden_stream_driver"
STEPS = "golden_stream_driver_batches"
NAME = "golden_stream_driver_batch_steps"
GOLDEN = [OLDEST, STEPS, NAME]
STREAM_RUN_ID = "golden-stream-1"


# --- recording -----------------------------------------------------------------------------------


async def _driver_waits(storage: StreamStore, previous: int) -> list[Any]:
    """The driving run's log once it waits on a new armed hook (more than ``previous`` events)."""
    for _ in range(2000):
        record = await storage.get_stream_run(STREAM_RUN_ID)
        if record is not None:
            events = await pyworkflow.get_workflow_events(record.run_id)
            names = [e.data.get("step_id", "") for e in events]
            if len(events) > previous and names[-1].startswith("pyworkflow.stream.arm#"):
                return events
        await asyncio.sleep(0.005)
    raise AssertionError("the driving run never waited for a signal")


async def _record(monkeypatch: pytest.MonkeyPatch) -> None:
    from pyworkflow import config

    monkeypatch.setattr(config, "_settings", config._settings)
    storage = MemoryStorage()
    pyworkflow.configure(storage=storage, horizon_seconds=5.0)
    try:
        parent = await pyworkflow.start(stream_workflows.golden_stream_parent, STREAM_RUN_ID)
        seen = len(await _driver_waits(storage, 0))  # a warm wait: the body's task is done
        await pyworkflow.emit("golden_stream", "task", {"n": 2}, stream_run_id=STREAM_RUN_ID)
        seen = len(await _driver_waits(storage, seen))
        flaky = {"n": 3, "fail_once": True}
        await pyworkflow.emit("golden_stream", "task", flaky, stream_run_id=STREAM_RUN_ID)
        seen = len(await _driver_waits(storage, seen))
        await asyncio.sleep(WARM_SECONDS + 0.5)  # the warm wait expires: the next one is cold
        await _driver_waits(storage, seen + 1)
        await pyworkflow.emit("golden_stream", "stop", None, stream_run_id=STREAM_RUN_ID)
        assert await pyworkflow.get_workflow_result(parent, timeout=10) == {
            "golden_stream_worker": {"tasks": [1, 2, 3]}
        }
        record = await storage.get_stream_run(STREAM_RUN_ID)
        assert record is not None
        events = await pyworkflow.get_workflow_events(record.run_id)
        document = {
            "workflow": NAME,
            "recorded_with_event_format": EVENT_FORMAT,
            "events": [{"seq": e.seq, "type": e.type.value, "payload": e.data} for e in events],
        }
        (HERE / f"{NAME}.json").write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    finally:
        await pyworkflow.shutdown()


async def test_record_when_asked(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --record-golden, (re)write today's JSON file; otherwise check that both exist."""
    if request.config.getoption("--record-golden"):
        await _record(monkeypatch)
    for name in GOLDEN:
        assert (HERE / f"{name}.json").exists(), f"{name}.json is missing"


# --- replaying -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", GOLDEN)
def test_log_covers_the_driver_paths(name: str) -> None:
    events = load(name)
    assert events[0].payload["workflow"] == DRIVER_NAME
    assert events[-1].type is EventType.WORKFLOW_COMPLETED
    kinds = {e.type for e in events}
    assert {EventType.HOOK_CREATED, EventType.HOOK_RECEIVED, EventType.HOOK_EXPIRED} <= kinds
    steps = {e.payload["name"] for e in events if e.type is EventType.STEP_STARTED}
    common = {"pyworkflow.stream.open", "pyworkflow.stream.emit", "pyworkflow.stream.arm"}
    if name == NAME:
        assert steps == {*common, "pyworkflow.stream.batch", "stream:golden_stream_worker"}
        assert EventType.SLEEP_STARTED in kinds  # the retry's delay, durable
    else:
        assert steps == {*common, "pyworkflow.stream.take", "stream:golden_stream_worker"}
    # What follows a wake by a signal: a take step (the seq as payload); since emits take the
    # batch, the delivery itself; since batch steps, the batch step that runs the delivery.
    after_wakes = {
        (type(e.payload["payload"]).__name__, events[i + 1].payload["name"].split("#")[0])
        for i, e in enumerate(events)
        if e.type is EventType.HOOK_RECEIVED
    }
    expected = {
        OLDEST: ("int", "pyworkflow.stream.take"),
        STEPS: ("dict", "stream:golden_stream_worker"),
        NAME: ("dict", "pyworkflow.stream.batch"),
    }
    assert after_wakes == {expected[name]}


@pytest.mark.parametrize("name", GOLDEN)
def test_full_log_replays_to_its_recorded_result(name: str) -> None:
    replays_whole(load(name))


@pytest.mark.parametrize("name", GOLDEN)
def test_every_prefix_replays_without_divergence(name: str) -> None:
    replays_every_prefix(load(name))
