"""Cancellation with cleanup under ``shield()``, ``max_duration``, and idempotency keys.

What a user checks: a cancelled sleeping run wakes at once and its ``except CancellationError``
/ ``finally`` cleanup runs, steps inside ``async with shield():`` included, while a step outside
the shield is never started; cancelling an ended run returns False and writes nothing, and
cancelling twice is harmless; a run overrunning ``max_duration`` fails with
``WorkflowTimeoutError``, whatever it waits on; fifty concurrent starts with one idempotency
key make one run, also from several processes. On the virtual clock and memory storage
(conftest.py), but the several processes, on SQLite; the race of concurrent starts on every
backend is the contract suite's.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import pyworkflow
from pyworkflow import (
    CancellationError,
    EventType,
    RunStatus,
    WorkflowCancelledError,
    hook,
    shield,
    sleep,
    start_child_workflow,
    step,
    workflow,
)
from pyworkflow.storage.protocol import Storage
from pyworkflow.testing import WorkflowEnvironment
from workers import subprocess_env

from .recording import CALLS, double, token, two_steps
from .run_log import assert_well_formed, events_of, failure_of, of_type, types, wait_status
from .waits import child_of, keep, poll, wait_suspended


@step(name="tst_record")
async def record(tok: str, what: str) -> str:
    CALLS[tok, what] += 1
    return what


@workflow(name="tst_sleep_then_clean")
async def sleep_then_clean(tok: str, seconds: float) -> str:
    await double(tok, 1)
    try:
        await sleep(seconds)
    except CancellationError:
        async with shield():
            await record(tok, "shielded cleanup")
            await sleep(0.05)  # a shielded timer runs to its end too
            await record(tok, "after the shielded sleep")
        raise
    finally:
        async with shield():
            await record(tok, "finally")
    return "woke"


@workflow(name="tst_unshielded_cleanup")
async def unshielded_cleanup(tok: str, seconds: float) -> list[str]:
    try:
        await sleep(seconds)
    except CancellationError:
        seen = ["cancelled"]
        try:
            await record(tok, "unshielded cleanup")
        except CancellationError:
            seen.append("the step was refused")
        return seen  # swallowing the cancellation ends the run normally
    return ["woke"]


@workflow(name="tst_sleeps_long")
async def sleeps_long(seconds: float) -> str:
    await sleep(seconds)
    return "woke"


@workflow(name="tst_fails")
async def fails() -> None:
    raise RuntimeError("it broke")


@workflow(name="tst_limited_sleep", max_duration="1s")
async def limited_sleep(seconds: float) -> str:
    await sleep(seconds)
    return "woke"


@workflow(name="tst_limited_hook", max_duration="1s")
async def limited_hook(tok: str) -> Any:
    return await hook("never", on_created=keep(tok, "never"))


@workflow(name="tst_hook_child")
async def hook_child(tok: str) -> Any:
    return await hook("release", on_created=keep(tok, "release"))


@workflow(name="tst_limited_child", max_duration="1s")
async def limited_child(tok: str) -> Any:
    return await start_child_workflow(hook_child, tok)


@step(name="tst_slow_step", max_retries=0)
async def slow_step(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "slow done"


@workflow(name="tst_limited_step", max_duration="300ms")
async def limited_step(seconds: float) -> str:
    return await slow_step(seconds)


@workflow(name="tst_limited_fast", max_duration="2s")
async def limited_fast(tok: str) -> int:
    await sleep(0.1)
    return await double(tok, 21)


@workflow(name="tst_keyed")
async def keyed(n: int) -> int:
    return n


async def wait_for_event(run_id: str, kind: EventType, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while kind not in types(await events_of(run_id)):
        assert time.monotonic() < deadline, f"no {kind} in {run_id}"
        await asyncio.sleep(0.01)


# --- cancellation and cleanup --------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [60.0, 2.0], ids=["suspended", "in-process"])
async def test_cancel_a_sleeping_run_runs_its_shielded_cleanup(
    env: WorkflowEnvironment, seconds: float
) -> None:
    tok = token()
    run_id = await pyworkflow.start(sleep_then_clean, tok, seconds)
    await wait_for_event(run_id, EventType.SLEEP_STARTED)
    if seconds > 5:
        await wait_suspended(env, run_id)
    began = env.clock.now()
    assert await pyworkflow.cancel_workflow(run_id, reason="customer left") is True
    with pytest.raises(WorkflowCancelledError, match="customer left"):
        await pyworkflow.get_workflow_result(run_id, timeout=10)
    # Only the shielded cleanup's own timer (0.05 s) passed, not the one cancelled.
    took = env.clock.now() - began
    assert took == pytest.approx(0.05, abs=1e-6), "the cancel does not wait for the timer"
    for what in ("shielded cleanup", "after the shielded sleep", "finally"):
        assert CALLS[tok, what] == 1, what
    events = await events_of(run_id)
    assert_well_formed(events)
    assert types(events)[-1] is EventType.WORKFLOW_CANCELLED
    assert len(of_type(events, EventType.CANCELLATION_REQUESTED)) == 1
    completed = [e.data["step_id"] for e in of_type(events, EventType.STEP_COMPLETED)]
    assert completed == ["tw_double#1", "tst_record#1", "tst_record#2", "tst_record#3"]
    assert len(of_type(events, EventType.SLEEP_COMPLETED)) == 1, "only the shielded sleep ended"
    assert EventType.STEP_FAILED not in types(events)


async def test_a_step_outside_the_shield_is_not_started(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(unshielded_cleanup, tok, 60.0)
    await wait_suspended(env, run_id)
    assert await pyworkflow.cancel_workflow(run_id) is True
    result = await pyworkflow.get_workflow_result(run_id, timeout=10)
    assert result == ["cancelled", "the step was refused"]
    assert CALLS[tok, "unshielded cleanup"] == 0
    events = await events_of(run_id)
    assert_well_formed(events)
    assert EventType.STEP_COMPLETED not in types(events)
    assert types(events)[-1] is EventType.WORKFLOW_COMPLETED


async def test_cancelling_twice_is_harmless(env: WorkflowEnvironment) -> None:
    run_id = await pyworkflow.start(sleeps_long, 60.0)
    await wait_suspended(env, run_id)
    first = await pyworkflow.cancel_workflow(run_id, reason="first")
    second = await pyworkflow.cancel_workflow(run_id, reason="second")
    assert first is True
    assert second in (True, False)  # False once the first has ended the run
    with pytest.raises(WorkflowCancelledError) as info:
        await pyworkflow.get_workflow_result(run_id, timeout=10)
    assert info.value.reason == "first", "the first request's reason stands"
    events = await events_of(run_id)
    assert_well_formed(events)
    assert len(of_type(events, EventType.CANCELLATION_REQUESTED)) == 1
    assert types(events).count(EventType.WORKFLOW_CANCELLED) == 1
    assert await pyworkflow.cancel_workflow(run_id) is False
    assert await events_of(run_id) == events


@pytest.mark.parametrize("ending", ["completed", "failed", "cancelled"])
async def test_cancelling_an_ended_run_writes_nothing(
    env: WorkflowEnvironment, ending: str
) -> None:
    if ending == "completed":
        run_id = await pyworkflow.start(two_steps, token(), 1)
        await pyworkflow.get_workflow_result(run_id, timeout=10)
    elif ending == "failed":
        run_id = await pyworkflow.start(fails)
        await failure_of(run_id)
    else:
        run_id = await pyworkflow.start(sleeps_long, 60.0)
        await wait_suspended(env, run_id)
        await pyworkflow.cancel_workflow(run_id, reason="the first")
        await wait_status(run_id, RunStatus.CANCELLED)
    run = await pyworkflow.get_workflow_run(run_id)
    events = await events_of(run_id)
    assert await pyworkflow.cancel_workflow(run_id, reason="too late") is False
    assert await pyworkflow.get_workflow_run(run_id) == run
    assert await events_of(run_id) == events


async def test_cancelling_an_unknown_run_is_refused(env: WorkflowEnvironment) -> None:
    with pytest.raises(pyworkflow.RunNotFoundError):
        await pyworkflow.cancel_workflow("run_nope")
    assert await pyworkflow.list_workflow_runs() == []


# --- max_duration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wf", "arg"),
    [
        (limited_sleep, 1.5),
        (limited_sleep, 60.0),
        (limited_hook, "t"),
        (limited_child, "t"),
    ],
    ids=["sleep-in-process", "sleep-suspended", "hook", "child"],
)
async def test_an_overrunning_run_fails_with_workflow_timeout(
    env: WorkflowEnvironment, wf: Any, arg: Any
) -> None:
    began = env.clock.now()
    run_id = await pyworkflow.start(wf, arg)
    err = await failure_of(run_id)
    took = env.clock.now() - began
    assert "WorkflowTimeoutError" in err.error_type
    assert "max_duration" in err.error_message
    assert took == pytest.approx(1.0, abs=1e-6), (
        f"failed after {took:.2f}s for a max_duration of 1s"
    )
    events = await events_of(run_id)
    assert_well_formed(events)
    assert types(events)[-1] is EventType.WORKFLOW_FAILED
    assert EventType.SLEEP_COMPLETED not in types(events)
    assert (await pyworkflow.get_workflow_run(run_id)).status is RunStatus.FAILED


async def test_an_overrunning_step_fails_the_run_with_workflow_timeout(pw_memory: Storage) -> None:
    # In real time: the virtual clock stands still while a step works, so a run's deadline
    # can only pass during a step on the system clock.
    began = time.monotonic()
    run_id = await pyworkflow.start(limited_step, 3.0)
    err = await failure_of(run_id)
    took = time.monotonic() - began
    assert "WorkflowTimeoutError" in err.error_type
    assert "max_duration" in err.error_message
    assert 0.3 <= took < 2.5, f"failed after {took:.2f}s for a max_duration of 0.3s"
    events = await events_of(run_id)
    assert_well_formed(events)
    assert types(events)[-1] is EventType.WORKFLOW_FAILED
    assert EventType.STEP_COMPLETED not in types(events)
    assert (await pyworkflow.get_workflow_run(run_id)).status is RunStatus.FAILED


async def test_a_timed_out_parent_cancels_its_child(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(limited_child, tok)
    kid = await child_of(env.storage, run_id)
    await failure_of(run_id)
    await poll(env)  # the parent's end made its child due (see waits.poll)
    await wait_status(kid.run_id, RunStatus.CANCELLED, within=5)


async def test_a_run_within_its_max_duration_completes(env: WorkflowEnvironment) -> None:
    tok = token()
    assert await pyworkflow.run(limited_fast, tok) == 42


# --- idempotency keys ----------------------------------------------------------------------------


async def test_fifty_concurrent_starts_with_one_key_make_one_run(env: WorkflowEnvironment) -> None:
    run_ids = await asyncio.gather(
        *(pyworkflow.start(keyed, n, idempotency_key="order-42") for n in range(50))
    )
    assert len(set(run_ids)) == 1
    (run_id,) = set(run_ids)
    runs = await pyworkflow.list_workflow_runs()
    assert [(r.run_id, r.idempotency_key) for r in runs] == [(run_id, "order-42")]
    result = await pyworkflow.get_workflow_result(run_id, timeout=10)
    assert result in range(50)
    events = await events_of(run_id)
    assert_well_formed(events)
    assert types(events).count(EventType.WORKFLOW_STARTED) == 1
    # The key is kept after the run ended.
    assert await pyworkflow.start(keyed, 99, idempotency_key="order-42") == run_id


KEYED_MODULE = """
from pyworkflow import workflow


@workflow(name="tst_keyed_elsewhere")
async def keyed_elsewhere(n: int) -> int:
    return n
"""

START_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, os, sys, time
    import pyworkflow
    from pyworkflow.runtime import get_runtime
    import keyedwf

    url, first, count, go = sys.argv[1:5]
    first, count = int(first), int(count)

    async def main():
        pyworkflow.configure(storage=url)
        await get_runtime()
        open(go + "." + str(first), "w").close()
        while not os.path.exists(go):
            time.sleep(0.001)
        ids = await asyncio.gather(
            *(
                pyworkflow.start(keyedwf.keyed_elsewhere, n, idempotency_key="order-7")
                for n in range(first, first + count)
            ),
            return_exceptions=True,
        )
        print(json.dumps([i if isinstance(i, str) else repr(i) for i in ids]))
        for run_id in set(i for i in ids if isinstance(i, str)):
            await pyworkflow.get_workflow_result(run_id, timeout=20)
        await pyworkflow.shutdown()

    asyncio.run(main())
    """
)


@pytest.mark.slow
def test_concurrent_starts_with_one_key_from_several_processes(tmp_path: Path) -> None:
    (tmp_path / "keyedwf.py").write_text(KEYED_MODULE)
    url = f"sqlite:///{tmp_path / 'keyed.db'}"
    env = subprocess_env(tmp_path)
    go = str(tmp_path / "go")
    processes, per_process = 5, 10
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", START_SCRIPT, url, str(p * per_process), str(per_process), go],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for p in range(processes)
    ]
    try:
        deadline = time.monotonic() + 30
        while not all(os.path.exists(f"{go}.{p * per_process}") for p in range(processes)):
            assert time.monotonic() < deadline, "the starting processes did not start"
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            time.sleep(0.02)
        Path(go).touch()
        outputs = [p.communicate(timeout=60) for p in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
    ids = [run_id for out, _ in outputs for run_id in json.loads(out.decode())]
    assert len(ids) == processes * per_process
    assert len(set(ids)) == 1, ids

    async def look() -> tuple[list[Any], list[Any]]:
        from pyworkflow.storage import SQLiteStorage

        storage = SQLiteStorage(url)
        await storage.open()
        try:
            return await storage.list_runs(), await storage.load_events(ids[0])
        finally:
            await storage.close()

    runs, events = asyncio.run(look())
    assert [(r.run_id, r.idempotency_key, r.status) for r in runs] == [
        (ids[0], "order-7", RunStatus.COMPLETED)
    ]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.type for e in events].count(EventType.WORKFLOW_STARTED) == 1
