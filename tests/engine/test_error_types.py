"""A workflow catches its steps' errors by their type, on first execution and on replay.

A step's failure is logged as plain data (type path, message, arguments, attributes) and
rebuilt without pickle. What a user checks: ``except StepTimeoutError`` catches a timed-out
step, ``except`` catches every pyworkflow error class and user classes whose constructor is
not ``__init__(message)`` (several required arguments, keyword-only ones, a message formatted
from the arguments, a ``__str__`` of its own), with their attributes, also when a take-over
replays the run from its log.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from pyworkflow import EventType, RunStatus, StepTimeoutError, sleep, step, workflow
from pyworkflow import exceptions as errors
from pyworkflow._engine.activation import WorkflowActivation
from pyworkflow.serialization import Codec
from pyworkflow.storage import MemoryStorage
from pyworkflow.storage.records import EventRecord
from pyworkflow.testing import WorkflowEnvironment

START = datetime(2030, 1, 1, tzinfo=UTC)


class NeedsTwo(Exception):
    def __init__(self, code: int, detail: str) -> None:
        self.code, self.detail = code, detail
        super().__init__(f"error {code}: {detail}")


class KeywordOnly(Exception):
    def __init__(self, *, reason: str, retry: bool = False) -> None:
        self.reason, self.retry = reason, retry
        super().__init__(reason)


class Formats(Exception):
    def __init__(self, sku: str) -> None:
        self.sku = sku
        super().__init__(f"out of stock: {sku}")


class OwnStr(Exception):
    def __init__(self, order: int) -> None:
        super().__init__()
        self.order = order

    def __str__(self) -> str:
        return f"order {self.order} refused"


class Opaque(Exception):
    """Its attribute is no plain data, and its ``__str__`` needs it."""

    def __init__(self, when: datetime) -> None:
        super().__init__()
        self.when = when

    def __str__(self) -> str:
        return f"too late at {self.when:%H:%M}"


class HoldsLock(Exception):
    """Its ``__str__`` needs an attribute the log cannot hold: only its message comes back."""

    def __init__(self, lock: Any) -> None:
        super().__init__()
        self.lock = lock

    def __str__(self) -> str:
        return f"waited on a {type(self.lock).__name__}"


USER_ERRORS: list[Exception] = [
    NeedsTwo(404, "no such order"),
    KeywordOnly(reason="busy", retry=True),
    Formats("sku-1"),
    OwnStr(7),
    Opaque(datetime(2030, 1, 1, 12, 30, tzinfo=UTC)),
    HoldsLock(threading.Lock()),
]

# One instance of every class of the tree but CancellationError (a BaseException, not a
# failure a step reports), built as pyworkflow builds them.
OUR_ERRORS: list[Exception] = [
    errors.PyWorkflowError("root"),
    errors.DefinitionError("definition"),
    errors.WorkflowDefinitionError("workflow definition"),
    errors.StepDefinitionError("step definition"),
    errors.InputError("input"),
    errors.InvalidDurationError("5 parsecs"),
    errors.SerializationError("cannot", path="argument 'f'", type_name="_io.TextIOWrapper"),
    errors.PayloadTooLargeError("result of step 'a#1'", "builtins.str", 70_000_000, 67_108_864),
    errors.WorkflowNotFoundError("wf", ["a", "b"]),
    errors.StepNotFoundError("st"),
    errors.RunNotFoundError("run_1"),
    errors.IdempotencyConflictError("key", "a", "b"),
    errors.WorkflowCalledDirectlyError("wf"),
    errors.NotInWorkflowError("not in a workflow"),
    errors.ClientCallInWorkflowError("get_workflow_run()", "use a step"),
    errors.InvalidChangeIdError(""),
    errors.InvalidRunStateError("run_1", "completed", "only a failed run can be resumed"),
    errors.MaxNestingDepthError("run_1", 3),
    errors.TransientRunError("hook()"),
    errors.HookNotFoundError("abcd"),
    errors.HookAlreadyReceivedError("run_1", "hook:approval#1"),
    errors.HookExpiredError("run_1", "hook:approval#1"),
    errors.InvalidHookPayloadError("approval", "amount", "not a number"),
    errors.InvalidScheduleError("cron", "0 25 * * *", "Bad hour"),
    errors.ScheduleNotFoundError("nightly"),
    errors.ScheduleExistsError("nightly"),
    errors.StreamDefinitionError("stream definition"),
    errors.StreamRunNotFoundError("job-42"),
    errors.StreamRunConflictError("job-42", "stream 'other', driven by run 'run_1'"),
    errors.StreamRunEndedError("job-42", "cancelled"),
    errors.InvalidSignalPayloadError("orders", "order.placed", "quantity", "not an int"),
    errors.NotInStreamStepError("set_result()"),
    errors.StepError("step"),
    errors.FatalError("fatal"),
    errors.RetryableError("again", retry_after="30s"),
    errors.StepFailedError("a#1", "KeyError", "'k'"),
    errors.StepTimeoutError("slow", 0.5),
    errors.WorkflowFailedError("run_1", "KeyError", "'k'", "Traceback ..."),
    errors.WorkflowCancelledError("run_1", "no longer needed"),
    errors.WorkflowTimeoutError("run_1", 60.0),
    errors.ChildWorkflowFailedError("run_2", "child", "KeyError", "'k'"),
    errors.ChildWorkflowCancelledError("run_2", "child", "no longer needed"),
    errors.NonDeterminismError("run_1", 3, "step 'a#1'", "step 'b#1'"),
    errors.ConfigurationError("configuration"),
    errors.StorageError("storage"),
    errors.SchemaVersionError("schema 9 is newer than this code"),
    errors.StorageUnavailableError("postgresql://localhost/x", "connection refused"),
    errors.ConcurrencyConflictError("run_1", 4, "stale seq"),
    errors.CorruptRecordError("events", "run_1", "payload", '{"trunc', "not JSON", seq=3),
    errors.CopyConflictError("postgresql://db/app", ["run_1", "run_2"], "already exist there"),
    errors.RunsChangedDuringCopyError("sqlite:///app.db", ["run_1"]),
]
RAISED = USER_ERRORS + OUR_ERRORS
EXECUTIONS: list[list[str]] = []


def describe(exc: BaseException) -> str:
    """What a user sees of a caught error: its class, message and attributes (plain data)."""
    attributes = {k: v for k, v in vars(exc).items() if k not in ("__notes__", "lock")}
    return f"{type(exc).__qualname__} | {exc} | {attributes}"


@step(name="te_slow", timeout=0.05, max_retries=0)
async def slow() -> None:
    await asyncio.sleep(10)


@step(name="te_raise", max_retries=0)
async def raise_error(index: int) -> None:
    raise RAISED[index]


@workflow(name="te_catches")
async def catches() -> list[str]:
    caught = []
    try:
        await slow()
    except StepTimeoutError as exc:
        caught.append(f"timeout of {exc.step_name} after {exc.timeout}s")
    for index, error in enumerate(RAISED):
        try:
            await raise_error(index)
        except type(error) as exc:
            caught.append(describe(exc))
    EXECUTIONS.append(caught)
    await sleep("1d")
    return caught


@workflow(name="te_catches_timeout")
async def catches_timeout() -> str:
    try:
        await slow()
    except StepTimeoutError as exc:
        return f"caught {type(exc).__name__}: {exc}"
    return "not raised"


def test_every_error_class_is_in_the_test() -> None:
    classes = {
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.PyWorkflowError)
    }
    assert classes == {type(e) for e in OUR_ERRORS}


async def test_steps_errors_are_caught_by_type_on_first_run_and_on_replay() -> None:
    expected = ["timeout of te_slow after 0.05s", *map(describe, RAISED)]
    storage = MemoryStorage()
    EXECUTIONS.clear()
    async with WorkflowEnvironment(storage, start_time=START) as first:
        run_id = await first.start(catches)
        deadline = asyncio.get_running_loop().time() + 10
        while (run := await first.get_run(run_id)).status is RunStatus.RUNNING:
            assert asyncio.get_running_loop().time() < deadline, "the run never reached its sleep"
            await asyncio.sleep(0.01)
        assert run.status is RunStatus.SUSPENDED, run.error
    assert [expected] == EXECUTIONS
    # A new environment on the same storage takes the run over: it replays it from the log.
    async with WorkflowEnvironment(storage, start_time=START + timedelta(hours=1)) as second:
        assert await second.result(run_id) == expected
    assert [expected, expected] == EXECUTIONS
    await storage.close()


def test_a_step_timeout_logged_before_attributes_were_is_caught_by_type() -> None:
    # A log written by an earlier version: type, message and the message as its only argument.
    message = "step 'te_slow' exceeded its timeout of 0.05s"
    error = {
        "type": "pyworkflow.exceptions.StepTimeoutError",
        "message": message,
        "traceback": "",
        "args": [message],
    }
    started = {"v": 1, "workflow": "te_catches_timeout", "args": {"args": [], "kwargs": {}}}
    step_started = {"v": 1, "step_id": "te_slow#1", "name": "te_slow", "attempt": 1, "args": None}
    events = [
        EventRecord("run_old", 1, EventType.WORKFLOW_STARTED, started, 1.0),
        EventRecord("run_old", 2, EventType.STEP_STARTED, step_started, 2.0),
        EventRecord(
            "run_old",
            3,
            EventType.STEP_FAILED,
            {"v": 1, "step_id": "te_slow#1", "error": error},
            3.0,
        ),
    ]

    class StoppedClock:
        def now(self) -> float:
            return 4.0

        async def sleep_until(self, deadline: float) -> None:
            raise AssertionError("replay never waits")

    activation = WorkflowActivation(
        run_id="run_old",
        workflow=catches_timeout,
        args=(),
        kwargs={},
        codec=Codec(),
        clock=StoppedClock(),
    )
    try:
        turn = activation.replay(events)
        assert turn.finished
        assert turn.error is None
        assert turn.result == f"caught StepTimeoutError: {message}"
    finally:
        activation.close()
