"""What the tests of hooks, children and continue-as-new wait for from outside a run.

The token each ``on_created`` call was handed (``TOKENS``, filled by ``keep``), a hook's token
once its row waits in storage, a run's children, and a restart of this process's executor.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable

import pyworkflow
from pyworkflow import HookStatus, list_hooks
from pyworkflow import runtime as pw_runtime
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import RunRecord

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
    """The runs whose parent is ``run_id``, oldest first."""
    return list(reversed(await storage.list_runs(parent_run_id=run_id, limit=1000)))


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


# The restarted workers' serve() tasks: kept so they are not collected while they run.
_SERVING: set[asyncio.Task[None]] = set()


async def restart() -> None:
    """Stop this process's executor (it hands its runs back) and start a new worker.

    As a new worker process would, over the same storage: the runs are replayed from their
    logs. (Calls such as ``resume_hook`` only write; they do not make a process a worker.)
    """
    await (await pw_runtime.get_runtime()).executor.shutdown()
    pyworkflow.configure()  # the next call builds a new executor
    serving = asyncio.create_task((await pw_runtime.get_runtime()).executor.serve())
    _SERVING.add(serving)
    serving.add_done_callback(_SERVING.discard)
