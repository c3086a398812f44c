"""Replay, unit by unit: ``WorkflowActivation`` fed hand-built logs, with no storage or executor.

An activation never executes a step: it hands back the commands to launch. So "a logged outcome
is returned without executing" shows as a finished turn with nothing to launch and the logged
value as the result, and "relaunched after a crash" as a command in ``turn.launch``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

import pyworkflow
from pyworkflow import EventType, NonDeterminismError, sleep, step, workflow
from pyworkflow._engine.activation import WorkflowActivation
from pyworkflow._engine.commands import Turn
from pyworkflow.serialization import Codec
from pyworkflow.storage.records import EventRecord, NewEvent
from pyworkflow.testing import WorkflowEnvironment
from pyworkflow.workflow import Workflow

from .waits import set_horizon, wait_suspended

RUN_ID = "run_replay_unit"
EXECUTED: Counter[str] = Counter()
MODE: dict[str, str] = {}


class FakeClock:
    """A clock that stands still unless told otherwise."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.t = now

    def now(self) -> float:
        return self.t

    async def sleep_until(self, deadline: float) -> None:
        self.t = max(self.t, deadline)


class Log:
    """Builds a run's event log with consecutive seqs, the way the driver writes it."""

    def __init__(self, workflow_name: str, *args: Any) -> None:
        self.events: list[EventRecord] = []
        self.add(
            EventType.WORKFLOW_STARTED,
            workflow=workflow_name,
            args={"args": list(args), "kwargs": {}},
            idempotency_key=None,
        )

    def add(self, event_type: EventType, /, **payload: Any) -> Log:
        seq = len(self.events) + 1
        self.events.append(EventRecord(RUN_ID, seq, event_type, {"v": 1, **payload}, 1_000.0 + seq))
        return self

    def started(self, step_id: str, *args: Any, attempt: int = 1) -> Log:
        name = step_id.split("#")[0]
        encoded = {"args": list(args), "kwargs": {}} if attempt == 1 else None
        return self.add(
            EventType.STEP_STARTED, step_id=step_id, name=name, attempt=attempt, args=encoded
        )

    def completed(self, step_id: str, result: Any) -> Log:
        return self.add(EventType.STEP_COMPLETED, step_id=step_id, result=Codec().encode(result))

    def failed(self, step_id: str, error_type: str, message: str, *args: Any) -> Log:
        error = {"type": error_type, "message": message, "traceback": ""}
        if args:
            error["args"] = list(args)
        return self.add(EventType.STEP_FAILED, step_id=step_id, error=error)


@pytest.fixture
def activations() -> Iterator[list[WorkflowActivation]]:
    made: list[WorkflowActivation] = []
    yield made
    for activation in made:
        activation.close()


def activate(
    made: list[WorkflowActivation], wf: Workflow[..., Any], *args: Any
) -> WorkflowActivation:
    activation = WorkflowActivation(
        run_id=RUN_ID, workflow=wf, args=args, kwargs={}, codec=Codec(), clock=FakeClock()
    )
    made.append(activation)
    return activation


def launched(turn: Turn) -> list[tuple[str, str]]:
    return [(c.kind, c.command_id) for c in turn.launch]


def new_events(turn: Turn) -> list[tuple[EventType, str | None]]:
    return [(e.type, e.payload.get("step_id") or e.payload.get("sleep_id")) for e in turn.events]


# --- workflow code under replay ------------------------------------------------------------------


@step(name="tr_a")
async def step_a(x: Any) -> Any:
    EXECUTED["tr_a"] += 1
    return f"a({x})"


@step(name="tr_b")
async def step_b(x: Any) -> Any:
    EXECUTED["tr_b"] += 1
    return f"b({x})"


@step(name="tr_echo")
async def echo(value: Any) -> Any:
    EXECUTED["tr_echo"] += 1
    return value


@workflow(name="tr_sequence")
async def sequence(x: int) -> list[Any]:
    first = await step_a(x)
    second = await step_b(first)
    return [first, second]


@workflow(name="tr_branchy")
async def branchy(kind: str) -> list[Any]:
    out = [await step_a(0)]
    if kind == "a":
        out.append(await step_a(1))
    elif kind == "b":
        out.append(await step_b(1))
    return out


@workflow(name="tr_interleaved")
async def interleaved() -> dict[str, Any]:
    trace: list[str] = []

    async def branch(label: str) -> list[Any]:
        one = await echo(f"{label}-1")
        trace.append(one)
        two = await echo(f"{label}-2")
        trace.append(two)
        return [one, two]

    results = await asyncio.gather(branch("x"), branch("y"))
    return {"trace": trace, "results": list(results)}


@workflow(name="tr_pair")
async def pair(both: bool) -> list[Any]:
    if both:
        return list(await asyncio.gather(step_a(1), step_a(2)))
    return [await step_a(1)]


@workflow(name="tr_catches")
async def catches() -> str:
    try:
        await step_a(1)
    except KeyError as exc:
        return f"caught KeyError {exc}"
    return "no error"


@workflow(name="tr_side_effects")
async def side_effects(kind: str) -> Any:
    value = pyworkflow.uuid4() if kind == "uuid4" else pyworkflow.random()
    return [value, await step_a(0)]


@workflow(name="tr_naps")
async def naps() -> str:
    await sleep(60)
    return await step_a("after")


# --- logged outcomes are returned without executing ----------------------------------------------


def test_a_full_log_replays_to_the_result_without_executing(activations: list) -> None:
    EXECUTED.clear()
    log = (
        Log("tr_sequence", 7)
        .started("tr_a#1", 7)
        .completed("tr_a#1", "LOGGED-A")
        .started("tr_b#1", "LOGGED-A")
        .completed("tr_b#1", {"from": "log"})
    )
    activation = activate(activations, sequence, 7)
    turn = activation.replay(log.events)
    assert activation.divergence is None
    assert turn.finished
    assert turn.error is None
    assert turn.result == ["LOGGED-A", {"from": "log"}]
    assert turn.launch == []
    assert turn.events == []
    assert sum(EXECUTED.values()) == 0


def test_a_partial_log_replays_and_issues_the_next_command(activations: list) -> None:
    EXECUTED.clear()
    log = Log("tr_sequence", 7).started("tr_a#1", 7).completed("tr_a#1", "LOGGED-A")
    activation = activate(activations, sequence, 7)
    turn = activation.replay(log.events)
    assert activation.divergence is None
    assert not turn.finished
    assert launched(turn) == [("step", "tr_b#1")]
    (event,) = turn.events
    assert event.type is EventType.STEP_STARTED
    assert event.payload == {
        "v": 1,
        "step_id": "tr_b#1",
        "name": "tr_b",
        "attempt": 1,
        "args": {"args": ["LOGGED-A"], "kwargs": {}},
    }
    assert sum(EXECUTED.values()) == 0

    # The new outcome goes in through deliver, and the code runs to its end.
    done = activation.deliver(
        "tr_b#1",
        NewEvent(EventType.STEP_COMPLETED, {"v": 1, "step_id": "tr_b#1", "result": 3}),
        value=3,
    )
    assert done.finished
    assert done.result == ["LOGGED-A", 3]
    assert [e.type for e in done.events] == [EventType.STEP_COMPLETED]


def test_a_logged_failure_is_raised_again_as_its_class(activations: list) -> None:
    log = Log("tr_catches").started("tr_a#1", 1).failed("tr_a#1", "KeyError", "'sku'", "sku")
    activation = activate(activations, catches)
    turn = activation.replay(log.events)
    assert activation.divergence is None
    assert turn.result == "caught KeyError 'sku'"


def test_an_unknown_error_type_becomes_step_failed_error(activations: list) -> None:
    log = Log("tr_sequence", 1).started("tr_a#1", 1).failed("tr_a#1", "nowhere.Gone", "lost")
    activation = activate(activations, sequence, 1)
    turn = activation.replay(log.events)
    assert turn.finished
    assert turn.error is not None
    assert turn.error["type"] == "pyworkflow.exceptions.StepFailedError"
    assert "nowhere.Gone" in turn.error["message"]
    assert "lost" in turn.error["message"]


def test_side_effects_replay_their_logged_value(activations: list) -> None:
    logged = "12345678-1234-5678-1234-567812345678"
    codec = Codec()
    import uuid

    log = (
        Log("tr_side_effects", "uuid4")
        .add(EventType.SIDE_EFFECT_RECORDED, kind="uuid4", value=codec.encode(uuid.UUID(logged)))
        .started("tr_a#1", 0)
        .completed("tr_a#1", "a")
    )
    activation = activate(activations, side_effects, "uuid4")
    turn = activation.replay(log.events)
    assert activation.divergence is None
    assert turn.result == codec.encode([uuid.UUID(logged), "a"])


# --- gather interleavings replay in logged order -------------------------------------------------


def test_gather_replays_the_interleaving_in_the_log(activations: list) -> None:
    # y's first step finished first, so y's second step became tr_echo#3.
    y_first = (
        Log("tr_interleaved")
        .started("tr_echo#1", "x-1")
        .started("tr_echo#2", "y-1")
        .completed("tr_echo#2", "y-1")
        .started("tr_echo#3", "y-2")
        .completed("tr_echo#3", "y-2")
        .completed("tr_echo#1", "x-1")
        .started("tr_echo#4", "x-2")
        .completed("tr_echo#4", "x-2")
    )
    activation = activate(activations, interleaved)
    turn = activation.replay(y_first.events)
    assert activation.divergence is None
    assert turn.result == {
        "trace": ["y-1", "y-2", "x-1", "x-2"],
        "results": [["x-1", "x-2"], ["y-1", "y-2"]],
    }

    # x first, then y, then both seconds: a different log, a different (logged) interleaving.
    x_first = (
        Log("tr_interleaved")
        .started("tr_echo#1", "x-1")
        .started("tr_echo#2", "y-1")
        .completed("tr_echo#1", "x-1")
        .started("tr_echo#3", "x-2")
        .completed("tr_echo#2", "y-1")
        .started("tr_echo#4", "y-2")
        .completed("tr_echo#4", "y-2")
        .completed("tr_echo#3", "x-2")
    )
    activation = activate(activations, interleaved)
    turn = activation.replay(x_first.events)
    assert activation.divergence is None
    assert turn.result == {
        "trace": ["x-1", "y-1", "y-2", "x-2"],
        "results": [["x-1", "x-2"], ["y-1", "y-2"]],
    }


def test_gather_partial_log_relaunches_what_was_in_flight(activations: list) -> None:
    log = (
        Log("tr_interleaved")
        .started("tr_echo#1", "x-1")
        .started("tr_echo#2", "y-1")
        .completed("tr_echo#2", "y-1")
        .started("tr_echo#3", "y-2")
    )
    activation = activate(activations, interleaved)
    turn = activation.replay(log.events)
    assert activation.divergence is None
    assert turn.events == []
    assert sorted(launched(turn)) == [("step", "tr_echo#1"), ("step", "tr_echo#3")]
    by_id = {c.command_id: c for c in turn.launch}
    assert by_id["tr_echo#1"].args == ("x-1",)
    assert by_id["tr_echo#3"].args == ("y-2",)


# --- divergence ----------------------------------------------------------------------------------


def test_divergence_when_the_code_calls_another_step(activations: list) -> None:
    log = Log("tr_branchy", "a").started("tr_a#1", 0).completed("tr_a#1", "a0").started("tr_a#2", 1)
    activation = activate(activations, branchy, "b")
    turn = activation.replay(log.events)
    err = activation.divergence
    assert isinstance(err, NonDeterminismError)
    assert err.run_id == RUN_ID
    assert err.position == 1
    assert err.logged == "step 'tr_a'"
    assert err.issued == "step 'tr_b'"
    for text in (RUN_ID, "1", "tr_a", "tr_b"):
        assert text in str(err)
    assert turn.launch == [], "nothing executes after a divergence"
    assert turn.events == [], "nothing is recorded after a divergence"
    assert not turn.finished


def test_divergence_at_the_first_command(activations: list) -> None:
    log = Log("tr_sequence", 1).started("tr_b#1", 1)
    activation = activate(activations, sequence, 1)
    turn = activation.replay(log.events)
    err = activation.divergence
    assert isinstance(err, NonDeterminismError)
    assert (err.position, err.logged, err.issued) == (0, "step 'tr_b'", "step 'tr_a'")
    assert turn.launch == []


def test_divergence_when_the_code_stops_calling_an_in_flight_step(activations: list) -> None:
    # The log has tr_a#2 in flight; today's code returns after tr_a#1 without waiting on it.
    log = Log("tr_branchy", "a").started("tr_a#1", 0).completed("tr_a#1", "a0").started("tr_a#2", 1)
    activation = activate(activations, branchy, "none")
    turn = activation.replay(log.events)
    err = activation.divergence
    assert isinstance(err, NonDeterminismError), "the logged tr_a#2 was silently dropped"
    assert (err.position, err.logged, err.issued) == (1, "step 'tr_a'", None)
    assert not turn.finished
    assert turn.launch == []


def test_divergence_when_the_code_stops_calling_a_completed_step(activations: list) -> None:
    log = (
        Log("tr_branchy", "a")
        .started("tr_a#1", 0)
        .completed("tr_a#1", "a0")
        .started("tr_a#2", 1)
        .completed("tr_a#2", "a1")
    )
    activation = activate(activations, branchy, "none")
    turn = activation.replay(log.events)
    err = activation.divergence
    assert isinstance(err, NonDeterminismError)
    assert (err.position, err.logged, err.issued) == (1, "step 'tr_a'", None)
    assert not turn.finished


def test_divergence_when_a_gathered_step_disappears(activations: list) -> None:
    # Logged: gather(tr_a, tr_a), the second finished first. Today: one tr_a only.
    log = (
        Log("tr_pair", True)
        .started("tr_a#1", 1)
        .started("tr_a#2", 2)
        .completed("tr_a#2", "a2")
        .completed("tr_a#1", "a1")
    )
    activation = activate(activations, pair, False)
    turn = activation.replay(log.events)
    err = activation.divergence
    assert isinstance(err, NonDeterminismError)
    assert err.run_id == RUN_ID
    assert err.position == 1
    assert err.logged == "step 'tr_a'", f"the message should name the logged command: {err}"
    assert err.issued is None
    assert not turn.finished
    assert turn.launch == []


def test_divergence_of_a_side_effect_kind(activations: list) -> None:
    log = Log("tr_side_effects", "uuid4").add(
        EventType.SIDE_EFFECT_RECORDED,
        kind="uuid4",
        value=Codec().encode("12345678-1234-5678-1234-567812345678"),
    )
    activation = activate(activations, side_effects, "random")
    turn = activation.replay(log.events)
    err = activation.divergence
    assert isinstance(err, NonDeterminismError)
    assert (err.position, err.logged, err.issued) == (0, "uuid4()", "random()")
    assert turn.events == []
    assert not turn.finished, "the divergence must not be caught by workflow code as a result"


def test_divergence_of_sleep_versus_step(activations: list) -> None:
    log = Log("tr_sequence", 1).add(EventType.SLEEP_STARTED, sleep_id="sleep#1", wake_at=2_000.0)
    activation = activate(activations, sequence, 1)
    activation.replay(log.events)
    err = activation.divergence
    assert isinstance(err, NonDeterminismError)
    assert (err.position, err.logged, err.issued) == (0, "sleep", "step 'tr_a'")


# --- relaunch after a crash ----------------------------------------------------------------------


def test_a_step_started_without_outcome_is_relaunched(activations: list) -> None:
    log = Log("tr_sequence", 4).started("tr_a#1", 4)
    activation = activate(activations, sequence, 4)
    turn = activation.replay(log.events)
    assert activation.divergence is None
    assert turn.events == [], "the command is already logged"
    (command,) = turn.launch
    assert (command.kind, command.command_id, command.name) == ("step", "tr_a#1", "tr_a")
    assert command.args == (4,)
    assert command.attempt == 1
    assert command.retry_at is None


def test_a_step_waiting_for_its_retry_is_relaunched_as_a_timer(activations: list) -> None:
    log = (
        Log("tr_sequence", 4)
        .started("tr_a#1", 4)
        .add(
            EventType.STEP_RETRYING,
            step_id="tr_a#1",
            attempt=1,
            error={"type": "ValueError", "message": "x", "traceback": ""},
            retry_at=1_234.5,
        )
    )
    activation = activate(activations, sequence, 4)
    turn = activation.replay(log.events)
    (command,) = turn.launch
    assert (command.attempt, command.retry_at) == (1, 1_234.5)

    log.started("tr_a#1", attempt=2)
    activation = activate(activations, sequence, 4)
    turn = activation.replay(log.events)
    (command,) = turn.launch
    assert (command.command_id, command.attempt, command.retry_at) == ("tr_a#1", 2, None)


def test_a_sleep_in_flight_keeps_its_logged_wake_time(activations: list) -> None:
    log = Log("tr_naps").add(EventType.SLEEP_STARTED, sleep_id="sleep#1", wake_at=1_060.0)
    activation = activate(activations, naps)
    activation._clock = FakeClock(5_000.0)  # much later: the wake time must not be recomputed
    turn = activation.replay(log.events)
    (command,) = turn.launch
    assert (command.kind, command.command_id, command.wake_at) == ("sleep", "sleep#1", 1_060.0)
    assert turn.events == []

    log.add(EventType.SLEEP_COMPLETED, sleep_id="sleep#1")
    activation = activate(activations, naps)
    turn = activation.replay(log.events)
    assert launched(turn) == [("step", "tr_a#1")]
    assert new_events(turn) == [(EventType.STEP_STARTED, "tr_a#1")]


# --- through the full engine ---------------------------------------------------------------------


@step(name="tr_engine_a")
async def engine_a() -> str:
    return "a"


@step(name="tr_engine_b")
async def engine_b() -> str:
    return "b"


@workflow(name="tr_changes_its_mind")
async def changes_its_mind(key: str) -> str:
    # Deliberately non-deterministic: reads state that the test flips while the run sleeps.
    first = await (engine_a() if MODE.get(key, "a") == "a" else engine_b())
    await sleep(0.3)
    return first


async def test_the_engine_fails_a_divergent_run(env: WorkflowEnvironment) -> None:
    await set_horizon(0.1)
    key = f"key-{id(env)}"
    MODE[key] = "a"
    run_id = await pyworkflow.start(changes_its_mind, key)
    await wait_suspended(env, run_id)
    MODE[key] = "b"  # a deploy changed the code while the run slept past the horizon
    with pytest.raises(pyworkflow.WorkflowFailedError) as info:
        await pyworkflow.get_workflow_result(run_id, timeout=10)
    assert info.value.error_type == "pyworkflow.exceptions.NonDeterminismError"
    for text in (run_id, "command 0", "tr_engine_a", "tr_engine_b"):
        assert text in info.value.error_message
    events = await pyworkflow.get_workflow_events(run_id)
    kinds = [e.type for e in events]
    assert kinds[-1] is EventType.WORKFLOW_FAILED
    assert EventType.SLEEP_COMPLETED not in kinds, "nothing is recorded after the divergence"
    assert [e.data["step_id"] for e in events if e.type is EventType.STEP_STARTED] == [
        "tr_engine_a#1"
    ]
