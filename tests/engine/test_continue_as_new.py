"""continue_as_new: a run ends as continued and a linked fresh run takes its new arguments.

What a user checks: ``get_workflow_result`` of the first run returns the last run's result;
``get_workflow_chain`` lists every run in order with its status, from any run of the chain;
each run's log is short and ends WORKFLOW_CONTINUED_AS_NEW; a child that continues as new
still hands its parent the final result; bad arguments continue nothing. On the virtual clock
and memory storage (conftest.py).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

import pyworkflow
from pyworkflow import (
    ChildWorkflowHandle,
    EventType,
    NotInWorkflowError,
    RunStatus,
    continue_as_new,
    sleep,
    start_child_workflow,
    step,
    workflow,
)
from pyworkflow.testing import WorkflowEnvironment

from .recording import CALLS, double, token
from .run_log import assert_well_formed, events_of, failure_of, of_type, types
from .waits import children_of, set_horizon


@workflow(name="tcn_counter")
async def counter(tok: str, n: int, limit: int) -> list[int]:
    doubled = await double(tok, n)
    if n < limit:
        continue_as_new(tok, n + 1, limit)
    return [n, doubled]


@workflow(name="tcn_sleepy_counter")
async def sleepy_counter(n: int, limit: int, nap: float) -> int:
    await sleep(nap)
    if n < limit:
        continue_as_new(n + 1, limit, nap=nap)
    return n


@workflow(name="tcn_parent")
async def parent(tok: str, limit: int) -> list[int]:
    return await start_child_workflow(counter, tok, 0, limit)  # type: ignore[no-any-return]


@workflow(name="tcn_parent_handle")
async def parent_handle(tok: str, limit: int) -> list[Any]:
    handle = await start_child_workflow(counter, tok, 0, limit, wait_for_completion=False)
    return [handle.run_id, await handle.result()]


@workflow(name="tcn_bad_arguments")
async def bad_arguments(kind: str) -> None:
    if kind == "unencodable":
        continue_as_new(threading.Lock())
    continue_as_new("too", "many", "arguments")


@step(name="tcn_continue_in_step", max_retries=0)
async def continue_in_step() -> str:
    try:
        continue_as_new()
    except NotInWorkflowError as exc:
        return str(exc)
    return "nothing raised"


@workflow(name="tcn_calls_continue_in_step")
async def calls_continue_in_step() -> str:
    return await continue_in_step()


async def test_a_chain_ends_with_the_last_runs_result(env: WorkflowEnvironment) -> None:
    tok = token()
    first = await pyworkflow.start(counter, tok, 0, 3)
    assert await pyworkflow.get_workflow_result(first, timeout=10) == [3, 6]

    chain = await pyworkflow.get_workflow_chain(first)
    assert [r.status for r in chain] == [RunStatus.CONTINUED_AS_NEW] * 3 + [RunStatus.COMPLETED]
    assert chain[0].run_id == first
    assert len({r.run_id for r in chain}) == 4
    assert [r.result for r in chain] == [None, None, None, [3, 6]]
    assert all(r.workflow_name == "tcn_counter" for r in chain)
    for middle in chain[1:]:
        assert [r.run_id for r in await pyworkflow.get_workflow_chain(middle.run_id)] == [
            r.run_id for r in chain
        ]
    for n, run in enumerate(chain):
        events = await events_of(run.run_id)
        assert_well_formed(events)
        assert events[0].data["args"]["args"] == [tok, n, 3]
        ending = EventType.WORKFLOW_COMPLETED if n == 3 else EventType.WORKFLOW_CONTINUED_AS_NEW
        assert types(events)[-1] is ending
        assert len(of_type(events, EventType.STEP_COMPLETED)) == 1, "each run's own history"
    assert CALLS[tok, "double"] == 4
    assert await pyworkflow.cancel_workflow(first) is False, "the first run has ended"


async def test_run_follows_the_chain(env: WorkflowEnvironment) -> None:
    assert await pyworkflow.run(counter, token(), 2, 4) == [4, 8]


async def test_a_chain_through_suspended_runs(env: WorkflowEnvironment) -> None:
    await set_horizon(0.05)
    first = await pyworkflow.start(sleepy_counter, 0, 2, nap=0.2)
    # Time moves by hand: each run of the chain lets go of its coroutine and lease while it
    # sleeps, and is claimed from storage when its timer is due.
    for n in range(3):
        await env.advance(0)  # the run's first turn settles: it suspends and lets go
        chain = await pyworkflow.get_workflow_chain(first)
        assert len(chain) == n + 1
        sleeping = await env.storage.get_run(chain[-1].run_id)
        assert sleeping is not None
        assert (sleeping.status, sleeping.lease_owner) == (RunStatus.SUSPENDED, None)
        await env.advance(0.2)
    assert await pyworkflow.get_workflow_result(first, timeout=15) == 2
    chain = await pyworkflow.get_workflow_chain(first)
    assert [r.status for r in chain] == [RunStatus.CONTINUED_AS_NEW] * 2 + [RunStatus.COMPLETED]


async def test_a_child_that_continues_as_new_hands_its_parent_the_final_result(
    env: WorkflowEnvironment,
) -> None:
    tok = token()
    run_id = await pyworkflow.start(parent, tok, 2)
    assert await pyworkflow.get_workflow_result(run_id, timeout=15) == [2, 4]
    kids = await children_of(env.storage, run_id)
    assert len(kids) == 3, "the child's chain, each run keeping the parent"
    assert {k.parent_run_id for k in kids} == {run_id}
    events = await events_of(run_id)
    assert_well_formed(events)
    assert [e.type for e in events if e.type.value.startswith("child_workflow")] == [
        EventType.CHILD_WORKFLOW_STARTED,
        EventType.CHILD_WORKFLOW_COMPLETED,
    ]


async def test_a_handle_follows_the_childs_chain(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(parent_handle, tok, 2)
    child_id, value = await pyworkflow.get_workflow_result(run_id, timeout=15)
    assert value == [2, 4]
    handle = ChildWorkflowHandle(child_id, "tcn_counter")
    assert await handle.get_status() is RunStatus.COMPLETED
    assert await handle.result(timeout=5) == [2, 4]
    assert (await pyworkflow.get_workflow_run(child_id)).status is RunStatus.CONTINUED_AS_NEW


@pytest.mark.parametrize(
    ("kind", "error_type"),
    [("unencodable", "SerializationError"), ("signature", "InputError")],
)
async def test_bad_arguments_continue_nothing(
    env: WorkflowEnvironment, kind: str, error_type: str
) -> None:
    run_id = await pyworkflow.start(bad_arguments, kind)
    err = await failure_of(run_id)
    assert err.error_type == f"pyworkflow.exceptions.{error_type}"
    assert types(await events_of(run_id)) == [
        EventType.WORKFLOW_STARTED,
        EventType.WORKFLOW_FAILED,
    ]
    assert [r.run_id for r in await pyworkflow.get_workflow_chain(run_id)] == [run_id]
    assert [r.run_id for r in await pyworkflow.list_workflow_runs()] == [run_id]


async def test_continue_as_new_outside_workflow_code_is_refused(env: WorkflowEnvironment) -> None:
    with pytest.raises(NotInWorkflowError):
        continue_as_new(1)
    message = await pyworkflow.run(calls_continue_in_step)
    assert "inside a step" in message
    assert "workflow code" in message
