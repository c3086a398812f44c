"""Workflows that the `pyworkflow hooks` and `runs children|chain` tests drive into their states.

The tests run the CLI in their own process (click's CliRunner), so this module is imported
there once, from tests/cli (on ``sys.path`` as the test files' directory): typed hook payloads
are recorded as ``familycli_flows:Approval`` and import by that path. ``seed`` fills an SQLite
file with runs in every state the tests read; ``finish`` drives a run to its end afterwards, as
a worker would.

Seeded runs, by key: ``glanced`` (its ``glance`` hook expired, its ``approval`` hook waits),
``inline``/``stdin``/``file`` (an ``approval`` hook waits each), ``done`` (approval delivered,
completed), ``note`` (an untyped ``note`` hook waits), ``parent`` (four children: one abandoned
and still sleeping, one cancelled when the parent ended, one failed, one completed), and the
continue-as-new chain ``chain_1`` ... ``chain_4`` of ``familycli_countdown(3)``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyworkflow
from pyworkflow import (
    ChildWorkflowFailedError,
    FatalError,
    HookExpiredError,
    continue_as_new,
    define_hook,
    hook,
    sleep,
    start_child_workflow,
    step,
    workflow,
)
from pyworkflow.runtime import get_runtime

TOKENS: dict[tuple[str, str], str] = {}
"""``(doc, hook name) -> token``, as ``on_created`` hands the tokens out."""


@dataclass
class Approval:
    approved: bool
    reviewer: str


approval = define_hook("approval", Approval)


def remember(doc: str, name: str) -> Callable[[str], None]:
    def keep(token: str) -> None:
        TOKENS[(doc, name)] = token

    return keep


@workflow()
async def familycli_review(doc: str, glance: float | None = None) -> dict[str, Any]:
    if glance is not None:
        with contextlib.suppress(HookExpiredError):
            await hook("glance", timeout=glance, on_created=remember(doc, "glance"))
    decision = await approval(on_created=remember(doc, "approval"))
    return {"doc": doc, "approved": decision.approved, "by": decision.reviewer}


@workflow()
async def familycli_note(doc: str) -> Any:
    return await hook("note", on_created=remember(doc, "note"))


@workflow()
async def familycli_leaf(n: int) -> int:
    return n * 10


@step(max_retries=0)
async def familycli_refuse() -> None:
    raise FatalError("out of stock")


@workflow()
async def familycli_broken() -> None:
    await familycli_refuse()


@workflow()
async def familycli_lingering(n: int) -> int:
    await sleep(3600)
    return n


@workflow()
async def familycli_parent(n: int) -> dict[str, Any]:
    await start_child_workflow(
        familycli_lingering, n, wait_for_completion=False, parent_close_policy="abandon"
    )
    await start_child_workflow(familycli_lingering, n + 1, wait_for_completion=False)
    try:
        await start_child_workflow(familycli_broken)
    except ChildWorkflowFailedError as exc:
        failed = exc.error_message
    return {"leaf": await start_child_workflow(familycli_leaf, n), "failed": failed}


@workflow()
async def familycli_countdown(n: int) -> str:
    if n > 0:
        continue_as_new(n - 1)
    return "liftoff"


async def _until(check: Callable[[], Any], what: str) -> None:
    for _ in range(400):
        if await check():
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"timed out waiting for {what}")


async def seed(url: str) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """Run the module docstring's runs on the storage at ``url``: their ids by key, and tokens."""
    TOKENS.clear()
    pyworkflow.configure(storage=url)
    ids = {"glanced": await pyworkflow.start(familycli_review, "glanced", glance=0.2)}
    for doc in ("inline", "stdin", "file", "done"):
        ids[doc] = await pyworkflow.start(familycli_review, doc)
    ids["note"] = await pyworkflow.start(familycli_note, "note")
    ids["parent"] = await pyworkflow.start(familycli_parent, 4)
    assert await pyworkflow.get_workflow_result(ids["parent"]) == {
        "leaf": 40,
        "failed": "out of stock",
    }
    first = await pyworkflow.start(familycli_countdown, 3)
    assert await pyworkflow.get_workflow_result(first) == "liftoff"
    chain = await pyworkflow.get_workflow_chain(first)
    ids.update({f"chain_{i}": run.run_id for i, run in enumerate(chain, start=1)})

    async def hooks_issued() -> bool:
        expired = await pyworkflow.list_hooks(run_id=ids["glanced"], status="expired")
        return len(TOKENS) == 7 and len(expired) == 1

    await _until(hooks_issued, "the hooks to be issued and the glance to expire")
    await pyworkflow.resume_hook(TOKENS[("done", "approval")], Approval(True, "bo"))
    assert (await pyworkflow.get_workflow_result(ids["done"]))["by"] == "bo"

    async def all_waiting() -> bool:
        runs = [await pyworkflow.get_workflow_run(ids[k]) for k in ("glanced", "inline", "note")]
        return all(r.status.value == "suspended" for r in runs)

    await _until(all_waiting, "the hook runs to suspend")
    await pyworkflow.shutdown()  # hands the waiting runs back to storage
    return ids, dict(TOKENS)


async def finish(url: str, run_id: str) -> Any:
    """Drive ``run_id`` to its end on the storage at ``url``, as a worker would; its result."""
    pyworkflow.configure(storage=url)
    runtime = await get_runtime()
    runtime.executor.serve_in_background()  # claim due runs, as a worker does
    try:
        return await pyworkflow.get_workflow_result(run_id, timeout=20)
    finally:
        await pyworkflow.shutdown()
