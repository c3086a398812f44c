"""The workflows of tests/celery, imported by the test process and by every Celery worker.

Workers find it through ``PYWORKFLOW_MODULES=celery_flows`` with tests/celery and tests/ on
``PYTHONPATH``; the test process imports it as ``celery_flows`` (tests/celery is on
``sys.path``). Names start with ``cf_`` so they cannot clash with the rest of the suite's.

Steps that report where they ran return their process id. ``CF_DIR`` (set for the workers)
is a directory of the test: hook tokens are written there by ``on_created``, the way a
workflow would mail them, since the test is another process. ``record_execution`` (from
tests/kill_effects.py) appends a line per step execution to ``KILLTEST_SIDE_EFFECTS``.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

from kill_effects import record_execution
from pyworkflow import (
    FatalError,
    HookExpiredError,
    StepContext,
    continue_as_new,
    get_step_context,
    hook,
    now,
    set_step_context,
    sleep,
    start_child_workflow,
    step,
    uuid4,
    workflow,
)

# --- steps ---------------------------------------------------------------------------------------


@step(name="cf_add")
async def add(a: int, b: int) -> int:
    return a + b


@step(name="cf_where")
async def where(tag: str) -> dict[str, Any]:
    """Which process executed this step attempt."""
    return {"tag": tag, "pid": os.getpid()}


@step(name="cf_loop_of")
async def loop_of(i: int) -> list[int]:
    """The process and the event loop this attempt ran on."""
    await asyncio.sleep(0)
    return [os.getpid(), id(asyncio.get_running_loop())]


@step(name="cf_context")
async def context_of() -> dict[str, Any]:
    """What ``get_step_context()`` says on the worker."""
    ctx = get_step_context()
    return {
        "run_id": ctx.run_id,
        "workflow": ctx.workflow_name,
        "step_id": ctx.step_id,
        "attempt": ctx.attempt,
        "key": ctx.idempotency_key,
    }


@step(name="cf_local_where", force_local=True)
async def local_where() -> int:
    """Inline in the orchestrating turn: the process driving the run."""
    return os.getpid()


@step(name="cf_send_email", queue="emails")
async def send_email(to: str) -> dict[str, Any]:
    """Routed to the ``emails`` queue: only a worker consuming it executes this."""
    return {"to": to, "pid": os.getpid()}


@step(name="cf_stamp")
async def stamp() -> float:
    return time.time()


@step(name="cf_flaky", max_retries=3, retry_delay="0.2s")
async def flaky(failures: int) -> int:
    """Fails its first ``failures`` attempts, then returns the attempt that succeeded."""
    attempt = get_step_context().attempt
    if attempt <= failures:
        raise RuntimeError(f"attempt {attempt} fails on purpose")
    return attempt


@step(name="cf_flaky_slowly", max_retries=1, retry_delay="5.5s")
async def flaky_slowly() -> int:
    """Fails once; retried after a delay longer than any executor's horizon (5 s)."""
    attempt = get_step_context().attempt
    if attempt == 1:
        raise RuntimeError("the first attempt fails on purpose")
    return attempt


@step(name="cf_needs_file", max_retries=0)
async def needs_file(name: str) -> str:
    """Fails until the test creates ``CF_DIR/name`` (then ``resume`` makes the run go on)."""
    path = Path(os.environ["CF_DIR"]) / name
    if not path.exists():
        raise RuntimeError(f"{path} is missing")
    return path.read_text()


@step(name="cf_overtime", timeout="0.3s", max_retries=0)
async def overtime() -> None:
    await asyncio.sleep(30)


@step(name="cf_refuse")
async def refuse(reason: str) -> None:
    raise FatalError(reason)


@step(name="cf_hook_in_step", max_retries=0)  # a misuse is not worth a retry
async def hook_in_step() -> Any:
    return await hook("inside-a-step")


@step(name="cf_spawn_and_wait")
async def spawn_and_wait(n: int) -> int:
    """Starts a child from a step and blocks this step until the child ends."""
    return await start_child_workflow(child, n)  # type: ignore[no-any-return]


@step(name="cf_spawn")
async def spawn(n: int) -> str:
    """Starts a child from a step without waiting; the child outlives the run."""
    handle = await start_child_workflow(
        child, n, wait_for_completion=False, parent_close_policy="abandon"
    )
    return str(handle.run_id)


@step(name="cf_work")
async def work(n: int) -> int:
    """A step of the kill tests: records its execution mid-way, so a kill can land after."""
    await asyncio.sleep(random.uniform(0.1, 0.4))
    record_execution()
    await asyncio.sleep(random.uniform(0.1, 0.4))  # a kill here re-executes a recorded step
    return n * 2 + 1


@step(name="cf_slow")
async def slow(seconds: float) -> float:
    """Records its execution, then takes its time."""
    record_execution()
    await asyncio.sleep(seconds)
    return seconds


@step(name="cf_held")
async def held(hold: str) -> str:
    """Records its execution, then works while the file ``hold`` exists (a test ends it)."""
    record_execution()
    while os.path.exists(hold):  # noqa: ASYNC110, ASYNC240 (a file the test removes, polled)
        await asyncio.sleep(0.05)
    return hold


@step(name="cf_local_work", force_local=True)
async def local_work(n: int) -> int:
    """``work``, inline in the orchestrating turn: a kill there kills the run's driver."""
    await asyncio.sleep(random.uniform(0.1, 0.3))
    record_execution()
    await asyncio.sleep(random.uniform(0.0, 0.2))
    return n * 2 + 1


@step(name="cf_local_slow", force_local=True)
async def local_slow(seconds: float) -> float:
    """A long ``force_local`` step: it holds the run's lease while it runs."""
    record_execution()
    await asyncio.sleep(seconds)
    return seconds


@step(name="cf_hangs_in_doomed")
async def hangs_in_doomed() -> int:
    """Records its execution; in a worker started with ``CF_HANG=1``, never returns."""
    record_execution()
    if os.environ.get("CF_HANG") == "1":
        await asyncio.sleep(3600)
    return os.getpid()


@step(name="cf_suicide")
async def suicide() -> None:
    """Kills the process executing it, every time (a segfault, the OOM killer ...)."""
    record_execution()
    os.kill(os.getpid(), signal.SIGKILL)


# --- workflows -----------------------------------------------------------------------------------


@workflow(name="cf_hang_once")
async def hang_once() -> int:
    return await hangs_in_doomed()


@workflow(name="cf_sequence")
async def sequence(n: int) -> list[int]:
    a = await add(n, 1)
    b = await add(a, 10)
    c = await add(b, 100)
    return [a, b, c]


@workflow(name="cf_fan_out")
async def fan_out(n: int) -> list[Any]:
    async def branch(i: int) -> int:
        return await add(await add(i, n), 1)

    flat = await asyncio.gather(*(add(i, n) for i in range(4)))
    nested = await asyncio.gather(*(branch(i) for i in range(3)))
    return [list(flat), list(nested)]


@workflow(name="cf_loops")
async def loops(n: int) -> list[list[int]]:
    return [await loop_of(i) for i in range(n)]


@workflow(name="cf_contexts")
async def contexts() -> list[dict[str, Any]]:
    return [await context_of(), await context_of()]


class CfTenant(StepContext):
    """A step context, set by the workflow in the test process's first turn or on a worker."""

    tenant: str = ""
    tier: int = 0


@step(name="cf_tenant")
async def tenant_of() -> dict[str, Any]:
    """The step context as a worker's step reads it."""
    ctx = get_step_context()
    return {"type": type(ctx).__name__, **ctx.to_dict(), "pid": os.getpid()}


@workflow(name="cf_tenant_context", context_class=CfTenant)
async def tenant_context(tenant: str) -> list[dict[str, Any]]:
    await set_step_context(CfTenant(tenant=tenant, tier=1))
    first = await tenant_of()
    await set_step_context(get_step_context().with_updates(tier=2))
    return [first, await tenant_of()]


@workflow(name="cf_nap")
async def nap(seconds: float) -> float:
    before = await stamp()
    await sleep(seconds)
    return await stamp() - before


@workflow(name="cf_retrying")
async def retrying(failures: int) -> int:
    return await flaky(failures)


@workflow(name="cf_fatal")
async def fatal(reason: str) -> None:
    await add(1, 1)
    await refuse(reason)


@workflow(name="cf_local")
async def local() -> dict[str, int]:
    remote = await where("remote")
    inline = await local_where()
    # Workflow code does not read the process (it is no recorded outcome); this test does, to
    # show the force_local step ran in the process of the turn that continued after it.
    return {"remote": remote["pid"], "local": inline, "turn": os.getpid()}


@workflow(name="cf_local_first")
async def local_first() -> list[Any]:
    """Recorded values, then a ``force_local`` step: the first turn has no remote step."""
    started, key = now(), uuid4()
    pid = await local_where()
    return [started, str(key), pid, await where("after")]


@workflow(name="cf_mail")
async def mail(to: str) -> list[dict[str, Any]]:
    before = await where("before")
    sent = await send_email(to)
    after = await where("after")
    return [before, sent, after]


def token_file(key: str) -> Path:
    return Path(os.environ["CF_DIR"]) / "tokens" / key


def hand_out(key: str) -> Any:
    """``on_created`` that writes the token where the test looks for it (atomically)."""

    def on_created(token: str) -> None:
        path = token_file(key)
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(token)
        os.replace(tmp, path)

    return on_created


@workflow(name="cf_approval")
async def approval(key: str) -> dict[str, Any]:
    first = await add(1, 2)
    payload = await hook("approval", on_created=hand_out(key))
    return {"first": first, "payload": payload, "after": await add(first, 4)}


@workflow(name="cf_hook_in_step_wf")
async def hook_in_step_wf() -> Any:
    return await hook_in_step()


@workflow(name="cf_child")
async def child(n: int) -> int:
    await sleep(0.2)
    return await add(n, 1000)


@workflow(name="cf_sleepy_child")
async def sleepy_child() -> str:
    await sleep("1h")
    return "woke"


@workflow(name="cf_parent_waits")
async def parent_waits(n: int) -> int:
    return await start_child_workflow(child, n) + 1  # type: ignore[no-any-return]


@workflow(name="cf_parent_of_sleepy")
async def parent_of_sleepy() -> str:
    return await start_child_workflow(sleepy_child)  # type: ignore[no-any-return]


@workflow(name="cf_parent_handles")
async def parent_handles(n: int) -> list[str]:
    """A child it does not wait for (it outlives the parent) and one cancelled at the end."""
    kept = await start_child_workflow(
        child, n, wait_for_completion=False, parent_close_policy="abandon"
    )
    dropped = await start_child_workflow(sleepy_child, wait_for_completion=False)
    await add(0, 0)
    return [kept.run_id, dropped.run_id]


@workflow(name="cf_step_children")
async def step_children(n: int) -> list[Any]:
    waited = await spawn_and_wait(n)
    kept = await spawn(n + 1)
    return [waited, kept]


@workflow(name="cf_long_sleep")
async def long_sleep() -> str:
    await add(0, 0)
    await sleep("1h")
    return "woke"


@workflow(name="cf_chain")
async def chain(n: int, steps: int) -> int:
    """``steps`` ``work`` steps one after the other, a sleep, then a remote and a local step
    at once (the remote one's outcome waits for the run while the local one runs)."""
    total = 0
    for i in range(steps):
        total += await work(n + i)
        if i == 1:
            await sleep(0.3)
    pair = await asyncio.gather(work(n + 50), local_work(n + 60))
    return total + sum(pair)


def chain_steps(steps: int) -> set[str]:
    return {f"cf_work#{i + 1}" for i in range(steps + 1)} | {"cf_local_work#1"}


def chain_result(n: int, steps: int) -> int:
    return sum((n + i) * 2 + 1 for i in range(steps)) + (n + 50) * 2 + 1 + (n + 60) * 2 + 1


@workflow(name="cf_slow_step")
async def slow_step(seconds: float) -> float:
    return await slow(seconds)


@workflow(name="cf_held_step")
async def held_step(hold: str) -> str:
    return await held(hold)


@workflow(name="cf_wide")
async def wide(width: int) -> list[int]:
    """``width`` steps at once: their outcomes all want the run's lease to be logged."""
    return list(await asyncio.gather(*(work(i) for i in range(width))))


@workflow(name="cf_no_steps")
async def no_steps(n: int) -> int:
    return n + 1


@workflow(name="cf_fails_at_once")
async def fails_at_once(message: str) -> None:
    raise ValueError(message)


@workflow(name="cf_countdown")
async def countdown(n: int, total: int) -> int:
    total = await add(total, n)
    if n > 0:
        continue_as_new(n - 1, total)
    return total


@workflow(name="cf_retry_later")
async def retry_later() -> int:
    return await flaky_slowly()


@workflow(name="cf_resumable")
async def resumable(name: str) -> str:
    first = await add(1, 1)
    return f"{first} {await needs_file(name)}"


@workflow(name="cf_cancel_mid_step")
async def cancel_mid_step(seconds: float) -> float:
    took = await slow(seconds)
    await add(0, 0)  # the next primitive: where the cancel request lands
    return took


@workflow(name="cf_hook_expires")
async def hook_expires() -> str:
    try:
        await hook("never-answered", timeout="1.5s")
    except HookExpiredError:
        return "expired"
    return "answered"


@workflow(name="cf_deadline", max_duration="2s")
async def deadline() -> str:
    await add(0, 0)
    await sleep("1h")
    return "woke"


@workflow(name="cf_step_timeout")
async def step_timeout() -> None:
    await overtime()


@workflow(name="cf_beside_a_long_local_step")
async def beside_a_long_local_step(seconds: float) -> list[float]:
    """A quick remote step whose outcome waits for the run while a local step holds it."""
    return list(await asyncio.gather(slow(0.2), local_slow(seconds)))


@workflow(name="cf_doomed")
async def doomed() -> None:
    await add(1, 1)
    await suicide()
