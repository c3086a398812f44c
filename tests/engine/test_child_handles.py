"""Client calls from workflow code, refused at once.

Workflow code that called the client (``start``, ``get_workflow_run`` ...) read storage from the
workflow's own loop: on SQLite the storage thread called back into that loop, which refused, and
the run stayed suspended forever (issue 14). Now each call raises ``ClientCallInWorkflowError``
at once, naming the call; a step may still call the client. Runs on memory, SQLite and
PostgreSQL, with a deadline so that a hang fails fast.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import pyworkflow
from pyworkflow import (
    ChildWorkflowHandle,
    ClientCallInWorkflowError,
    EventType,
    get_step_context,
    list_hooks,
    resume_hook,
    step,
    workflow,
)
from pyworkflow.storage.protocol import Storage

from .recording import double, token
from .run_log import events_of, types

pytestmark = pytest.mark.timeout(60)


@workflow(name="tchh_quick_child")
async def quick_child(tok: str, x: int) -> int:
    return await double(tok, x)


# --- other client calls in workflow code ---------------------------------------------------------

CLIENT_CALLS: dict[str, Callable[[str], Awaitable[Any]]] = {
    "start": lambda run_id: pyworkflow.start(quick_child, "t", 1),
    "run": lambda run_id: pyworkflow.run(quick_child, "t", 1),
    "get_workflow_run": lambda run_id: pyworkflow.get_workflow_run(run_id),
    "get_workflow_events": lambda run_id: pyworkflow.get_workflow_events(run_id),
    "get_workflow_result": lambda run_id: pyworkflow.get_workflow_result(run_id),
    "get_workflow_chain": lambda run_id: pyworkflow.get_workflow_chain(run_id),
    "list_workflow_runs": lambda run_id: pyworkflow.list_workflow_runs(),
    "cancel_workflow": lambda run_id: pyworkflow.cancel_workflow(run_id),
    "resume": lambda run_id: pyworkflow.resume(run_id),
    "resume_hook": lambda run_id: resume_hook("a-token", 1),
    "list_hooks": lambda run_id: list_hooks(run_id=run_id),
    "prune_runs": lambda run_id: pyworkflow.prune_runs("30d"),
    "ChildWorkflowHandle.get_status": lambda run_id: ChildWorkflowHandle(
        run_id, "tchh_quick_child"
    ).get_status(),
    "ChildWorkflowHandle.cancel": lambda run_id: ChildWorkflowHandle(
        run_id, "tchh_quick_child"
    ).cancel(),
}


@step(name="tchh_own_run")
async def own_run() -> str:
    """A step may call the client: it runs outside the workflow's loop."""
    run = await pyworkflow.get_workflow_run(get_step_context().run_id)
    return run.status.value


@workflow(name="tchh_calls_client")
async def calls_client(run_id: str) -> dict[str, Any]:
    refused: dict[str, Any] = {}
    for name, call in CLIENT_CALLS.items():
        try:
            await call(run_id)
        except ClientCallInWorkflowError as exc:
            refused[name] = [exc.call, str(exc)]
        else:
            refused[name] = "allowed"
    refused["from a step"] = await own_run()
    return refused


async def test_client_calls_in_workflow_code_are_refused_at_once(pw: Storage) -> None:
    other = await pyworkflow.start(quick_child, token(), 1)
    result = await pyworkflow.run(calls_client, other)
    assert result.pop("from a step") == "running"
    for name, (call, message) in result.items():
        assert call == f"{name}()", message
        assert message.startswith(f"{name}() cannot be called in workflow code"), message
        assert "step" in message, message
    assert set(result) == set(CLIENT_CALLS)
    run_id = (await pyworkflow.list_workflow_runs(workflow_name="tchh_calls_client"))[0].run_id
    started = types(await events_of(run_id))
    assert EventType.CHILD_WORKFLOW_STARTED not in started, "the refused start() started nothing"
    assert len(await pyworkflow.list_workflow_runs(workflow_name="tchh_quick_child")) == 1
