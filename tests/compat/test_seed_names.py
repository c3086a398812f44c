"""Each spelling of the pyworkflow documentation maps onto ours (pyworkflow.seed_compat & co)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import pyworkflow
from pyworkflow import (
    ChildWorkflowFailedError,
    InputError,
    MaxNestingDepthError,
    NotInWorkflowError,
    RunStatus,
    StepContext,
    TransientRunError,
    config,
    continue_as_new,
    get_config,
    get_step_context,
    get_workflow_run_by_idempotency_key,
    has_step_context,
    hook,
    reset_config,
    set_step_context,
    start_child_workflow,
    step,
    workflow,
)
from pyworkflow.storage import (
    FileStorageBackend,
    InMemoryStorageBackend,
    MemoryStorage,
    SQLiteStorage,
    SQLiteStorageBackend,
)


@step
async def sn_double(x: int) -> int:
    return 2 * x


@step(max_retries=0)
async def sn_fail() -> int:
    raise ValueError("no")


@workflow
async def sn_twice(x: int) -> int:
    return await sn_double(await sn_double(x))


@workflow(tags=["a", "b"])
async def sn_failing_child() -> int:
    return await sn_fail()


@workflow
async def sn_parent() -> str:
    try:
        await start_child_workflow(sn_failing_child)
    except ChildWorkflowFailedError as exc:
        return f"{exc.child_workflow_name}|{exc.error}|{exc.error_type}"
    return "no failure"


@workflow
async def sn_handle() -> str:
    handle = await start_child_workflow(sn_twice, 1, wait_for_completion=False)
    assert handle.child_run_id == handle.run_id
    return str(await handle.result())


@workflow
async def sn_nest(depth: int) -> list[str]:
    if depth == 0:
        return []
    try:
        return ["ok", *await start_child_workflow(sn_nest, depth - 1)]
    except MaxNestingDepthError as exc:
        return [f"refused at {exc.depth} (max {exc.MAX_DEPTH})"]


@workflow
async def sn_count(n: int) -> int:
    if n > 0:
        continue_as_new(n - 1)
    return n


class SnContext(StepContext):
    tenant: str = ""
    level: int = 0


@step
async def sn_read_context() -> dict[str, object]:
    ctx = get_step_context()
    assert isinstance(ctx, SnContext)
    assert ctx.idempotency_key == f"{ctx.run_id}:{ctx.step_id}"
    return {"tenant": ctx.tenant, "level": ctx.level, "step": ctx.step_id, "has": True}


@step
async def sn_no_context() -> dict[str, object]:
    ctx = get_step_context()  # run information only
    return {"has": has_step_context(), "attempt": ctx.attempt, "step": ctx.step_id}


@workflow(context_class=SnContext)
async def sn_with_context() -> list[dict[str, object]]:
    before = await sn_no_context()
    await set_step_context(SnContext(tenant="t1", level=1))
    first = await sn_read_context()
    await set_step_context(get_step_context().with_updates(level=2))
    return [before, first, await sn_read_context()]


@workflow(durable=False)
async def sn_transient_hook() -> object:
    return await hook("never")


async def test_reset_and_get_config(pw_memory: object) -> None:
    pyworkflow.configure(default_durable=False)
    assert get_config().default_durable is False
    assert get_config()["default_durable"] is False
    reset_config()
    assert get_config().default_durable is True
    assert get_config().storage is None
    with pytest.raises(AttributeError):
        _ = get_config().no_such_setting


def test_storage_class_names_map_onto_our_backends(tmp_path: Path) -> None:
    assert isinstance(InMemoryStorageBackend(), MemoryStorage)
    file_backend = FileStorageBackend(base_path=str(tmp_path / "data"))
    assert isinstance(file_backend, SQLiteStorage)
    assert file_backend.url == f"sqlite:///{tmp_path / 'data' / 'pyworkflow.db'}"
    assert SQLiteStorageBackend(str(tmp_path / "x.db")).url.endswith("x.db")
    assert pyworkflow.storage.PostgresStorageBackend.__mro__[1].__name__ == "PostgresStorage"


async def test_their_storage_makes_start_wait_and_lists_children(
    pw_memory: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "_settings", config._settings)
    storage = InMemoryStorageBackend()
    pyworkflow.configure(storage=storage)
    assert config.start_waits() is True
    run_id = await pyworkflow.start(sn_parent)
    run = await pyworkflow.get_workflow_run(run_id, storage=storage)
    assert run.status is RunStatus.COMPLETED  # no waiting: start() returned once it ended
    assert run.result == "sn_failing_child|no|ValueError"
    children = await storage.get_children(run_id)
    assert [(c.workflow_name, c.status, c.nesting_depth) for c in children] == [
        ("sn_failing_child", RunStatus.FAILED, 1)
    ]
    with pytest.raises(InputError, match="not this process's storage"):
        await pyworkflow.get_workflow_run(run_id, storage=MemoryStorage())


async def test_events_read_as_documented(pw_memory: object) -> None:
    run_id = await pyworkflow.start(sn_twice, 3, idempotency_key="sn-key")
    assert await pyworkflow.get_workflow_result(run_id) == 12
    events = await pyworkflow.get_workflow_events(run_id)
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    completed = [e.data["step_name"] for e in events if e.type.value == "step_completed"]
    assert completed == ["sn_double", "sn_double"]
    found = await get_workflow_run_by_idempotency_key("sn-key")
    assert found is not None
    assert found.run_id == run_id
    assert await get_workflow_run_by_idempotency_key("sn-other") is None


async def test_child_handles_chains_and_nesting(pw_memory: object) -> None:
    assert await pyworkflow.run(sn_handle) == "4"
    assert await pyworkflow.run(sn_nest, 5) == ["ok", "ok", "ok", "refused at 3 (max 3)"]
    first = await pyworkflow.start(sn_count, 2)
    assert await pyworkflow.get_workflow_result(first) == 0
    chain = await pyworkflow.get_workflow_chain(first)
    assert chain[0].continued_from_run_id is None
    assert chain[0].continued_to_run_id == chain[1].run_id
    assert chain[-1].continued_from_run_id == chain[-2].run_id


async def test_step_context_is_set_in_workflow_code_and_read_in_steps(pw_memory: object) -> None:
    run_id = await pyworkflow.start(sn_with_context)
    before, first, second = await pyworkflow.get_workflow_result(run_id)
    assert before == {"has": False, "attempt": 1, "step": "sn_no_context#1"}
    assert first == {"tenant": "t1", "level": 1, "step": "sn_read_context#1", "has": True}
    assert second["level"] == 2
    run = await pyworkflow.get_workflow_run(run_id)
    assert run.context == {"tenant": "t1", "level": 2}


def test_step_context_is_immutable_and_checked() -> None:
    ctx = SnContext(tenant="x")
    with pytest.raises(AttributeError):
        ctx.tenant = "y"  # type: ignore[misc]
    assert ctx.with_updates(level=3).to_dict() == {"tenant": "x", "level": 3}
    with pytest.raises(InputError, match="no field 'nope'"):
        ctx.with_updates(nope=1)
    with pytest.raises(NotInWorkflowError):
        _ = ctx.run_id  # run information only inside a step
    with pytest.raises(NotInWorkflowError):
        get_step_context()
    assert has_step_context() is False


def test_step_context_fields_with_mutable_defaults() -> None:
    # Written as their pydantic-style contexts write them; each instance has its own copy.
    class FlagsContext(StepContext):
        flags: dict[str, bool] = {}  # noqa: RUF012 (the spelling under test)
        tags: list[str] = ["a"]  # noqa: RUF012

    one, two = FlagsContext(), FlagsContext(flags={"x": True})
    assert one.to_dict() == {"flags": {}, "tags": ["a"]}
    assert two.flags == {"x": True}
    one.flags["y"] = True  # the context is frozen, its dict is not: only this one changes
    assert FlagsContext().flags == {}
    assert FlagsContext().tags is not FlagsContext().tags


async def test_set_step_context_in_a_step_is_refused() -> None:
    with pytest.raises(NotInWorkflowError):
        await set_step_context(SnContext())
    with pytest.raises(RuntimeError):  # what their documentation says it raises
        await set_step_context(SnContext())


async def test_transient_runs_store_nothing(pw_memory: MemoryStorage) -> None:
    pyworkflow.configure(default_durable=False)
    run_id = await pyworkflow.start(sn_twice, 2)
    assert run_id.startswith("run_")
    assert await pyworkflow.run(sn_twice, 3, idempotency_key="ignored") == 12  # its result
    assert await pw_memory.list_runs() == []  # nothing reached the configured storage
    with pytest.raises(TransientRunError, match="hook"):
        await pyworkflow.start(sn_transient_hook)
    with pytest.raises(ValueError, match="no"):
        await pyworkflow.start(sn_failing_child)  # the workflow's own exception


async def test_start_waits_also_waits_for_a_retry_delay(pw_memory: object) -> None:
    pyworkflow.configure(start_waits=True)
    started = asyncio.get_running_loop().time()
    run_id = await pyworkflow.start(sn_twice, 1)
    assert (await pyworkflow.get_workflow_run(run_id)).status is RunStatus.COMPLETED
    assert await pyworkflow.resume(run_id) == 4  # a completed run: its result
    assert asyncio.get_running_loop().time() - started < 5


chunks_done: list[int] = []
three_done: dict[str, asyncio.Event] = {}


@step
async def sn_long(chunks: int) -> int:
    ctx = pyworkflow.get_context()
    assert ctx.step is not None
    for chunk in range(chunks):
        await ctx.check_cancellation()
        chunks_done.append(chunk)
        if len(chunks_done) == 3:
            three_done["event"].set()
        await asyncio.sleep(0.01)
    return chunks


@workflow
async def sn_cancellable() -> int:
    assert pyworkflow.get_context().step is None
    return await sn_long(1000)


async def test_a_step_checks_for_cancellation(pw_memory: object) -> None:
    chunks_done.clear()
    three_done["event"] = asyncio.Event()
    run_id = await pyworkflow.start(sn_cancellable)
    await asyncio.wait_for(three_done["event"].wait(), 10)
    assert await pyworkflow.cancel_workflow(run_id, reason="enough") is True
    with pytest.raises(pyworkflow.WorkflowCancelledError):
        await pyworkflow.get_workflow_result(run_id, timeout=10)
    assert len(chunks_done) < 100  # stopped between chunks, not after all 1000
    with pytest.raises(NotInWorkflowError):
        pyworkflow.get_context()


replays: list[int] = []


@workflow(context_class=SnContext)
async def sn_context_after_sleep() -> dict[str, object]:
    replays.append(1)  # counts how often the workflow code ran (a replay runs it again)
    await set_step_context(SnContext(tenant="kept", level=7))
    await pyworkflow.sleep(0.3)
    return await sn_read_context()


async def test_the_step_context_survives_a_replay(pw_memory: object) -> None:
    pyworkflow.configure(horizon_seconds=0.01)  # the sleeping run is let go, then replayed
    replays.clear()
    result = await pyworkflow.run(sn_context_after_sleep)
    assert len(replays) >= 2  # it was replayed from the log after its sleep
    assert (result["tenant"], result["level"]) == ("kept", 7)
