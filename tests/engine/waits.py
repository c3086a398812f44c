"""What the engine tests wait for from outside a run, and how they change its process.

The token each ``on_created`` call was handed (``TOKENS``, filled by ``keep``), a hook's token
once its row waits in storage, a run's children; a restart of the test environment, and its
horizon. Each wait polls a condition (storage, or what a step recorded), never a fixed time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import defaultdict
from collections.abc import Callable

import pyworkflow
from pyworkflow import EventType, HookStatus, RunStatus, list_hooks
from pyworkflow import runtime as pw_runtime
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import RunRecord
from pyworkflow.testing import WorkflowEnvironment

from .run_log import wait_status

# Every token each on_created call was handed, keyed "<test token>/<hook name>".
TOKENS: dict[str, list[str]] = defaultdict(list)


def keep(tok: str, name: str) -> Callable[[str], None]:
    """An ``on_created`` that records its token under ``"<tok>/<name>"``."""

    def on_created(hook_token: str) -> None:
        TOKENS[f"{tok}/{name}"].append(hook_token)

    return on_created


async def hook_token(tok: str, name: str, run_id: str, within: float = 5.0) -> str:
    """The token on_created got for hook ``name``, once its row is waiting in storage."""
    deadline = time.monotonic() + within
    while True:
        handed = TOKENS.get(f"{tok}/{name}")
        rows = [h for h in await list_hooks(run_id=run_id) if h.name == name]
        if handed and rows and rows[0].status is HookStatus.WAITING:
            return handed[-1]
        if time.monotonic() > deadline:
            raise AssertionError(f"hook {name!r} of {run_id} never waiting: {rows}, {handed}")
        await asyncio.sleep(0.01)


async def children_of(storage: Storage, run_id: str) -> list[RunRecord]:
    """The runs whose parent is ``run_id``, oldest first.

    On the virtual clock runs started while no time passes share a creation time: those the
    parent's log names come in its order (CHILD_WORKFLOW_STARTED), before any others.
    """
    logged = {
        event.payload["child_run_id"]: n
        for n, event in enumerate(await storage.load_events(run_id))
        if event.type is EventType.CHILD_WORKFLOW_STARTED
    }
    runs = await storage.list_runs(parent_run_id=run_id, limit=1000)
    return sorted(runs, key=lambda r: (r.created_at, logged.get(r.run_id, len(logged)), r.run_id))


async def child_of(storage: Storage, run_id: str, within: float = 5.0) -> RunRecord:
    """The one child of ``run_id``, once it exists."""
    deadline = time.monotonic() + within
    while not (children := await children_of(storage, run_id)):
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} started no child within {within}s")
        await asyncio.sleep(0.01)
    if len(children) != 1:
        raise AssertionError(f"run {run_id} has {len(children)} children: {children}")
    return children[0]


async def wait_suspended(env: WorkflowEnvironment, run_id: str) -> pyworkflow.WorkflowRun:
    """The run once it is suspended and the work under way has settled.

    A run is SUSPENDED from the commit that makes it wait; a driver that lets go of it does so
    in a commit of its own just after. An outside write landing in between (a cancel, a hook's
    payload) may strand the run until its lease lapses: test_cancel.py has that race, as a
    known failure. The tests that act on a waiting run wait for the letting go first.
    """
    await wait_status(run_id, RunStatus.SUSPENDED)
    await env.advance(0)
    return await pyworkflow.get_workflow_run(run_id)


async def poll(env: WorkflowEnvironment) -> None:
    """Look at storage for due runs now, as a worker's poll would, and let them run.

    The environment's executor does not poll: it looks when its own runs or clock tell it
    to. A child cancelled by its parent's end is due in storage but nothing here is told so
    (a gap of the environment, not of workers, which poll): the tests of that behaviour poll.
    """
    (await pw_runtime.get_runtime()).executor.wake()
    await env.advance(0)


async def set_horizon(seconds: float) -> None:
    """Give the open environment's engine this horizon (DESIGN §2.6), before a run starts.

    A ``WorkflowEnvironment`` keeps every waiting coroutine (an infinite horizon), so that
    skipping a week costs no replay; the engine tests use a finite one, so that a run waiting
    past it is released and claimed again from storage when due, as in production. The engine
    reads its settings at each decision, so replacing them takes effect at once.
    """
    engine = (await pw_runtime.get_runtime()).executor.engine  # type: ignore[attr-defined]
    engine.settings = dataclasses.replace(engine.settings, horizon_seconds=seconds)


async def restart(env: WorkflowEnvironment) -> None:
    """Stop the environment's executor (it hands its runs back) and start a new one.

    As a new worker process would, over the same storage and clock, with the same horizon:
    the runs are replayed from their logs. (Calls such as ``resume_hook`` only write; they do
    not make a process a worker.)
    """
    engine = (await pw_runtime.get_runtime()).executor.engine  # type: ignore[attr-defined]
    horizon = engine.settings.horizon_seconds
    await env.__aexit__(None, None, None)
    await env.__aenter__()
    await set_horizon(horizon)
