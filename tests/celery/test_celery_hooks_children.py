"""Hooks, children, cancellation, timeouts and resume on real Celery workers (both deployments).

A hook's token reaches the test the way it would reach a person: the workflow's ``on_created``
writes it to a file (the test is another process), and the test delivers the payload with
``resume_hook``. Children are started from workflow code and from steps, waited for and not;
a step that waits blocks its pool process while the child runs on the other one. A run
sleeping for an hour holds no worker and ends cancelled at ``cancel_workflow``; so does one
whose step is executing (the step finishes, nothing runs after it), and a cancelled parent
takes the child it waits for along. A hook's timeout, a step's timeout and a workflow's
``max_duration`` are kept; ``resume`` continues a failed run without re-running its steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from celery_flows import (
    approval,
    cancel_mid_step,
    deadline,
    hook_expires,
    long_sleep,
    parent_handles,
    parent_of_sleepy,
    parent_waits,
    resumable,
    step_children,
    step_timeout,
    token_file,
)
from celery_runs import events, run_record, storage, types, wait_for, wait_status
from celery_workers import Deployment

import pyworkflow
from pyworkflow import (
    EventType,
    HookAlreadyReceivedError,
    HookNotFoundError,
    RunStatus,
    WorkflowCancelledError,
    WorkflowFailedError,
)
from workers import executions_in

pytestmark = pytest.mark.slow

WITHIN = 30
EXPECTED_ERRORS = (
    "cf_needs_file#1 failed",
    "cf_overtime#1 failed",
    "exceeded its max_duration of 2s",
    "workflow failed",
)


@pytest.fixture
def on(
    deployed: Deployment, client: Callable[[Deployment], None], monkeypatch: pytest.MonkeyPatch
) -> Deployment:
    client(deployed)
    monkeypatch.setenv("CF_DIR", str(deployed.workdir))  # token_file() reads it here too
    return deployed


async def test_a_hook_payload_delivered_by_resume_hook_reaches_the_run(on: Deployment) -> None:
    run_id = await pyworkflow.start(approval, "approve-1")

    path = token_file("approve-1")

    async def handed_out() -> bool:
        return path.exists()

    await wait_for(handed_out, WITHIN, on.context)
    await wait_status(run_id, RunStatus.SUSPENDED, WITHIN, on.context)
    info = await pyworkflow.resume_hook(path.read_text(), {"approved": True, "by": "ana"})
    assert info.run_id == run_id

    result = await pyworkflow.get_workflow_result(run_id, timeout=WITHIN)
    assert result == {"first": 3, "payload": {"approved": True, "by": "ana"}, "after": 7}
    history = await types(run_id)
    assert history.count(EventType.HOOK_CREATED) == history.count(EventType.HOOK_RECEIVED) == 1
    with pytest.raises((HookAlreadyReceivedError, HookNotFoundError)):
        await pyworkflow.resume_hook(path.read_text(), {"approved": False})


async def test_a_child_waited_for_in_workflow_code(on: Deployment) -> None:
    run_id = await pyworkflow.start(parent_waits, 5)
    assert await pyworkflow.get_workflow_result(run_id, timeout=WITHIN) == 1006

    [kid] = await (await storage()).list_runs(parent_run_id=run_id)
    assert (kid.workflow_name, kid.status) == ("cf_child", RunStatus.COMPLETED)
    history = await types(run_id)
    assert history.count(EventType.CHILD_WORKFLOW_STARTED) == 1
    assert history.count(EventType.CHILD_WORKFLOW_COMPLETED) == 1


async def test_children_not_waited_for_follow_their_close_policy(on: Deployment) -> None:
    run_id = await pyworkflow.start(parent_handles, 7)
    kept, dropped = await pyworkflow.get_workflow_result(run_id, timeout=WITHIN)

    # "abandon": it outlives its parent and completes; "cancel": it ends with its parent.
    assert await pyworkflow.get_workflow_result(kept, timeout=WITHIN) == 1007
    with pytest.raises(WorkflowCancelledError):
        await pyworkflow.get_workflow_result(dropped, timeout=WITHIN)
    children = {r.run_id: r for r in await (await storage()).list_runs(parent_run_id=run_id)}
    assert set(children) == {kept, dropped}
    assert children[dropped].status is RunStatus.CANCELLED


async def test_children_started_from_steps_with_and_without_waiting(on: Deployment) -> None:
    run_id = await pyworkflow.start(step_children, 3)
    waited, kept = await pyworkflow.get_workflow_result(run_id, timeout=WITHIN)

    assert waited == 1003  # the step blocked until its child ended and returned its result
    assert await pyworkflow.get_workflow_result(kept, timeout=WITHIN) == 1004
    children = await (await storage()).list_runs(parent_run_id=run_id)
    assert sorted(r.workflow_name for r in children) == ["cf_child", "cf_child"]
    assert kept in {r.run_id for r in children}
    steps = [e.payload["step_id"] for e in await events(run_id) if e.type is EventType.STEP_STARTED]
    assert steps == ["cf_spawn_and_wait#1", "cf_spawn#1"], "a step ran twice"


async def test_cancelling_a_run_asleep_for_an_hour(on: Deployment) -> None:
    run_id = await pyworkflow.start(long_sleep)

    async def asleep() -> bool:
        record = await run_record(run_id)
        return record.status is RunStatus.SUSPENDED and record.lease_owner is None

    await wait_for(asleep, WITHIN, on.context)
    assert (await types(run_id))[-1] is EventType.SLEEP_STARTED
    assert await pyworkflow.cancel_workflow(run_id, reason="no longer needed")

    with pytest.raises(WorkflowCancelledError) as cancelled:
        await pyworkflow.get_workflow_result(run_id, timeout=WITHIN)
    assert cancelled.value.reason == "no longer needed"
    history = await types(run_id)
    assert EventType.CANCELLATION_REQUESTED in history
    assert history[-1] is EventType.WORKFLOW_CANCELLED
    assert EventType.SLEEP_COMPLETED not in history
    assert (await run_record(run_id)).status is RunStatus.CANCELLED


async def test_cancelling_a_run_while_its_step_executes(on: Deployment) -> None:
    run_id = await pyworkflow.start(cancel_mid_step, 1.5)
    side_effects = on.workdir / "side_effects.log"

    async def executing() -> bool:
        return executions_in(side_effects)[run_id, "cf_slow#1"] == 1

    await wait_for(executing, WITHIN, on.context)
    assert await pyworkflow.cancel_workflow(run_id, reason="stop")
    with pytest.raises(WorkflowCancelledError):
        await pyworkflow.get_workflow_result(run_id, timeout=WITHIN)

    history = await events(run_id)
    # The step in flight finished and was logged; nothing ran after the cancel request.
    assert [e.payload["step_id"] for e in history if e.type is EventType.STEP_STARTED] == [
        "cf_slow#1"
    ]
    assert history[-1].type is EventType.WORKFLOW_CANCELLED
    assert executions_in(side_effects)[run_id, "cf_slow#1"] == 1


async def test_resume_continues_a_failed_run(on: Deployment) -> None:
    name = "resume-flag"  # a file in the deployment's directory, which the step reads
    run_id = await pyworkflow.start(resumable, name)
    with pytest.raises(WorkflowFailedError):
        await pyworkflow.get_workflow_result(run_id, timeout=WITHIN)

    (on.workdir / name).write_text("fixed")
    await pyworkflow.resume(run_id)
    assert await pyworkflow.get_workflow_result(run_id, timeout=WITHIN) == "2 fixed"
    history = await types(run_id)
    assert EventType.WORKFLOW_RESUMED in history
    assert history.count(EventType.STEP_COMPLETED) == 2, "cf_add#1 did not run again"


async def test_hook_step_and_workflow_timeouts(on: Deployment) -> None:
    """Each deadline is kept by storage and the sweeper (or the step's own timer)."""
    began = time.monotonic()
    expiring = await pyworkflow.start(hook_expires)  # hook(timeout="1.5s")
    overdue = await pyworkflow.start(deadline)  # max_duration="2s", then sleep("1h")
    slow_step = await pyworkflow.start(step_timeout)  # @step(timeout="0.3s") sleeping 30 s

    assert await pyworkflow.get_workflow_result(expiring, timeout=WITHIN) == "expired"
    assert EventType.HOOK_EXPIRED in await types(expiring)
    with pytest.raises(WorkflowFailedError) as failed:
        await pyworkflow.get_workflow_result(overdue, timeout=WITHIN)
    assert failed.value.error_type.rsplit(".", 1)[-1] == "WorkflowTimeoutError"
    with pytest.raises(WorkflowFailedError) as failed:
        await pyworkflow.get_workflow_result(slow_step, timeout=WITHIN)
    assert "StepTimeoutError" in f"{failed.value.error_type} {failed.value.error_message}"
    assert time.monotonic() - began < 15


async def test_cancelling_a_parent_cancels_the_child_it_waits_for(on: Deployment) -> None:
    parent = await pyworkflow.start(parent_of_sleepy)

    async def child_asleep() -> str | None:
        kids = await (await storage()).list_runs(parent_run_id=parent)
        if kids and EventType.SLEEP_STARTED in await types(kids[0].run_id):
            return kids[0].run_id
        return None

    child = await wait_for(child_asleep, WITHIN, on.context)
    assert await pyworkflow.cancel_workflow(parent)
    with pytest.raises(WorkflowCancelledError):
        await pyworkflow.get_workflow_result(parent, timeout=WITHIN)
    with pytest.raises(WorkflowCancelledError):
        await pyworkflow.get_workflow_result(child, timeout=WITHIN)
