"""Versioning running workflows: ``patched`` / ``deprecate_patch``.

The unit tests feed hand-built logs to ``WorkflowActivation`` (nothing executes there). The
end-to-end tests change the code while a run is in flight: ``CODE[tok]`` picks the version
of the workflow's body a run sees, as a deploy would, and a failing gate step holds the old
run until the code has changed; ``resume`` then replays it under the new code. The last test
does it with real worker processes, killed with SIGKILL, and a module rewritten in between.
"""

from __future__ import annotations

import asyncio
import os
import signal
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pyworkflow
from pyworkflow import (
    EventType,
    FatalError,
    InvalidChangeIdError,
    NonDeterminismError,
    NotInWorkflowError,
    WorkflowFailedError,
    deprecate_patch,
    patched,
    step,
    workflow,
)
from pyworkflow._engine.activation import WorkflowActivation
from pyworkflow._engine.commands import Turn
from pyworkflow.serialization import Codec
from pyworkflow.storage.records import EventRecord, NewEvent
from pyworkflow.testing import WorkflowEnvironment, replay_history
from workers import WorkerProcesses, create_unleased_run, on_sqlite, wait_for_run

from .recording import CALLS, token
from .run_log import events_of, of_type

RUN_ID = "run_versioning_unit"


class StillClock:
    def now(self) -> float:
        return 1_000.0

    async def sleep_until(self, deadline: float) -> None:
        raise AssertionError("replay never waits")


class Log:
    """A run's log with consecutive seqs, the way the driver writes it."""

    def __init__(self, workflow_name: str, *args: Any) -> None:
        self.events: list[EventRecord] = []
        self.add(EventType.WORKFLOW_STARTED, workflow=workflow_name, args=_call(*args))

    def add(self, event_type: EventType, /, **payload: Any) -> Log:
        seq = len(self.events) + 1
        self.events.append(EventRecord(RUN_ID, seq, event_type, {"v": 1, **payload}, 1.0 * seq))
        return self

    def step(self, step_id: str, result: Any, *args: Any) -> Log:
        name = step_id.split("#")[0]
        self.add(EventType.STEP_STARTED, step_id=step_id, name=name, attempt=1, args=_call(*args))
        return self.add(EventType.STEP_COMPLETED, step_id=step_id, result=result)

    def started(self, step_id: str, *args: Any) -> Log:
        name = step_id.split("#")[0]
        return self.add(
            EventType.STEP_STARTED, step_id=step_id, name=name, attempt=1, args=_call(*args)
        )

    def marker(self, change_id: str) -> Log:
        return self.add(
            EventType.SIDE_EFFECT_RECORDED, kind="patched", change_id=change_id, value=True
        )

    def completed(self, result: Any) -> Log:
        return self.add(EventType.WORKFLOW_COMPLETED, result=result)


def _call(*args: Any) -> dict[str, Any]:
    return {"args": list(args), "kwargs": {}}


@pytest.fixture
def activations() -> Iterator[list[WorkflowActivation]]:
    made: list[WorkflowActivation] = []
    yield made
    for activation in made:
        activation.close()


def replay(made: list[WorkflowActivation], wf: Any, log: Log) -> tuple[WorkflowActivation, Turn]:
    call = log.events[0].payload["args"]
    activation = WorkflowActivation(
        run_id=RUN_ID,
        workflow=wf,
        args=tuple(call["args"]),
        kwargs={},
        codec=Codec(),
        clock=StillClock(),
    )
    made.append(activation)
    return activation, activation.replay(log.events)


def issued(turn: Turn) -> list[tuple[str, str]]:
    """(type, step id or change id) of the new events of a turn."""
    out = []
    for event in turn.events:
        payload = event.payload
        out.append((event.type.value, payload.get("step_id") or payload.get("change_id")))
    return out


# --- workflow code under replay ------------------------------------------------------------------


@step(name="tv_old")
async def old_step(x: Any) -> str:
    return f"old({x})"


@step(name="tv_new")
async def new_step(x: Any) -> str:
    return f"new({x})"


@step(name="tv_common")
async def common(x: Any) -> str:
    return f"common({x})"


@workflow(name="tv_branch")
async def branch() -> list[Any]:
    picked = await new_step(1) if patched("change-1") else await old_step(1)
    return [picked, await common(2)]


@workflow(name="tv_asks_twice")
async def asks_twice() -> list[Any]:
    answers = [patched("change-1")]
    await common(1)
    answers.append(patched("change-1"))
    return answers


@workflow(name="tv_numbering")
async def numbering() -> list[Any]:
    # The new branch calls the same step as the code after it: the ids count calls, not patches.
    out = [await common("extra")] if patched("extra-call") else []
    out.append(await common("always"))
    return out


@workflow(name="tv_gathered")
async def gathered() -> list[Any]:
    async def first() -> str:
        await common("a")
        return await new_step("d") if patched("in-branch") else "old"

    return list(await asyncio.gather(first(), common("b"), common("c")))


@workflow(name="tv_deprecated")
async def deprecated() -> list[Any]:
    deprecate_patch("change-1")
    return [await new_step(1), await common(2)]


@workflow(name="tv_patch_at_end")
async def patch_at_end() -> str:
    await common(1)
    return "new ending" if patched("late-change") else "old ending"


@workflow(name="tv_patch_removed")
async def patch_removed() -> list[Any]:
    return [await new_step(1), await common(2)]


# --- new runs and runs whose history predates the change -----------------------------------------


def test_a_new_run_gets_true_and_logs_a_marker(activations: list) -> None:
    activation, turn = replay(activations, branch, Log("tv_branch"))
    assert activation.divergence is None
    assert issued(turn) == [("side_effect_recorded", "change-1"), ("step_started", "tv_new#1")]
    marker = turn.events[0].payload
    assert marker == {"v": 1, "kind": "patched", "change_id": "change-1", "value": True}


def test_a_history_from_before_the_change_gets_false_and_replays(activations: list) -> None:
    old = Log("tv_branch").step("tv_old#1", "old(1)", 1).started("tv_common#1", 2)
    activation, turn = replay(activations, branch, old)
    assert activation.divergence is None
    assert turn.events == [], "False records nothing"
    assert [(c.kind, c.command_id) for c in turn.launch] == [("step", "tv_common#1")]
    completed = {"v": 1, "step_id": "tv_common#1", "result": "common(2)"}
    done = activation.deliver(
        "tv_common#1", NewEvent(EventType.STEP_COMPLETED, completed), value="common(2)"
    )
    assert done.finished
    assert done.result == ["old(1)", "common(2)"]


def test_a_logged_marker_replays_true_and_is_consumed(activations: list) -> None:
    new = Log("tv_branch").marker("change-1").step("tv_new#1", "new(1)", 1)
    new.step("tv_common#1", "common(2)", 2).completed(["new(1)", "common(2)"])
    activation, turn = replay(activations, branch, new)
    assert activation.divergence is None
    assert turn.finished
    assert turn.result == ["new(1)", "common(2)"]
    assert turn.events == []


def test_the_answer_holds_for_the_rest_of_the_run(activations: list) -> None:
    # Old history: False at the first call, and False again past the log's end, unrecorded.
    old = Log("tv_asks_twice").step("tv_common#1", "common(1)", 1)
    activation, turn = replay(activations, asks_twice, old)
    assert activation.divergence is None
    assert turn.finished
    assert turn.result == [False, False]
    assert turn.events == []

    # New run: one marker, True both times.
    activation, turn = replay(activations, asks_twice, Log("tv_asks_twice"))
    assert issued(turn) == [("side_effect_recorded", "change-1"), ("step_started", "tv_common#1")]
    again = Log("tv_asks_twice").marker("change-1").step("tv_common#1", "common(1)", 1)
    activation, turn = replay(activations, asks_twice, again)
    assert turn.result == [True, True]
    assert turn.events == []


def test_markers_do_not_shift_step_ids(activations: list) -> None:
    _, turn = replay(activations, numbering, Log("tv_numbering"))
    assert issued(turn) == [("side_effect_recorded", "extra-call"), ("step_started", "tv_common#1")]

    # Old history: the call after the patch point is tv_common#1, as the old code numbered it.
    old = Log("tv_numbering").step("tv_common#1", "common(always)", "always")
    activation, turn = replay(activations, numbering, old)
    assert activation.divergence is None
    assert turn.result == ["common(always)"]


def test_a_history_that_ended_keeps_false_at_its_end(activations: list) -> None:
    ended = Log("tv_patch_at_end").step("tv_common#1", "common(1)", 1).completed("old ending")
    activation, turn = replay(activations, patch_at_end, ended)
    assert activation.divergence is None
    assert turn.result == "old ending"
    assert turn.events == []

    # A run still in flight that reaches the call past its log runs new code from there.
    in_flight = Log("tv_patch_at_end").step("tv_common#1", "common(1)", 1)
    _, turn = replay(activations, patch_at_end, in_flight)
    assert turn.result == "new ending"
    assert issued(turn) == [("side_effect_recorded", "late-change")]


def test_in_a_gather_false_while_later_outcomes_are_logged(activations: list) -> None:
    def log() -> Log:
        started = Log("tv_gathered").started("tv_common#1", "a").started("tv_common#2", "b")
        started.started("tv_common#3", "c")
        return started.add(EventType.STEP_COMPLETED, step_id="tv_common#1", result="common(a)")

    # The old code logged b's outcome after a's: the branch reached the call inside the log.
    inside = log().add(EventType.STEP_COMPLETED, step_id="tv_common#2", result="common(b)")
    activation, turn = replay(activations, gathered, inside)
    assert activation.divergence is None
    assert turn.events == []
    assert [c.command_id for c in turn.launch] == ["tv_common#3"]

    # Past the last logged outcome the branch runs new code.
    activation, turn = replay(activations, gathered, log())
    assert activation.divergence is None
    assert issued(turn) == [("side_effect_recorded", "in-branch"), ("step_started", "tv_new#1")]


# --- deprecate_patch -----------------------------------------------------------------------------


def test_deprecate_patch_replays_histories_with_and_without_the_marker(activations: list) -> None:
    with_marker = Log("tv_deprecated").marker("change-1").step("tv_new#1", "new(1)", 1)
    with_marker.step("tv_common#1", "common(2)", 2)
    without = Log("tv_deprecated").step("tv_new#1", "new(1)", 1).step("tv_common#1", "c", 2)
    for log in (with_marker, without):
        activation, turn = replay(activations, deprecated, log)
        assert activation.divergence is None
        assert turn.finished
        assert turn.events == []

    _, turn = replay(activations, deprecated, Log("tv_deprecated"))
    assert issued(turn) == [("step_started", "tv_new#1")], "deprecate_patch never records"


# --- real divergence still fires -----------------------------------------------------------------


def test_a_marker_the_code_no_longer_expects_is_a_divergence(activations: list) -> None:
    new = Log("tv_patch_removed").marker("change-1").step("tv_new#1", "new(1)", 1)
    activation, turn = replay(activations, patch_removed, new)
    err = activation.divergence
    assert isinstance(err, NonDeterminismError)
    assert (err.position, err.logged, err.issued) == (0, "patched('change-1')", "step 'tv_new'")
    assert turn.events == []
    assert turn.launch == []


def test_an_unpatched_change_is_still_a_divergence(activations: list) -> None:
    # The old history took a branch the code no longer has, and no patch guards the change.
    log = Log("tv_patch_removed").step("tv_old#1", "old(1)", 1)
    activation, _ = replay(activations, patch_removed, log)
    err = activation.divergence
    assert isinstance(err, NonDeterminismError)
    assert (err.position, err.logged, err.issued) == (0, "step 'tv_old'", "step 'tv_new'")


def test_a_marker_for_another_change_is_not_taken(activations: list) -> None:
    log = Log("tv_branch").marker("change-2").step("tv_old#1", "old(1)", 1)
    activation, _ = replay(activations, branch, log)
    err = activation.divergence
    assert isinstance(err, NonDeterminismError)
    assert (err.position, err.logged, err.issued) == (0, "patched('change-2')", "step 'tv_old'")


# --- misuse --------------------------------------------------------------------------------------


@pytest.mark.parametrize("primitive", [patched, deprecate_patch])
def test_outside_workflow_code_is_a_typed_error(primitive: Any) -> None:
    with pytest.raises(NotInWorkflowError, match="outside a workflow") as info:
        primitive("change-1")
    assert "'change-1'" in str(info.value)


@pytest.mark.parametrize("bad", ["", "   ", None, 3])
def test_a_change_id_must_be_a_non_empty_string(bad: Any) -> None:
    with pytest.raises(InvalidChangeIdError) as info:
        patched(bad)
    assert info.value.change_id == bad
    assert repr(bad) in str(info.value)


@step(name="tv_patch_in_step", max_retries=0)
async def patch_in_step(which: str) -> bool:
    if which == "deprecate":
        deprecate_patch("change-1")
        return True
    return patched("change-1")


@workflow(name="tv_calls_patch_in_step")
async def calls_patch_in_step(which: str) -> bool:
    return await patch_in_step(which)


@pytest.mark.parametrize("which", ["patched", "deprecate"])
async def test_inside_a_step_is_a_typed_error(env: WorkflowEnvironment, which: str) -> None:
    with pytest.raises(WorkflowFailedError) as info:
        await pyworkflow.run(calls_patch_in_step, which)
    assert info.value.error_type.endswith("NotInWorkflowError")
    assert "in a step" in info.value.error_message


# --- end to end: the code changes while a run is in flight ---------------------------------------

CODE: dict[str, int] = {}
GATE: dict[str, bool] = {}


@step(name="tv_e2e_old")
async def e2e_old(tok: str) -> str:
    CALLS[tok, "old"] += 1
    return "old branch"


@step(name="tv_e2e_new")
async def e2e_new(tok: str) -> str:
    CALLS[tok, "new"] += 1
    return "new branch"


@step(name="tv_e2e_gate", max_retries=0)
async def e2e_gate(tok: str) -> str:
    CALLS[tok, "gate"] += 1
    if not GATE.get(tok):
        raise FatalError("gate closed")
    return "through"


@workflow(name="tv_e2e")
async def e2e(tok: str) -> list[str]:
    version = CODE[tok]
    if version == 1:
        picked = await e2e_old(tok)
    elif version == 2:
        picked = await e2e_new(tok) if patched("new-branch") else await e2e_old(tok)
    else:
        deprecate_patch("new-branch")
        picked = await e2e_new(tok)
    return [picked, await e2e_gate(tok)]


async def test_old_run_keeps_its_branch_after_the_code_changes(env: WorkflowEnvironment) -> None:
    old_tok, new_tok = token(), token()
    CODE[old_tok] = 1
    old_run = await pyworkflow.start(e2e, old_tok)
    with pytest.raises(WorkflowFailedError):
        await pyworkflow.get_workflow_result(old_run, timeout=10)

    # Deploy: the code now has the patch. The old run resumes and replays under it.
    CODE[old_tok] = CODE[new_tok] = 2
    GATE[old_tok] = GATE[new_tok] = True
    await pyworkflow.resume(old_run)
    assert await pyworkflow.get_workflow_result(old_run, timeout=10) == ["old branch", "through"]
    assert await pyworkflow.run(e2e, new_tok) == ["new branch", "through"]

    assert (CALLS[old_tok, "old"], CALLS[old_tok, "new"]) == (1, 0)
    assert (CALLS[new_tok, "old"], CALLS[new_tok, "new"]) == (0, 1)
    old_events = await events_of(old_run)
    assert of_type(old_events, EventType.SIDE_EFFECT_RECORDED) == []
    runs = await pyworkflow.list_workflow_runs(workflow_name="tv_e2e", status="completed")
    new_run = next(r.run_id for r in runs if r.run_id != old_run)
    new_events = await events_of(new_run)
    markers = of_type(new_events, EventType.SIDE_EFFECT_RECORDED)
    assert [m.data["change_id"] for m in markers] == ["new-branch"]

    # Stable: both histories replay under the patched code, again and again, executing nothing.
    executed = sum(CALLS.values())
    for _ in range(2):
        for events in (old_events, new_events):
            result = await replay_history(e2e, events)
            assert result.ok, result.divergence
    assert sum(CALLS.values()) == executed

    # Deprecated (only the new branch left): fine for the patched run and for runs started
    # after it; a run that took the old branch must be gone first, and the checker says so.
    CODE[old_tok] = CODE[new_tok] = 3
    assert (await replay_history(e2e, new_events)).ok
    diverged = (await replay_history(e2e, old_events)).divergence
    assert diverged is not None
    assert (diverged.logged, diverged.issued) == ("step 'tv_e2e_old'", "step 'tv_e2e_new'")
    latest_tok = token()
    CODE[latest_tok], GATE[latest_tok] = 3, True
    latest = await pyworkflow.start(e2e, latest_tok)
    assert await pyworkflow.get_workflow_result(latest, timeout=10) == ["new branch", "through"]
    latest_events = await events_of(latest)
    assert of_type(latest_events, EventType.SIDE_EFFECT_RECORDED) == []
    assert (await replay_history(e2e, latest_events)).ok


# --- end to end with real workers, killed -------------------------------------------------------

MODULE_V1 = """
import asyncio
import os

from pyworkflow import step, workflow

HOLD = os.environ["VERSIONTEST_HOLD"]
TRACE = os.environ["VERSIONTEST_TRACE"]


def trace(what: str, tok: str) -> None:
    with open(TRACE, "a") as out:
        out.write(f"{tok} {what}\\n")


@step()
async def old_branch(tok: str) -> str:
    trace("old", tok)
    return "old"


@step()
async def new_branch(tok: str) -> str:
    trace("new", tok)
    return "new"


@step()
async def hold(tok: str) -> str:
    while os.path.exists(HOLD):
        await asyncio.sleep(0.05)
    return "released"


@workflow()
async def deployed(tok: str) -> list[str]:
    {body}
    return [picked, await hold(tok)]
"""
OLD_BODY = "picked = await old_branch(tok)"
NEW_BODY = "picked = await new_branch(tok) if patched('new-branch') else await old_branch(tok)"


def _write_module(project: Path, body: str) -> None:
    source = textwrap.dedent(MODULE_V1).replace("{body}", body)
    source = source.replace("from pyworkflow import", "from pyworkflow import patched,")
    (project / "versioned_wf.py").write_text(source)


def _holding(db: Path, run_id: str) -> None:
    """Wait until the run's ``hold`` step started: its branch step's completion is logged."""
    deadline = time.monotonic() + 15
    while True:
        events = on_sqlite(db, lambda storage: storage.load_events(run_id))
        if any(e.payload.get("step_id") == "hold#1" for e in events):
            return
        assert time.monotonic() < deadline, f"run {run_id} never reached hold: {events}"
        time.sleep(0.05)


@pytest.mark.slow
def test_patched_is_stable_across_kill_and_takeover(
    tmp_path: Path, worker_processes: WorkerProcesses
) -> None:
    db = tmp_path / "versions.db"
    hold, trace = tmp_path / "hold", tmp_path / "trace.txt"
    worker_processes.env.update(
        VERSIONTEST_HOLD=str(hold), VERSIONTEST_TRACE=str(trace), PYTHONDONTWRITEBYTECODE="1"
    )
    hold.touch()
    flags = ("--lease-seconds", "1", "--poll-interval", "0.1")
    log = tmp_path / "workers.log"

    # Old code: the old run takes the old branch and waits in `hold`; its worker dies.
    _write_module(tmp_path, OLD_BODY)
    first = worker_processes.spawn("versioned_wf", db, *flags, log=log)
    old_run = create_unleased_run(db, "deployed", "old-run")
    _holding(db, old_run)
    first.send_signal(signal.SIGKILL)
    first.wait()

    # New code: a new run takes the new branch and waits in `hold`; its worker dies too.
    _write_module(tmp_path, NEW_BODY)
    second = worker_processes.spawn("versioned_wf", db, *flags, log=log)
    new_run = create_unleased_run(db, "deployed", "new-run")
    _holding(db, new_run)
    second.send_signal(signal.SIGKILL)
    second.wait()

    # A worker with the new code takes both over and replays them: each finishes on its branch.
    worker_processes.spawn("versioned_wf", db, *flags, log=log)
    os.unlink(hold)
    for run_id in (old_run, new_run):
        wait_for_run(db, run_id, lambda r: r.status.is_terminal, within=15)
    results = {
        run_id: Codec().decode(wait_for_run(db, run_id, lambda r: True, 1).result)
        for run_id in (old_run, new_run)
    }
    assert results == {old_run: ["old", "released"], new_run: ["new", "released"]}, log.read_text()
    # Each branch step ran once: logged before the kills, returned from the log afterwards.
    assert sorted(trace.read_text().split("\n")) == ["", "new-run new", "old-run old"]
