"""Reading a run back through the public API: its event log, its status, how it failed.

Its asserts are rewritten like a test module's (registered in ``tests/engine/__init__.py``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import pyworkflow
from pyworkflow import EventType, RunStatus, WorkflowEvent, WorkflowFailedError
from pyworkflow.workflow import Workflow


async def events_of(run_id: str) -> list[WorkflowEvent]:
    return await pyworkflow.get_workflow_events(run_id)


def types(events: list[WorkflowEvent]) -> list[EventType]:
    return [e.type for e in events]


def of_type(events: list[WorkflowEvent], kind: EventType) -> list[WorkflowEvent]:
    return [e for e in events if e.type is kind]


async def wait_status(
    run_id: str, wanted: RunStatus, within: float = 3.0
) -> pyworkflow.WorkflowRun:
    deadline = time.monotonic() + within
    while True:
        run = await pyworkflow.get_workflow_run(run_id)
        if run.status is wanted:
            return run
        assert time.monotonic() < deadline, f"run stayed {run.status}, never {wanted}"
        await asyncio.sleep(0.01)


def assert_well_formed(events: list[WorkflowEvent]) -> None:
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].type is EventType.WORKFLOW_STARTED
    assert all(e.data.get("v") == 1 for e in events), [e.data for e in events]


async def failure_of(run_id: str) -> WorkflowFailedError:
    """What ``get_workflow_result`` raises for ``run_id``, which must fail within 10 s."""
    with pytest.raises(WorkflowFailedError) as info:
        await pyworkflow.get_workflow_result(run_id, timeout=10)
    return info.value


async def run_to_failure(wf: Workflow[..., Any], *args: Any) -> WorkflowFailedError:
    """What ``pyworkflow.run(wf, *args)`` raises, which must be WorkflowFailedError."""
    with pytest.raises(WorkflowFailedError) as info:
        await pyworkflow.run(wf, *args)
    return info.value
