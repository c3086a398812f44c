"""run and start, the queries (get_workflow_run/result/events, list_workflow_runs), idempotency.

Like the other engine tests: on the virtual clock and memory storage (conftest.py), through the
public API, with the steps and workflows several modules share (and the ``CALLS`` counter) in
``recording.py``. What each backend stores and lists is the contract suite's (tests/contract).
"""

from __future__ import annotations

import pytest

import pyworkflow
from pyworkflow import EventType, IdempotencyConflictError, RunStatus, WorkflowFailedError, workflow
from pyworkflow.testing import WorkflowEnvironment

from .recording import CALLS, call_always_fails, token, two_steps
from .run_log import assert_well_formed, events_of, of_type, types


@workflow(name="tw_other")
async def other_workflow(tok: str) -> str:
    return tok


async def test_run_returns_the_result_and_logs_each_step(env: WorkflowEnvironment) -> None:
    tok = token()
    assert await pyworkflow.run(two_steps, tok, 20) == 41
    (record,) = await pyworkflow.list_workflow_runs(workflow_name="tw_two_steps")
    events = await events_of(record.run_id)
    assert_well_formed(events)
    assert types(events) == [
        EventType.WORKFLOW_STARTED,
        EventType.STEP_STARTED,
        EventType.STEP_COMPLETED,
        EventType.STEP_STARTED,
        EventType.STEP_COMPLETED,
        EventType.WORKFLOW_COMPLETED,
    ]
    started = of_type(events, EventType.STEP_STARTED)
    assert [e.data["step_id"] for e in started] == ["tw_double#1", "tw_add#1"]
    assert [e.data["attempt"] for e in started] == [1, 1]
    assert events[-1].data["result"] == 41
    assert CALLS[tok, "double"] == 1
    assert CALLS[tok, "add"] == 1


async def test_start_then_get_result_and_run(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(two_steps, tok, x=1)
    assert run_id.startswith("run_")
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == 3
    run = await pyworkflow.get_workflow_run(run_id)
    assert run.run_id == run_id
    assert run.workflow_name == "tw_two_steps"
    assert run.status is RunStatus.COMPLETED
    assert run.result == 3
    assert run.error is None
    assert run.completed_at is not None
    assert run.created_at <= run.completed_at
    assert run.wake_at is None
    # by name, too
    assert await pyworkflow.run(two_steps, tok, 2) == 5
    run_id2 = await pyworkflow.start("tw_two_steps", tok, 3)
    assert await pyworkflow.get_workflow_result(run_id2) == 7


async def test_list_workflow_runs_filters_and_pages(env: WorkflowEnvironment) -> None:
    tok = token()
    ids = [await pyworkflow.start(two_steps, tok, i) for i in range(5)]
    failed = await pyworkflow.start(call_always_fails, tok)
    other = await pyworkflow.start(other_workflow, tok)
    for run_id in ids:
        await pyworkflow.get_workflow_result(run_id, timeout=10)
    with pytest.raises(WorkflowFailedError):
        await pyworkflow.get_workflow_result(failed, timeout=10)
    await pyworkflow.get_workflow_result(other, timeout=10)

    everything = await pyworkflow.list_workflow_runs()
    assert {r.run_id for r in everything} == {*ids, failed, other}
    keys = [(r.created_at, r.run_id) for r in everything]
    assert keys == sorted(keys, reverse=True), "newest first"

    only_failed = await pyworkflow.list_workflow_runs(status="failed")
    assert [r.run_id for r in only_failed] == [failed]
    assert only_failed[0].error is not None
    assert only_failed[0].error["type"] == "ValueError"
    done = await pyworkflow.list_workflow_runs(status=[RunStatus.COMPLETED])
    assert {r.run_id for r in done} == {*ids, other}
    by_name = await pyworkflow.list_workflow_runs(workflow_name="tw_two_steps")
    assert {r.run_id for r in by_name} == set(ids)
    assert {r.result for r in by_name} == {1, 3, 5, 7, 9}
    both = await pyworkflow.list_workflow_runs(workflow_name="tw_two_steps", status="failed")
    assert both == []

    pages: list[list[str]] = []
    before = None
    while True:
        page = await pyworkflow.list_workflow_runs(limit=2, before=before)
        if not page:
            break
        pages.append([r.run_id for r in page])
        before = page[-1].run_id
    assert [len(p) for p in pages] == [2, 2, 2, 1]
    assert [i for p in pages for i in p] == [r.run_id for r in everything]

    named_pages: list[str] = []
    before = None
    while page := await pyworkflow.list_workflow_runs(
        workflow_name="tw_two_steps", limit=3, before=before
    ):
        named_pages += [r.run_id for r in page]
        before = page[-1].run_id
    assert named_pages == [r.run_id for r in by_name]


async def test_idempotency_key_returns_the_same_run(env: WorkflowEnvironment) -> None:
    tok = token()
    key = f"order-{tok}"
    first = await pyworkflow.start(two_steps, tok, 1, idempotency_key=key)
    again = await pyworkflow.start(two_steps, tok, 1, idempotency_key=key)
    assert again == first
    assert await pyworkflow.get_workflow_result(first, timeout=10) == 3
    events = await events_of(first)
    after_end = await pyworkflow.start(two_steps, tok, 99, idempotency_key=key)
    assert after_end == first
    assert await pyworkflow.get_workflow_result(after_end) == 3
    assert await events_of(first) == events
    assert CALLS[tok, "double"] == 1
    run = await pyworkflow.get_workflow_run(first)
    assert run.idempotency_key == key
    assert len(await pyworkflow.list_workflow_runs()) == 1

    with pytest.raises(IdempotencyConflictError) as info:
        await pyworkflow.start(other_workflow, tok, idempotency_key=key)
    assert info.value.idempotency_key == key
    assert key in str(info.value)
    assert "tw_two_steps" in str(info.value)
    assert "tw_other" in str(info.value)
    assert len(await pyworkflow.list_workflow_runs()) == 1
    assert await pyworkflow.list_workflow_runs(workflow_name="tw_other") == []
    assert await events_of(first) == events
