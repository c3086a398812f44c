"""The process's runtime: built once however many callers ask first, and its heap freeze.

The freeze is process-wide and happens once per process, so its tests run small scripts in
fresh interpreters and read what they print.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap

import pytest

import pyworkflow
from pyworkflow import runtime as pw_runtime
from pyworkflow.exceptions import ConfigurationError
from pyworkflow.storage.protocol import Storage


# On a storage whose open() really waits (a thread, a connection): the race needs a suspension.
async def test_concurrent_first_callers_share_one_runtime(pw_sqlite: Storage) -> None:
    # Before: each caller that arrived while the first was opening storage built its own
    # executor, whose claim loop then ran (and warned) until the process ended.
    runtimes = await asyncio.gather(*[pw_runtime.get_runtime() for _ in range(20)])
    try:
        assert len({id(r) for r in runtimes}) == 1
        assert len({id(r.executor) for r in runtimes}) == 1
    finally:
        await pyworkflow.shutdown()


async def test_concurrent_first_runs_leave_no_stray_executor(
    pw_sqlite: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    @pyworkflow.step()
    async def add_one(x: int) -> int:
        return x + 1

    @pyworkflow.workflow(name="test_runtime.concurrent_first")
    async def concurrent_first(x: int) -> int:
        return await add_one(x)

    results = await asyncio.gather(*[pyworkflow.run(concurrent_first, i) for i in range(10)])
    assert results == [i + 1 for i in range(10)]
    await pyworkflow.shutdown()
    await asyncio.sleep(0.05)
    claim_tasks = [t for t in asyncio.all_tasks() if t.get_name() == "pyworkflow-claim"]
    assert claim_tasks == []
    assert "claiming runs failed" not in caplog.text


_SCRIPT = """
import asyncio, gc, json, sys
import pyworkflow
from pyworkflow.storage import MemoryStorage

@pyworkflow.step()
async def double(x: int) -> int:
    return 2 * x

@pyworkflow.workflow(name="heap.double")
async def twice(x: int) -> int:
    return await double(x)

settings = json.loads(sys.argv[1])
pyworkflow.configure(storage=MemoryStorage(), **settings)
before = gc.get_freeze_count()
assert asyncio.run(pyworkflow.run(twice, 2)) == 4
first = gc.get_freeze_count()
garbage_later = [[i] for i in range(1000)]  # alive at the second runtime's start
assert asyncio.run(pyworkflow.run(twice, 3)) == 6  # a new event loop: a second runtime
print(json.dumps({"before": before, "first": first, "second": gc.get_freeze_count()}))
"""


def _freeze_counts(settings: dict[str, object], env: dict[str, str]) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_SCRIPT), json.dumps(settings)],
        capture_output=True,
        text=True,
        env={**_base_env(), **env},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    counts: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return counts


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYWORKFLOW_GC_FREEZE"}


@pytest.mark.slow  # a fresh interpreter
def test_first_runtime_freezes_the_heap_once() -> None:
    counts = _freeze_counts({}, {})
    # Python 3.12.1 starts with a few hundred objects frozen already; 3.11 and 3.13 with none.
    assert counts["before"] < 1_000
    assert counts["first"] > counts["before"] + 10_000  # what pyworkflow and storage imported
    # Once per process: the second runtime froze nothing more (the 1,000 lists made in between
    # stay collectable); frozen objects freed since, by reference counting, leave the count.
    assert counts["second"] <= counts["first"]


@pytest.mark.slow  # a fresh interpreter
@pytest.mark.parametrize(
    ("settings", "env"),
    [({"gc_freeze": False}, {}), ({}, {"PYWORKFLOW_GC_FREEZE": "0"})],
    ids=["configure", "environment"],
)
def test_heap_freeze_can_be_turned_off(settings: dict[str, object], env: dict[str, str]) -> None:
    counts = _freeze_counts(settings, env)
    # Nothing frozen by pyworkflow (the interpreter's own frozen objects may only go).
    assert counts["first"] <= counts["before"]
    assert counts["second"] <= counts["before"]


@pytest.mark.slow  # a fresh interpreter
def test_configure_wins_over_the_environment() -> None:
    counts = _freeze_counts({"gc_freeze": True}, {"PYWORKFLOW_GC_FREEZE": "0"})
    assert counts["first"] > 0


@pytest.mark.parametrize("variable", ["PYWORKFLOW_GC_FREEZE", "PYWORKFLOW_ALLOW_PICKLE"])
async def test_a_flag_that_is_not_yes_or_no_is_named(
    variable: str, pw_memory: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, "sometimes")
    for _ in range(2):  # and nothing half-built that a second call would then return
        with pytest.raises(ConfigurationError, match=f"{variable}: expected 1 or 0"):
            await pw_runtime.get_runtime()


_LOOPS_SCRIPT = """
import asyncio, sys
import pyworkflow

@pyworkflow.step()
async def inc(x: int) -> int:
    return x + 1

@pyworkflow.workflow(name="loops.inc")
async def inc_twice(x: int) -> int:
    return await inc(await inc(x))

pyworkflow.configure(storage=sys.argv[1])
print(asyncio.run(pyworkflow.run(inc_twice, 1)))
print(asyncio.run(pyworkflow.run(inc_twice, 10)))  # a new loop: a second runtime
asyncio.run(pyworkflow.shutdown())  # a third loop: the second runtime's loop is closed
print("shut down")
"""


@pytest.mark.slow  # a fresh interpreter
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_script_of_several_event_loops_shuts_down(
    backend: str, tmp_path: object, request: pytest.FixtureRequest
) -> None:
    """``asyncio.run`` per call, then ``shutdown()`` on a loop of its own: no closed-loop error."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}/loops.db"
    else:
        url = request.getfixturevalue("postgres_server").fresh_url()
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_LOOPS_SCRIPT), url],
        capture_output=True,
        text=True,
        env=_base_env(),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3", "12", "shut", "down"]
