"""Child workflows: started from workflow code or from a step, waited on or handed back.

What a user checks: the parent gets the child's result, or its failure as
``ChildWorkflowFailedError`` / ``ChildWorkflowCancelledError``; a ``ChildWorkflowHandle`` works
from outside; when the parent ends, its unfinished children are cancelled unless abandoned; a
child started by a step belongs to the step's run and a retried step gets the same child back;
no replay or restart starts a child twice; a bad call starts nothing. On the virtual clock and
memory storage (conftest.py).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

import pyworkflow
from pyworkflow import (
    CancellationError,
    ChildWorkflowCancelledError,
    ChildWorkflowFailedError,
    ChildWorkflowHandle,
    EventType,
    HookNotFoundError,
    NotInWorkflowError,
    RunStatus,
    WorkflowCancelledError,
    get_step_context,
    hook,
    resume_hook,
    shield,
    start_child_workflow,
    step,
    workflow,
)
from pyworkflow import runtime as pw_runtime
from pyworkflow.storage.protocol import Storage
from pyworkflow.testing import WorkflowEnvironment

from .recording import CALLS, double, token
from .run_log import assert_well_formed, events_of, failure_of, of_type, types, wait_status
from .waits import TOKENS, child_of, children_of, hook_token, keep, poll, restart, wait_suspended


@workflow(name="tch_child")
async def child(tok: str, x: int) -> int:
    return await double(tok, x)


@workflow(name="tch_failing_child")
async def failing_child(message: str) -> None:
    raise ValueError(message)


@workflow(name="tch_hook_child")
async def hook_child(tok: str) -> Any:
    """A child that waits until the test releases it (or it is cancelled)."""
    return await hook("release", on_created=keep(tok, "release"))


@step(name="tch_cleanup")
async def cleanup(tok: str) -> str:
    CALLS[tok, "cleanup"] += 1
    return "cleaned"


@workflow(name="tch_parent_waits")
async def parent_waits(tok: str, x: int) -> int:
    return await start_child_workflow(child, tok, x) + 1  # type: ignore[no-any-return]


@workflow(name="tch_parent_gathers")
async def parent_gathers(tok: str, n: int) -> list[int]:
    return list(await asyncio.gather(*(start_child_workflow(child, tok, i) for i in range(n))))


@workflow(name="tch_parent_catches")
async def parent_catches(message: str) -> list[Any]:
    try:
        await start_child_workflow(failing_child, message)
    except ChildWorkflowFailedError as exc:
        return [type(exc).__name__, exc.error_type, exc.error_message, exc.workflow_name]
    return ["no error"]


@workflow(name="tch_parent_uncaught")
async def parent_uncaught(message: str) -> None:
    await start_child_workflow(failing_child, message)


@workflow(name="tch_parent_of_cancelled")
async def parent_of_cancelled(tok: str) -> list[Any]:
    try:
        await start_child_workflow(hook_child, tok)
    except ChildWorkflowCancelledError as exc:
        return [type(exc).__name__, exc.error_type, exc.reason, exc.child_run_id]
    return ["no error"]


@workflow(name="tch_parent_handle")
async def parent_handle(tok: str) -> list[Any]:
    handle = await start_child_workflow(hook_child, tok, wait_for_completion=False)
    try:
        return [handle.run_id, await handle.result()]
    except ChildWorkflowFailedError as exc:
        return [handle.run_id, type(exc).__name__, exc.error_type]


@workflow(name="tch_parent_leaves")
async def parent_leaves(tok: str, policy: str) -> str:
    if policy == "default":
        handle = await start_child_workflow(hook_child, tok, wait_for_completion=False)
    else:
        handle = await start_child_workflow(
            hook_child, tok, wait_for_completion=False, parent_close_policy=policy
        )
    return handle.run_id  # type: ignore[no-any-return]


@workflow(name="tch_parent_three")
async def parent_three(tok: str) -> list[Any]:
    return [await start_child_workflow(hook_child, f"{tok}-{i}") for i in range(3)]


@workflow(name="tch_parent_cleans_up")
async def parent_cleans_up(tok: str) -> Any:
    try:
        return await start_child_workflow(hook_child, tok)
    except CancellationError:
        async with shield():
            await cleanup(tok)
        raise


@step(name="tch_step_starts_child", max_retries=2, retry_delay=0.01)
async def step_starts_child(tok: str, wait: bool, fail_first: bool) -> Any:
    CALLS[tok, "step_attempts"] += 1
    if wait:
        value = await start_child_workflow(child, tok, 5)
    else:
        handle = await start_child_workflow(child, tok, 5, wait_for_completion=False)
        value = handle.run_id
    if fail_first and get_step_context().attempt == 1:
        raise ValueError("the first attempt fails after it started the child")
    return value


@workflow(name="tch_parent_step_child")
async def parent_step_child(tok: str, wait: bool, fail_first: bool) -> Any:
    return await step_starts_child(tok, wait, fail_first)


@workflow(name="tch_bad_policy")
async def bad_policy(tok: str) -> Any:
    return await start_child_workflow(child, tok, 1, parent_close_policy="orphan")


@workflow(name="tch_bad_argument")
async def bad_argument() -> Any:
    return await start_child_workflow(child, threading.Lock(), 1)


@workflow(name="tch_wrong_arguments")
async def wrong_arguments() -> Any:
    return await start_child_workflow(child, "a", 1, 2, 3)


@workflow(name="tch_unknown_child")
async def unknown_child() -> Any:
    return await start_child_workflow("tch_no_such_workflow")


def child_events(events: list[pyworkflow.WorkflowEvent]) -> list[EventType]:
    return [e.type for e in events if e.type.value.startswith("child_workflow")]


# --- waiting for a child -------------------------------------------------------------------------


async def test_the_parent_gets_the_childs_result(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(parent_waits, tok, 4)
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == 9
    (kid,) = await children_of(env.storage, run_id)
    assert kid.workflow_name == "tch_child"
    assert kid.status is RunStatus.COMPLETED
    assert (await pyworkflow.get_workflow_run(kid.run_id)).parent_run_id == run_id
    events = await events_of(run_id)
    assert_well_formed(events)
    assert child_events(events) == [
        EventType.CHILD_WORKFLOW_STARTED,
        EventType.CHILD_WORKFLOW_COMPLETED,
    ]
    (started,) = of_type(events, EventType.CHILD_WORKFLOW_STARTED)
    assert started.data["child_run_id"] == kid.run_id
    assert_well_formed(await events_of(kid.run_id))
    assert CALLS[tok, "double"] == 1


async def test_children_started_together_each_start_once(env: WorkflowEnvironment) -> None:
    tok = token()
    result = await pyworkflow.run(parent_gathers, tok, 5)
    assert result == [0, 2, 4, 6, 8]
    run_id = (await pyworkflow.list_workflow_runs(workflow_name="tch_parent_gathers"))[0].run_id
    kids = await children_of(env.storage, run_id)
    assert sorted(pw_args(k) for k in kids) == [[tok, i] for i in range(5)]
    assert CALLS[tok, "double"] == 5


def pw_args(record: Any) -> Any:
    return record.args["args"]


async def test_a_childs_failure_reaches_the_parent(env: WorkflowEnvironment) -> None:
    result = await pyworkflow.run(parent_catches, "the child broke")
    name, error_type, message, workflow_name = result
    assert name == "ChildWorkflowFailedError"
    assert error_type.endswith("ValueError")
    assert message == "the child broke"
    assert workflow_name == "tch_failing_child"


async def test_an_uncaught_child_failure_fails_the_parent(env: WorkflowEnvironment) -> None:
    run_id = await pyworkflow.start(parent_uncaught, "boom")
    err = await failure_of(run_id)
    assert err.error_type.endswith("ChildWorkflowFailedError")
    assert "boom" in err.error_message
    assert "ValueError" in err.error_message
    events = await events_of(run_id)
    assert child_events(events) == [
        EventType.CHILD_WORKFLOW_STARTED,
        EventType.CHILD_WORKFLOW_FAILED,
    ]


async def test_a_cancelled_child_reaches_the_parent(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(parent_of_cancelled, tok)
    kid = await child_of(env.storage, run_id)
    await hook_token(tok, "release", kid.run_id)
    assert await pyworkflow.cancel_workflow(kid.run_id, reason="not needed") is True
    result = await pyworkflow.get_workflow_result(run_id, timeout=10)
    assert result == ["ChildWorkflowCancelledError", "Cancelled", "not needed", kid.run_id]
    assert child_events(await events_of(run_id)) == [
        EventType.CHILD_WORKFLOW_STARTED,
        EventType.CHILD_WORKFLOW_CANCELLED,
    ]


async def test_a_parent_waiting_on_a_child_costs_nothing(env: WorkflowEnvironment) -> None:
    # DESIGN §2.6: the parent waits as rows only, woken when the child ends.
    tok = token()
    run_id = await pyworkflow.start(parent_of_cancelled, tok)
    kid = await child_of(env.storage, run_id)
    release = await hook_token(tok, "release", kid.run_id)
    await wait_suspended(env, run_id)
    before = await pyworkflow.get_workflow_run(run_id)
    # A day passes; the executor looks at storage now and then, as a polling worker would.
    executor = (await pw_runtime.get_runtime()).executor
    for _ in range(24):
        executor.wake()
        await env.advance("1h")
    after = await pyworkflow.get_workflow_run(run_id)
    assert after.updated_at == before.updated_at, "the waiting parent's row kept changing"
    await resume_hook(release, "go")
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == ["no error"]


# --- handles -------------------------------------------------------------------------------------


async def test_a_handle_works_from_outside(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(parent_handle, tok)
    kid = await child_of(env.storage, run_id)
    release = await hook_token(tok, "release", kid.run_id)
    handle = ChildWorkflowHandle(kid.run_id, "tch_hook_child")

    assert handle.run_id == kid.run_id
    assert not (await handle.get_status()).is_terminal
    assert await handle.is_running() is True
    assert await handle.is_terminal() is False
    with pytest.raises(TimeoutError):
        await handle.result(timeout=0.3)

    await resume_hook(release, "hello")
    assert await handle.result(timeout=10) == "hello"
    assert await handle.get_status() is RunStatus.COMPLETED
    assert await handle.is_terminal() is True
    assert await handle.is_running() is False
    events = await events_of(kid.run_id)
    assert await handle.cancel() is False
    assert await events_of(kid.run_id) == events
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == [kid.run_id, "hello"]


async def test_a_handle_cancels_the_child(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(parent_handle, tok)
    kid = await child_of(env.storage, run_id)
    await hook_token(tok, "release", kid.run_id)
    handle = ChildWorkflowHandle(kid.run_id, "tch_hook_child")
    assert await handle.cancel(reason="enough") is True
    with pytest.raises(ChildWorkflowCancelledError) as info:
        await handle.result(timeout=10)
    assert info.value.reason == "enough"
    assert await handle.get_status() is RunStatus.CANCELLED
    result = await pyworkflow.get_workflow_result(run_id, timeout=10)
    assert result == [kid.run_id, "ChildWorkflowCancelledError", "Cancelled"]


# --- when the parent ends ------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["default", "cancel"])
async def test_a_parent_that_ends_cancels_its_unfinished_children(
    env: WorkflowEnvironment, policy: str
) -> None:
    tok = token()
    run_id = await pyworkflow.start(parent_leaves, tok, policy)
    child_id = await pyworkflow.get_workflow_result(run_id, timeout=10)
    kid = await wait_status(child_id, RunStatus.CANCELLED, within=5)
    assert kid.parent_run_id == run_id
    with pytest.raises(WorkflowCancelledError) as info:
        await pyworkflow.get_workflow_result(child_id, timeout=5)
    assert run_id in (info.value.reason or "")
    events = await events_of(child_id)
    assert_well_formed(events)
    assert types(events)[-1] is EventType.WORKFLOW_CANCELLED
    handed = TOKENS[f"{tok}/release"]
    if handed:  # the child got as far as its hook: the hook went with it
        with pytest.raises(HookNotFoundError):
            await resume_hook(handed[-1], "too late")


async def test_an_abandoned_child_outlives_its_parent(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(parent_leaves, tok, "abandon")
    child_id = await pyworkflow.get_workflow_result(run_id, timeout=10)
    release = await hook_token(tok, "release", child_id)
    await env.advance("1h")  # time for a wrong cancel to land
    assert not (await pyworkflow.get_workflow_run(child_id)).status.is_terminal
    await resume_hook(release, "still here")
    assert await pyworkflow.get_workflow_result(child_id, timeout=10) == "still here"
    assert (await pyworkflow.get_workflow_run(child_id)).parent_run_id == run_id


# --- children of steps ---------------------------------------------------------------------------


@pytest.mark.parametrize("wait", [True, False], ids=["waits", "handle"])
@pytest.mark.parametrize("fail_first", [False, True], ids=["once", "retried"])
async def test_a_step_starts_a_child_of_its_run(
    env: WorkflowEnvironment, wait: bool, fail_first: bool
) -> None:
    tok = token()
    run_id = await pyworkflow.start(parent_step_child, tok, wait, fail_first)
    result = await pyworkflow.get_workflow_result(run_id, timeout=15)
    kids = await children_of(env.storage, run_id)
    assert len(kids) == 1, "one child, however many attempts the step took"
    (kid,) = kids
    assert kid.parent_run_id == run_id
    assert CALLS[tok, "step_attempts"] == (2 if fail_first else 1)
    if wait:
        assert result == 10
    else:
        assert result == kid.run_id
        assert await pyworkflow.get_workflow_result(kid.run_id, timeout=10) == 10
    assert CALLS[tok, "double"] == 1, "the child ran once"


# --- never twice ---------------------------------------------------------------------------------


async def test_no_replay_or_restart_starts_a_child_twice(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(parent_three, tok)
    for i in range(3):
        kids = await wait_children(env.storage, run_id, i + 1)
        release = await hook_token(f"{tok}-{i}", "release", kids[i].run_id)
        if i == 1:
            await restart(env)
        await resume_hook(release, f"r{i}")
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == ["r0", "r1", "r2"]
    kids = await children_of(env.storage, run_id)
    assert [pw_args(k) for k in kids] == [[f"{tok}-{i}"] for i in range(3)]
    events = await events_of(run_id)
    assert_well_formed(events)
    assert (
        child_events(events)
        == [
            EventType.CHILD_WORKFLOW_STARTED,
            EventType.CHILD_WORKFLOW_COMPLETED,
        ]
        * 3
    )
    started = [e.data["child_run_id"] for e in of_type(events, EventType.CHILD_WORKFLOW_STARTED)]
    assert started == [k.run_id for k in kids]


async def wait_children(storage: Storage, run_id: str, n: int) -> list[Any]:
    deadline = time.monotonic() + 5
    while len(kids := await children_of(storage, run_id)) < n:
        assert time.monotonic() < deadline, f"{len(kids)} children, not {n}"
        await asyncio.sleep(0.01)
    assert len(kids) == n, kids
    return kids


# --- cancelling a parent that waits on a child ---------------------------------------------------


async def test_cancel_a_parent_waiting_on_a_child(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(parent_cleans_up, tok)
    kid = await child_of(env.storage, run_id)
    release = await hook_token(tok, "release", kid.run_id)
    began = env.now()
    assert await pyworkflow.cancel_workflow(run_id, reason="order withdrawn") is True
    with pytest.raises(WorkflowCancelledError, match="order withdrawn"):
        await pyworkflow.get_workflow_result(run_id, timeout=10)
    assert env.now() == began, "the cancel reached the waiting parent without waiting for a timer"
    assert CALLS[tok, "cleanup"] == 1
    await poll(env)  # the parent's end made its child due (see waits.poll)
    await wait_status(kid.run_id, RunStatus.CANCELLED, within=5)
    events = await events_of(run_id)
    assert_well_formed(events)
    assert types(events)[-1] is EventType.WORKFLOW_CANCELLED
    assert child_events(events) == [EventType.CHILD_WORKFLOW_STARTED]
    with pytest.raises(HookNotFoundError):
        await resume_hook(release, "too late")


# --- bad calls start nothing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wf", "args", "error_type", "quoted"),
    [
        (bad_policy, ("t",), "InputError", "'orphan'"),
        (bad_argument, (), "SerializationError", "'tok'"),
        (wrong_arguments, (), "InputError", "tch_child"),
        (unknown_child, (), "WorkflowNotFoundError", "tch_no_such_workflow"),
    ],
    ids=["policy", "unencodable", "signature", "unknown"],
)
async def test_a_bad_child_call_fails_the_parent_and_starts_nothing(
    env: WorkflowEnvironment, wf: Any, args: tuple[Any, ...], error_type: str, quoted: str
) -> None:
    run_id = await pyworkflow.start(wf, *args)
    err = await failure_of(run_id)
    assert err.error_type == f"pyworkflow.exceptions.{error_type}"
    assert quoted in err.error_message
    assert types(await events_of(run_id)) == [
        EventType.WORKFLOW_STARTED,
        EventType.WORKFLOW_FAILED,
    ]
    assert await children_of(env.storage, run_id) == []
    assert [r.run_id for r in await pyworkflow.list_workflow_runs()] == [run_id]


async def test_a_child_outside_workflow_code_is_refused(env: WorkflowEnvironment) -> None:
    with pytest.raises(NotInWorkflowError):
        await start_child_workflow(child, "t", 1)
    with pytest.raises(pyworkflow.InputError, match="orphan"):
        await start_child_workflow(child, "t", 1, parent_close_policy="orphan")
    assert await pyworkflow.list_workflow_runs() == []
