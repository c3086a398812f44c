"""Property tests: generated programs that wait on the outside world (issue 5).

A program is a JSON list of operations one workflow interprets: steps, sleeps (a second to
three days), groups of hooks awaited together (some delivered, in a random order, some left
to time out), child workflows (steps and sleeps of their own), and ``continue_as_new`` (the
rest of the program goes on in a fresh run, with the output so far). It runs in a
``WorkflowEnvironment``, whose virtual clock makes days take milliseconds.

The outside world is a random script: deliveries in a random order within each group, second
deliveries of a delivered hook, restarts (the environment's executor is shut down and a new one
opens on the same storage, so every run is replayed from its log), and at most one
cancellation, at a random moment.

Properties:
* a run that was not cancelled ends completed with exactly the result the program implies;
  one whose cancel request was accepted ends cancelled; every child ends;
* no hook payload is applied twice: one successful ``resume_hook`` and at most one
  HOOK_RECEIVED per hook, and a second delivery is always refused;
* no child is started twice, and a completed program started each of its children;
* no step runs twice (nothing is in flight at a restart here, so never twice means never);
* a hook's token is the same on every replay; every log is well formed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, event, given, settings

import pyworkflow
from pyworkflow import (
    EventType,
    HookAlreadyReceivedError,
    HookExpiredError,
    HookNotFoundError,
    HookStatus,
    RunStatus,
    WorkflowCancelledError,
    continue_as_new,
    hook,
    list_hooks,
    resume_hook,
    sleep,
    start_child_workflow,
    step,
    workflow,
)
from pyworkflow.storage import MemoryStorage, SQLiteStorage
from pyworkflow.storage.protocol import Storage
from pyworkflow.testing import WorkflowEnvironment

from .waits import TOKENS, keep

EXECUTED: Counter[tuple[str, str]] = Counter()


@step(name="top_step")
async def work(key: str, label: str) -> str:
    EXECUTED[key, label] += 1
    return f"s{label}"


async def _hook(key: str, spec: dict[str, Any]) -> Any:
    try:
        return await hook(
            f"h{spec['id']}", timeout=spec["timeout"], on_created=keep(key, str(spec["id"]))
        )
    except HookExpiredError:
        return "expired"


@workflow(name="top_child")
async def child(key: str, cid: int, ops: list[dict[str, Any]]) -> list[str]:
    out = []
    for op in ops:
        if op["op"] == "step":
            out.append(await work(key, f"c{cid}.{op['id']}"))
        else:
            await sleep(op["seconds"])
            out.append("slept")
    return out


@workflow(name="top_program")
async def program(key: str, ops: list[dict[str, Any]], done: list[Any]) -> list[Any]:
    out = list(done)
    for i, op in enumerate(ops):
        kind = op["op"]
        if kind == "step":
            out.append(await work(key, str(op["id"])))
        elif kind == "sleep":
            await sleep(op["seconds"])
            out.append("slept")
        elif kind == "hooks":
            out.append(list(await asyncio.gather(*(_hook(key, h) for h in op["hooks"]))))
        elif kind == "child":
            out.append(await start_child_workflow(child, key, op["id"], op["ops"]))
        else:
            continue_as_new(key, ops[i + 1 :], out)
    return out


# --- programs and what they imply ----------------------------------------------------------------

SLEEPS = st.sampled_from([1.0, 3600.0, 3 * 86400.0]).map(lambda s: {"op": "sleep", "seconds": s})
STEPS = st.just({"op": "step"})
HOOK_SPECS = st.one_of(
    st.sampled_from([None, "30d"]).map(lambda t: {"deliver": True, "timeout": t}),
    st.sampled_from(["1m", "2h"]).map(lambda t: {"deliver": False, "timeout": t}),
)
HOOK_GROUPS = st.lists(HOOK_SPECS, min_size=1, max_size=3).map(
    lambda hs: {"op": "hooks", "hooks": hs}
)
OPERATIONS = st.one_of(
    STEPS,
    SLEEPS,
    HOOK_GROUPS,
    HOOK_GROUPS,  # twice as likely: hooks are what this test is about
    st.lists(st.one_of(STEPS, SLEEPS), max_size=3).map(lambda ops: {"op": "child", "ops": ops}),
    st.just({"op": "continue"}),
)


def _number(ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give every step, hook and child an id of its own (fresh dicts: strategies share them)."""
    counter = iter(range(1, 1000))
    out = []
    for op in ops:
        op = {**op}
        if op["op"] == "step":
            op["id"] = next(counter)
        elif op["op"] == "hooks":
            op["hooks"] = [{**h, "id": next(counter)} for h in op["hooks"]]
        elif op["op"] == "child":
            op["id"] = next(counter)
            op["ops"] = [
                {**o, "id": n} if o["op"] == "step" else o for n, o in enumerate(op["ops"])
            ]
        out.append(op)
    return out


def payload_of(hook_id: int) -> dict[str, int]:
    return {"hook": hook_id}


def expected_result(ops: list[dict[str, Any]]) -> list[Any]:
    out: list[Any] = []
    for op in ops:
        if op["op"] == "step":
            out.append(f"s{op['id']}")
        elif op["op"] == "sleep":
            out.append("slept")
        elif op["op"] == "hooks":
            out.append([payload_of(h["id"]) if h["deliver"] else "expired" for h in op["hooks"]])
        elif op["op"] == "child":
            out.append(
                [f"sc{op['id']}.{o['id']}" if o["op"] == "step" else "slept" for o in op["ops"]]
            )
    return out


@dataclass
class Scenario:
    ops: list[dict[str, Any]]
    actions: list[tuple[str, int]]  # ("deliver" | "again", hook id), ("restart" | "cancel", 0)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    ops = _number(draw(st.lists(OPERATIONS, min_size=1, max_size=6)))
    actions: list[tuple[str, int]] = []
    for op in ops:
        if op["op"] != "hooks":
            continue
        delivered = [h["id"] for h in op["hooks"] if h["deliver"]]
        for hook_id in draw(st.permutations(delivered)):
            actions.append(("deliver", hook_id))
            if draw(st.integers(0, 3)) == 0:
                actions.append(("again", hook_id))
    for _ in range(draw(st.integers(0, 2))):
        actions.insert(draw(st.integers(0, len(actions))), ("restart", 0))
    if draw(st.integers(0, 3)) == 0:
        actions.insert(draw(st.integers(0, len(actions))), ("cancel", 0))
    return Scenario(ops, actions)


# --- playing a scenario --------------------------------------------------------------------------


@dataclass
class Played:
    run_id: str = ""
    cancelled: bool = False  # a cancel request was accepted
    restarts: int = 0
    deliveries: Counter[int] = field(default_factory=Counter)  # successful resume_hook calls


class Outside:
    """Environments opened one after another on one storage, and what was done to the run."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.env: WorkflowEnvironment | None = None

    async def open(self) -> WorkflowEnvironment:
        start = None if self.env is None else self.env.now()
        self.env = WorkflowEnvironment(self.storage, start_time=start)
        await self.env.__aenter__()
        return self.env

    async def close(self) -> None:
        if self.env is not None:
            await self.env.__aexit__(None, None, None)


async def reach_hook(env: WorkflowEnvironment, key: str, hook_id: int) -> str | None:
    """The token of hook ``hook_id`` once it waits in storage, moving time on; None if never."""
    name = f"h{hook_id}"
    for _ in range(40):
        await env.advance(0)
        handed = TOKENS.get(f"{key}/{hook_id}")
        rows = [h for h in await list_hooks(limit=1000) if h.name == name]
        if handed and rows:
            return handed[-1] if rows[0].status is HookStatus.WAITING else None
        runs = await pyworkflow.list_workflow_runs(workflow_name="top_program", limit=1000)
        if all(r.status.is_terminal for r in runs):
            return None  # the program ended (cancelled) before it got there
        await env.advance("1d")
    raise AssertionError(f"hook {name} never created")


async def current_run(first: str) -> str:
    return (await pyworkflow.get_workflow_chain(first))[-1].run_id


async def play(storage: Storage, scenario: Scenario, key: str) -> Played:
    played = Played()
    outside = Outside(storage)
    env = await outside.open()
    try:
        played.run_id = await env.start(program, key, scenario.ops, [])
        for action, hook_id in scenario.actions:
            if action == "restart":
                await env.advance(0)  # at a quiet point (test_a_restart_... covers the others)
                await outside.close()
                env = await outside.open()
                played.restarts += 1
            elif action == "cancel":
                await env.advance(0)
                target = await current_run(played.run_id)
                played.cancelled = await pyworkflow.cancel_workflow(target, reason="random")
            elif action == "again":
                handed = TOKENS.get(f"{key}/{hook_id}")
                if not played.deliveries[hook_id] or not handed:
                    continue  # the first delivery never happened (the run was cancelled)
                try:
                    await resume_hook(handed[-1], {"again": hook_id})
                except (HookAlreadyReceivedError, HookNotFoundError):
                    pass  # NotFound: the run has ended meanwhile
                else:
                    raise AssertionError(f"a second delivery of hook {hook_id} went in")
            else:
                hook_token = await reach_hook(env, key, hook_id)
                if hook_token is None:
                    assert played.cancelled, f"hook {hook_id} never waited, yet no cancel"
                    continue
                try:
                    await resume_hook(hook_token, payload_of(hook_id))
                except HookNotFoundError:
                    assert played.cancelled, "only a cancelled run refuses a first delivery"
                else:
                    played.deliveries[hook_id] += 1
        status = await settle(env, played.run_id)
        event(f"ended {status.value}, restarts {played.restarts}")
        await check(scenario, played, key)
    finally:
        await outside.close()
    return played


async def settle(env: WorkflowEnvironment, first: str) -> RunStatus:
    """Wait (skipping time) for the program's chain and every child to end; the last status."""
    with contextlib.suppress(WorkflowCancelledError):
        await env.result(first, timeout=5)
    for run in await pyworkflow.list_workflow_runs(workflow_name="top_child", limit=1000):
        with contextlib.suppress(WorkflowCancelledError):
            await env.result(run.run_id, timeout=5)
    return (await pyworkflow.get_workflow_chain(first))[-1].status


async def check(scenario: Scenario, played: Played, key: str) -> None:
    chain = await pyworkflow.get_workflow_chain(played.run_id)
    last = chain[-1]
    expected = expected_result(scenario.ops)
    if played.cancelled:
        assert last.status is RunStatus.CANCELLED, last
    else:
        assert last.status is RunStatus.COMPLETED, last
        assert last.result == expected
    assert all(r.status is RunStatus.CONTINUED_AS_NEW for r in chain[:-1])

    received: Counter[str] = Counter()
    children: list[pyworkflow.WorkflowRun] = []
    for run in chain:
        events = await pyworkflow.get_workflow_events(run.run_id)
        assert_log_well_formed(events)
        received.update(e.data["hook_id"] for e in events if e.type is EventType.HOOK_RECEIVED)
        started = [e for e in events if e.type is EventType.CHILD_WORKFLOW_STARTED]
        children += [await pyworkflow.get_workflow_run(e.data["child_run_id"]) for e in started]

    # Hooks: one payload each, the one delivered; tokens stable over replays.
    assert all(n == 1 for n in received.values()), received
    assert all(n == 1 for n in played.deliveries.values()), played.deliveries
    assert set(received) <= {f"hook:h{h}#1" for h in played.deliveries}
    if not played.cancelled:
        assert set(received) == {f"hook:h{h}#1" for h in played.deliveries}
    for name, handed in TOKENS.items():
        if name.startswith(f"{key}/"):
            assert len(set(handed)) == 1, f"hook {name} got {len(set(handed))} tokens"

    # Children: each started once, all ended, all of this program.
    every_child = await pyworkflow.list_workflow_runs(workflow_name="top_child", limit=1000)
    mine = [r for r in every_child if r.parent_run_id in {c.run_id for c in chain}]
    assert sorted(r.run_id for r in mine) == sorted(c.run_id for c in children)
    cids = Counter(r.run_id for r in children)
    assert all(n == 1 for n in cids.values())
    assert all(r.status in (RunStatus.COMPLETED, RunStatus.CANCELLED) for r in mine), mine
    for kid in mine:
        assert_log_well_formed(await pyworkflow.get_workflow_events(kid.run_id))
    if not played.cancelled:
        assert len(mine) == sum(op["op"] == "child" for op in scenario.ops)
        assert all(r.status is RunStatus.COMPLETED for r in mine)

    event(f"chain of {len(chain)}, {len(mine)} children, {len(received)} hooks received")

    # Steps: never twice.
    ran = {label: n for (k, label), n in EXECUTED.items() if k == key}
    assert all(n == 1 for n in ran.values()), ran


def assert_log_well_formed(events: list[pyworkflow.WorkflowEvent]) -> None:
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].type is EventType.WORKFLOW_STARTED
    ends = [
        e
        for e in events
        if e.type.value.startswith("workflow_") and e.type is not EventType.WORKFLOW_STARTED
    ]
    assert len(ends) == 1, [e.type for e in events]
    assert ends[0] is events[-1]


def run_scenario(make_storage: Any, scenario: Scenario) -> None:
    async def go() -> None:
        storage = make_storage()
        await storage.open()
        try:
            await play(storage, scenario, uuid.uuid4().hex)
        finally:
            await storage.close()

    asyncio.run(go())


# PW_PROPERTY_SCALE=20 runs twenty times as many examples, for a longer hunt.
SCALE = int(os.environ.get("PW_PROPERTY_SCALE", "1"))
PROPERTY_SETTINGS: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow],
}


@settings(max_examples=250 * SCALE, **PROPERTY_SETTINGS)
@given(scenario=scenarios())
def test_programs_on_memory_storage(scenario: Scenario) -> None:
    run_scenario(MemoryStorage, scenario)


@settings(max_examples=40 * SCALE, **PROPERTY_SETTINGS)
@given(scenario=scenarios())
def test_programs_on_sqlite_storage(scenario: Scenario) -> None:
    with tempfile.TemporaryDirectory() as directory:
        run_scenario(lambda: SQLiteStorage(str(Path(directory) / "p.db")), scenario)


async def test_a_restart_right_after_a_start_loses_no_run() -> None:
    # The executor stops before the new run's driver had its first turn: the run must be
    # handed back like any other, not stay leased to an executor that is gone.
    outside = Outside(MemoryStorage())
    env = await outside.open()
    try:
        run_id = await env.start(program, uuid.uuid4().hex, [{"op": "step", "id": 1}], [])
        await outside.close()
        env = await outside.open()
        assert await env.result(run_id, timeout=5) == ["s1"]
    finally:
        await outside.close()
