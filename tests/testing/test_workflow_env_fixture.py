"""The pytest plugin: the workflow_env fixture, and the same tests on SQLite on request."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pyworkflow import RunStatus, sleep, step, workflow
from pyworkflow.testing import WorkflowEnvironment

pytest_plugins = ["pytester"]

# Inner sessions: strict mode (the fixture must work without asyncio_mode=auto in the user's
# project), no cache and no hypothesis (its start-up is most of an inner session's time).
INNER_OPTIONS = [
    "-p",
    "no:cacheprovider",
    "-p",
    "no:hypothesispytest",
    "-o",
    "asyncio_mode=strict",
    "-o",
    "asyncio_default_fixture_loop_scope=function",
]


@step(name="tt_fixture_greet")
async def greet(name: str) -> str:
    return f"hello {name}"


@workflow(name="tt_fixture_reminder")
async def reminder(name: str) -> str:
    await sleep("3d")
    return await greet(name)


async def test_the_fixture_is_an_open_environment(workflow_env: WorkflowEnvironment) -> None:
    started = workflow_env.now()
    run_id = await workflow_env.start(reminder, "ada")
    assert await workflow_env.result(run_id) == "hello ada"
    assert workflow_env.now() - started == timedelta(days=3)
    assert (await workflow_env.get_run(run_id)).status is RunStatus.COMPLETED


INNER_TEST = """
import pytest
from pyworkflow import sleep, workflow
from pyworkflow.storage import MemoryStorage, SQLiteStorage


@workflow(name="tt_inner_nap")
async def nap() -> str:
    await sleep("30d")
    return "rested"


@pytest.mark.asyncio
async def test_inner(workflow_env):
    assert await workflow_env.run(nap) == "rested"
    expected = {"memory": MemoryStorage, "sqlite": SQLiteStorage}[EXPECTED]
    assert type(workflow_env.storage) is expected
"""


@pytest.mark.parametrize(
    ("args", "env_var", "expected"),
    [
        (["--pyworkflow-storage", "sqlite"], None, "sqlite"),
        ([], "sqlite", "sqlite"),
        (["--pyworkflow-storage", "memory"], "sqlite", "memory"),
    ],
)
def test_the_same_tests_run_on_sqlite_when_asked(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env_var: str | None,
    expected: str,
) -> None:
    if env_var is None:
        monkeypatch.delenv("PYWORKFLOW_TEST_STORAGE", raising=False)
    else:
        monkeypatch.setenv("PYWORKFLOW_TEST_STORAGE", env_var)
    pytester.makepyfile(INNER_TEST.replace("EXPECTED", repr(expected)))
    result = pytester.runpytest(*INNER_OPTIONS, *args)
    result.assert_outcomes(passed=1, warnings=0)


def test_a_bad_storage_option_stops_the_session(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_never(): pass")
    result = pytester.runpytest(*INNER_OPTIONS, "--pyworkflow-storage", "bogus://")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--pyworkflow-storage*bogus*"])
