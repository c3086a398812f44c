"""What a signal costs a stream run on SQLite, in commits (issue 20's round-trip target).

A step of a sequential run costs one commit (its completion with the next command). To a
stream run that waits for a signal, the emit hands the batch it took in the same transaction
(the hook's payload), so no take runs before the delivery; the execution runs inside a batch
step (one step, and so one commit, a batch rather than a step each for the take and the
execution); and the next batch step's take, being idempotent, starts alongside the commit that
logs its start and shares that transaction (``early_step``). Delivering one signal to a waiting
stream run and settling again costs six transactions that write; it cost nine before the first
two. To a busy stream run a signal costs one (``benchmarks/b13_streams.py``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import pyworkflow
from pyworkflow import stream_step, stream_workflow, workflow
from pyworkflow.events import EventType
from pyworkflow.storage import SQLiteStorage
from pyworkflow.storage.sqlite import _storage as sqlite_module
from pyworkflow.streams import get_current_signal, run_stream_workflow, terminate

STREAM_RUN_ID = "commits-1"


@stream_workflow(name="tc_echo")
async def tc_echo() -> None:
    """No opening signal."""


@stream_step(stream="tc_echo", signals=["ping", "stop"])
async def tc_echoer() -> None:
    signal = await get_current_signal()
    if signal is not None and signal.signal_type == "stop":
        await terminate()


@workflow(name="tc_echo_parent")
async def tc_echo_parent(stream_run_id: str) -> str:
    return (await run_stream_workflow(tc_echo, stream_run_id=stream_run_id)).status


async def settled(storage: SQLiteStorage, waits: int) -> list[Any]:
    """The driving run's log once it has armed its ``waits``-th wait for a signal."""
    for _ in range(2000):
        record = await storage.get_stream_run(STREAM_RUN_ID)
        if record is not None:
            events = await pyworkflow.get_workflow_events(record.run_id)
            armed = [
                e
                for e in events
                if e.type is EventType.STEP_COMPLETED
                and e.data["step_id"].startswith("pyworkflow.stream.arm#")
            ]
            if len(armed) >= waits:
                return events
        await asyncio.sleep(0.005)
    raise AssertionError("the driving run never waited for a signal")


async def test_a_signal_to_a_waiting_stream_run_costs_six_transactions(
    pw_sqlite: SQLiteStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = await pyworkflow.start(tc_echo_parent, STREAM_RUN_ID)
    before = len(await settled(pw_sqlite, 1))
    writes: list[int] = []
    run_batch = sqlite_module._run_batch

    def counting(conn: Any, raw: Any, batch: list[Any], url: str) -> None:
        changes = raw.total_changes
        run_batch(conn, raw, batch, url)
        if raw.total_changes != changes:  # a transaction that wrote: a durable commit
            writes.append(len(batch))

    monkeypatch.setattr(sqlite_module, "_run_batch", counting)
    await pyworkflow.emit("tc_echo", "ping", {}, stream_run_id=STREAM_RUN_ID)
    events = await settled(pw_sqlite, 2)
    monkeypatch.setattr(sqlite_module, "_run_batch", run_batch)

    names = [(e.type.value, e.data.get("step_id", "")) for e in events[before:]]
    assert names == [
        ("hook_received", ""),
        ("step_started", "pyworkflow.stream.batch#3"),
        ("step_completed", "pyworkflow.stream.batch#3"),
        ("step_started", "pyworkflow.stream.batch#4"),
        ("step_completed", "pyworkflow.stream.batch#4"),
        ("hook_created", ""),
        ("step_started", "pyworkflow.stream.arm#2"),
        ("step_completed", "pyworkflow.stream.arm#2"),
    ]
    # The emit, which takes the batch and hands it over in the hook's payload; the payload
    # with the start of the batch step that runs the delivery; its outcome with the start of
    # the next batch step, and that step's take; its result (nothing to deliver) with the
    # wait's hook and the arm's start; the arm; the arm's result.
    assert len(writes) == 6, writes
    await pyworkflow.emit("tc_echo", "stop", None, stream_run_id=STREAM_RUN_ID)
    assert await pyworkflow.get_workflow_result(parent, timeout=10) == "completed"
