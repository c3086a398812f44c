"""kill -9 a real worker while parents wait on a child and a hook: all complete, once each.

Each parent runs a step, then waits on a child workflow and a hook together, then runs a last
step. The workflow module lives in tmp_path; each step execution appends one fsync'ed line to
a side-effect file, and each hook's ``on_created`` writes its token to a file, which is how the
test (another process) learns it. The worker is killed with SIGKILL at random moments and
started again; hooks are delivered at random moments too, also while no worker is alive.

Afterwards every parent has completed with the expected result, started exactly one child,
logged exactly one HOOK_RECEIVED (the payload delivered), and no step whose completion was in
the log at a kill ran again.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import pyworkflow
from pyworkflow import HookAlreadyReceivedError, HookNotFoundError
from pyworkflow import config as pw_config
from pyworkflow import runtime as pw_runtime
from pyworkflow.events import EventType, RunStatus
from pyworkflow.storage.protocol import Storage
from workers import KILL_EFFECTS, WorkerProcesses, add_unleased_run, executions_in

pytestmark = pytest.mark.slow

PARENTS = 6
KILLS = 4  # below max_recoveries (5): a run killed every time without progress fails
LEASE_SECONDS = 2

WORKFLOW_MODULE = """
import asyncio
import os
import random

from pyworkflow import hook, sleep, start_child_workflow, step, workflow

from kill_effects import record_execution

TOKENS = os.environ["KILLTEST_TOKENS"]


@step(name="kh_work")
async def work(n: int) -> int:
    await asyncio.sleep(random.uniform(0.05, 0.3))
    record_execution()
    await asyncio.sleep(random.uniform(0.0, 0.1))  # a kill here re-executes a recorded step
    return n * 2 + 1


@workflow(name="kh_kid")
async def kid(n: int) -> int:
    first = await work(n)
    await sleep(0.3)
    return first + await work(n + 1)


def hand_out(n: int):
    def on_created(token: str) -> None:
        path = os.path.join(TOKENS, str(n))
        with open(path + ".tmp", "w") as out:
            out.write(token)
            out.flush()
            os.fsync(out.fileno())
        os.replace(path + ".tmp", path)

    return on_created


@workflow(name="kh_parent")
async def parent(n: int) -> list:
    first = await work(n)
    kid_result, approval = await asyncio.gather(
        start_child_workflow(kid, n + 10), hook("approval", on_created=hand_out(n))
    )
    return [first, kid_result, approval, await work(n + 20)]
"""


def expected_result(n: int) -> list[Any]:
    kid = (n + 10) * 2 + 1 + (n + 11) * 2 + 1
    return [n * 2 + 1, kid, {"approved": n}, (n + 20) * 2 + 1]


@pytest.fixture(params=["sqlite", "postgres"])
async def storage_url(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[str]:
    """pyworkflow configured here (to deliver hooks) on storage the worker shares."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'runs.db'}"
    else:
        url = str(request.getfixturevalue("postgres_server").fresh_url())
    monkeypatch.setattr(pw_config, "_settings", pw_config._settings)
    pyworkflow.configure(storage=url)
    try:
        yield url
    finally:
        await pyworkflow.shutdown()


def tokens_in(directory: Path) -> dict[int, str]:
    return {int(p.name): p.read_text() for p in directory.iterdir() if p.name.isdigit()}


async def storage() -> Storage:
    return (await pw_runtime.get_runtime()).storage


async def completed_steps(run_ids: list[str]) -> set[tuple[str, str]]:
    done = set()
    for run_id in run_ids:
        for event in await (await storage()).load_events(run_id):
            if event.type is EventType.STEP_COMPLETED:
                done.add((run_id, event.payload["step_id"]))
    return done


async def family(parents: list[str]) -> list[str]:
    """The parents and their children."""
    runs = list(parents)
    for run_id in parents:
        runs += [r.run_id for r in await (await storage()).list_runs(parent_run_id=run_id)]
    return runs


async def test_parents_waiting_on_a_child_and_a_hook_survive_kill_9(
    tmp_path: Path,
    storage_url: str,
    worker_env: dict[str, str],
    worker_processes: WorkerProcesses,
) -> None:
    seed = int(os.environ.get("KILLTEST_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    began = time.monotonic()
    (tmp_path / "killhooks.py").write_text(textwrap.dedent(WORKFLOW_MODULE))
    shutil.copy(KILL_EFFECTS, tmp_path)
    side_effects = tmp_path / "side_effects.log"
    token_dir = tmp_path / "tokens"
    token_dir.mkdir()
    log = tmp_path / "worker.log"
    worker_env["KILLTEST_SIDE_EFFECTS"] = str(side_effects)
    worker_env["KILLTEST_TOKENS"] = str(token_dir)

    def context() -> str:
        return f"seed={seed} (rerun with KILLTEST_SEED={seed}); worker log:\n{log.read_text()}"

    def start_worker() -> subprocess.Popen[bytes]:
        return worker_processes.start_marked(
            "killhooks", storage_url, "--lease-seconds", str(LEASE_SECONDS), log=log, since=began
        )

    delivered: dict[int, str] = {}

    async def deliver_some(chance: float) -> None:
        for n, hook_token in tokens_in(token_dir).items():
            if n not in delivered and rng.random() < chance:
                try:
                    await pyworkflow.resume_hook(hook_token, {"approved": n})
                except HookNotFoundError:
                    # on_created hands the token out before the turn that creates the hook
                    # commits it; a kill in between means a replay hands out another one. Not
                    # deliverable yet: the next round reads the file again.
                    continue
                delivered[n] = hook_token

    store = await storage()
    parents = {await add_unleased_run(store, "kh_parent", n): n for n in range(PARENTS)}  # type: ignore[arg-type]
    frozen: dict[tuple[str, str], int] = {}
    worker = start_worker()
    for kills in range(1, KILLS + 1):
        await asyncio.sleep(rng.uniform(0.5, 2.0))  # a worker needs ~0.5 s to start
        await deliver_some(0.4)
        if kills == KILLS and not frozen:
            deadline = time.monotonic() + 20  # the last kill comes after some step completed
            while not await completed_steps(await family(list(parents))):
                assert time.monotonic() < deadline, f"no step completed; {context()}"
                await asyncio.sleep(0.1)
        assert worker.poll() is None, f"worker exited by itself; {context()}"
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        executions = executions_in(side_effects)
        for key in await completed_steps(await family(list(parents))):
            frozen.setdefault(key, executions[key])
        await deliver_some(0.5)  # with no worker alive: the next one logs it
        worker = start_worker()

    deadline = time.monotonic() + 60
    while True:
        await deliver_some(1.0)
        records = [await store.get_run(run_id) for run_id in parents]
        if all(r is not None and r.status.is_terminal for r in records):
            break
        assert time.monotonic() < deadline, f"runs did not finish: {records}; {context()}"
        await asyncio.sleep(0.3)
    deadline = time.monotonic() + 15
    while " serving " not in log.read_text().rsplit("--- worker start", 1)[-1]:
        # SIGTERM before the worker installed its handlers would just kill it.
        assert time.monotonic() < deadline, f"worker did not start; {context()}"
        await asyncio.sleep(0.05)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0, context()

    codec = (await pw_runtime.get_runtime()).codec
    for run_id, n in parents.items():
        record = await store.get_run(run_id)
        assert record is not None
        assert record.status is RunStatus.COMPLETED, (record, context())
        assert codec.decode(record.result) == expected_result(n)
        kids = await store.list_runs(parent_run_id=run_id)
        assert len(kids) == 1, f"{run_id} started {len(kids)} children; {context()}"
        assert kids[0].status is RunStatus.COMPLETED
        events = await store.load_events(run_id)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        kinds = [e.type for e in events]
        assert kinds.count(EventType.HOOK_RECEIVED) == 1, kinds
        assert kinds.count(EventType.CHILD_WORKFLOW_STARTED) == 1, kinds
        assert kinds.count(EventType.CHILD_WORKFLOW_COMPLETED) == 1, kinds
        kid_events = await store.load_events(kids[0].run_id)
        assert [e.seq for e in kid_events] == list(range(1, len(kid_events) + 1))
    assert sorted(delivered) == list(range(PARENTS))
    for hook_token in delivered.values():
        with pytest.raises((HookAlreadyReceivedError, HookNotFoundError)):
            await pyworkflow.resume_hook(hook_token, {"approved": "again"})

    executions = executions_in(side_effects)
    completed = await completed_steps(await family(list(parents)))
    assert set(executions) == completed, "a step ran that the log does not know"
    for key, count_then in frozen.items():
        assert executions[key] == count_then, (
            f"{key} was completed in the log at a kill with {count_then} executions, then "
            f"executed again ({executions[key]} in all); {context()}"
        )
    for key, count in executions.items():
        assert 1 <= count <= KILLS + 1, f"{key} executed {count} times; {context()}"
    text = log.read_text()
    assert "Traceback" not in text, context()
    assert frozen, f"no step had completed at any kill; {context()}"
    print(
        f"seed={seed} kills={KILLS} re-executions={sum(c - 1 for c in executions.values())} "
        f"in {time.monotonic() - began:.1f}s"
    )
