"""A ``ChildWorkflowHandle`` used in the workflow that started the child, and client calls there.

What a user checks: in workflow code ``get_status()``, ``is_running()`` and ``is_terminal()``
answer from the parent's log (the child's start and, once logged, its end), the same on every
replay; ``cancel()`` is a logged command whose request reaches the child once (never again on
replay, and again after a crash that lost it); ``result()`` waits durably. Any other client call
from workflow code raises ``ClientCallInWorkflowError`` at once, naming the call, instead of
hanging the run (the bug of issue 14: the storage thread called back into the workflow's loop).
On the virtual clock and memory storage (conftest.py), but the refusal of client calls, which
runs on memory, SQLite and PostgreSQL (the hang was a storage thread's); each with a deadline so
that a hang fails fast.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

import pyworkflow
from pyworkflow import (
    ChildWorkflowCancelledError,
    ChildWorkflowHandle,
    ClientCallInWorkflowError,
    EventType,
    RunStatus,
    get_step_context,
    hook,
    list_hooks,
    resume_hook,
    start_child_workflow,
    step,
    workflow,
)
from pyworkflow.exceptions import StorageUnavailableError
from pyworkflow.storage.protocol import Storage
from pyworkflow.testing import WorkflowEnvironment, replay_run

from .recording import double, token
from .run_log import assert_well_formed, events_of, of_type, types, wait_status
from .waits import child_of, hook_token, keep, restart, wait_suspended

pytestmark = pytest.mark.timeout(60)

RESULT_WITHIN = 15.0
"""Seconds a run gets to end: the bug left these runs suspended forever."""


@workflow(name="tchh_waiting_child")
async def waiting_child(tok: str) -> Any:
    """A child that waits until the test releases it (or it is cancelled)."""
    return await hook("release", on_created=keep(tok, "release"))


@workflow(name="tchh_quick_child")
async def quick_child(tok: str, x: int) -> int:
    return await double(tok, x)


async def answers(handle: ChildWorkflowHandle) -> list[Any]:
    return [
        (await handle.get_status()).value,
        await handle.is_running(),
        await handle.is_terminal(),
    ]


@workflow(name="tchh_asks")
async def asks(tok: str) -> list[Any]:
    handle = await start_child_workflow(waiting_child, tok, wait_for_completion=False)
    before = await answers(handle)
    result = await handle.result()
    return [before, result, await answers(handle)]


@workflow(name="tchh_asks_across_restart")
async def asks_across_restart(tok: str) -> list[Any]:
    handle = await start_child_workflow(quick_child, tok, 4, wait_for_completion=False)
    first = await answers(handle)
    await hook("go", on_created=keep(tok, "go"))
    return [first, await answers(handle)]


@workflow(name="tchh_cancels")
async def cancels(tok: str, reason: str) -> list[Any]:
    handle = await start_child_workflow(
        waiting_child, tok, wait_for_completion=False, parent_close_policy="abandon"
    )
    await hook("go", on_created=keep(tok, "go"))
    sent = await handle.cancel(reason)
    try:
        outcome: list[Any] = ["not cancelled", await handle.result()]
    except ChildWorkflowCancelledError as exc:
        outcome = [type(exc).__name__, exc.reason]
    ended = await answers(handle)
    again = await handle.cancel("once more")
    await hook("after", on_created=keep(tok, "after"))
    return [sent, outcome, ended, again]


@workflow(name="tchh_cancels_at_once")
async def cancels_at_once(tok: str) -> list[Any]:
    handle = await start_child_workflow(
        waiting_child, tok, wait_for_completion=False, parent_close_policy="abandon"
    )
    sent = await handle.cancel("changed my mind")  # in the turn whose append creates the child
    try:
        return [sent, "not cancelled", await handle.result()]
    except ChildWorkflowCancelledError as exc:
        return [sent, type(exc).__name__, exc.reason]


@workflow(name="tchh_waits_on_handle")
async def waits_on_handle(tok: str) -> list[Any]:
    handle = await start_child_workflow(waiting_child, tok, wait_for_completion=False)
    return [handle.run_id, await handle.result()]


def child_events(events: list[pyworkflow.WorkflowEvent]) -> list[EventType]:
    return [e.type for e in events if e.type.value.startswith("child_workflow")]


def count_cancels(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The run ids ``storage.request_cancel`` is called with, from now on."""
    calls: list[str] = []
    request_cancel = storage.request_cancel

    async def counted(run_id: str, *, now: float, reason: str | None) -> bool:
        calls.append(run_id)
        return await request_cancel(run_id, now=now, reason=reason)

    monkeypatch.setattr(storage, "request_cancel", counted)
    return calls


# --- status in workflow code ---------------------------------------------------------------------


async def test_a_handle_answers_in_workflow_code(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(asks, tok)
    kid = await child_of(env.storage, run_id)
    await resume_hook(await hook_token(tok, "release", kid.run_id), "done")
    result = await pyworkflow.get_workflow_result(run_id, timeout=RESULT_WITHIN)
    assert result == [["running", True, False], "done", ["completed", False, True]]
    events = await events_of(run_id)
    assert_well_formed(events)
    assert child_events(events) == [
        EventType.CHILD_WORKFLOW_STARTED,
        EventType.CHILD_WORKFLOW_COMPLETED,
    ]
    assert (await replay_run(env.storage, run_id)).ok


async def test_status_comes_from_the_log_the_same_on_replay(env: WorkflowEnvironment) -> None:
    # The child ends while the parent waits on a hook: the parent logs the end of a child nobody
    # awaits, and after a restart the replayed code asks at the same log positions, so the first
    # answer is still "running" although the child has ended by then.
    tok = token()
    run_id = await pyworkflow.start(asks_across_restart, tok)
    go = await hook_token(tok, "go", run_id)
    kid = await child_of(env.storage, run_id)
    await wait_status(kid.run_id, RunStatus.COMPLETED, within=RESULT_WITHIN)
    await wait_logged(run_id, EventType.CHILD_WORKFLOW_COMPLETED)
    await restart(env)
    await resume_hook(go, None)
    result = await pyworkflow.get_workflow_result(run_id, timeout=RESULT_WITHIN)
    assert result == [["running", True, False], ["completed", False, True]]
    events = await events_of(run_id)
    assert_well_formed(events)
    completed = of_type(events, EventType.CHILD_WORKFLOW_COMPLETED)
    assert [e.data["child_run_id"] for e in completed] == [kid.run_id]
    assert (await replay_run(env.storage, run_id)).ok


async def wait_logged(run_id: str, kind: EventType, within: float = RESULT_WITHIN) -> None:
    deadline = time.monotonic() + within
    while not of_type(await events_of(run_id), kind):
        assert time.monotonic() < deadline, f"{run_id} never logged {kind}"
        await asyncio.sleep(0.01)


# --- cancel in workflow code ---------------------------------------------------------------------


async def test_cancel_in_workflow_code_is_a_logged_command(
    env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    tok = token()
    run_id = await pyworkflow.start(cancels, tok, "enough")
    kid = await child_of(env.storage, run_id)
    await hook_token(tok, "release", kid.run_id)
    requests = count_cancels(env.storage, monkeypatch)
    await resume_hook(await hook_token(tok, "go", run_id), None)
    after = await hook_token(tok, "after", run_id, within=RESULT_WITHIN)
    cancelled = await wait_status(kid.run_id, RunStatus.CANCELLED, within=RESULT_WITHIN)
    assert (await env.storage.get_run(kid.run_id)).cancel_reason == "enough"  # type: ignore[union-attr]
    assert cancelled.status is RunStatus.CANCELLED
    # A restart replays the parent past its logged cancel: the request is not made again.
    await restart(env)
    await resume_hook(after, None)
    result = await pyworkflow.get_workflow_result(run_id, timeout=RESULT_WITHIN)
    assert result == [
        True,
        ["ChildWorkflowCancelledError", "enough"],
        ["cancelled", False, True],
        False,
    ]
    assert requests == [kid.run_id], "the cancel request reached the child exactly once"
    events = await events_of(run_id)
    assert_well_formed(events)
    assert child_events(events) == [
        EventType.CHILD_WORKFLOW_STARTED,
        EventType.CHILD_WORKFLOW_CANCEL_REQUESTED,
        EventType.CHILD_WORKFLOW_CANCELLED,
    ]
    (requested,) = of_type(events, EventType.CHILD_WORKFLOW_CANCEL_REQUESTED)
    assert requested.data["child_run_id"] == kid.run_id
    assert requested.data["reason"] == "enough"
    assert (await replay_run(env.storage, run_id)).ok


async def test_a_child_cancelled_in_the_turn_that_starts_it(env: WorkflowEnvironment) -> None:
    run_id = await pyworkflow.start(cancels_at_once, token())
    result = await pyworkflow.get_workflow_result(run_id, timeout=RESULT_WITHIN)
    assert result == [True, "ChildWorkflowCancelledError", "changed my mind"]
    kid = await child_of(env.storage, run_id)
    assert kid.status is RunStatus.CANCELLED
    assert kid.cancel_reason == "changed my mind"
    assert child_events(await events_of(run_id)) == [
        EventType.CHILD_WORKFLOW_STARTED,
        EventType.CHILD_WORKFLOW_CANCEL_REQUESTED,
        EventType.CHILD_WORKFLOW_CANCELLED,
    ]


async def test_cancel_wakes_a_child_the_test_environment_keeps_in_memory() -> None:
    # Under the test environment's infinite horizon a child waiting on a hook keeps its
    # coroutine and reads its row only when woken: the parent's request must wake it.
    tok = token()
    async with WorkflowEnvironment(start_time=datetime(2030, 1, 1, tzinfo=UTC)) as env:
        run_id = await env.start(cancels, tok, "enough")
        await env.resume_hook(run_id, "go", None)
        await env.resume_hook(run_id, "after", None)
        result = await env.result(run_id, timeout=RESULT_WITHIN)
    assert result[:2] == [True, ["ChildWorkflowCancelledError", "enough"]]


async def test_a_cancel_lost_by_a_crash_is_made_at_the_take_over(
    env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The driver logs the cancel, then dies before its request reaches the child (here: the
    # request fails). The run's next lease holder finds the logged cancel unanswered by the
    # child and makes the request.
    tok = token()
    run_id = await pyworkflow.start(cancels, tok, "lost once")
    kid = await child_of(env.storage, run_id)
    await hook_token(tok, "release", kid.run_id)
    # Patched before anything asks for it: the environment's storage proxy keeps what it found.
    request_cancel = env.storage.request_cancel
    calls: list[str] = []

    async def fails_once(run_id: str, *, now: float, reason: str | None) -> bool:
        calls.append(run_id)
        if len(calls) == 1:
            raise StorageUnavailableError("test://", "the connection dropped")
        return await request_cancel(run_id, now=now, reason=reason)

    monkeypatch.setattr(env.storage, "request_cancel", fails_once)
    await resume_hook(await hook_token(tok, "go", run_id), None)
    await env.advance(0)  # the driver logs the cancel, its request fails, the driver is gone
    assert calls == [kid.run_id]
    crashed = await env.storage.get_run(run_id)
    assert crashed is not None
    assert crashed.lease_expires_at is not None, "nobody handed the run back"
    # Until its lease lapses (the environment's last a century) and the next holder takes over.
    await env.clock.advance(crashed.lease_expires_at - env.clock.now())
    after = await hook_token(tok, "after", run_id, within=RESULT_WITHIN)
    await resume_hook(after, None)
    result = await pyworkflow.get_workflow_result(run_id, timeout=RESULT_WITHIN)
    assert result[:2] == [True, ["ChildWorkflowCancelledError", "lost once"]]
    assert calls == [kid.run_id, kid.run_id]
    events = await events_of(run_id)
    assert len(of_type(events, EventType.CHILD_WORKFLOW_CANCEL_REQUESTED)) == 1


# --- result() in workflow code -------------------------------------------------------------------


async def test_result_in_workflow_code_waits_durably(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(waits_on_handle, tok)
    kid = await child_of(env.storage, run_id)
    release = await hook_token(tok, "release", kid.run_id)
    await wait_suspended(env, run_id)
    await restart(env)
    await resume_hook(release, "late")
    assert await pyworkflow.get_workflow_result(run_id, timeout=RESULT_WITHIN) == [
        kid.run_id,
        "late",
    ]
    assert child_events(await events_of(run_id)) == [
        EventType.CHILD_WORKFLOW_STARTED,
        EventType.CHILD_WORKFLOW_COMPLETED,
    ]


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
