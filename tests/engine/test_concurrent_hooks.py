"""Concurrent ``resume_hook`` calls on one token apply exactly one payload (issue 5).

Fifty calls at once in this process (on the virtual clock and memory storage, conftest.py; the
race on each backend is the contract suite's), then fifty spread over five processes on SQLite
and on PostgreSQL; and a typed payload validated in a process that never imported the workflow.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import pyworkflow
from pyworkflow import EventType, HookAlreadyReceivedError, resume_hook
from pyworkflow import config as pw_config
from pyworkflow.testing import WorkflowEnvironment
from workers import subprocess_env

from .hook_workflows import two_hooks, typed_dict
from .recording import token
from .run_log import events_of, of_type
from .waits import hook_token

TESTS_DIR = Path(__file__).resolve().parent.parent


async def test_fifty_concurrent_deliveries_apply_one_payload(env: WorkflowEnvironment) -> None:
    # The run waits on a second hook afterwards, so every loser finds it alive: a second
    # delivery, not a delivery to an ended run.
    tok = token()
    run_id = await pyworkflow.start(two_hooks, tok)
    hook_tok = await hook_token(tok, "first", run_id)

    outcomes = await asyncio.gather(
        *(resume_hook(hook_tok, {"n": n}) for n in range(50)), return_exceptions=True
    )

    winners = [n for n, o in enumerate(outcomes) if isinstance(o, pyworkflow.HookInfo)]
    losers = [o for o in outcomes if isinstance(o, HookAlreadyReceivedError)]
    assert len(winners) == 1, outcomes
    assert len(losers) == 49, outcomes
    await resume_hook(await hook_token(tok, "second", run_id), "two")
    result = await pyworkflow.get_workflow_result(run_id, timeout=10)
    assert result == [{"n": winners[0]}, "two"]
    received = of_type(await events_of(run_id), EventType.HOOK_RECEIVED)
    assert [e.data["hook_id"] for e in received] == ["hook:first#1", "hook:second#1"]


DELIVER_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, os, sys, time
    import pyworkflow

    url, token, first, count, go = sys.argv[1:6]
    first, count = int(first), int(count)

    async def main():
        pyworkflow.configure(storage=url)
        from pyworkflow.runtime import get_runtime
        await get_runtime()  # open the storage before the start signal
        open(go + "." + str(first), "w").close()
        while not os.path.exists(go):
            time.sleep(0.001)
        outcomes = await asyncio.gather(
            *(pyworkflow.resume_hook(token, {"n": n}) for n in range(first, first + count)),
            return_exceptions=True,
        )
        print(json.dumps([type(o).__name__ for o in outcomes]))
        modules = [m for m in sys.modules if m.startswith("engine")]
        print(json.dumps(modules))
        await pyworkflow.shutdown()

    asyncio.run(main())
    """
)


async def run_script(script: str, *args: str) -> list[Any]:
    env = subprocess_env(TESTS_DIR)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


def all_exist(paths: list[str]) -> bool:
    return all(os.path.exists(p) for p in paths)


def touch(path: str) -> None:
    Path(path).touch()


@pytest.fixture(params=["sqlite", "postgres"])
async def shared(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[str]:
    """pyworkflow configured on storage other processes can share; yields its URL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'shared.db'}"
    else:
        url = str(request.getfixturevalue("postgres_server").fresh_url())
    monkeypatch.setattr(pw_config, "_settings", pw_config._settings)
    pyworkflow.configure(storage=url, lease_seconds=10.0, horizon_seconds=5.0)
    try:
        yield url
    finally:
        await pyworkflow.shutdown()


@pytest.mark.slow
async def test_concurrent_deliveries_from_several_processes(shared: str, tmp_path: Path) -> None:
    tok = token()
    run_id = await pyworkflow.start(two_hooks, tok)
    hook_tok = await hook_token(tok, "first", run_id)
    go = str(tmp_path / "go")
    processes, per_process = 5, 10
    scripts = [
        asyncio.ensure_future(
            run_script(DELIVER_SCRIPT, shared, hook_tok, str(p * per_process), str(per_process), go)
        )
        for p in range(processes)
    ]
    deadline = time.monotonic() + 30
    while not all_exist([f"{go}.{p * per_process}" for p in range(processes)]):
        assert time.monotonic() < deadline, "the delivering processes did not start"
        assert not any(s.done() for s in scripts), [s.result() for s in scripts if s.done()]
        await asyncio.sleep(0.02)
    touch(go)
    outputs = await asyncio.gather(*scripts)

    outcomes = [name for out in outputs for name in out[0]]
    assert len(outcomes) == processes * per_process
    assert outcomes.count("HookInfo") == 1, outcomes
    assert outcomes.count("HookAlreadyReceivedError") == processes * per_process - 1, outcomes
    winner = next(
        p * per_process + i
        for p, out in enumerate(outputs)
        for i, name in enumerate(out[0])
        if name == "HookInfo"
    )
    await resume_hook(await hook_token(tok, "second", run_id, within=15), "two")
    result = await pyworkflow.get_workflow_result(run_id, timeout=15)
    assert result == [{"n": winner}, "two"]
    received = of_type(await events_of(run_id), EventType.HOOK_RECEIVED)
    assert [e.data["hook_id"] for e in received] == ["hook:first#1", "hook:second#1"]


VALIDATE_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    import pyworkflow

    url, token = sys.argv[1:3]

    async def main():
        pyworkflow.configure(storage=url)
        try:
            await pyworkflow.resume_hook(token, {"address": "1 Main St", "count": "three"})
            print(json.dumps(["accepted"]))
        except pyworkflow.InvalidHookPayloadError as exc:
            print(json.dumps(["refused", exc.field]))
        info = await pyworkflow.resume_hook(token, {"address": "1 Main St", "count": 3})
        print(json.dumps([info.status]))
        print(json.dumps(sorted(m for m in sys.modules if m.startswith("engine"))))
        await pyworkflow.shutdown()

    asyncio.run(main())
    """
)


@pytest.mark.slow
async def test_a_typed_payload_is_validated_in_a_process_without_the_workflow(
    shared: str,
) -> None:
    tok = token()
    run_id = await pyworkflow.start(typed_dict, tok)
    hook_tok = await hook_token(tok, "shipping", run_id)
    refused, delivered, modules = await run_script(VALIDATE_SCRIPT, shared, hook_tok)
    assert refused == ["refused", "count"]
    assert delivered == ["received"]
    # Only the payload type's module was imported there, never the workflow's.
    assert modules == ["engine", "engine.hook_payloads"]
    result = await pyworkflow.get_workflow_result(run_id, timeout=15)
    assert result == ["dict", {"address": "1 Main St", "count": 3}]
