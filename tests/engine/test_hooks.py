"""Hooks: a workflow waits for an outside payload delivered with ``resume_hook`` (issue 5).

What a user checks: the payload reaches the workflow, once; the token handed to ``on_created``
is unguessable, stable over replays and restarts, and storage keeps only its hash; a waiting
run costs nothing; each refusal (unknown token, ended run, second delivery, timeout) is its own
typed error and writes nothing; a hook times out into ``HookExpiredError`` the workflow can
catch; ``hook()`` in a step says to move the call to workflow code. Typed payloads:
test_typed_hooks.py; concurrent deliveries: test_concurrent_hooks.py. On the virtual clock and
memory storage (conftest.py), but for what SQLite writes to its file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

import pyworkflow
from pyworkflow import (
    CancellationError,
    EventType,
    HookAlreadyReceivedError,
    HookExpiredError,
    HookNotFoundError,
    HookStatus,
    NotInWorkflowError,
    RunStatus,
    WorkflowCancelledError,
    define_hook,
    hook,
    list_hooks,
    resume_hook,
    shield,
    step,
    workflow,
)
from pyworkflow import runtime as pw_runtime
from pyworkflow.storage import SQLiteStorage
from pyworkflow.storage.protocol import Storage
from pyworkflow.testing import WorkflowEnvironment

from .hook_payloads import Shipping
from .hook_workflows import shipping_hook, two_hooks, wait_for_approval
from .recording import CALLS, token
from .run_log import assert_well_formed, events_of, of_type, types
from .waits import TOKENS, hook_token, keep, restart, set_horizon, wait_suspended


@step(name="th_cleanup")
async def cleanup(tok: str) -> str:
    CALLS[tok, "cleanup"] += 1
    return "cleaned"


@workflow(name="th_timeout")
async def with_timeout(tok: str, expiry: float) -> list[Any]:
    try:
        first: Any = await hook("approval", timeout=expiry, on_created=keep(tok, "approval"))
    except HookExpiredError as exc:
        first = f"expired {exc.hook_id}"
    second = await hook("after", on_created=keep(tok, "after"))
    return [first, second]


@workflow(name="th_cancel_cleanup")
async def cancel_cleanup(tok: str) -> str:
    try:
        await hook("approval", on_created=keep(tok, "approval"))
    except CancellationError:
        async with shield():
            await cleanup(tok)
        raise
    return "approved"


@workflow(name="th_empty_name")
async def empty_name() -> Any:
    return await hook("")


@step(name="th_primitive_in_step", max_retries=0)
async def primitive_in_step(kind: str) -> list[str]:
    try:
        if kind == "hook":
            await hook("in-a-step")
        elif kind == "define_hook":
            define_hook("in-a-step", Shipping)
        else:
            await shipping_hook()
    except NotInWorkflowError as exc:
        return [type(exc).__name__, str(exc)]
    return ["nothing raised", ""]


@workflow(name="th_calls_primitive_in_step")
async def calls_primitive_in_step(kind: str) -> list[str]:
    return await primitive_in_step(kind)


# --- helpers -------------------------------------------------------------------------------------


async def hooks_by_name(run_id: str) -> dict[str, HookStatus]:
    return {h.name: h.status for h in await list_hooks(run_id=run_id)}


# --- delivery ------------------------------------------------------------------------------------


async def test_resume_hook_delivers_the_payload(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(wait_for_approval, tok)
    hook_tok = await hook_token(tok, "approval", run_id)
    await wait_suspended(env, run_id)

    info = await resume_hook(hook_tok, {"approved": True, "by": "ana"})

    assert info.run_id == run_id
    assert info.name == "approval"
    assert info.status is HookStatus.RECEIVED
    assert info.received_at is not None
    result = await pyworkflow.get_workflow_result(run_id, timeout=10)
    assert result == {"got": {"approved": True, "by": "ana"}}
    events = await events_of(run_id)
    assert_well_formed(events)
    assert types(events).count(EventType.HOOK_CREATED) == 1
    received = of_type(events, EventType.HOOK_RECEIVED)
    assert len(received) == 1
    assert types(events)[-1] is EventType.WORKFLOW_COMPLETED
    assert await hooks_by_name(run_id) == {"approval": HookStatus.RECEIVED}
    # on_created runs again on each replay, always with the same token.
    assert set(TOKENS[f"{tok}/approval"]) == {hook_tok}


async def test_tokens_are_unguessable_and_not_derived_from_the_run(
    env: WorkflowEnvironment,
) -> None:
    tok_a, tok_b = token(), token()
    run_a = await pyworkflow.start(wait_for_approval, tok_a)
    run_b = await pyworkflow.start(wait_for_approval, tok_b)
    token_a = await hook_token(tok_a, "approval", run_a)
    token_b = await hook_token(tok_b, "approval", run_b)

    for run_id, hook_tok in [(run_a, token_a), (run_b, token_b)]:
        assert hook_tok.startswith("hk_")
        assert len(hook_tok) >= 40, "at least 256 bits of HMAC, url-safe"
        assert hook_tok != f"{run_id}:approval"
        assert run_id not in hook_tok
        assert run_id.removeprefix("run_") not in hook_tok
        assert "approval" not in hook_tok
    assert token_a != token_b, "two runs waiting on a hook of one name get different tokens"
    for run_id in (run_a, run_b):
        await pyworkflow.cancel_workflow(run_id)


async def test_storage_and_listings_hold_no_token(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(wait_for_approval, tok)
    hook_tok = await hook_token(tok, "approval", run_id)

    def assert_no_token() -> None:
        for shown in (infos, records, [e.data for e in events]):
            assert hook_tok not in repr(shown)
            assert hook_tok.removeprefix("hk_") not in repr(shown)

    infos = await list_hooks(run_id=run_id)
    records = await env.storage.list_hooks(run_id=run_id)
    events = await events_of(run_id)
    assert [r.token_hash for r in records] == [hashlib.sha256(hook_tok.encode()).hexdigest()]
    assert not hasattr(infos[0], "token")
    assert infos[0].hook_id != f"{run_id}:approval"
    assert_no_token()

    await resume_hook(hook_tok, "ok")
    await pyworkflow.get_workflow_result(run_id, timeout=10)
    infos = await list_hooks(run_id=run_id)
    records = await env.storage.list_hooks(run_id=run_id)
    events = await events_of(run_id)
    assert_no_token()


async def test_the_database_file_holds_no_token(pw_sqlite: Storage) -> None:
    assert isinstance(pw_sqlite, SQLiteStorage)
    tok = token()
    run_id = await pyworkflow.start(wait_for_approval, tok)
    hook_tok = await hook_token(tok, "approval", run_id)
    await resume_hook(hook_tok, {"approved": True})
    await pyworkflow.get_workflow_result(run_id, timeout=10)
    db = Path(pw_sqlite.path)
    beside = [p for p in db.parent.iterdir() if p.name.startswith(db.name)]
    # The WAL, its index, and the owners' lock files (in <db>.owners/) too.
    files = [f for p in beside for f in ([*p.iterdir()] if p.is_dir() else [p])]
    assert files
    for path in files:
        data = path.read_bytes()
        assert hook_tok.encode() not in data, f"the token is readable in {path.name}"
        assert hook_tok.removeprefix("hk_").encode() not in data


async def test_tokens_survive_a_restart_of_the_process(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(two_hooks, tok)
    await resume_hook(await hook_token(tok, "first", run_id), "one")
    second = await hook_token(tok, "second", run_id)
    await restart(env)
    await resume_hook(second, "two")
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == ["one", "two"]
    assert len(set(TOKENS[f"{tok}/first"])) == 1
    assert len(TOKENS[f"{tok}/first"]) >= 2, "the first hook's on_created ran again on replay"
    events = await events_of(run_id)
    assert_well_formed(events)
    assert [e.data["hook_id"] for e in of_type(events, EventType.HOOK_RECEIVED)] == [
        "hook:first#1",
        "hook:second#1",
    ]


async def test_a_run_waiting_on_a_hook_costs_nothing(env: WorkflowEnvironment) -> None:
    # DESIGN §2.6: a waiting run is rows only. Nothing claims and replays it until the
    # payload comes: its row stays as it was, and on_created is not called again and again.
    tok = token()
    run_id = await pyworkflow.start(wait_for_approval, tok)
    hook_tok = await hook_token(tok, "approval", run_id)
    await wait_suspended(env, run_id)
    before = await pyworkflow.get_workflow_run(run_id)
    handed = len(TOKENS[f"{tok}/approval"])
    # A day passes; the executor looks at storage now and then, as a polling worker would.
    executor = (await pw_runtime.get_runtime()).executor
    for _ in range(24):
        executor.wake()
        await env.advance("1h")
    after = await pyworkflow.get_workflow_run(run_id)
    assert len(TOKENS[f"{tok}/approval"]) == handed, "the waiting run was replayed meanwhile"
    assert after.updated_at == before.updated_at, "the waiting run's row kept changing"
    await resume_hook(hook_tok, "ok")
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == {"got": "ok"}


async def test_a_token_handed_out_by_on_created_is_deliverable_at_once(
    env: WorkflowEnvironment,
) -> None:
    # A user's on_created stores or mails the token; whoever receives it may use it at once.
    tok = token()
    run_id = await pyworkflow.start(wait_for_approval, tok)
    handed = TOKENS[f"{tok}/approval"]
    assert handed, "on_created ran during start()"
    await resume_hook(handed[0], "fast")
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == {"got": "fast"}


# --- refusals ------------------------------------------------------------------------------------


async def test_an_unknown_token_is_not_found(env: WorkflowEnvironment) -> None:
    for bad in ["hk_" + "A" * 43, "run_123:approval", ""]:
        with pytest.raises(HookNotFoundError):
            await resume_hook(bad, {"x": 1})
    assert await list_hooks() == []
    assert await pyworkflow.list_workflow_runs() == []


async def test_a_hook_of_a_cancelled_run_is_not_found(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(wait_for_approval, tok)
    hook_tok = await hook_token(tok, "approval", run_id)
    assert await pyworkflow.cancel_workflow(run_id) is True
    with pytest.raises(WorkflowCancelledError):
        await pyworkflow.get_workflow_result(run_id, timeout=10)
    events = await events_of(run_id)
    with pytest.raises(HookNotFoundError, match="ended"):
        await resume_hook(hook_tok, "too late")
    assert await events_of(run_id) == events
    assert (await pyworkflow.get_workflow_run(run_id)).status is RunStatus.CANCELLED


async def test_a_hook_of_a_completed_run_is_not_found(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(wait_for_approval, tok)
    hook_tok = await hook_token(tok, "approval", run_id)
    await resume_hook(hook_tok, 1)
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == {"got": 1}
    events = await events_of(run_id)
    with pytest.raises(HookNotFoundError):
        await resume_hook(hook_tok, 2)
    assert await events_of(run_id) == events


async def test_a_second_delivery_is_refused(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(two_hooks, tok)
    first = await hook_token(tok, "first", run_id)
    await resume_hook(first, "one")
    second = await hook_token(tok, "second", run_id)
    events = await events_of(run_id)

    with pytest.raises(HookAlreadyReceivedError) as info:
        await resume_hook(first, "one again")

    assert (info.value.run_id, info.value.hook_id) == (run_id, "hook:first#1")
    assert await events_of(run_id) == events
    await resume_hook(second, "two")
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == ["one", "two"]
    events = await events_of(run_id)
    assert_well_formed(events)
    assert [e.data["hook_id"] for e in of_type(events, EventType.HOOK_RECEIVED)] == [
        "hook:first#1",
        "hook:second#1",
    ]


@pytest.mark.parametrize("where", ["in-process", "suspended"])
async def test_a_hook_times_out(env: WorkflowEnvironment, where: str) -> None:
    if where == "suspended":
        # The run lets go of its coroutine: the timeout is a stored timer that wakes it.
        await set_horizon(0.1)
    timeout = 0.3 if where == "in-process" else 1.0
    tok = token()
    began = env.clock.now()
    run_id = await pyworkflow.start(with_timeout, tok, timeout)
    first = await hook_token(tok, "approval", run_id)
    await env.advance(timeout - 0.001)
    assert await hooks_by_name(run_id) == {"approval": HookStatus.WAITING}, "not yet"
    await env.advance(0.001)
    after = await hook_token(tok, "after", run_id)
    assert env.clock.now() - began == pytest.approx(timeout, abs=1e-6)

    with pytest.raises(HookExpiredError) as info:
        await resume_hook(first, "late")

    assert (info.value.run_id, info.value.hook_id) == (run_id, "hook:approval#1")
    assert await hooks_by_name(run_id) == {
        "approval": HookStatus.EXPIRED,
        "after": HookStatus.WAITING,
    }
    await resume_hook(after, "next")
    result = await pyworkflow.get_workflow_result(run_id, timeout=10)
    assert result == ["expired hook:approval#1", "next"]
    events = await events_of(run_id)
    assert_well_formed(events)
    assert [e.data["hook_id"] for e in of_type(events, EventType.HOOK_EXPIRED)] == [
        "hook:approval#1"
    ]
    assert [e.data["hook_id"] for e in of_type(events, EventType.HOOK_RECEIVED)] == ["hook:after#1"]


async def test_a_hook_with_an_empty_name_fails_the_run(env: WorkflowEnvironment) -> None:
    run_id = await pyworkflow.start(empty_name)
    with pytest.raises(pyworkflow.WorkflowFailedError) as info:
        await pyworkflow.get_workflow_result(run_id, timeout=10)
    assert info.value.error_type == "pyworkflow.exceptions.InputError"
    assert types(await events_of(run_id)) == [
        EventType.WORKFLOW_STARTED,
        EventType.WORKFLOW_FAILED,
    ]
    assert await list_hooks(run_id=run_id) == []


async def test_cancel_a_run_waiting_on_a_hook(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(cancel_cleanup, tok)
    hook_tok = await hook_token(tok, "approval", run_id)
    await wait_suspended(env, run_id)
    began = env.now()
    assert await pyworkflow.cancel_workflow(run_id, reason="withdrawn") is True
    with pytest.raises(WorkflowCancelledError, match="withdrawn"):
        await pyworkflow.get_workflow_result(run_id, timeout=10)
    assert env.now() == began, "the cancel reached the waiting run without waiting for a timer"
    assert CALLS[tok, "cleanup"] == 1, "the shielded cleanup step ran once"
    events = await events_of(run_id)
    assert_well_formed(events)
    assert types(events)[-1] is EventType.WORKFLOW_CANCELLED
    assert EventType.CANCELLATION_REQUESTED in types(events)
    assert EventType.HOOK_RECEIVED not in types(events)
    assert len(of_type(events, EventType.STEP_COMPLETED)) == 1
    with pytest.raises(HookNotFoundError):
        await resume_hook(hook_tok, "after the cancel")
    assert await events_of(run_id) == events


# --- a hook belongs to workflow code -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["hook", "define_hook", "typed_hook"])
async def test_a_hook_inside_a_step_says_to_move_it(env: WorkflowEnvironment, kind: str) -> None:
    name, message = await pyworkflow.run(calls_primitive_in_step, kind)
    assert name == "NotInWorkflowError"
    assert "inside a step" in message
    assert "workflow code" in message
    if kind != "define_hook":
        assert "move the call to workflow code" in message


async def test_a_hook_outside_any_workflow_is_refused(env: WorkflowEnvironment) -> None:
    with pytest.raises(NotInWorkflowError, match="workflow code"):
        await hook("nowhere")
    with pytest.raises(NotInWorkflowError, match="workflow code"):
        await shipping_hook()
    assert await list_hooks() == []
