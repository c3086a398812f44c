"""How stream step executions run: in the driving run's batch step; as a step if they raise.

What a user checks: an execution that raises runs again after its retry delay and counts once,
and what it emitted before raising is stored once; one that keeps raising ends its stream step
``failed`` after ``max_retries`` retries (none with ``max_retries=0``, none after a
FatalError); a result that cannot be stored fails that execution alone, not the others of its
batch; and no execution runs before its batch step's start is in storage.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from datetime import timedelta
from typing import Any

import pyworkflow
from pyworkflow import FatalError, emit, stream_step, stream_workflow, workflow
from pyworkflow.events import EventType
from pyworkflow.step_context import get_step_context
from pyworkflow.storage import MemoryStorage
from pyworkflow.storage.streams import StreamStore
from pyworkflow.streams import (
    get_checkpoint,
    get_current_signal,
    run_stream_workflow,
    save_checkpoint,
    set_result,
    terminate,
)
from pyworkflow.testing import WorkflowEnvironment

from .test_streams import settled_stream

EXECUTIONS: dict[tuple[str, str, int | None], int] = defaultdict(int)
"""(stream run id, step, signal seq) -> how often an execution for it began."""
CONTEXTS: dict[tuple[str, int | None], list[tuple[str, int]]] = defaultdict(list)
"""(stream run id, signal seq) -> each execution's (idempotency key, attempt) of tx_flaky."""
STARTED_IN_STORAGE: list[bool] = []
"""For each execution of ``tx_watcher``: was its batch step's start in storage?"""


def _count(step: str, signal: Any) -> int:
    key = (signal.stream_run_id, step, signal.sequence)
    EXECUTIONS[key] += 1
    return EXECUTIONS[key]


async def _job() -> Any:
    """The job signal this execution runs for; None at the start and on ``stop`` (terminated)."""
    signal = await get_current_signal()
    if signal is not None and signal.signal_type == "stop":
        await terminate()
        return None
    return signal


@stream_workflow(name="tx_jobs")
async def tx_jobs() -> None:
    """No opening signal."""


@stream_step(stream="tx_jobs", signals=["job", "stop"], max_retries=2)
async def tx_flaky() -> None:
    """Raises ``fails`` times for a job, emitting an audit signal at every execution."""
    signal = await _job()
    if signal is None:
        return
    execution = _count("tx_flaky", signal)
    context = get_step_context()
    CONTEXTS[(signal.stream_run_id, signal.sequence)].append(
        (context.idempotency_key, context.attempt)
    )
    await emit("tx_jobs", "audit", {"job": signal.sequence})
    if execution <= signal.payload.get("fails", 0):
        if signal.payload.get("fatal"):
            raise FatalError("this job can never be done")
        raise RuntimeError(f"execution {execution} of job {signal.sequence} failed")
    done = (await get_checkpoint()) or []
    await save_checkpoint([*done, signal.sequence])
    await set_result({"done": [*done, signal.sequence]})


@stream_step(stream="tx_jobs", signals=["job", "stop"], max_retries=0)
async def tx_brittle() -> None:
    """Never retried: raises for a job marked ``brittle``, stores what it cannot for ``odd``."""
    signal = await _job()
    if signal is None:
        return
    _count("tx_brittle", signal)
    if signal.payload.get("brittle"):
        raise RuntimeError("brittle")
    if signal.payload.get("odd"):
        await set_result(threading.Lock())  # cannot be serialized
    else:
        await set_result({"last": signal.sequence})


@workflow(name="tx_run_jobs")
async def tx_run_jobs(stream_run_id: str) -> dict[str, Any]:
    result = await run_stream_workflow(tx_jobs, stream_run_id=stream_run_id)
    return {"states": result.step_states, "results": result.step_results}


async def _details(env: WorkflowEnvironment, stream_run_id: str) -> dict[str, Any]:
    store = env.storage
    assert isinstance(store, StreamStore)
    return {
        s.step_name: (s.status.value, s.detail)
        for s in await store.list_subscriptions(stream_run_id)
    }


async def _step_ids(env: WorkflowEnvironment, stream_run_id: str) -> list[str]:
    store = env.storage
    assert isinstance(store, StreamStore)
    record = await store.get_stream_run(stream_run_id)
    assert record is not None
    return [
        e.data["step_id"]
        for e in await env.events(record.run_id)
        if e.type is EventType.STEP_STARTED
    ]


async def test_an_execution_that_raises_runs_again_after_its_delay_and_counts_once(
    env: WorkflowEnvironment,
) -> None:
    sid = "tx-retry"
    parent = await env.start(tx_run_jobs, sid)
    await settled_stream(env, sid)
    before = env.now()
    await emit("tx_jobs", "job", {"fails": 1}, stream_run_id=sid)
    await settled_stream(env, sid)
    # The first execution ran in its batch and raised; the retry waits its delay (1 s), durably.
    assert EXECUTIONS[(sid, "tx_flaky", 1)] == 1
    await env.advance("1s")
    await settled_stream(env, sid)
    assert EXECUTIONS[(sid, "tx_flaky", 1)] == 2
    assert env.now() - before >= timedelta(seconds=1)
    await emit("tx_jobs", "stop", None, stream_run_id=sid)
    result = await env.result(parent)
    assert result["results"]["tx_flaky"] == {"done": [1]}
    assert result["states"]["tx_flaky"] == "terminated"
    # The retry is a step of its own; the executions that did not raise ran in batch steps.
    steps = [s.split("#")[0] for s in await _step_ids(env, sid)]
    assert steps.count("stream:tx_flaky") == 1
    assert "pyworkflow.stream.batch" in steps
    # The execution's idempotency key is the same in its batch and in its retry.
    (first_key, first_attempt), (retry_key, retry_attempt) = CONTEXTS[(sid, 1)]
    assert (first_attempt, retry_attempt) == (1, 2)
    assert first_key == retry_key
    assert ":stream:tx_flaky@" in first_key
    # Both executions emitted the audit signal; it is stored once.
    store = env.storage
    assert isinstance(store, StreamStore)
    audits = [s for s in await store.list_signals(sid) if s.signal_type == "audit"]
    assert len(audits) == 1


async def test_an_execution_that_keeps_raising_fails_its_step_after_its_retries(
    env: WorkflowEnvironment,
) -> None:
    sid = "tx-spent"
    parent = await env.start(tx_run_jobs, sid)
    await settled_stream(env, sid)
    await emit("tx_jobs", "job", {"fails": 99}, stream_run_id=sid)
    await emit("tx_jobs", "job", {"brittle": True}, stream_run_id=sid)
    await env.advance("1m")  # past both retry delays (1 s, 2 s): every step has ended
    result = await env.result(parent)
    assert result["states"] == {"tx_brittle": "failed", "tx_flaky": "failed"}
    details = await _details(env, sid)
    assert details["tx_flaky"] == ("failed", "RuntimeError: execution 3 of job 1 failed")
    assert EXECUTIONS[(sid, "tx_flaky", 1)] == 3  # max_retries=2: three executions in all
    # max_retries=0: the first raise fails the step, and nothing runs it again.
    assert details["tx_brittle"] == ("failed", "RuntimeError: brittle")
    assert EXECUTIONS[(sid, "tx_brittle", 2)] == 1
    assert not any(s.startswith("stream:tx_brittle") for s in await _step_ids(env, sid))


async def test_a_fatal_error_fails_the_step_without_a_retry(env: WorkflowEnvironment) -> None:
    sid = "tx-fatal"
    await env.start(tx_run_jobs, sid)
    await settled_stream(env, sid)
    await emit("tx_jobs", "job", {"fails": 1, "fatal": True}, stream_run_id=sid)
    await settled_stream(env, sid)
    await env.advance("1m")
    await settled_stream(env, sid)
    assert (await _details(env, sid))["tx_flaky"] == (
        "failed",
        "FatalError: this job can never be done",
    )
    assert EXECUTIONS[(sid, "tx_flaky", 1)] == 1
    assert not any(s.startswith("stream:tx_flaky") for s in await _step_ids(env, sid))


async def test_a_result_that_cannot_be_stored_fails_that_execution_alone(
    env: WorkflowEnvironment,
) -> None:
    sid = "tx-odd"
    parent = await env.start(tx_run_jobs, sid)
    await settled_stream(env, sid)
    # One signal, two executions in one batch: tx_brittle's result cannot be serialized.
    await emit("tx_jobs", "job", {"odd": True}, stream_run_id=sid)
    await settled_stream(env, sid)
    details = await _details(env, sid)
    assert details["tx_brittle"][0] == "failed"
    assert "SerializationError" in details["tx_brittle"][1]
    assert details["tx_flaky"] == ("waiting", None)  # its execution in the batch counted
    await emit("tx_jobs", "stop", None, stream_run_id=sid)
    result = await env.result(parent)
    assert result["results"] == {"tx_flaky": {"done": [1]}}


# --- an execution waits for its batch step's start to be stored -----------------------------------


class SlowAppends(MemoryStorage):
    """Memory storage whose appends (the driver's commits) take a while to land."""

    async def append(self, write: Any) -> Any:
        await asyncio.sleep(0.05)
        return await super().append(write)


@stream_workflow(name="tx_watch")
async def tx_watch() -> None:
    """No opening signal."""


@stream_step(stream="tx_watch", signals=["look", "stop"])
async def tx_watcher() -> None:
    """Records whether the batch step running it had its start in storage when it ran."""
    signal = await get_current_signal()
    if signal is None:
        return
    if signal.signal_type == "stop":
        await terminate()
        return
    events = await pyworkflow.get_workflow_events(get_step_context().run_id)
    batches = [
        e.type for e in events if e.data.get("step_id", "").startswith("pyworkflow.stream.batch#")
    ]
    # The batch step running this execution has started (in storage) and not completed.
    STARTED_IN_STORAGE.append(
        batches.count(EventType.STEP_STARTED) == batches.count(EventType.STEP_COMPLETED) + 1
    )


@workflow(name="tx_run_watch")
async def tx_run_watch(stream_run_id: str) -> str:
    return (await run_stream_workflow(tx_watch, stream_run_id=stream_run_id)).status


async def test_no_execution_runs_before_its_batch_steps_start_is_stored() -> None:
    STARTED_IN_STORAGE.clear()
    storage = SlowAppends()
    pyworkflow.configure(storage=storage)
    try:
        parent = await pyworkflow.start(tx_run_watch, "tx-watch")
        for _ in range(400):
            if await storage.get_stream_run("tx-watch") is not None:
                break
            await asyncio.sleep(0.01)
        for n in range(5):  # to a waiting driver (the emit takes the batch) and to a busy one
            await emit("tx_watch", "look", {"n": n}, stream_run_id="tx-watch")
            if n % 2:
                await asyncio.sleep(0.3)
        await emit("tx_watch", "stop", None, stream_run_id="tx-watch")
        assert await pyworkflow.get_workflow_result(parent, timeout=20) == "completed"
    finally:
        await pyworkflow.shutdown()
    assert STARTED_IN_STORAGE == [True] * 5
