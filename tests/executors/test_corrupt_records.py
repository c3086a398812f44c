"""A run whose stored record cannot be read ends failed with the damage named; nothing else stops.

Each test stores runs, damages cells of some behind pyworkflow's back (a real SQLite file through
``sqlite3``, a real PostgreSQL row through asyncpg: tests/corrupt_cells.py), then runs a real
local worker in this process (``LocalExecutor.serve()``, as ``pyworkflow worker run`` does) and
checks what a user would: the worker is still serving, the other runs completed, the damaged run
failed once with ``CorruptRecordError`` naming the table, the run and the column, and it is not
taken over again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import pytest

import pyworkflow
from corrupt_cells import TRUNCATED_JSON, WRONG_TYPE_JSON, add_run, set_cell
from pyworkflow import CorruptRecordError, RunStatus, WorkflowFailedError
from pyworkflow._engine import new_events
from pyworkflow.executors.local import LocalExecutor
from pyworkflow.runtime import get_runtime
from pyworkflow.storage import RunRecord, Storage
from pyworkflow.storage.records import AppendWrite

CORRUPT = "pyworkflow.exceptions.CorruptRecordError"

cell_backends = pytest.mark.parametrize("pw", ["sqlite", "postgres"], indirect=True)
"""The backends that store cells a byte can damage (memory storage keeps Python objects)."""


@pyworkflow.step(name="cr_double")
async def double(n: int) -> int:
    return 2 * n


@pyworkflow.workflow(name="cr_doubling")
async def doubling(n: int) -> int:
    return await double(n)


@asynccontextmanager
async def _serving() -> AsyncIterator[asyncio.Task[None]]:
    """A local worker on the configured storage, as ``pyworkflow worker run`` runs one."""
    runtime = await get_runtime()
    executor = runtime.executor
    assert isinstance(executor, LocalExecutor)
    executor.poll_interval = 0.05
    task = asyncio.create_task(executor.serve(), name="test-serve")
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _ended(
    storage: Storage, run_ids: Iterable[str], serving: asyncio.Task[None], within: float = 15.0
) -> dict[str, RunRecord]:
    """Each run's record once every one has ended; fails at once if the worker stops serving."""
    deadline = time.monotonic() + within
    while True:
        assert not serving.done(), f"the worker stopped serving: {serving.exception()!r}"
        records = {run_id: await storage.get_run(run_id) for run_id in run_ids}
        if all(r is not None and r.status.is_terminal for r in records.values()):
            return {k: v for k, v in records.items() if v is not None}
        live = {k: v.status.value for k, v in records.items() if v and not v.status.is_terminal}
        assert time.monotonic() < deadline, f"still live after {within}s: {live}"
        await asyncio.sleep(0.05)


def _assert_failed_for(record: RunRecord, table: str, column: str, *more: str) -> None:
    assert record.status is RunStatus.FAILED, record
    assert record.error is not None
    assert record.error["type"] == CORRUPT, record.error
    message = record.error["message"]
    for word in (table, column, record.run_id, *more):
        assert word in message, (word, message)
    # Failed at its first claim, not after crashing its worker until the recovery limit.
    assert record.recovery_count == 0
    # Ended for good: out of the runnable index, its lease released.
    assert (record.wake_at, record.lease_owner) == (None, None)


@cell_backends
async def test_a_corrupt_args_cell_fails_its_run_and_the_worker_drives_the_others(
    pw: Storage,
) -> None:
    healthy = [await add_run(pw, "cr_doubling", n) for n in range(5)]
    truncated = await add_run(pw, "cr_doubling", 100)
    wrong_type = await add_run(pw, "cr_doubling", 200)
    await set_cell(pw, "runs", "args", TRUNCATED_JSON, run_id=truncated)
    await set_cell(pw, "runs", "args", WRONG_TYPE_JSON, run_id=wrong_type)
    async with _serving() as serving:
        # One claim takes all seven: the damaged rows come back with the healthy ones.
        records = await _ended(pw, [*healthy, truncated, wrong_type], serving)
        later = await add_run(pw, "cr_doubling", 7)
        (after,) = (await _ended(pw, [later], serving)).values()
        assert not serving.done()
    for n, run_id in enumerate(healthy):
        assert records[run_id].status is RunStatus.COMPLETED
        assert records[run_id].result == 2 * n
    assert after.status is RunStatus.COMPLETED
    _assert_failed_for(records[truncated], "runs", "args", "not valid JSON")
    _assert_failed_for(records[wrong_type], "runs", "args", "12345")
    with pytest.raises(WorkflowFailedError) as info:
        await pyworkflow.get_workflow_result(truncated)
    assert info.value.error_type == CORRUPT
    assert "runs.args" in info.value.error_message


@cell_backends
async def test_corrupt_event_payloads_fail_their_runs_on_replay(pw: Storage) -> None:
    healthy = [await add_run(pw, "cr_doubling", n) for n in range(3)]
    truncated = await add_run(pw, "cr_doubling", 100)
    wrong_type = await add_run(pw, "cr_doubling", 200)
    await set_cell(pw, "events", "payload", TRUNCATED_JSON, run_id=truncated, seq=1)
    await set_cell(pw, "events", "payload", WRONG_TYPE_JSON, run_id=wrong_type, seq=1)
    async with _serving() as serving:
        records = await _ended(pw, [*healthy, truncated, wrong_type], serving)
        assert not serving.done()
    assert all(records[r].status is RunStatus.COMPLETED for r in healthy)
    _assert_failed_for(records[truncated], "events", "payload", "seq 1")
    _assert_failed_for(records[wrong_type], "events", "payload", "seq 1", "12345")


@cell_backends
async def test_a_run_with_wrong_typed_args_fails_at_once_rather_than_looping(
    pw: Storage,
) -> None:
    # Short leases: a driver that crashed on the run would have it taken over every 0.5 s.
    pyworkflow.configure(lease_seconds=0.5, max_recoveries=3)
    run_id = await add_run(pw, "cr_doubling", 1)
    await set_cell(pw, "runs", "args", WRONG_TYPE_JSON, run_id=run_id)
    async with _serving() as serving:
        (record,) = (await _ended(pw, [run_id], serving, within=5.0)).values()
        await asyncio.sleep(1.5)  # three leases' worth: nobody takes it again
        assert not serving.done()
    again = await pw.get_run(run_id)
    assert again is not None
    _assert_failed_for(again, "runs", "args", "12345")
    assert (again.updated_at, again.last_seq) == (record.updated_at, record.last_seq)


@pytest.mark.parametrize("pw", ["sqlite"], indirect=True)
async def test_a_worker_survives_an_unexpected_error_while_claiming(
    pw: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    # A run leased by a dead worker whose lease expiry, a REAL cell, SQLite keeps as text: the
    # query for the next wake-up returns that text as is, at every look.
    stuck = await add_run(pw, "cr_doubling", 0)
    await set_cell(pw, "runs", "lease_owner", "dead-worker", run_id=stuck)
    await set_cell(pw, "runs", "lease_expires_at", "tomorrow", run_id=stuck)
    first = [await add_run(pw, "cr_doubling", n) for n in range(3)]
    caplog.set_level(logging.ERROR, logger="pyworkflow.executor")

    def logged() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "pyworkflow.executor" and r.exc_info]

    async with _serving() as serving:
        done = await _ended(pw, first, serving)
        # The text comes back once it is the earliest wake-up time: with no other run live.
        deadline = time.monotonic() + 15
        while not logged():
            assert time.monotonic() < deadline, (
                "the unexpected error was not logged with its traceback"
            )
            assert not serving.done(), f"the worker stopped serving: {serving.exception()!r}"
            await asyncio.sleep(0.05)
        # The claim loop went on after the error: it still claims runs created afterwards.
        second = [await add_run(pw, "cr_doubling", n) for n in range(3)]
        done.update(await _ended(pw, second, serving))
        assert not serving.done()
    assert all(r.status is RunStatus.COMPLETED for r in done.values())
    assert "claiming runs" in logged()[0].getMessage()


@pyworkflow.workflow(name="cr_gone")
async def gone(thing: Any) -> Any:
    return thing


@pytest.mark.parametrize("pw", ["memory", "sqlite", "postgres"], indirect=True)
async def test_a_run_whose_driver_crashes_before_replay_ends_failed_after_its_recoveries(
    pw: Storage,
) -> None:
    # Arguments naming a class that is gone (deployed away): decoding them raises in the driver
    # before the run's first turn, on every take-over. Not corruption: another worker may still
    # have the class, so the run gets its recoveries, and then it fails.
    pyworkflow.configure(lease_seconds=0.3, max_recoveries=2)
    thing = {"__pw__": "dataclass", "cls": "cr_gone_module:Thing", "fields": {}}
    run_id = await add_run(pw, "cr_gone", call={"args": [thing], "kwargs": {}})
    healthy = await add_run(pw, "cr_doubling", 4)
    async with _serving() as serving:
        records = await _ended(pw, [run_id, healthy], serving, within=10.0)
        assert not serving.done()
    assert records[healthy].status is RunStatus.COMPLETED
    record = records[run_id]
    assert record.status is RunStatus.FAILED
    assert record.error is not None
    assert record.error["type"] == "RecoveryLimitExceeded"
    assert "taken over 3 times" in record.error["message"]


@pyworkflow.workflow(name="cr_napper")
async def napper() -> str:
    await pyworkflow.sleep("1h")
    return "rested"


@pyworkflow.workflow(name="cr_parent")
async def parent() -> str:
    try:
        return f"child returned {await pyworkflow.start_child_workflow(napper)!r}"
    except pyworkflow.ChildWorkflowFailedError as exc:
        return f"child failed: {exc.error_type}: {exc.error_message}"


async def _until(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"not within {within}s"
        await asyncio.sleep(0.02)


@cell_backends
async def test_a_run_whose_outcome_cannot_be_read_is_failed_for_its_waiters(
    pw: Storage,
) -> None:
    runtime = await get_runtime()
    executor = runtime.executor
    assert isinstance(executor, LocalExecutor)
    executor.poll_interval = 0.05
    parent_id = await pyworkflow.start(parent)

    async def both_suspended() -> bool:
        children = await pw.list_runs(parent_run_id=parent_id, limit=1)
        runs = [await pw.get_run(parent_id), *children]
        return len(runs) == 2 and all(r and r.status is RunStatus.SUSPENDED for r in runs)

    await _until(both_suspended)
    (child,) = await pw.list_runs(parent_run_id=parent_id, limit=1)
    # The child completes elsewhere (no claims here meanwhile), then its result cell is damaged.
    executor.max_concurrent_runs = 0
    now = time.time()
    (taken,) = await pw.claim_runs(
        owner="elsewhere", now=now, lease_expires_at=now + 60, limit=1,
        run_ids=[child.run_id], due_only=False,
    )  # fmt: skip
    status, ended = new_events.workflow_ended(cancelled=False, error=None, result=7, reason=None)
    await pw.append(
        AppendWrite(child.run_id, "elsewhere", taken.last_seq, [ended], now, status, result=7)
    )
    await set_cell(pw, "runs", "result", TRUNCATED_JSON, run_id=child.run_id)
    executor.max_concurrent_runs = 1000
    executor.wake()

    told = await pyworkflow.get_workflow_result(parent_id, timeout=10)
    assert told.startswith(f"child failed: {CORRUPT}: corrupt runs.result of run {child.run_id!r}")
    with pytest.raises(CorruptRecordError) as info:
        await pyworkflow.get_workflow_result(child.run_id)
    assert (info.value.table, info.value.column) == ("runs", "result")
    view = await pyworkflow.get_workflow_run(child.run_id)
    assert view.status is RunStatus.COMPLETED
    assert view.result is None
    assert view.damage is not None
    assert "runs.result" in view.damage
