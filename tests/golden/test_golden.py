"""Golden histories: event logs recorded by an earlier engine, replayed against today's code.

Each ``<workflow>.json`` holds a run's full log (type, payload, seq). Replaying it, and every
prefix of it (a run stopped after any event), through ``WorkflowActivation`` must not diverge,
and the full log must replay to the outcome it recorded. A change to the engine or to the
workflows in ``workflows.py`` that would strand runs already in flight fails here.

Re-record (only on purpose, e.g. after a deliberate, versioned format change) with
``pytest tests/golden --record-golden``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import pyworkflow
from pyworkflow import registry
from pyworkflow._engine.activation import WorkflowActivation
from pyworkflow._engine.event_kinds import EVENT_FORMAT
from pyworkflow.events import EventType
from pyworkflow.serialization import Codec
from pyworkflow.storage import MemoryStorage
from pyworkflow.storage.records import EventRecord

from . import workflows

HERE = Path(__file__).parent
GOLDEN = ["golden_sequence", "golden_gather_sleep", "golden_resume"]
TERMINAL = {EventType.WORKFLOW_COMPLETED, EventType.WORKFLOW_FAILED, EventType.WORKFLOW_CANCELLED}


class StoppedClock:
    def now(self) -> float:
        return 2_000_000_000.0

    async def sleep_until(self, deadline: float) -> None:
        raise AssertionError("replay never waits")


# --- recording -----------------------------------------------------------------------------------


async def _record_one(name: str) -> str:
    if name == "golden_sequence":
        return await pyworkflow.start(workflows.golden_sequence, "order-7")
    if name == "golden_gather_sleep":
        return await pyworkflow.start(workflows.golden_gather_sleep, ["a", "b", "c"])
    workflows.FLAGS["warehouse_open"] = False
    run_id = await pyworkflow.start(workflows.golden_resume, 30)
    with pytest.raises(pyworkflow.WorkflowFailedError):
        await pyworkflow.get_workflow_result(run_id, timeout=10)
    workflows.FLAGS["warehouse_open"] = True
    await pyworkflow.resume(run_id)
    return run_id


async def _record(monkeypatch: pytest.MonkeyPatch) -> None:
    from pyworkflow import config

    monkeypatch.setattr(config, "_settings", config._settings)
    pyworkflow.configure(storage=MemoryStorage(), horizon_seconds=5.0)
    try:
        for name in GOLDEN:
            run_id = await _record_one(name)
            await pyworkflow.get_workflow_result(run_id, timeout=10)
            events = await pyworkflow.get_workflow_events(run_id)
            document = {
                "workflow": name,
                "recorded_with_event_format": EVENT_FORMAT,
                "events": [{"seq": e.seq, "type": e.type.value, "payload": e.data} for e in events],
            }
            (HERE / f"{name}.json").write_text(
                json.dumps(document, indent=1, sort_keys=True) + "\n"
            )
    finally:
        await pyworkflow.shutdown()


@pytest.fixture(scope="module")
def record_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--record-golden"))


async def test_record_when_asked(record_golden: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """With --record-golden, (re)write the JSON files; otherwise check that they exist."""
    if record_golden:
        await _record(monkeypatch)
    for name in GOLDEN:
        assert (HERE / f"{name}.json").exists(), f"record {name}.json with --record-golden"


# --- replaying -----------------------------------------------------------------------------------


def load(name: str) -> list[EventRecord]:
    """The events of ``<name>.json``, as storage would hand them to a replay."""
    document = json.loads((HERE / f"{name}.json").read_text())
    assert document["workflow"] == name
    return [
        EventRecord(
            run_id=f"golden-{name}",
            seq=e["seq"],
            type=EventType(e["type"]),
            payload=e["payload"],
            created_at=0.0,
        )
        for e in document["events"]
    ]


def replay(events: list[EventRecord]) -> tuple[WorkflowActivation, Any]:
    """Replay a log (or a prefix of it) through the workflow its first event names."""
    started = events[0].payload
    call = Codec().decode(started["args"])
    activation = WorkflowActivation(
        run_id=events[0].run_id,
        workflow=registry.get_workflow(started["workflow"]),
        args=tuple(call["args"]),
        kwargs=dict(call["kwargs"]),
        codec=Codec(),
        clock=StoppedClock(),
    )
    try:
        return activation, activation.replay(events)
    finally:
        activation.close()


@pytest.mark.parametrize("name", GOLDEN)
def test_log_is_well_formed(name: str) -> None:
    events = load(name)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].type is EventType.WORKFLOW_STARTED
    assert events[0].payload["workflow"] == name
    assert events[-1].type is EventType.WORKFLOW_COMPLETED
    for event in events:
        assert event.payload.get("v") == EVENT_FORMAT, event


def replays_whole(events: list[EventRecord]) -> None:
    """The full log replays to its recorded end, issuing nothing new."""
    activation, turn = replay(events)
    assert activation.divergence is None, str(activation.divergence)
    assert turn.finished
    assert turn.error is None
    assert turn.launch == []
    assert turn.events == [], "a full log replays without issuing anything new"
    assert turn.result == events[-1].payload["result"]


def replays_every_prefix(events: list[EventRecord]) -> None:
    """Every prefix replays without divergence; where the code ends, the log records that end."""
    for stop in range(1, len(events) + 1):
        prefix = events[:stop]
        activation, turn = replay(prefix)
        assert activation.divergence is None, f"after event {stop}: {activation.divergence}"
        if not turn.finished:
            assert prefix[-1].type not in TERMINAL, f"after event {stop}"
            continue
        # The code ended: the log's next event (or this one) must record that very end.
        end = prefix[-1] if prefix[-1].type in TERMINAL else events[stop]
        assert end.type in TERMINAL, f"after event {stop}: the code ended, the log did not"
        if end.type is EventType.WORKFLOW_FAILED:
            assert turn.error is not None
            assert turn.error["type"] == end.payload["error"]["type"]
            assert turn.error["message"] == end.payload["error"]["message"]
        else:
            assert turn.result == end.payload["result"]


@pytest.mark.parametrize("name", GOLDEN)
def test_full_log_replays_to_its_recorded_result(name: str) -> None:
    replays_whole(load(name))


@pytest.mark.parametrize("name", GOLDEN)
def test_every_prefix_replays_without_divergence(name: str) -> None:
    replays_every_prefix(load(name))


def test_golden_runs_cover_the_interesting_events() -> None:
    kinds = {e.type for name in GOLDEN for e in load(name)}
    for kind in (
        EventType.STEP_RETRYING,
        EventType.STEP_FAILED,
        EventType.SLEEP_STARTED,
        EventType.SLEEP_COMPLETED,
        EventType.SIDE_EFFECT_RECORDED,
        EventType.WORKFLOW_FAILED,
        EventType.WORKFLOW_RESUMED,
    ):
        assert kind in kinds, kind
