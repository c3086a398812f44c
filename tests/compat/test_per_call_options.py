"""``storage=`` on every client call, ``durable=`` and ``runtime=`` on ``start``, and the other
names the pyworkflow documentation's configuration page uses (``pyworkflow.per_call``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import pyworkflow
from pyworkflow import (
    ConfigurationError,
    InputError,
    RunStatus,
    ScheduleSpec,
    config,
    get_storage,
    hook,
    step,
    workflow,
)
from pyworkflow.storage import FileStorageBackend, MemoryStorage, Storage


@step
async def pc_add(a: int, b: int) -> int:
    return a + b


@workflow
async def pc_sum(a: int, b: int) -> int:
    return await pc_add(a, b)


@workflow(durable=False)
async def pc_transient(a: int) -> int:
    return await pc_add(a, a)


@workflow
async def pc_waits() -> object:
    return await hook("pc_approval")


def calls(run_id: str, storage: Any) -> dict[str, Callable[[], Awaitable[Any]]]:
    """Each client call of the documentation, given ``storage=storage``."""
    return {
        "start": lambda: pyworkflow.start(pc_sum, 1, 2, storage=storage),
        "run": lambda: pyworkflow.run(pc_sum, 1, 2, storage=storage),
        "get_workflow_run": lambda: pyworkflow.get_workflow_run(run_id, storage=storage),
        "get_workflow_events": lambda: pyworkflow.get_workflow_events(run_id, storage=storage),
        "get_workflow_result": lambda: pyworkflow.get_workflow_result(run_id, storage=storage),
        "get_workflow_chain": lambda: pyworkflow.get_workflow_chain(run_id, storage=storage),
        "list_workflow_runs": lambda: pyworkflow.list_workflow_runs(storage=storage),
        "cancel_workflow": lambda: pyworkflow.cancel_workflow(run_id, storage=storage),
        "resume": lambda: pyworkflow.resume(run_id, storage=storage),
        "resume_hook": lambda: pyworkflow.resume_hook("no-such-token", storage=storage),
        "list_hooks": lambda: pyworkflow.list_hooks(run_id=run_id, storage=storage),
        "get_workflow_run_by_idempotency_key": lambda: (
            pyworkflow.get_workflow_run_by_idempotency_key("k", storage=storage)
        ),
        "create_schedule": lambda: pyworkflow.create_schedule(
            pc_sum, ScheduleSpec(interval="1h"), args=(1, 2), storage=storage
        ),
        "activate_scheduled_workflows": lambda: pyworkflow.activate_scheduled_workflows(
            storage=storage
        ),
    }


CALLS = sorted(calls("", None))


@pytest.mark.parametrize("name", CALLS)
async def test_every_call_takes_this_processs_storage(name: str, pw_memory: Storage) -> None:
    run_id = await pyworkflow.start(pc_sum, 1, 2)
    await pyworkflow.get_workflow_result(run_id)
    call = calls(run_id, pw_memory)[name]
    try:
        await call()
    except pyworkflow.HookNotFoundError:
        assert name == "resume_hook"  # got past the storage check to the token
    except pyworkflow.InvalidRunStateError:
        assert name == "resume"  # a completed run: past the storage check


@pytest.mark.parametrize("name", CALLS)
async def test_every_call_refuses_another_storage(name: str, pw_memory: Storage) -> None:
    run_id = await pyworkflow.start(pc_sum, 1, 2)
    await pyworkflow.get_workflow_result(run_id)
    before = await pyworkflow.list_workflow_runs()
    other = MemoryStorage()
    with pytest.raises(InputError, match=r"storage=.* is not this process's storage"):
        await calls(run_id, other)[name]()
    assert [r.run_id for r in await pyworkflow.list_workflow_runs()] == [
        r.run_id for r in before
    ]  # nothing started, nothing cancelled
    assert (await pyworkflow.get_workflow_run(run_id)).status is RunStatus.COMPLETED


async def test_a_storage_of_the_same_url_is_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "_settings", config._Settings())
    url = f"sqlite:///{tmp_path / 'data' / 'pyworkflow.db'}"
    pyworkflow.configure(storage=url)
    try:
        run_id = await pyworkflow.start(pc_sum, 2, 3)
        again = FileStorageBackend(base_path=str(tmp_path / "data"))
        assert await pyworkflow.get_workflow_result(run_id, storage=again) == 5
        assert await pyworkflow.get_workflow_result(run_id, storage=url) == 5
        assert get_storage().url == url  # the runtime's, once built
    finally:
        await pyworkflow.shutdown()


async def test_get_storage_is_the_configured_object(pw_memory: Storage) -> None:
    assert get_storage() is pw_memory
    chain = await pyworkflow.get_workflow_chain(
        await pyworkflow.start(pc_sum, 1, 1), storage=get_storage()
    )
    assert len(chain) == 1


async def test_durable_per_call(pw_memory: Storage) -> None:
    # durable=False: executed here, to its end, nothing stored.
    run_id = await pyworkflow.start(pc_sum, 1, 2, durable=False)
    assert run_id.startswith("run_")
    assert await pyworkflow.list_workflow_runs() == []
    assert await pyworkflow.run(pc_sum, 4, 5, durable=False) == 9
    assert await pyworkflow.run(pc_transient, 4) == 8
    assert await pyworkflow.list_workflow_runs() == []
    # durable=True over the workflow's durable=False: stored, as any durable run.
    stored = await pyworkflow.start(pc_transient, 3, durable=True)
    assert await pyworkflow.get_workflow_result(stored) == 6
    assert [r.run_id for r in await pyworkflow.list_workflow_runs()] == [stored]
    assert await pyworkflow.run(pc_transient, 5, durable=True) == 10
    # start's own keywords never reach the workflow.
    own = {"durable": True, "runtime": "local", "storage": pw_memory, "idempotency_key": "k"}
    assert await pyworkflow.run(pc_sum, 1, 2, **own) == 3  # pc_sum takes no such keyword
    assert await pyworkflow.run(pc_sum, 1, 2, **{**own, "durable": False}) == 3
    with pytest.raises(InputError, match=r"durable=.*True or False, not 'yes'"):
        await pyworkflow.start(pc_sum, 1, 2, durable="yes")  # type: ignore[call-overload]


async def test_runtime_per_call_must_be_this_processs(pw_memory: Storage) -> None:
    assert await pyworkflow.run(pc_sum, 1, 2, runtime="local") == 3
    count = len(await pyworkflow.list_workflow_runs())
    with pytest.raises(InputError, match="runtime='celery' is not this process's executor"):
        await pyworkflow.start(pc_sum, 1, 2, runtime="celery")
    with pytest.raises(InputError, match="runtime='celery'"):
        await pyworkflow.run(pc_transient, 1, runtime="celery")
    assert len(await pyworkflow.list_workflow_runs()) == count


def test_their_configure_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "_settings", config._Settings())
    pyworkflow.configure(default_runtime="local", celery_broker="redis://localhost:6379/5")
    assert config.executor_name() == "local"
    assert config.broker() == "redis://localhost:6379/5"
    assert pyworkflow.get_config().default_runtime == "local"
    assert pyworkflow.get_config().celery_broker == "redis://localhost:6379/5"
    with pytest.raises(ConfigurationError, match="disagree"):
        pyworkflow.configure(executor="local", default_runtime="celery")
    with pytest.raises(ConfigurationError, match="unknown executor 'lambda'"):
        pyworkflow.configure(default_runtime="lambda")


def test_their_module_paths() -> None:
    from pyworkflow.core.exceptions import FatalError, RetryableError
    from pyworkflow.storage.file import FileStorageBackend as FromFile

    assert FatalError is pyworkflow.FatalError
    assert RetryableError is pyworkflow.RetryableError
    assert FromFile is FileStorageBackend
    import pyworkflow.core.exceptions as aliased
    import pyworkflow.exceptions as ours

    assert set(aliased.__all__) == set(ours.__all__)
    assert all(getattr(aliased, n) is getattr(ours, n) for n in ours.__all__)
