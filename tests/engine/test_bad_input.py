"""Bad input is a typed error under PyWorkflowError that names the value, and writes nothing.

DESIGN §2.4: every refusal happens before the first write. Refusals at a caller's ``start``
leave no run behind; refusals inside workflow code (a bad sleep duration, an unencodable step
argument) fail the run with the typed error recorded, and log no command for the bad call.
On the virtual clock and memory storage (conftest.py); that no backend half-writes a refused
call is the contract suite's.
"""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

import pyworkflow
from pyworkflow import (
    EventType,
    IdempotencyConflictError,
    PyWorkflowError,
    SerializationError,
    StepDefinitionError,
    WorkflowCalledDirectlyError,
    WorkflowDefinitionError,
    WorkflowNotFoundError,
    sleep,
    step,
    workflow,
)
from pyworkflow.registry import get_step, get_workflow
from pyworkflow.storage.protocol import Storage
from pyworkflow.testing import WorkflowEnvironment

from .run_log import failure_of


class Opaque:
    """Neither JSON nor a dataclass: needs pickle."""

    def __repr__(self) -> str:
        return "Opaque()"


@step(name="tb_echo")
async def echo(value: Any) -> Any:
    return value


@step(name="tb_lock_maker", max_retries=3, retry_delay=0.01)
async def lock_maker() -> Any:
    return threading.Lock()


@workflow(name="tb_takes")
async def takes(payload: Any, *, note: str = "") -> str:
    return "took it"


@workflow(name="tb_other")
async def other() -> str:
    return "other"


@workflow(name="tb_sleeps")
async def sleeps(duration: Any) -> str:
    await sleep(duration)
    return "woke"


@workflow(name="tb_naive_sleep")
async def naive_sleep() -> str:
    await sleep(datetime(2030, 1, 1, 12, 0))
    return "woke"


@workflow(name="tb_bad_step_arg")
async def bad_step_arg() -> Any:
    return await echo(threading.Lock())


@workflow(name="tb_bad_step_result")
async def bad_step_result() -> Any:
    return await lock_maker()


@workflow(name="tb_bad_result")
async def bad_result() -> Any:
    return threading.Lock()


async def no_runs() -> None:
    assert await pyworkflow.list_workflow_runs() == []


def assert_typed(exc: BaseException, *quoted: str) -> None:
    assert isinstance(exc, PyWorkflowError)
    for text in quoted:
        assert text in str(exc), f"{text!r} not in {str(exc)!r}"


# --- refused at start: nothing written -----------------------------------------------------------


async def test_unknown_workflow_name(env: WorkflowEnvironment) -> None:
    with pytest.raises(WorkflowNotFoundError) as info:
        await pyworkflow.start("nope")
    assert_typed(info.value, "'nope'")
    assert info.value.name == "nope"
    await no_runs()


async def test_calling_a_workflow_directly(env: WorkflowEnvironment) -> None:
    with pytest.raises(WorkflowCalledDirectlyError) as info:
        await takes(1)  # type: ignore[misc]
    assert_typed(info.value, "tb_takes")
    await no_runs()


async def test_wrong_arguments_for_the_workflow(env: WorkflowEnvironment) -> None:
    with pytest.raises(pyworkflow.InputError) as info:
        await pyworkflow.start(takes, 1, 2, 3)
    assert_typed(info.value, "tb_takes")
    await no_runs()


async def test_an_argument_that_cannot_be_serialized(env: WorkflowEnvironment) -> None:
    with pytest.raises(SerializationError) as info:
        await pyworkflow.start(takes, threading.Lock())
    assert_typed(info.value, "'payload'", "lock")
    assert "payload" in info.value.path
    with pytest.raises(SerializationError) as info:
        await pyworkflow.start(takes, {"ok": [1, 2]}, note=threading.Lock())  # type: ignore[arg-type]
    assert_typed(info.value, "'note'")
    await no_runs()


async def test_a_plain_object_without_pickle(pw_memory: Storage) -> None:
    # configure()'s setting, so on a runtime configure() builds (tests/conftest.py).
    pyworkflow.configure(allow_pickle=False)
    with pytest.raises(SerializationError) as info:
        await pyworkflow.start(takes, {"deep": [1, Opaque()]})
    assert_typed(info.value, "'payload'", "Opaque", "allow_pickle")
    await no_runs()


async def test_the_same_idempotency_key_for_another_workflow(env: WorkflowEnvironment) -> None:
    run_id = await pyworkflow.start(other, idempotency_key="shared-key")
    await pyworkflow.get_workflow_result(run_id, timeout=10)
    events = await pyworkflow.get_workflow_events(run_id)
    with pytest.raises(IdempotencyConflictError) as info:
        await pyworkflow.start(takes, 1, idempotency_key="shared-key")
    assert_typed(info.value, "'shared-key'", "'tb_other'", "'tb_takes'")
    assert [r.run_id for r in await pyworkflow.list_workflow_runs()] == [run_id]
    assert await pyworkflow.get_workflow_events(run_id) == events


async def test_a_step_outside_a_workflow_is_a_plain_coroutine(env: WorkflowEnvironment) -> None:
    assert await echo({"x": 1}) == {"x": 1}
    assert await echo(threading.Lock()) is not None  # no codec involved
    await no_runs()


# --- refused inside workflow code: the run fails with the typed error ----------------------------


@pytest.mark.parametrize(
    ("duration", "quoted"),
    [
        ("5 parsecs", "'5 parsecs'"),
        ("-1s", "'-1s'"),
        (float("nan"), "nan"),
        (-3, "-3"),
        (math.inf, "inf"),
        (10**20, "100000000000000000000"),
        ("1000000w", "'1000000w'"),
        (datetime(9999, 1, 1, tzinfo=UTC), "9999"),
    ],
    ids=[
        "parsecs",
        "negative-string",
        "nan",
        "negative-number",
        "infinite",
        "over-a-century",
        "over-a-century-string",
        "datetime-year-9999",
    ],
)
async def test_bad_sleep_duration_fails_the_run(
    env: WorkflowEnvironment, duration: Any, quoted: str
) -> None:
    run_id = await pyworkflow.start(sleeps, duration)
    err = await failure_of(run_id)
    assert err.error_type == "pyworkflow.exceptions.InvalidDurationError"
    assert quoted in err.error_message
    events = await pyworkflow.get_workflow_events(run_id)
    assert [e.type for e in events] == [EventType.WORKFLOW_STARTED, EventType.WORKFLOW_FAILED]


async def test_naive_datetime_for_sleep_fails_the_run(env: WorkflowEnvironment) -> None:
    run_id = await pyworkflow.start(naive_sleep)
    err = await failure_of(run_id)
    assert err.error_type == "pyworkflow.exceptions.InvalidDurationError"
    assert "2030" in err.error_message
    assert "naive" in err.error_message
    events = await pyworkflow.get_workflow_events(run_id)
    assert EventType.SLEEP_STARTED not in [e.type for e in events]


async def test_unencodable_step_argument_logs_no_command(env: WorkflowEnvironment) -> None:
    run_id = await pyworkflow.start(bad_step_arg)
    err = await failure_of(run_id)
    assert err.error_type == "pyworkflow.exceptions.SerializationError"
    assert "tb_echo#1" in err.error_message
    events = await pyworkflow.get_workflow_events(run_id)
    assert [e.type for e in events] == [EventType.WORKFLOW_STARTED, EventType.WORKFLOW_FAILED]


async def test_unencodable_step_result_fails_without_retrying(env: WorkflowEnvironment) -> None:
    run_id = await pyworkflow.start(bad_step_result)
    err = await failure_of(run_id)
    assert err.error_type == "pyworkflow.exceptions.SerializationError"
    assert "tb_lock_maker#1" in err.error_message
    events = await pyworkflow.get_workflow_events(run_id)
    kinds = [e.type for e in events]
    assert EventType.STEP_RETRYING not in kinds
    assert kinds.count(EventType.STEP_FAILED) == 1


async def test_unencodable_workflow_result_fails_the_run(env: WorkflowEnvironment) -> None:
    run_id = await pyworkflow.start(bad_result)
    err = await failure_of(run_id)
    assert err.error_type == "pyworkflow.exceptions.SerializationError"
    assert "workflow result" in err.error_message


# --- refused at decoration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "quoted"),
    [
        ({"timeout": "5 parsecs"}, "5 parsecs"),
        ({"timeout": "-1s"}, "-1s"),
        ({"timeout": float("nan")}, "nan"),
        ({"timeout": 0}, "0"),
        ({"timeout": 10**20}, "100000000000000000000"),
        ({"retry_delay": "5 parsecs"}, "5 parsecs"),
        ({"retry_delay": "-1s"}, "-1s"),
        ({"retry_delay": float("nan")}, "nan"),
        ({"retry_delay": ["1s", "soon"]}, "soon"),
        ({"retry_delay": 10**20}, "100000000000000000000"),
        ({"retry_delay": ["1s", "6000w"]}, "6000w"),
        ({"retry_delay": []}, "[]"),
        ({"max_retries": -1}, "-1"),
        ({"max_retries": True}, "True"),
    ],
)
def test_bad_step_options(options: dict[str, Any], quoted: str) -> None:
    with pytest.raises(StepDefinitionError) as info:

        @step(name="tb_never_registered", **options)
        async def bad() -> None:
            pass

    assert_typed(info.value, quoted, "bad")


@pytest.mark.parametrize("max_duration", ["5 parsecs", 10**20])
def test_bad_workflow_max_duration(max_duration: Any) -> None:
    with pytest.raises(WorkflowDefinitionError) as info:

        @workflow(name="tb_never_registered_wf", max_duration=max_duration)
        async def bad() -> None:
            pass

    assert_typed(info.value, str(max_duration), "bad")


def test_sync_functions_are_refused() -> None:
    with pytest.raises(WorkflowDefinitionError) as wf_info:

        @workflow(name="tb_sync_wf")
        def sync_workflow() -> None:  # type: ignore[type-var]
            pass

    assert_typed(wf_info.value, "sync_workflow", "async def")
    with pytest.raises(StepDefinitionError) as step_info:

        @step(name="tb_sync_step")
        def sync_step() -> None:  # type: ignore[type-var]
            pass

    assert_typed(step_info.value, "sync_step", "async def")
    with pytest.raises(WorkflowNotFoundError):
        get_workflow("tb_sync_wf")


def test_decorators_without_parentheses_register_as_with_them() -> None:
    async def tb_bare_fn() -> None:
        pass

    async def tb_bare_step() -> None:
        pass

    registered = workflow(tb_bare_fn)
    assert get_workflow("tb_bare_fn") is registered
    step(tb_bare_step)
    assert get_step("tb_bare_step").fn is tb_bare_step
    with pytest.raises(WorkflowDefinitionError, match="name"):
        workflow(42)  # type: ignore[call-overload]
    with pytest.raises(StepDefinitionError, match="name"):
        step(42)  # type: ignore[call-overload]


def test_two_workflows_with_one_name() -> None:
    with pytest.raises(WorkflowDefinitionError) as info:

        @workflow(name="tb_takes")
        async def impostor() -> None:
            pass

    assert_typed(info.value, "'tb_takes'", "takes", "impostor")
    assert get_workflow("tb_takes") is takes, "the first registration stands"


def test_two_steps_with_one_name() -> None:
    with pytest.raises(StepDefinitionError) as info:

        @step(name="tb_echo")
        async def impostor() -> None:
            pass

    assert_typed(info.value, "'tb_echo'", "impostor")
