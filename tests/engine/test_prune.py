"""Retention through the public API: ``prune_runs`` and ``configure(retention=...)``.

On the virtual clock and memory storage (conftest.py): runs are made "old" by running them,
then letting ten days pass; real workflows produce the rows and events, so what is pruned is
what users have in their databases. What each backend deletes is the contract suite's
(tests/contract/test_retention.py). The background pruning of ``configure(retention=...)``
runs on a runtime ``configure`` builds, its clock set ten days back (``Shifted``, a wall clock
with an offset) while the old runs run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

import pyworkflow
from pyworkflow import (
    InputError,
    InvalidDurationError,
    RunNotFoundError,
    RunStatus,
    WorkflowFailedError,
    sleep,
    workflow,
)
from pyworkflow.executors.local import LocalExecutor
from pyworkflow.runtime import get_runtime
from pyworkflow.storage.protocol import Storage
from pyworkflow.testing import WorkflowEnvironment

from .recording import call_always_fails, token, two_steps

DAY = 86400.0


@workflow(name="tw_prune_sleeper")
async def sleeper() -> None:
    await sleep("30d")


class Shifted:
    """The wall clock plus ``offset`` seconds (the engine's ``Clock`` protocol)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    async def sleep_until(self, deadline: float) -> None:
        delay = deadline - self.now()
        if delay > 0:
            await asyncio.sleep(delay)


async def executor() -> LocalExecutor:
    found = (await get_runtime()).executor
    assert isinstance(found, LocalExecutor)
    return found


async def old_and_new_runs(ten_days_pass: Callable[[], Awaitable[None]]) -> dict[str, str]:
    """Ten days ago: one run completed, one failed, one went to sleep for 30 days. Now: one ran."""
    tok = token()
    ids = {"completed": await pyworkflow.start(two_steps, tok, 1)}
    assert await pyworkflow.get_workflow_result(ids["completed"], timeout=10) == 3
    ids["failed"] = await pyworkflow.start(call_always_fails, tok)
    with pytest.raises(WorkflowFailedError):
        await pyworkflow.get_workflow_result(ids["failed"], timeout=10)
    ids["sleeping"] = await pyworkflow.start(sleeper)
    await ten_days_pass()
    ids["recent"] = await pyworkflow.start(two_steps, tok, 2)
    assert await pyworkflow.get_workflow_result(ids["recent"], timeout=10) == 5
    assert (await pyworkflow.get_workflow_run(ids["sleeping"])).status is RunStatus.SUSPENDED
    return ids


@pytest.fixture
def ten_days_pass(env: WorkflowEnvironment) -> Callable[[], Awaitable[None]]:
    return lambda: env.advance("10d")


async def test_prune_runs_deletes_old_ended_runs_with_their_events(
    ten_days_pass: Callable[[], Awaitable[None]],
) -> None:
    ids = await old_and_new_runs(ten_days_pass)
    recent_events = await pyworkflow.get_workflow_events(ids["recent"])

    assert await pyworkflow.prune_runs("1d") == 2

    for gone in ("completed", "failed"):
        with pytest.raises(RunNotFoundError):
            await pyworkflow.get_workflow_run(ids[gone])
        with pytest.raises(RunNotFoundError):
            await pyworkflow.get_workflow_events(ids[gone])
    # Ten days old but waiting on its timer: live, kept.
    assert (await pyworkflow.get_workflow_run(ids["sleeping"])).status is RunStatus.SUSPENDED
    assert await pyworkflow.get_workflow_events(ids["recent"]) == recent_events
    listed = {r.run_id for r in await pyworkflow.list_workflow_runs()}
    assert listed == {ids["sleeping"], ids["recent"]}
    assert await pyworkflow.prune_runs(timedelta(days=1)) == 0


async def test_nothing_goes_while_younger_than_the_bound(
    ten_days_pass: Callable[[], Awaitable[None]],
) -> None:
    ids = await old_and_new_runs(ten_days_pass)
    assert await pyworkflow.prune_runs("11d") == 0
    assert await pyworkflow.prune_runs(20 * DAY) == 0
    listed = {r.run_id for r in await pyworkflow.list_workflow_runs()}
    assert listed == set(ids.values())


async def test_prune_runs_goes_in_batches_and_reports_progress(env: WorkflowEnvironment) -> None:
    tok = token()
    old = [await pyworkflow.start(two_steps, tok, i) for i in range(5)]
    for run_id in old:
        await pyworkflow.get_workflow_result(run_id, timeout=10)
    await env.advance("2d")
    progress: list[int] = []
    assert await pyworkflow.prune_runs("1d", batch_size=2, on_progress=progress.append) == 5
    assert progress == [2, 4, 5]
    assert await pyworkflow.list_workflow_runs() == []


# Bad input is refused before storage is touched. The run just ended, so a bad value read as
# "0s" would delete it.


@pytest.mark.parametrize("older_than", ["5 parsecs", "-1d", float("nan"), "", None])
async def test_a_bad_duration_deletes_nothing(env: WorkflowEnvironment, older_than: object) -> None:
    run_id = await pyworkflow.start(two_steps, token(), 1)
    await pyworkflow.get_workflow_result(run_id, timeout=10)
    with pytest.raises(InvalidDurationError) as info:
        await pyworkflow.prune_runs(older_than)  # type: ignore[arg-type]
    assert repr(older_than) in str(info.value)
    assert info.value.value is older_than
    assert (await pyworkflow.get_workflow_run(run_id)).status is RunStatus.COMPLETED


@pytest.mark.parametrize("batch_size", [0, -5, True, 2.5])
async def test_a_bad_batch_size_deletes_nothing(
    env: WorkflowEnvironment, batch_size: object
) -> None:
    run_id = await pyworkflow.start(two_steps, token(), 1)
    await pyworkflow.get_workflow_result(run_id, timeout=10)
    with pytest.raises(InputError, match="batch_size"):
        await pyworkflow.prune_runs(0, batch_size=batch_size)  # type: ignore[arg-type]
    assert (await pyworkflow.get_workflow_run(run_id)).status is RunStatus.COMPLETED


async def test_configured_retention_prunes_in_the_background(pw_memory: Storage) -> None:
    pyworkflow.configure(retention="1d")
    clock = Shifted()
    runner = await executor()
    assert runner.retention == DAY
    runner.engine.clock = clock
    runner.retention_interval = 0.05  # "hourly", sped up
    clock.offset = -10 * DAY

    async def ten_days_pass() -> None:
        clock.offset = 0.0

    ids = await old_and_new_runs(ten_days_pass)
    deadline = time.monotonic() + 10
    while len(await pyworkflow.list_workflow_runs()) > 2:
        assert time.monotonic() < deadline, await pyworkflow.list_workflow_runs()
        await asyncio.sleep(0.02)
    listed = {r.run_id for r in await pyworkflow.list_workflow_runs()}
    assert listed == {ids["sleeping"], ids["recent"]}


def test_configure_refuses_a_bad_retention() -> None:
    with pytest.raises(InvalidDurationError, match="'forever'"):
        pyworkflow.configure(retention="forever")
